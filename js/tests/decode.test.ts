import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  COLOR_TABLE_BYTES,
  PayloadError,
  bytesView,
  decodeColorTable,
  decodeMapStack,
  decodeRgbStack,
  float32View,
  isEmptyStack,
  levelValue,
  mapLevels,
  valueAt,
} from "../src/decode";
import { bytesAt, float32Bytes, mapPayload, quantize, rgbPayload } from "./helpers";

/** 2 maps of 2 x 3, levels 0..11 in order. */
function smallStack(extra: Partial<Parameters<typeof mapPayload>[0]> = {}) {
  return mapPayload({
    shape: [2, 2, 3],
    levels: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
    lo: [-1, 0.5],
    hi: [1, 2.5],
    ...extra,
  });
}

describe("decodeMapStack", () => {
  it("reads the shape and the per-map ranges", () => {
    const s = decodeMapStack(smallStack());
    assert.equal(s.channels, 2);
    assert.equal(s.height, 2);
    assert.equal(s.width, 3);
    assert.equal(s.mapSize, 6);
    assert.deepEqual([...s.lo], [-1, 0.5]);
    assert.deepEqual([...s.hi], [1, 2.5]);
    assert.equal(s.labels, null);
  });

  it("views the payload memory without copying", () => {
    const payload = smallStack({ dataOffset: 3, loOffset: 8, hiOffset: 4 });
    const s = decodeMapStack(payload);
    assert.equal(s.data.buffer, payload.data.buffer);
    assert.equal(s.data.byteOffset, 3);
    assert.equal(s.data.byteLength, 12);
    assert.equal(s.lo.buffer, payload.lo.buffer);
    assert.equal(s.lo.byteOffset, 8);
    assert.equal(s.hi.buffer, payload.hi.buffer);
    // A write to the payload shows through the view.
    payload.data.setUint8(5, 200);
    assert.equal(s.data[5], 200);
  });

  it("copies lo/hi only when their byte offset is unaligned", () => {
    const payload = smallStack({ loOffset: 1, hiOffset: 6 });
    const s = decodeMapStack(payload);
    assert.notEqual(s.lo.buffer, payload.lo.buffer);
    assert.notEqual(s.hi.buffer, payload.hi.buffer);
    assert.deepEqual([...s.lo], [-1, 0.5]);
    assert.deepEqual([...s.hi], [1, 2.5]);
    // The data stays a view at any offset.
    assert.equal(decodeMapStack(smallStack({ dataOffset: 1 })).data.byteOffset, 1);
  });

  it("reads float32 as little-endian", () => {
    const lo = new DataView(new ArrayBuffer(4));
    lo.setFloat32(0, 1.5, true);
    const hi = new DataView(new ArrayBuffer(4));
    hi.setUint8(0, 0x00);
    hi.setUint8(1, 0x00);
    hi.setUint8(2, 0x20);
    hi.setUint8(3, 0x40); // 2.5 as bytes 00 00 20 40
    const s = decodeMapStack({ data: bytesAt([0]), shape: [1, 1, 1], lo, hi });
    assert.equal(s.lo[0], 1.5);
    assert.equal(s.hi[0], 2.5);
  });

  it("keeps labels", () => {
    const s = decodeMapStack(smallStack({ labels: ["cat", "dog"] }));
    assert.deepEqual(s.labels, ["cat", "dog"]);
    assert.equal(decodeMapStack(smallStack({ labels: null })).labels, null);
  });

  it("accepts typed arrays and ArrayBuffers as bytes", () => {
    const s = decodeMapStack({
      data: new Uint8Array([1, 2, 3, 4]) as unknown as DataView,
      shape: [1, 2, 2],
      lo: new Float32Array([0]).buffer as unknown as DataView,
      hi: new Float32Array([1]) as unknown as DataView,
    });
    assert.deepEqual([...s.data], [1, 2, 3, 4]);
    assert.equal(s.hi[0], 1);
  });

  it("names expected and actual sizes when data does not match the shape", () => {
    assert.throws(
      () => decodeMapStack(mapPayload({ shape: [3, 10, 10], levels: new Uint8Array(301), lo: [0, 0, 0], hi: [1, 1, 1] })),
      (err: unknown) =>
        err instanceof PayloadError &&
        /301 bytes/.test(err.message) &&
        /\[3, 10, 10\]/.test(err.message) &&
        /needs 300/.test(err.message),
    );
  });

  it("names expected and actual sizes when lo/hi do not match C", () => {
    assert.throws(
      () => decodeMapStack(smallStack({ lo: [0, 0, 0] })),
      /map stack lo: expected 8 bytes \(2 float32 values\), got 12/,
    );
    assert.throws(() => decodeMapStack(smallStack({ hi: [1] })), /map stack hi: expected 8 bytes .* got 4/);
  });

  it("rejects malformed shapes and fields", () => {
    const base = smallStack();
    assert.throws(() => decodeMapStack({ ...base, shape: [2, 6] }), /shape must be a list of 3 integers/);
    assert.throws(() => decodeMapStack({ ...base, shape: [2, 2.5, 3] }), /non-negative integers/);
    assert.throws(() => decodeMapStack({ ...base, shape: [-2, 2, 3] }), /non-negative integers/);
    assert.throws(() => decodeMapStack({ ...base, data: "abc" as unknown as DataView }), /expected bytes/);
    assert.throws(() => decodeMapStack(null), /expected a dict, got null/);
    assert.throws(() => decodeMapStack(bytesAt([1])), /expected a dict, got DataView/);
    assert.throws(() => decodeMapStack({ ...base, labels: ["a"] }), /expected 2 labels .* got 1/);
    assert.throws(
      () => decodeMapStack({ ...base, labels: ["a", 3] as unknown as string[] }),
      /labels must be a list of strings/,
    );
  });

  it("rejects non-finite and inverted ranges", () => {
    assert.throws(() => decodeMapStack(smallStack({ lo: [Number.NaN, 0] })), /map 0 has a non-finite range/);
    assert.throws(() => decodeMapStack(smallStack({ hi: [1, Infinity] })), /map 1 has a non-finite range/);
    assert.throws(() => decodeMapStack(smallStack({ lo: [2, 0.5] })), /map 0 has hi < lo/);
  });

  it("accepts empty stacks", () => {
    const none = decodeMapStack(mapPayload({ shape: [0, 5, 5], levels: [], lo: [], hi: [] }));
    assert.equal(isEmptyStack(none), true);
    const flat = decodeMapStack(mapPayload({ shape: [2, 0, 5], levels: [], lo: [0, 0], hi: [1, 1] }));
    assert.equal(isEmptyStack(flat), true);
    assert.equal(isEmptyStack(decodeMapStack(smallStack())), false);
  });
});

