// The publisher console of the companion server (docs/console.md).
//
// Plain ES module, no framework, no build step. Rules kept throughout:
// - the tokens live in the `session` object below only (never web storage, a cookie or a URL);
//   a sign-in at the organisation's provider (sso.js) ends in the same place as a password login;
// - every text from the server or the user goes on the page with textContent: never parsed as HTML;
// - no inline script or style: the page's CSP allows its own files only (and, with single
//   sign-on, connections to the provider's origin).
//
// API (docs/api.md): GET /auth/config; POST /auth/login, /auth/oidc, /auth/refresh, /auth/logout;
// GET /directory, POST /directory/sync; POST, GET /announcements; DELETE /announcements/{id}; GET
// /announcements/{id}/reach and reach.csv; GET /console/events (SSE, read with fetch since
// EventSource cannot send a header).

import { LANGUAGES, bcp47, initialLanguage, translator } from './i18n.js';
import { SsoError, callbackOf, finishSignIn, forgetPending, startSignIn, takePending } from './sso.js';
import { composeCleared, composeSent, installTools, loadTools, renderTools, resetTools, sendAt } from './tools.js';
import { installChanges, renderChanges } from './changes.js';

const API = new URL('..', document.baseURI); // the server root: the console lives at /console/
const LIST_LIMIT = 50; // announcements shown under "Sent"
const REACH_PARALLEL = 4; // reach requests in flight while filling the list
const LIVE_RETRY_MS = [1000, 2000, 5000, 10000, 30000];
const NAMES_SHOWN = 8; // recipient names spelled out before "and n more"
const TABS = ['compose', 'sent', 'scheduled', 'saved', 'audit']; // the last three: tools.js

const $ = (id) => document.getElementById(id);

/** The system whose notification the preview shows first: the browser's own, else Linux. */
function initialPlatform() {
  const name = String((navigator.userAgentData && navigator.userAgentData.platform) || navigator.platform || '');
  if (/win/i.test(name)) return 'windows';
  if (/mac/i.test(name)) return 'macos';
  return 'linux';
}

// ------------------------------------------------------------------ state (memory only)

const session = { access: null, refresh: null, user: null, refreshing: null };
const state = {
  lang: initialLanguage(location.search, navigator.languages || [navigator.language]),
  directory: null, // {groups: [{name, count}], users: [{id, name, groups}], sync} once loaded
  directoryError: null,
  directorySync: { busy: false, result: null }, // Sync now: in flight; its last answer in words
  announcements: [], // newest first
  reach: new Map(), // id -> reach JSON, or {error}
  selected: null, // id shown in the details
  live: 'off', // off | connecting | on | unavailable
  liveAbort: null,
  reachTimers: new Map(),
  csv: null, // {url, file} of the last export
  platform: initialPlatform(), // linux | windows | macos: the notification previewed
  auth: { password: true, oidc: null }, // how to sign in (GET /auth/config)
  page: newPage(''), // the sent list's search and page (older/newer)
};
let t = translator(state.lang);

// ------------------------------------------------------------------ HTTP

class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field || null;
  }
}

async function errorOf(response) {
  let message = `HTTP ${response.status}`;
  let field = null;
  try {
    const body = await response.json();
    if (body && typeof body.error === 'string') message = body.error;
    if (body && typeof body.field === 'string') field = body.field;
  } catch {
    // not JSON: keep the status
  }
  return new ApiError(response.status, message, field);
}

async function rawFetch(path, { method = 'GET', body, headers = {}, signal } = {}) {
  const init = { method, headers: { ...headers }, signal, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  try {
    return await fetch(new URL(path, API), init);
  } catch (error) {
    if (error.name === 'AbortError') throw error;
    throw new ApiError(0, t('serverUnreachable'));
  }
}

/** A call with the access token; one refresh and one retry on 401; the Response. */
async function authed(path, options = {}) {
  const call = () =>
    rawFetch(path, {
      ...options,
      headers: { ...(options.headers || {}), Authorization: `Bearer ${session.access}` },
    });
  if (!session.access) throw new ApiError(401, t('sessionEnded'));
  let response = await call();
  if (response.status === 401 && (await refreshTokens())) response = await call();
  if (response.status === 401) {
    endSession(t('sessionEnded'));
    throw new ApiError(401, t('sessionEnded'));
  }
  return response;
}

/** authed(), then the JSON body; ApiError for any answer that is not 2xx. */
async function apiJson(path, options = {}) {
  const response = await authed(path, options);
  if (!response.ok) throw await errorOf(response);
  return response.status === 204 ? null : response.json();
}

/** Trade the refresh token for a new pair (once at a time); false when it is refused. */
function refreshTokens() {
  if (!session.refresh) return Promise.resolve(false);
  if (!session.refreshing) {
    session.refreshing = (async () => {
      try {
        const response = await rawFetch('auth/refresh', {
          method: 'POST',
          body: { refresh_token: session.refresh },
        });
        if (!response.ok) return false;
        const grant = await response.json();
        session.access = grant.access_token;
        session.refresh = grant.refresh_token;
        return true;
      } catch {
        return false;
      } finally {
        session.refreshing = null;
      }
    })();
  }
  return session.refreshing;
}

// ------------------------------------------------------------------ small helpers

function show(element, visible) {
  element.hidden = !visible;
}

function say(element, text, kind) {
  element.textContent = text || '';
  element.hidden = !text;
  if (kind) element.dataset.kind = kind;
}

function clear(element) {
  element.replaceChildren();
}

function el(tag, { text, cls, attrs } = {}, children = []) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  for (const [name, value] of Object.entries(attrs || {})) node.setAttribute(name, value);
  node.append(...children);
  return node;
}

/** ``iso`` for people to read (``short``: the compact date, for tables of many times). */
function formatTime(iso, { short = false } = {}) {
  if (!iso) return t('notYet');
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return String(iso);
  return new Intl.DateTimeFormat(bcp47(state.lang), {
    dateStyle: short ? 'short' : 'medium',
    timeStyle: 'short',
  }).format(date);
}

function formatNumber(value) {
  return typeof value === 'number' ? new Intl.NumberFormat(bcp47(state.lang)).format(value) : t('reachUnavailable');
}

function listNames(names) {
  const sep = state.lang === 'zh_CN' ? '、' : ', ';
  const shown = names.slice(0, NAMES_SHOWN).join(sep);
  const more = names.length - NAMES_SHOWN;
  return more > 0 ? `${shown}${sep}+${more}` : shown;
}

// ------------------------------------------------------------------ language

function applyLanguage(lang) {
  state.lang = lang;
  t = translator(lang);
  document.documentElement.lang = bcp47(lang);
  document.title = `${t('appName')} — ${t('consoleTitle')}`;
  for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
  for (const node of document.querySelectorAll('[data-i18n-label]')) {
    node.setAttribute('aria-label', t(node.dataset.i18nLabel));
  }
  $('language').value = lang;
  if (session.user) $('who').textContent = t('signedInAs', { user: session.user });
  renderLive();
  renderPickers();
  renderCount();
  renderPreview();
  renderSent();
  renderDetails();
  renderTools();
}

