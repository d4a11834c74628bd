// The communications officer's tools in the console (docs/console.md): scheduled
// announcements, drafts and templates, and the audit log. Loaded by console.js, which hands
// this module what it shares (installTools): the authorised calls, the translator, the page's
// helpers and the compose form. The same rules as console.js: tokens only in console.js's
// memory, every text from the server or the user on the page with textContent, no inline
// script or style.
//
// API (docs/api.md): GET /scheduled, DELETE /scheduled/{id}; GET, POST /drafts and /templates,
// PUT, DELETE /drafts/{id} and /templates/{id}; GET /audit?before=&limit=, GET /audit.csv.

import { addWords } from './i18n.js';
import { TOOLS_WORDS } from './tools_words.js';

addWords(TOOLS_WORDS);

const AUDIT_PAGE = 50; // audit lines per page
const $ = (id) => document.getElementById(id);

let ctx = null; // what console.js shares (installTools)
const tools = {
  scheduled: [],
  drafts: [],
  templates: [],
  openDraft: null, // {id, name} of the draft the compose form holds
  audit: { entries: [], next: null, cursors: [], loaded: false },
  auditCsv: null,
};

// ------------------------------------------------------------------ wiring

/** Called once by console.js with its shared helpers (see the `tools` object there). */
export function installTools(context) {
  ctx = context;
  for (const name of ['scheduled', 'saved', 'audit']) {
    $(`tab-${name}`).addEventListener('click', () => {
      ctx.selectTab(name);
      if (name === 'scheduled') loadScheduled();
      if (name === 'saved') loadForms();
      if (name === 'audit') loadAudit(null, true);
    });
  }
  $('save-draft').addEventListener('click', saveDraft);
  $('f-template').addEventListener('change', useSelectedTemplate);
  $('template-form').addEventListener('submit', saveTemplate);
  $('scheduled-refresh').addEventListener('click', loadScheduled);
  $('audit-refresh').addEventListener('click', () => loadAudit(null, true));
  $('audit-older').addEventListener('click', () => {
    if (!tools.audit.next) return;
    tools.audit.cursors.push(tools.audit.next);
    loadAudit(tools.audit.next);
  });
  $('audit-newer').addEventListener('click', () => {
    tools.audit.cursors.pop();
    loadAudit(tools.audit.cursors.at(-1) ?? null);
  });
  $('audit-export').addEventListener('click', exportAudit);
  $('f-send-at').addEventListener('input', renderSendButton);
}

/** After the login: what the compose form needs (the templates, the drafts). */
export function loadTools() {
  loadForms();
}

/** Everything again in the current language. */
export function renderTools() {
  if (!ctx) return;
  renderTemplateSelect();
  renderDraftStatus();
  renderSendButton();
  renderScheduled();
  renderSaved();
  renderAudit();
}

/** After a logout: nothing of the last login is left on the page. */
export function resetTools() {
  tools.scheduled = [];
  tools.drafts = [];
  tools.templates = [];
  tools.openDraft = null;
  tools.audit = { entries: [], next: null, cursors: [], loaded: false };
  dropAuditCsv();
  renderTools();
}

/** The compose form was cleared by hand: it holds no draft any more. */
export function composeCleared() {
  tools.openDraft = null;
  renderDraftStatus();
  renderSendButton();
}

/** The compose form was sent (or scheduled): the draft it held is done with. */
export async function composeSent(answer) {
  const draft = tools.openDraft;
  tools.openDraft = null;
  renderDraftStatus();
  if (draft) {
    try {
      await ctx.apiJson(`drafts/${encodeURIComponent(draft.id)}`, { method: 'DELETE' });
    } catch {
      // kept: the person may delete it under Drafts
    }
    loadForms();
  }
  if (answer && answer.schedule_id) {
    ctx.flash(ctx.t('scheduled', { time: ctx.formatTime(answer.send_at) }));
    document.body.dataset.lastScheduled = String(answer.schedule_id);
    loadScheduled();
  }
}

