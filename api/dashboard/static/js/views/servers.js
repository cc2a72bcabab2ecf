// views/servers.js: the servers, live. Each row is updated in place as a
// server goes PROVISIONING -> ACTIVE (its IPv4 and ssh line appear) or
// DESTROYING -> gone, so focus and scroll stay put. Backing up and
// destroying start here; destroying asks first.

import { h, replace, text, keyedList, shortId } from '../dom.js';
import { api } from '../api.js';
import { usd } from '../money.js';
import { Poller, changed } from '../live.js';
import { badge, updateBadge, copyButton, confirmDialog, notify, notifyError } from '../ui.js';

const BUSY = new Set(['PROVISIONING', 'DESTROYING']);

// sshCommand is how to get in: the API's sshUser/sshPort when the server
// says so, root on port 22 otherwise.
export function sshCommand(server) {
  const user = server.sshUser || 'root';
  const port = server.sshPort && server.sshPort !== 22 ? ` -p ${server.sshPort}` : '';
  return `ssh${port} ${user}@${server.ipv4}`;
}

export function render(main, ctx) {
  const tbody = h('tbody', {});
  const empty = h('p', { class: 'empty', hidden: true }, 'No servers yet. ', h('a', { href: '#/deploy' }, 'Deploy one'), '.');
  const table = h('table', { class: 'cards fixed', 'aria-labelledby': 'servers-title' },
    h('colgroup', {}, ['server', 'status', 'plan', 'access', 'price', 'actions'].map((c) => h('col', { class: 'w-' + c }))),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Server'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Plan · region'),
      h('th', { scope: 'col' }, 'Access'), h('th', { scope: 'col', class: 'amount' }, 'Per hour'),
      h('th', { scope: 'col' }, h('span', { class: 'muted' }, 'Actions')))),
    tbody);
  const loading = h('p', { class: 'loading' }, 'Loading servers…');
  table.hidden = true;

  replace(main,
    h('div', { class: 'page-head' },
      h('div', {}, h('h1', { id: 'servers-title', tabindex: '-1' }, 'Servers'),
        h('p', {}, 'Live status, updated as it changes. Billing is hourly and stops when you destroy a server.')),
      h('a', { class: 'btn primary', href: '#/deploy' }, 'Deploy')),
    h('div', { class: 'card flush-phone' }, loading, h('div', { class: 'table-wrap' }, table), empty));

  const act = async (fn, ok) => {
    try {
      await fn();
      if (ok) notify(ok);
      changed();
    } catch (err) {
      notifyError(err, { limit: ctx.me?.serverLimit });
    }
  };

  const create = (sv) => {
    const r = { status: badge(sv.status) };
    r.label = h('div', { class: 'cell-main' });
    r.id = h('div', { class: 'cell-sub mono' });
    r.plan = h('div', {});
    r.region = h('div', { class: 'cell-sub' });
    r.sshCode = h('code', {});
    r.ssh = h('span', { class: 'ssh' }, r.sshCode, copyButton(() => r.sshCode.textContent, `Copy the ssh command for ${sv.label}`, r.sshCode));
    r.noAccess = h('span', { class: 'muted' }, 'Waiting for an address…');
    r.access = h('td', { 'data-label': 'Access' }, r.ssh, r.noAccess);
    r.price = h('td', { class: 'amount', 'data-label': 'Per hour' });
    r.backup = h('button', { class: 'btn small', type: 'button', 'aria-label': `Back up ${sv.label}` }, 'Back up');
    r.destroy = h('button', { class: 'btn small danger', type: 'button', 'aria-label': `Destroy ${sv.label}` }, 'Destroy');
    r.backup.addEventListener('click', () => act(async () => {
      r.backup.disabled = true;
      await api.post('/backups', { serverId: sv.id });
    }, `Backup of ${sv.label} started. It takes a few minutes; see Backups.`));
    r.destroy.addEventListener('click', async () => {
      const yes = await confirmDialog({
        title: `Destroy ${sv.label}?`,
        body: `The server ${sv.ipv4 ? `at ${sv.ipv4} ` : ''}and its disk are deleted for good; backups you made are kept. Billing stops this hour.`,
        confirm: 'Destroy server',
      });
      if (!yes) {
        r.destroy.focus();
        return;
      }
      r.destroy.disabled = true;
      await act(() => api.del('/servers/' + sv.id), `${sv.label} is being destroyed.`);
    });
    const tr = h('tr', {},
      h('td', { class: 'first' }, r.label, r.id),
      h('td', { 'data-label': 'Status' }, r.status),
      h('td', { 'data-label': 'Plan · region' }, h('div', {}, r.plan, r.region)),
      r.access, r.price,
      h('td', { class: 'actions-cell' }, h('div', { class: 'actions' }, r.backup, r.destroy)));
    tr.refs = r;
    return tr;
  };

  const update = (tr, sv) => {
    const r = tr.refs;
    text(r.label, sv.label);
    text(r.id, shortId(sv.id));
    r.id.title = sv.id;
    updateBadge(r.status, sv.status);
    text(r.plan, sv.plan);
    text(r.region, sv.region);
    const hasIp = Boolean(sv.ipv4);
    r.ssh.hidden = !hasIp;
    r.noAccess.hidden = hasIp;
    if (hasIp) text(r.sshCode, sshCommand(sv));
    text(r.noAccess, sv.status === 'PROVISIONING' ? 'Waiting for an address…' : '—');
    text(r.price, usd(sv.hourlyPrice));
    r.backup.disabled = sv.status !== 'ACTIVE';
    r.destroy.disabled = sv.status === 'DESTROYING' || sv.status === 'DESTROYED';
    tr.dataset.status = sv.status;
  };

  const poller = new Poller(async () => {
    try {
      const { servers } = await api.get('/servers');
      loading.hidden = true;
      table.hidden = servers.length === 0;
      empty.hidden = servers.length > 0;
      keyedList(tbody, servers, (s) => s.id, create, update);
      return servers.some((s) => BUSY.has(s.status));
    } catch (err) {
      notifyError(err);
      throw err;
    }
  });
  poller.now();
  return () => poller.stop();
}