function setupLanguage() {
  const select = $('language');
  for (const [code, name] of Object.entries(LANGUAGES)) {
    select.append(el('option', { text: name, attrs: { value: code, lang: bcp47(code) } }));
  }
  select.addEventListener('change', () => applyLanguage(select.value));
}

// ------------------------------------------------------------------ log in / out

function setView(view) {
  document.body.dataset.view = view;
  show($('login-view'), view === 'login');
  show($('app-view'), view === 'app');
  show($('who'), view === 'app');
  show($('logout'), view === 'app');
}

async function logIn(event) {
  event.preventDefault();
  const username = $('login-user').value.trim();
  const password = $('login-password').value;
  const error = $('login-error');
  if (!username) return fail($('login-user'), t('required', { field: t('username') }));
  if (!password) return fail($('login-password'), t('required', { field: t('password') }));
  const button = $('login-submit');
  button.disabled = true;
  button.textContent = t('loggingIn');
  say(error, '');
  try {
    const response = await rawFetch('auth/login', { method: 'POST', body: { username, password } });
    if (!response.ok) throw await errorOf(response);
    const grant = await response.json();
    $('login-password').value = '';
    await beginSession(grant, grant.user_id || username, (user) => t('notPublisher', { user }));
  } catch (problem) {
    say(error, problem.status === 0 ? problem.message : t('loginFailed', { message: problem.message }));
  } finally {
    button.disabled = false;
    button.textContent = t('logIn');
  }

  function fail(input, message) {
    say(error, message);
    input.focus();
  }
}

/** The one way into the console, after a password login and a single sign-on alike: the
 * server's grant kept in memory only, then the role checked (the role is in the server's
 * hands: a staff token gets 403 from the directory, and is logged out again at once). */
async function beginSession(grant, user, notPublisher) {
  session.access = grant.access_token;
  session.refresh = grant.refresh_token;
  session.user = user;
  const directory = await authed('directory');
  if (directory.status === 403) {
    await logOutQuietly();
    say($('login-error'), notPublisher(user));
    document.body.dataset.refused = 'not-publisher';
    return;
  }
  await enterApp(directory);
}

// ------------------------------------------------------------------ single sign-on

/** What /auth/config says (an older server has none: passwords only). */
async function loadAuthConfig() {
  try {
    const response = await rawFetch('auth/config');
    if (!response.ok) return { password: true, oidc: null };
    const config = await response.json();
    const oidc = config && config.oidc;
    const usable = oidc && typeof oidc.issuer === 'string' && typeof oidc.console_client_id === 'string' && oidc.console_client_id;
    return { password: config.password !== false, oidc: usable ? oidc : null };
  } catch {
    return { password: true, oidc: null, unreachable: true };
  }
}

/** The console's own address, where the provider sends the person back (no query). */
function redirectUri() {
  return new URL('.', location.href).href;
}

function renderSignInWays() {
  const { password, oidc } = state.auth;
  show($('sso'), Boolean(oidc));
  show($('login-form'), password);
  show($('login-or'), password && Boolean(oidc));
  say($('login-nothing'), !password && !oidc ? t('noWayIn') : '');
  document.body.dataset.ways = [oidc ? 'oidc' : '', password ? 'password' : ''].filter(Boolean).join(' ');
}

function ssoBusy(busyText) {
  const button = $('sso-start');
  button.disabled = Boolean(busyText);
  button.textContent = busyText || t('ssoButton');
}

/** A failed sign-in at the provider, in words (plain text, whatever the provider said). */
function ssoFailed(kind, message) {
  ssoBusy('');
  say($('login-error'), message);
  document.body.dataset.ssoFailed = kind;
}

async function startSso() {
  say($('login-error'), '');
  delete document.body.dataset.ssoFailed;
  delete document.body.dataset.refused;
  // PKCE needs Web Crypto, which browsers give only to pages served over HTTPS (or loopback)
  if (!window.isSecureContext || !crypto.subtle) return ssoFailed('insecure', t('ssoInsecure'));
  ssoBusy(t('ssoOpening'));
  try {
    await startSignIn(state.auth.oidc, { redirectUri: redirectUri(), lang: state.lang });
  } catch (problem) {
    ssoFailed('discovery', t('ssoDiscovery', { message: problem.message }));
  }
}

/** Back from the provider with `callback`: the query is gone from the address bar already. */
async function finishSso(callback, pending) {
  const oidc = state.auth.oidc;
  if (!oidc) return ssoFailed('config', state.auth.unreachable ? t('serverUnreachable') : t('ssoOff'));
  ssoBusy(t('ssoFinishing'));
  let signedIn;
  try {
    signedIn = await finishSignIn(oidc, callback, pending, { redirectUri: redirectUri() });
  } catch (problem) {
    if (problem instanceof SsoError) return ssoFailed(problem.kind, ssoWords(problem));
    return ssoFailed('token', t('ssoToken', { message: String(problem.message || problem) }));
  }
  const { idToken, claims } = signedIn;
  try {
    const response = await rawFetch('auth/oidc', { method: 'POST', body: { id_token: idToken } });
    if (!response.ok) {
      const refusal = await errorOf(response);
      const key = response.status === 409 ? 'ssoConflict' : 'ssoRefused';
      return ssoFailed(response.status === 409 ? 'conflict' : 'refused', t(key, { message: refusal.message }));
    }
    const grant = await response.json();
    // the server's name for this person (the one publishers see in reach lists)
    const user = grant.user_id || claims.preferred_username || claims.sub;
    ssoBusy('');
    await beginSession(grant, String(user), (who) => t('ssoNotPublisher', { user: who }));
  } catch (problem) {
    ssoFailed('server', problem.status === 0 ? problem.message : t('loginFailed', { message: problem.message }));
  }
}

function ssoWords(problem) {
  switch (problem.kind) {
    case 'state':
      return t(problem.detail === 'not-started' ? 'ssoNotStarted' : 'ssoStateMismatch');
    case 'provider':
      return t(problem.code === 'access_denied' ? 'ssoCancelled' : 'ssoProviderError', { message: problem.detail });
    case 'nonce':
      return t('ssoNonce');
    case 'discovery':
      return t('ssoDiscovery', { message: problem.detail });
    default:
      return t('ssoToken', { message: problem.detail });
  }
}

async function enterApp(directoryResponse) {
  delete document.body.dataset.refused;
  $('who').textContent = t('signedInAs', { user: session.user });
  setView('app');
  selectTab('compose');
  await loadDirectory(directoryResponse);
  $('f-title').focus();
  startLive();
  loadSent();
  loadTools();
}

