/**
 * Requests for data from Python, coalesced: at most one request is in
 * flight; while it runs, only the latest wanted key is remembered (fast
 * slider scrubbing sends the first and the last position, not every one),
 * and a reply for a key that is no longer wanted is stale: it may be kept
 * in the cache but must not be drawn.
 *
 * Pure module: no DOM access.
 */

export interface Request {
  id: number;
  key: string;
}

/** Request ids 1, 2, 3, ... */
export function counter(first = 1): () => number {
  let next = first;
  return () => next++;
}

export class Coalescer {
  private current: Request | null = null;
  private pending: string | null = null;
  private wantedKey: string | null = null;

  /** `newId` gives the id of each request sent (shared by the coalescers of one session). */
  constructor(private readonly newId: () => number = counter()) {}

  /** The key the view wants to show now. */
  get wanted(): string | null {
    return this.wantedKey;
  }

  /** The request waiting for its reply, if any. */
  get inFlight(): Request | null {
    return this.current;
  }

  /** True while a request waits for its reply. */
  get busy(): boolean {
    return this.current !== null;
  }

  /**
   * Want `key`. Returns the request to send now, or null when one is in
   * flight (the key is then sent when it completes, unless wanted changes
   * again) or when `have(key)` says the data is already here.
   */
  want(key: string, have: (key: string) => boolean = () => false): Request | null {
    this.wantedKey = key;
    if (have(key)) {
      this.pending = null;
      return null;
    }
    if (this.current) {
      this.pending = this.current.key === key ? null : key;
      return null;
    }
    return this.start(key);
  }

  /** Forget what is wanted (e.g. the view was reset). */
  clear(): void {
    this.wantedKey = null;
    this.pending = null;
  }

  /** Forget the key queued behind the request in flight (nothing is sent for it); returns it. */
  dropPending(): string | null {
    const key = this.pending;
    this.pending = null;
    return key;
  }

  /** Stop waiting for the request in flight (its reply will never come); forget the queued key. */
  abandon(): void {
    this.current = null;
    this.pending = null;
  }

  /**
   * The reply (or error) for request `id` arrived. Returns whether it is
   * still wanted (draw it) and the next request to send, if any.
   */
  complete(id: number, have: (key: string) => boolean = () => false): { current: boolean; next: Request | null } {
    const done = this.current;
    if (!done || done.id !== id) return { current: false, next: null };
    this.current = null;
    const current = done.key === this.wantedKey;
    let next: Request | null = null;
    const pending = this.pending;
    this.pending = null;
    if (pending !== null && pending === this.wantedKey && !have(pending)) next = this.start(pending);
    return { current, next };
  }

  private start(key: string): Request {
    this.current = { id: this.newId(), key };
    return this.current;
  }
}
