import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type Box,
  clipBox,
  mapPixelAt,
  pixelBox,
  proportionalBox,
  inputOutline,
  receptiveFieldBox,
  zoomGeometry,
} from "../src/zoom";

function near(actual: Box, expected: Box, eps = 1e-9): void {
  actual.forEach((v, i) => assert.ok(Math.abs(v - (expected[i] as number)) <= eps, `${actual} vs ${expected}`));
}

describe("mapPixelAt", () => {
  it("finds the map pixel under a point at an integer scale", () => {
    // 7 x 7 map on a 56 x 56 tile: 8 screen pixels per map pixel.
    assert.deepEqual(mapPixelAt(0, 0, 56, 56, 7, 7), { row: 0, col: 0 });
    assert.deepEqual(mapPixelAt(7.999, 7.999, 56, 56, 7, 7), { row: 0, col: 0 });
    assert.deepEqual(mapPixelAt(8, 16, 56, 56, 7, 7), { row: 2, col: 1 });
    assert.deepEqual(mapPixelAt(55.9, 55.9, 56, 56, 7, 7), { row: 6, col: 6 });
  });

  it("handles non-square maps and scales below one", () => {
    // 4 x 16 map on a 100 x 25 tile.
    assert.deepEqual(mapPixelAt(50, 12, 100, 25, 4, 16), { row: 1, col: 8 });
    // 224 x 224 map shrunk to 56: each screen pixel covers 4 map pixels.
    assert.deepEqual(mapPixelAt(10.5, 0.2, 56, 56, 224, 224), { row: 0, col: 42 });
  });

  it("returns null outside the tile", () => {
    assert.equal(mapPixelAt(-0.1, 3, 56, 56, 7, 7), null);
    assert.equal(mapPixelAt(56, 3, 56, 56, 7, 7), null);
    assert.equal(mapPixelAt(3, 56, 56, 56, 7, 7), null);
    assert.equal(mapPixelAt(Number.NaN, 3, 56, 56, 7, 7), null);
    assert.equal(mapPixelAt(1, 1, 0, 56, 7, 7), null);
  });
});

describe("proportionalBox", () => {
  it("scales the map pixel to the input", () => {
    // 7 x 7 map over 224 x 224: 32 input pixels per map pixel.
    assert.deepEqual(proportionalBox(2, 3, 7, 7, 224, 224), [96, 64, 128, 96]);
    assert.deepEqual(proportionalBox(6, 6, 7, 7, 224, 224), [192, 192, 224, 224]);
    // Non-square: 28 x 56 map over 224 x 448 -> 8 x 8 per map pixel.
    assert.deepEqual(proportionalBox(1, 10, 28, 56, 224, 448), [80, 8, 88, 16]);
  });

  it("keeps fractional edges; pixelBox rounds them outward", () => {
    const b = proportionalBox(1, 1, 3, 3, 10, 10);
    near(b, [10 / 3, 10 / 3, 20 / 3, 20 / 3]);
    assert.deepEqual(pixelBox(b, 10, 10), [3, 3, 7, 7]);
    // Whole edges stay whole despite floating error.
    assert.deepEqual(pixelBox([3 * (32 / 7) * (7 / 3), 0, 64.00000000001, 5], 100, 100), [32, 0, 64, 5]);
  });

  it("clipBox limits a box to the image", () => {
    assert.deepEqual(clipBox([-2, -1, 12, 5], 4, 10), [0, 0, 10, 4]);
  });
});

describe("receptiveFieldBox", () => {
  // conv 3x3 stride 1 padding 1: size 3, jump 1, padding 1.
  const conv3 = { size: 3, jump: 1, padding: 1 };
  // conv k3 s2 p1 then conv k3 s1 p1: size 3 + 2 * 2 = 7, jump 2, padding 1 + 1 * 2 = 3.
  const chain = { size: 7, jump: 2, padding: 3 };

  it("covers i * jump - padding .. + size", () => {
    assert.deepEqual(receptiveFieldBox(0, 0, conv3, 8, 8, false), [-1, -1, 2, 2]);
    assert.deepEqual(receptiveFieldBox(4, 5, conv3, 8, 8), [4, 3, 7, 6]);
    assert.deepEqual(receptiveFieldBox(5, 5, chain, 32, 32), [7, 7, 14, 14]);
  });

  it("clips to the image", () => {
    assert.deepEqual(receptiveFieldBox(0, 0, conv3, 8, 8), [0, 0, 2, 2]);
    assert.deepEqual(receptiveFieldBox(7, 7, conv3, 8, 8), [6, 6, 8, 8]);
    assert.deepEqual(receptiveFieldBox(5, 5, chain, 12, 12), [7, 7, 12, 12]);
    assert.deepEqual(receptiveFieldBox(0, 5, chain, 12, 12, false), [7, -3, 14, 4]);
  });

  it("accepts the start (centre of unit 0) form", () => {
    // start = size / 2 - padding = 3.5 - 3 = 0.5.
    assert.deepEqual(receptiveFieldBox(5, 5, { size: 7, jump: 2, start: 0.5 }, 32, 32), [7, 7, 14, 14]);
    assert.deepEqual(
      receptiveFieldBox(0, 0, { size: 3, jump: 1, start: 0.5 }, 8, 8, false),
      receptiveFieldBox(0, 0, conv3, 8, 8, false),
    );
  });

  it("takes per-axis [y, x] values", () => {
    const rf = { size: [3, 5] as const, jump: [1, 2] as const, padding: [1, 2] as const };
    // y: 2 - 1 .. +3 = [1, 4); x: 3 * 2 - 2 .. +5 = [4, 9).
    assert.deepEqual(receptiveFieldBox(2, 3, rf, 20, 20), [4, 1, 9, 4]);
  });

  it("rejects non-positive size or jump", () => {
    assert.throws(() => receptiveFieldBox(0, 0, { size: 0, jump: 1 }, 8, 8), RangeError);
    assert.throws(() => receptiveFieldBox(0, 0, { size: 3, jump: [1, 0] }, 8, 8), RangeError);
  });
});

