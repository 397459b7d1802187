/**
 * Geometry of the hover zoom: which map pixel lies under the cursor, which
 * part of the input image it corresponds to, and how to show an enlarged,
 * nearest-neighbour view of the map around it.
 *
 * Boxes are [x0, y0, x1, y1] in continuous input-pixel coordinates, where
 * input pixel (row r, column c) covers [c, c + 1) x [r, r + 1); x1 and y1 are
 * exclusive, so for whole-pixel boxes the pixels covered are columns
 * x0 .. x1 - 1 and rows y0 .. y1 - 1.
 *
 * Pure module: no DOM access.
 */

export type Box = [x0: number, y0: number, x1: number, y1: number];

export interface MapPixel {
  row: number;
  col: number;
}

/**
 * The map pixel under point (localX, localY) of a tile of tileWidth x
 * tileHeight showing a mapHeight x mapWidth map stretched over the whole
 * tile (as `drawImage` does), or null outside the tile.
 */
export function mapPixelAt(
  localX: number,
  localY: number,
  tileWidth: number,
  tileHeight: number,
  mapHeight: number,
  mapWidth: number,
): MapPixel | null {
  if (!(tileWidth > 0 && tileHeight > 0 && mapHeight > 0 && mapWidth > 0)) return null;
  if (!(localX >= 0 && localY >= 0 && localX < tileWidth && localY < tileHeight)) return null;
  const col = Math.min(mapWidth - 1, Math.floor((localX * mapWidth) / tileWidth));
  const row = Math.min(mapHeight - 1, Math.floor((localY * mapHeight) / tileHeight));
  return { row, col };
}

/**
 * The region of an inputHeight x inputWidth image that map pixel (row, col)
 * of a mapHeight x mapWidth map covers when the map is stretched over the
 * image. Edges are exact (not rounded); see `pixelBox` for whole pixels.
 */
export function proportionalBox(
  row: number,
  col: number,
  mapHeight: number,
  mapWidth: number,
  inputHeight: number,
  inputWidth: number,
): Box {
  const sx = inputWidth / mapWidth;
  const sy = inputHeight / mapHeight;
  return [col * sx, row * sy, (col + 1) * sx, (row + 1) * sy];
}

/** Clip a box to the image [0, width] x [0, height]. */
export function clipBox(box: Box, inputHeight: number, inputWidth: number): Box {
  const cx = (v: number): number => Math.min(Math.max(v, 0), inputWidth);
  const cy = (v: number): number => Math.min(Math.max(v, 0), inputHeight);
  return [cx(box[0]), cy(box[1]), cx(box[2]), cy(box[3])];
}

/** Smallest whole-pixel box holding `box`, clipped to the image. */
export function pixelBox(box: Box, inputHeight: number, inputWidth: number): Box {
  // Tolerate floating error in edges that should be whole (e.g. 3 * 32/7 * 7/3).
  const eps = 1e-9;
  const down = (v: number): number => Math.floor(v + eps);
  const up = (v: number): number => Math.ceil(v - eps);
  return clipBox([down(box[0]), down(box[1]), up(box[2]), up(box[3])], inputHeight, inputWidth);
}

type PerAxis = number | readonly [y: number, x: number];

/**
 * Receptive field of a layer's units, per axis either one number or
 * [y, x]. Give either `padding` (effective padding: output index i sees
 * input indices i * jump - padding .. i * jump - padding + size - 1), or
 * `start` (centre of output unit 0's field in the coordinates above, so
 * 0.5 is the centre of input pixel 0; start = size / 2 - padding).
 */
export interface ReceptiveField {
  size: PerAxis;
  jump: PerAxis;
  padding?: PerAxis;
  start?: PerAxis;
}

function axis(v: PerAxis, i: 0 | 1): number {
  return typeof v === "number" ? v : (v[i] as number);
}

/**
 * The input region that map pixel (row, col) sees through the receptive
 * field `rf`, clipped to the inputHeight x inputWidth image unless
 * `clip` is false.
 */
export function receptiveFieldBox(
  row: number,
  col: number,
  rf: ReceptiveField,
  inputHeight: number,
  inputWidth: number,
  clip = true,
): Box {
  const edges = (i: 0 | 1, index: number): [number, number] => {
    const size = axis(rf.size, i);
    const jump = axis(rf.jump, i);
    if (!(size > 0) || !(jump > 0)) {
      throw new RangeError(`receptive field size and jump must be positive (size=${size}, jump=${jump})`);
    }
    let first: number;
    if (rf.start !== undefined) first = axis(rf.start, i) - size / 2 + index * jump;
    else first = index * jump - (rf.padding === undefined ? 0 : axis(rf.padding, i));
    return [first, first + size];
  };
  const [y0, y1] = edges(0, row);
  const [x0, x1] = edges(1, col);
  const box: Box = [x0, y0, x1, y1];
  return clip ? clipBox(box, inputHeight, inputWidth) : box;
}

