// views/backups.js: backups (full disk snapshots kept 7 days), live while
// one is PENDING. An AVAILABLE backup can be restored onto a new server
// (a deploy: charged, limited) or deleted, after a confirmation. A deleted
// or expired one stays listed as EXPIRED for 7 days, with no action.

import { h, replace, text, keyedList, time, shortId } from '../dom.js';
import { api, newKey } from '../api.js';
import { Poller, changed } from '../live.js';
import { badge, updateBadge, confirmDialog, notify, notifyError } from '../ui.js';

export function render(main, ctx) {
  const tbody = h('tbody', {});
  const empty = h('p', { class: 'empty', hidden: true }, 'No backups. Back up an active server from ', h('a', { href: '#/servers' }, 'Servers'), '.');
  const table = h('table', { class: 'cards', hidden: true, 'aria-labelledby': 'backups-title' },
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Backup of'), h('th', { scope: 'col' }, 'Status'), h('th', { scope: 'col' }, 'Plan · region'),
      h('th', { scope: 'col' }, 'Taken'), h('th', { scope: 'col' }, 'Expires'), h('th', { scope: 'col' }, h('span', { class: 'muted' }, 'Actions')))),
    tbody);
  const loading = h('p', { class: 'loading' }, 'Loading backups…');
  replace(main,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', { id: 'backups-title', tabindex: '-1' }, 'Backups'),
      h('p', {}, 'Free of charge, kept 7 days. A backup survives its server; restoring makes a new server. Deleted and expired backups show as EXPIRED for 7 more days.'))),
    h('div', { class: 'card flush-phone' }, loading, h('div', { class: 'table-wrap' }, table), empty));

  const create = (b) => {
    const r = {
      label: h('div', { class: 'cell-main' }), id: h('div', { class: 'cell-sub mono' }), status: badge(b.status),
      plan: h('div', {}), region: h('div', { class: 'cell-sub' }), taken: h('td', { 'data-label': 'Taken' }), expires: h('td', { 'data-label': 'Expires' }),
      restore: h('button', { class: 'btn small', type: 'button', 'aria-label': `Restore the backup of ${b.label}` }, 'Restore'),
      del: h('button', { class: 'btn small danger', type: 'button', 'aria-label': `Delete the backup of ${b.label}` }, 'Delete'),
    };
    // A restore that failed without an answer is retried with the same key
    // (the API replays it rather than restoring twice); after an answer the
    // next click is a new restore with a new key.
    let restoreKey = newKey();
    r.restore.addEventListener('click', async () => {
      r.restore.disabled = true;
      try {
        const res = await api.post(`/backups/${encodeURIComponent(b.id)}/restore`, {}, { idempotencyKey: restoreKey });
        restoreKey = newKey();
        notify(`Restoring onto a new server, ${res.server.label}.`, { action: { label: 'See servers', href: '#/servers' } });
        changed();
      } catch (err) {
        if (err?.status) restoreKey = newKey();
        notifyError(err, { limit: ctx.me?.serverLimit });
      } finally {
        r.restore.disabled = false;
      }
    });
    r.del.addEventListener('click', async () => {
      const yes = await confirmDialog({
        title: `Delete the backup of ${b.label}?`,
        body: 'It can no longer be restored. This cannot be undone.',
        confirm: 'Delete backup',
      });
      if (!yes) {
        r.del.focus();
        return;
      }
      r.del.disabled = true;
      try {
        await api.del('/backups/' + encodeURIComponent(b.id));
        notify(`Backup of ${b.label} deleted.`);
        changed();
      } catch (err) {
        notifyError(err);
        r.del.disabled = false;
      }
    });
    const tr = h('tr', {},
      h('td', { class: 'first' }, r.label, r.id),
      h('td', { 'data-label': 'Status' }, r.status),
      h('td', { 'data-label': 'Plan · region' }, h('div', {}, r.plan, r.region)),
      r.taken, r.expires,
      h('td', { class: 'actions-cell' }, h('div', { class: 'actions' }, r.restore, r.del)));
    tr.refs = r;
    return tr;
  };
  const update = (tr, b) => {
    const r = tr.refs;
    text(r.label, b.label);
    text(r.id, shortId(b.id));
    r.id.title = b.id;
    updateBadge(r.status, b.status);
    text(r.plan, b.plan);
    text(r.region, b.region);
    if (!r.taken.firstChild) r.taken.append(time(b.createdAt));
    // A deletion moves expiresAt to the moment of the deletion.
    if (r.expires.firstChild?.getAttribute?.('datetime') !== b.expiresAt) r.expires.replaceChildren(time(b.expiresAt));
    r.restore.hidden = b.status !== 'AVAILABLE';
    r.del.hidden = b.status === 'EXPIRED';
    tr.dataset.status = b.status;
  };

  const poller = new Poller(async () => {
    try {
      const { backups } = await api.get('/backups');
      const list = [...backups].sort((a, b) => (a.createdAt < b.createdAt ? 1 : -1));
      loading.hidden = true;
      table.hidden = list.length === 0;
      empty.hidden = list.length > 0;
      keyedList(tbody, list, (b) => b.id, create, update);
      return list.some((b) => b.status === 'PENDING');
    } catch (err) {
      notifyError(err);
      throw err;
    }
  });
  poller.now();
  return () => poller.stop();
}
