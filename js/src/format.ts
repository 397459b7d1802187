/**
 * Text for values and shapes shown in the widgets.
 *
 * Pure module: no DOM access.
 */

/**
 * A number with `digits` significant digits in the style of C's and
 * Python's "%g": fixed notation when the decimal exponent e satisfies
 * -4 <= e < digits, exponent notation otherwise ("1.235e-05", "3e+07"),
 * trailing zeros dropped. Differences from Python's format(v, ".4g"):
 * negative zero gives "0", NaN gives "NaN", infinities give "∞" / "-∞",
 * and an exact binary tie (such as 1.0625 to 4 digits) rounds away from
 * zero rather than to even.
 */
export function formatValue(v: number, digits = 4): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "∞";
  if (v === -Infinity) return "-∞";
  if (v === 0) return "0";
  const p = Math.min(21, Math.max(1, Math.floor(digits)));
  // The exponent after rounding to p digits (9.9996 -> 1.000e+1).
  const exp = Number(v.toExponential(p - 1).split("e")[1]);
  if (exp < -4 || exp >= p) {
    const [mantissa, e] = v.toExponential(p - 1).split("e") as [string, string];
    const sign = e.startsWith("-") ? "-" : "+";
    const mag = e.replace(/^[+-]/, "").padStart(2, "0");
    return `${stripZeros(mantissa)}e${sign}${mag}`;
  }
  return stripZeros(v.toFixed(Math.max(0, p - 1 - exp)));
}

function stripZeros(s: string): string {
  if (!s.includes(".")) return s;
  return s.replace(/0+$/, "").replace(/\.$/, "");
}

/** A shape as "64 × 112 × 112" (U+00D7 between dimensions). */
export function formatShape(shape: readonly number[]): string {
  return shape.map((n) => String(n)).join(" × ");
}

/** A range as "[lo, hi]" with values from formatValue. */
export function formatRange(lo: number, hi: number, digits = 4): string {
  return `[${formatValue(lo, digits)}, ${formatValue(hi, digits)}]`;
}

/** An integer with thin-space thousands separators: 1 234 567. */
export function formatCount(n: number): string {
  if (!Number.isFinite(n)) return formatValue(n);
  const s = String(Math.round(Math.abs(n)));
  const grouped = s.replace(/\B(?=(\d{3})+(?!\d))/g, "\u2009");
  return n < 0 && Math.round(n) !== 0 ? `-${grouped}` : grouped;
}
