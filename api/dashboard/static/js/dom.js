// dom.js: building the page without markup strings. Every piece of data
// reaches the DOM as a text node or an attribute value, never as HTML, so
// nothing the API returns can inject markup (and the page's Trusted Types
// policy would make an innerHTML assignment throw anyway).

const SVG_NS = 'http://www.w3.org/2000/svg';

// h builds an element: h('a', {href: '#/x', class: 'btn'}, 'text', child).
// Attributes starting with "on" are listeners (functions, never strings);
// true/false/null attributes are set, omitted or removed.
export function h(tag, attrs, ...children) {
  return build(document.createElement(tag), attrs, children);
}

// s builds an SVG element the same way.
export function s(tag, attrs, ...children) {
  return build(document.createElementNS(SVG_NS, tag), attrs, children);
}

function build(el, attrs, children) {
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') {
      el.addEventListener(k.slice(2), v);
    } else if (k === 'dataset') {
      Object.assign(el.dataset, v);
    } else {
      el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// replace empties el and fills it with children.
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// text sets el's text only when it changed, so that live updates do not
// disturb a selection or a screen reader for nothing.
export function text(el, value) {
  const v = String(value ?? '');
  if (el.textContent !== v) el.textContent = v;
}

// keyedList keeps the children of parent in step with items: one element
// per key, created once and updated in place, so that focus and scroll
// survive a refresh and nothing flickers.
export function keyedList(parent, items, key, create, update) {
  const existing = new Map();
  for (const el of parent.children) existing.set(el.dataset.key, el);
  let prev = null;
  for (const item of items) {
    const k = String(key(item));
    let el = existing.get(k);
    if (el) existing.delete(k);
    else {
      el = create(item);
      el.dataset.key = k;
    }
    update(el, item);
    const want = prev ? prev.nextSibling : parent.firstChild;
    if (want !== el) parent.insertBefore(el, want);
    prev = el;
  }
  for (const el of existing.values()) el.remove();
}

const dateTime = new Intl.DateTimeFormat(undefined, {
  year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC', timeZoneName: 'short',
});
const shortDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', timeZone: 'UTC' });

// The API's clock is UTC (and, in the sandbox, moved forward): times are
// shown in UTC so that they read the same as the API's own.
export function fmtTime(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : dateTime.format(d);
}

export function fmtShort(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : shortDate.format(d);
}

// time is a <time> element for an RFC 3339 instant.
export function time(iso) {
  return iso ? h('time', { datetime: iso }, fmtTime(iso)) : h('span', { class: 'muted' }, '—');
}

// shortId is the first block of a UUID: enough to tell objects apart.
export function shortId(id) {
  return String(id || '').split('-')[0];
}
