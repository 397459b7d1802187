/**
 * The session core without a browser: a fake clock, a `send` that records,
 * and events that record what the tabs would draw.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Outgoing } from "../src/messages";
import { type Clock, Session } from "../src/session";
import { t } from "../src/i18n";
import { CANCELLED, KERNEL_SILENCE_MS, type SessionState, WAITING_TEXT, statusLine } from "../src/status";
import { bytesAt, float32Bytes } from "./helpers";

class FakeClock implements Clock {
  time = 0;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();
  private nextTimer = 1;
  now(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextTimer++;
    this.timers.set(id, { at: this.time + ms, fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  advance(ms: number): void {
    this.time += ms;
    for (const [id, t] of [...this.timers]) {
      if (t.at <= this.time) {
        this.timers.delete(id);
        t.fn();
      }
    }
  }
}

const STACK = { shape: [1, 1, 2], range_dtype: "float32" };
const buffers = (): DataView[] => [bytesAt([0, 255]), float32Bytes([0]), float32Bytes([1])];
const key = (layer: string, version = 1): string => `features|${version}|${layer}`;

function harness(firstId = 1) {
  const sent: Outgoing[] = [];
  const events: string[] = [];
  const clock = new FakeClock();
  let state: Readonly<SessionState> | null = null;
  const session = new Session({
    send: (msg) => sent.push(msg),
    clock,
    firstId,
    events: {
      reply: (_kind, k) => events.push(`reply ${k}`),
      error: (_kind, k, message) => events.push(`error ${k}: ${message}`),
      item: (item) => events.push(`item ${item.key} ${item.index}`),
      changed: (s) => (state = s),
      invalid: (message) => events.push(`invalid ${message}`),
    },
  });
  const want = (layer: string, version = 1) => session.request("features", { version, layer });
  /** Ids and keys of the requests sent so far. */
  const requests = () =>
    sent.flatMap((m) => (m.type === "request" ? [`${m.id} ${m.key}`] : []));
  const reply = (id: number, layer: string, version = 1) =>
    session.receive({ type: "reply", id, key: key(layer, version), kind: "features", layer, stack: STACK }, buffers());
  const shown = (id: number | null, layer: string, extra: Record<string, unknown> = {}, seed = false) =>
    session.shown(
      "features",
      { id, key: key(layer), content: { layer, stack: STACK, ...extra }, buffers: buffers() },
      seed,
    );
  return { session, sent, events, clock, want, requests, reply, shown, state: () => state ?? session.state };
}

describe("session: coalescing", () => {
  it("sends the first and the last of a fast scrub; the stale reply is cached, not drawn", () => {
    const h = harness();
    assert.equal(h.want("a"), null);
    h.want("b");
    h.want("c");
    h.want("d");
    assert.deepEqual(h.requests(), [`1 ${key("a")}`]);
    h.reply(1, "a");
    assert.deepEqual(h.requests(), [`1 ${key("a")}`, `2 ${key("d")}`]);
    assert.deepEqual(h.events, []); // "a" is not wanted any more
    h.reply(2, "d");
    assert.deepEqual(h.events, [`reply ${key("d")}`]);
    assert.ok(h.want("a"), "the stale reply was kept: back to it without a request");
    assert.equal(h.state().requests, 2);
  });
  it("draws a reply wanted again before it arrived, and sends nothing more", () => {
    const h = harness();
    h.want("a");
    h.want("b");
    h.want("a");
    h.reply(1, "a");
    assert.deepEqual(h.events, [`reply ${key("a")}`]);
    assert.equal(h.requests().length, 1);
  });
  it("numbers requests of all kinds from one counter, starting at firstId", () => {
    const h = harness(1000);
    h.want("a");
    h.session.request("predictions", { version: 1 });
    h.session.request("cam", { version: 1, method: "EigenCAM", target: null, layer: "f" });
    assert.deepEqual(h.requests(), [`1000 ${key("a")}`, "1001 predictions|1", "1002 cam|1|EigenCAM|*|f"]);
  });
  it("announces errors of the wanted key only, and moves on to the queued key", () => {
    const h = harness();
    h.want("a");
    h.want("b");
    h.session.receive({ type: "error", id: 1, key: key("a"), kind: "features", message: "boom" }, []);
    assert.deepEqual(h.events, []);
    assert.deepEqual(h.requests(), [`1 ${key("a")}`, `2 ${key("b")}`]);
    h.session.receive({ type: "error", id: 2, key: key("b"), kind: "features", message: "bad layer" }, []);
    assert.deepEqual(h.events, [`error ${key("b")}: bad layer`]);
  });
  it("reports malformed messages and trait values", () => {
    const h = harness();
    h.session.receive({ type: "reply", id: 1, key: "k", kind: "nope" }, []);
    h.session.shown("features", { id: 1, key: "kernels|x", content: {}, buffers: [] });
    assert.equal(h.events.length, 2);
    assert.ok(h.events.every((e) => e.startsWith("invalid ")));
  });
});

