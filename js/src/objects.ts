/**
 * The objects a detector or segmenter predicts, as the objects tab draws
 * them: the `objects` reply decoded, the score threshold, which box is
 * under a click (the smallest of overlapping boxes), box and click
 * coordinates between input pixels and a tile on screen, and the class
 * colours of a segmentation mask with its legend.
 *
 * Coordinates: a box is (x1, y1, x2, y2) in input pixels, pixel i covering
 * [i, i + 1) (torchvision's convention); a tile is a Rect in CSS pixels that
 * shows the whole input image.
 *
 * Pure module: no DOM access.
 */

import { PayloadError, bytesView, float32View } from "./decode";
import type { ReplyContent } from "./messages";
import type { Rect } from "./tiling";

/** One detection: its index in the reply (highest score first), box, score and class. */
export interface Box {
  index: number;
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  score: number;
  label: number;
  name: string;
}

/** One class a segmenter predicts somewhere: its label, name, pixel count and share of the image. */
export interface ClassRegion {
  /** Its value in the mask (position in the reply's labels). */
  position: number;
  label: number;
  name: string;
  pixels: number;
  share: number;
}

export interface DetectionObjects {
  task: "detection";
  height: number;
  width: number;
  /** Lowest score of a box in the reply. */
  floor: number;
  boxes: Box[];
}

export interface SegmentationObjects {
  task: "segmentation";
  height: number;
  width: number;
  /** Most pixels first, background last. */
  classes: ClassRegion[];
  /** maskHeight * maskWidth positions into `classes`. */
  mask: Uint8Array;
  maskHeight: number;
  maskWidth: number;
}

export type Objects = DetectionObjects | SegmentationObjects;

/** The objects of a validated `objects` reply and its buffers. */
export function decodeObjects(c: ReplyContent["objects"], buffers: readonly DataView[]): Objects {
  const [height, width] = c.size as [number, number];
  if (c.task === "detection") {
    const k = c.labels.length;
    const coords = float32View(buffers[0], k * 4, "objects boxes");
    const scores = float32View(buffers[1], k, "objects scores");
    const boxes = c.labels.map((label, i) => ({
      index: i,
      x1: coords[4 * i] as number,
      y1: coords[4 * i + 1] as number,
      x2: coords[4 * i + 2] as number,
      y2: coords[4 * i + 3] as number,
      score: scores[i] as number,
      label,
      name: c.label_names[i] ?? String(label),
    }));
    return { task: "detection", height, width, floor: c.floor ?? 0, boxes };
  }
  const [maskHeight, maskWidth] = c.mask_shape as [number, number];
  const mask = bytesView(buffers[0], "objects mask");
  if (mask.length !== maskHeight * maskWidth) {
    throw new PayloadError(`objects mask: ${mask.length} bytes for ${maskHeight} x ${maskWidth}`);
  }
  const pixels = c.pixels ?? [];
  const total = pixels.reduce((a, b) => a + b, 0);
  const classes = c.labels.map((label, i) => ({
    position: i,
    label,
    name: c.label_names[i] ?? String(label),
    pixels: pixels[i] ?? 0,
    share: total > 0 ? (pixels[i] ?? 0) / total : 0,
  }));
  for (const v of mask) {
    if (v >= classes.length) throw new PayloadError(`objects mask: value ${v} names no class (${classes.length} classes)`);
  }
  return { task: "segmentation", height, width, classes, mask, maskHeight, maskWidth };
}

/** The boxes with a score of at least `threshold`, in their order (highest score first). */
export function visibleBoxes(boxes: readonly Box[], threshold: number): Box[] {
  return boxes.filter((b) => b.score >= threshold);
}

function area(b: Box): number {
  return (b.x2 - b.x1) * (b.y2 - b.y1);
}

/**
 * The box under the point (x, y) in input pixels, edges included: of
 * overlapping boxes the smallest (a box inside another stays clickable),
 * of equal ones the first (highest score). Null when no box holds it.
 */
