/**
 * The channels of an actmax request, as a person types them.
 *
 * Pure module: no DOM access.
 */

/**
 * The channels of an actmax request, as a person types them: "0-7",
 * "3, 5, 9", "0-3,10". Sorted and unique; throws a RangeError naming the problem.
 */
export function parseChannels(input: string, count: number, maxItems = 64): number[] {
  const out = new Set<number>();
  for (const part of input.split(",")) {
    const s = part.trim();
    if (!s) continue;
    const m = /^(\d+)\s*(?:-\s*(\d+))?$/.exec(s);
    if (!m) throw new RangeError(`"${s}" is not a channel or a range like 0-7`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new RangeError(`range ${s} runs backwards`);
    if (b >= count) throw new RangeError(`channel ${b} out of range: the layer has ${count} (0-${count - 1})`);
    for (let c = a; c <= b; c++) {
      out.add(c);
      if (out.size > maxItems) throw new RangeError(`at most ${maxItems} channels at once`);
    }
  }
  if (out.size === 0) throw new RangeError("no channel given");
  return [...out].sort((x, y) => x - y);
}
