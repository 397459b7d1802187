/**
 * How one conv unit's value is made, as numbers: per input channel, the sum
 * of the patch × kernel products; the channels that add most; the rest
 * summed; the bias; the total against the value the layer output.
 *
 * Pure module: no DOM access.
 */

import { PayloadError, float32View } from "./decode";

/** One input channel's part of the sum. */
export interface ChannelTerm {
  /** Position in the patch / kernel arrays (0 .. C_in/groups - 1). */
  index: number;
  /** The input channel it reads (a channel of the layer's input). */
  channel: number;
  /** Sum of its kh × kw products. */
  sum: number;
}

/** The float32 arrays of an arithmetic reply, `(C, kh, kw)` each, checked against `kernelShape`. */
export function arithmeticArrays(
  buffers: readonly DataView[],
  kernelShape: readonly number[],
): { patch: Float32Array; kernel: Float32Array; products: Float32Array } {
  if (kernelShape.length !== 3) throw new PayloadError("arithmetic: kernel_shape must be [C, kh, kw]");
  const n = kernelShape.reduce((a, b) => a * b, 1);
  const [patch, kernel, products] = [0, 1, 2].map((i) => float32View(buffers[i], n, `arithmetic buffer ${i}`)) as [
    Float32Array,
    Float32Array,
    Float32Array,
  ];
  return { patch, kernel, products };
}

/** Every input channel's sum of products, largest magnitude first (ties: lower index). */
export function channelTerms(products: Float32Array, kernelShape: readonly number[], inputChannels: readonly number[]): ChannelTerm[] {
  const [c = 0, kh = 0, kw = 0] = kernelShape;
  const size = kh * kw;
  const terms: ChannelTerm[] = [];
  for (let i = 0; i < c; i++) {
    let sum = 0;
    for (let j = 0; j < size; j++) sum += products[i * size + j] as number;
    terms.push({ index: i, channel: inputChannels[i] ?? i, sum });
  }
  return terms.sort((a, b) => Math.abs(b.sum) - Math.abs(a.sum) || a.index - b.index);
}

/** The first `shown` terms, and the count and sum of the others. */
export function splitTerms(terms: readonly ChannelTerm[], shown: number): { shown: ChannelTerm[]; rest: { count: number; sum: number } } {
  const rest = terms.slice(shown);
  return { shown: terms.slice(0, shown), rest: { count: rest.length, sum: rest.reduce((a, t) => a + t.sum, 0) } };
}

/** Whether the sum plus bias equals what the layer output, to float32 tolerance. */
export function agrees(value: number, output: number): boolean {
  return Math.abs(value - output) <= 1e-4 * Math.max(1, Math.abs(output));
}