async function logOutQuietly() {
  const refresh = session.refresh;
  stopLive();
  session.access = session.refresh = session.user = null;
  if (refresh) {
    try {
      await rawFetch('auth/logout', { method: 'POST', body: { refresh_token: refresh } });
    } catch {
      // the server is gone: the tokens are forgotten here anyway
    }
  }
}

function resetData() {
  state.directory = null;
  state.directoryError = null;
  state.directorySync = { busy: false, result: null };
  state.announcements = [];
  state.reach.clear();
  state.selected = null;
  dropCsv();
  $('compose-form').reset();
  say($('flash'), '');
  renderPickers();
  state.page = newPage('');
  $('sent-search').value = '';
  renderSent();
  renderDetails();
  resetTools();
}

async function logOut() {
  await logOutQuietly();
  resetData();
  setView('login');
  focusSignIn();
}

/** The first way in the server offers: the user name field, else the sign-in button. */
function focusSignIn() {
  if (state.auth.password) $('login-user').focus();
  else if (state.auth.oidc) $('sso-start').focus();
}

function endSession(message) {
  if (!session.access && !session.refresh) return;
  stopLive();
  session.access = session.refresh = session.user = null;
  resetData();
  setView('login');
  say($('login-error'), message);
}

// ------------------------------------------------------------------ tabs

function selectTab(name) {
  for (const tab of TABS) {
    const active = tab === name;
    show($(`${tab}-view`), active);
    const button = $(`tab-${tab}`);
    if (active) button.setAttribute('aria-current', 'page');
    else button.removeAttribute('aria-current');
  }
  document.body.dataset.tab = name;
}

// ------------------------------------------------------------------ directory and audience

/** The directory in one shape, whatever the server's spelling: groups {name, count} and
 * users {id, name, groups}. */
function normaliseDirectory(data) {
  const count = (value) => (Array.isArray(value) ? value.length : typeof value === 'number' ? value : null);
  let groups = data && data.groups;
  if (groups && !Array.isArray(groups) && typeof groups === 'object') {
    groups = Object.entries(groups).map(([name, value]) =>
      typeof value === 'object' && value !== null && !Array.isArray(value) ? { name, ...value } : { name, members: value },
    );
  }
  const users = (Array.isArray(data && data.users) ? data.users : []).map((user) =>
    typeof user === 'string'
      ? { id: user, name: user, groups: [] }
      : {
          id: String(user.user_id ?? user.id ?? user.username ?? user.name),
          name: String(user.username ?? user.name ?? user.user_id ?? user.id),
          groups: Array.isArray(user.groups) ? user.groups.map(String) : [],
        },
  );
  const normalGroups = (Array.isArray(groups) ? groups : []).map((group) =>
    typeof group === 'string'
      ? { name: group, count: null }
      : {
          name: String(group.name ?? group.group ?? group.id),
          count: count(group.members ?? group.member_count ?? group.count ?? group.users ?? group.size),
        },
  );
  for (const group of normalGroups) {
    if (group.count === null && users.some((u) => u.groups.length)) {
      group.count = users.filter((u) => u.groups.includes(group.name)).length;
    }
  }
  normalGroups.sort((a, b) => a.name.localeCompare(b.name));
  users.sort((a, b) => a.name.localeCompare(b.name));
  const everyone = typeof (data && data.everyone) === 'number' ? data.everyone : users.length;
  // only a server reading the organisation's directory says "sync" (null: not read yet)
  const sync = data && 'sync' in data ? (data.sync && typeof data.sync === 'object' ? data.sync : null) : undefined;
  return { groups: normalGroups, users, everyone, sync };
}

async function loadDirectory(response) {
  try {
    const answer = response || (await authed('directory'));
    if (!answer.ok) throw await errorOf(answer);
    state.directory = normaliseDirectory(await answer.json());
    state.directoryError = null;
  } catch (problem) {
    state.directory = null;
    state.directoryError = problem.message;
  }
  renderPickers();
  renderCount();
}

/** A time of the directory's sync status (epoch seconds) as ISO 8601, or null. */
function epochIso(seconds) {
  return typeof seconds === 'number' && Number.isFinite(seconds) ? new Date(seconds * 1000).toISOString() : null;
}

/** "Directory: synced {time}, N people" and Sync now, only when the server reads a directory. */
function renderDirectorySync() {
  const sync = state.directory ? state.directory.sync : undefined;
  const box = $('directory-sync');
  show(box, sync !== undefined);
  document.body.dataset.directorySync = sync === undefined ? '' : sync && sync.synced_at ? 'synced' : 'never';
  if (sync === undefined) return;
  const synced = sync && epochIso(sync.synced_at);
  const people = sync && typeof sync.people === 'number' ? sync.people : null;
  let status;
  if (!synced) status = t('directoryNotSynced');
  else if (people === null) status = t('directorySyncedAt', { time: formatTime(synced) });
  else status = t(people === 1 ? 'directorySyncedOne' : 'directorySynced', { time: formatTime(synced), people: formatNumber(people) });
  $('directory-sync-status').textContent = status;
  $('directory-sync-status').dataset.people = people === null ? '' : String(people);
  const problem = sync && typeof sync.problem === 'string' && sync.problem ? sync.problem : '';
  say($('directory-sync-problem'), problem ? t('directorySyncProblem', { time: formatTime(epochIso(sync.checked_at)), problem }) : '');
  const button = $('directory-sync-now');
  button.textContent = t(state.directorySync.busy ? 'syncing' : 'syncNow');
  if (state.directorySync.busy) button.setAttribute('aria-disabled', 'true');
  else button.removeAttribute('aria-disabled');
  const result = state.directorySync.result;
  say($('directory-sync-result'), result ? t(result.key, result.values) : '', result ? result.kind : undefined);
}

/** Sync now: the server reads the directory (POST /directory/sync), then the groups and people
 * are loaded again; the answer, or the server's reason, in words. */
async function syncDirectory() {
  if (state.directorySync.busy) return; // aria-disabled: the button keeps the focus meanwhile
  state.directorySync = { busy: true, result: null };
  renderDirectorySync();
  let result;
  try {
    const answer = await apiJson('directory/sync', { method: 'POST' });
    const people = answer && typeof answer.people === 'number' ? answer.people : 0;
    const groups = answer && typeof answer.groups === 'number' ? answer.groups : 0;
    result = { key: 'directorySyncDone', values: { people: formatNumber(people), groups: formatNumber(groups) }, kind: 'ok' };
  } catch (failure) {
    if (failure.status === 401) return; // logged out: nothing of it is left on the page
    result = { key: 'directorySyncFailed', values: { message: failure.message }, kind: 'error' };
  }
  if (!session.access) return; // logged out meanwhile
  await loadDirectory(); // the groups' counts and the people as read now (or the problem)
  state.directorySync = { busy: false, result };
  renderDirectorySync();
  document.body.dataset.directorySyncs = String(Number(document.body.dataset.directorySyncs || 0) + 1);
}

function audienceMode() {
  return document.querySelector('input[name="audience"]:checked').value;
}

