/**
 * The objects tab's pure parts (src/objects.ts): the `objects` reply parsed
 * and decoded, threshold filtering, the box under a click (the smallest of
 * overlapping boxes), coordinates between input pixels and a tile, label
 * placement, the class mask's colours, legend and overlay, the object
 * explained by default; and the object_cam reply's validation.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseMessage } from "../src/messages";
import {
  type Box,
  type SegmentationObjects,
  BACKGROUND,
  EDGE,
  EDGE_ALPHA,
  PALETTE,
  boxAt,
  boxRect,
  chosenObject,
  classAt,
  classColor,
  decodeObjects,
  labelPlace,
  legend,
  maskAt,
  paintMask,
  placeLabels,
  tileToImage,
  visibleBoxes,
} from "../src/objects";

function box(index: number, x1: number, y1: number, x2: number, y2: number, score: number, label = 1): Box {
  return { index, x1, y1, x2, y2, score, label, name: `c${label}` };
}

/** A reply as Python sends it: content with float32 little-endian buffers. */
function detectionReply(boxes: number[][], scores: number[], labels: number[]) {
  const coords = new DataView(new ArrayBuffer(boxes.length * 16));
  boxes.flat().forEach((v, i) => coords.setFloat32(i * 4, v, true));
  const s = new DataView(new ArrayBuffer(scores.length * 4));
  scores.forEach((v, i) => s.setFloat32(i * 4, v, true));
  const msg = {
    type: "reply", id: 1, key: "objects|1", kind: "objects", task: "detection", size: [40, 60], floor: 0.05,
    labels, label_names: labels.map((l) => `c${l}`), boxes: { shape: [boxes.length, 4] }, scores: { shape: [scores.length] },
  };
  return { msg, buffers: [coords, s] };
}

function segmentation(mask: number[][], labels: number[], pixels: number[], size: [number, number] = [mask.length, mask[0]?.length ?? 0]): SegmentationObjects {
  const msg = {
    type: "reply", id: 1, key: "objects|1", kind: "objects", task: "segmentation", size, labels,
    label_names: labels.map((l) => `c${l}`), pixels, mask: { shape: [mask.length, mask[0]?.length ?? 0] },
  };
  const parsed = parseMessage(msg, [new Uint8Array(mask.flat())]);
  assert.ok(parsed?.type === "reply" && parsed.reply.kind === "objects");
  const objects = decodeObjects(parsed.reply.content as never, parsed.reply.buffers);
  assert.equal(objects.task, "segmentation");
  return objects as SegmentationObjects;
}