/** The `send_at` of the compose form as ISO 8601, '' when empty; null when in the past. */
export function sendAt() {
  const value = $('f-send-at').value;
  if (!value) return '';
  const when = new Date(value);
  if (Number.isNaN(when.getTime()) || when <= new Date()) return null;
  return when.toISOString();
}

// ------------------------------------------------------------------ compose form <-> content

/** The compose form's fields as a draft keeps them (anything may be missing). */
function formContent() {
  const d = ctx.draft();
  const content = { title: d.title, body: d.body, priority: d.priority };
  if (d.url) content.url = d.url;
  if (d.expires_at) content.expires_at = d.expires_at;
  const when = $('f-send-at').value;
  if (when && !Number.isNaN(new Date(when).getTime())) content.send_at = new Date(when).toISOString();
  const audience = ctx.audience();
  if (audience) content.audience = audience;
  return content;
}

/** A datetime-local input's value for an ISO time ('' when there is none). */
function localInput(iso) {
  const date = iso ? new Date(iso) : null;
  if (!date || Number.isNaN(date.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}

/** Fill the compose form from saved content (a draft or a template). */
function fillCompose(content) {
  for (const input of document.querySelectorAll('#compose-form [aria-invalid]')) input.removeAttribute('aria-invalid');
  ctx.say($('compose-error'), '');
  $('f-title').value = content.title || '';
  $('f-body').value = content.body || '';
  $('f-priority').value = content.priority || 'normal';
  $('f-link').value = content.url || '';
  $('f-expiry').value = localInput(content.expires_at);
  $('f-send-at').value = localInput(content.send_at);
  $('user-filter').value = '';
  const audience = content.audience || {};
  const mode = audience.all ? 'all' : audience.users && audience.users.length ? 'users' : 'groups';
  for (const radio of document.querySelectorAll('input[name="audience"]')) radio.checked = radio.value === mode;
  ctx.refreshCompose();
  const wanted = new Set([...(audience.groups || []), ...(audience.users || [])]);
  for (const box of document.querySelectorAll('#group-list input, #user-list input')) box.checked = wanted.has(box.value);
  ctx.refreshCompose();
  renderSendButton();
}

function renderSendButton() {
  if (!ctx) return;
  const button = $('send');
  if (button.disabled) return; // sending: console.js says so
  button.textContent = ctx.t($('f-send-at').value ? 'scheduleButton' : 'send');
}

function renderDraftStatus() {
  const status = $('draft-status');
  const draft = tools.openDraft;
  status.textContent = draft ? ctx.t('editingDraft', { name: draft.name || ctx.t('untitled') }) : '';
  document.body.dataset.openDraft = draft ? draft.id : '';
}

// ------------------------------------------------------------------ drafts and templates

async function loadForms() {
  try {
    const [drafts, templates] = await Promise.all([ctx.apiJson('drafts'), ctx.apiJson('templates')]);
    tools.drafts = Array.isArray(drafts) ? drafts : [];
    tools.templates = Array.isArray(templates) ? templates : [];
    ctx.say($('saved-error'), '');
  } catch (failure) {
    if (failure.status !== 401) ctx.say($('saved-error'), ctx.t('savedFailed', { message: failure.message }));
  }
  document.body.dataset.formsLoads = String(Number(document.body.dataset.formsLoads || 0) + 1);
  renderTemplateSelect();
  renderSaved();
}

function renderTemplateSelect() {
  const select = $('f-template');
  ctx.clear(select);
  select.append(ctx.el('option', { text: ctx.t('noTemplateChosen'), attrs: { value: '' } }));
  for (const template of tools.templates) {
    select.append(ctx.el('option', { text: template.name, attrs: { value: template.id } }));
  }
  select.value = '';
}

function useSelectedTemplate() {
  const select = $('f-template');
  const template = tools.templates.find((item) => item.id === select.value);
  if (!template) return;
  useTemplate(template);
  select.value = '';
}

function useTemplate(template) {
  tools.openDraft = null;
  ctx.selectTab('compose');
  fillCompose(template.content || {});
  renderDraftStatus();
  ctx.flash(ctx.t('fromTemplate', { name: template.name }));
  document.body.dataset.usedTemplate = template.id;
  $('f-title').focus();
}

function openDraft(draft) {
  ctx.selectTab('compose');
  fillCompose(draft.content || {});
  tools.openDraft = { id: draft.id, name: draft.name };
  renderDraftStatus();
  $('f-title').focus();
}

async function saveDraft() {
  const content = formContent();
  const open = tools.openDraft;
  try {
    const saved = open
      ? await ctx.apiJson(`drafts/${encodeURIComponent(open.id)}`, { method: 'PUT', body: { content } })
      : await ctx.apiJson('drafts', { method: 'POST', body: { content } });
    tools.openDraft = { id: saved.id, name: saved.name };
    renderDraftStatus();
    ctx.flash(ctx.t('draftSaved', { name: saved.name || ctx.t('untitled') }));
    document.body.dataset.savedDraft = saved.id;
    loadForms();
  } catch (failure) {
    if (failure.status === 404 && open) {
      tools.openDraft = null; // deleted meanwhile: save it as a new one
      return saveDraft();
    }
    if (failure.status !== 401) ctx.flash(ctx.t('draftSaveFailed', { message: failure.message }), 'error');
  }
}

async function saveTemplate(event) {
  event.preventDefault();
  const input = $('template-name');
  const name = input.value.trim();
  if (!name) {
    ctx.say($('saved-error'), ctx.t('templateNeedsName'));
    input.focus();
    return;
  }
  try {
    const saved = await ctx.apiJson('templates', { method: 'POST', body: { name, content: formContent() } });
    input.value = '';
    ctx.say($('saved-error'), '');
    ctx.flash(ctx.t('templateSaved', { name: saved.name }));
    document.body.dataset.savedTemplate = saved.id;
    await loadForms();
  } catch (failure) {
    if (failure.status !== 401) ctx.say($('saved-error'), ctx.t('savedFailed', { message: failure.message }));
  }
}

async function deleteForm(kind, item) {
  try {
    await ctx.apiJson(`${kind}s/${encodeURIComponent(item.id)}`, { method: 'DELETE' });
    if (tools.openDraft && kind === 'draft' && tools.openDraft.id === item.id) composeCleared();
  } catch (failure) {
    if (failure.status !== 401) ctx.say($('saved-error'), ctx.t('savedFailed', { message: failure.message }));
  }
  loadForms();
}

function renderSaved() {
  const fill = (list, items, kind) => {
    ctx.clear(list);
    if (!items.length) list.append(ctx.el('li', { text: ctx.t(kind === 'draft' ? 'noDrafts' : 'noTemplates'), cls: 'empty' }));
    for (const item of items) {
      const name = item.name || (item.content && item.content.title) || ctx.t('untitled');
      const when = ctx.formatTime(item.updated_at, { short: true });
      const note = kind === 'draft' ? ctx.t('savedOn', { time: when }) : ctx.t('changedBy', { time: when, user: item.updated_by });
      const open = ctx.el('button', {
        text: ctx.t(kind === 'draft' ? 'openDraft' : 'useTemplate'),
        cls: 'secondary',
        attrs: { type: 'button', 'aria-label': ctx.t(kind === 'draft' ? 'openLabel' : 'useLabel', { name }), 'data-action': 'open' },
      });
      open.addEventListener('click', () => (kind === 'draft' ? openDraft(item) : useTemplate(item)));
      const remove = ctx.el('button', {
        text: ctx.t('deleteItem'),
        cls: 'secondary',
        attrs: { type: 'button', 'aria-label': ctx.t('deleteLabel', { name }), 'data-action': 'delete' },
      });
      remove.addEventListener('click', () => deleteForm(kind, item));
      list.append(
        ctx.el('li', { attrs: { 'data-id': item.id } }, [
          ctx.el('span', { text: name, cls: 'name' }),
          ctx.el('span', { text: note, cls: 'muted' }),
          open,
          remove,
        ]),
      );
    }
  };
  fill($('draft-list'), tools.drafts, 'draft');
  fill($('template-list'), tools.templates, 'template');
}

// ------------------------------------------------------------------ scheduled

async function loadScheduled() {
  try {
    const list = await ctx.apiJson('scheduled');
    tools.scheduled = Array.isArray(list) ? list : [];
    ctx.say($('scheduled-error'), '');
  } catch (failure) {
    if (failure.status === 401) return;
    ctx.say($('scheduled-error'), ctx.t('loadFailed', { message: failure.message }));
  }
  document.body.dataset.scheduledLoads = String(Number(document.body.dataset.scheduledLoads || 0) + 1);
  renderScheduled();
}

function audienceText(audience) {
  if (!audience) return '';
  const sep = ctx.lang() === 'zh_CN' ? '、' : ', ';
  if (audience.all) return ctx.t('audienceAllShort');
  if (audience.groups && audience.groups.length) return ctx.t('audienceGroupsShort', { names: audience.groups.join(sep) });
  if (audience.users && audience.users.length) return ctx.t('audienceUsersShort', { names: audience.users.join(sep) });
  return '';
}

function renderScheduled() {
  const rows = $('scheduled-rows');
  ctx.clear(rows);
  const items = tools.scheduled;
  ctx.show($('scheduled-empty'), !items.length && $('scheduled-error').hidden);
  ctx.show($('scheduled-table'), items.length > 0);
  for (const item of items) {
    const announcement = item.announcement || {};
    const failed = item.status === 'failed';
    const status = failed
      ? ctx.t('statusFailed', { problem: item.problem || '' })
      : ctx.t(item.sending ? 'statusSending' : 'statusPending');
    const cancel = ctx.el('button', {
      text: ctx.t(failed ? 'dismissSchedule' : 'cancelSchedule'),
      cls: failed ? 'secondary' : 'danger',
      attrs: { type: 'button', 'data-action': 'cancel' },
    });
    cancel.disabled = Boolean(item.sending);
    cancel.addEventListener('click', () => cancelSchedule(item));
    rows.append(
      ctx.el('tr', { attrs: { 'data-id': item.id, 'data-status': item.status } }, [
        ctx.el('td', { text: ctx.formatTime(item.send_at), cls: 'time' }),
        ctx.el('th', { text: announcement.title || ctx.t('untitled'), attrs: { scope: 'row' } }),
        ctx.el('td', { text: audienceText(announcement.audience) }),
        ctx.el('td', { text: item.author }),
        ctx.el('td', { text: status, cls: failed ? 'status-failed' : '' }),
        ctx.el('td', {}, [cancel]),
      ]),
    );
  }
}

async function cancelSchedule(item) {
  const title = (item.announcement && item.announcement.title) || ctx.t('untitled');
  if (item.status !== 'failed') {
    const ok = await ctx.confirmDialog({
      heading: ctx.t('cancelHeading'),
      lines: [ctx.t('cancelText', { title, time: ctx.formatTime(item.send_at) })],
      ok: ctx.t('cancelConfirm'),
      danger: true,
    });
    if (!ok) return;
  }
  try {
    await ctx.apiJson(`scheduled/${encodeURIComponent(item.id)}`, { method: 'DELETE' });
    ctx.flash(ctx.t('cancelled', { title }));
    document.body.dataset.cancelledSchedule = item.id;
  } catch (failure) {
    if (failure.status !== 401) ctx.say($('scheduled-error'), ctx.t('cancelFailed', { message: failure.message }));
  }
  loadScheduled();
}

// ------------------------------------------------------------------ audit log

async function loadAudit(before, fromStart = false) {
  if (fromStart) tools.audit.cursors = [];
  const params = new URLSearchParams({ limit: String(AUDIT_PAGE) });
  if (before) params.set('before', before);
  try {
    const page = await ctx.apiJson(`audit?${params}`);
    tools.audit.entries = Array.isArray(page && page.entries) ? page.entries : [];
    tools.audit.next = (page && page.next) || null;
    tools.audit.loaded = true;
    ctx.say($('audit-error'), '');
  } catch (failure) {
    if (failure.status === 401) return;
    ctx.say($('audit-error'), ctx.t('loadFailed', { message: failure.message }));
  }
  document.body.dataset.auditLoads = String(Number(document.body.dataset.auditLoads || 0) + 1);
  renderAudit();
}

function renderAudit() {
  const rows = $('audit-rows');
  ctx.clear(rows);
  const { entries, next, cursors, loaded } = tools.audit;
  ctx.show($('audit-empty'), loaded && !entries.length && $('audit-error').hidden);
  ctx.show($('audit-table'), entries.length > 0);
  for (const entry of entries) {
    const refs = [];
    if (entry.announcement_id) refs.push(ctx.t('announcementRef', { id: entry.announcement_id }));
    if (entry.schedule_id) refs.push(ctx.t('scheduleRef', { id: entry.schedule_id }));
    rows.append(
      ctx.el('tr', { attrs: { 'data-id': entry.id, 'data-action': entry.action } }, [
        ctx.el('td', { text: ctx.formatTime(entry.at, { short: true }), cls: 'time' }),
        ctx.el('td', { text: entry.actor }),
        ctx.el('td', {}, [ctx.el('span', { text: ctx.t(`action_${entry.action}`), cls: `action a-${entry.action}` })]),
        ctx.el('td', { text: refs.join(' · ') }),
        auditDetail(entry),
      ]),
    );
  }
  $('audit-older').disabled = !next;
  $('audit-newer').disabled = cursors.length === 0;
  $('audit-page-info').textContent = loaded ? ctx.t('auditPageInfo', { page: cursors.length + 1 }) : '';
}

// the actions whose detail the server starts with a time it wrote: "{ISO 8601} · {title}"
// (app/server/schedule.py, officer.py); any other detail is shown as it came
const TIMED_DETAIL = new Set(['scheduled', 'cancelled']);
const ISO_AT_START = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})(?= · |$)/;

