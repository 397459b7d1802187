import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  Colorizer,
  checkRange,
  colorOfValue,
  colorizeLevels,
  colorizeMap,
  grayColorTable,
  levelIndexTable,
  levelLut,
  rgbItemToRgba,
  stackRange,
  symmetricRange,
  tableColor,
} from "../src/colormap";
import { decodeMapStack, decodeRgbStack } from "../src/decode";
import { indexTable, mapPayload, reds, rgbPayload } from "./helpers";

const ALL_LEVELS = Array.from({ length: 256 }, (_, q) => q);

/** One 1 x 256 map per (lo, hi) holding every level 0..255. */
function levelStack(ranges: [number, number][]) {
  return decodeMapStack(
    mapPayload({
      shape: [ranges.length, 1, 256],
      levels: ranges.flatMap(() => ALL_LEVELS),
      lo: ranges.map((r) => r[0]),
      hi: ranges.map((r) => r[1]),
    }),
  );
}

describe("levelIndexTable", () => {
  it("is the identity for the map's own range", () => {
    assert.deepEqual([...levelIndexTable(-2, 5, { lo: -2, hi: 5 })], ALL_LEVELS);
  });

  it("remaps levels into a wider range", () => {
    // Map [0, 1] shown in [0, 2]: level q has value q/255 -> index q/2.
    const t = levelIndexTable(0, 1, { lo: 0, hi: 2 });
    assert.equal(t[0], 0);
    assert.equal(t[1], 1); // 0.5 rounds up
    assert.equal(t[2], 1);
    assert.equal(t[128], 64);
    assert.equal(t[255], 128); // 127.5 rounds up
  });

  it("offsets into a range that starts elsewhere", () => {
    // Map [0, 1] in [-1, 3]: index = (v + 1) * 255 / 4.
    const t = levelIndexTable(0, 1, { lo: -1, hi: 3 });
    assert.equal(t[0], 64); // 63.75
    assert.equal(t[255], 128); // 127.5
    assert.equal(t[51], 77); // v = 0.2 -> 1.2 * 255 / 4 = 76.5, rounds up
  });

  it("clamps values outside the range", () => {
    const t = levelIndexTable(-1, 1, { lo: 0, hi: 0.5 });
    assert.equal(t[0], 0);
    assert.equal(t[127], 0); // v slightly below 0
    assert.equal(t[255], 255);
    assert.equal(t[200], 255); // v = 0.569 > 0.5
  });

  it("handles constant maps and zero-width ranges", () => {
    // Constant map against its own (zero-width) range: lowest colour.
    assert.deepEqual([...levelIndexTable(3, 3, { lo: 3, hi: 3 })], new Array(256).fill(0));
    // ... centre colour when the scale is symmetric (value 0 in [0, 0]).
    assert.deepEqual([...levelIndexTable(0, 0, { lo: 0, hi: 0 }, true)], new Array(256).fill(128));
    // Constant map inside a real range: its value's colour for every level.
    assert.deepEqual([...levelIndexTable(1, 1, { lo: 0, hi: 2 })], new Array(256).fill(128));
    // Zero-width range [1, 1]: below -> 0, above -> 255.
    const t = levelIndexTable(0, 2, { lo: 1, hi: 1 });
    assert.equal(t[0], 0);
    assert.equal(t[255], 255);
  });
});

describe("ranges", () => {
  it("stackRange is min lo .. max hi", () => {
    assert.deepEqual(stackRange(levelStack([[0, 1], [-3, 0.5], [0.2, 7]])), { lo: -3, hi: 7 });
    assert.deepEqual(stackRange(decodeMapStack(mapPayload({ shape: [0, 1, 1], levels: [], lo: [], hi: [] }))), {
      lo: 0,
      hi: 0,
    });
  });

  it("symmetricRange centres on zero", () => {
    assert.deepEqual(symmetricRange({ lo: -1, hi: 3 }), { lo: -3, hi: 3 });
    assert.deepEqual(symmetricRange({ lo: -5, hi: 2 }), { lo: -5, hi: 5 });
    assert.deepEqual(symmetricRange({ lo: 1, hi: 2 }), { lo: -2, hi: 2 });
  });

  it("checkRange validates caller ranges", () => {
    assert.deepEqual(checkRange([1, 2]), { lo: 1, hi: 2 });
    assert.throws(() => checkRange(null), /must be \[lo, hi\]/);
    assert.throws(() => checkRange([1]), /must be \[lo, hi\]/);
    assert.throws(() => checkRange([0, Number.NaN]), /finite/);
    assert.throws(() => checkRange([2, 1]), /hi < lo/);
  });
});