describe("objects reply", () => {
  it("decodes a detector's boxes, scores and labels from float32 buffers", () => {
    const { msg, buffers } = detectionReply([[1, 2, 30, 20.5], [10, 10, 20, 15]], [0.9, 0.25], [3, 1]);
    const parsed = parseMessage(msg, buffers);
    assert.ok(parsed?.type === "reply" && parsed.reply.kind === "objects");
    const objects = decodeObjects(parsed.reply.content as never, parsed.reply.buffers);
    assert.equal(objects.task, "detection");
    if (objects.task !== "detection") return;
    assert.equal(objects.height, 40);
    assert.equal(objects.width, 60);
    assert.equal(objects.floor, 0.05);
    assert.deepEqual(objects.boxes.map((b) => [b.index, b.x1, b.y1, b.x2, b.y2, b.label, b.name]), [
      [0, 1, 2, 30, 20.5, 3, "c3"],
      [1, 10, 10, 20, 15, 1, "c1"],
    ]);
    assert.ok(Math.abs((objects.boxes[1]?.score ?? 0) - 0.25) < 1e-7);
  });

  it("rejects replies whose boxes, names or buffers do not fit", () => {
    const { msg, buffers } = detectionReply([[1, 2, 3, 4]], [0.5], [1]);
    assert.throws(() => parseMessage({ ...msg, boxes: { shape: [2, 4] } }, buffers), /boxes must be \[1, 4\]/);
    assert.throws(() => parseMessage({ ...msg, label_names: [] }, buffers), /label_names/);
    assert.throws(() => parseMessage(msg, buffers.slice(0, 1)), /2 buffers/);
    assert.throws(() => parseMessage({ ...msg, task: "classification" }, buffers), /task/);
    const seg = { ...msg, task: "segmentation", mask: { shape: [2, 2] }, pixels: [1, 2] };
    assert.throws(() => parseMessage(seg, [new Uint8Array(4)]), /pixels must count each of the 1 classes/);
  });

  it("decodes a segmenter's mask and pixel shares, and refuses mask values that name no class", () => {
    const objects = segmentation([[0, 0, 1], [2, 1, 1]], [4, 1, 0], [2, 3, 1]);
    assert.deepEqual(objects.classes.map((c) => [c.position, c.label, c.pixels]), [[0, 4, 2], [1, 1, 3], [2, 0, 1]]);
    assert.deepEqual(objects.classes.map((c) => c.share), [2 / 6, 3 / 6, 1 / 6]);
    assert.throws(() => segmentation([[0, 3]], [4, 1], [1, 1]), /value 3 names no class/);
  });

  it("validates an object_cam reply: one-map stack, what it explains, a box of 4 numbers or null", () => {
    const stack = { shape: [1, 2, 2], range_dtype: "float32" };
    const bufs = [new Uint8Array(4), new Uint8Array(4), new Uint8Array(4)];
    const content = { stack, method: "GradCAM", layer: "backbone.body", object: 2, label: 5, class_name: "ring #3", score: 0.8, box: [1, 2, 3, 4], normalize: true };
    const parsed = parseMessage({ type: "reply", id: 3, key: "k", kind: "object_cam", ...content }, bufs);
    assert.ok(parsed?.type === "reply" && parsed.reply.kind === "object_cam");
    assert.deepEqual(parsed.reply.content, content);
    assert.throws(() => parseMessage({ type: "reply", id: 3, key: "k", kind: "object_cam", ...content, box: [1, 2] }, bufs), /box must be/);
    const noBox = parseMessage({ type: "reply", id: 3, key: "k", kind: "object_cam", ...content, box: null, normalize: false }, bufs);
    assert.ok(noBox?.type === "reply" && noBox.reply.kind === "object_cam" && noBox.reply.content.box === null);
  });
});

describe("boxes", () => {
  const boxes = [box(0, 0, 0, 50, 40, 0.95), box(1, 10, 10, 20, 20, 0.6), box(2, 12, 12, 18, 18, 0.3), box(3, 30, 5, 45, 15, 0.05)];

  it("keeps the boxes at or above the threshold, in order", () => {
    assert.deepEqual(visibleBoxes(boxes, 0.5).map((b) => b.index), [0, 1]);
    assert.deepEqual(visibleBoxes(boxes, 0.3).map((b) => b.index), [0, 1, 2]);
    assert.deepEqual(visibleBoxes(boxes, 0).map((b) => b.index), [0, 1, 2, 3]);
    assert.deepEqual(visibleBoxes(boxes, 0.96), []);
  });

  it("finds the smallest box under a click, edges included; none outside every box", () => {
    assert.equal(boxAt(boxes, 15, 15)?.index, 2); // inside 0, 1 and 2: the smallest
    assert.equal(boxAt(boxes, 11, 11)?.index, 1);
    assert.equal(boxAt(boxes, 2, 35)?.index, 0);
    assert.equal(boxAt(boxes, 10, 20)?.index, 1); // a corner of box 1
    assert.equal(boxAt(boxes, 51, 10), null);
    // hidden boxes are not clickable: the caller passes the visible ones
    assert.equal(boxAt(visibleBoxes(boxes, 0.5), 15, 15)?.index, 1);
    // equal boxes: the first (highest score)
    assert.equal(boxAt([box(5, 0, 0, 4, 4, 0.9), box(6, 0, 0, 4, 4, 0.8)], 2, 2)?.index, 5);
  });

  it("maps boxes onto a tile and clicks back into input pixels (scaled, offset)", () => {
    const tile = { x: 200, y: 10, width: 300, height: 200 }; // a 40 x 60 image shown 5x
    assert.deepEqual(boxRect(box(0, 6, 4, 12, 10, 1), tile, 40, 60), { x: 230, y: 30, width: 30, height: 30 });
    assert.deepEqual(tileToImage(230, 30, tile, 40, 60), { x: 6, y: 4 });
    assert.deepEqual(tileToImage(500, 210, tile, 40, 60), { x: 60, y: 40 });
    // a round trip for a non-square scale
    const wide = { x: 0, y: 0, width: 120, height: 40 };
    const r = boxRect(box(0, 3, 5, 9, 20, 1), wide, 40, 60);
    assert.deepEqual([tileToImage(r.x, r.y, wide, 40, 60), tileToImage(r.x + r.width, r.y + r.height, wide, 40, 60)], [{ x: 3, y: 5 }, { x: 9, y: 20 }]);
  });

  it("puts a label above its box when it fits, else inside its top, and within the tile", () => {
    const tile = { x: 0, y: 0, width: 100, height: 100 };
    assert.deepEqual(labelPlace({ x: 10, y: 40, width: 30, height: 20 }, 50, 15, tile), { x: 10, y: 25 });
    assert.deepEqual(labelPlace({ x: 10, y: 5, width: 30, height: 20 }, 50, 15, tile), { x: 10, y: 5 });
    assert.deepEqual(labelPlace({ x: 80, y: 40, width: 15, height: 20 }, 50, 15, tile), { x: 50, y: 25 });
  });
});