function checkedValues(list) {
  return [...list.querySelectorAll('input[type="checkbox"]:checked')].map((box) => box.value);
}

function renderPickers() {
  const mode = audienceMode();
  show($('groups-picker'), mode === 'groups');
  show($('users-picker'), mode === 'users');
  say($('directory-error'), state.directoryError ? t('directoryMissing', { message: state.directoryError }) : '');
  renderDirectorySync();
  const directory = state.directory || { groups: [], users: [] };

  const groupList = $('group-list');
  const chosenGroups = new Set(checkedValues(groupList));
  clear(groupList);
  if (!directory.groups.length) groupList.append(el('li', { text: t('noGroups'), cls: 'empty' }));
  for (const group of directory.groups) {
    const box = el('input', { attrs: { type: 'checkbox', value: group.name, name: 'group' } });
    box.checked = chosenGroups.has(group.name);
    const countText = group.count === null ? '' : group.count === 1 ? t('member') : t('members', { count: group.count });
    groupList.append(
      el('li', {}, [
        el('label', { cls: 'check' }, [box, el('span', { text: group.name, cls: 'name' }), el('span', { text: countText, cls: 'muted' })]),
      ]),
    );
  }

  const userList = $('user-list');
  const chosenUsers = new Set(checkedValues(userList));
  const filter = $('user-filter').value.trim().toLowerCase();
  clear(userList);
  const shown = directory.users.filter(
    (user) => chosenUsers.has(user.id) || !filter || user.name.toLowerCase().includes(filter) || user.groups.some((g) => g.toLowerCase().includes(filter)),
  );
  if (!shown.length) userList.append(el('li', { text: t('noUsers'), cls: 'empty' }));
  for (const user of shown) {
    const box = el('input', { attrs: { type: 'checkbox', value: user.id, name: 'user' } });
    box.checked = chosenUsers.has(user.id);
    userList.append(
      el('li', {}, [
        el('label', { cls: 'check' }, [box, el('span', { text: user.name, cls: 'name' }), el('span', { text: user.groups.join(', '), cls: 'muted' })]),
      ]),
    );
  }
}

/** The audience JSON of the form, or null when nothing is chosen. */
function audience() {
  const mode = audienceMode();
  if (mode === 'all') return { all: true };
  if (mode === 'groups') {
    const groups = checkedValues($('group-list'));
    return groups.length ? { groups } : null;
  }
  const users = checkedValues($('user-list'));
  return users.length ? { users } : null;
}

/** {count, names} of the people the audience reaches, per the directory (null count: not known). */
function recipients(chosen) {
  const directory = state.directory;
  if (!chosen) return { count: 0, names: [] };
  if (!directory) return { count: null, names: [] };
  let people;
  if (chosen.all) return { count: directory.everyone, names: directory.users.map((u) => u.name) };
  else if (chosen.users) people = directory.users.filter((u) => chosen.users.includes(u.id));
  else {
    const wanted = new Set(chosen.groups);
    if (!directory.users.some((u) => u.groups.length)) {
      // users listed without their groups: add up the groups' counts
      const counts = directory.groups.filter((g) => wanted.has(g.name)).map((g) => g.count);
      return { count: counts.includes(null) ? null : counts.reduce((a, b) => a + b, 0), names: [] };
    }
    people = directory.users.filter((u) => u.groups.some((g) => wanted.has(g)));
  }
  return { count: people.length, names: people.map((u) => u.name) };
}

function renderCount() {
  const output = $('recipient-count');
  const { count, names } = recipients(audience());
  output.dataset.count = count === null ? '' : String(count);
  if (count === null) output.textContent = t('recipientsUnknown');
  else if (count === 0) output.textContent = t('recipientsNone');
  else if (count === 1) output.textContent = t('recipientsOne', { names: names[0] ?? '' });
  else if (names.length && audienceMode() !== 'all') output.textContent = t('recipientsManyNames', { count, names: listNames(names) });
  else output.textContent = t('recipientsMany', { count });
  output.classList.toggle('none', count === 0);
}

// ------------------------------------------------------------------ compose and preview

function draft() {
  const expiry = $('f-expiry').value;
  return {
    title: $('f-title').value.trim(),
    body: $('f-body').value,
    priority: $('f-priority').value,
    url: $('f-link').value.trim() || null,
    expires_at: expiry ? new Date(expiry).toISOString() : null,
  };
}

/** The draft as the tray will show it (app/ui/notifier.py, app/ui/urgent_window.py), and
 * nothing it will not: a notification is the app's name, the title and the body, on Linux with
 * an Acknowledge button for urgent ones; no link, no priority badge, no expiry. The urgent
 * window adds the priority, the time, the link with "Open link…" and Acknowledge. */
function renderPreview() {
  const d = draft();
  const urgent = d.priority === 'urgent';
  const platform = state.platform;
  for (const radio of document.querySelectorAll('input[name="platform"]')) radio.checked = radio.value === platform;
  const toast = $('preview-toast');
  toast.dataset.priority = d.priority;
  toast.dataset.platform = platform;
  $('pt-icon').dataset.icon = platform === 'windows' ? (urgent ? 'warning' : 'information') : '';
  $('pt-title').textContent = d.title || t('previewUntitled');
  $('pt-title').classList.toggle('placeholder', !d.title);
  $('pt-body').textContent = d.body || t('previewEmptyBody');
  $('pt-body').classList.toggle('placeholder', !d.body);
  // the freedesktop Notify call carries "acknowledge" for urgent ones (a click is "default")
  show($('pt-actions'), platform === 'linux' && urgent);

  const notes = $('pt-notes');
  clear(notes);
  const how = {
    linux: urgent ? 'noteLinuxUrgent' : 'noteLinux',
    windows: urgent ? 'noteWindowsUrgent' : 'noteWindows',
    macos: 'noteMac',
  }[platform];
  const lines = [t(how), t(urgent ? 'noteUrgentQuiet' : 'noteQuiet')];
  if (d.url) lines.push(t('noteLink'));
  for (const line of lines) notes.append(el('li', { text: line }));

  show($('preview-urgent-block'), urgent);
  $('pu-window-title').textContent = `${t('urgentWindowTitle')} — ${t('appName')}`;
  $('pu-meta').textContent = t('published', { time: formatTime(new Date().toISOString()) });
  $('pu-title').textContent = d.title || t('previewUntitled');
  $('pu-title').classList.toggle('placeholder', !d.title);
  $('pu-body').textContent = d.body || t('previewEmptyBody');
  $('pu-body').classList.toggle('placeholder', !d.body);
  show($('pu-link-row'), Boolean(d.url));
  $('pu-link').textContent = d.url || '';
}

function markInvalid(input, invalid) {
  if (invalid) input.setAttribute('aria-invalid', 'true');
  else input.removeAttribute('aria-invalid');
}