describe("Colorizer", () => {
  const table = indexTable();

  it('"map" scale uses the level directly', () => {
    const s = levelStack([[0, 1], [-4, 100]]);
    const cz = new Colorizer(s, table, { scale: "map" });
    assert.deepEqual(reds(cz.colorize(0)), ALL_LEVELS);
    assert.deepEqual(reds(cz.colorize(1)), ALL_LEVELS);
    assert.deepEqual(cz.rangeOf(1), { lo: -4, hi: 100 });
  });

  it('"layer" scale remaps each map into min lo .. max hi', () => {
    const s = levelStack([[0, 1], [0, 2]]);
    const cz = new Colorizer(s, table, { scale: "layer" });
    assert.deepEqual(cz.rangeOf(0), { lo: 0, hi: 2 });
    const m0 = reds(cz.colorize(0));
    assert.equal(m0[0], 0);
    assert.equal(m0[128], 64);
    assert.equal(m0[255], 128);
    assert.deepEqual(reds(cz.colorize(1)), ALL_LEVELS);
  });

  it('"global" scale uses the caller range and clamps', () => {
    const s = levelStack([[0, 1]]);
    const cz = new Colorizer(s, table, { scale: "global", range: [-1, 3] });
    const m = reds(cz.colorize(0));
    assert.equal(m[0], 64);
    assert.equal(m[255], 128);
    const tight = reds(new Colorizer(s, table, { scale: "global", range: [0, 0.5] }).colorize(0));
    assert.equal(tight[0], 0);
    assert.equal(tight[127], 254); // 127/255 / 0.5 * 255 = 254
    assert.equal(tight[128], 255); // clamped
    assert.equal(tight[255], 255);
    assert.throws(() => new Colorizer(s, table, { scale: "global" }), /colour range must be \[lo, hi\]/);
  });

  it("symmetric puts zero at the centre", () => {
    const s = levelStack([[-1, 3], [-0.5, 0.5]]);
    // Per map: map 0 in [-3, 3].
    const own = new Colorizer(s, table, { scale: "map", symmetric: true });
    assert.deepEqual(own.rangeOf(0), { lo: -3, hi: 3 });
    const m0 = reds(own.colorize(0));
    assert.equal(m0[0], 85); // v = -1 -> 2 * 255 / 6
    assert.equal(m0[255], 255);
    // Map 1 is already symmetric: identity.
    assert.deepEqual(reds(own.colorize(1)), ALL_LEVELS);
    // Layer: [-1, 3] -> [-3, 3]; map 1 level 0 (-0.5) -> 2.5 / 6 * 255 = 106.25.
    const layer = new Colorizer(s, table, { scale: "layer", symmetric: true });
    assert.deepEqual(layer.rangeOf(1), { lo: -3, hi: 3 });
    assert.equal(reds(layer.colorize(1))[0], 106);
    // Global [-2, 1] -> [-2, 2]; map 1 level 255 (0.5) -> 2.5 / 4 * 255 = 159.375.
    const global = new Colorizer(s, table, { scale: "global", range: [-2, 1], symmetric: true });
    assert.deepEqual(global.rangeOf(0), { lo: -2, hi: 2 });
    assert.equal(reds(global.colorize(1))[255], 159);
  });

  it("colours constant maps", () => {
    const s = decodeMapStack(
      mapPayload({ shape: [3, 1, 2], levels: [0, 0, 0, 0, 0, 0], lo: [0, 2, 5], hi: [0, 2, 5] }),
    );
    const own = new Colorizer(s, table);
    assert.deepEqual(reds(own.colorize(1)), [0, 0]);
    const sym = new Colorizer(s, table, { symmetric: true });
    assert.deepEqual(reds(sym.colorize(0)), [128, 128]); // zero in [0, 0]
    assert.deepEqual(reds(sym.colorize(1)), [255, 255]); // 2 in [-2, 2]
    const layer = new Colorizer(s, table, { scale: "layer" });
    assert.deepEqual(reds(layer.colorize(1)), [102, 102]); // 2 in [0, 5]
  });

  it("writes the whole RGBA entry, alpha included", () => {
    const s = levelStack([[0, 1]]);
    const rgba = new Colorizer(s, table).colorize(0);
    assert.equal(rgba.length, 256 * 4);
    assert.deepEqual([...rgba.subarray(7 * 4, 8 * 4)], [7, 248, 3, 207]);
  });

  it("rejects unknown scales and wrong tables", () => {
    const s = levelStack([[0, 1]]);
    assert.throws(() => new Colorizer(s, table, { scale: "row" as never }), /unknown colour scale "row"/);
    assert.throws(() => new Colorizer(s, new Uint8Array(1000)), /expected 1024 bytes/);
  });

  it("colorizeMap matches Colorizer", () => {
    const s = levelStack([[0, 1], [0, 4]]);
    assert.deepEqual(colorizeMap(s, 0, table, { scale: "layer" }), new Colorizer(s, table, { scale: "layer" }).colorize(0));
  });

  it("colours a 64 x 224 x 224 stack in one pass per map", () => {
    const c = 64;
    const n = 224 * 224;
    const levels = new Uint8Array(c * n);
    for (let i = 0; i < levels.length; i++) levels[i] = (i * 7 + (i >> 9)) & 255;
    const lo = Array.from({ length: c }, (_, k) => -k / 10);
    const hi = Array.from({ length: c }, (_, k) => 1 + k / 10);
    const s = decodeMapStack(mapPayload({ shape: [c, 224, 224], levels, lo, hi }));
    const cz = new Colorizer(s, table, { scale: "layer" });
    const out = new Uint8ClampedArray(n * 4);
    const t0 = performance.now();
    for (let k = 0; k < c; k++) cz.colorize(k, out);
    const ms = performance.now() - t0;
    // Spot check the last map against the level table.
    const idx = levelIndexTable(s.lo[63] as number, s.hi[63] as number, cz.rangeOf(63));
    for (const p of [0, 1, 999, n - 1]) {
      assert.equal(out[p * 4], idx[levels[63 * n + p] as number]);
    }
    // Generous bound; in practice this takes a few tens of milliseconds.
    assert.ok(ms < 5000, `took ${ms.toFixed(0)} ms`);
  });
});

