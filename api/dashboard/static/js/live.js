// live.js: keeps what is on screen current without hammering the API.
// An account may make 100 requests a minute, and the dashboard shares that
// budget with the person's own agents, so it polls only what is on screen,
// fast (every 5 s) only while something is changing, slowly otherwise,
// not at all in a hidden tab, and backs off on errors and 429s. Where the
// server has the account event stream (GET /events, found in
// /openapi.json), changes arrive from it and polling drops to a slow check.

import { api, session, pausedFor } from './api.js';

const FAST = 5_000;
const SLOW = 60_000;
const MAX_BACKOFF = 120_000;

const listeners = new Set();

// onChange registers fn(kind, data) for every change heard of: from the
// event stream, from a sandbox clock move, or from the dashboard's own
// actions (kind "any" means "everything may have changed").
export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function changed(kind = 'any', data = null) {
  for (const fn of [...listeners]) fn(kind, data);
}

// Poller runs task() now and again after each run: task returns true while
// something it shows is in transition (PROVISIONING, PENDING, ...).
export class Poller {
  constructor(task) {
    this.task = task;
    this.timer = null;
    this.running = false;
    this.stopped = false;
    this.failures = 0;
    this.busy = false;
    this.off = onChange(() => this.now());
    this.onVisible = () => {
      if (document.visibilityState === 'visible') this.now();
    };
    document.addEventListener('visibilitychange', this.onVisible);
  }

  // now runs the task at once (or right after the current run).
  now() {
    if (this.stopped) return;
    clearTimeout(this.timer);
    if (this.running) {
      this.again = true;
      return;
    }
    this.run();
  }

  async run() {
    this.running = true;
    this.again = false;
    try {
      this.busy = Boolean(await this.task());
      this.failures = 0;
    } catch (err) {
      this.failures++;
      if (err?.status === 401) this.stopped = true; // the session is over
    } finally {
      this.running = false;
    }
    if (this.stopped) return;
    if (this.again) return this.run();
    this.schedule();
  }

  schedule() {
    let delay = this.busy && !stream.connected ? FAST : SLOW;
    if (this.failures > 0) delay = Math.min(MAX_BACKOFF, FAST * 2 ** this.failures);
    delay = Math.max(delay, pausedFor());
    this.timer = setTimeout(() => {
      // A hidden tab is not polled; coming back refreshes at once.
      if (document.visibilityState === 'hidden') return;
      this.run();
    }, delay);
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    this.off();
    document.removeEventListener('visibilitychange', this.onVisible);
  }
}

// The account event stream, when the server has one. EventSource cannot
// send an Authorization header, so the stream is read with fetch.
export const stream = { connected: false, controller: null };

export async function startStream(features) {
  if (!features.events || stream.controller) return;
  const controller = new AbortController();
  stream.controller = controller;
  let lastId = '';
  let failures = 0;
  while (!controller.signal.aborted && session.token) {
    try {
      const headers = { Accept: 'text/event-stream', Authorization: 'Bearer ' + session.token };
      if (lastId) headers['Last-Event-ID'] = lastId;
      const res = await fetch('/events', { headers, signal: controller.signal, cache: 'no-store', credentials: 'omit' });
      if (!res.ok || !res.body) throw new Error('stream answered ' + res.status);
      stream.connected = true;
      failures = 0;
      changed(); // catch up on what happened while not connected
      await readEvents(res.body, (ev) => {
        if (ev.id) lastId = ev.id;
        let data = null;
        try {
          data = JSON.parse(ev.data);
        } catch {
          data = null;
        }
        changed(ev.event || 'message', data);
      });
    } catch (err) {
      if (controller.signal.aborted) break;
      failures++;
    }
    stream.connected = false;
    await new Promise((r) => setTimeout(r, Math.min(MAX_BACKOFF, 2_000 * 2 ** failures)));
  }
  stream.connected = false;
  stream.controller = null;
}

export function stopStream() {
  stream.controller?.abort();
  stream.controller = null;
  stream.connected = false;
}

// readEvents parses a text/event-stream body (the WHATWG format: "field:
// value" lines, events ended by a blank line).
export async function readEvents(body, onEvent) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  let ev = { data: [] };
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
      if (line === '') {
        if (ev.data.length) onEvent({ id: ev.id, event: ev.event, data: ev.data.join('\n') });
        ev = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
      if (field === 'data') ev.data.push(val);
      else if (field === 'event') ev.event = val;
      else if (field === 'id') ev.id = val;
    }
  }
}

// detectFeatures reads the public OpenAPI document once to learn which
// optional parts of the API this server has, so that nothing is probed by
// trial and error (a probe's 404 would be noise in every log).
export async function detectFeatures() {
  const f = { events: false, currencies: ['BTC', 'ETH', 'LTC', 'USDT', 'USDC', 'XMR'] };
  try {
    const doc = await api.get('/openapi.json', { auth: false });
    f.events = Boolean(doc?.paths?.['/events']?.get);
    const cur = doc?.components?.schemas?.TopupRequest?.properties?.currency?.enum;
    if (Array.isArray(cur) && cur.length) f.currencies = cur;
  } catch {
    // Without the document the dashboard simply polls.
  }
  return f;
}
