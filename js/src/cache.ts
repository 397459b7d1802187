/**
 * A least-recently-used cache bounded by total bytes: the front end keeps
 * the data Python sent (moving the slider back does not ask again) without
 * growing without bound.
 *
 * Pure module: no DOM access.
 */

export class ByteCache<V> {
  private readonly entries = new Map<string, { value: V; bytes: number }>();
  private total = 0;

  constructor(readonly budget: number) {}

  get size(): number {
    return this.entries.size;
  }

  get bytes(): number {
    return this.total;
  }

  has(key: string): boolean {
    return this.entries.has(key);
  }

  /** The value, marked as most recently used; undefined when absent. */
  get(key: string): V | undefined {
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    this.entries.delete(key);
    this.entries.set(key, entry);
    return entry.value;
  }

  /** The value without marking it used; undefined when absent. */
  peek(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Store a value; evicts least recently used entries beyond the budget (never the new one). */
  set(key: string, value: V, bytes: number): void {
    const old = this.entries.get(key);
    if (old) {
      this.total -= old.bytes;
      this.entries.delete(key);
    }
    this.entries.set(key, { value, bytes });
    this.total += bytes;
    for (const [k, e] of this.entries) {
      if (this.total <= this.budget || k === key) break;
      this.entries.delete(k);
      this.total -= e.bytes;
    }
  }

  /** Drop entries whose key starts with `prefix` (all when omitted), or for which `prefix(key)` holds. */
  clear(prefix: string | ((key: string) => boolean) = ""): void {
    const drop = typeof prefix === "string" ? (k: string) => k.startsWith(prefix) : prefix;
    for (const [k, e] of this.entries) {
      if (drop(k)) {
        this.entries.delete(k);
        this.total -= e.bytes;
      }
    }
  }
}
