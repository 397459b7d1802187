/**
 * Model traits the generic view reads. The binary fields follow the data
 * contract in decode.ts; every trait may be missing.
 */

import type { MapStackPayload } from "./decode";

export interface GenericTraits {
  [key: string]: unknown;
  /** Map stack to show as a grid of tiles. */
  maps?: MapStackPayload | null;
  /** Colour table: 256 RGBA entries (DataView of 1024 bytes). */
  colormap?: DataView | null;
  /** Title above the grid (plain text). */
  title?: string | null;
  /** Optional: "map" (default), "layer" or "global". */
  color_scale?: string | null;
  /** Optional: centre the colour range on zero. */
  symmetric?: boolean | null;
  /** Optional: [lo, hi] display range for color_scale "global". */
  value_range?: readonly [number, number] | null;
}

/** Traits whose change redraws the grid. */
export const DRAW_TRAITS = ["maps", "colormap", "color_scale", "symmetric", "value_range"] as const;
