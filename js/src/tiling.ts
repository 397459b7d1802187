/**
 * Grid layout of map tiles, paging, and hit testing.
 *
 * All sizes are in CSS pixels. Tile i sits at column i % columns, row
 * floor(i / columns); tiles are separated by `gap` pixels and the grid has no
 * outer margin. A tile covers the half-open box [x, x + tileWidth) x
 * [y, y + tileHeight), so a point on the right or bottom border belongs to
 * the gap.
 *
 * Pure module: no DOM access.
 */

export interface GridSpec {
  /** Number of tiles. */
  count: number;
  /** Height and width of one map (sets the tile aspect). */
  tileAspect: { height: number; width: number };
  /** Width available for the grid. */
  containerWidth: number;
  /** Smallest wanted size of a tile's longer side. Default 48. */
  minTileSize?: number;
  /** Largest wanted size of a tile's longer side. Default 160. */
  maxTileSize?: number;
  /**
   * Size of the longer side to aim at when choosing the number of columns
   * (see `preferredTileSize`). Default: minTileSize, i.e. as many columns
   * as fit.
   */
  preferredTileSize?: number;
  /** Space between tiles. Default 4. */
  gap?: number;
  /** Upper bound on the number of columns. */
  maxColumns?: number;
  /**
   * When enlarging, shrink the tile to a whole multiple of the map size
   * (not below the minimum) so that every map pixel gets the same number of
   * screen pixels. Default true.
   */
  snap?: boolean;
}

export interface GridLayout {
  count: number;
  columns: number;
  rows: number;
  tileWidth: number;
  tileHeight: number;
  gap: number;
  /** Total grid width: columns * tileWidth + (columns - 1) * gap. */
  width: number;
  /** Total grid height: rows * tileHeight + (rows - 1) * gap. */
  height: number;
}

export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export const DEFAULT_MIN_TILE = 48;
export const DEFAULT_MAX_TILE = 160;
export const DEFAULT_GAP = 4;

function positiveInt(value: number, what: string): number {
  if (!Number.isFinite(value) || value < 1) {
    throw new RangeError(`${what} must be a positive number, got ${value}`);
  }
  return Math.floor(value);
}

/**
 * Lay out `count` tiles: as many columns as fit at the preferred tile size
 * (at most `count`, at most `maxColumns`), then tiles as large as the
 * width allows within [minTileSize, maxTileSize] (longer side).
 * The minimum size wins over the container width: a container narrower
 * than one minimum-size tile gets a grid wider than itself.
 */
export function computeGrid(spec: GridSpec): GridLayout {
  const count = Math.max(0, Math.floor(spec.count));
  const gap = Math.max(0, spec.gap ?? DEFAULT_GAP);
  const mapH = positiveInt(spec.tileAspect.height, "tile aspect height");
  const mapW = positiveInt(spec.tileAspect.width, "tile aspect width");
  const minSize = positiveInt(spec.minTileSize ?? DEFAULT_MIN_TILE, "minTileSize");
  const maxSize = Math.max(minSize, positiveInt(spec.maxTileSize ?? DEFAULT_MAX_TILE, "maxTileSize"));
  const container = Number.isFinite(spec.containerWidth) ? Math.max(0, spec.containerWidth) : 0;

  if (count === 0) {
    return { count: 0, columns: 0, rows: 0, tileWidth: 0, tileHeight: 0, gap, width: 0, height: 0 };
  }

  // Bounds on the tile width that put the longer side within [min, max].
  const wide = mapW >= mapH;
  const heightOf = (tw: number): number => Math.max(1, Math.round((tw * mapH) / mapW));
  const minTw = wide ? minSize : Math.max(1, Math.ceil((minSize * mapW) / mapH));
  const maxTw = wide ? maxSize : Math.max(minTw, Math.floor((maxSize * mapW) / mapH));

  const preferred = Math.min(
    Math.max(Math.floor(spec.preferredTileSize ?? minSize), minSize),
    maxSize,
  );
  const prefTw = wide ? preferred : Math.max(minTw, Math.ceil((preferred * mapW) / mapH));
  let columns = Math.max(1, Math.floor((container + gap) / (prefTw + gap)));
  columns = Math.min(columns, count);
  if (spec.maxColumns !== undefined && spec.maxColumns >= 1) {
    columns = Math.min(columns, Math.floor(spec.maxColumns));
  }

  const available = container - gap * (columns - 1);
  let tw = Math.floor(available / columns);
  tw = Math.min(Math.max(tw, minTw), maxTw);

  let th = heightOf(tw);
  if ((spec.snap ?? true) && tw >= mapW) {
    // Snapping only ever shrinks the tile (a larger multiple would not fit
    // the width or the maximum), and not below the minimum.
    const snapped = Math.floor(tw / mapW) * mapW;
    if (snapped >= minTw) {
      tw = snapped;
      th = (tw / mapW) * mapH;
    }
  }

  const rows = Math.ceil(count / columns);
  return {
    count,
    columns,
    rows,
    tileWidth: tw,
    tileHeight: th,
    gap,
    width: columns * tw + (columns - 1) * gap,
    height: rows * th + (rows - 1) * gap,
  };
}

