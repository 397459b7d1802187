import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  type GridLayout,
  computeGrid,
  hitTest,
  locateTile,
  pageOfTile,
  pageRange,
  preferredTileSize,
  tileRect,
  tileRects,
} from "../src/tiling";

const square = { height: 10, width: 10 };

describe("computeGrid", () => {
  it("fits as many minimum-size columns as the width allows, then grows the tiles", () => {
    const g = computeGrid({
      count: 10,
      tileAspect: square,
      containerWidth: 500,
      minTileSize: 48,
      maxTileSize: 160,
      gap: 4,
      snap: false,
    });
    // floor((500 + 4) / (48 + 4)) = 9 columns; floor((500 - 8 * 4) / 9) = 52.
    assert.deepEqual(g, {
      count: 10,
      columns: 9,
      rows: 2,
      tileWidth: 52,
      tileHeight: 52,
      gap: 4,
      width: 500,
      height: 108,
    });
  });

  it("lays out a single tile at the maximum size", () => {
    const g = computeGrid({ count: 1, tileAspect: square, containerWidth: 800, snap: false });
    assert.equal(g.columns, 1);
    assert.equal(g.rows, 1);
    assert.equal(g.tileWidth, 160);
    assert.equal(g.width, 160);
    assert.equal(g.height, 160);
  });

  it("snaps enlarged tiles to whole multiples of the map size", () => {
    const g = computeGrid({ count: 1, tileAspect: { height: 7, width: 7 }, containerWidth: 800 });
    assert.equal(g.tileWidth, 154); // 22 * 7 <= 160
    assert.equal(g.tileHeight, 154);
    // 14 x 28 map, 3 columns in 300 px: 97 -> 84 (3 * 28), height 42.
    const wide = computeGrid({
      count: 3,
      tileAspect: { height: 14, width: 28 },
      containerWidth: 300,
      minTileSize: 48,
      gap: 4,
    });
    assert.equal(wide.columns, 3);
    assert.equal(wide.tileWidth, 84);
    assert.equal(wide.tileHeight, 42);
  });

  it("does not snap below the minimum size", () => {
    // Map 40 wide, max 60: the tile is 60; the multiple below (40) is under
    // the minimum 48, so the tile stays 60. With max 100 it snaps to 80.
    const g = computeGrid({ count: 1, tileAspect: { height: 40, width: 40 }, containerWidth: 200, maxTileSize: 60 });
    assert.equal(g.tileWidth, 60);
    const h = computeGrid({ count: 1, tileAspect: { height: 40, width: 40 }, containerWidth: 200, maxTileSize: 100 });
    assert.equal(h.tileWidth, 80);
  });

  it("keeps the minimum size when the container is too narrow", () => {
    const g = computeGrid({ count: 5, tileAspect: square, containerWidth: 30, minTileSize: 48, snap: false });
    assert.equal(g.columns, 1);
    assert.equal(g.rows, 5);
    assert.equal(g.tileWidth, 48);
    assert.equal(g.width, 48);
    // A zero or unknown width lays out one column too.
    assert.equal(computeGrid({ count: 3, tileAspect: square, containerWidth: 0 }).columns, 1);
    assert.equal(computeGrid({ count: 3, tileAspect: square, containerWidth: Number.NaN }).columns, 1);
  });

  it("applies the size bounds to the longer side of tall tiles", () => {
    const g = computeGrid({
      count: 4,
      tileAspect: { height: 20, width: 10 },
      containerWidth: 100,
      minTileSize: 48,
      maxTileSize: 160,
      gap: 4,
      snap: false,
    });
    // Tile width at minimum: 24 (height 48); floor(104 / 28) = 3 columns,
    // width floor((100 - 8) / 3) = 30, height 60.
    assert.equal(g.columns, 3);
    assert.equal(g.tileWidth, 30);
    assert.equal(g.tileHeight, 60);
    assert.equal(g.rows, 2);
    assert.equal(g.height, 124);
  });

  it("honours maxColumns and the preferred size", () => {
    assert.equal(computeGrid({ count: 50, tileAspect: square, containerWidth: 2000, maxColumns: 8 }).columns, 8);
    const g = computeGrid({
      count: 64,
      tileAspect: { height: 112, width: 112 },
      containerWidth: 500,
      preferredTileSize: 112,
      gap: 4,
    });
    // floor(504 / 116) = 4 columns of floor(488 / 4) = 122 -> snapped to 112.
    assert.equal(g.columns, 4);
    assert.equal(g.tileWidth, 112);
    assert.equal(g.rows, 16);
  });

  it("gives an empty layout for no tiles", () => {
    const g = computeGrid({ count: 0, tileAspect: square, containerWidth: 500 });
    assert.equal(g.columns, 0);
    assert.equal(g.rows, 0);
    assert.equal(g.width, 0);
    assert.equal(g.height, 0);
    assert.equal(hitTest(g, 0, 0), -1);
  });

  it("rejects a zero-sized map aspect", () => {
    assert.throws(() => computeGrid({ count: 1, tileAspect: { height: 0, width: 3 }, containerWidth: 100 }), RangeError);
  });
});

describe("preferredTileSize", () => {
  it("uses the map size, a whole multiple of small maps, or the maximum", () => {
    assert.equal(preferredTileSize(112, 112), 112);
    assert.equal(preferredTileSize(56, 56), 56);
    assert.equal(preferredTileSize(7, 7), 49);
    assert.equal(preferredTileSize(14, 14), 56);
    assert.equal(preferredTileSize(40, 40), 80);
    assert.equal(preferredTileSize(224, 224), 160);
    assert.equal(preferredTileSize(3, 100), 100);
    assert.equal(preferredTileSize(13, 13, 48, 50), 48); // 52 would pass the maximum
  });
});

