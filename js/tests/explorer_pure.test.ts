/**
 * The explorer's pure modules: float16 ranges, channel ordering, overlay
 * blending, request coalescing, the byte-bounded cache, payloads, channel
 * lists, tile sources and the saved-page model (request keys: keys.test.ts;
 * messages: messages.test.ts; the session: session.test.ts).
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { blit, nearestIndex } from "../src/blit";
import { ByteCache } from "../src/cache";
import { Colorizer } from "../src/colormap";
import { decodeMapStack, halfToFloat, valueAt } from "../src/decode";
import { channelMeans, channelOrder } from "../src/order";
import { blendOverlay } from "../src/overlay";
import { parseChannels } from "../src/channels";
import { parseMessage, parsePredictions, stackPayload } from "../src/messages";
import { Coalescer } from "../src/requests";
import { StaticModel, revive } from "../src/static_model";
import { mapSource, rgbSource, subStack } from "../src/tiles";
import { bytesAt, indexTable, quantize, reds } from "./helpers";

/** float16 bits of a few exactly representable numbers (numpy: np.float16(v).view(np.uint16)). */
const HALF: [number, number][] = [
  [0x0000, 0],
  [0x3c00, 1],
  [0xc000, -2],
  [0x3555, 0.333251953125],
  [0x7bff, 65504],
  [0x0001, 2 ** -24],
  [0x7c00, Number.POSITIVE_INFINITY],
];

function halfBytes(bits: number[]): DataView {
  const b: number[] = [];
  for (const v of bits) b.push(v & 0xff, v >> 8);
  return bytesAt(b, 1); // odd offset on purpose
}

describe("float16 ranges", () => {
  it("decodes half-precision bit patterns", () => {
    for (const [bits, v] of HALF) assert.equal(halfToFloat(bits), v);
    assert.ok(Number.isNaN(halfToFloat(0x7e00)));
  });
  it("decodes a map stack whose lo/hi are float16, values exact to the level", () => {
    const stack = decodeMapStack({
      data: bytesAt([0, 255, 51, 102]),
      shape: [2, 1, 2],
      lo: halfBytes([0xc000, 0x0000]), // -2, 0
      hi: halfBytes([0x3c00, 0x3c00]), // 1, 1
      range_dtype: "float16",
    });
    assert.equal(valueAt(stack, 0, 0, 0), -2);
    assert.equal(valueAt(stack, 0, 0, 1), 1);
    assert.ok(Math.abs(valueAt(stack, 1, 0, 0) - 0.2) < 1e-12);
    assert.throws(
      () => decodeMapStack({ data: bytesAt([0]), shape: [1, 1, 1], lo: halfBytes([0]), hi: halfBytes([0]), range_dtype: "int8" }),
      /range_dtype/,
    );
    assert.throws(
      () => decodeMapStack({ data: bytesAt([0]), shape: [1, 1, 1], lo: bytesAt([0, 0, 0, 0]), hi: halfBytes([0]), range_dtype: "float16" }),
      /expected 2 bytes/,
    );
  });
});

describe("channel order", () => {
  const stack = decodeMapStack(quantize([[0, 1], [5, 5], [2, 10], [5, 5]], 1, 2));
  it("computes each map's mean from levels and range", () => {
    const m = channelMeans(stack);
    assert.ok(Math.abs((m[0] as number) - 0.5) < 1e-6);
    assert.equal(m[1], 5);
    assert.ok(Math.abs((m[2] as number) - 6) < 1e-5);
  });
  it("orders by index or by mean, largest first, ties by index", () => {
    assert.deepEqual(channelOrder(stack, "index"), [0, 1, 2, 3]);
    assert.deepEqual(channelOrder(stack, "mean"), [2, 1, 3, 0]);
  });
});

describe("overlay", () => {
  it("blends image and coloured map by opacity times the colour's alpha", () => {
    const rgb = new Uint8Array([100, 0, 200, 10, 20, 30]);
    const colored = new Uint8ClampedArray([0, 255, 0, 255, 255, 255, 255, 0]);
    const out = new Uint8ClampedArray(8);
    blendOverlay(rgb, colored, 0.5, out);
    assert.deepEqual([...out], [50, 128, 100, 255, 10, 20, 30, 255]);
    blendOverlay(rgb, colored, 0, out);
    assert.deepEqual([...out.subarray(0, 3)], [100, 0, 200]);
    blendOverlay(rgb, colored, 1, out);
    assert.deepEqual([...out.subarray(0, 3)], [0, 255, 0]);
    assert.throws(() => blendOverlay(rgb, new Uint8ClampedArray(4), 0.5, out), /H\*W\*4/);
  });
});

