// views/overview.js: the money at a glance: balance, hourly spend and how
// long the balance lasts, the servers by status, and the balance chart.

import { h, replace, text, fmtTime } from '../dom.js';
import { api } from '../api.js';
import { usd, wholeHours } from '../money.js';
import { Poller } from '../live.js';
import { notifyError } from '../ui.js';
import { balanceChart } from '../chart.js';

// runway describes how long the balance lasts. The API's own hoursLeft and
// suspendsAt are used where the server has them (GET /billing gains them
// with the runway feature); before that the same figure is computed here,
// exactly, from the balance and the hourly spend.
export function runway(billing) {
  if ('hoursLeft' in billing) {
    if (billing.hoursLeft === null) return { value: 'No spend', sub: 'No server is being billed.' };
    return {
      value: hoursText(billing.hoursLeft),
      sub: billing.suspendsAt ? 'First suspension ' + fmtTime(billing.suspendsAt) : '',
    };
  }
  const hours = wholeHours(billing.balance, billing.hourlySpend);
  if (hours === null) return { value: 'No spend', sub: 'No server is being billed.' };
  return { value: hoursText(hours), sub: 'At the current hourly spend.' };
}

function hoursText(hours) {
  if (hours < 48) return `${hours} h`;
  return `${Math.floor(hours / 24)} days`;
}

export function render(main, ctx) {
  const stat = (label) => {
    const value = h('div', { class: 'value' }, '—');
    const sub = h('div', { class: 'sub' });
    const card = h('section', { class: 'card stat', 'aria-label': label }, h('div', { class: 'label' }, label), value, sub);
    return { card, value, sub };
  };
  const balance = stat('Balance');
  const spend = stat('Hourly spend');
  const left = stat('Runway');
  const counts = h('p', { class: 'muted', id: 'server-counts' }, 'Loading servers…');
  const chartBox = h('div', { class: 'chart-slot' }, h('div', { class: 'chart-empty' }, 'Loading…'));

  replace(main,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', { tabindex: '-1' }, 'Overview'), h('p', {}, 'Your balance, what it pays for, and how long it lasts.')),
      h('div', { class: 'actions' },
        h('a', { class: 'btn', href: '#/topup' }, 'Top up'),
        h('a', { class: 'btn primary', href: '#/deploy' }, 'Deploy a server'))),
    h('div', { class: 'grid cols-3' }, balance.card, spend.card, left.card),
    h('div', { class: 'grid cols-2 top' },
      h('section', { class: 'card', 'aria-labelledby': 'ov-servers' },
        h('h2', { id: 'ov-servers' }, 'Servers'), counts,
        h('a', { href: '#/servers' }, 'Manage servers')),
      h('section', { class: 'card', 'aria-labelledby': 'ov-chart' },
        h('h2', { id: 'ov-chart' }, 'Balance over time'), chartBox,
        h('a', { href: '#/ledger' }, 'Open the ledger'))));

  // The ledger (for the chart) is read again only when the balance moved:
  // the overview then costs two requests a poll, not three.
  let chartBalance = null;
  const poller = new Poller(async () => {
    try {
      const [b, s] = await Promise.all([api.get('/billing'), api.get('/servers')]);
      text(balance.value, usd(b.balance));
      text(balance.sub, ctx.sandbox ? 'Sandbox money: not real.' : 'Available for servers.');
      text(spend.value, usd(b.hourlySpend));
      text(spend.sub, `${usd(b.hourlySpend)} per hour across running servers.`);
      const r = runway(b);
      text(left.value, r.value);
      text(left.sub, r.sub);
      const by = {};
      for (const sv of s.servers) by[sv.status] = (by[sv.status] || 0) + 1;
      const parts = Object.entries(by).map(([k, n]) => `${n} ${k.toLowerCase()}`);
      text(counts, s.servers.length ? `${s.servers.length} server${s.servers.length === 1 ? '' : 's'}: ${parts.join(', ')}.` : 'No servers yet.');
      if (b.balance !== chartBalance) {
        const l = await api.get('/billing/ledger?limit=100');
        chartBalance = b.balance;
        replace(chartBox, balanceChart(l.transactions, chartBox.clientWidth));
      }
      return s.servers.some((x) => x.status === 'PROVISIONING' || x.status === 'DESTROYING');
    } catch (err) {
      notifyError(err);
      throw err;
    }
  });
  poller.now();
  return () => poller.stop();
}
