// A real OpenID Connect provider for the test suite: oidc-provider 8.8.1 (panva), configured
// like an organisation's identity provider (Keycloak, Entra ID) as far as Tray Notifier sees it.
//
//   node tests/web/oidc_provider.mjs CONFIG.json
//
// CONFIG.json (written by tests/fixtures/oidc.py, mode 0600):
//   port      0 for a free port; the same port again on a restart
//   keys      a JWKS with ONE private RSA key (kid, alg RS256, use sig): the ID token signing key
//   users     [{sub, username, password, email, name, groups: [..] | null}]
//   clients   client metadata (snake_case), served through the adapter below so that redirect
//             URIs can be added while running (POST /_test/redirect)
//   ttl       optional {IdToken: seconds, AccessToken: ..., ...} overrides
//
// Listens on 127.0.0.1 only; prints `listening on http://127.0.0.1:PORT` on stdout once ready.
// The issuer is exactly that address (no trailing slash). Everything is in memory: a restart
// forgets sessions, codes and tokens. SIGTERM (or SIGINT) ends it at once with exit code 0.
//
// Pages (plain HTML, no external resources, stable ids for tests/fixtures/oidc.py):
//   /interaction/:uid          the sign-in form (#op-login, #op-username, #op-password), or
//                              the consent step, which is granted at once without a page
//   /device                    the user-code form of the device flow (oidc-provider's form
//                              id="op.deviceInputForm"), then its confirmation
//                              (id="op.deviceConfirmForm"), then #op-device-success
//   any error                  #op-error with the error and its description

import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';

import Provider, { interactionPolicy } from 'oidc-provider';
// oidc-provider does not export its in-memory adapter; the version is pinned exactly in
// package.json, so the deep import is stable
import MemoryAdapter from 'oidc-provider/lib/adapters/memory_adapter.js';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const users = config.users;

// ---------------------------------------------------------------- clients, changeable at run time

// client_id -> metadata; every client is looked up through the adapter (oidc-provider's way for
// clients that are not static), so a redirect URI added here is in effect at the next request:
// oidc-provider caches adapter clients by a hash of their metadata
const clients = new Map(config.clients.map((c) => [c.client_id, { ...c }]));

class TestAdapter {
  constructor(model) {
    this.model = model;
    this.memory = new MemoryAdapter(model);
  }

  async find(id) {
    if (this.model === 'Client') {
      const metadata = clients.get(id);
      // a client with no redirect URI yet (the console before the companion server started)
      // would fail oidc-provider's validation: it is unknown until one is added
      if (!metadata || !metadata.redirect_uris?.length) return undefined;
      return structuredClone(metadata);
    }
    return this.memory.find(id);
  }

  upsert(...args) { return this.memory.upsert(...args); }

  findByUserCode(...args) { return this.memory.findByUserCode(...args); }

  findByUid(...args) { return this.memory.findByUid(...args); }

  consume(...args) { return this.memory.consume(...args); }

  destroy(...args) { return this.memory.destroy(...args); }

  revokeByGrantId(...args) { return this.memory.revokeByGrantId(...args); }
}

// ---------------------------------------------------------------- accounts

function findAccount(ctx, sub) {
  const user = users.find((u) => u.sub === sub);
  if (!user) return undefined;
  return {
    accountId: sub,
    async claims() {
      // oidc-provider keeps only the claims of the granted scopes (see `claims` below)
      const claims = {
        sub,
        preferred_username: user.username,
        name: user.name,
        email: user.email,
      };
      // a person with no groups gets no groups claim at all (Entra ID and Keycloak do the same)
      if (user.groups !== null) claims.groups = user.groups;
      return claims;
    },
  };
}

function sameSecret(given, expected) {
  const a = Buffer.from(given, 'utf8');
  const b = Buffer.from(expected, 'utf8');
  return a.length === b.length && timingSafeEqual(a, b);
}

// the login name is the username or the email (two people may share a username: "sam");
// among the people it names, the one whose password it is
function authenticate(login, password) {
  const wanted = login.trim().toLowerCase();
  return users.find((u) => (u.username.toLowerCase() === wanted
    || u.email.toLowerCase() === wanted) && sameSecret(password, u.password));
}

