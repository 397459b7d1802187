/**
 * The explorer's one channel to Python: sends requests (coalesced per kind,
 * see requests.ts), keeps the replies in a byte-bounded cache (cache.ts),
 * takes replies from messages and from the `shown_<kind>` traits alike,
 * tracks progress and cancel, and notices a silent kernel.
 *
 * Tabs ask `request(kind, params)`: the complete entry when it is here (no
 * message), else the request goes out (or waits behind the one in flight)
 * and, when the reply for the key still wanted arrives, `events.reply` says
 * so. Stale replies are cached, not announced.
 *
 * Pure module: no DOM access; time comes from a Clock, messages leave
 * through `send`.
 */

import { ByteCache } from "./cache";
import { type Entry, entryBytes, makeEntry, mayReplace } from "./entry";
import { keyVersion, requestKey } from "./keys";
import {
  type ActmaxItem,
  type ErrorMessage,
  type Outgoing,
  type ProgressMessage,
  type Reply,
  type RequestKind,
  type RequestParams,
  type ShownKind,
  bufferBytes,
  parseMessage,
  parseShown,
  requestMessage,
} from "./messages";
import { Coalescer, type Request, counter } from "./requests";
import { CANCELLED, KERNEL_SILENCE_MS, type Progress, type SessionState } from "./status";

/** Front-end cache budget, bytes. */
export const CACHE_BYTES = 256 * 1024 * 1024;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface SessionEvents {
  /** The data of `key`, the key wanted for `kind`, arrived (draw it). */
  reply(kind: RequestKind, key: string): void;
  /** The request for `key`, the key wanted for `kind`, failed (message CANCELLED: cancelled). */
  error(kind: RequestKind, key: string, message: string): void;
  item(item: ActmaxItem): void;
  changed(state: Readonly<SessionState>): void;
  /** A malformed message or trait value. */
  invalid(message: string): void;
  /** Progress of a request of this view (its text carries Python's estimate). */
  progress?(progress: Readonly<Progress>): void;
}

export interface SessionOptions {
  send(msg: Outgoing, buffers?: ArrayBuffer[]): void;
  clock: Clock;
  events: SessionEvents;
  budget?: number;
  /** Id of the first request (a random start keeps views of one model apart). */
  firstId?: number;
  silenceMs?: number;
}

const tag = (kind: RequestKind, id: number): string => `${kind}:${id}`;
/** The sentAt tag of a new input image sent to Python, answered by a new image version (or an error). */
const NEW_IMAGE = "set_image";

export class Session {
  readonly state: SessionState = {
    requests: 0,
    bytesReceived: 0,
    lastRoundTripMs: null,
    pending: 0,
    cancellable: false,
    silent: false,
    progress: null,
    cancelling: false,
  };
  private readonly cache: ByteCache<Entry>;
  private readonly coalescers = new Map<RequestKind, Coalescer>();
  private readonly newId: () => number;
  /** The message to send for the latest key wanted of each kind. */
  private readonly outgoing = new Map<RequestKind, { key: string; make: (id: number) => Outgoing }>();
  /** kind:id of requests in flight -> when they were sent. */
  private readonly sentAt = new Map<string, number>();
  /** kind:id of the requests in flight when a cancel was sent, not answered yet. */
  private readonly cancelWaits = new Set<string>();
  /** Per kind, the key whose request was cancelled: not asked again until `retry` or another key is wanted. */
  private readonly cancelledKeys = new Map<RequestKind, string>();
  private progressOf: string | null = null;
  private timer: unknown = null;

  constructor(private readonly options: SessionOptions) {
    this.cache = new ByteCache<Entry>(options.budget ?? CACHE_BYTES);
    this.newId = counter(options.firstId ?? 1);
  }

  /**
   * Want the data of `kind` for `params`. Returns the complete entry when it
   * is here (nothing is sent); otherwise asks Python and returns the partial
   * snapshot of that key, if one is here, or null.
   */
  request<K extends RequestKind>(kind: K, params: RequestParams[K]): Entry<K> | null {
    const key = requestKey(kind, params);
    const cancelled = this.cancelledKeys.get(kind);
    if (cancelled === key) return this.entry(kind, key); // asked to stop: not again by itself
    if (cancelled !== undefined) this.cancelledKeys.delete(kind);
    this.outgoing.set(kind, { key, make: (id) => requestMessage(kind, id, key, params) });
    const req = this.coalescer(kind).want(key, this.have);
    if (req) this.transmit(kind, req);
    return this.entry(kind, key);
  }

