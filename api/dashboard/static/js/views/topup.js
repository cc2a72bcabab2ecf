// views/topup.js: fund the balance. Creating a top-up gives an address to
// pay (shown as text to copy and as a QR code); its status is followed
// live until it is PAID. In sandbox mode, and only there, a button stands
// in for the wallet (POST /sandbox/topups/:id/pay).

import { h, replace, text, keyedList, time } from '../dom.js';
import { api, newKey } from '../api.js';
import { usd } from '../money.js';
import { Poller, changed } from '../live.js';
import { badge, updateBadge, copyButton, showError, clearError, notify, notifyError } from '../ui.js';
import { qrSvg } from '../qr.js';

const PRESETS = ['10.00', '25.00', '50.00', '100.00'];

function selectedId() {
  return location.hash.split('/')[2] || '';
}

export function render(main, ctx) {
  const errors = h('div', { class: 'form-error' });
  const amount = h('input', { id: 'amount', name: 'amount', inputmode: 'decimal', required: true, value: '25.00', pattern: '[0-9]+(\\.[0-9]{1,2})?', 'aria-describedby': 'amount-hint' });
  const currency = h('select', { id: 'currency', name: 'currency' }, ctx.features.currencies.map((c) => h('option', { value: c }, c)));
  const presets = h('div', { class: 'actions', role: 'group', 'aria-label': 'Preset amounts' },
    PRESETS.map((p) => h('button', { class: 'btn small', type: 'button', onclick: () => { amount.value = p; } }, usd(p))));
  const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Get payment details');
  let key = newKey();
  let keyFor = '';
  const f = h('form', { class: 'card', novalidate: true, 'aria-labelledby': 'topup-new' },
    h('h2', { id: 'topup-new' }, 'New top-up'),
    errors,
    h('div', { class: 'row' },
      h('div', { class: 'field' }, h('label', { for: 'amount' }, 'Amount in USD'), amount,
        h('span', { class: 'hint', id: 'amount-hint' }, '1.00 to 10,000.00')),
      h('div', { class: 'field' }, h('label', { for: 'currency' }, 'Pay with'), currency)),
    h('div', { class: 'field' }, presets),
    h('div', { class: 'actions' }, submit));
  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearError(errors);
    const req = { amount: amount.value.trim(), currency: currency.value };
    if (JSON.stringify(req) !== keyFor) {
      key = newKey();
      keyFor = JSON.stringify(req);
    }
    submit.disabled = true;
    try {
      const r = await api.post('/billing/topups', req, { idempotencyKey: key });
      location.hash = '#/topup/' + r.topup.id;
    } catch (err) {
      if (err?.status) keyFor = ''; // answered: a new try gets a new key
      showError(errors, err);
    } finally {
      submit.disabled = false;
    }
  });

  const panel = h('section', { class: 'card', id: 'payment', 'aria-labelledby': 'pay-title', hidden: true });
  const tbody = h('tbody', {});
  const historyEmpty = h('p', { class: 'empty' }, 'No top-ups yet.');
  const table = h('table', { class: 'cards', hidden: true, 'aria-labelledby': 'topup-history' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, 'Status'),
      h('th', { scope: 'col', class: 'amount' }, 'Amount'), h('th', { scope: 'col' }, 'Currency'), h('th', { scope: 'col' }, h('span', { class: 'muted' }, 'Details')))),
    tbody);

  replace(main,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', { tabindex: '-1' }, 'Top up'),
      h('p', {}, 'Add funds with crypto. The balance is credited once the payment is confirmed.'))),
    h('div', { class: 'grid cols-2 top' }, f, panel),
    h('section', { class: 'card stack', 'aria-labelledby': 'topup-history' },
      h('h2', { id: 'topup-history' }, 'Your top-ups'), h('div', { class: 'table-wrap' }, table), historyEmpty));

  let shown = null; // id of the top-up in the panel
  const paymentRefs = {};

  const showPayment = (t) => {
    panel.hidden = false;
    if (shown !== t.id) {
      shown = t.id;
      buildPanel(panel, paymentRefs, t, ctx);
    }
    updatePanel(paymentRefs, t);
  };

  const poller = new Poller(async () => {
    try {
      const [list, one] = await Promise.all([
        api.get('/billing/topups'),
        selectedId() ? api.get('/billing/topups/' + encodeURIComponent(selectedId())) : null,
      ]);
      const topups = [...list.topups].reverse(); // newest first
      table.hidden = topups.length === 0;
      historyEmpty.hidden = topups.length > 0;
      keyedList(tbody, topups, (t) => t.id, createRow, updateRow);
      if (one) showPayment(one.topup);
      return Boolean(one && one.topup.status !== 'PAID' && one.topup.status !== 'EXPIRED' && one.topup.status !== 'INVALID');
    } catch (err) {
      notifyError(err);
      throw err;
    }
  });
  const onHash = () => poller.now();
  window.addEventListener('hashchange', onHash);
  poller.now();
  return () => {
    poller.stop();
    window.removeEventListener('hashchange', onHash);
  };
}