/**
 * A tile size (longer side) that suits a mapHeight x mapWidth map: the map's
 * own size when that lies within [minSize, maxSize]; for smaller maps the
 * smallest whole multiple of the map that reaches minSize (so that every map
 * pixel gets the same number of screen pixels); for larger maps maxSize.
 */
export function preferredTileSize(
  mapHeight: number,
  mapWidth: number,
  minSize = DEFAULT_MIN_TILE,
  maxSize = DEFAULT_MAX_TILE,
): number {
  const longer = Math.max(1, Math.floor(Math.max(mapHeight, mapWidth)));
  const hi = Math.max(minSize, maxSize);
  if (longer >= hi) return hi;
  if (longer >= minSize) return longer;
  const multiple = Math.ceil(minSize / longer) * longer;
  return multiple <= hi ? multiple : minSize;
}

/**
 * Width of a layer slider, CSS pixels: about 14 px a layer, within
 * [120, 420], so that deep models do not get 3 px a layer.
 */
export function layerSliderWidth(layers: number): number {
  return Math.min(420, Math.max(120, Math.round(14 * Math.max(0, layers))));
}

/** Position of tile `index` in the grid. */
export function tileRect(layout: GridLayout, index: number): Rect {
  if (!Number.isInteger(index) || index < 0 || index >= layout.count) {
    throw new RangeError(`tile index ${index} out of range [0, ${layout.count})`);
  }
  const col = index % layout.columns;
  const row = Math.floor(index / layout.columns);
  return {
    x: col * (layout.tileWidth + layout.gap),
    y: row * (layout.tileHeight + layout.gap),
    width: layout.tileWidth,
    height: layout.tileHeight,
  };
}

/** Positions of all tiles, in index order. */
export function tileRects(layout: GridLayout): Rect[] {
  const rects: Rect[] = [];
  for (let i = 0; i < layout.count; i++) rects.push(tileRect(layout, i));
  return rects;
}

export interface TileHit {
  index: number;
  /** Position within the tile, in [0, tileWidth) x [0, tileHeight). */
  localX: number;
  localY: number;
}

/** The tile under grid point (x, y) and the point's position within it. */
export function locateTile(layout: GridLayout, x: number, y: number): TileHit | null {
  if (layout.count === 0 || !Number.isFinite(x) || !Number.isFinite(y)) return null;
  if (x < 0 || y < 0 || x >= layout.width || y >= layout.height) return null;
  const pitchX = layout.tileWidth + layout.gap;
  const pitchY = layout.tileHeight + layout.gap;
  const col = Math.floor(x / pitchX);
  const row = Math.floor(y / pitchY);
  const localX = x - col * pitchX;
  const localY = y - row * pitchY;
  if (localX >= layout.tileWidth || localY >= layout.tileHeight) return null;
  if (col >= layout.columns) return null;
  const index = row * layout.columns + col;
  if (index >= layout.count) return null;
  return { index, localX, localY };
}

/** Index of the tile under grid point (x, y), or -1 in gaps and outside. */
export function hitTest(layout: GridLayout, x: number, y: number): number {
  return locateTile(layout, x, y)?.index ?? -1;
}

export interface PageInfo {
  /** The page shown (the requested one, clamped to the existing pages). */
  pageIndex: number;
  pageCount: number;
  pageSize: number;
  /** First tile index on the page. */
  start: number;
  /** One past the last tile index on the page. */
  end: number;
}

/**
 * Tile index range [start, end) of page `pageIndex` when `total` tiles are
 * shown `pageSize` at a time. A page size that is not a positive number
 * (0, Infinity, NaN) means one page with everything. There is always at
 * least one page, empty when total is 0.
 */
export function pageRange(total: number, pageSize: number, pageIndex: number): PageInfo {
  const n = Math.max(0, Math.floor(total));
  const size = Number.isFinite(pageSize) && pageSize >= 1 ? Math.floor(pageSize) : Math.max(n, 1);
  const pageCount = Math.max(1, Math.ceil(n / size));
  let page = Number.isFinite(pageIndex) ? Math.floor(pageIndex) : 0;
  page = Math.min(Math.max(page, 0), pageCount - 1);
  const start = Math.min(page * size, n);
  const end = Math.min(start + size, n);
  return { pageIndex: page, pageCount, pageSize: size, start, end };
}

/** The page that holds tile `index`. */
export function pageOfTile(index: number, pageSize: number): number {
  if (!Number.isFinite(pageSize) || pageSize < 1) return 0;
  return Math.floor(Math.max(0, index) / Math.floor(pageSize));
}
