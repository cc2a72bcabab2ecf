// views/ledger.js: every transaction that moved the balance, newest first,
// with the balance after each (the running balance) and a chart of the
// balance over the transactions loaded. Pages follow the API's cursor.

import { h, replace, text, keyedList, time, shortId, fmtTime } from '../dom.js';
import { api } from '../api.js';
import { signed, usd, parse, format } from '../money.js';
import { Poller } from '../live.js';
import { notifyError } from '../ui.js';
import { balanceChart } from '../chart.js';

const TYPES = { signup_credit: 'Signup credit', topup: 'Top-up', charge: 'Server hour', refund: 'Refund' };

// labels maps server ids to labels, from the live servers and the backups
// (which remember the label of a destroyed server); read once per visit.
const labels = new Map();

function describe(t) {
  if (t.type === 'charge' || t.type === 'refund') {
    const span = t.from && t.to ? `${fmtTime(t.from)} – ${fmtTime(t.to)}` : '';
    const label = labels.get(t.serverId);
    return [label ? `${label} (${shortId(t.serverId)})` : `Server ${shortId(t.serverId)}`, span];
  }
  if (t.type === 'topup') return [`Top-up ${shortId(t.topupId)}`, ''];
  return [TYPES[t.type] || t.type, ''];
}

export function render(main) {
  labels.clear(); // never show a previous session's names
  const tbody = h('tbody', {});
  const chartSlot = h('div', {}, h('div', { class: 'chart-empty' }, 'Loading…'));
  const totals = h('dl', { class: 'kv' });
  const more = h('button', { class: 'btn', type: 'button', hidden: true }, 'Load older transactions');
  const count = h('p', { class: 'muted', 'aria-live': 'polite' });
  const table = h('table', { class: 'cards', 'aria-labelledby': 'ledger-title' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'When'), h('th', { scope: 'col' }, 'Type'), h('th', { scope: 'col' }, 'What for'),
      h('th', { scope: 'col', class: 'amount' }, 'Amount'), h('th', { scope: 'col', class: 'amount' }, 'Balance after'))),
    tbody);
  replace(main,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', { id: 'ledger-title', tabindex: '-1' }, 'Ledger'),
      h('p', {}, 'Every credit and debit, with the balance after it. Amounts are exact.'))),
    h('div', { class: 'grid cols-2 top' },
      h('section', { class: 'card', 'aria-labelledby': 'ledger-chart' }, h('h2', { id: 'ledger-chart' }, 'Balance over time'), chartSlot),
      h('section', { class: 'card', 'aria-labelledby': 'ledger-totals' }, h('h2', { id: 'ledger-totals' }, 'Totals'),
        h('p', { class: 'hint' }, 'Of the transactions shown below.'), totals)),
    h('section', { class: 'card flush-phone stack', 'aria-label': 'Transactions' },
      h('div', { class: 'table-wrap' }, table), count, h('div', { class: 'actions' }, more)));

  // older holds the pages loaded with "Load older"; the first page is
  // refreshed by the poller and always comes first.
  let first = [];
  let older = [];
  let cursor = null;
  let olderLoaded = false;

  const draw = () => {
    const seen = new Set();
    const all = [...first, ...older].filter((t) => !seen.has(t.id) && seen.add(t.id));
    keyedList(tbody, all, (t) => t.id, create, update);
    replace(chartSlot, balanceChart(all, chartSlot.clientWidth));
    showTotals(totals, all);
    text(count, `${all.length} transaction${all.length === 1 ? '' : 's'} shown${cursor ? '; older ones on request' : ''}.`);
    more.hidden = !cursor;
  };

  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const p = await api.get('/billing/ledger?limit=100&cursor=' + encodeURIComponent(cursor));
      older = older.concat(p.transactions);
      cursor = p.nextCursor;
      olderLoaded = true;
      draw();
    } catch (err) {
      notifyError(err);
    } finally {
      more.disabled = false;
    }
  });

  let named = false;
  const poller = new Poller(async () => {
    try {
      if (!named) {
        const [sv, bk] = await Promise.all([api.get('/servers'), api.get('/backups')]);
        for (const b of bk.backups) labels.set(b.serverId, b.label);
        for (const x of sv.servers) labels.set(x.id, x.label);
        named = true;
      }
      const p = await api.get('/billing/ledger?limit=100');
      first = p.transactions;
      if (!olderLoaded) cursor = p.nextCursor;
      draw();
      return false;
    } catch (err) {
      notifyError(err);
      throw err;
    }
  });
  poller.now();
  return () => poller.stop();
}

// showTotals sums the shown transactions by type, exactly (BigInt).
function showTotals(dl, all) {
  const sum = {};
  for (const t of all) sum[t.type] = (sum[t.type] ?? 0n) + (parse(t.amount) ?? 0n);
  const rows = Object.keys(TYPES).filter((k) => k in sum).map((k) => [
    h('dt', {}, TYPES[k] + (k === 'charge' ? 's' : '')),
    h('dd', { class: 'num' }, signed(format(sum[k]))),
  ]);
  replace(dl, rows, h('dt', {}, 'Balance now'), h('dd', { class: 'num' }, all.length ? usd(all[0].balanceAfter) : '—'));
}

function create(t) {
  const [what, detail] = describe(t);
  const credit = parse(t.amount) > 0n;
  return h('tr', { dataset: { type: t.type } },
    h('td', { class: 'first' }, time(t.createdAt)),
    h('td', { 'data-label': 'Type' }, TYPES[t.type] || t.type),
    h('td', { 'data-label': 'What for' }, h('div', {}, h('div', {}, what), detail ? h('div', { class: 'cell-sub' }, detail) : null)),
    h('td', { class: 'amount ' + (credit ? 'credit' : 'debit'), 'data-label': 'Amount' }, signed(t.amount)),
    h('td', { class: 'amount', 'data-label': 'Balance after' }, usd(t.balanceAfter)));
}

function update() {
  // A ledger transaction never changes once written.
}