describe("valueAt", () => {
  it("maps levels to real values: lo + (hi - lo) * q / 255", () => {
    const s = decodeMapStack(
      mapPayload({ shape: [2, 1, 4], levels: [0, 51, 255, 128, 0, 102, 255, 17], lo: [-1, 0.5], hi: [1, 2.5] }),
    );
    assert.equal(valueAt(s, 0, 0, 0), -1);
    assert.ok(Math.abs(valueAt(s, 0, 0, 1) - -0.6) < 1e-12);
    assert.equal(valueAt(s, 0, 0, 2), 1);
    assert.ok(Math.abs(valueAt(s, 0, 0, 3) - (-1 + (2 * 128) / 255)) < 1e-12);
    assert.equal(valueAt(s, 1, 0, 0), 0.5);
    assert.ok(Math.abs(valueAt(s, 1, 0, 1) - 1.3) < 1e-12);
    assert.equal(valueAt(s, 1, 0, 2), 2.5);
    assert.ok(Math.abs(valueAt(s, 1, 0, 3) - (0.5 + (2 * 17) / 255)) < 1e-12);
  });

  it("indexes channel-major, then row-major", () => {
    // Level = 100*c + 10*y + x, range 0..255 so value == level.
    const levels: number[] = [];
    for (let c = 0; c < 2; c++) for (let y = 0; y < 3; y++) for (let x = 0; x < 4; x++) levels.push(100 * c + 10 * y + x);
    const s = decodeMapStack(mapPayload({ shape: [2, 3, 4], levels, lo: [0, 0], hi: [255, 255] }));
    assert.equal(valueAt(s, 0, 0, 0), 0);
    assert.equal(valueAt(s, 0, 2, 3), 23);
    assert.equal(valueAt(s, 1, 1, 2), 112);
    assert.equal(valueAt(s, 1, 2, 3), 123);
    assert.deepEqual([...mapLevels(s, 1)], levels.slice(12));
  });

  it("gives lo everywhere in a constant map", () => {
    const s = decodeMapStack(mapPayload({ shape: [1, 1, 3], levels: [0, 77, 255], lo: [0.25], hi: [0.25] }));
    assert.equal(valueAt(s, 0, 0, 0), 0.25);
    assert.equal(valueAt(s, 0, 0, 1), 0.25);
    assert.equal(valueAt(s, 0, 0, 2), 0.25);
    assert.equal(levelValue(s, 0, 200), 0.25);
  });

  it("agrees with the quantised input within half a level", () => {
    const a = [0.1, -0.4, 2.3, 1.7, 0.0, -1.2];
    const s = decodeMapStack(quantize([a], 2, 3));
    const step = (Math.fround(2.3) - Math.fround(-1.2)) / 255;
    a.forEach((v, i) => {
      const got = valueAt(s, 0, Math.floor(i / 3), i % 3);
      assert.ok(Math.abs(got - v) <= step / 2 + 1e-6, `value ${i}: ${got} vs ${v}`);
    });
  });

  it("rejects indices out of range", () => {
    const s = decodeMapStack(smallStack());
    assert.throws(() => valueAt(s, 2, 0, 0), RangeError);
    assert.throws(() => valueAt(s, 0, 2, 0), /row index 2 out of range \[0, 2\)/);
    assert.throws(() => valueAt(s, 0, 0, 3), /column index 3/);
    assert.throws(() => valueAt(s, 0, -1, 0), RangeError);
    assert.throws(() => valueAt(s, 0, 0.5, 0), RangeError);
    assert.throws(() => mapLevels(s, 2), RangeError);
  });
});