describe("zoomGeometry", () => {
  it("shows a small map whole at the largest integer scale, centred", () => {
    const g = zoomGeometry({ mapHeight: 7, mapWidth: 7, row: 3, col: 4, boxWidth: 128, boxHeight: 128 });
    assert.deepEqual(g, {
      scale: 18,
      sx: 0,
      sy: 0,
      sw: 7,
      sh: 7,
      dx: 1,
      dy: 1,
      dw: 126,
      dh: 126,
      markX: 1 + 4 * 18,
      markY: 1 + 3 * 18,
    });
  });

  it("bounds the scale with maxScale", () => {
    const g = zoomGeometry({ mapHeight: 7, mapWidth: 7, row: 0, col: 0, boxWidth: 128, boxHeight: 128, maxScale: 8 });
    assert.equal(g.scale, 8);
    assert.equal(g.dw, 56);
    assert.equal(g.dx, 36);
    assert.equal(g.markX, 36);
  });

  it("fits a non-square map by its tighter side", () => {
    const g = zoomGeometry({ mapHeight: 4, mapWidth: 16, row: 3, col: 15, boxWidth: 128, boxHeight: 128 });
    assert.equal(g.scale, 8);
    assert.deepEqual([g.dx, g.dy, g.dw, g.dh], [0, 48, 128, 32]);
    assert.deepEqual([g.markX, g.markY], [120, 72]);
  });

  it("crops a large map around the pixel, kept inside the map", () => {
    const mid = zoomGeometry({ mapHeight: 224, mapWidth: 224, row: 50, col: 100, boxWidth: 128, boxHeight: 128, minScale: 4 });
    assert.deepEqual([mid.scale, mid.sw, mid.sh, mid.sx, mid.sy], [4, 32, 32, 84, 34]);
    assert.deepEqual([mid.dx, mid.dy, mid.dw, mid.dh], [0, 0, 128, 128]);
    assert.deepEqual([mid.markX, mid.markY], [64, 64]);
    const corner = zoomGeometry({ mapHeight: 224, mapWidth: 224, row: 0, col: 223, boxWidth: 128, boxHeight: 128, minScale: 4 });
    assert.deepEqual([corner.sx, corner.sy], [192, 0]);
    assert.deepEqual([corner.markX, corner.markY], [(223 - 192) * 4, 0]);
  });

  it("at scale 1 shows the part of the map that fits", () => {
    const g = zoomGeometry({ mapHeight: 300, mapWidth: 200, row: 150, col: 100, boxWidth: 128, boxHeight: 96 });
    assert.deepEqual([g.scale, g.sw, g.sh, g.sx, g.sy], [1, 128, 96, 36, 102]);
  });

  it("rejects empty maps or boxes", () => {
    assert.throws(() => zoomGeometry({ mapHeight: 0, mapWidth: 7, row: 0, col: 0, boxWidth: 10, boxHeight: 10 }), RangeError);
    assert.throws(() => zoomGeometry({ mapHeight: 7, mapWidth: 7, row: 0, col: 0, boxWidth: 0, boxHeight: 10 }), RangeError);
  });
});

describe("inputOutline", () => {
  const field = { size: [7, 7] as [number, number], jump: [2, 2] as [number, number], start: [0.5, 0.5] as [number, number], input: [32, 32] as [number, number] };
  it("outlines the receptive field, scaled from the input tensor to the shown image", () => {
    // unit (3, 4): x from 0.5 - 3.5 + 8 = 5 to 12, y from 3 to 10, in a 32 px tensor; image 64 px
    const o = inputOutline(3, 4, 16, 16, 64, 64, field);
    assert.equal(o.kind, "receptive-field");
    near(o.box, [10, 6, 24, 20]);
  });
  it("clips the field to the image", () => {
    near(inputOutline(0, 0, 16, 16, 32, 32, field).box, [0, 0, 4, 4]);
  });
  it("falls back to the proportional position without a field", () => {
    const o = inputOutline(1, 2, 4, 4, 32, 32, null);
    assert.equal(o.kind, "proportional");
    near(o.box, [16, 8, 24, 16]);
  });
});
