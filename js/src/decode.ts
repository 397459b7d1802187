/**
 * Decoding of the binary payloads that the Python side sends.
 *
 * anywidget delivers Python `bytes` as `DataView`s (also when nested inside
 * dicts). The functions here turn the payload dicts into typed-array *views*
 * on the very same memory: nothing is copied, except the float32 `lo`/`hi`
 * arrays when their byte offset is not a multiple of 4 (a `Float32Array`
 * cannot start there) or when the host is big-endian.
 *
 * Pure module: no DOM access.
 */

/** Map stack as it arrives from Python (feature maps, kernels, CAMs). */
export interface MapStackPayload {
  /** uint8 levels, C*H*W, channel-major then row-major. */
  data: DataView;
  /** [C, H, W] */
  shape: readonly number[];
  /** float32 little-endian, C values: real value of level 0 of each map. */
  lo: DataView;
  /** float32 little-endian, C values: real value of level 255 of each map. */
  hi: DataView;
  /** Optional per-map labels (C strings). */
  labels?: readonly string[] | null;
  /**
   * Encoding of `lo` / `hi`: "float32" (default) or "float16" (IEEE half,
   * little-endian; halves the range bytes for layers of many small maps).
   */
  range_dtype?: "float32" | "float16" | null;
}

/** RGB stack as it arrives from Python (first-layer filters, input image). */
export interface RgbStackPayload {
  /** uint8, N*H*W*3, HWC per item. */
  data: DataView;
  /** [N, H, W, 3] */
  shape: readonly number[];
}

/** Decoded map stack: typed views on the payload's memory. */
export interface MapStack {
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  /** H*W, number of levels per map. */
  readonly mapSize: number;
  /** All levels, C*H*W (a view, not a copy). */
  readonly data: Uint8Array;
  readonly lo: Float32Array;
  readonly hi: Float32Array;
  /** Per-map labels, or null when the payload had none. */
  readonly labels: readonly string[] | null;
}

/** Decoded RGB stack. */
export interface RgbStack {
  readonly count: number;
  readonly height: number;
  readonly width: number;
  /** All pixels, N*H*W*3 (a view, not a copy). */
  readonly data: Uint8Array;
}

/** Number of bytes in a colour table: 256 RGBA entries. */
export const COLOR_TABLE_BYTES = 256 * 4;

/** Error raised for payloads that do not follow the data contract. */
export class PayloadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PayloadError";
  }
}

const LITTLE_ENDIAN_HOST = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** True for a DataView, any typed array or an ArrayBuffer. */
export function isBinary(value: unknown): value is DataView | ArrayBufferView | ArrayBuffer {
  return ArrayBuffer.isView(value) || value instanceof ArrayBuffer;
}

/**
 * Byte view on a binary value without copying. Accepts `DataView` (what
 * anywidget hands over), any typed array, or an `ArrayBuffer`.
 */
export function bytesView(value: unknown, what: string): Uint8Array {
  if (ArrayBuffer.isView(value)) {
    return new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  }
  if (value instanceof ArrayBuffer) {
    return new Uint8Array(value);
  }
  throw new PayloadError(`${what}: expected bytes (DataView), got ${describe(value)}`);
}

/**
 * Float32 little-endian array of exactly `count` values. A view when the
 * memory is 4-byte aligned (and the host little-endian), otherwise a copy.
 */
export function float32View(value: unknown, count: number, what: string): Float32Array {
  const bytes = bytesView(value, what);
  const expected = count * 4;
  if (bytes.byteLength !== expected) {
    throw new PayloadError(
      `${what}: expected ${expected} bytes (${count} float32 values), got ${bytes.byteLength}`,
    );
  }
  if (LITTLE_ENDIAN_HOST && bytes.byteOffset % 4 === 0) {
    return new Float32Array(bytes.buffer, bytes.byteOffset, count);
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = dv.getFloat32(i * 4, true);
  return out;
}

/** IEEE 754 half-precision bits -> number. */
export function halfToFloat(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const fraction = bits & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 0x1f) return fraction ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}

/** Float16 little-endian bytes of exactly `count` values, widened to a Float32Array. */
export function float16Values(value: unknown, count: number, what: string): Float32Array {
  const bytes = bytesView(value, what);
  if (bytes.byteLength !== count * 2) {
    throw new PayloadError(
      `${what}: expected ${count * 2} bytes (${count} float16 values), got ${bytes.byteLength}`,
    );
  }
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    out[i] = halfToFloat((bytes[2 * i] as number) | ((bytes[2 * i + 1] as number) << 8));
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value === "object" ? (value.constructor?.name ?? "object") : typeof value;
}

function readShape(shape: unknown, rank: number, what: string): number[] {
  if (!Array.isArray(shape) || shape.length !== rank) {
    throw new PayloadError(
      `${what}: shape must be a list of ${rank} integers, got ${JSON.stringify(shape)}`,
    );
  }
  for (const n of shape) {
    if (typeof n !== "number" || !Number.isInteger(n) || n < 0) {
      throw new PayloadError(
        `${what}: shape must hold non-negative integers, got ${JSON.stringify(shape)}`,
      );
    }
  }
  return shape as number[];
}

