/**
 * What the explorer's status line says about the session: progress of the
 * running request (with Python's time estimate), "cancelling…" until the
 * cancelled requests are answered, and a kernel that went silent.
 *
 * Pure module: no DOM access.
 */

import { type Translate, t as defaultT } from "./i18n";
import type { RequestKind } from "./messages";

/** No message from Python this long while a request waits: say the kernel may be gone (ms). */
export const KERNEL_SILENCE_MS = 10_000;
/** The status line while the kernel is silent (a key of the message table). */
export const WAITING_TEXT = "status.waiting";
/** Shown in a tab that has nothing drawn while the kernel is silent. */
export const RUN_AGAIN_HINT = "status.run_again_hint";
export const CANCELLING_TEXT = "status.cancelling";
/** The error message Python answers a cancelled request with. */
export const CANCELLED = "cancelled";

export interface Progress {
  kind: RequestKind;
  key: string;
  text: string;
  done: number;
  total: number;
  /** The last message was a heartbeat: still computing, nothing new counted. */
  heartbeat: boolean;
  /** Python's estimate of the seconds left, or null. */
  leftS: number | null;
}

export interface SessionState {
  /** Requests sent (not counting data found in the cache or the traits). */
  requests: number;
  bytesReceived: number;
  lastRoundTripMs: number | null;
  /** Requests sent and not answered yet. */
  pending: number;
  /** Some pending request was sent after the last cancel (Cancel would stop something). */
  cancellable: boolean;
  /** Nothing came from Python for KERNEL_SILENCE_MS while requests waited. */
  silent: boolean;
  progress: Progress | null;
  /** A cancel was sent and some request sent before it is not answered yet. */
  cancelling: boolean;
}

export interface StatusLine {
  text: string;
  done: number;
  /** null: an indeterminate bar. */
  total: number | null;
  /** Whether to show the bar at all (not for a silent kernel: nothing is moving). */
  bar: boolean;
}

/** The status line for a state, in the language of `t`: null when there is nothing to say. */
export function statusLine(s: Readonly<SessionState>, t: Translate = defaultT): StatusLine | null {
  if (s.silent) return { text: t(WAITING_TEXT), done: 0, total: null, bar: false };
  if (s.cancelling) return { text: t(CANCELLING_TEXT), done: 0, total: null, bar: true };
  const p = s.progress;
  if (!p) return null;
  // Nothing counted yet (a heartbeat of a job that reports no steps): an indeterminate bar,
  // not one stuck at 0 %.
  if (p.total <= 0 || (p.heartbeat && p.done <= 0)) return { text: p.text, done: 0, total: null, bar: true };
  return { text: p.text, done: Math.min(Math.max(p.done, 0), p.total), total: p.total, bar: true };
}
