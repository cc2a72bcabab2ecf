// money.js: the API's money values are decimal strings ("9.986", "-0.014")
// and stay exact here: they are parsed into BigInt micro-dollars, never
// into floats, and shown as the API wrote them.

const SCALE = 1_000_000n;
const DIGITS = 6;

// parse turns "9.986" into 9986000n; a malformed value is null.
export function parse(v) {
  const m = /^(-?)(\d+)(?:\.(\d+))?$/.exec(String(v ?? '').trim());
  if (!m) return null;
  const frac = (m[3] || '').slice(0, DIGITS).padEnd(DIGITS, '0');
  const n = BigInt(m[2]) * SCALE + BigInt(frac);
  return m[1] ? -n : n;
}

// format turns micro-dollars back into a decimal string with at least
// minDigits decimals and no trailing zeros beyond them.
export function format(n, minDigits = 2) {
  const neg = n < 0n;
  const a = neg ? -n : n;
  let frac = (a % SCALE).toString().padStart(DIGITS, '0').replace(/0+$/, '');
  if (frac.length < minDigits) frac = frac.padEnd(minDigits, '0');
  return (neg ? '-' : '') + (a / SCALE).toString() + (frac ? '.' + frac : '');
}

// usd shows an API money string as dollars, keeping its precision:
// "9.986" -> "$9.986", "-0.014" -> "−$0.014".
export function usd(v) {
  const n = parse(v);
  if (n === null) return String(v ?? '—');
  const s = format(n < 0n ? -n : n);
  return (n < 0n ? '−$' : '$') + s;
}

// signed shows a ledger amount with an explicit sign.
export function signed(v) {
  const n = parse(v);
  if (n === null) return String(v ?? '');
  return (n < 0n ? '−' : '+') + '$' + format(n < 0n ? -n : n);
}

// times multiplies a money string by a whole count.
export function times(v, count) {
  const n = parse(v);
  return n === null ? null : format(n * BigInt(count), 2);
}

// add sums two money strings.
export function add(a, b) {
  const x = parse(a);
  const y = parse(b);
  return x === null || y === null ? null : format(x + y, 2);
}

// wholeHours is how many whole hours balance covers at spend per hour, or
// null when nothing is being spent.
export function wholeHours(balance, spend) {
  const b = parse(balance);
  const s = parse(spend);
  if (b === null || s === null || s <= 0n) return null;
  return Number(b / s);
}

// cmp compares two money strings.
export function cmp(a, b) {
  const x = parse(a);
  const y = parse(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

// toNumber is for drawing only (chart coordinates), never for arithmetic
// that is shown as money.
export function toNumber(v) {
  const n = parse(v);
  return n === null ? 0 : Number(n) / Number(SCALE);
}