// ---------------------------------------------------------------- HTML

function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${esc(title)} · test identity provider</title>
<style>body{font-family:sans-serif;max-width:22em;margin:2em auto}label,input,button{display:block;width:100%;margin:.3em 0}.err{color:#b00}</style>
</head>
<body>
${body}
</body>
</html>`;
}

function loginPage(uid, clientId, login, error) {
  return page('Sign in', `<h1>Sign in</h1>
<p>to <strong id="op-client">${esc(clientId)}</strong></p>
${error ? `<p id="op-login-error" class="err" role="alert">${esc(error)}</p>` : ''}
<form id="op-login" method="post" action="/interaction/${esc(uid)}/login" autocomplete="off">
  <label for="op-username">Username or email</label>
  <input id="op-username" name="username" value="${esc(login)}" autofocus>
  <label for="op-password">Password</label>
  <input id="op-password" name="password" type="password">
  <button id="op-submit" type="submit">Sign in</button>
</form>
<p><a id="op-abort" href="/interaction/${esc(uid)}/abort">Cancel</a></p>`);
}

function errorPage(out) {
  const rows = Object.entries(out)
    .map(([key, value]) => `<p><strong>${esc(key)}</strong>: <span class="${esc(key)}">${esc(value)}</span></p>`)
    .join('\n');
  return page('Error', `<h1 id="op-error">Sign-in error</h1>\n${rows}`);
}

// ---------------------------------------------------------------- the provider

// listen first: the issuer names the port, and on a restart the port is the old one. Requests
// that come before the provider is built are answered 503.
let ready = false;
const listening = http.createServer((req, res) => {
  if (ready) {
    handle(req, res);
  } else {
    send(res, 503, 'text/plain', 'starting\n');
  }
});
await new Promise((resolve, reject) => {
  listening.once('error', reject);
  listening.listen(config.port, '127.0.0.1', resolve);
});
const { port } = listening.address();
const issuer = `http://127.0.0.1:${port}`;

const ttl = {
  // the library's defaults, spelled out (oidc-provider prints a notice for each default
  // function it calls), then the test's overrides
  AccessToken: 3600,
  AuthorizationCode: 60,
  DeviceCode: 600,
  IdToken: 3600,
  Interaction: 3600,
  RefreshToken: 14 * 24 * 3600,
  Session: 14 * 24 * 3600,
  Grant: 14 * 24 * 3600,
  ...(config.ttl ?? {}),
};

// every authorization shows the sign-in form, even when the browser still holds a session of
// this provider: the tests' Chromium lives for the whole run, and a test that signs in bob after
// alice must see bob's sign-in. prompt=none (a silent renewal) still uses the session.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'test_always_sign_in',
  'the test provider asks for the password at each authorization',
  (ctx) => (ctx.oidc.prompts.has('none') || ctx.oidc.result?.login
    ? interactionPolicy.Check.NO_NEED_TO_PROMPT
    : interactionPolicy.Check.REQUEST_PROMPT),
));

