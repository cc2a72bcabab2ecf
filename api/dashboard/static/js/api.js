// api.js: the one way the dashboard talks to the server, through the same
// public JSON API agents use. It holds the session (the access token lives
// in sessionStorage, never in a URL or a log), turns error answers into
// ApiError with a readable message, and waits out 429s.

const TOKEN_KEY = 'cryptovps.token';
const EMAIL_KEY = 'cryptovps.email';

export class ApiError extends Error {
  constructor(status, code, message, details, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.details = details || null;
    this.retryAfter = retryAfter;
  }
}

// Listeners told when the token stops working (expired or refused).
const expiredListeners = new Set();

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  // The email outlives the token, so that logging in again after an expiry
  // only needs the password.
  get email() {
    return sessionStorage.getItem(EMAIL_KEY) || '';
  },
  start(token, email) {
    sessionStorage.setItem(TOKEN_KEY, token);
    sessionStorage.setItem(EMAIL_KEY, email);
  },
  end() {
    sessionStorage.removeItem(TOKEN_KEY);
  },
  onExpired(fn) {
    expiredListeners.add(fn);
  },
};

// Rate-limit bookkeeping: after a 429 every request waits until the time
// the server gave, instead of adding to the pile.
let pausedUntil = 0;

export function pausedFor() {
  return Math.max(0, pausedUntil - Date.now());
}

// request sends one API call. Options: body (sent as JSON), idempotencyKey,
// auth (default true: send the token).
export async function request(method, path, { body, idempotencyKey, auth = true, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (idempotencyKey) headers['Idempotency-Key'] = idempotencyKey;
  const token = session.token;
  if (auth && token) headers.Authorization = 'Bearer ' + token;
  const wait = pausedFor();
  if (wait > 0) await new Promise((r) => setTimeout(r, wait));
  let res;
  try {
    res = await fetch(path, {
      method, headers, signal,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: 'no-store',
      credentials: 'omit',
      redirect: 'error',
    });
  } catch (err) {
    if (err.name === 'AbortError') throw err;
    throw new ApiError(0, 'network', 'The service did not answer. Check your connection; retrying shortly.');
  }
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  const retryAfter = Number(res.headers.get('Retry-After')) || 0;
  if (res.status === 429) pausedUntil = Date.now() + Math.max(1, retryAfter) * 1000;
  const err = new ApiError(res.status, data?.code || 'http_' + res.status, data?.error || res.statusText || 'Request failed', data?.details, retryAfter);
  if (res.status === 401 && auth && token) {
    session.end();
    for (const fn of expiredListeners) fn(err);
  }
  throw err;
}

export const api = {
  get: (path, opts) => request('GET', path, opts),
  post: (path, body, opts) => request('POST', path, { ...opts, body: body ?? {} }),
  del: (path, opts) => request('DELETE', path, opts),
};

// explain turns an ApiError into a sentence for a person, and says which
// next step helps: {message, action: {label, href}}.
export function explain(err, context = {}) {
  if (!(err instanceof ApiError)) return { message: err?.message || String(err) };
  switch (err.status) {
    case 0:
      return { message: err.message };
    case 400: {
      const d = err.details ? Object.entries(err.details).map(([k, v]) => `${k}: ${v}`).join('; ') : '';
      return { message: d ? `${err.message} (${d})` : err.message };
    }
    case 401:
      return { message: context.login ? 'Wrong email or password.' : 'Your session has ended. Log in again to continue.' };
    case 402:
      return { message: 'Your balance does not cover this. ' + err.message, action: { label: 'Top up', href: '#/topup' } };
    case 403:
      if (err.code === 'server_limit') {
        return {
          message: `You have reached your server limit${context.limit ? ` of ${context.limit} live servers` : ''}: destroy a server you no longer need before deploying another. (${err.message})`,
          action: { label: 'Your servers', href: '#/servers' },
        };
      }
      if (err.code === 'account_suspended') {
        return { message: 'Your account is on hold: you can look around, but not change anything. ' + err.message };
      }
      return { message: err.message };
    case 404:
      return { message: 'Not found: it may have been deleted in the meantime.' };
    case 409:
      return { message: err.message };
    case 429:
      return { message: `Too many requests: waiting ${err.retryAfter || 'a few'} seconds before trying again.` };
    default:
      if (err.status >= 500) return { message: 'The service had a problem (' + err.status + '). Please try again in a moment.' };
      return { message: err.message };
  }
}

// newKey is an Idempotency-Key: one per form submission, reused when the
// same submission is retried, so a retry never deploys twice.
// (getRandomValues works on plain http too, unlike randomUUID.)
export function newKey() {
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('');
}