/** A message for the first problem of the draft (and focus on its field), or null. */
function checkDraft(d, chosen) {
  const problems = [
    [$('f-title'), !d.title, t('required', { field: t('title') })],
    [$('f-link'), d.url && !/^https?:\/\/[^\s]+$/i.test(d.url), t('badLink')],
    [$('f-expiry'), d.expires_at && new Date(d.expires_at) <= new Date(), t('pastExpiry')],
    [$('f-send-at'), sendAt() === null, t('sendAtPast')],
  ];
  for (const [input, bad] of problems) markInvalid(input, bad);
  const first = problems.find(([, bad]) => bad);
  if (first) {
    first[0].focus();
    return first[2];
  }
  if (!chosen) {
    document.querySelector('input[name="audience"]:checked').focus();
    return t('recipientsNone');
  }
  return null;
}

const FIELD_INPUTS = { title: 'f-title', body: 'f-body', priority: 'f-priority', url: 'f-link', expires_at: 'f-expiry' };

async function send(event) {
  event.preventDefault();
  const error = $('compose-error');
  say(error, '');
  const d = draft();
  const chosen = audience();
  const problem = checkDraft(d, chosen);
  if (problem) return say(error, problem);

  if (chosen.all || d.priority === 'urgent') {
    const { count } = recipients(chosen);
    const lines = [];
    if (chosen.all) lines.push(count === null ? t('confirmAllUnknown') : t('confirmAll', { count }));
    if (d.priority === 'urgent') lines.push(t('confirmUrgent'));
    const ok = await confirmDialog({ heading: t('confirmHeading'), lines: [`“${d.title}”`, ...lines], ok: t('confirmSend') });
    if (!ok) return;
  }

  const button = $('send');
  button.disabled = true;
  button.textContent = t('sending');
  try {
    const body = { ...d, audience: chosen };
    if (!body.url) delete body.url;
    if (!body.expires_at) delete body.expires_at;
    const when = sendAt();
    if (when) body.send_at = when; // scheduled: the server answers 202 (tools.js lists it)
    const answer = await apiJson('announcements', {
      method: 'POST',
      body,
      headers: { 'Idempotency-Key': newKey() },
    });
    $('compose-form').reset();
    afterReset();
    if (answer.schedule_id) {
      await composeSent(answer);
      return;
    }
    const { id } = answer;
    say($('flash'), t('sent'), 'ok');
    document.body.dataset.lastSent = id;
    composeSent(null);
    await loadSent();
  } catch (failure) {
    const input = FIELD_INPUTS[failure.field] && $(FIELD_INPUTS[failure.field]);
    if (input) {
      markInvalid(input, true);
      input.focus();
    }
    say(error, t('sendFailed', { message: failure.message }));
  } finally {
    button.disabled = false;
    button.textContent = t('send');
  }
}

