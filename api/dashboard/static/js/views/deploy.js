// views/deploy.js: deploy one server or a bulk of up to 10, with plan and
// region pickers that show the price, and optional SSH keys. The form says
// what will be charged now before anything is sent, and every submission
// carries an Idempotency-Key so a retried click never deploys twice.

import { h, replace, text } from '../dom.js';
import { api, newKey } from '../api.js';
import { usd, times, cmp, add } from '../money.js';
import { showError, clearError, notify } from '../ui.js';
import { changed } from '../live.js';

const LABEL = /^[a-zA-Z0-9._-]{1,64}$/;

// available reads an optional availability flag on a catalog entry: the
// sandbox catalog has none (everything is available), a real provider's
// may say otherwise.
function available(item) {
  return item.available !== false && item.availability !== 'unavailable';
}

// planIn says whether a plan can be deployed in a region now: GET /regions
// lists each region's availablePlans (a plan sold out there is missing).
function planIn(plan, region) {
  return available(plan) && (!region || !Array.isArray(region.availablePlans) || region.availablePlans.includes(plan.id));
}

export function render(main, ctx) {
  const errors = h('div', { class: 'form-error' });
  const body = h('div', {}, h('p', { class: 'loading' }, 'Loading the catalog…'));
  replace(main,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', { tabindex: '-1' }, 'Deploy'),
        h('p', {}, 'Pick a size and a place. The first hour is charged when the deploy is accepted.'))),
    errors, body);

  let stopped = false;
  Promise.all([ctx.getCatalog(), api.get('/billing')]).then(([catalog, billing]) => {
    if (!stopped) replace(body, form(ctx, catalog, billing, errors));
  }).catch((err) => {
    if (!stopped) showError(errors, err);
  });
  return () => {
    stopped = true;
  };
}