export function boxAt(boxes: readonly Box[], x: number, y: number): Box | null {
  let best: Box | null = null;
  for (const b of boxes) {
    if (x < b.x1 || x > b.x2 || y < b.y1 || y > b.y2) continue;
    if (best === null || area(b) < area(best)) best = b;
  }
  return best;
}

/** A point of `tile` (CSS pixels, the tile's own coordinates added) in input pixels of a height x width image. */
export function tileToImage(x: number, y: number, tile: Rect, height: number, width: number): { x: number; y: number } {
  return { x: ((x - tile.x) * width) / tile.width, y: ((y - tile.y) * height) / tile.height };
}

/** A box in input pixels as a rectangle on `tile` (CSS pixels), for a height x width image. */
export function boxRect(box: Readonly<Pick<Box, "x1" | "y1" | "x2" | "y2">>, tile: Rect, height: number, width: number): Rect {
  const sx = tile.width / width;
  const sy = tile.height / height;
  return { x: tile.x + box.x1 * sx, y: tile.y + box.y1 * sy, width: (box.x2 - box.x1) * sx, height: (box.y2 - box.y1) * sy };
}

/**
 * Where a box's label goes: above the box when it fits there, else inside
 * its top edge; shifted left to stay within `bounds` (the tile).
 */
export function labelPlace(box: Rect, textWidth: number, textHeight: number, bounds: Rect): { x: number; y: number } {
  const above = box.y - textHeight >= bounds.y;
  const y = above ? box.y - textHeight : Math.max(bounds.y, box.y);
  const x = Math.max(bounds.x, Math.min(box.x, bounds.x + bounds.width - textWidth));
  return { x, y };
}