  /** True while a request of `kind` waits for its answer. */
  waitingFor(kind: RequestKind): boolean {
    return this.coalescers.get(kind)?.inFlight != null;
  }

  /** True when the request for `key` was cancelled (and not asked again since). */
  isCancelled(kind: RequestKind, key: string): boolean {
    return this.cancelledKeys.get(kind) === key;
  }

  /** Forget that `kind`'s request was cancelled: the next `request` sends it again. */
  retry(kind: RequestKind): void {
    this.cancelledKeys.delete(kind);
  }

  /** The entry of `key` (complete or partial), if it is here. */
  entry<K extends RequestKind>(kind: K, key: string): Entry<K> | null {
    const e = this.cache.get(key);
    return e && e.kind === kind ? (e as Entry<K>) : null;
  }

  /** True when the complete data of `key` is here. */
  readonly have = (key: string): boolean => {
    const e = this.cache.peek(key);
    return e !== undefined && e.partial === null;
  };

  /** A custom message from Python. */
  receive(msg: unknown, buffers: unknown): void {
    this.heard();
    try {
      const m = parseMessage(msg, buffers);
      if (m?.type === "reply") this.accept(m.reply);
      else if (m?.type === "error") this.failed(m);
      else if (m?.type === "progress") this.progress(m);
      else if (m?.type === "item") this.options.events.item(m);
    } catch (err) {
      this.options.events.invalid(String(err));
    }
  }

  /**
   * The value of trait `shown_<kind>`: the reply of request `id`, or a
   * snapshot. With `seed` (at start) it only fills the cache.
   */
  shown(kind: ShownKind, value: unknown, seed = false): void {
    if (!seed) this.heard();
    let reply: Reply | null;
    try {
      reply = parseShown(kind, value);
    } catch (err) {
      this.options.events.invalid(String(err));
      return;
    }
    if (!reply) return;
    if (seed) this.store(reply);
    else this.accept(reply);
  }

  /**
   * Ask Python to stop: it answers every request sent before the cancel
   * with the error CANCELLED ("cancelling…" until then). Keys queued behind
   * them are not sent. Does nothing when no request waits.
   */
  cancel(): void {
    const waiting = [...this.sentAt.keys()].filter((t) => t !== NEW_IMAGE && !this.cancelWaits.has(t));
    if (waiting.length === 0) return;
    this.options.send({ type: "cancel" });
    for (const t of waiting) this.cancelWaits.add(t);
    const dropped: [RequestKind, string][] = [];
    for (const [kind, c] of this.coalescers) {
      const key = c.dropPending();
      if (key === null || key !== c.wanted) continue;
      this.cancelledKeys.set(kind, key);
      dropped.push([kind, key]);
    }
    this.watch(); // an answer is due: none at all means the kernel is gone
    this.changed();
    for (const [kind, key] of dropped) this.options.events.error(kind, key, CANCELLED);
  }

  /** Send an RGBA drawing as the new input image. */
  setImage(height: number, width: number, rgba: ArrayBuffer): void {
    this.options.send({ type: "set_image", height, width }, [rgba]);
    this.awaitImage();
  }

  /** Make dataset image `index` of the explorer's evaluation data the input image. */
  setEvaluationImage(index: number): void {
    this.options.send({ type: "set_image", evaluation_index: index });
    this.awaitImage();
  }

  /** A new image was asked for: Python answers with a new image version; no answer at all means no kernel (a saved page). */
  private awaitImage(): void {
    this.sentAt.set(NEW_IMAGE, this.options.clock.now());
    this.watch();
    this.changed();
  }

  /** Python refused the new image (the explorer's error trait changed): not waiting for it any more. */
  imageRefused(): void {
    this.heard();
    if (this.sentAt.delete(NEW_IMAGE)) this.changed();
  }

  /**
   * The input image is now `version`: drop the data of other versions, and
   * stop waiting for their requests (Python does not answer those).
   */
  imageChanged(version: number): void {
    this.heard();
    this.sentAt.delete(NEW_IMAGE);
    const other = (key: string): boolean => {
      const v = keyVersion(key);
      return v !== null && v !== version;
    };
    this.cache.clear(other);
    for (const [kind, c] of this.coalescers) {
      const f = c.inFlight;
      if (f && other(f.key)) {
        this.sentAt.delete(tag(kind, f.id));
        c.abandon();
      }
    }
    for (const [kind, key] of this.cancelledKeys) if (other(key)) this.cancelledKeys.delete(kind);
    this.changed();
  }

