// The console's words, in English and Simplified Chinese. Keys are stable; {name} is replaced
// by t(key, {name: value}). Every string is put on the page with textContent, never as HTML.

export const LANGUAGES = { en: 'English', zh_CN: '简体中文' };

const en = {
  appName: 'Tray Notifier',
  consoleTitle: 'Publisher console',
  language: 'Language',
  signedInAs: 'Signed in as {user}',
  logOut: 'Log out',

  loginHeading: 'Log in',
  loginIntro: 'Log in with a publisher account to send announcements and see who received them.',
  username: 'User name',
  password: 'Password',
  logIn: 'Log in',
  loggingIn: 'Logging in…',
  loginFailed: 'Could not log in: {message}',
  notPublisher: 'The account “{user}” is not a publisher: it can receive announcements but not send them. Ask your IT team for a publisher account.',
  sessionEnded: 'Your login has ended. Please log in again.',
  serverUnreachable: 'The announcement server cannot be reached. Check your network and try again.',

  tabCompose: 'Compose',
  tabSent: 'Sent',
  mainNav: 'Sections',

  composeHeading: 'New announcement',
  title: 'Title',
  body: 'Message',
  priority: 'Priority',
  priority_low: 'Low',
  priority_normal: 'Normal',
  priority_high: 'High',
  priority_urgent: 'Urgent',
  priorityHint: 'Urgent opens a window on every screen that stays until the person acknowledges it.',
  link: 'Link (optional)',
  linkHint: 'A web address starting with https:// or http://',
  expiry: 'Expires (optional)',
  expiryHint: 'After this time the announcement is no longer shown to people who have not received it.',
  audience: 'Send to',
  audienceAll: 'Everyone',
  audienceGroups: 'Groups',
  audienceUsers: 'Selected people',
  chooseGroups: 'Choose groups',
  chooseUsers: 'Choose people',
  filterUsers: 'Find a person',
  members: '{count} members',
  member: '1 member',
  noGroups: 'There are no groups yet.',
  noUsers: 'No one matches.',
  directoryMissing: 'The list of groups and people could not be loaded: {message}',
  recipientsNone: 'No recipients chosen yet.',
  recipientsOne: 'This will go to 1 person: {names}.',
  recipientsMany: 'This will go to {count} people.',
  recipientsManyNames: 'This will go to {count} people: {names}.',
  recipientsUnknown: 'The number of recipients is not known.',
  send: 'Send announcement',
  sending: 'Sending…',
  sent: 'Sent. You can follow who received it under “Sent”.',
  sendFailed: 'Not sent: {message}',
  clear: 'Clear form',
  required: 'Please fill in the {field}.',
  badLink: 'The link must start with https:// or http://.',
  pastExpiry: 'The expiry time is in the past.',

  previewHeading: 'Preview',
  previewToast: 'Notification on the desktop',
  previewUrgent: 'Urgent window',
  previewUntitled: '(no title yet)',
  previewEmptyBody: '(no message yet)',
  acknowledge: 'Acknowledge',
  urgentWindowTitle: 'Urgent announcement',
  openLink: 'Open link',

  confirmHeading: 'Send this announcement?',
  confirmAll: 'It goes to everyone ({count} people).',
  confirmAllUnknown: 'It goes to everyone.',
  confirmUrgent: 'It is urgent: a window opens on each recipient’s screen and stays until they acknowledge it.',
  confirmSend: 'Yes, send it',
  cancel: 'Cancel',

  sentHeading: 'Sent announcements',
  refresh: 'Refresh',
  liveOn: 'Live: figures update as people receive and read',
  liveConnecting: 'Connecting live updates…',
  liveOff: 'Live updates are not available: use Refresh.',
  noAnnouncements: 'Nothing has been sent yet.',
  loadFailed: 'The list could not be loaded: {message}',
  colTitle: 'Title',
  colPriority: 'Priority',
  colSent: 'Sent',
  colRecipients: 'Recipients',
  colDelivered: 'Received',
  colRead: 'Read',
  colAcknowledged: 'Acknowledged',
  reachUnavailable: '–',
  showDetails: 'Show who received “{title}”',

  detailsHeading: 'Who received it',
  closeDetails: 'Close',
  summary: '{delivered} of {recipients} received, {read} read, {acknowledged} acknowledged',
  notReceived: 'Not received yet ({count})',
  notRead: 'Not read yet ({count})',
  notAcknowledged: 'Not acknowledged yet ({count})',
  everyoneReceived: 'Everyone has received it.',
  everyoneRead: 'Everyone has read it.',
  everyoneAcknowledged: 'Everyone has acknowledged it.',
  colPerson: 'Person',
  colGroups: 'Groups',
  colOnline: 'Connected now',
  online: 'Yes',
  offline: 'No',
  notYet: '—',
  exportCsv: 'Export CSV',
  exported: 'Saved {file}.',
  exportFailed: 'The CSV could not be exported: {message}',
  downloadAgain: 'Download {file} again',
  revoke: 'Revoke',
  revokeHeading: 'Revoke this announcement?',
  revokeText: '“{title}” is withdrawn from every recipient’s history and no longer shown to anyone.',
  revokeConfirm: 'Yes, revoke it',
  revoked: '“{title}” was revoked.',
  revokeFailed: 'Not revoked: {message}',
  reachMissing: 'Reach figures are not available on this server: {message}',
  expires: 'Expires {time}',
  linkLabel: 'Link: {url}',
};

