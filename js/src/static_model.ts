/**
 * A stand-in for the Jupyter widget model in the page that
 * `LayerExplorer.save_html` writes: it holds the saved traits and answers
 * the front end's data requests from the replies Python precomputed (keyed
 * by the request key), so the views stay interactive without a kernel.
 *
 * Binary values in the saved JSON are `{"$b64": "..."}`.
 *
 * Pure module: no DOM access (uses only atob, present in browsers and node).
 */

import { kindName } from "./explain";
import { translator } from "./i18n";

type Callback = (...args: unknown[]) => void;

/** The two host functions this module needs (browsers and node have both). */
const host = globalThis as unknown as {
  atob(text: string): string;
  setTimeout(fn: () => void, ms: number): unknown;
};

export interface SavedReply {
  content: Record<string, unknown>;
  buffers: unknown[];
}

export interface SavedPage {
  state: Record<string, unknown>;
  replies: Record<string, SavedReply>;
}

/** base64 -> DataView. */
export function fromBase64(text: string): DataView {
  const bin = host.atob(text);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return new DataView(bytes.buffer);
}

/** Replace every `{"$b64": s}` in a JSON value by a DataView of its bytes. */
export function revive(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(revive);
  if (value && typeof value === "object") {
    const rec = value as Record<string, unknown>;
    const keys = Object.keys(rec);
    if (keys.length === 1 && keys[0] === "$b64" && typeof rec.$b64 === "string") return fromBase64(rec.$b64);
    const out: Record<string, unknown> = {};
    for (const k of keys) out[k] = revive(rec[k]);
    return out;
  }
  return value;
}

export class StaticModel {
  private readonly state: Record<string, unknown>;
  private readonly replies: Record<string, SavedReply>;
  private readonly listeners = new Map<string, Set<Callback>>();
  /** Requests answered (for tests). */
  answered = 0;

  constructor(page: SavedPage) {
    this.state = revive(page.state) as Record<string, unknown>;
    this.replies = revive(page.replies) as Record<string, SavedReply>;
  }

  get(name: string): unknown {
    return this.state[name];
  }

  set(name: string, value: unknown): void {
    if (this.state[name] === value) return;
    this.state[name] = value;
    this.emit(`change:${name}`);
  }

  save_changes(): void {}

  on(name: string, cb: Callback): void {
    let set = this.listeners.get(name);
    if (!set) {
      set = new Set();
      this.listeners.set(name, set);
    }
    set.add(cb);
  }

  off(name?: string | null, cb?: Callback | null): void {
    if (!name) this.listeners.clear();
    else if (!cb) this.listeners.delete(name);
    else this.listeners.get(name)?.delete(cb);
  }

  /** Answer a request from the saved replies, asynchronously (as a kernel would). */
  send(content: unknown): void {
    const msg = content as Record<string, unknown>;
    if (msg.type !== "request") return;
    const key = String(msg.key);
    const saved = this.replies[key];
    const t = translator(this.state.lang);
    const reply = saved
      ? { content: { ...saved.content, type: "reply", id: msg.id, key, kind: msg.kind }, buffers: saved.buffers }
      : {
          content: {
            type: "error",
            id: msg.id,
            key,
            kind: msg.kind,
            message: t("static.not_saved", { kind: kindName(String(msg.kind), t) }),
          },
          buffers: [],
        };
    this.answered += 1;
    host.setTimeout(() => this.emit("msg:custom", reply.content, reply.buffers), 0);
  }

  private emit(name: string, ...args: unknown[]): void {
    for (const cb of [...(this.listeners.get(name) ?? [])]) cb(...args);
  }
}
