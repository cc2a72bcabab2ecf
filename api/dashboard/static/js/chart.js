// chart.js: the balance over time as an inline SVG step chart (the balance
// holds between transactions, so steps, not slopes). Coordinates come from
// floats, which is fine for drawing; every number shown as text is the
// API's own decimal string.

import { h, s, fmtShort } from './dom.js';
import { toNumber, usd } from './money.js';

const H = 220;
const PAD = { left: 60, right: 12, top: 14, bottom: 28 };

// balanceChart draws ledger transactions (any order) by their createdAt and
// balanceAfter, width pixels wide: drawn at the size it is shown, so that
// its labels are real 12px text on a phone and on a desktop alike.
export function balanceChart(transactions, width = 720) {
  const W = Math.max(280, Math.round(width));
  const points = transactions
    .map((t, i) => ({ t: new Date(t.createdAt).getTime(), v: toNumber(t.balanceAfter), raw: t.balanceAfter, i }))
    .filter((p) => !Number.isNaN(p.t))
    // Newest first from the API; for ties the API's order is kept (reversed).
    .sort((a, b) => a.t - b.t || b.i - a.i);
  if (points.length === 0) {
    return h('div', { class: 'chart-empty' }, 'No transactions yet.');
  }
  const first = points[0];
  const last = points[points.length - 1];
  const t0 = first.t;
  const t1 = last.t > t0 ? last.t : t0 + 3600_000;
  const vMax = Math.max(...points.map((p) => p.v), 0.01) * 1.1;
  const x = (t) => PAD.left + ((t - t0) / (t1 - t0)) * (W - PAD.left - PAD.right);
  const y = (v) => PAD.top + (1 - v / vMax) * (H - PAD.top - PAD.bottom);

  let line = `M${x(first.t).toFixed(1)},${y(first.v).toFixed(1)}`;
  for (const p of points.slice(1)) line += `H${x(p.t).toFixed(1)}V${y(p.v).toFixed(1)}`;
  line += `H${x(t1).toFixed(1)}`;
  const area = `${line}V${y(0).toFixed(1)}H${x(first.t).toFixed(1)}Z`;

  const grid = [0, 0.5, 1].map((f) => {
    const v = vMax * f / 1.1;
    const yy = y(v).toFixed(1);
    return s('g', {},
      s('line', { class: 'grid-line', x1: PAD.left, x2: W - PAD.right, y1: yy, y2: yy }),
      s('text', { x: PAD.left - 8, y: Number(yy) + 4, 'text-anchor': 'end' }, '$' + v.toFixed(2)));
  });
  const label = `Balance over time: ${usd(first.raw)} on ${fmtShort(first.t)}, ${usd(last.raw)} on ${fmtShort(last.t)}, ${points.length} transactions.`;
  return s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': label },
    s('title', {}, label),
    ...grid,
    s('path', { class: 'area', d: area }),
    s('path', { class: 'line', d: line, 'vector-effect': 'non-scaling-stroke' }),
    s('circle', { class: 'dot', cx: x(last.t).toFixed(1), cy: y(last.v).toFixed(1), r: 4 }),
    s('text', { x: PAD.left, y: H - 8, 'text-anchor': 'start' }, fmtShort(first.t)),
    s('text', { x: W - PAD.right, y: H - 8, 'text-anchor': 'end' }, fmtShort(t1)));
}