/** An audit line's detail: a time the server wrote in the console's own format (the ISO time in
 * a <time> element's datetime), the rest as text. */
function auditDetail(entry) {
  const detail = String(entry.detail ?? '');
  const cell = ctx.el('td', { cls: 'detail' });
  const iso = TIMED_DETAIL.has(entry.action) ? (ISO_AT_START.exec(detail) || [])[0] : undefined;
  if (iso && !Number.isNaN(new Date(iso).getTime())) {
    cell.append(ctx.el('time', { text: ctx.formatTime(iso, { short: true }), attrs: { datetime: iso } }), detail.slice(iso.length));
  } else {
    cell.textContent = detail;
  }
  return cell;
}

function dropAuditCsv() {
  if (tools.auditCsv) URL.revokeObjectURL(tools.auditCsv);
  tools.auditCsv = null;
  const link = $('audit-csv-link');
  link.hidden = true;
  link.removeAttribute('href');
}

async function exportAudit() {
  try {
    const response = await ctx.authed('audit.csv', { headers: { Accept: 'text/csv' } });
    if (!response.ok) throw await ctx.errorOf(response);
    const blob = await response.blob();
    dropAuditCsv();
    const file = 'audit.csv';
    tools.auditCsv = URL.createObjectURL(new Blob([blob], { type: 'text/csv' }));
    const link = $('audit-csv-link');
    link.href = tools.auditCsv;
    link.download = file;
    link.textContent = ctx.t('downloadAgain', { file });
    link.hidden = false;
    link.click();
    ctx.flash(ctx.t('auditExported', { file }));
    document.body.dataset.auditExported = file;
  } catch (failure) {
    if (failure.status !== 401) ctx.say($('audit-error'), ctx.t('exportFailed', { message: failure.message }));
  }
}