describe("labels", () => {
  const tile = { x: 0, y: 0, width: 100, height: 100 };

  it("stack the labels of boxes in the same place, the first one kept where it was", () => {
    const box = { x: 10, y: 40, width: 30, height: 20 };
    const other = { x: 60, y: 70, width: 30, height: 20 };
    assert.deepEqual(placeLabels([{ box, width: 40 }, { box, width: 50 }, { box: other, width: 20 }, { box, width: 10 }], 15, tile), [
      { x: 10, y: 25 },
      { x: 10, y: 40 },
      { x: 60, y: 55 },
      { x: 10, y: 55 },
    ]);
  });

  it("leave a label that would go past the tile's bottom where it was", () => {
    const box = { x: 10, y: 80, width: 30, height: 20 };
    assert.deepEqual(placeLabels([{ box, width: 40 }, { box, width: 40 }], 15, tile), [{ x: 10, y: 65 }, { x: 10, y: 80 }]);
    const low = { x: 10, y: 92, width: 30, height: 8 };
    assert.deepEqual(placeLabels([{ box: low, width: 40 }, { box: low, width: 40 }], 15, tile), [{ x: 10, y: 77 }, { x: 10, y: 77 }]);
  });
});

describe("segmentation", () => {
  const objects = segmentation([[0, 0, 1, 1], [0, 2, 2, 1]], [3, 1, 0], [3, 3, 2]);

  it("reads the class under a point, scaling the mask to the image", () => {
    assert.equal(classAt(objects, 0.5, 0.5)?.label, 3);
    assert.equal(classAt(objects, 3.9, 1.2)?.label, 1);
    assert.equal(classAt(objects, 1, 1)?.label, BACKGROUND);
    assert.equal(classAt(objects, 4, 0), null);
    assert.equal(classAt(objects, -0.1, 0), null);
    // a 2 x 4 mask under an 8 x 16 image: each mask pixel covers 4 x 4 image pixels
    const big = segmentation([[0, 0, 1, 1], [0, 2, 2, 1]], [3, 1, 0], [3, 3, 2], [8, 16]);
    assert.equal(maskAt(big, 15.5, 7.5), 1);
    assert.equal(maskAt(big, 4.2, 4.1), 2);
    assert.equal(classAt(big, 3.9, 3.9)?.label, 3);
  });

  it("colours each class by its label, the background not at all, in a legend of shares", () => {
    assert.deepEqual(classColor(1), PALETTE[0]);
    assert.deepEqual(classColor(21), PALETTE[0]);
    assert.notDeepEqual(classColor(2), classColor(3));
    assert.deepEqual(legend(objects), [
      { label: 3, name: "c3", share: 3 / 8, color: PALETTE[2] },
      { label: 1, name: "c1", share: 3 / 8, color: PALETTE[0] },
      { label: 0, name: "c0", share: 2 / 8, color: null },
    ]);
  });

  it("blends the class colours over the image: the chosen class strongly, others half, background untouched, lines between regions", () => {
    // classes 3 | 1 left and right, background in the last row; 3 x 4 image over a 3 x 4 mask
    const regions = segmentation([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 2, 2]], [3, 1, 0], [4, 4, 4]);
    const rgb = new Uint8Array(3 * 4 * 3).fill(100);
    const out = new Uint8ClampedArray(3 * 4 * 4);
    paintMask(rgb, regions, 0.6, 3, out);
    const px = (y: number, x: number): number[] => [...out.subarray(4 * (y * 4 + x), 4 * (y * 4 + x) + 4)];
    const mix = (a: number, c: readonly number[]): number[] => [...c.map((v) => Math.round((1 - a) * 100 + a * v)), 255];
    assert.deepEqual(px(0, 0), mix(0.6, classColor(3))); // chosen class 3, inside its region
    assert.deepEqual(px(0, 2), mix(0.3, classColor(1))); // class 1: half as strong
    assert.deepEqual(px(2, 1), [100, 100, 100, 255]); // background
    // a pixel whose right or lower neighbour is another class is a line between regions
    for (const [y, x] of [[0, 1], [1, 0], [1, 1], [1, 3]]) assert.deepEqual(px(y as number, x as number), mix(EDGE_ALPHA, EDGE), `${y}, ${x}`);
    paintMask(rgb, regions, 0.6, null, out); // nothing chosen: every class at full opacity
    assert.deepEqual(px(0, 2), mix(0.6, classColor(1)));
    assert.throws(() => paintMask(rgb.subarray(3), regions, 0.5, null, out), /mask overlay/);
  });

  it("scales up a mask kept smaller than the image (a saved notebook's large mask)", () => {
    // a 2 x 2 mask under a 4 x 4 image: each mask pixel covers a 2 x 2 block
    const small = segmentation([[0, 1], [1, 1]], [3, 0], [1, 3], [4, 4]);
    const rgb = new Uint8Array(4 * 4 * 3).fill(100);
    const out = new Uint8ClampedArray(4 * 4 * 4);
    paintMask(rgb, small, 0.6, null, out);
    const px = (y: number, x: number): number[] => [...out.subarray(4 * (y * 4 + x), 4 * (y * 4 + x) + 4)];
    const three = [...classColor(3).map((v) => Math.round(0.4 * 100 + 0.6 * v)), 255];
    assert.deepEqual(px(0, 0), three); // the block of class 3, inside
    assert.deepEqual(px(3, 3), [100, 100, 100, 255]); // background
    assert.deepEqual(px(0, 1), [...EDGE.map((v) => Math.round((1 - EDGE_ALPHA) * 100 + EDGE_ALPHA * v)), 255]); // its right edge
    assert.deepEqual(px(2, 2), [100, 100, 100, 255]);
  });
});

describe("the object explained", () => {
  it("is the chosen box or class when there is one, else the top box or the largest class", () => {
    const det = { task: "detection" as const, height: 10, width: 10, floor: 0.05, boxes: [box(0, 0, 0, 5, 5, 0.9), box(1, 1, 1, 4, 4, 0.5)] };
    assert.equal(chosenObject(1, det), 1);
    assert.equal(chosenObject(-1, det), 0);
    assert.equal(chosenObject(7, det), 0);
    assert.equal(chosenObject(-1, { ...det, boxes: [] }), null);
    const seg = segmentation([[0, 1], [2, 2]], [5, 2, 0], [2, 1, 1]);
    assert.equal(chosenObject(2, seg), 2);
    assert.equal(chosenObject(-1, seg), 5);
    assert.equal(chosenObject(9, seg), 5); // not predicted in this image
  });
});
