/** Messages from Python and the `shown_<kind>` traits, validated into their unions. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PayloadError } from "../src/decode";
import { valueAt } from "../src/decode";
import { makeEntry, mayReplace, partialNote, rgbOf, stackOf } from "../src/entry";
import { parseMessage, parseShown, requestMessage } from "../src/messages";
import { bytesAt, float32Bytes } from "./helpers";

/** Buffers [levels, lo, hi] of a 1 x 1 x 2 stack with values 0 and 1. */
function stackBuffers(): DataView[] {
  return [bytesAt([0, 255]), float32Bytes([0]), float32Bytes([1])];
}
const STACK = { shape: [1, 1, 2], range_dtype: "float32" };

describe("messages from Python", () => {
  it("ignores other message types, rejects a missing head or an unknown kind", () => {
    assert.equal(parseMessage({ type: "hello" }, []), null);
    assert.equal(parseMessage("text", []), null);
    assert.throws(() => parseMessage({ type: "error", id: 1, kind: "features" }, []), /id\/key\/kind/);
    assert.throws(() => parseMessage({ type: "error", id: 1, key: "k", kind: "bogus" }, []), PayloadError);
  });
  it("gathers a reply's content and buffers, per kind", () => {
    const m = parseMessage({ type: "reply", id: 3, key: "features|1|a", kind: "features", layer: "a", stack: STACK }, stackBuffers());
    assert.ok(m && m.type === "reply");
    const reply = m.reply;
    assert.equal(reply.kind, "features");
    assert.equal(reply.id, 3);
    assert.equal(reply.partial, null);
    if (reply.kind !== "features") return;
    assert.deepEqual(reply.content.stack.shape, [1, 1, 2]);
    assert.equal(valueAt(stackOf(makeEntry(reply)), 0, 0, 1), 1);
  });
  it("rejects replies whose content does not match their kind", () => {
    const head = { type: "reply", id: 1, key: "k", kind: "cam" };
    assert.throws(() => parseMessage({ ...head, method: "GradCAM", target: 1, stack: STACK }, []), /3 buffers/);
    assert.throws(() => parseMessage({ ...head, target: 1, stack: STACK }, stackBuffers()), /method/);
    assert.throws(() => parseMessage({ ...head, kind: "kernels", stack: STACK, kernel_shape: [1, 2] }, stackBuffers()), /kernel_shape/);
    assert.throws(() => parseMessage({ ...head, kind: "predictions", top: [{ index: "a" }] }, []), /prediction 0/);
    assert.throws(() => parseMessage({ ...head, kind: "metrics", figures: { a: [1] } }, []), /figure a/);
  });
  it("takes a class-agnostic CAM reply (target null)", () => {
    const m = parseMessage(
      { type: "reply", id: 1, key: "cam|1|EigenCAM|*|f", kind: "cam", method: "EigenCAM", target: null, layer: "f", stack: STACK },
      stackBuffers(),
    );
    assert.ok(m?.type === "reply" && m.reply.kind === "cam");
    assert.equal(m.reply.content.target, null);
  });
  it("validates progress, errors and actmax items", () => {
    const p = parseMessage({ type: "progress", id: 2, key: "k", kind: "actmax", done: 3, total: 8, text: "step 3" }, []);
    assert.deepEqual(p, { type: "progress", id: 2, key: "k", kind: "actmax", done: 3, total: 8, text: "step 3", heartbeat: false, left_s: null });
    const beat = parseMessage(
      { type: "progress", id: 2, key: "k", kind: "cam", done: 0, total: 0, text: "cam (still computing, 4 s)", heartbeat: true, left_s: 12.5 },
      [],
    );
    assert.ok(beat?.type === "progress" && beat.heartbeat && beat.left_s === 12.5);
    assert.throws(() => parseMessage({ type: "progress", id: 2, key: "k", kind: "actmax", done: "x", total: 8 }, []), /done/);
    const e = parseMessage({ type: "error", id: 2, key: "k", kind: "cam", message: "no" }, []);
    assert.deepEqual(e, { type: "error", id: 2, key: "k", kind: "cam", message: "no" });
    const item = parseMessage({ type: "item", id: 2, key: "k", kind: "actmax", index: 5, rgb: { shape: [1, 1, 1, 3] } }, [bytesAt([1, 2, 3])]);
    assert.ok(item?.type === "item");
    assert.equal(item.index, 5);
    assert.deepEqual(item.rgb.shape, [1, 1, 1, 3]);
    assert.throws(() => parseMessage({ type: "item", id: 2, key: "k", kind: "cam", index: 5, rgb: { shape: [1] } }, []), /only actmax/);
  });
  it("reads what a map explains, and which direction of a figure is better", () => {
    const cam = parseMessage(
      { type: "reply", id: 1, key: "cam|1|GradCAM|3|f", kind: "cam", method: "GradCAM", target: 3, class_name: "star", prob: 0.02, layer: "f", stack: { shape: [1, 1, 2] } },
      stackBuffers(),
    );
    assert.ok(cam?.type === "reply" && cam.reply.kind === "cam");
    assert.deepEqual([cam.reply.content.class_name, cam.reply.content.prob, cam.reply.content.target], ["star", 0.02, 3]);
    const agnostic = parseMessage(
      { type: "reply", id: 1, key: "cam|1|EigenCAM|*|f", kind: "cam", method: "EigenCAM", target: null, class_name: null, prob: null, stack: { shape: [1, 1, 2] } },
      stackBuffers(),
    );
    assert.ok(agnostic?.type === "reply" && agnostic.reply.kind === "cam");
    assert.deepEqual([agnostic.reply.content.class_name, agnostic.reply.content.prob], [null, null]);
    const metrics = parseMessage(
      { type: "reply", id: 2, key: "metrics|1|GradCAM|3|f", kind: "metrics", figures: { deletion_auc: 0.1 }, better: { deletion_auc: "lower", x: "sideways" } },
      [],
    );
    assert.ok(metrics?.type === "reply" && metrics.reply.kind === "metrics");
    assert.deepEqual(metrics.reply.content.better, { deletion_auc: "lower" });
  });
  it("builds request messages with their params flat", () => {
    assert.deepEqual(requestMessage("cam", 7, "cam|1|EigenCAM|*|f", { version: 1, method: "EigenCAM", target: null, layer: "f" }), {
      type: "request",
      id: 7,
      key: "cam|1|EigenCAM|*|f",
      kind: "cam",
      version: 1,
      method: "EigenCAM",
      target: null,
      layer: "f",
    });
  });
});