function newKey() {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return `console-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

function afterReset() {
  for (const input of document.querySelectorAll('[aria-invalid]')) markInvalid(input, false);
  say($('compose-error'), '');
  renderPickers();
  renderCount();
  renderPreview();
}

// ------------------------------------------------------------------ confirm dialog

function confirmDialog({ heading, lines, ok, danger = false }) {
  const dialog = $('confirm');
  $('confirm-heading').textContent = heading;
  const text = $('confirm-text');
  clear(text);
  for (const line of lines) text.append(el('p', { text: line }));
  const okButton = $('confirm-ok');
  okButton.textContent = ok;
  okButton.className = danger ? 'danger' : '';
  const returnFocus = document.activeElement;
  return new Promise((resolve) => {
    const finish = (answer) => {
      okButton.removeEventListener('click', onOk);
      $('confirm-cancel').removeEventListener('click', onCancel);
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      if (returnFocus && returnFocus.focus) returnFocus.focus();
      resolve(answer);
    };
    const onOk = () => finish(true);
    const onCancel = () => finish(false);
    // Escape closes it; a close event still queued from the previous dialog is ignored
    const onClose = () => {
      if (!dialog.open) finish(false);
    };
    okButton.addEventListener('click', onOk);
    $('confirm-cancel').addEventListener('click', onCancel);
    dialog.addEventListener('close', onClose);
    dialog.showModal();
    $('confirm-cancel').focus();
  });
}

// ------------------------------------------------------------------ sent list and reach

/** A page of the sent list: ``q`` searched; ``before`` (older than that id) or ``since`` (newer
 * than that id) a cursor; neither: the newest. ``older``/``newer``: whether there are more. */
function newPage(q, { before = null, since = null } = {}) {
  return { q, before, since, older: false, newer: Boolean(before || since) };
}

/** The request of the current page: one more than shown, to learn whether there are more. */
function sentPath() {
  const params = new URLSearchParams({ limit: String(LIST_LIMIT + 1) });
  const { q, before, since } = state.page;
  if (q) params.set('q', q);
  if (before) params.set('before', before);
  if (since) params.set('since', since);
  return `announcements?${params}`;
}

/** The page's items (oldest first, as the server answers) without the extra one. */
function pageOf(items) {
  const full = items.length > LIST_LIMIT;
  if (state.page.since) {
    state.page.newer = full;
    state.page.older = true;
    return full ? items.slice(0, LIST_LIMIT) : items;
  }
  state.page.older = full;
  state.page.newer = Boolean(state.page.before);
  return full ? items.slice(1) : items;
}

function turnPage(way) {
  const shown = state.announcements; // newest first
  if (!shown.length) return;
  state.page =
    way === 'older'
      ? newPage(state.page.q, { before: shown[shown.length - 1].id })
      : newPage(state.page.q, { since: shown[0].id });
  closeDetailsQuietly();
  loadSent();
}

function closeDetailsQuietly() {
  state.selected = null;
  renderDetails();
}

function renderPager() {
  const { q, older, newer } = state.page;
  $('sent-older').disabled = !older;
  $('sent-newer').disabled = !newer;
  const shown = state.announcements;
  const range = shown.length ? t('sentPageInfo', { first: formatTime(shown[shown.length - 1].created_at, { short: true }), last: formatTime(shown[0].created_at, { short: true }) }) : '';
  $('sent-page-info').textContent = [range, q ? t('sentSearchInfo', { q }) : ''].filter(Boolean).join(' · ');
  show($('sent-pager'), older || newer || Boolean(q));
  if (q && !shown.length) $('sent-empty').textContent = t('noMatches', { q });
  else $('sent-empty').textContent = t('noAnnouncements');
  document.body.dataset.sentPage = JSON.stringify({ q, before: state.page.before, since: state.page.since, count: shown.length });
}

async function loadSent() {
  const error = $('sent-error');
  document.body.dataset.sentLoads = String(Number(document.body.dataset.sentLoads || 0) + 1);
  try {
    const list = await apiJson(sentPath());
    const items = (Array.isArray(list) ? list : []).filter((a) => a && a.type !== 'revoke');
    if (state.page.since && items.length <= LIST_LIMIT) {
      state.page = newPage(state.page.q); // back at the newest: that whole page
      return loadSent();
    }
    state.announcements = pageOf(items).reverse();
    say(error, '');
  } catch (failure) {
    if (failure.status === 401) return;
    say(error, t('loadFailed', { message: failure.message }));
  }
  renderSent();
  renderDetails();
  const ids = state.announcements.map((a) => a.id);
  const queue = [...ids];
  const worker = async () => {
    while (queue.length) await loadReach(queue.shift());
  };
  await Promise.all(Array.from({ length: REACH_PARALLEL }, worker));
}

async function loadReach(id) {
  try {
    const reach = await apiJson(`announcements/${encodeURIComponent(id)}/reach`);
    state.reach.set(id, reach);
    const announcement = state.announcements.find((a) => a.id === id);
    // revoked since the list was loaded: the list says by whom
    if (reach && reach.revoked_at && announcement && !announcement.revoked_at) reloadListSoon();
  } catch (failure) {
    if (failure.status === 401) return;
    if (!state.reach.has(id) || state.reach.get(id).error) state.reach.set(id, { error: failure.message });
  }
  renderRow(id);
  if (state.selected === id) renderDetails();
}

/** The whole list again soon (several reasons in a burst make one request). */
function reloadListSoon() {
  if (!state.reachTimers.has('*')) {
    state.reachTimers.set('*', setTimeout(() => {
      state.reachTimers.delete('*');
      loadSent();
    }, 300));
  }
}

/** A reach refresh for ``id`` soon (several events in a burst make one request). */
function reachChanged(id) {
  if (!state.announcements.some((a) => a.id === id)) {
    reloadListSoon(); // sent from elsewhere (another publisher, the command line)
    return;
  }
  if (state.reachTimers.has(id)) return;
  state.reachTimers.set(id, setTimeout(() => {
    state.reachTimers.delete(id);
    loadReach(id);
  }, 150));
}

function renderSent() {
  const rows = $('sent-rows');
  clear(rows);
  show($('sent-empty'), state.announcements.length === 0 && !$('sent-error').textContent);
  show($('sent-table'), state.announcements.length > 0);
  for (const announcement of state.announcements) rows.append(rowFor(announcement));
  renderPager();
}

/** Whether the announcement asks for an acknowledgement: the reach says (urgent ones only);
 * before the reach is known, its priority. */
function asksAck(announcement, reach) {
  return typeof reach.requires_ack === 'boolean' ? reach.requires_ack : announcement.priority === 'urgent';
}

/** When it was revoked (the list or its reach say so), else null. */
function revokedAt(announcement, reach) {
  return announcement.revoked_at || reach.revoked_at || null;
}

/** "Withdrawn {time} by {user}" (``key``: the short form, or the details' sentence). */
function withdrawnText(announcement, reach, key) {
  const time = formatTime(revokedAt(announcement, reach));
  const user = announcement.revoked_by;
  return user ? t(key, { time, user }) : t(`${key}NoUser`, { time });
}

function rowFor(announcement) {
  const reach = state.reach.get(announcement.id) || {};
  const withdrawn = Boolean(revokedAt(announcement, reach));
  const open = el('button', {
    text: announcement.title,
    cls: 'link-button',
    attrs: { type: 'button', 'aria-label': t('showDetails', { title: announcement.title }) },
  });
  open.addEventListener('click', () => openDetails(announcement.id));
  const title = el('td', { cls: 'title-cell' }, [open]);
  if (withdrawn) title.append(el('span', { text: withdrawnText(announcement, reach, 'withdrawn'), cls: 'withdrawn-note' }));
  const acknowledged = asksAck(announcement, reach)
    ? cell('acknowledged', reach.acknowledged, reach.recipients)
    : notAsked();
  const row = el('tr', { attrs: { 'data-id': announcement.id } }, [
    title,
    el('td', {}, [el('span', { text: t(`priority_${announcement.priority}`), cls: `badge p-${announcement.priority}` })]),
    el('td', { text: formatTime(announcement.created_at), cls: 'time' }),
    cell('recipients', reach.recipients, null),
    cell('delivered', reach.delivered, reach.recipients),
    cell('displayed', reach.displayed, reach.recipients),
    cell('read', reach.read, reach.recipients),
    acknowledged,
  ]);
  if (state.selected === announcement.id) row.classList.add('selected');
  if (withdrawn) row.classList.add('revoked');
  if (reach.error) row.title = t('reachMissing', { message: reach.error });
  return row;
}

function notAsked() {
  const td = el('td', { cls: 'num n-acknowledged not-asked', text: t('ackNotAsked'), attrs: { title: t('ackNotAskedTitle') } });
  td.dataset.value = '';
  td.dataset.asked = 'no';
  return td;
}

function cell(name, value, of) {
  const td = el('td', { cls: `num n-${name}`, text: formatNumber(value) });
  td.dataset.value = typeof value === 'number' ? String(value) : '';
  if (typeof value === 'number' && typeof of === 'number' && of > 0) {
    td.classList.toggle('complete', value >= of);
  }
  return td;
}

function renderRow(id) {
  const old = $('sent-rows').querySelector(`tr[data-id="${CSS.escape(id)}"]`);
  const announcement = state.announcements.find((a) => a.id === id);
  if (old && announcement) old.replaceWith(rowFor(announcement));
}

function openDetails(id) {
  state.selected = id;
  dropCsv();
  say($('details-status'), '');
  renderSent();
  renderDetails();
  $('details').focus();
  loadReach(id);
}

function closeDetails() {
  const id = state.selected;
  state.selected = null;
  renderSent();
  renderDetails();
  const button = id && $('sent-rows').querySelector(`tr[data-id="${CSS.escape(id)}"] button`);
  if (button) button.focus();
}

function renderDetails() {
  const details = $('details');
  const announcement = state.announcements.find((a) => a.id === state.selected);
  show(details, Boolean(announcement));
  if (!announcement) return;
  const reach = state.reach.get(announcement.id) || {};
  const withdrawn = Boolean(revokedAt(announcement, reach));
  const asked = asksAck(announcement, reach);
  $('details-title').textContent = announcement.title;
  $('details-title').classList.toggle('struck', withdrawn);
  details.dataset.revoked = withdrawn ? 'yes' : 'no';
  say($('details-withdrawn'), withdrawn ? withdrawnText(announcement, reach, 'withdrawnDetails') : '');
  show($('revoke'), !withdrawn);
  renderChanges(announcement, state.reach.get(announcement.id), withdrawn);
  const meta = [t(`priority_${announcement.priority}`), formatTime(announcement.created_at)];
  if (announcement.expires_at) meta.push(t('expires', { time: formatTime(announcement.expires_at) }));
  if (announcement.url) meta.push(t('linkLabel', { url: announcement.url }));
  $('details-meta').textContent = meta.join(' · ');
  // corrected: when last, and how many corrections (GET /announcements: revision, updated_at)
  const revision = Number(announcement.revision) || 0;
  say($('details-updated'), revision > 0 ? t('updatedLine', { time: formatTime(announcement.updated_at), revision: formatNumber(revision) }) : '');
  say($('details-error'), reach.error ? t('reachMissing', { message: reach.error }) : '');

  const has = typeof reach.recipients === 'number';
  $('details-summary').textContent = has
    ? t(asked ? 'summary' : 'summaryNoAck', {
        recipients: formatNumber(reach.recipients),
        delivered: formatNumber(reach.delivered),
        displayed: formatNumber(reach.displayed),
        read: formatNumber(reach.read),
        acknowledged: formatNumber(reach.acknowledged),
      })
    : '';
  const bars = $('details-bars');
  clear(bars);
  if (has) {
    for (const name of ['delivered', 'displayed', 'read', ...(asked ? ['acknowledged'] : [])]) {
      const value = reach[name] || 0;
      const meter = el('meter', { attrs: { min: '0', max: String(Math.max(reach.recipients, 1)), value: String(value), id: `bar-${name}` } });
      bars.append(
        el('div', { cls: 'bar' }, [
          el('label', { text: t(`col${name[0].toUpperCase()}${name.slice(1)}`), attrs: { for: `bar-${name}` } }),
          meter,
          el('span', { text: `${formatNumber(value)} / ${formatNumber(reach.recipients)}`, cls: 'muted' }),
        ]),
      );
    }
  }

  const users = Array.isArray(reach.users) ? reach.users : [];
  const nameOf = (u) => String(u.username ?? u.user_id);
  const notReceived = users.filter((u) => !u.delivered_at).map(nameOf);
  const notShown = users.filter((u) => !u.displayed_at).map(nameOf);
  const notRead = users.filter((u) => !u.read_at).map(nameOf);
  const notAcked = users.filter((u) => !u.acked_at).map(nameOf);
  // people of the organisation's directory who never signed in: recipients all the same
  const never = users.filter((u) => u.never_connected).length;
  const receivedHeading = never
    ? t('notReceivedNever', { count: notReceived.length, never })
    : t('notReceived', { count: notReceived.length });
  fillNames('not-received', receivedHeading, notReceived, t('everyoneReceived'), has);
  fillNames('not-shown', t('notShown', { count: notShown.length }), notShown, t('everyoneShown'), has);
  fillNames('not-read', t('notRead', { count: notRead.length }), notRead, t('everyoneRead'), has);
  // only urgent announcements ask for an acknowledgement (the tray's urgent window)
  show($('not-acked-block'), asked);
  fillNames('not-acked', t('notAcknowledged', { count: notAcked.length }), notAcked, t('everyoneAcknowledged'), has && asked);
  show($('people-ack-head'), asked);

  const rows = $('people-rows');
  clear(rows);
  const when = (value) => el('td', { text: formatTime(value, { short: true }), cls: value ? 'yes' : 'no' });
  // how many reminders, and the last one; empty when none
  const reminded = (user) => {
    const count = typeof user.reminders === 'number' ? user.reminders : 0;
    const td = el('td', {
      text: count && user.reminded_at ? t(count === 1 ? 'remindedOnce' : 'remindedCell', { count: formatNumber(count), time: formatTime(user.reminded_at, { short: true }) }) : '',
      cls: count ? 'yes reminded' : 'no reminded',
    });
    td.dataset.reminders = String(count);
    return td;
  };
  for (const user of users) {
    const online = Boolean(user.online);
    rows.append(
      el('tr', { attrs: { 'data-user': String(user.user_id) } }, [
        el('th', { text: nameOf(user), attrs: { scope: 'row' } }),
        el('td', { text: (Array.isArray(user.groups) ? user.groups : []).join(', ') }),
        when(user.delivered_at),
        when(user.displayed_at),
        when(user.read_at),
        ...(asked ? [when(user.acked_at)] : []),
        reminded(user),
        el('td', {}, [
          el('span', {
            text: online ? t('online') : user.never_connected ? t('neverConnected') : t('offline'),
            cls: online ? 'dot on' : 'dot off',
          }),
        ]),
      ]),
    );
  }
  $('export').disabled = !has;
}

function fillNames(id, heading, names, allDone, known) {
  $(`${id}-title`).textContent = known ? heading : '';
  const list = $(id);
  clear(list);
  if (!known) return;
  if (!names.length) list.append(el('li', { text: allDone, cls: 'done' }));
  for (const name of names) list.append(el('li', { text: name }));
}

// ------------------------------------------------------------------ CSV export and revoke

function dropCsv() {
  if (state.csv) URL.revokeObjectURL(state.csv.url);
  state.csv = null;
  const link = $('csv-link');
  link.hidden = true;
  link.removeAttribute('href');
}

async function exportCsv() {
  const id = state.selected;
  if (!id) return;
  const status = $('details-status');
  try {
    const response = await authed(`announcements/${encodeURIComponent(id)}/reach.csv`, { headers: { Accept: 'text/csv' } });
    if (!response.ok) throw await errorOf(response);
    const blob = await response.blob();
    dropCsv();
    const file = `reach-${id.replace(/[^A-Za-z0-9_-]/g, '_')}.csv`;
    const url = URL.createObjectURL(new Blob([blob], { type: 'text/csv' }));
    state.csv = { url, file };
    const link = $('csv-link');
    link.href = url;
    link.download = file;
    link.textContent = t('downloadAgain', { file });
    link.hidden = false;
    link.click();
    say(status, t('exported', { file }), 'ok');
    document.body.dataset.exported = file;
  } catch (failure) {
    if (failure.status !== 401) say(status, t('exportFailed', { message: failure.message }), 'error');
  }
}

async function revoke() {
  const announcement = state.announcements.find((a) => a.id === state.selected);
  if (!announcement) return;
  const ok = await confirmDialog({
    heading: t('revokeHeading'),
    lines: [t('revokeText', { title: announcement.title })],
    ok: t('revokeConfirm'),
    danger: true,
  });
  if (!ok) return;
  try {
    await apiJson(`announcements/${encodeURIComponent(announcement.id)}`, { method: 'DELETE' });
    // kept, marked withdrawn: the list says when and by whom, the reach stays readable
    say($('flash'), t('revoked', { title: announcement.title }), 'ok');
    await loadSent();
    $('details').focus();
  } catch (failure) {
    if (failure.status !== 401) say($('details-status'), t('revokeFailed', { message: failure.message }), 'error');
  }
}

// ------------------------------------------------------------------ live updates (SSE over fetch)

/** A WHATWG "Server-sent events" parser fed with decoded text; calls onEvent(type, data). */
class SseParser {
  constructor(onEvent) {
    this.onEvent = onEvent;
    this.buffer = '';
    this.data = [];
    this.type = '';
    this.first = true;
  }

  feed(text) {
    if (this.first && text) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      this.first = false;
    }
    this.buffer += text;
    const lines = this.buffer.split(/\r\n|\r|\n/);
    // a CR at the very end may be the first half of a CRLF: keep it with the partial line
    this.buffer = lines.pop();
    if (this.buffer === '' && text.endsWith('\r')) {
      lines.pop();
      this.buffer = '\r';
    }
    for (const line of lines) this.line(line);
  }

  line(line) {
    if (line === '\r') line = '';
    if (line === '') {
      if (this.data.length) this.onEvent(this.type || 'message', this.data.join('\n'));
      this.data = [];
      this.type = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
  }
}

function renderLive() {
  const live = $('live');
  live.dataset.live = state.live;
  const words = { on: 'liveOn', connecting: 'liveConnecting', unavailable: 'liveOff', off: '' };
  live.textContent = words[state.live] ? t(words[state.live]) : '';
}

function setLive(value) {
  state.live = value;
  renderLive();
}

function stopLive() {
  if (state.liveAbort) state.liveAbort.abort();
  state.liveAbort = null;
  setLive('off');
}

function startLive() {
  stopLive();
  const controller = new AbortController();
  state.liveAbort = controller;
  liveLoop(controller.signal);
}

async function liveLoop(signal) {
  let failures = 0;
  let opened = 0;
  const wait = (ms) =>
    new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener('abort', () => {
        clearTimeout(timer);
        resolve();
      }, { once: true });
    });
  while (!signal.aborted && session.access) {
    if (state.live !== 'unavailable') setLive('connecting');
    let response;
    try {
      response = await authed('console/events', { headers: { Accept: 'text/event-stream' }, signal });
    } catch (failure) {
      if (signal.aborted || failure.status === 401) return;
      response = null;
    }
    if (response && (response.status === 404 || response.status === 405)) {
      setLive('unavailable'); // this server has no live feed: the Refresh button stays
      return;
    }
    const type = response ? response.headers.get('Content-Type') || '' : '';
    if (response && response.ok && type.toLowerCase().startsWith('text/event-stream')) {
      failures = 0;
      opened += 1;
      document.body.dataset.liveOpened = String(opened);
      setLive('on');
      // listening again: catch up on what changed while no stream was open
      if (opened > 1) loadSent();
      const ended = await readEvents(response, signal);
      if (signal.aborted) return;
      if (ended === 'expired' && (await refreshTokens())) continue; // at once, new token
    } else {
      if (response) response.body?.cancel().catch(() => {});
      failures += 1;
      if (failures > 1) setLive('unavailable');
    }
    await wait(LIVE_RETRY_MS[Math.min(failures, LIVE_RETRY_MS.length - 1)]);
  }
}

/** Reads one event stream to its end; 'expired' when the server ended it for the token. */
async function readEvents(response, signal) {
  let ended = 'eof';
  const parser = new SseParser((type, data) => {
    if (type === 'reach') {
      try {
        const { id } = JSON.parse(data);
        if (id !== undefined && id !== null) reachChanged(String(id));
      } catch {
        // not JSON: ignored
      }
    } else if (type === 'close') {
      ended = data.includes('token_expired') ? 'expired' : 'closed';
    }
  });
  const reader = response.body.pipeThrough(new TextDecoderStream('utf-8')).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.feed(value);
    }
  } catch {
    // network error or abort: the loop decides
  } finally {
    if (signal.aborted) reader.cancel().catch(() => {});
  }
  return ended;
}

// ------------------------------------------------------------------ start

function wire() {
  // the officer's tools (tools.js): what they share of this page
  installTools({
    t: (key, values) => t(key, values),
    lang: () => state.lang,
    apiJson,
    authed,
    errorOf,
    el,
    say,
    show,
    clear,
    formatTime,
    confirmDialog,
    selectTab,
    draft,
    audience,
    refreshCompose: () => {
      renderPickers();
      renderCount();
      renderPreview();
    },
    flash: (text, kind = 'ok') => say($('flash'), text, kind),
  });
  installChanges({
    t: (key, values) => t(key, values),
    apiJson,
    say,
    show,
    formatNumber,
    confirmDialog,
    selected: () => state.announcements.find((a) => a.id === state.selected) || null,
    reload: async () => {
      const id = state.selected;
      await loadSent();
      if (id) await loadReach(id);
    },
    flash: (text, kind = 'ok') => say($('flash'), text, kind),
  });
  setupLanguage();
  $('login-form').addEventListener('submit', logIn);
  $('sso-start').addEventListener('click', startSso);
  $('logout').addEventListener('click', logOut);
  $('tab-compose').addEventListener('click', () => selectTab('compose'));
  $('tab-sent').addEventListener('click', () => {
    selectTab('sent');
    loadSent();
  });
  const form = $('compose-form');
  form.addEventListener('submit', send);
  form.addEventListener('input', (event) => {
    if (event.target.id === 'user-filter') renderPickers();
    if (event.target.hasAttribute('aria-invalid')) markInvalid(event.target, false);
    renderPreview();
    renderCount();
  });
  form.addEventListener('change', (event) => {
    if (event.target.name === 'audience') renderPickers();
    renderPreview();
    renderCount();
  });
  form.addEventListener('reset', () => setTimeout(afterReset, 0));
  $('platforms').addEventListener('change', (event) => {
    if (event.target.name !== 'platform') return;
    state.platform = event.target.value;
    renderPreview();
  });
  $('refresh').addEventListener('click', loadSent);
  $('directory-sync-now').addEventListener('click', syncDirectory);
  $('sent-search-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.page = newPage($('sent-search').value.trim());
    closeDetailsQuietly();
    loadSent();
  });
  $('sent-older').addEventListener('click', () => turnPage('older'));
  $('sent-newer').addEventListener('click', () => turnPage('newer'));
  $('clear').addEventListener('click', composeCleared);
  $('details-close').addEventListener('click', closeDetails);
  $('export').addEventListener('click', exportCsv);
  $('revoke').addEventListener('click', revoke);
  $('details').addEventListener('keydown', (event) => {
    if (event.key === 'Escape') closeDetails();
  });
  window.addEventListener('pagehide', () => stopLive());
  // back from the provider's page without signing in, from the back/forward cache: usable again
  window.addEventListener('pageshow', (event) => {
    if (event.persisted) {
      forgetPending();
      ssoBusy('');
    }
  });
}

async function start() {
  // an answer from the provider: out of the address bar (and the history) before anything else
  const callback = callbackOf(location.search);
  let pending = null;
  if (callback) {
    history.replaceState(null, '', redirectUri());
    pending = takePending();
    if (pending && pending.lang in LANGUAGES) state.lang = pending.lang;
  } else {
    forgetPending(); // a sign-in left unfinished (the person came back without signing in)
  }
  wire();
  applyLanguage(state.lang);
  state.auth = await loadAuthConfig();
  renderSignInWays();
  setView('login');
  if (state.auth.unreachable) say($('login-error'), t('serverUnreachable'));
  if (callback) await finishSso(callback, pending);
  else focusSignIn();
}

start();
