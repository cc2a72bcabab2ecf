// ui.js: the small shared widgets: notices, inline alerts, the confirm
// dialog, copy buttons and status badges. All built with dom.js, so every
// message (often an API error text) is plain text.

import { h, replace } from './dom.js';
import { explain } from './api.js';

// notify shows a transient notice in the corner; errors stay until closed.
export function notify(message, { kind = 'success', action } = {}) {
  const box = document.getElementById('notices');
  // A poll that keeps failing says so once, not once per attempt.
  for (const n of box.children) {
    if (n.dataset.message === message) return n;
  }
  const el = h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('div', { class: 'msg' }, message, action ? [' ', h('a', { href: action.href }, action.label)] : null),
    h('button', { class: 'close', type: 'button', 'aria-label': 'Dismiss', onclick: () => el.remove() }, '×'));
  el.dataset.message = message;
  box.append(el);
  if (kind !== 'error') setTimeout(() => el.remove(), 6000);
  return el;
}

// notifyError shows an API error as a sentence, with the next step.
export function notifyError(err, context) {
  if (err?.status === 401) return null; // the session handler takes over
  const e = explain(err, context);
  return notify(e.message, { kind: 'error', action: e.action });
}

// showError puts an API error in a form's own alert area.
export function showError(area, err, context) {
  const e = explain(err, context);
  replace(area, h('div', { class: 'alert error', role: 'alert' },
    h('div', { class: 'msg' }, e.message, e.action ? [' ', h('a', { href: e.action.href }, e.action.label)] : null)));
}

export function clearError(area) {
  replace(area);
}

// confirmDialog asks before something that cannot be undone. It resolves
// true only when the person chose the confirm button; Escape and Cancel
// (the default focus) say no.
export function confirmDialog({ title, body, confirm, danger = true }) {
  return new Promise((resolve) => {
    const cancel = h('button', { class: 'btn', type: 'button', value: 'cancel' }, 'Cancel');
    const ok = h('button', { class: danger ? 'btn danger solid' : 'btn primary', type: 'button', value: 'ok' }, confirm);
    const titleId = 'dlg-' + Math.random().toString(36).slice(2);
    const dlg = h('dialog', { 'aria-labelledby': titleId },
      h('h2', { id: titleId }, title),
      h('p', {}, body),
      h('div', { class: 'actions' }, cancel, ok));
    let answer = false;
    cancel.addEventListener('click', () => dlg.close());
    ok.addEventListener('click', () => {
      answer = true;
      dlg.close();
    });
    dlg.addEventListener('close', () => {
      dlg.remove();
      resolve(answer);
    });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

// copyButton copies text; where the Clipboard API is unavailable (plain
// http on another host) it selects the text instead, for Ctrl+C.
export function copyButton(getText, label, target) {
  const btn = h('button', { class: 'btn small', type: 'button', 'aria-label': label }, 'Copy');
  btn.addEventListener('click', async () => {
    const text = getText();
    try {
      await navigator.clipboard.writeText(text);
      btn.textContent = 'Copied';
    } catch {
      if (target) {
        const range = document.createRange();
        range.selectNodeContents(target);
        const sel = getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      }
      btn.textContent = 'Press Ctrl+C';
    }
    setTimeout(() => {
      btn.textContent = 'Copy';
    }, 2000);
  });
  return btn;
}

const TONE = {
  ACTIVE: 'ok', AVAILABLE: 'ok', PAID: 'ok',
  PROVISIONING: 'busy', DESTROYING: 'busy', PENDING: 'busy', PROCESSING: 'busy',
  SUSPENDED: 'warn', EXPIRED: 'warn',
  ERROR: 'bad', INVALID: 'bad', DESTROYED: '',
};

// badge shows a status; updateBadge changes it in place.
export function badge(status) {
  const el = h('span', { class: 'badge' });
  updateBadge(el, status);
  return el;
}

export function updateBadge(el, status) {
  const cls = 'badge ' + (TONE[status] ?? '');
  if (el.className !== cls.trim()) el.className = cls.trim();
  if (el.textContent !== status) el.textContent = status;
}