const provider = new Provider(issuer, {
  adapter: TestAdapter,
  jwks: config.keys,
  findAccount,
  scopes: ['openid', 'profile', 'email', 'offline_access'],
  // which claims each scope releases; groups come with openid itself: the organisation sets it
  // up as a claim at the provider, not as a scope the client must ask for
  claims: {
    openid: ['sub', 'groups'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
  },
  // the scope claims (preferred_username, name, email, groups) in the ID token itself, as
  // Keycloak and Entra ID put them, not only at the userinfo endpoint (OIDC Core's strict reading)
  conformIdTokenClaims: false,
  // PKCE with S256 for every client (the library's default; spelled out as the contract)
  pkce: { methods: ['S256'], required: () => true },
  features: {
    // our own sign-in form checks the password; the development pages accept anyone
    devInteractions: { enabled: false },
    // RFC 8628, with plain pages: the default ones load Google fonts (no network here)
    deviceFlow: {
      enabled: true,
      userCodeInputSource(ctx, form, out, err) {
        const msg = err
          ? `<p id="op-device-error" class="err" role="alert">${esc(
            err.userCode || err.name === 'NoCodeError' ? 'The code you entered is incorrect. Try again.'
              : err.name === 'AbortedError' ? 'The sign-in was interrupted.'
                : `There was an error: ${out?.error_description ?? out?.error ?? err.message}`,
          )}</p>`
          : '<p>Enter the code displayed on your device.</p>';
        ctx.body = page('Device sign-in', `<h1>Device sign-in</h1>\n${msg}\n${form}
<button id="op-device-continue" type="submit" form="op.deviceInputForm">Continue</button>`);
      },
      userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
        ctx.body = page('Confirm device', `<h1>Confirm device</h1>
<p><strong id="op-client">${esc(client.clientName || client.clientId)}</strong> shows the code
<code id="op-user-code">${esc(userCode)}</code></p>
${form}
<button id="op-device-confirm" type="submit" form="op.deviceConfirmForm">Continue</button>
<button id="op-device-abort" type="submit" form="op.deviceConfirmForm" name="abort" value="yes">Abort</button>`);
      },
      successSource(ctx) {
        ctx.body = page('Device signed in', `<h1 id="op-device-success">Device signed in</h1>
<p>You can close this page and go back to <strong id="op-client">${esc(ctx.oidc.client.clientId)}</strong>.</p>`);
      },
    },
    // RFC 7009: the tray revokes its refresh token at logout
    revocation: { enabled: true },
  },
  interactions: {
    policy,
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  // CORS at the token, revocation and userinfo endpoints: the origins of the client's own
  // redirect URIs (the console exchanges its code with fetch from the companion server's page)
  clientBasedCORS(ctx, origin, client) {
    return client.redirectUris.some((uri) => new URL(uri).origin === origin);
  },
  cookies: {
    keys: [randomBytes(32).toString('hex')],
    // Chromium refuses SameSite=None cookies that are not Secure, and this is plain http on
    // loopback: the device flow's session (its form's xsrf check) needs the long cookie to stay
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },
  ttl,
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = errorPage(out);
  },
});

// RFC 8628's default polling interval is 5 s when the answer names none (and oidc-provider
// names none): 1 s keeps the device-flow tests short
provider.use(async (ctx, next) => {
  await next();
  if (ctx.oidc?.route === 'device_authorization' && ctx.status === 200 && ctx.body?.device_code) {
    ctx.body.interval = 1;
  }
});

// refuse at start what oidc-provider would refuse at the first request, saying why
for (const metadata of clients.values()) {
  try {
    if (metadata.redirect_uris?.length) await provider.Client.validate(metadata);
  } catch (err) {
    process.stderr.write(`client ${metadata.client_id}: ${err.message}: ${err.error_description}\n`);
    process.exit(1);
  }
}

// ---------------------------------------------------------------- routes outside oidc-provider

const MAX_BODY = 64 * 1024;

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) throw new Error('request body too large');
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

function send(res, status, type, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', type);
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

// GET /interaction/:uid: the sign-in form, or the consent granted at once
async function showInteraction(req, res) {
  const { uid, prompt, params, grantId, session } = await provider.interactionDetails(req, res);
  if (prompt.name === 'login') {
    send(res, 200, 'text/html; charset=utf-8', loginPage(uid, params.client_id, prompt.details.login_hint ?? '', null));
    return;
  }
  if (prompt.name !== 'consent') {
    throw new Error(`unexpected prompt ${prompt.name}`);
  }
  // consent: grant what is asked (openid profile email offline_access, the claims asked for),
  // as an organisation's provider does for its own applications. oidc-provider asks native
  // clients (the tray) for consent at every authorization; this answers it without a page.
  const grant = grantId
    ? await provider.Grant.find(grantId)
    : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
  const { details } = prompt;
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [indicator, scopes] of Object.entries(details.missingResourceScopes ?? {})) {
    grant.addResourceScope(indicator, scopes.join(' '));
  }
  await provider.interactionFinished(req, res, { consent: { grantId: await grant.save() } }, {
    mergeWithLastSubmission: true,
  });
}