describe("decodeRgbStack", () => {
  it("reads [N, H, W, 3] as a view", () => {
    const bytes = Array.from({ length: 2 * 2 * 2 * 3 }, (_, i) => i);
    const payload = rgbPayload([2, 2, 2, 3], bytes, 1);
    const s = decodeRgbStack(payload);
    assert.equal(s.count, 2);
    assert.equal(s.height, 2);
    assert.equal(s.width, 2);
    assert.equal(s.data.buffer, payload.data.buffer);
    assert.equal(s.data.byteOffset, 1);
    assert.deepEqual([...s.data], bytes);
  });

  it("names expected and actual sizes", () => {
    assert.throws(
      () => decodeRgbStack(rgbPayload([1, 2, 2, 3], [1, 2, 3])),
      /data has 3 bytes but shape \[1, 2, 2, 3\] needs 12/,
    );
    assert.throws(() => decodeRgbStack(rgbPayload([1, 2, 2, 4], new Array(16).fill(0))), /must be 3 \(RGB\), got 4/);
    assert.throws(() => decodeRgbStack(rgbPayload([2, 2, 3] as never, [])), /list of 4 integers/);
  });
});

describe("decodeColorTable and helpers", () => {
  it("checks the table size", () => {
    const t = decodeColorTable(bytesAt(new Uint8Array(COLOR_TABLE_BYTES), 2));
    assert.equal(t.length, 1024);
    assert.equal(t.byteOffset, 2);
    assert.throws(() => decodeColorTable(bytesAt(new Uint8Array(768))), /expected 1024 bytes .* got 768/);
    assert.throws(() => decodeColorTable(undefined), /expected bytes/);
  });

  it("bytesView and float32View", () => {
    const dv = bytesAt([9, 8, 7], 5);
    const v = bytesView(dv, "x");
    assert.equal(v.byteOffset, 5);
    assert.deepEqual([...v], [9, 8, 7]);
    const f = float32View(float32Bytes([1.25, -3], 2), 2, "f");
    assert.deepEqual([...f], [1.25, -3]);
    assert.throws(() => float32View(float32Bytes([1]), 2, "f"), /f: expected 8 bytes/);
  });
});