describe("session: replies in the shown_<kind> traits", () => {
  it("a trait value with the request's id completes the request in flight", () => {
    const h = harness();
    h.want("a");
    h.want("b");
    h.shown(1, "a");
    assert.deepEqual(h.requests(), [`1 ${key("a")}`, `2 ${key("b")}`]);
    assert.deepEqual(h.events, []);
    h.shown(2, "b");
    assert.deepEqual(h.events, [`reply ${key("b")}`]);
    assert.ok(h.want("b"));
    assert.equal(h.requests().length, 2);
  });
  it("does not depend on the order of trait changes and later messages", () => {
    const h = harness();
    h.want("a");
    h.session.request("predictions", { version: 1 });
    // the predictions reply (a message) comes before the features trait is applied
    h.session.receive({ type: "reply", id: 2, key: "predictions|1", kind: "predictions", top: [] }, []);
    h.shown(1, "a");
    assert.deepEqual(h.events, ["reply predictions|1", `reply ${key("a")}`]);
    assert.equal(h.session.state.progress, null);
  });
  it("seeds the cache at start: the first paint needs no request", () => {
    const h = harness();
    h.shown(null, "a", {}, true);
    h.session.shown("predictions", { id: null, key: "predictions|1", content: { top: [] }, buffers: [] }, true);
    h.session.shown("cam", null, true);
    assert.ok(h.want("a"));
    assert.ok(h.session.request("predictions", { version: 1 }));
    assert.deepEqual(h.sent, []);
    assert.deepEqual(h.events, []);
    assert.equal(h.state().requests, 0);
  });
  it("a partial snapshot is drawn until the complete data comes, and never replaces it", () => {
    const h = harness();
    const partial = { partial: { channels: 1, of: 64 } };
    h.shown(null, "a", partial, true);
    const first = h.want("a");
    assert.deepEqual(first?.partial, partial.partial); // drawn now, with its note
    assert.deepEqual(h.requests(), [`1 ${key("a")}`]); // and the whole layer asked for
    // Python sends the complete reply by message and puts a partial snapshot in the trait,
    // which may be applied before or after the message.
    h.shown(null, "a", partial);
    assert.deepEqual(h.requests().length, 1, "a snapshot completes no request");
    h.reply(1, "a");
    assert.equal(h.want("a")?.partial, null);
    h.shown(null, "a", partial);
    assert.equal(h.want("a")?.partial, null, "the complete entry stays");
    assert.deepEqual(h.events, [`reply ${key("a")}`, `reply ${key("a")}`]);
    assert.equal(h.requests().length, 1);
  });
  it("counts the bytes that came", () => {
    const h = harness();
    h.want("a");
    h.shown(1, "a");
    assert.equal(h.state().bytesReceived, 2 + 4 + 4);
    assert.equal(h.state().lastRoundTripMs, 0);
  });
});