describe("request coalescing", () => {
  it("sends the first and then only the latest of a fast scrub", () => {
    const c = new Coalescer();
    const first = c.want("a");
    assert.deepEqual(first, { id: 1, key: "a" });
    assert.equal(c.want("b"), null);
    assert.equal(c.want("c"), null);
    assert.equal(c.want("d"), null);
    const done = c.complete(1);
    assert.equal(done.current, false); // "a" is stale: d is wanted
    assert.deepEqual(done.next, { id: 2, key: "d" });
    const last = c.complete(2);
    assert.equal(last.current, true);
    assert.equal(last.next, null);
    assert.equal(c.busy, false);
  });
  it("sends nothing for data already here, and drops a pending key wanted no more", () => {
    const have = new Set(["x"]);
    const c = new Coalescer();
    assert.equal(c.want("x", (k) => have.has(k)), null);
    assert.equal(c.busy, false);
    c.want("a");
    c.want("b");
    c.want("x", (k) => have.has(k)); // back to cached data: nothing pending
    assert.deepEqual(c.complete(1, (k) => have.has(k)), { current: false, next: null });
    assert.deepEqual(c.complete(99), { current: false, next: null }); // unknown id ignored
  });
});

describe("byte cache", () => {
  it("evicts least recently used entries beyond the budget, never the newest", () => {
    const cache = new ByteCache<string>(10);
    cache.set("a", "A", 4);
    cache.set("b", "B", 4);
    assert.equal(cache.get("a"), "A"); // a is now most recent
    cache.set("c", "C", 4); // 12 > 10: evict b
    assert.equal(cache.has("b"), false);
    assert.equal(cache.has("a"), true);
    assert.equal(cache.bytes, 8);
    cache.set("huge", "H", 50);
    assert.deepEqual([cache.has("a"), cache.has("c"), cache.has("huge")], [false, false, true]);
    cache.clear("hu");
    assert.equal(cache.size, 0);
    assert.equal(cache.bytes, 0);
  });
});

describe("protocol", () => {
  it("validates incoming messages and predictions", () => {
    assert.equal(parseMessage({ type: "other" }, []), null);
    assert.throws(() => parseMessage({ type: "reply", id: "1", key: "k", kind: "features" }, []), /id\/key\/kind/);
    assert.deepEqual(parsePredictions([{ index: 2, name: "<b>x</b>", prob: 0.5 }]), [
      { index: 2, name: "<b>x</b>", prob: 0.5 },
    ]);
    assert.throws(() => parsePredictions([{ index: 2, name: 3, prob: 0.5 }]), /prediction 0/);
  });
  it("assembles a map stack from meta and buffers", () => {
    const p = stackPayload({ shape: [1, 1, 2], range_dtype: "float16" }, [
      bytesAt([0, 255]),
      halfBytes([0x0000]),
      halfBytes([0x3c00]),
    ]);
    const s = decodeMapStack(p);
    assert.equal(valueAt(s, 0, 0, 1), 1);
    assert.throws(() => stackPayload({ shape: [1, 1, 1] }, [bytesAt([0])]), /3 buffers/);
  });
  it("parses channel lists a person types", () => {
    assert.deepEqual(parseChannels("0-3, 7,2", 10), [0, 1, 2, 3, 7]);
    assert.throws(() => parseChannels("12", 10), /out of range/);
    assert.throws(() => parseChannels("5-2", 10), /backwards/);
    assert.throws(() => parseChannels("a", 10), /not a channel/);
    assert.throws(() => parseChannels("0-99", 200, 64), /at most 64/);
    assert.throws(() => parseChannels(" , ", 10), /no channel/);
  });
});

