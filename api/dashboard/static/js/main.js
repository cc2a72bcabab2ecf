// main.js: starts the dashboard: reads the deployment mode the server put
// in the page, learns the API's optional features, and routes between the
// views by the URL fragment (#/servers, ...). The fragment never carries a
// token or anything secret.

import { h, replace, text } from './dom.js';
import { api, session } from './api.js';
import { changed, detectFeatures, startStream, stopStream } from './live.js';
import { notifyError } from './ui.js';
import * as auth from './views/auth.js';
import * as overview from './views/overview.js';
import * as servers from './views/servers.js';
import * as deploy from './views/deploy.js';
import * as topup from './views/topup.js';
import * as backups from './views/backups.js';
import * as ledger from './views/ledger.js';

const VIEWS = { overview, servers, deploy, topup, backups, ledger };
const NAV = [
  ['overview', 'Overview'], ['servers', 'Servers'], ['deploy', 'Deploy'],
  ['topup', 'Top up'], ['backups', 'Backups'], ['ledger', 'Ledger'],
];

const ctx = {
  sandbox: document.querySelector('meta[name="cryptovps-mode"]')?.content === 'sandbox',
  features: { events: false },
  // The catalog never changes while the page is open: fetched once.
  catalog: null,
  async getCatalog() {
    if (!this.catalog) {
      this.catalog = Promise.all([api.get('/plans', { auth: false }), api.get('/regions', { auth: false })])
        .then(([p, r]) => ({ plans: p.plans, regions: r.regions }))
        .catch((err) => {
          this.catalog = null;
          throw err;
        });
    }
    return this.catalog;
  },
  me: null,
  // flash is a message for the next view (e.g. "session expired").
  flash: null,
};

let current = null; // the mounted view's cleanup
let firstRoute = true;

function routeName() {
  return location.hash.replace(/^#\/?/, '').split(/[/?]/)[0] || 'overview';
}

function route() {
  if (current) current();
  current = null;
  const main = document.getElementById('main');
  let name = routeName();
  if (!session.token) {
    if (name !== 'register') name = 'login';
    renderShell(null);
    current = auth.render(main, ctx, name, onLoggedIn) || null;
  } else {
    if (!VIEWS[name]) name = 'overview';
    renderShell(name);
    current = VIEWS[name].render(main, ctx) || null;
  }
  // A screen reader hears the new page; sighted keyboard users start there.
  if (!firstRoute) main.querySelector('h1')?.focus();
  firstRoute = false;
}

function onLoggedIn(user) {
  ctx.me = user;
  ctx.flash = null;
  const want = routeName();
  if (!VIEWS[want]) location.hash = '#/overview';
  else route();
  startStream(ctx.features);
  clock.refresh();
}

function renderShell(active) {
  const nav = document.getElementById('nav');
  const account = document.getElementById('account');
  if (!active) {
    nav.replaceChildren();
    replace(account);
  } else {
    if (!nav.firstChild) {
      for (const [id, label] of NAV) nav.append(h('a', { href: '#/' + id, dataset: { view: id } }, label));
    }
    for (const a of nav.children) {
      if (a.dataset.view === active) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (!account.firstChild) {
      replace(account,
        h('span', { class: 'email', title: session.email }, session.email),
        h('button', { class: 'btn small', type: 'button', onclick: logOut }, 'Log out'));
    }
  }
  clock.enable(Boolean(active));
  const title = NAV.find(([id]) => id === active)?.[1];
  document.title = title ? `${title} · CryptoVPS` : 'CryptoVPS';
}

function logOut() {
  session.end();
  stopStream();
  ctx.me = null;
  ctx.flash = { kind: 'info', message: 'You are logged out.' };
  location.hash = '#/login';
  route();
}

// The sandbox clock: shown in the banner with buttons to move it forward,
// so a person can watch a deploy finish or an hour be billed without
// waiting. Moving it is an ordinary API call (POST /sandbox/clock/advance).
const clock = {
  el: null,
  base: null, // {server: Date, local: ms} from the last answer
  buttons: [],
  build() {
    const banner = document.getElementById('sandbox-banner');
    if (!banner) return;
    this.time = h('time', { class: 'num' }, '—');
    this.date = h('span', { class: 'date' });
    const step = (label, seconds, hint) => h('button', {
      class: 'btn', type: 'button', title: hint, 'aria-label': `Move the sandbox clock forward ${hint}`,
      onclick: () => this.advance(seconds),
    }, label);
    this.buttons = [
      step('+1 min', 60, 'by one minute'),
      step('+5 min', 300, 'by five minutes'),
      step('+1 h', 3600, 'by one hour (bills an hour; your session ends after 15 minutes of clock time)'),
    ];
    this.el = h('span', { class: 'sandbox-clock' }, h('span', {}, 'Clock ', this.date, this.time), ...this.buttons);
    banner.append(this.el);
    setInterval(() => this.show(), 15_000);
  },
  enable(on) {
    for (const b of this.buttons) b.disabled = !on;
  },
  async refresh() {
    if (!this.el) return;
    try {
      const health = await api.get('/healthz', { auth: false });
      this.set(health.now);
    } catch {
      // The clock is a convenience: the next refresh tries again.
    }
  },
  set(now) {
    this.base = { server: new Date(now).getTime(), local: Date.now() };
    this.show();
  },
  show() {
    if (!this.base || !this.time) return;
    const iso = new Date(this.base.server + Date.now() - this.base.local).toISOString();
    this.time.setAttribute('datetime', iso);
    const d = new Date(iso);
    text(this.date, d.toLocaleDateString(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' }) + ', ');
    text(this.time, d.toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit', timeZone: 'UTC' }) + ' UTC');
  },
  async advance(seconds) {
    for (const b of this.buttons) b.disabled = true;
    try {
      const r = await api.post('/sandbox/clock/advance', { seconds });
      this.set(r.now);
      changed();
    } catch (err) {
      notifyError(err);
    } finally {
      this.enable(Boolean(session.token));
    }
  },
};

session.onExpired(() => {
  stopStream();
  ctx.me = null;
  ctx.flash = { kind: 'info', message: 'Your session expired. Log in again to carry on where you were.' };
  route();
});

window.addEventListener('hashchange', route);

async function start() {
  if (ctx.sandbox) clock.build();
  ctx.features = await detectFeatures();
  route();
  clock.refresh();
  if (session.token) startStream(ctx.features);
}

start();