function createRow(t) {
  const r = { created: h('td', { class: 'first' }), status: badge(t.status), amount: h('td', { class: 'amount', 'data-label': 'Amount' }), currency: h('td', { 'data-label': 'Currency' }) };
  const tr = h('tr', {}, r.created, h('td', { 'data-label': 'Status' }, r.status), r.amount, r.currency,
    h('td', { class: 'actions-cell' }, h('a', { href: '#/topup/' + t.id, class: 'btn small', 'aria-label': `Payment details of the ${usd(t.amount)} top-up` }, 'Details')));
  tr.refs = r;
  return tr;
}

function updateRow(tr, t) {
  const r = tr.refs;
  if (!r.created.firstChild) r.created.append(time(t.createdAt));
  updateBadge(r.status, t.status);
  text(r.amount, usd(t.amount));
  text(r.currency, t.currency);
}

// methodsOf lists what can be paid: the API's payment methods where the
// top-up has them (address or Lightning invoice, amount due, rate), else
// the one payAddress.
function methodsOf(t) {
  if (Array.isArray(t.paymentMethods) && t.paymentMethods.length) {
    return t.paymentMethods.map((m) => ({
      name: m.paymentMethod || m.method || m.currency || m.network || t.currency,
      destination: m.destination || m.address || m.invoice || m.bolt11 || '',
      link: m.paymentLink || '',
      due: m.amount || m.due || m.amountDue || '',
      rate: m.rate || '',
    })).filter((m) => m.destination);
  }
  return [{ name: t.currency, destination: t.payAddress, link: '', due: '', rate: '' }];
}

function buildPanel(panel, refs, t, ctx) {
  refs.status = badge(t.status);
  refs.paid = h('dd', {});
  refs.pay = ctx.sandbox
    ? h('button', { class: 'btn primary', type: 'button' }, 'Simulate payment')
    : null;
  const methods = methodsOf(t);
  const blocks = methods.map((m) => {
    const addr = h('div', { class: 'address', id: 'pay-address' }, m.destination);
    return h('div', { class: 'pay' },
      h('div', { class: 'qr-box' }, qrSvg(m.link || m.destination, `QR code of the ${m.name} payment address`)),
      h('div', {},
        h('dl', { class: 'kv' },
          h('dt', {}, 'Send'), h('dd', { class: 'num' }, m.due ? `${m.due} ${m.name}` : `${usd(t.amount)} worth of ${m.name}`),
          m.rate ? [h('dt', {}, 'Rate'), h('dd', { class: 'num' }, m.rate)] : null,
          h('dt', {}, 'To'), h('dd', {}, addr),
          h('dt', {}, 'Status'), h('dd', {}, refs.status),
          h('dt', {}, 'Paid'), refs.paid,
          t.expiresAt ? [h('dt', {}, 'Expires'), h('dd', {}, time(t.expiresAt))] : null),
        h('div', { class: 'actions' },
          copyButton(() => m.destination, `Copy the ${m.name} payment address`, addr),
          t.checkoutLink ? h('a', { class: 'btn', href: t.checkoutLink, rel: 'noopener noreferrer', target: '_blank' }, 'Open checkout') : null,
          refs.pay)));
  });
  replace(panel,
    h('h2', { id: 'pay-title' }, `Pay ${usd(t.amount)} in ${t.currency}`),
    ctx.sandbox ? h('p', { class: 'alert info' }, h('span', { class: 'msg' }, 'Sandbox: this address is made up. Do not send real crypto to it; use “Simulate payment” instead.')) : null,
    blocks,
    h('p', { class: 'hint' }, 'This page follows the payment: the status changes by itself once it is confirmed.'));
  if (refs.pay) {
    refs.pay.addEventListener('click', async () => {
      refs.pay.disabled = true;
      try {
        await api.post(`/sandbox/topups/${encodeURIComponent(t.id)}/pay`, {});
        notify(`${usd(t.amount)} credited to your balance.`);
        changed();
      } catch (err) {
        notifyError(err);
        refs.pay.disabled = false;
      }
    });
  }
}

function updatePanel(refs, t) {
  updateBadge(refs.status, t.status);
  if (t.paidAt) replace(refs.paid, time(t.paidAt));
  else text(refs.paid, 'Not yet');
  if (refs.pay) refs.pay.hidden = t.status !== 'PENDING';
}