function asRecord(payload: unknown, what: string): Record<string, unknown> {
  if (payload === null || typeof payload !== "object" || isBinary(payload)) {
    throw new PayloadError(`${what}: expected a dict, got ${describe(payload)}`);
  }
  return payload as Record<string, unknown>;
}

/**
 * Decode a map stack. Throws `PayloadError` naming expected and actual sizes
 * when the payload does not match its shape, and for non-finite or inverted
 * (hi < lo) ranges.
 */
export function decodeMapStack(payload: unknown): MapStack {
  const what = "map stack";
  const p = asRecord(payload, what);
  const [channels, height, width] = readShape(p.shape, 3, what) as [number, number, number];
  const data = bytesView(p.data, `${what} data`);
  const expected = channels * height * width;
  if (data.byteLength !== expected) {
    throw new PayloadError(
      `${what}: data has ${data.byteLength} bytes but shape [${channels}, ${height}, ${width}] ` +
        `needs ${expected} (C*H*W)`,
    );
  }
  const rangeDtype = p.range_dtype ?? "float32";
  if (rangeDtype !== "float32" && rangeDtype !== "float16") {
    throw new PayloadError(`${what}: range_dtype must be "float32" or "float16", got ${JSON.stringify(rangeDtype)}`);
  }
  const readRange = rangeDtype === "float16" ? float16Values : float32View;
  const lo = readRange(p.lo, channels, `${what} lo`);
  const hi = readRange(p.hi, channels, `${what} hi`);
  for (let c = 0; c < channels; c++) {
    const l = lo[c] as number;
    const h = hi[c] as number;
    if (!Number.isFinite(l) || !Number.isFinite(h)) {
      throw new PayloadError(`${what}: map ${c} has a non-finite range lo=${l}, hi=${h}`);
    }
    if (h < l) {
      throw new PayloadError(`${what}: map ${c} has hi < lo (lo=${l}, hi=${h})`);
    }
  }
  let labels: string[] | null = null;
  if (p.labels !== undefined && p.labels !== null) {
    if (!Array.isArray(p.labels) || !p.labels.every((s) => typeof s === "string")) {
      throw new PayloadError(`${what}: labels must be a list of strings`);
    }
    if (p.labels.length !== channels) {
      throw new PayloadError(
        `${what}: expected ${channels} labels (one per map), got ${p.labels.length}`,
      );
    }
    labels = p.labels as string[];
  }
  return { channels, height, width, mapSize: height * width, data, lo, hi, labels };
}

/** Decode an RGB stack ([N, H, W, 3], HWC per item). */
export function decodeRgbStack(payload: unknown): RgbStack {
  const what = "rgb stack";
  const p = asRecord(payload, what);
  const [count, height, width, depth] = readShape(p.shape, 4, what) as [
    number,
    number,
    number,
    number,
  ];
  if (depth !== 3) {
    throw new PayloadError(`${what}: last dimension must be 3 (RGB), got ${depth}`);
  }
  const data = bytesView(p.data, `${what} data`);
  const expected = count * height * width * 3;
  if (data.byteLength !== expected) {
    throw new PayloadError(
      `${what}: data has ${data.byteLength} bytes but shape [${count}, ${height}, ${width}, 3] ` +
        `needs ${expected} (N*H*W*3)`,
    );
  }
  return { count, height, width, data };
}

/** Decode a colour table: 256 RGBA entries (1024 bytes), as a view. */
export function decodeColorTable(value: unknown): Uint8Array {
  const table = bytesView(value, "colour table");
  if (table.byteLength !== COLOR_TABLE_BYTES) {
    throw new PayloadError(
      `colour table: expected ${COLOR_TABLE_BYTES} bytes (256 RGBA entries), got ${table.byteLength}`,
    );
  }
  return table;
}

/** True when the stack has nothing to draw (no maps, or maps of zero size). */
export function isEmptyStack(stack: MapStack): boolean {
  return stack.channels === 0 || stack.mapSize === 0;
}

/** The levels of map `c` (a view of H*W bytes). */
export function mapLevels(stack: MapStack, c: number): Uint8Array {
  checkIndex(c, stack.channels, "channel");
  return stack.data.subarray(c * stack.mapSize, (c + 1) * stack.mapSize);
}

/** Real value of level `q` (0..255) in map `c`: lo + (hi - lo) * q / 255. */
export function levelValue(stack: MapStack, c: number, q: number): number {
  const lo = stack.lo[c] as number;
  const hi = stack.hi[c] as number;
  if (hi === lo) return lo;
  return lo + ((hi - lo) * q) / 255;
}

/** Real float value of map `c` at row `y`, column `x`. */
export function valueAt(stack: MapStack, c: number, y: number, x: number): number {
  checkIndex(c, stack.channels, "channel");
  checkIndex(y, stack.height, "row");
  checkIndex(x, stack.width, "column");
  const q = stack.data[c * stack.mapSize + y * stack.width + x] as number;
  return levelValue(stack, c, q);
}

function checkIndex(i: number, n: number, what: string): void {
  if (!Number.isInteger(i) || i < 0 || i >= n) {
    throw new RangeError(`${what} index ${i} out of range [0, ${n})`);
  }
}