describe("shown_<kind> traits", () => {
  it("is the reply of a request, a snapshot, or nothing", () => {
    assert.equal(parseShown("features", null), null);
    const r = parseShown("features", { id: 4, key: "features|1|a", content: { layer: "a", stack: STACK }, buffers: stackBuffers() });
    assert.equal(r?.id, 4);
    const snap = parseShown("predictions", { id: null, key: "predictions|1", content: { top: [{ index: 1, name: "b", prob: 1 }] }, buffers: [] });
    assert.ok(snap?.kind === "predictions");
    assert.equal(snap.id, null);
    assert.equal(snap.content.top[0]?.name, "b");
  });
  it("reads a partial snapshot, and rejects a key of another kind or a malformed value", () => {
    const r = parseShown("features", {
      id: null,
      key: "features|1|a",
      content: { stack: STACK, partial: { channels: 1, of: 64 } },
      buffers: stackBuffers(),
    });
    assert.deepEqual(r?.partial, { channels: 1, of: 64 });
    assert.throws(() => parseShown("features", { id: 1, key: "kernels|a", content: {}, buffers: [] }), /not a features key/);
    assert.throws(() => parseShown("features", { id: 1, key: "features|1|a", content: [], buffers: [] }), /content/);
    assert.throws(() => parseShown("features", "x"), PayloadError);
  });
  it("takes kernels with their RGB filters (buffer 3)", () => {
    const r = parseShown("kernels", {
      id: null,
      key: "kernels|c",
      content: { stack: { shape: [3, 1, 1] }, kernel_shape: [1, 3, 1, 1], absmax: 2, rgb: { shape: [1, 1, 1, 3] } },
      buffers: [bytesAt([0, 1, 2]), float32Bytes([0, 0, 0]), float32Bytes([1, 1, 1]), bytesAt([9, 8, 7])],
    });
    assert.ok(r?.kind === "kernels");
    assert.deepEqual([...(rgbOf(makeEntry(r))?.data ?? [])], [9, 8, 7]);
  });
});

describe("partial snapshots", () => {
  const complete = { partial: null };
  const partial = { partial: { channels: 2, of: 8 } };
  it("never replace a complete entry; anything else replaces what is there", () => {
    assert.equal(mayReplace(complete, partial), false);
    assert.equal(mayReplace(undefined, partial), true);
    assert.equal(mayReplace(partial, partial), true);
    assert.equal(mayReplace(partial, complete), true);
    assert.equal(mayReplace(complete, complete), true);
  });
  it("say how much of the layer they hold", () => {
    assert.equal(partialNote({ channels: 2, of: 8 }), "2 of 8 maps saved with the notebook; run the cell to see all");
  });
});