/** 3 columns of 10 x 10 tiles with gap 2, 7 tiles (last row holds one). */
const layout: GridLayout = {
  count: 7,
  columns: 3,
  rows: 3,
  tileWidth: 10,
  tileHeight: 10,
  gap: 2,
  width: 34,
  height: 34,
};

describe("tile positions", () => {
  it("tileRect", () => {
    assert.deepEqual(tileRect(layout, 0), { x: 0, y: 0, width: 10, height: 10 });
    assert.deepEqual(tileRect(layout, 4), { x: 12, y: 12, width: 10, height: 10 });
    assert.deepEqual(tileRect(layout, 6), { x: 0, y: 24, width: 10, height: 10 });
    assert.throws(() => tileRect(layout, 7), RangeError);
    assert.throws(() => tileRect(layout, -1), RangeError);
  });

  it("tileRects lists every tile in order", () => {
    const rects = tileRects(layout);
    assert.equal(rects.length, 7);
    assert.deepEqual(rects[5], { x: 24, y: 12, width: 10, height: 10 });
  });
});

describe("hitTest", () => {
  it("finds tiles, including their top-left corner and just inside the far border", () => {
    assert.equal(hitTest(layout, 0, 0), 0);
    assert.equal(hitTest(layout, 9.999, 9.999), 0);
    assert.equal(hitTest(layout, 12, 0), 1);
    assert.equal(hitTest(layout, 33.5, 0), 2);
    assert.equal(hitTest(layout, 15, 15), 4);
    assert.equal(hitTest(layout, 5, 30), 6);
  });

  it("returns -1 in gaps and on the right/bottom border", () => {
    assert.equal(hitTest(layout, 10, 5), -1);
    assert.equal(hitTest(layout, 11.5, 5), -1);
    assert.equal(hitTest(layout, 5, 10), -1);
    assert.equal(hitTest(layout, 10, 10), -1);
    assert.equal(hitTest(layout, 22, 13), -1);
  });

  it("returns -1 after the last tile of a partial row and outside the grid", () => {
    assert.equal(hitTest(layout, 15, 30), -1);
    assert.equal(hitTest(layout, 30, 30), -1);
    assert.equal(hitTest(layout, -0.1, 5), -1);
    assert.equal(hitTest(layout, 5, -1), -1);
    assert.equal(hitTest(layout, 34, 5), -1);
    assert.equal(hitTest(layout, 5, 34), -1);
    assert.equal(hitTest(layout, Number.NaN, 5), -1);
  });

  it("works for a single tile", () => {
    const one = computeGrid({ count: 1, tileAspect: square, containerWidth: 100, snap: false });
    assert.equal(hitTest(one, 0, 0), 0);
    assert.equal(hitTest(one, one.tileWidth - 0.5, one.tileHeight - 0.5), 0);
    assert.equal(hitTest(one, one.tileWidth, 0), -1);
  });

  it("locateTile gives the position within the tile", () => {
    assert.deepEqual(locateTile(layout, 15, 17.5), { index: 4, localX: 3, localY: 5.5 });
    assert.equal(locateTile(layout, 10.5, 0), null);
  });
});

describe("paging", () => {
  it("splits tiles into pages with a partial last page", () => {
    assert.deepEqual(pageRange(10, 4, 0), { pageIndex: 0, pageCount: 3, pageSize: 4, start: 0, end: 4 });
    assert.deepEqual(pageRange(10, 4, 1), { pageIndex: 1, pageCount: 3, pageSize: 4, start: 4, end: 8 });
    assert.deepEqual(pageRange(10, 4, 2), { pageIndex: 2, pageCount: 3, pageSize: 4, start: 8, end: 10 });
  });

  it("clamps the page index", () => {
    assert.equal(pageRange(10, 4, 9).pageIndex, 2);
    assert.equal(pageRange(10, 4, -3).pageIndex, 0);
    assert.equal(pageRange(10, 4, Number.NaN).pageIndex, 0);
    assert.equal(pageRange(10, 4, 1.7).pageIndex, 1);
  });

  it("handles exact multiples, empty totals and no paging", () => {
    assert.equal(pageRange(8, 4, 0).pageCount, 2);
    assert.deepEqual(pageRange(8, 4, 1), { pageIndex: 1, pageCount: 2, pageSize: 4, start: 4, end: 8 });
    assert.deepEqual(pageRange(0, 4, 0), { pageIndex: 0, pageCount: 1, pageSize: 4, start: 0, end: 0 });
    assert.deepEqual(pageRange(5, 0, 3), { pageIndex: 0, pageCount: 1, pageSize: 5, start: 0, end: 5 });
    assert.deepEqual(pageRange(5, Infinity, 0), { pageIndex: 0, pageCount: 1, pageSize: 5, start: 0, end: 5 });
    assert.deepEqual(pageRange(1, 256, 0), { pageIndex: 0, pageCount: 1, pageSize: 256, start: 0, end: 1 });
  });

  it("pageOfTile", () => {
    assert.equal(pageOfTile(0, 4), 0);
    assert.equal(pageOfTile(3, 4), 0);
    assert.equal(pageOfTile(4, 4), 1);
    assert.equal(pageOfTile(9, 4), 2);
    assert.equal(pageOfTile(9, 0), 0);
  });
});