function overlaps(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

/**
 * Places for the labels of several boxes that do not cover each other:
 * each at its `labelPlace`, moved down by its height while it overlaps a
 * label placed before it (earlier labels keep their place: pass the most
 * important first), as long as it stays within `bounds`.
 */
export function placeLabels(items: readonly { box: Rect; width: number }[], height: number, bounds: Rect): { x: number; y: number }[] {
  const placed: Rect[] = [];
  return items.map(({ box, width }) => {
    const at = labelPlace(box, width, height, bounds);
    const rect = { x: at.x, y: at.y, width, height };
    while (placed.some((q) => overlaps(q, rect)) && rect.y + 2 * height <= bounds.y + bounds.height) rect.y += height;
    placed.push(rect);
    return { x: rect.x, y: rect.y };
  });
}

/** The mask value (class position) at input pixel (x, y), or null outside the image. */
export function maskAt(objects: SegmentationObjects, x: number, y: number): number | null {
  if (x < 0 || y < 0 || x >= objects.width || y >= objects.height) return null;
  const row = Math.min(objects.maskHeight - 1, Math.floor((y * objects.maskHeight) / objects.height));
  const col = Math.min(objects.maskWidth - 1, Math.floor((x * objects.maskWidth) / objects.width));
  return objects.mask[row * objects.maskWidth + col] ?? null;
}

/** The class region at input pixel (x, y) of a segmentation, or null outside the image. */
export function classAt(objects: SegmentationObjects, x: number, y: number): ClassRegion | null {
  const position = maskAt(objects, x, y);
  return position === null ? null : (objects.classes[position] ?? null);
}

/** Distinct colours for classes (Tableau's 10, then their lighter tints), RGB. */
export const PALETTE: readonly (readonly [number, number, number])[] = [
  [31, 119, 180], [255, 127, 14], [44, 160, 44], [214, 39, 40], [148, 103, 189],
  [140, 86, 75], [227, 119, 194], [188, 189, 34], [23, 190, 207], [127, 127, 127],
  [174, 199, 232], [255, 187, 120], [152, 223, 138], [255, 152, 150], [197, 176, 213],
  [196, 156, 148], [247, 182, 210], [219, 219, 141], [158, 218, 229], [199, 199, 199],
];

/** The background label (torchvision's and the demos' convention): drawn without colour. */
export const BACKGROUND = 0;

/** The colour of class `label` (the same label, the same colour, in every image). */
export function classColor(label: number): readonly [number, number, number] {
  const n = PALETTE.length;
  return PALETTE[(((label - 1) % n) + n) % n] as readonly [number, number, number];
}

/** "rgb(r, g, b)" of a colour. */
export function cssColor(c: readonly [number, number, number]): string {
  return `rgb(${c[0]}, ${c[1]}, ${c[2]})`;
}

export interface LegendEntry {
  label: number;
  name: string;
  /** Share of the image's pixels, in [0, 1]. */
  share: number;
  /** Null for the background (not coloured). */
  color: readonly [number, number, number] | null;
}

/** The legend of a segmentation: one entry per class it predicts, in the reply's order. */
export function legend(objects: SegmentationObjects): LegendEntry[] {
  return objects.classes.map((c) => ({
    label: c.label,
    name: c.name,
    share: c.share,
    color: c.label === BACKGROUND ? null : classColor(c.label),
  }));
}

/** The colour of the lines between regions, and how much it covers the image there. */
export const EDGE: readonly [number, number, number] = [20, 20, 20];
export const EDGE_ALPHA = 0.75;

/**
 * The image with the predicted classes over it: out = (1 - a) * image +
 * a * colour, a = `alpha` for class `selected` (a label) or when nothing is
 * selected, a / 2 for the other classes, 0 for the background; a pixel whose
 * class differs from its right or lower neighbour's is a line between
 * regions (EDGE at EDGE_ALPHA), so that regions show on any image. `rgb` is
 * the height * width * 3 input image, `out` height * width * 4 RGBA (opaque).
 */
export function paintMask(rgb: Uint8Array, objects: SegmentationObjects, alpha: number, selected: number | null, out: Uint8ClampedArray): void {
  const { height, width } = objects;
  if (rgb.length !== height * width * 3 || out.length !== height * width * 4) {
    throw new RangeError(`mask overlay: image ${rgb.length} bytes and output ${out.length} for ${height} x ${width}`);
  }
  const colours = objects.classes.map((c) => (c.label === BACKGROUND ? null : classColor(c.label)));
  const weights = objects.classes.map((c) => (c.label === BACKGROUND ? 0 : selected === null || c.label === selected ? alpha : alpha / 2));
  const rowOf = Int32Array.from({ length: height }, (_, y) => Math.min(objects.maskHeight - 1, Math.floor((y * objects.maskHeight) / height)));
  const colOf = Int32Array.from({ length: width }, (_, x) => Math.min(objects.maskWidth - 1, Math.floor((x * objects.maskWidth) / width)));
  const at = (y: number, x: number): number => objects.mask[(rowOf[y] as number) * objects.maskWidth + (colOf[x] as number)] as number;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const p = at(y, x);
      const edge = (x + 1 < width && at(y, x + 1) !== p) || (y + 1 < height && at(y + 1, x) !== p);
      const i = y * width + x;
      const c = edge ? EDGE : colours[p];
      const a = edge ? EDGE_ALPHA : c ? (weights[p] as number) : 0;
      for (let k = 0; k < 3; k++) {
        out[4 * i + k] = (1 - a) * (rgb[3 * i + k] as number) + a * (c ? (c[k] as number) : 0);
      }
      out[4 * i + 3] = 255;
    }
  }
}

/**
 * The object explained: `target` when it is one of `objects` (a box index
 * of a detector, a class label of a segmenter), else the first one (the
 * highest-scoring box; the largest class other than the background); null
 * when there is none.
 */
export function chosenObject(target: number, objects: Objects): number | null {
  if (objects.task === "detection") {
    if (target >= 0 && target < objects.boxes.length) return target;
    return objects.boxes[0]?.index ?? null;
  }
  if (objects.classes.some((c) => c.label === target)) return target;
  return objects.classes[0]?.label ?? null;
}