// POST /interaction/:uid/login: the password checked; the form again, with why, when wrong
async function submitLogin(req, res) {
  const { uid, prompt, params } = await provider.interactionDetails(req, res);
  if (prompt.name !== 'login') throw new Error('this sign-in was already completed');
  const form = new URLSearchParams(await readBody(req));
  const login = form.get('username') ?? '';
  const user = authenticate(login, form.get('password') ?? '');
  if (!user) {
    send(res, 200, 'text/html; charset=utf-8', loginPage(uid, params.client_id, login, 'Wrong username or password.'));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: user.sub } }, {
    mergeWithLastSubmission: false,
  });
}

async function abortInteraction(req, res) {
  await provider.interactionFinished(req, res, {
    error: 'access_denied',
    error_description: 'End-User aborted interaction',
  }, { mergeWithLastSubmission: false });
}

// POST /_test/redirect {"client_id", "redirect_uri"}: one more redirect URI for a client (the
// console's is only known once the companion server listens). Test-only, loopback-only.
async function addRedirect(req, res) {
  let client;
  let uri;
  try {
    ({ client_id: client, redirect_uri: uri } = JSON.parse(await readBody(req)));
  } catch {
    send(res, 400, 'text/plain', 'a JSON body {"client_id", "redirect_uri"} is needed\n');
    return;
  }
  const metadata = clients.get(client);
  if (!metadata || typeof uri !== 'string') {
    send(res, 400, 'text/plain', `no client ${client}, or no redirect_uri\n`);
    return;
  }
  const candidate = { ...metadata, redirect_uris: [...new Set([...(metadata.redirect_uris ?? []), uri])] };
  try {
    await provider.Client.validate(candidate);
  } catch (err) {
    send(res, 400, 'text/plain', `${err.message}: ${err.error_description ?? ''}\n`);
    return;
  }
  clients.set(client, candidate);
  res.statusCode = 204;
  res.end();
}

// Keycloak and Entra ID issue a refresh token for the offline_access scope; oidc-provider follows
// OIDC Core to the letter and drops offline_access unless the request also says prompt=consent.
// Add it here (consent is granted without a page anyway), unless the request is a silent one.
function offlineAccessAsElsewhere(req) {
  const url = new URL(req.url, issuer);
  const scope = (url.searchParams.get('scope') ?? '').split(' ');
  const prompt = (url.searchParams.get('prompt') ?? '').split(' ').filter(Boolean);
  if (!scope.includes('offline_access') || prompt.includes('none') || prompt.includes('consent')) return;
  url.searchParams.set('prompt', [...prompt, 'consent'].join(' '));
  req.url = `${url.pathname}?${url.searchParams}`;
}

const providerCallback = provider.callback();

async function handle(req, res) {
  try {
    const { pathname } = new URL(req.url, issuer);
    const interaction = /^\/interaction\/([A-Za-z0-9_-]+)(\/login|\/abort)?$/.exec(pathname);
    if (interaction && req.method === 'GET' && !interaction[2]) {
      await showInteraction(req, res);
    } else if (interaction && req.method === 'POST' && interaction[2] === '/login') {
      await submitLogin(req, res);
    } else if (interaction && req.method === 'GET' && interaction[2] === '/abort') {
      await abortInteraction(req, res);
    } else if (pathname === '/_test/redirect' && req.method === 'POST') {
      await addRedirect(req, res);
    } else {
      if (pathname === '/auth' && req.method === 'GET') offlineAccessAsElsewhere(req);
      providerCallback(req, res);
    }
  } catch (err) {
    // an interaction that expired, was finished already, or has no cookie in this browser
    if (!res.headersSent) {
      send(res, 400, 'text/html; charset=utf-8', errorPage({
        error: err.error ?? 'invalid_request',
        error_description: err.error_description ?? err.message,
      }));
    }
  }
}

function stop() {
  listening.close();
  listening.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);

ready = true;
process.stdout.write(`listening on ${issuer}\n`);
