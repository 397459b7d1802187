/**
 * Channel ordering for the feature-map grid: by channel index or by mean
 * activation (strongest first), computed from the quantised levels and each
 * map's lo/hi, so no float data is needed.
 *
 * Pure module: no DOM access.
 */

import type { MapStack } from "./decode";

export type ChannelOrder = "index" | "mean";
export const CHANNEL_ORDERS: readonly ChannelOrder[] = ["index", "mean"];

/** Mean real value of every map: lo + (hi - lo) * mean(levels) / 255. */
export function channelMeans(stack: MapStack): Float64Array {
  const out = new Float64Array(stack.channels);
  const n = stack.mapSize;
  for (let c = 0; c < stack.channels; c++) {
    const lo = stack.lo[c] as number;
    const hi = stack.hi[c] as number;
    if (n === 0 || hi === lo) {
      out[c] = lo;
      continue;
    }
    let sum = 0;
    const base = c * n;
    for (let i = 0; i < n; i++) sum += stack.data[base + i] as number;
    out[c] = lo + ((hi - lo) * (sum / n)) / 255;
  }
  return out;
}

/**
 * Map indices in display order: `index` is 0..C-1; `mean` sorts by mean
 * value, largest first, ties by index (a stable order).
 */
export function channelOrder(stack: MapStack, order: ChannelOrder): number[] {
  const indices = Array.from({ length: stack.channels }, (_, i) => i);
  if (order === "index") return indices;
  const means = channelMeans(stack);
  return indices.sort((a, b) => (means[b] as number) - (means[a] as number) || a - b);
}
