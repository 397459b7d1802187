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

/** Front-end cache budget, bytes. */
export const CACHE_BYTES = 256 * 1024 * 1024;
/** No message from Python this long after a request: say the kernel may be gone (ms). */
export const KERNEL_SILENCE_MS = 10_000;
export const WAITING_TEXT =
  "Waiting for Python… If the kernel was restarted or this notebook was reopened, run the cell again.";

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface SessionState {
  /** Requests sent (not counting data found in the cache or the traits). */
  requests: number;
  bytesReceived: number;
  lastRoundTripMs: number | null;
  /** Requests went unanswered for KERNEL_SILENCE_MS. */
  silent: boolean;
  progress: { text: string; done: number; total: number } | null;
  cancelling: boolean;
}

export interface SessionEvents {
  /** The data of `key`, the key wanted for `kind`, arrived (draw it). */
  reply(kind: RequestKind, key: string): void;
  /** The request for `key`, the key wanted for `kind`, failed. */
  error(kind: RequestKind, key: string, message: string): void;
  item(item: ActmaxItem): void;
  changed(state: Readonly<SessionState>): void;
  /** A malformed message or trait value. */
  invalid(message: string): void;
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

/** The status line for a state: null when there is nothing to say; total null: indeterminate. */
export function statusLine(s: Readonly<SessionState>): { text: string; done: number; total: number | null } | null {
  if (s.silent) return { text: WAITING_TEXT, done: 0, total: null };
  const p = s.progress;
  if (!p && !s.cancelling) return null;
  const total = p && p.total > 0 ? p.total : 1;
  return { text: s.cancelling ? "cancelling…" : (p?.text ?? ""), done: Math.min(p?.done ?? 0, total), total };
}

const tag = (kind: RequestKind, id: number): string => `${kind}:${id}`;

export class Session {
  readonly state: SessionState = {
    requests: 0,
    bytesReceived: 0,
    lastRoundTripMs: null,
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
    this.outgoing.set(kind, { key, make: (id) => requestMessage(kind, id, key, params) });
    const req = this.coalescer(kind).want(key, this.have);
    if (req) this.transmit(kind, req);
    return this.entry(kind, key);
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

  /** Ask Python to stop the running long job. */
  cancel(): void {
    this.options.send({ type: "cancel" });
    this.state.cancelling = this.sentAt.size > 0;
    this.changed();
  }

  /** Send an RGBA drawing as the new input image. */
  setImage(height: number, width: number, rgba: ArrayBuffer): void {
    this.options.send({ type: "set_image", height, width }, [rgba]);
  }

  /**
   * The input image is now `version`: drop the data of other versions, and
   * stop waiting for their requests (Python does not answer those).
   */
  imageChanged(version: number): void {
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
    this.settle(null);
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
    if (ours && this.coalescer(m.kind).wanted === m.key) this.options.events.error(m.kind, m.key, m.message);
    this.changed();
  }

  private progress(m: ProgressMessage): void {
    const t = tag(m.kind, m.id);
    if (!this.sentAt.has(t)) return; // not a request of this view, or one already answered
    this.progressOf = t;
    this.state.progress = { text: m.text, done: m.done, total: m.total };
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
    this.settle(t);
    if (next) this.transmit(kind, next);
    return true;
  }

  /** Clear progress and cancel marks that no request in flight needs any more. */
  private settle(done: string | null): void {
    if (this.sentAt.size === 0 || (done !== null && this.progressOf === done)) {
      this.state.progress = null;
      this.progressOf = null;
    }
    if (this.sentAt.size === 0) this.state.cancelling = false;
    this.changed();
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

  private changed(): void {
    this.options.events.changed(this.state);
  }
}