  destroy(): void {
    if (this.timer !== null) this.options.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private coalescer(kind: RequestKind): Coalescer {
    let c = this.coalescers.get(kind);
    if (!c) {
      c = new Coalescer(this.newId);
      this.coalescers.set(kind, c);
    }
    return c;
  }

  private transmit(kind: RequestKind, req: Request): void {
    const out = this.outgoing.get(kind);
    if (!out || out.key !== req.key) return;
    this.sentAt.set(tag(kind, req.id), this.options.clock.now());
    this.state.requests += 1;
    this.options.send(out.make(req.id));
    this.watch();
    this.changed();
  }

  /** Cache a reply; false when the partial-snapshot rule keeps what is there. */
  private store(reply: Reply): boolean {
    const entry = makeEntry(reply);
    if (!mayReplace(this.cache.peek(reply.key), entry)) return false;
    this.cache.set(reply.key, entry, entryBytes(entry));
    return true;
  }

  private accept(reply: Reply): void {
    this.state.bytesReceived += bufferBytes(reply.buffers);
    const stored = this.store(reply);
    // A complete reply for the key in flight completes it, whatever its id (the same data).
    if (reply.partial === null) this.finish(reply.kind, reply.key, null);
    if (stored && this.coalescer(reply.kind).wanted === reply.key) this.options.events.reply(reply.kind, reply.key);
    this.changed();
  }

  private failed(m: ErrorMessage): void {
    const ours = this.finish(m.kind, m.key, m.id);
    if (ours && this.coalescer(m.kind).wanted === m.key) {
      if (m.message === CANCELLED) this.cancelledKeys.set(m.kind, m.key);
      this.options.events.error(m.kind, m.key, m.message);
    }
    this.changed();
  }

  private progress(m: ProgressMessage): void {
    const t = tag(m.kind, m.id);
    if (!this.sentAt.has(t)) return; // not a request of this view, or one already answered
    this.progressOf = t;
    const p: Progress = {
      kind: m.kind,
      key: m.key,
      text: m.text,
      done: m.done,
      total: m.total,
      heartbeat: m.heartbeat,
      leftS: m.left_s,
    };
    this.state.progress = p;
    this.options.events.progress?.(p);
    this.changed();
  }

  /**
   * The request in flight for `key` is answered (`id` null: by any id).
   * Sends the key queued behind it; false when no such request was in flight.
   */
  private finish(kind: RequestKind, key: string, id: number | null): boolean {
    const c = this.coalescer(kind);
    const f = c.inFlight;
    if (!f || f.key !== key || (id !== null && f.id !== id)) return false;
    const t = tag(kind, f.id);
    const sent = this.sentAt.get(t);
    if (sent !== undefined) this.state.lastRoundTripMs = this.options.clock.now() - sent;
    this.sentAt.delete(t);
    const { next } = c.complete(f.id, this.have);
    this.changed();
    if (next) this.transmit(kind, next);
    return true;
  }

  private watch(): void {
    if (this.timer !== null) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = null;
      if (this.sentAt.size === 0) return;
      this.state.silent = true;
      this.changed();
    }, this.options.silenceMs ?? KERNEL_SILENCE_MS);
  }

  /** Python said something: the kernel is alive. */
  private heard(): void {
    if (this.timer !== null) this.options.clock.clearTimeout(this.timer);
    this.timer = null;
    if (this.state.silent) {
      this.state.silent = false;
      this.changed();
    }
    if (this.sentAt.size > 0) this.watch();
  }

  /** Derive what the state says about the requests in flight, then tell the view. */
  private changed(): void {
    const s = this.state;
    for (const t of this.cancelWaits) if (!this.sentAt.has(t)) this.cancelWaits.delete(t);
    if (this.progressOf !== null && !this.sentAt.has(this.progressOf)) {
      s.progress = null;
      this.progressOf = null;
    }
    s.pending = this.sentAt.size;
    s.cancelling = this.cancelWaits.size > 0;
    s.cancellable = [...this.sentAt.keys()].some((t) => t !== NEW_IMAGE && !this.cancelWaits.has(t));
    this.options.events.changed(s);
  }
}
