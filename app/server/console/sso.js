// Sign-in with the organisation's OpenID provider, for the publisher console (docs/console.md):
// the authorization code flow with PKCE (RFC 7636) run by the page itself, a public web client.
//
// The page leaves for the provider and comes back to its own address, so three values must
// outlive the page for that round trip: the PKCE verifier, the state and the nonce. They (and the
// page's language) are the only things kept in sessionStorage, under one key, and are removed
// the moment the answer comes back, whatever it is. No token is ever stored: the provider's
// answer lives in local variables until its ID token has been handed over (console.js then
// trades it at POST /auth/oidc for the server's own tokens, kept in memory as after a password
// login); the provider's access and refresh tokens are dropped unused.
//
// Nothing here touches the page: failures are SsoError with a `kind` the console puts in words.

const PENDING_KEY = 'tray-notifier.console.sso'; // sessionStorage: the round trip in flight
const PROVIDER_TIMEOUT_MS = 15000; // each call to the provider (discovery, token endpoint)
const RANDOM_BYTES = 32; // PKCE verifier (43 characters), state and nonce

export class SsoError extends Error {
  /** kind: discovery | provider | state | token | nonce; detail: the provider's own words. */
  constructor(kind, detail = '') {
    super(detail || kind);
    this.kind = kind;
    this.detail = detail;
    this.code = null; // the provider's error code (for example access_denied), when it gave one
  }
}

function base64url(bytes) {
  let text = '';
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

function fromBase64url(text) {
  const plain = text.replace(/-/g, '+').replace(/_/g, '/');
  const binary = atob(plain + '='.repeat((4 - (plain.length % 4)) % 4));
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function randomText() {
  return base64url(crypto.getRandomValues(new Uint8Array(RANDOM_BYTES)));
}

async function s256(verifier) {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

/** A call to the provider: never with cookies or a cached answer, never without a bound. */
async function providerFetch(url, init = {}) {
  return fetch(url, {
    ...init,
    credentials: 'omit',
    cache: 'no-store',
    signal: AbortSignal.timeout(PROVIDER_TIMEOUT_MS),
  });
}

/** The provider's discovery document; its issuer must be exactly the configured one. */
async function discover(issuer) {
  const url = `${issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  let metadata;
  try {
    const response = await providerFetch(url, { headers: { Accept: 'application/json' } });
    if (!response.ok) throw new SsoError('discovery', `HTTP ${response.status}`);
    metadata = await response.json();
  } catch (error) {
    if (error instanceof SsoError) throw error;
    throw new SsoError('discovery', error.name === 'TimeoutError' ? 'no answer' : 'not reachable');
  }
  if (!metadata || metadata.issuer !== issuer) {
    throw new SsoError('discovery', `it names the issuer ${JSON.stringify(metadata && metadata.issuer)}, not ${issuer}`);
  }
  for (const name of ['authorization_endpoint', 'token_endpoint']) {
    if (typeof metadata[name] !== 'string' || !/^https?:\/\//.test(metadata[name])) {
      throw new SsoError('discovery', `it has no ${name}`);
    }
  }
  return metadata;
}

/** The sign-in answer in `search` (the page's query), or null when it holds none. */
export function callbackOf(search) {
  const query = new URLSearchParams(search);
  if (!query.has('code') && !query.has('error') && !query.has('state')) return null;
  return {
    code: query.get('code'),
    state: query.get('state'),
    error: query.get('error'),
    errorDescription: query.get('error_description'),
  };
}

/** Forgets a round trip that never came back (the person went back instead of signing in). */
export function forgetPending() {
  sessionStorage.removeItem(PENDING_KEY);
}

/** The round trip this tab started, removed from storage as it is read (null: none). */
export function takePending() {
  const text = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  if (!text) return null;
  try {
    const pending = JSON.parse(text);
    return pending && typeof pending.state === 'string' ? pending : null;
  } catch {
    return null;
  }
}

/** The configured scopes the console asks for: openid always, offline_access never. */
function scopesFor(scopes) {
  const wanted = (Array.isArray(scopes) ? scopes : []).filter((s) => s !== 'offline_access');
  return [...new Set(['openid', ...wanted])].join(' ');
}

/**
 * Sends the page to the provider's sign-in: `oidc` is /auth/config's `oidc`, `redirectUri`
 * the console's own address, `lang` the language to come back in. Returns once the page is
 * navigating away; SsoError when the provider cannot be used.
 */
export async function startSignIn(oidc, { redirectUri, lang }) {
  const metadata = await discover(oidc.issuer);
  const verifier = randomText();
  const pending = { verifier, state: randomText(), nonce: randomText(), lang };
  const target = new URL(metadata.authorization_endpoint);
  const params = {
    response_type: 'code',
    client_id: oidc.console_client_id,
    redirect_uri: redirectUri,
    // not offline_access: the console drops the provider's tokens once it has the ID token, and
    // an unused refresh token would only keep an offline session open at the provider
    scope: scopesFor(oidc.scopes),
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: await s256(verifier),
    code_challenge_method: 'S256',
  };
  for (const [name, value] of Object.entries(params)) target.searchParams.set(name, value);
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  location.assign(target.href);
}

/** The claims of a JWT's payload (no signature check: the server verifies the token). */
function claimsOf(jwt) {
  const parts = typeof jwt === 'string' ? jwt.split('.') : [];
  if (parts.length !== 3) throw new SsoError('token', 'the answer holds no ID token');
  try {
    return JSON.parse(new TextDecoder().decode(fromBase64url(parts[1])));
  } catch {
    throw new SsoError('token', 'the ID token cannot be read');
  }
}

/**
 * Completes the sign-in the provider answered with `callback` (from callbackOf), against
 * `pending` (from takePending): checks the state, trades the code for tokens at the token
 * endpoint, checks the ID token's nonce. Returns {idToken, claims}; SsoError otherwise.
 */
export async function finishSignIn(oidc, callback, pending, { redirectUri }) {
  // the state first: an answer this tab did not ask for is refused before its words are shown
  if (!pending) throw new SsoError('state', 'not-started');
  if (callback.state !== pending.state) throw new SsoError('state', 'mismatch');
  if (callback.error) {
    const failure = new SsoError('provider', callback.errorDescription || callback.error);
    failure.code = callback.error;
    throw failure;
  }
  if (!callback.code) throw new SsoError('provider', 'no authorization code');
  const metadata = await discover(oidc.issuer);
  let answer;
  try {
    const response = await providerFetch(metadata.token_endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/x-www-form-urlencoded', Accept: 'application/json' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: callback.code,
        redirect_uri: redirectUri,
        client_id: oidc.console_client_id,
        code_verifier: pending.verifier,
      }),
    });
    answer = await response.json().catch(() => null);
    if (!response.ok) {
      const words = answer && (answer.error_description || answer.error);
      throw new SsoError('token', typeof words === 'string' ? words : `HTTP ${response.status}`);
    }
  } catch (error) {
    if (error instanceof SsoError) throw error;
    throw new SsoError('token', error.name === 'TimeoutError' ? 'no answer' : 'not reachable');
  }
  // only the ID token is kept; the provider's access and refresh tokens go out of scope here
  const idToken = answer && answer.id_token;
  const claims = claimsOf(idToken);
  if (typeof pending.nonce !== 'string' || claims.nonce !== pending.nonce) {
    throw new SsoError('nonce');
  }
  return { idToken, claims };
}