describe("session: progress, cancel and a silent kernel", () => {
  it("shows progress of its own requests, cancels, and clears when the request ends", () => {
    const h = harness();
    const params = { layer: "f", channels: [0, 1], regularize: true };
    const akey = "actmax|f|0,1|regularized";
    h.session.request("actmax", params);
    h.session.receive({ type: "progress", id: 99, key: "x", kind: "actmax", done: 1, total: 2, text: "other" }, []);
    assert.equal(statusLine(h.state()), null, "progress of a request of another view");
    h.session.receive({ type: "progress", id: 1, key: akey, kind: "actmax", done: 1, total: 4, text: "channel 0" }, []);
    assert.deepEqual(statusLine(h.state()), { text: "channel 0", done: 1, total: 4, bar: true });
    h.session.receive({ type: "item", id: 1, key: akey, kind: "actmax", index: 0, rgb: { shape: [1, 1, 1, 3] } }, [bytesAt([1, 2, 3])]);
    assert.deepEqual(h.events, [`item ${akey} 0`]);
    assert.equal(h.state().cancellable, true);
    h.session.cancel();
    assert.deepEqual(h.sent.at(-1), { type: "cancel" });
    assert.equal(statusLine(h.state())?.text, "cancelling…");
    assert.equal(h.state().cancellable, false, "Cancel again would stop nothing more");
    h.session.receive({ type: "error", id: 1, key: akey, kind: "actmax", message: CANCELLED }, []);
    assert.equal(h.events.at(-1), `error ${akey}: cancelled`);
    assert.equal(statusLine(h.state()), null);
    assert.equal(h.state().pending, 0);
  });
  it("a heartbeat keeps the kernel alive; the bar is indeterminate until something is counted", () => {
    const h = harness();
    h.want("a");
    const beat = (s: number, done = 0, total = 0, extra: Record<string, unknown> = {}) =>
      h.session.receive({ type: "progress", id: 1, key: key("a"), kind: "features", done, total, text: `still computing, ${s} s`, heartbeat: true, ...extra }, []);
    for (let s = 2; s <= 30; s += 2) {
      h.clock.advance(2000);
      beat(s);
      assert.equal(h.state().silent, false, `${s} s`);
    }
    assert.deepEqual(statusLine(h.state()), { text: "still computing, 30 s", done: 0, total: null, bar: true });
    beat(32, 3, 10, { left_s: 40, text: "3 / 10 · about 40 s left" });
    assert.deepEqual(statusLine(h.state()), { text: "3 / 10 · about 40 s left", done: 3, total: 10, bar: true });
    assert.equal(h.state().progress?.leftS, 40);
    h.clock.advance(KERNEL_SILENCE_MS);
    assert.equal(h.state().silent, true, "then nothing at all for the whole silence time");
  });
  it("after a cancel: usable again; a cancelled key is not asked again by itself", () => {
    const h = harness();
    h.want("a");
    h.want("b"); // queued behind "a"
    h.session.cancel();
    assert.deepEqual(h.events, [`error ${key("b")}: cancelled`], "the queued key is not sent, and says so");
    h.session.receive({ type: "error", id: 1, key: key("a"), kind: "features", message: CANCELLED }, []);
    assert.equal(h.state().cancelling, false);
    assert.equal(statusLine(h.state()), null, "no stuck cancelling…");
    assert.deepEqual(h.requests(), [`1 ${key("a")}`]);
    assert.equal(h.want("b"), null);
    assert.equal(h.requests().length, 1, "a redraw does not start the cancelled work again");
    assert.equal(h.session.isCancelled("features", key("b")), true);
    h.want("c"); // another key: sent at once
    assert.deepEqual(h.requests().slice(-1), [`2 ${key("c")}`]);
    h.reply(2, "c");
    h.want("b"); // back to the cancelled one after choosing another: asked again
    assert.deepEqual(h.requests().slice(-1), [`3 ${key("b")}`]);
    h.session.cancel();
    h.session.receive({ type: "error", id: 3, key: key("b"), kind: "features", message: CANCELLED }, []);
    h.session.retry("features");
    h.want("b");
    assert.deepEqual(h.requests().slice(-1), [`4 ${key("b")}`], "Compute again");
  });
  it("cancel with nothing pending sends nothing and shows nothing", () => {
    const h = harness();
    assert.equal(h.state().cancellable, false);
    h.session.cancel();
    assert.deepEqual(h.sent, []);
    assert.equal(statusLine(h.state()), null);
  });
  it("a kernel gone while cancelling: the silent text, not a moving cancelling… bar", () => {
    const h = harness();
    h.want("a");
    h.clock.advance(3000);
    h.session.cancel();
    assert.equal(statusLine(h.state())?.text, "cancelling…");
    h.clock.advance(KERNEL_SILENCE_MS);
    assert.deepEqual(statusLine(h.state()), { text: t(WAITING_TEXT), done: 0, total: null, bar: false });
  });
  it("says the kernel may be gone when requests go unanswered, and recovers when it speaks", () => {
    const h = harness();
    h.clock.advance(KERNEL_SILENCE_MS * 2);
    assert.equal(h.state().silent, false, "nothing asked: nothing to wait for");
    h.want("a");
    h.clock.advance(KERNEL_SILENCE_MS - 1);
    assert.equal(h.state().silent, false);
    h.clock.advance(1);
    assert.equal(h.state().silent, true);
    assert.deepEqual(statusLine(h.state()), { text: t(WAITING_TEXT), done: 0, total: null, bar: false });
    h.shown(1, "a");
    assert.equal(h.state().silent, false);
    assert.equal(statusLine(h.state()), null);
  });
  it("a new image asked for and never answered (a saved page: no kernel) says so; a new version or an error ends the wait", () => {
    for (const ask of ["evaluation", "drawing"] as const) {
      const h = harness();
      if (ask === "evaluation") h.session.setEvaluationImage(4);
      else h.session.setImage(8, 8, new ArrayBuffer(8 * 8 * 4));
      assert.equal(h.sent.at(-1)?.type, "set_image");
      assert.equal(h.state().pending, 1);
      assert.equal(h.state().cancellable, false, "a new image is not a computation to cancel");
      h.session.cancel();
      assert.equal(h.sent.at(-1)?.type, "set_image", "no cancel sent for it");
      h.clock.advance(KERNEL_SILENCE_MS);
      assert.equal(h.state().silent, true, ask);
      assert.deepEqual(statusLine(h.state()), { text: t(WAITING_TEXT), done: 0, total: null, bar: false });
      h.session.imageChanged(2); // Python set the image: it is there
      assert.equal(h.state().silent, false);
      assert.equal(h.state().pending, 0);
      h.clock.advance(KERNEL_SILENCE_MS * 2);
      assert.equal(h.state().silent, false, "nothing waits any more");
    }
    const refused = harness();
    refused.session.setEvaluationImage(99);
    refused.session.imageRefused(); // the explorer's error trait: Python answered with an error
    refused.clock.advance(KERNEL_SILENCE_MS * 2);
    assert.equal(refused.state().silent, false);
    assert.equal(refused.state().pending, 0);
  });
  it("a new image drops the data of the old one and stops waiting for its requests", () => {
    const h = harness();
    h.session.request("kernels", { layer: "c" });
    h.session.receive(
      { type: "reply", id: 1, key: "kernels|c", kind: "kernels", stack: STACK, kernel_shape: [1, 1, 1, 2], absmax: 1 },
      buffers(),
    );
    h.shown(null, "b", {}, true);
    h.want("a");
    h.session.imageChanged(2);
    assert.ok(h.want("a", 2) === null);
    assert.deepEqual(h.requests().slice(-1), [`3 ${key("a", 2)}`], "sent at once, not queued behind the lost one");
    assert.ok(h.session.entry("kernels", "kernels|c"), "kernels do not depend on the image");
    assert.equal(h.session.entry("features", key("b")), null);
    h.reply(2, "a"); // the old request's reply, if it comes after all, is not drawn
    assert.deepEqual(h.events, ["reply kernels|c"]);
    assert.deepEqual(h.requests().slice(-1), [`3 ${key("a", 2)}`]);
  });
});