describe("colorizeLevels", () => {
  const lut = levelLut(indexTable(), 0, 1, { lo: 0, hi: 1 });

  it("gives the same bytes into aligned and unaligned outputs", () => {
    const levels = new Uint8Array([0, 5, 255, 17]);
    const aligned = colorizeLevels(levels, lut);
    const backing = new Uint8ClampedArray(new ArrayBuffer(21));
    const unaligned = backing.subarray(1, 17);
    colorizeLevels(levels, lut, unaligned);
    assert.deepEqual([...unaligned], [...aligned]);
    assert.deepEqual(reds(aligned), [0, 5, 255, 17]);
  });

  it("rejects an output of the wrong size", () => {
    assert.throws(() => colorizeLevels(new Uint8Array(4), lut, new Uint8ClampedArray(15)), /holds 15 bytes, expected 16/);
  });
});

describe("table helpers", () => {
  it("tableColor and colorOfValue", () => {
    const t = indexTable();
    assert.deepEqual(tableColor(t, 10), [10, 245, 5, 210]);
    assert.deepEqual(tableColor(t, -4), tableColor(t, 0));
    assert.deepEqual(tableColor(t, 300), tableColor(t, 255));
    assert.equal(colorOfValue(t, 0.5, { lo: 0, hi: 1 })[0], 128);
    assert.equal(colorOfValue(t, 0, { lo: 0, hi: 0 }, true)[0], 128);
    assert.equal(colorOfValue(t, 0, { lo: 0, hi: 0 })[0], 0);
  });

  it("grayColorTable is an opaque ramp", () => {
    const g = grayColorTable();
    assert.equal(g.length, 1024);
    assert.deepEqual([...g.subarray(200 * 4, 201 * 4)], [200, 200, 200, 255]);
  });

  it("rgbItemToRgba converts one HWC item", () => {
    const bytes = Array.from({ length: 2 * 1 * 2 * 3 }, (_, i) => i * 10);
    const s = decodeRgbStack(rgbPayload([2, 1, 2, 3], bytes, 3));
    assert.deepEqual([...rgbItemToRgba(s, 1)], [60, 70, 80, 255, 90, 100, 110, 255]);
    assert.throws(() => rgbItemToRgba(s, 2), /item index 2 out of range/);
    assert.throws(() => rgbItemToRgba(s, 0, new Uint8ClampedArray(4)), /expected 8/);
  });
});
