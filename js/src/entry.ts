/**
 * What the front end keeps of a reply: the validated content and buffers,
 * whether it is a partial snapshot, and what the views decoded from it
 * (decoded once, drawn many times).
 *
 * Pure module: no DOM access.
 */

import { type MapStack, type RgbStack, decodeMapStack, decodeRgbStack } from "./decode";
import { type Translate, t as defaultT } from "./i18n";
import { type PartialInfo, type Reply, type RequestKind, bufferBytes, rgbPayload, stackPayload } from "./messages";
import type { ChannelOrder } from "./order";

/** Decoded views of an entry's buffers, filled on first use. */
export interface Decoded {
  stack?: MapStack;
  rgb?: RgbStack;
  orders?: Map<ChannelOrder, number[]>;
}

export type Entry<K extends RequestKind = RequestKind> = Reply<K> & { decoded: Decoded };

/** Bytes an entry is charged in the cache besides its buffers. */
export const ENTRY_OVERHEAD = 256;

export function makeEntry<K extends RequestKind>(reply: Reply<K>): Entry<K> {
  return { ...reply, decoded: {} };
}

export function entryBytes(entry: Entry): number {
  return bufferBytes(entry.buffers) + ENTRY_OVERHEAD;
}

/**
 * The partial-snapshot rule: a partial snapshot never replaces a complete
 * entry; anything else replaces what is there.
 */
export function mayReplace(old: { partial: PartialInfo | null } | undefined, next: { partial: PartialInfo | null }): boolean {
  return !(next.partial !== null && old !== undefined && old.partial === null);
}

/** The note drawn beside a partial snapshot. */
export function partialNote(p: PartialInfo, t: Translate = defaultT): string {
  return t("entry.partial", { channels: p.channels, of: p.of });
}

/** The map stack of an entry (decoded once). */
export function stackOf(entry: Entry<"features" | "kernels" | "cam" | "saliency">): MapStack {
  return (entry.decoded.stack ??= decodeMapStack(stackPayload(entry.content.stack, entry.buffers)));
}

/** The RGB filters of a kernels entry (buffer 3), or null when it has none. */
export function rgbOf(entry: Entry<"kernels">): RgbStack | null {
  const meta = entry.content.rgb;
  if (!meta) return null;
  return (entry.decoded.rgb ??= decodeRgbStack(rgbPayload(meta, entry.buffers, 3)));
}