const zh_CN = {
  appName: 'Tray Notifier',
  consoleTitle: '发布控制台',
  language: '语言',
  signedInAs: '已登录：{user}',
  logOut: '退出登录',

  loginHeading: '登录',
  loginIntro: '使用发布者账号登录，即可发送通知并查看送达情况。',
  username: '用户名',
  password: '密码',
  logIn: '登录',
  loggingIn: '正在登录…',
  loginFailed: '无法登录：{message}',
  notPublisher: '账号“{user}”不是发布者：它可以接收通知，但不能发送。请向 IT 部门申请发布者账号。',
  sessionEnded: '登录已失效，请重新登录。',
  serverUnreachable: '无法连接通知服务器。请检查网络后重试。',

  tabCompose: '撰写',
  tabSent: '已发送',
  mainNav: '栏目',

  composeHeading: '新通知',
  title: '标题',
  body: '正文',
  priority: '优先级',
  priority_low: '低',
  priority_normal: '普通',
  priority_high: '高',
  priority_urgent: '紧急',
  priorityHint: '紧急通知会在每位接收者的屏幕上弹出窗口，直到对方确认为止。',
  link: '链接（可选）',
  linkHint: '以 https:// 或 http:// 开头的网址',
  expiry: '过期时间（可选）',
  expiryHint: '过了这个时间，尚未收到的人将不再收到该通知。',
  audience: '发送给',
  audienceAll: '所有人',
  audienceGroups: '部门/群组',
  audienceUsers: '指定人员',
  chooseGroups: '选择群组',
  chooseUsers: '选择人员',
  filterUsers: '查找人员',
  members: '{count} 人',
  member: '1 人',
  noGroups: '还没有任何群组。',
  noUsers: '没有匹配的人员。',
  directoryMissing: '无法加载群组和人员列表：{message}',
  recipientsNone: '尚未选择接收者。',
  recipientsOne: '将发送给 1 人：{names}。',
  recipientsMany: '将发送给 {count} 人。',
  recipientsManyNames: '将发送给 {count} 人：{names}。',
  recipientsUnknown: '接收人数未知。',
  send: '发送通知',
  sending: '正在发送…',
  sent: '已发送。可在“已发送”中查看送达情况。',
  sendFailed: '未发送：{message}',
  clear: '清空',
  required: '请填写{field}。',
  badLink: '链接必须以 https:// 或 http:// 开头。',
  pastExpiry: '过期时间已经过去。',

  previewHeading: '预览',
  previewToast: '桌面通知',
  previewUrgent: '紧急通知窗口',
  previewUntitled: '（尚无标题）',
  previewEmptyBody: '（尚无正文）',
  acknowledge: '确认',
  urgentWindowTitle: '紧急通知',
  openLink: '打开链接',

  confirmHeading: '确定发送这条通知吗？',
  confirmAll: '它将发送给所有人（{count} 人）。',
  confirmAllUnknown: '它将发送给所有人。',
  confirmUrgent: '这是紧急通知：每位接收者的屏幕上都会弹出窗口，直到对方确认。',
  confirmSend: '确定发送',
  cancel: '取消',

  sentHeading: '已发送的通知',
  refresh: '刷新',
  liveOn: '实时：有人收到或阅读时数字自动更新',
  liveConnecting: '正在连接实时更新…',
  liveOff: '实时更新不可用：请使用“刷新”。',
  noAnnouncements: '还没有发送过通知。',
  loadFailed: '无法加载列表：{message}',
  colTitle: '标题',
  colPriority: '优先级',
  colSent: '发送时间',
  colRecipients: '接收者',
  colDelivered: '已收到',
  colRead: '已读',
  colAcknowledged: '已确认',
  reachUnavailable: '–',
  showDetails: '查看“{title}”的送达情况',

  detailsHeading: '送达情况',
  closeDetails: '关闭',
  summary: '{recipients} 人中 {delivered} 人已收到，{read} 人已读，{acknowledged} 人已确认',
  notReceived: '尚未收到（{count}）',
  notRead: '尚未阅读（{count}）',
  notAcknowledged: '尚未确认（{count}）',
  everyoneReceived: '所有人都已收到。',
  everyoneRead: '所有人都已阅读。',
  everyoneAcknowledged: '所有人都已确认。',
  colPerson: '人员',
  colGroups: '群组',
  colOnline: '当前在线',
  online: '是',
  offline: '否',
  notYet: '—',
  exportCsv: '导出 CSV',
  exported: '已保存 {file}。',
  exportFailed: '无法导出 CSV：{message}',
  downloadAgain: '再次下载 {file}',
  revoke: '撤回',
  revokeHeading: '确定撤回这条通知吗？',
  revokeText: '“{title}”将从每位接收者的历史记录中撤回，不再向任何人显示。',
  revokeConfirm: '确定撤回',
  revoked: '已撤回“{title}”。',
  revokeFailed: '未撤回：{message}',
  reachMissing: '此服务器不提供送达数据：{message}',
  expires: '{time} 过期',
  linkLabel: '链接：{url}',
};

const TABLES = { en, zh_CN };

/** The language to start in: ``?lang=`` if given, else the browser's, else English. */
export function initialLanguage(search, navigatorLanguages) {
  const asked = new URLSearchParams(search).get('lang');
  for (const tag of [asked, ...(navigatorLanguages || [])]) {
    const code = pick(tag);
    if (code) return code;
  }
  return 'en';
}

function pick(tag) {
  if (!tag) return null;
  const lower = String(tag).toLowerCase().replace('_', '-');
  if (lower.startsWith('zh')) return 'zh_CN';
  if (lower.startsWith('en')) return 'en';
  return null;
}

/** A translator for ``lang``: t(key, values) -> text (English when a key is missing). */
export function translator(lang) {
  const table = TABLES[lang] || en;
  return (key, values = {}) => {
    const text = table[key] ?? en[key] ?? key;
    return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
  };
}

/** The BCP 47 tag of a language code, for ``<html lang>`` and Intl. */
export function bcp47(lang) {
  return lang === 'zh_CN' ? 'zh-CN' : 'en';
}