function form(ctx, catalog, billing, errors) {
  const label = h('input', { id: 'label', name: 'label', required: true, maxlength: 64, pattern: '[a-zA-Z0-9._\\-]+', value: 'my-server', autocomplete: 'off', 'aria-describedby': 'label-hint' });
  const count = h('input', { id: 'count', name: 'count', type: 'number', min: 1, max: 10, value: 1, required: true, inputmode: 'numeric', 'aria-describedby': 'count-hint' });
  const region = h('select', { id: 'region', name: 'region', required: true });
  const byContinent = new Map();
  for (const r of catalog.regions) {
    if (!byContinent.has(r.continent)) byContinent.set(r.continent, []);
    byContinent.get(r.continent).push(r);
  }
  for (const [continent, regions] of byContinent) {
    region.append(h('optgroup', { label: continent },
      regions.map((r) => h('option', { value: r.id, disabled: !available(r) }, `${r.city}, ${r.country} (${r.id})${available(r) ? '' : ' — unavailable'}`))));
  }
  const firstRegion = catalog.regions.find(available);
  if (firstRegion) region.value = firstRegion.id;

  const plans = h('div', { class: 'plans' });
  catalog.plans.forEach((p, i) => {
    plans.append(h('label', { class: 'plan' },
      h('input', { type: 'radio', name: 'plan', value: p.id, checked: i === 0 && available(p), disabled: !available(p) }),
      h('div', { class: 'name' }, p.name),
      h('div', { class: 'specs' }, `${p.vcpus} vCPU · ${p.ramGb} GB RAM · ${p.diskGb} GB NVMe`),
      h('div', { class: 'price' }, usd(p.hourlyPrice), h('span', {}, ' / hour')),
      h('div', { class: 'specs num' }, `${usd(p.monthlyPrice)} / month`)));
  });
  const keys = h('textarea', { id: 'ssh-keys', name: 'sshKeys', rows: 3, spellcheck: 'false', placeholder: 'ssh-ed25519 AAAA… you@laptop', 'aria-describedby': 'keys-hint' });
  const total = h('span', { class: 'total' });
  const balanceNote = h('span', { class: 'muted' });
  const submit = h('button', { class: 'btn primary', type: 'submit' }, 'Deploy');

  const selectedPlan = () => catalog.plans.find((p) => p.id === plans.querySelector('input:checked')?.value);
  const selectedRegion = () => catalog.regions.find((r) => r.id === region.value);
  // Plans sold out in the chosen region cannot be picked there.
  const markPlans = () => {
    for (const input of plans.querySelectorAll('input[name=plan]')) {
      const p = catalog.plans.find((x) => x.id === input.value);
      const ok = planIn(p, selectedRegion());
      input.disabled = !ok;
      input.closest('label').classList.toggle('unavailable', !ok);
      if (!ok && input.checked) input.checked = false;
    }
  };
  const n = () => Math.min(10, Math.max(1, Number.parseInt(count.value, 10) || 1));
  const refresh = () => {
    const p = selectedPlan();
    const k = n();
    text(submit, k === 1 ? 'Deploy 1 server' : `Deploy ${k} servers`);
    if (!p) {
      text(total, 'Choose a plan');
      return;
    }
    const now = times(p.hourlyPrice, k);
    text(total, `Charged now: $${now} · then ${usd(times(p.hourlyPrice, k))} / hour`);
    // The balance must cover an hour of every billed server, the new ones
    // included, as the API checks.
    const need = billing.hourlySpend ? add(now, billing.hourlySpend) : now;
    const short = cmp(billing.balance, need) < 0;
    text(balanceNote, `Balance ${usd(billing.balance)}${short ? ' — not enough for an hour of every server: top up first.' : ''}`);
    balanceNote.className = short ? 'alert error' : 'muted';
  };
  plans.addEventListener('change', refresh);
  region.addEventListener('change', () => {
    markPlans();
    refresh();
  });
  markPlans();
  count.addEventListener('input', refresh);

  // One key per submission: a second click on the same, unchanged form
  // replays the first answer instead of deploying again.
  let key = newKey();
  let keyFor = '';

  const f = h('form', { class: 'card', novalidate: true, 'aria-label': 'Deploy servers' },
    h('fieldset', {}, h('legend', {}, 'Plan'), plans),
    h('div', { class: 'row' },
      h('div', { class: 'field' }, h('label', { for: 'region' }, 'Region'), region),
      h('div', { class: 'field' }, h('label', { for: 'label' }, 'Label'), label,
        h('span', { class: 'hint', id: 'label-hint' }, 'Letters, digits, . _ -; a bulk adds -1, -2, …')),
      h('div', { class: 'field' }, h('label', { for: 'count' }, 'How many'), count,
        h('span', { class: 'hint', id: 'count-hint' }, '1 to 10 servers.'))),
    h('div', { class: 'field' }, h('label', { for: 'ssh-keys' }, 'SSH public keys (optional)'), keys,
      h('span', { class: 'hint', id: 'keys-hint' }, 'One OpenSSH public key per line, installed for root.')),
    h('div', { class: 'summary' }, total, balanceNote),
    h('div', { class: 'actions' }, submit, h('a', { class: 'btn', href: '#/servers' }, 'Cancel')));

  f.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearError(errors);
    const p = selectedPlan();
    if (!LABEL.test(label.value)) {
      showError(errors, { message: 'Label: use 1 to 64 letters, digits, dots, dashes or underscores.' });
      label.focus();
      return;
    }
    if (!p || !region.value) return;
    const k = n();
    const sshKeys = keys.value.split('\n').map((l) => l.trim()).filter(Boolean);
    const req = { label: label.value, planId: p.id, regionId: region.value };
    if (sshKeys.length) req.sshKeys = sshKeys;
    if (k > 1) req.count = k;
    const signature = JSON.stringify(req);
    if (signature !== keyFor) {
      key = newKey();
      keyFor = signature;
    }
    submit.disabled = true;
    try {
      const r = await api.post(k > 1 ? '/servers/bulk' : '/servers', req, { idempotencyKey: key });
      const made = r.servers ? r.servers.length : 1;
      notify(made === 1 ? `${r.server.label} accepted: it is being provisioned.` : `${made} servers accepted: they are being provisioned.`);
      changed();
      location.hash = '#/servers';
    } catch (err) {
      // An answered error is final for that key: the next try (after a
      // top-up, say) must be a new request, not a replay of the refusal.
      if (err?.status) keyFor = '';
      showError(errors, err, { limit: ctx.me?.serverLimit });
      errors.scrollIntoView({ block: 'nearest' });
      submit.disabled = false;
    }
  });
  refresh();
  return f;
}
