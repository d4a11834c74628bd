// Correct and Remind on a sent announcement (docs/console.md, docs/api.md "Corrections and
// reminders"). Loaded by console.js, which hands this module what it shares (installChanges):
// the authorised calls, the translator and the page's helpers. The same rules as console.js:
// tokens only in console.js's memory, every text from the server or the user on the page with
// textContent or a form field's value, never as markup; no inline script or style.
//
// API: PATCH /announcements/{id} {title?, body?, url?, priority?, expires_at?} (only what
// changed is sent); GET /announcements/{id}/reach (the counts shown before a reminder);
// POST /announcements/{id}/remind {"who": "unread"|"unacknowledged"} -> {"reminded": n}.

const $ = (id) => document.getElementById(id);

let ctx = null; // what console.js shares (installChanges)
let editing = null; // the announcement the correction form holds

export function installChanges(context) {
  ctx = context;
  $('correct').addEventListener('click', openCorrection);
  $('remind').addEventListener('click', remind);
  $('correct-form').addEventListener('submit', (event) => {
    event.preventDefault();
    sendCorrection();
  });
  $('correct-cancel').addEventListener('click', () => $('correct-dialog').close());
}

/** The details view's buttons: hidden for a withdrawn one; Remind says whom it would reach. */
export function renderChanges(announcement, reach, withdrawn) {
  ctx.show($('correct'), !withdrawn);
  ctx.show($('remind'), !withdrawn);
  const who = whoToRemind(announcement);
  const count = reach ? reach[who] : undefined;
  $('remind').textContent =
    typeof count === 'number' ? ctx.t(who === 'unread' ? 'remindUnread' : 'remindUnacked', { count: ctx.formatNumber(count) }) : ctx.t('remind');
  $('remind').dataset.count = typeof count === 'number' ? String(count) : '';
}

/** Urgent ones ask to be acknowledged: those who have not (also those who have not read it). */
function whoToRemind(announcement) {
  return announcement.priority === 'urgent' ? 'unacknowledged' : 'unread';
}

// ------------------------------------------------------------------ correct

function localInput(iso) {
  // an ISO time as a datetime-local field's value (local time, to the minute)
  if (!iso) return '';
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return '';
  const pad = (n) => String(n).padStart(2, '0');
  return `${when.getFullYear()}-${pad(when.getMonth() + 1)}-${pad(when.getDate())}T${pad(when.getHours())}:${pad(when.getMinutes())}`;
}

function openCorrection() {
  const announcement = ctx.selected();
  if (!announcement) return;
  editing = announcement;
  $('c-title').value = announcement.title ?? '';
  $('c-body').value = announcement.body ?? '';
  $('c-priority').value = announcement.priority ?? 'normal';
  $('c-link').value = announcement.url ?? '';
  $('c-expiry').value = localInput(announcement.expires_at);
  ctx.say($('correct-error'), '');
  $('correct-dialog').showModal();
  $('c-title').focus();
}

/** What the form changes of ``editing``: only those fields (a PATCH). */
function changes() {
  const out = {};
  const title = $('c-title').value.trim();
  if (title !== editing.title) out.title = title;
  if ($('c-body').value !== editing.body) out.body = $('c-body').value;
  if ($('c-priority').value !== editing.priority) out.priority = $('c-priority').value;
  const url = $('c-link').value.trim() || null;
  if (url !== (editing.url ?? null)) out.url = url;
  const expiry = $('c-expiry').value;
  if (expiry !== localInput(editing.expires_at)) out.expires_at = expiry ? new Date(expiry).toISOString() : null;
  return out;
}

async function sendCorrection() {
  if (!editing) return;
  const error = $('correct-error');
  const fields = changes();
  if (!Object.keys(fields).length) {
    ctx.say(error, ctx.t('correctNothing'), 'error');
    return;
  }
  if ('title' in fields && !fields.title) {
    ctx.say(error, ctx.t('missingTitle'), 'error');
    $('c-title').focus();
    return;
  }
  const announcement = editing;
  const ok = await ctx.confirmDialog({
    heading: ctx.t('correctConfirmHeading'),
    lines: [ctx.t('correctConfirmText', { title: announcement.title })],
    ok: ctx.t('correctConfirm'),
  });
  if (!ok) return;
  try {
    const corrected = await ctx.apiJson(`announcements/${encodeURIComponent(announcement.id)}`, {
      method: 'PATCH',
      body: fields,
    });
    $('correct-dialog').close();
    editing = null;
    ctx.flash(ctx.t('corrected', { title: corrected.title, revision: String(corrected.revision) }));
    document.body.dataset.corrected = `${corrected.id}:${corrected.revision}`;
    await ctx.reload();
  } catch (failure) {
    if (failure.status !== 401) ctx.say(error, ctx.t('correctFailed', { message: failure.message }), 'error');
  }
}

// ------------------------------------------------------------------ remind

async function remind() {
  const announcement = ctx.selected();
  if (!announcement) return;
  const status = $('details-status');
  const who = whoToRemind(announcement);
  let reach;
  try {
    // the figures now, not those of a minute ago: the count shown is the count reminded
    reach = await ctx.apiJson(`announcements/${encodeURIComponent(announcement.id)}/reach`);
  } catch (failure) {
    if (failure.status !== 401) ctx.say(status, ctx.t('remindFailed', { message: failure.message }), 'error');
    return;
  }
  const count = reach[who] || 0;
  if (!count) {
    ctx.say(status, ctx.t(who === 'unread' ? 'remindNobodyUnread' : 'remindNobodyUnacked'), 'ok');
    return;
  }
  const ok = await ctx.confirmDialog({
    heading: ctx.t('remindHeading'),
    lines: [ctx.t(who === 'unread' ? 'remindTextUnread' : 'remindTextUnacked', { count: ctx.formatNumber(count), title: announcement.title })],
    ok: ctx.t('remindConfirm', { count: ctx.formatNumber(count) }),
  });
  if (!ok) return;
  try {
    const answer = await ctx.apiJson(`announcements/${encodeURIComponent(announcement.id)}/remind`, {
      method: 'POST',
      body: { who },
    });
    ctx.flash(ctx.t('reminded', { count: ctx.formatNumber(answer.reminded), title: announcement.title }));
    document.body.dataset.reminded = `${announcement.id}:${answer.reminded}`;
    await ctx.reload();
  } catch (failure) {
    if (failure.status !== 401) ctx.say(status, ctx.t('remindFailed', { message: failure.message }), 'error');
  }
}