export interface ZoomRequest {
  mapHeight: number;
  mapWidth: number;
  /** Map pixel to centre on and mark. */
  row: number;
  col: number;
  /** Size of the zoom view. */
  boxWidth: number;
  boxHeight: number;
  /** Smallest enlargement; a map that does not fit at this scale is cropped around (row, col). Default 1. */
  minScale?: number;
  /** Largest enlargement. Default: no bound. */
  maxScale?: number;
}

export interface ZoomGeometry {
  /** Integer screen pixels per map pixel. */
  scale: number;
  /** Source rectangle in map pixels. */
  sx: number;
  sy: number;
  sw: number;
  sh: number;
  /** Destination rectangle in the zoom view (centred). */
  dx: number;
  dy: number;
  dw: number;
  dh: number;
  /** Top-left of the marked pixel (row, col) in the zoom view; its size is scale x scale. */
  markX: number;
  markY: number;
}

/**
 * Enlarged nearest-neighbour view of a map: the largest integer scale at
 * which the whole map fits the box (bounded by minScale/maxScale). When the
 * map does not fit at that scale, a window of the map around (row, col) is
 * shown instead, kept inside the map.
 */
export function zoomGeometry(req: ZoomRequest): ZoomGeometry {
  const { mapHeight, mapWidth, boxWidth, boxHeight } = req;
  if (!(mapHeight >= 1 && mapWidth >= 1 && boxWidth >= 1 && boxHeight >= 1)) {
    throw new RangeError("zoomGeometry needs positive map and box sizes");
  }
  const row = Math.min(Math.max(Math.floor(req.row), 0), mapHeight - 1);
  const col = Math.min(Math.max(Math.floor(req.col), 0), mapWidth - 1);
  const minScale = Math.max(1, Math.floor(req.minScale ?? 1));
  const maxScale = Math.max(minScale, Math.floor(req.maxScale ?? Number.MAX_SAFE_INTEGER));
  const fit = Math.floor(Math.min(boxWidth / mapWidth, boxHeight / mapHeight));
  const scale = Math.min(Math.max(fit, minScale), maxScale);

  const sw = Math.max(1, Math.min(mapWidth, Math.floor(boxWidth / scale)));
  const sh = Math.max(1, Math.min(mapHeight, Math.floor(boxHeight / scale)));
  const sx = Math.min(Math.max(col - Math.floor(sw / 2), 0), mapWidth - sw);
  const sy = Math.min(Math.max(row - Math.floor(sh / 2), 0), mapHeight - sh);
  const dw = sw * scale;
  const dh = sh * scale;
  const dx = Math.floor((boxWidth - dw) / 2);
  const dy = Math.floor((boxHeight - dh) / 2);
  return {
    scale,
    sx,
    sy,
    sw,
    sh,
    dx,
    dy,
    dw,
    dh,
    markX: dx + (col - sx) * scale,
    markY: dy + (row - sy) * scale,
  };
}

/** A layer's receptive field as the Python side sends it: per axis [y, x], in input-tensor pixels. */
export interface LayerField {
  size: [number, number];
  jump: [number, number];
  start: [number, number];
  /** Input tensor size [height, width] the field is measured in. */
  input: [number, number];
}

export interface InputOutline {
  box: Box;
  kind: "receptive-field" | "proportional";
}

/**
 * The region of the shown input image (imageHeight x imageWidth) to outline
 * for map pixel (row, col) of a mapHeight x mapWidth map: the unit's
 * receptive field when `field` is known (scaled from the input tensor's size
 * to the image's, clipped), else the proportional position of the pixel.
 */
export function inputOutline(
  row: number,
  col: number,
  mapHeight: number,
  mapWidth: number,
  imageHeight: number,
  imageWidth: number,
  field: LayerField | null | undefined,
): InputOutline {
  if (field && field.input[0] > 0 && field.input[1] > 0) {
    const [x0, y0, x1, y1] = receptiveFieldBox(row, col, field, field.input[0], field.input[1]);
    const sy = imageHeight / field.input[0];
    const sx = imageWidth / field.input[1];
    return { box: [x0 * sx, y0 * sy, x1 * sx, y1 * sy], kind: "receptive-field" };
  }
  return { box: proportionalBox(row, col, mapHeight, mapWidth, imageHeight, imageWidth), kind: "proportional" };
}