describe("tile sources", () => {
  const stack = decodeMapStack(quantize([[0, 1], [2, 4], [-1, 1]], 1, 2));
  it("paints maps through the colorizer and reads real values", () => {
    const src = mapSource(stack, new Colorizer(stack, indexTable()));
    const out = new Uint8ClampedArray(8);
    src.paint(1, out);
    assert.deepEqual(reds(out), [0, 255]);
    assert.equal(src.value(1, 0, 1), 4);
    assert.equal(src.label(2), "channel 2");
  });
  it("takes a sub-range without copying", () => {
    const sub = subStack(stack, 1, 3);
    assert.equal(sub.channels, 2);
    assert.equal(sub.data.buffer, stack.data.buffer);
    assert.equal(valueAt(sub, 1, 0, 0), -1);
    assert.throws(() => subStack(stack, 2, 4), /out of range/);
  });
  it("paints RGB items opaque", () => {
    const src = rgbSource({ count: 1, height: 1, width: 1, data: new Uint8Array([1, 2, 3]) });
    const out = new Uint8ClampedArray(4);
    src.paint(0, out);
    assert.deepEqual([...out], [1, 2, 3, 255]);
    assert.equal(src.value(0, 0, 0), null);
  });
});

describe("saved-page model", () => {
  it("revives base64 bytes and answers requests from the saved replies", async () => {
    const page = {
      state: { layer_name: "a", blob: { $b64: "AQID" } },
      replies: { "features|1|a": { content: { stack: { shape: [1, 1, 1] } }, buffers: [{ $b64: "/w==" }] } },
    };
    const revived = revive(page.state) as { blob: DataView };
    assert.deepEqual([...new Uint8Array(revived.blob.buffer)], [1, 2, 3]);
    const model = new StaticModel(page);
    const got: unknown[][] = [];
    model.on("msg:custom", (msg, buffers) => got.push([msg, buffers]));
    const changes: string[] = [];
    model.on("change:layer_name", () => changes.push(String(model.get("layer_name"))));
    model.set("layer_name", "b");
    assert.deepEqual(changes, ["b"]);
    model.send({ type: "request", id: 4, key: "features|1|a", kind: "features" });
    model.send({ type: "request", id: 5, key: "features|1|zzz", kind: "features" });
    await new Promise((r) => setTimeout(r, 5));
    const [reply, buffers] = got[0] as [Record<string, unknown>, DataView[]];
    assert.equal(reply.type, "reply");
    assert.equal(reply.id, 4);
    assert.deepEqual([...new Uint8Array((buffers[0] as DataView).buffer)], [255]);
    const [err] = got[1] as [Record<string, unknown>];
    assert.equal(err.type, "error");
    assert.match(String(err.message), /Not in this saved page/);
  });
});

describe("nearest-neighbour blit", () => {
  it("maps output pixels to source pixel centres", () => {
    assert.deepEqual([...nearestIndex(2, 4)], [0, 0, 1, 1]);
    assert.deepEqual([...nearestIndex(4, 2)], [1, 3]);
    assert.deepEqual([...nearestIndex(3, 3)], [0, 1, 2]);
  });
  it("writes a scaled map through its LUT at an offset, clipped to the target", () => {
    const levels = new Uint8Array([0, 1, 2, 3]); // 2 x 2
    const lut = new Uint32Array(256).map((_, q) => 100 + q);
    const target = { pixels: new Uint32Array(5 * 4), width: 5 };
    blit({ levels, lut }, 2, nearestIndex(2, 4), nearestIndex(2, 4), target, 2, 1);
    const rows = [0, 1, 2, 3].map((r) => [...target.pixels.subarray(r * 5, r * 5 + 5)]);
    assert.deepEqual(rows, [
      [0, 0, 0, 0, 0],
      [0, 0, 100, 100, 101],
      [0, 0, 100, 100, 101],
      [0, 0, 102, 102, 103],
    ]);
    const t2 = { pixels: new Uint32Array(4), width: 2 };
    blit((i) => i + 7, 2, nearestIndex(2, 2), nearestIndex(2, 2), t2, 0, 0);
    assert.deepEqual([...t2.pixels], [7, 8, 9, 10]);
    const t3 = { pixels: new Uint32Array(3 * 2), width: 3 }; // left and bottom edges clip
    blit((i) => i + 1, 2, nearestIndex(2, 4), nearestIndex(2, 2), t3, -2, 1);
    assert.deepEqual([...t3.pixels], [0, 0, 0, 2, 2, 0]);
    const t4 = { pixels: new Uint32Array(2), width: 2 };
    blit((i) => i + 1, 2, nearestIndex(2, 2), nearestIndex(1, 1), t4, 5, 0); // wholly outside
    assert.deepEqual([...t4.pixels], [0, 0]);
  });
});
