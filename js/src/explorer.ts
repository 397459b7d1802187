/**
 * The explorer view: kernels, feature maps, class activation maps, saliency,
 * activation maximization and a drawing pad, as tabs over one model and one
 * input image. Focused widgets show a subset of the tabs (trait `views`).
 *
 * Data arrives by custom messages (see protocol.ts), is kept in a byte-bounded
 * cache, and is coloured here: colormap, colour scale and ordering changes
 * never ask Python for anything.
 */

import type { AnyModel } from "@anywidget/types";
import { sizeCanvas } from "./canvas_util";
import { ByteCache } from "./cache";
import { COLOR_SCALES, type ColorScale, Colorizer, grayColorTable } from "./colormap";
import {
  type MapStack,
  type RgbStack,
  decodeColorTable,
  decodeMapStack,
  decodeRgbStack,
  valueAt,
} from "./decode";
import { button, downloadCanvas, el, select, slider } from "./dom";
import { formatShape, formatValue } from "./format";
import { type GridHover, GridView } from "./grid_view";
import { type ChannelOrder, channelOrder } from "./order";
import { blendOverlay } from "./overlay";
import { Pager } from "./pager";
import {
  type Incoming,
  type Prediction,
  bufferBytes,
  keys,
  parseChannels,
  parseIncoming,
  parsePredictions,
  rgbPayload,
  stackPayload,
  toDataView,
} from "./protocol";
import { Coalescer } from "./requests";
import { ensureStyles } from "./styles";
import { pageRange } from "./tiling";
import { type TileSource, mapSource, rgbSource, subStack } from "./tiles";
import { type LayerField, inputOutline } from "./zoom";
import { ZoomBox } from "./zoom_box";

export interface LayerInfo {
  name: string;
  type: string;
  /** Output shape [C, H, W] for the explorer's image, or null. */
  shape: number[] | null;
  /** Conv kernels [O, I, kh, kw], or null for layers without kernels. */
  kernel_shape: number[] | null;
  /** Receptive field of the layer's units, or null when unknown (outline proportionally). */
  rf?: LayerField | null;
}

export interface ExplorerTraits {
  [key: string]: unknown;
  _view?: string;
  views?: string[];
  tab?: string;
  title?: string;
  layers?: LayerInfo[];
  layer_name?: string;
  input_image?: { data: DataView; shape: number[] } | null;
  image_version?: number;
  colormaps?: Record<string, DataView>;
  cmap?: string;
  kernel_cmap?: string;
  cam_cmap?: string;
  color_scale?: string;
  order?: string;
  global_range?: [number, number] | null;
  cam_methods?: string[];
  cam_method?: string;
  cam_layers?: string[];
  cam_layer?: string;
  /** Class to explain; -1: the top prediction. */
  target_class?: number;
  opacity?: number;
  saliency_methods?: string[];
  saliency_method?: string;
  error?: string;
}

type Model = AnyModel<ExplorerTraits>;

/** Most tiles on one page. */
export const PAGE_SIZE = 256;
/** Front-end cache budget, bytes. */
export const CACHE_BYTES = 256 * 1024 * 1024;
/** No message from Python this long after a request: say the kernel may be gone (ms). */
export const KERNEL_SILENCE_MS = 10_000;
const FALLBACK_WIDTH = 640;
const TAB_TITLES: Record<string, string> = {
  kernels: "Kernels",
  features: "Feature maps",
  cam: "Class activation",
  saliency: "Saliency",
  actmax: "Activation max.",
  draw: "Draw input",
};

interface Entry {
  msg: Incoming;
  buffers: DataView[];
  stack?: MapStack;
  rgb?: RgbStack;
  orders?: Map<ChannelOrder, number[]>;
}

/** Render the explorer into `el`; returns the cleanup function. */
export function renderExplorer(model: Model, host: HTMLElement): () => void {
  const doc = host.ownerDocument;
  const view = doc.defaultView;
  ensureStyles(host);
  const cleanups: (() => void)[] = [];
  const listen = (name: string, cb: () => void): void => {
    model.on(name, cb);
    cleanups.push(() => model.off(name, cb));
  };

  const root = el(doc, "div", "cnnviz-root cnnviz-explorer");
  root.dataset.requests = "0";
  // Keys typed in the widget (arrow keys on a slider, digits in a field) are the widget's,
  // not JupyterLab's notebook shortcuts.
  root.setAttribute("data-lm-suppress-shortcuts", "true");
  root.setAttribute("data-p-suppress-shortcuts", "true");
  host.appendChild(root);
  const header = el(doc, "div", "cnnviz-header");
  const title = el(doc, "div", "cnnviz-title");
  header.append(title);
  const errorBox = el(doc, "div", "cnnviz-message cnnviz-error");
  errorBox.setAttribute("role", "alert");
  errorBox.hidden = true;
  const status = el(doc, "div", "cnnviz-status");
  status.hidden = true;
  const statusText = el(doc, "span", "cnnviz-status-text");
  const progress = el(doc, "progress", "cnnviz-progress");
  progress.setAttribute("aria-label", "Progress");
  const cancel = button(doc, "Cancel", "Cancel the running computation", () => {
    model.send({ type: "cancel" });
    statusText.textContent = "cancelling…";
  });
  status.append(statusText, progress, cancel);
  const tabBar = el(doc, "div", "cnnviz-tabs");
  tabBar.setAttribute("role", "tablist");
  root.append(header, tabBar, status, errorBox);

  const zoom = new ZoomBox(root);
  cleanups.push(() => zoom.destroy());
  const cache = new ByteCache<Entry>(CACHE_BYTES);
  const coalescers = new Map<string, Coalescer>();
  const coalescer = (kind: string): Coalescer => {
    let c = coalescers.get(kind);
    if (!c) {
      c = new Coalescer();
      coalescers.set(kind, c);
    }
    return c;
  };
  const have = (key: string): boolean => cache.has(key);
  let requests = 0;

  // ---------- helpers ----------
  const str = (name: string, fallback: string): string => {
    const v = model.get(name);
    return typeof v === "string" ? v : fallback;
  };
  const num = (name: string, fallback: number): number => {
    const v = model.get(name);
    return typeof v === "number" && Number.isFinite(v) ? v : fallback;
  };
  const version = (): number => num("image_version", 0);
  const layers = (): LayerInfo[] => (Array.isArray(model.get("layers")) ? (model.get("layers") as LayerInfo[]) : []);
  const colorTable = (name: string): Uint8Array => {
    const tables = model.get("colormaps");
    const t = tables && typeof tables === "object" ? (tables as Record<string, unknown>)[name] : undefined;
    return t ? decodeColorTable(t) : grayColorTable();
  };
  const colormapOptions = (): [string, string][] => {
    const tables = model.get("colormaps");
    return Object.keys(tables && typeof tables === "object" ? tables : {}).map((n) => [n, n]);
  };
  const width = (node: HTMLElement): number => {
    const w = node.clientWidth || root.clientWidth || host.clientWidth;
    return w > 0 ? w : FALLBACK_WIDTH;
  };
  const setTrait = (name: string, value: unknown): void => {
    model.set(name, value);
    model.save_changes();
  };
  /**
   * Display-only choices (colormap, colour scale, order, opacity): changed in
   * the front end without a message to the kernel; they reach Python with
   * the next change that is saved.
   */
  const setLocal = (name: string, value: unknown): void => {
    model.set(name, value);
  };
  function showError(text: string): void {
    errorBox.textContent = text;
    errorBox.hidden = !text;
  }

  function request(kind: string, key: string, params: Record<string, unknown>, onHave: () => void): void {
    const c = coalescer(kind);
    const req = c.want(key, have);
    if (have(key)) {
      onHave();
      return;
    }
    if (req) send(kind, req.id, req.key, params);
    pendingParams.set(`${kind}:${key}`, params);
  }
  const pendingParams = new Map<string, Record<string, unknown>>();
  const sentAt = new Map<string, number>();
  function send(kind: string, id: number, key: string, params: Record<string, unknown>): void {
    sentAt.set(`${kind}:${id}`, performance.now());
    requests += 1;
    root.dataset.requests = String(requests);
    model.send({ type: "request", id, key, kind, ...params });
    watchKernel();
  }
  // A notebook reopened with its saved widgets, or a restarted kernel: requests go unanswered.
  // Say so instead of showing "loading…" for ever; any message from Python clears it.
  let silence: ReturnType<typeof setTimeout> | null = null;
  function watchKernel(): void {
    if (silence !== null) return;
    silence = setTimeout(() => {
      silence = null;
      if (sentAt.size === 0) return;
      status.hidden = false;
      progress.removeAttribute("value"); // indeterminate: no progress is known
      statusText.textContent =
        "Waiting for Python… If the kernel was restarted or this notebook was reopened, run the cell again.";
      root.dataset.kernelSilent = "true";
    }, KERNEL_SILENCE_MS);
  }
  function heardFromKernel(): void {
    if (silence !== null) clearTimeout(silence);
    silence = null;
    if (root.dataset.kernelSilent) {
      delete root.dataset.kernelSilent;
      status.hidden = true;
    }
    if (sentAt.size > 0) watchKernel();
  }
  cleanups.push(() => {
    if (silence !== null) clearTimeout(silence);
  });

  // ---------- input image ----------
  let image: RgbStack | null = null;
  function readImage(): void {
    try {
      const p = model.get("input_image");
      image = p ? decodeRgbStack(p) : null;
    } catch (err) {
      image = null;
      showError(`Cannot show the input image: ${String(err)}`);
    }
  }
  function drawImage(canvas: HTMLCanvasElement, cssSize: number): void {
    if (!image) {
      canvas.hidden = true;
      return;
    }
    canvas.hidden = false;
    const scale = cssSize / Math.max(image.height, image.width);
    const w = Math.round(image.width * scale);
    const h = Math.round(image.height * scale);
    const ctx = sizeCanvas(canvas, w, h);
    const tmp = doc.createElement("canvas");
    tmp.width = image.width;
    tmp.height = image.height;
    const tctx = tmp.getContext("2d");
    if (!tctx) return;
    const data = tctx.createImageData(image.width, image.height);
    rgbSource(image).paint(0, data.data);
    tctx.putImageData(data, 0, 0);
    ctx.drawImage(tmp, 0, 0, w, h);
  }

  // ---------- tabs ----------
  const panels = new Map<string, { el: HTMLElement; tab: HTMLButtonElement; refresh: () => void }>();
  function addPanel(name: string, refresh: () => void): HTMLElement {
    const panel = el(doc, "div", `cnnviz-panel cnnviz-panel-${name}`);
    panel.setAttribute("role", "tabpanel");
    panel.dataset.panel = name;
    const tab = el(doc, "button", "cnnviz-tab", TAB_TITLES[name] ?? name);
    tab.type = "button";
    tab.setAttribute("role", "tab");
    tab.dataset.tab = name;
    tab.addEventListener("click", () => selectTab(name, true));
    tabBar.appendChild(tab);
    root.appendChild(panel);
    panels.set(name, { el: panel, tab, refresh });
    return panel;
  }
  let currentTab = "";
  function selectTab(name: string, save: boolean): void {
    if (!panels.has(name)) name = panels.keys().next().value ?? "";
    currentTab = name;
    for (const [n, p] of panels) {
      const on = n === name;
      p.el.hidden = !on;
      p.tab.setAttribute("aria-selected", String(on));
      p.tab.classList.toggle("cnnviz-tab-active", on);
    }
    tabBar.hidden = panels.size <= 1;
    zoom.hide();
    detail.hidden = true; // a pinned tile belongs to the view it was pinned in
    if (save && str("tab", "") !== name) setTrait("tab", name);
    panels.get(name)?.refresh();
  }

  // ---------- layer bar (kernels + features) ----------
  const layerBar = el(doc, "div", "cnnviz-controls cnnviz-layer-bar");
  const layerSlider = slider(doc, "Layer", 0, 0, 1, 0, (i) => {
    const info = layers()[i];
    if (!info) return;
    scrubStart = performance.now();
    setTrait("layer_name", info.name);
  });
  const layerName = el(doc, "span", "cnnviz-layer-name");
  const layerShape = el(doc, "span", "cnnviz-meta cnnviz-layer-shape");
  layerBar.append(layerSlider.wrap, layerName, layerShape);
  let scrubStart = 0;
  function currentLayer(): LayerInfo | null {
    const all = layers();
    const name = str("layer_name", all[0]?.name ?? "");
    return all.find((l) => l.name === name) ?? all[0] ?? null;
  }
  function updateLayerBar(): void {
    const all = layers();
    root.dataset.layerNames = JSON.stringify(all.map((l) => l.name));
    const info = currentLayer();
    layerSlider.input.max = String(Math.max(0, all.length - 1));
    const idx = info ? all.indexOf(info) : 0;
    layerSlider.input.value = String(idx);
    layerSlider.input.setAttribute("aria-valuetext", info ? info.name : "");
    layerName.textContent = info ? `${info.name} (${info.type})` : "no layers";
    const parts: string[] = [];
    if (info?.shape) parts.push(`output ${formatShape(info.shape)}`);
    if (info?.kernel_shape) parts.push(`kernels ${formatShape(info.kernel_shape)}`);
    layerShape.textContent = `${idx + 1} / ${all.length}${parts.length ? " · " + parts.join(" · ") : ""}`;
  }

  // ---------- generic grid section ----------
  interface GridSection {
    box: HTMLElement;
    grid: GridView;
    pager: Pager;
    highlight: HTMLElement;
    stage: HTMLElement;
    page: number;
  }
  function gridSection(
    parent: HTMLElement,
    label: string,
    onHover: (h: GridHover | null) => void,
    maxTile?: number,
  ): GridSection {
    const box = el(doc, "div", "cnnviz-grid-box");
    const stage = el(doc, "div", "cnnviz-stage");
    const highlight = el(doc, "div", "cnnviz-highlight");
    highlight.hidden = true;
    const section: GridSection = {
      box,
      stage,
      highlight,
      page: 0,
      grid: new GridView(stage, {
        label,
        ...(maxTile ? { maxTileSize: maxTile } : {}),
        onHover: (h) => {
          if (!h) {
            highlight.hidden = true;
            zoom.hide();
          } else {
            highlight.hidden = false;
            highlight.style.left = `${section.grid.canvas.offsetLeft + h.tile.x}px`;
            highlight.style.top = `${section.grid.canvas.offsetTop + h.tile.y}px`;
            highlight.style.width = `${h.tile.width}px`;
            highlight.style.height = `${h.tile.height}px`;
            zoom.show(h);
          }
          onHover(h);
        },
        onClick: (h) => pin(h),
      }),
      pager: new Pager(box, (p) => {
        section.page = p;
        panels.get(currentTab)?.refresh();
      }),
    };
    stage.appendChild(highlight);
    box.append(stage);
    parent.appendChild(box);
    cleanups.push(() => {
      section.grid.destroy();
      section.pager.destroy();
    });
    return section;
  }
  /** Show one page of `order`; `identity` names the pixels (see GridContent) so a grid seen before is shown again at once. */
  function showPage(section: GridSection, source: TileSource, order: readonly number[], identity?: string): void {
    const page = pageRange(order.length, PAGE_SIZE, section.page);
    section.page = page.pageIndex;
    section.pager.update(page, order.length);
    const content = { source, indices: order.slice(page.start, page.end) };
    const id = identity === undefined ? undefined : `${identity}|page ${page.pageIndex}`;
    section.grid.setContent(id === undefined ? content : { ...content, identity: id }, width(section.box));
  }

  // ---------- pinned detail ----------
  const detail = el(doc, "div", "cnnviz-detail");
  detail.hidden = true;
  const detailCanvas = el(doc, "canvas", "cnnviz-detail-canvas");
  detailCanvas.setAttribute("role", "img");
  const detailText = el(doc, "div", "cnnviz-detail-text");
  const unpin = button(doc, "Unpin", "Close the pinned tile", () => {
    detail.hidden = true;
  });
  detail.append(detailCanvas, detailText, unpin);
  function pin(h: GridHover): void {
    const s = h.source;
    const scale = Math.max(1, Math.floor(192 / Math.max(s.height, s.width)));
    const ctx = sizeCanvas(detailCanvas, s.width * scale, s.height * scale);
    const tmp = doc.createElement("canvas");
    tmp.width = s.width;
    tmp.height = s.height;
    const tctx = tmp.getContext("2d");
    if (!tctx) return;
    const data = tctx.createImageData(s.width, s.height);
    s.paint(h.channel, data.data);
    tctx.putImageData(data, 0, 0);
    ctx.drawImage(tmp, 0, 0, s.width * scale, s.height * scale);
    detailCanvas.setAttribute("aria-label", `pinned ${s.label(h.channel)}`);
    detailText.textContent = `${s.label(h.channel)} · ${s.height} × ${s.width}` +
      (h.value === null ? "" : ` · value at row ${h.row}, col ${h.col}: ${formatValue(h.value)}`);
    detail.hidden = false;
  }

  // ---------- kernels ----------
  const views = Array.isArray(model.get("views")) ? (model.get("views") as string[]) : Object.keys(TAB_TITLES);
  let kernelsPanel: HTMLElement | null = null;
  let featuresPanel: HTMLElement | null = null;
  const kState = { filter: 0, all: false };
  let kSection: GridSection | null = null;
  let kMessage: HTMLElement | null = null;
  let kFilter: HTMLInputElement | null = null;
  let kAll: HTMLInputElement | null = null;
  let kFilterWrap: HTMLElement | null = null;
  let kCmap: ReturnType<typeof select> | null = null;
  if (views.includes("kernels")) {
    kernelsPanel = addPanel("kernels", refreshKernels);
    const controls = el(doc, "div", "cnnviz-controls");
    kFilterWrap = el(doc, "label", "cnnviz-control");
    kFilterWrap.append(el(doc, "span", "cnnviz-control-label", "Output filter"));
    kFilter = el(doc, "input", "cnnviz-number");
    kFilter.type = "number";
    kFilter.min = "0";
    kFilter.value = "0";
    kFilter.setAttribute("aria-label", "Output filter");
    kFilter.addEventListener("input", () => {
      kState.filter = Math.max(0, Math.floor(Number(kFilter?.value) || 0));
      if (kSection) kSection.page = 0;
      refreshKernels();
    });
    kFilterWrap.append(kFilter);
    const allWrap = el(doc, "label", "cnnviz-control");
    kAll = el(doc, "input");
    kAll.type = "checkbox";
    kAll.setAttribute("aria-label", "Show the kernels of all filters");
    kAll.addEventListener("change", () => {
      kState.all = kAll?.checked === true;
      if (kSection) kSection.page = 0;
      refreshKernels();
    });
    allWrap.append(kAll, el(doc, "span", "cnnviz-control-label", "all filters"));
    kCmap = select(doc, "Colormap", colormapOptions(), str("kernel_cmap", "bwr"), (v) => setLocal("kernel_cmap", v));
    const png = button(doc, "PNG", "Save the kernel grid as PNG", () => {
      if (kSection) downloadCanvas(kSection.grid.canvas, `kernels_${currentLayer()?.name ?? ""}.png`);
    });
    controls.append(kFilterWrap, allWrap, kCmap.wrap, png);
    kMessage = el(doc, "div", "cnnviz-message");
    kernelsPanel.append(controls, kMessage);
    kSection = gridSection(kernelsPanel, "kernels", () => undefined);
  }

  function refreshKernels(): void {
    if (!kernelsPanel || !kSection || !kMessage) return;
    // Moving an element drops its focus: move the shared layer bar only when it is elsewhere.
    if (layerBar.parentElement !== kernelsPanel) kernelsPanel.prepend(layerBar);
    updateLayerBar();
    const info = currentLayer();
    if (!info) return;
    if (!info.kernel_shape) {
      kMessage.textContent = `${info.name} is a ${info.type}: it has no convolution kernels. Pick a Conv2d layer.`;
      kMessage.hidden = false;
      kSection.grid.setContent(null, width(kSection.box));
      kSection.pager.el.hidden = true;
      return;
    }
    const key = keys.kernels(info.name);
    request("kernels", key, { layer: info.name }, () => drawKernels(key));
    if (!have(key)) {
      kMessage.textContent = `loading the kernels of ${info.name}…`;
      kMessage.hidden = false;
    }
  }

  function drawKernels(key: string): void {
    const entry = cache.get(key);
    if (!entry || !kSection || !kMessage || !kFilter || !kFilterWrap) return;
    const t0 = performance.now();
    const stack = (entry.stack ??= decodeMapStack(stackPayload(entry.msg.stack, entry.buffers)));
    const kshape = entry.msg.kernel_shape as number[];
    const [o, i] = kshape as [number, number];
    kMessage.hidden = true;
    kFilter.max = String(o - 1);
    const isRgb = entry.msg.rgb !== undefined && entry.msg.rgb !== null;
    kFilterWrap.hidden = isRgb || kState.all;
    if (isRgb && !kState.all) {
      const rgb = (entry.rgb ??= decodeRgbStack(rgbPayload(entry.msg.rgb, entry.buffers, 3)));
      const order = Array.from({ length: rgb.count }, (_, n) => n);
      showPage(kSection, rgbSource(rgb, (n) => `filter ${n} (RGB)`), order);
      markPaint("kernels", t0);
      return;
    }
    const absmax = Number(entry.msg.absmax) || 1;
    const table = colorTable(str("kernel_cmap", "bwr"));
    if (kState.all) {
      const colorizer = new Colorizer(stack, table, { scale: "global", symmetric: true, range: [-absmax, absmax] });
      const base = mapSource(stack, colorizer);
      const source: TileSource = { ...base, label: (n) => `filter ${Math.floor(n / i)} · input channel ${n % i}` };
      showPage(kSection, source, Array.from({ length: stack.channels }, (_, n) => n));
    } else {
      const f = Math.min(kState.filter, o - 1);
      const sub = subStack(stack, f * i, (f + 1) * i);
      const colorizer = new Colorizer(sub, table, { scale: "global", symmetric: true, range: [-absmax, absmax] });
      const base = mapSource(sub, colorizer);
      const source: TileSource = { ...base, label: (n) => `filter ${f} · input channel ${n}` };
      showPage(kSection, source, Array.from({ length: i }, (_, n) => n));
    }
    markPaint("kernels", t0);
  }

  // ---------- feature maps ----------
  let fSection: GridSection | null = null;
  let fMessage: HTMLElement | null = null;
  let fImage: HTMLCanvasElement | null = null;
  let fOutline: HTMLElement | null = null;
  let fCmap: ReturnType<typeof select> | null = null;
  if (views.includes("features")) {
    featuresPanel = addPanel("features", refreshFeatures);
    const controls = el(doc, "div", "cnnviz-controls");
    const orderSel = select(
      doc,
      "Order",
      [
        ["index", "channel index"],
        ["mean", "mean activation"],
      ],
      str("order", "index"),
      (v) => setLocal("order", v),
    );
    const scaleSel = select(
      doc,
      "Colour scale",
      [
        ["map", "per map"],
        ["layer", "per layer"],
        ["global", "global"],
      ],
      str("color_scale", "map"),
      (v) => setLocal("color_scale", v),
    );
    fCmap = select(doc, "Colormap", colormapOptions(), str("cmap", "viridis"), (v) => setLocal("cmap", v));
    const png = button(doc, "PNG", "Save the feature-map grid as PNG", () => {
      if (fSection) downloadCanvas(fSection.grid.canvas, `features_${currentLayer()?.name ?? ""}.png`);
    });
    controls.append(orderSel.wrap, scaleSel.wrap, fCmap.wrap, png);
    listen("change:order", () => {
      orderSel.input.value = str("order", "index");
      if (fSection) fSection.page = 0;
      refreshFeatures();
    });
    listen("change:color_scale", () => {
      scaleSel.input.value = str("color_scale", "map");
      refreshFeatures();
    });
    fMessage = el(doc, "div", "cnnviz-message");
    const body = el(doc, "div", "cnnviz-body");
    const inputBox = el(doc, "div", "cnnviz-input");
    fImage = el(doc, "canvas", "cnnviz-input-canvas");
    fImage.setAttribute("role", "img");
    fImage.setAttribute("aria-label", "input image");
    fOutline = el(doc, "div", "cnnviz-outline");
    fOutline.hidden = true;
    inputBox.append(el(doc, "div", "cnnviz-meta", "input"), fImage, fOutline);
    body.append(inputBox);
    featuresPanel.append(controls, fMessage, body);
    fSection = gridSection(body, "feature maps", (h) => outlineInput(h));
  }

  function outlineInput(h: GridHover | null): void {
    if (!fOutline || !fImage) return;
    if (!h || !image) {
      fOutline.hidden = true;
      return;
    }
    const info = currentLayer();
    const shape = info?.shape;
    // The field belongs to the layer's own maps (not to a grid of something else).
    const field = shape && shape[1] === h.source.height && shape[2] === h.source.width ? info?.rf : null;
    const outline = inputOutline(h.row, h.col, h.source.height, h.source.width, image.height, image.width, field);
    const [x0, y0, x1, y1] = outline.box;
    const s = fImage.clientWidth / image.width;
    fOutline.dataset.kind = outline.kind;
    fOutline.dataset.box = JSON.stringify(outline.box);
    fOutline.setAttribute(
      "aria-label",
      outline.kind === "receptive-field"
        ? `receptive field of row ${h.row}, column ${h.col}: ${Math.round(x1 - x0)} by ${Math.round(y1 - y0)} pixels of the input`
        : `position of row ${h.row}, column ${h.col} in the input`,
    );
    fOutline.hidden = false;
    fOutline.style.left = `${fImage.offsetLeft + x0 * s}px`;
    fOutline.style.top = `${fImage.offsetTop + y0 * s}px`;
    fOutline.style.width = `${Math.max(2, (x1 - x0) * s)}px`;
    fOutline.style.height = `${Math.max(2, (y1 - y0) * s)}px`;
  }

  function refreshFeatures(): void {
    if (!featuresPanel || !fSection || !fMessage || !fImage) return;
    if (layerBar.parentElement !== featuresPanel) featuresPanel.prepend(layerBar);
    updateLayerBar();
    drawImage(fImage, 128);
    const info = currentLayer();
    if (!info) return;
    const key = keys.features(version(), info.name);
    request("features", key, { layer: info.name, version: version() }, () => drawFeatures(key));
    if (!have(key)) {
      fMessage.textContent = `loading ${info.name}…`;
      fMessage.hidden = false;
    }
  }

  function drawFeatures(key: string): void {
    const entry = cache.get(key);
    if (!entry || !fSection || !fMessage) return;
    const t0 = performance.now();
    const stack = (entry.stack ??= decodeMapStack(stackPayload(entry.msg.stack, entry.buffers)));
    const scaleName = str("color_scale", "map");
    const scale: ColorScale = (COLOR_SCALES as readonly string[]).includes(scaleName) ? (scaleName as ColorScale) : "map";
    const g = model.get("global_range");
    const range = Array.isArray(g) && g.length === 2 ? (g as [number, number]) : null;
    const colorizer = new Colorizer(stack, colorTable(str("cmap", "viridis")), {
      scale: scale === "global" && !range ? "layer" : scale,
      range,
    });
    const orderName: ChannelOrder = str("order", "index") === "mean" ? "mean" : "index";
    entry.orders ??= new Map();
    let order = entry.orders.get(orderName);
    if (!order) {
      order = channelOrder(stack, orderName);
      entry.orders.set(orderName, order);
    }
    fMessage.hidden = true;
    const identity = [key, str("cmap", "viridis"), colorizer.scale, JSON.stringify(range), orderName].join("|");
    showPage(fSection, mapSource(stack, colorizer), order, identity);
    markPaint("features", t0);
  }

  /** Record how long a draw took, and (after a slider move) the time from the move to the painted frame. */
  function markPaint(kind: string, t0: number): void {
    const t1 = performance.now();
    root.dataset.lastDrawMs = (t1 - t0).toFixed(2);
    root.dataset.lastDrawKind = kind;
    root.dataset.draws = String(Number(root.dataset.draws ?? "0") + 1);
    if (scrubStart > 0) {
      const start = scrubStart;
      scrubStart = 0;
      view?.requestAnimationFrame(() => {
        root.dataset.lastPaintMs = (performance.now() - start).toFixed(2);
      });
    }
  }

  // ---------- CAM ----------
  let cSection: GridSection | null = null;
  let cMessage: HTMLElement | null = null;
  let cClasses: HTMLElement | null = null;
  let cMethod: ReturnType<typeof select> | null = null;
  let cDepth: ReturnType<typeof slider> | null = null;
  let cDepthName: HTMLElement | null = null;
  let cFaith: HTMLElement | null = null;
  let cCmap: ReturnType<typeof select> | null = null;
  if (views.includes("cam")) {
    const panel = addPanel("cam", refreshCam);
    const controls = el(doc, "div", "cnnviz-controls");
    cMethod = select(doc, "Method", methodOptions("cam_methods"), str("cam_method", "GradCAM"), (v) => setTrait("cam_method", v));
    cDepth = slider(doc, "CAM layer", 0, 0, 1, 0, (i) => {
      const names = camLayers();
      if (names[i]) setTrait("cam_layer", names[i]);
    });
    cDepthName = el(doc, "span", "cnnviz-layer-name");
    const opacity = slider(doc, "Opacity", 0, 1, 0.05, num("opacity", 0.5), (v) => setLocal("opacity", v));
    cCmap = select(doc, "Colormap", colormapOptions(), str("cam_cmap", "jet"), (v) => setLocal("cam_cmap", v));
    const faith = button(doc, "Faithfulness", "Compute deletion / insertion AUC and average drop of this map", () => requestMetrics());
    const png = button(doc, "PNG", "Save the overlay as PNG", () => {
      if (cSection) downloadCanvas(cSection.grid.canvas, "cam.png");
    });
    controls.append(cMethod.wrap, cDepth.wrap, cDepthName, opacity.wrap, cCmap.wrap, faith, png);
    listen("change:opacity", () => {
      opacity.input.value = String(num("opacity", 0.5));
      if (currentTab === "cam") refreshCam();
      if (currentTab === "saliency") refreshSaliency();
    });
    cClasses = el(doc, "div", "cnnviz-classes");
    cClasses.setAttribute("aria-label", "Top predicted classes");
    cMessage = el(doc, "div", "cnnviz-message");
    cFaith = el(doc, "div", "cnnviz-meta cnnviz-faith");
    panel.append(controls, cClasses, cMessage, cFaith);
    cSection = gridSection(panel, "class activation map", () => undefined, 320);
  }
  function methodOptions(trait: string): [string, string][] {
    const v = model.get(trait);
    return (Array.isArray(v) ? (v as string[]) : []).map((m) => [m, m]);
  }
  function camLayers(): string[] {
    const v = model.get("cam_layers");
    return Array.isArray(v) ? (v as string[]) : [];
  }
  function target(): number {
    return Math.floor(num("target_class", -1));
  }

  function refreshPredictions(after: () => void): void {
    const key = keys.predictions(version());
    request("predictions", key, { version: version() }, () => {
      drawPredictions(key);
      after();
    });
  }
  function drawPredictions(key: string): void {
    const entry = cache.get(key);
    if (!entry) return;
    let preds: Prediction[] = [];
    try {
      preds = parsePredictions(entry.msg.top);
    } catch (err) {
      showError(String(err));
    }
    const t = target();
    for (const box of [cClasses, sClasses]) {
      if (!box) continue;
      box.replaceChildren();
      preds.forEach((p, rank) => {
        const b = button(doc, "", `Explain class ${p.name}`, () => setTrait("target_class", p.index));
        b.classList.add("cnnviz-class");
        const active = t === p.index || (t < 0 && rank === 0);
        b.classList.toggle("cnnviz-class-active", active);
        b.setAttribute("aria-pressed", String(active));
        b.dataset.index = String(p.index);
        const name = el(doc, "span", "cnnviz-class-name", p.name);
        const prob = el(doc, "span", "cnnviz-class-prob", `${(p.prob * 100).toFixed(1)}%`);
        const bar = el(doc, "span", "cnnviz-class-bar");
        bar.style.width = `${Math.round(p.prob * 100)}%`;
        b.append(name, prob, bar);
        box.appendChild(b);
      });
    }
  }
  /** The target actually used: the chosen class, or the top prediction. */
  function effectiveTarget(): number | null {
    const t = target();
    if (t >= 0) return t;
    const entry = cache.get(keys.predictions(version()));
    if (!entry) return null;
    try {
      return parsePredictions(entry.msg.top)[0]?.index ?? null;
    } catch {
      return null;
    }
  }

  function refreshCam(): void {
    if (!cSection || !cMessage || !cDepth || !cDepthName || !cMethod) return;
    const names = camLayers();
    const layer = str("cam_layer", names[names.length - 1] ?? "");
    cDepth.input.max = String(Math.max(0, names.length - 1));
    cDepth.input.value = String(Math.max(0, names.indexOf(layer)));
    cDepth.input.setAttribute("aria-valuetext", layer);
    cDepthName.textContent = layer;
    cMethod.input.value = str("cam_method", "GradCAM");
    refreshPredictions(() => {
      const t = effectiveTarget();
      if (t === null || !cMessage) return;
      const method = str("cam_method", "GradCAM");
      const key = keys.cam(version(), method, t, layer);
      request("cam", key, { version: version(), method, target: t, layer }, () => drawCam(key));
      if (!have(key)) {
        cMessage.textContent = `computing ${method} for class ${t} at ${layer}…`;
        cMessage.hidden = false;
      }
    });
  }

  /** A 2-tile source: the overlay of map 0 of `stack` on the image, and the map alone. */
  function overlaySource(stack: MapStack, cmap: string, symmetric: boolean, names: [string, string]): TileSource | null {
    if (!image || image.height !== stack.height || image.width !== stack.width) return null;
    const colorizer = new Colorizer(stack, colorTable(cmap), { scale: "map", symmetric });
    const opacity = num("opacity", 0.5);
    const img = image;
    return {
      count: 2,
      height: stack.height,
      width: stack.width,
      paint: (i, out) => {
        const colored = colorizer.colorize(0);
        if (i === 1) out.set(colored);
        else blendOverlay(img.data.subarray(0, img.height * img.width * 3), colored, opacity, out);
      },
      value: (_i, row, col) => valueAt(stack, 0, row, col),
      label: (i) => names[i] ?? "",
    };
  }

  function drawCam(key: string): void {
    const entry = cache.get(key);
    if (!entry || !cSection || !cMessage) return;
    const t0 = performance.now();
    const stack = (entry.stack ??= decodeMapStack(stackPayload(entry.msg.stack, entry.buffers)));
    const method = String(entry.msg.method ?? "");
    const source = overlaySource(stack, str("cam_cmap", "jet"), false, [`${method} overlay`, `${method} map`]);
    if (!source) {
      cMessage.textContent = "The map does not match the image size.";
      cMessage.hidden = false;
      return;
    }
    cMessage.hidden = true;
    showPage(cSection, source, [0, 1]);
    cSection.grid.canvas.dataset.key = key;
    markPaint("cam", t0);
  }

  function requestMetrics(): void {
    const t = effectiveTarget();
    if (t === null || !cFaith) return;
    const names = camLayers();
    const layer = str("cam_layer", names[names.length - 1] ?? "");
    const method = str("cam_method", "GradCAM");
    const key = keys.metrics(version(), method, t, layer);
    cFaith.textContent = "computing faithfulness…";
    request("metrics", key, { version: version(), method, target: t, layer }, () => drawMetrics(key));
  }
  function drawMetrics(key: string): void {
    const entry = cache.get(key);
    if (!entry || !cFaith) return;
    const figures = entry.msg.figures as Record<string, number> | undefined;
    cFaith.textContent = figures
      ? Object.entries(figures)
          .map(([k, v]) => `${k.replace(/_/g, " ")} ${typeof v === "number" ? formatValue(v) : String(v)}`)
          .join(" · ")
      : "";
  }

  // ---------- saliency ----------
  let sSection: GridSection | null = null;
  let sMessage: HTMLElement | null = null;
  let sClasses: HTMLElement | null = null;
  let sMethod: ReturnType<typeof select> | null = null;
  if (views.includes("saliency")) {
    const panel = addPanel("saliency", refreshSaliency);
    const controls = el(doc, "div", "cnnviz-controls");
    sMethod = select(doc, "Method", methodOptions("saliency_methods"), str("saliency_method", "vanilla"), (v) =>
      setTrait("saliency_method", v),
    );
    const opacity = slider(doc, "Opacity", 0, 1, 0.05, num("opacity", 0.5), (v) => setLocal("opacity", v));
    listen("change:opacity", () => {
      opacity.input.value = String(num("opacity", 0.5));
    });
    const png = button(doc, "PNG", "Save the saliency map as PNG", () => {
      if (sSection) downloadCanvas(sSection.grid.canvas, "saliency.png");
    });
    controls.append(sMethod.wrap, opacity.wrap, png);
    sClasses = el(doc, "div", "cnnviz-classes");
    sMessage = el(doc, "div", "cnnviz-message");
    panel.append(controls, sClasses, sMessage);
    sSection = gridSection(panel, "saliency", () => undefined, 320);
  }
  function refreshSaliency(): void {
    if (!sSection || !sMessage || !sMethod) return;
    sMethod.input.value = str("saliency_method", "vanilla");
    refreshPredictions(() => {
      const t = effectiveTarget();
      if (t === null || !sMessage) return;
      const method = str("saliency_method", "vanilla");
      const key = keys.saliency(version(), method, t);
      request("saliency", key, { version: version(), method, target: t }, () => drawSaliency(key));
      if (!have(key)) {
        sMessage.textContent = `computing ${method} saliency for class ${t}…`;
        sMessage.hidden = false;
      }
    });
  }
  function drawSaliency(key: string): void {
    const entry = cache.get(key);
    if (!entry || !sSection || !sMessage) return;
    const t0 = performance.now();
    const stack = (entry.stack ??= decodeMapStack(stackPayload(entry.msg.stack, entry.buffers)));
    const method = String(entry.msg.method ?? "");
    const source = overlaySource(stack, str("cam_cmap", "jet"), false, [`${method} overlay`, `${method} map`]);
    if (!source) return;
    sMessage.hidden = true;
    showPage(sSection, source, [0, 1]);
    sSection.grid.canvas.dataset.key = key;
    markPaint("saliency", t0);
  }

  // ---------- activation maximization ----------
  let aSection: GridSection | null = null;
  let aMessage: HTMLElement | null = null;
  const aItems = new Map<string, Map<number, RgbStack>>();
  let aKey = "";
  let aLayer: ReturnType<typeof select> | null = null;
  let aChannels: HTMLInputElement | null = null;
  if (views.includes("actmax")) {
    const panel = addPanel("actmax", () => drawActmax());
    const controls = el(doc, "div", "cnnviz-controls");
    const convs = (): [string, string][] => layers().filter((l) => l.shape).map((l) => [l.name, l.name]);
    aLayer = select(doc, "Layer", convs(), currentLayer()?.name ?? "", () => undefined);
    const chWrap = el(doc, "label", "cnnviz-control");
    chWrap.append(el(doc, "span", "cnnviz-control-label", "Channels"));
    aChannels = el(doc, "input", "cnnviz-text");
    aChannels.type = "text";
    aChannels.value = "0-7";
    aChannels.setAttribute("aria-label", "Channels to optimise, e.g. 0-7 or 1,5,9");
    chWrap.append(aChannels);
    const run = button(doc, "Run", "Optimise images that excite these channels", () => runActmax());
    controls.append(aLayer.wrap, chWrap, run);
    aMessage = el(doc, "div", "cnnviz-message");
    panel.append(controls, aMessage);
    aSection = gridSection(panel, "optimised images", () => undefined);
  }
  function runActmax(): void {
    if (!aLayer || !aChannels || !aMessage) return;
    const layer = aLayer.input.value;
    const info = layers().find((l) => l.name === layer);
    try {
      const channels = parseChannels(aChannels.value, info?.shape?.[0] ?? 0);
      aKey = keys.actmax(layer, channels);
      if (!aItems.has(aKey)) aItems.set(aKey, new Map());
      aMessage.textContent = `optimising ${channels.length} image(s) for ${layer}…`;
      aMessage.hidden = false;
      request("actmax", aKey, { layer, channels }, () => drawActmax());
      drawActmax();
    } catch (err) {
      aMessage.textContent = err instanceof Error ? err.message : String(err);
      aMessage.hidden = false;
    }
  }
  function drawActmax(): void {
    if (!aSection) return;
    const items = aItems.get(aKey);
    if (!items || items.size === 0) {
      aSection.grid.setContent(null, width(aSection.box));
      return;
    }
    const channels = [...items.keys()].sort((a, b) => a - b);
    const first = items.get(channels[0] as number) as RgbStack;
    const source: TileSource = {
      count: Math.max(...channels) + 1,
      height: first.height,
      width: first.width,
      paint: (c, out) => {
        const item = items.get(c);
        if (item) rgbSource(item).paint(0, out);
      },
      value: () => null,
      label: (c) => `channel ${c}`,
    };
    showPage(aSection, source, channels);
  }

  // ---------- drawing pad ----------
  if (views.includes("draw")) {
    const panel = addPanel("draw", () => undefined);
    const controls = el(doc, "div", "cnnviz-controls");
    const pad = el(doc, "canvas", "cnnviz-pad");
    pad.setAttribute("aria-label", "Drawing pad: draw with the mouse or a pen");
    pad.setAttribute("role", "img");
    let penSize = 4;
    let color = "#ffffff";
    const size = slider(doc, "Pen size", 1, 16, 1, penSize, (v) => {
      penSize = v;
    });
    const colorSel = select(
      doc,
      "Pen colour",
      [
        ["#ffffff", "white"],
        ["#000000", "black"],
        ["#ff0000", "red"],
        ["#00c000", "green"],
        ["#0000ff", "blue"],
        ["#ffff00", "yellow"],
      ],
      color,
      (v) => {
        color = v;
      },
    );
    const clear = button(doc, "Clear", "Clear the drawing pad (black)", () => resetPad(false));
    const fromImage = button(doc, "From input", "Start from the current input image", () => resetPad(true));
    const use = button(doc, "Use as input", "Use the drawing as the model's input", () => {
      const ctx = pad.getContext("2d");
      if (!ctx) return;
      const data = ctx.getImageData(0, 0, pad.width, pad.height);
      model.send({ type: "set_image", height: pad.height, width: pad.width }, undefined, [data.data.buffer]);
    });
    controls.append(size.wrap, colorSel.wrap, clear, fromImage, use);
    panel.append(controls, pad);
    const resetPad = (fromInput: boolean): void => {
      const h = image?.height ?? 64;
      const w = image?.width ?? 64;
      pad.width = w;
      pad.height = h;
      const scale = Math.max(1, Math.floor(256 / Math.max(h, w)));
      pad.style.width = `${w * scale}px`;
      pad.style.height = `${h * scale}px`;
      const ctx = pad.getContext("2d");
      if (!ctx) return;
      ctx.fillStyle = "#000000";
      ctx.fillRect(0, 0, w, h);
      if (fromInput && image) {
        const data = ctx.createImageData(w, h);
        rgbSource(image).paint(0, data.data);
        ctx.putImageData(data, 0, 0);
      }
    };
    resetPad(false);
    let drawing = false;
    let last: [number, number] | null = null;
    const at = (e: PointerEvent): [number, number] => {
      const r = pad.getBoundingClientRect();
      return [((e.clientX - r.left) * pad.width) / r.width, ((e.clientY - r.top) * pad.height) / r.height];
    };
    const stroke = (e: PointerEvent): void => {
      const ctx = pad.getContext("2d");
      if (!ctx) return;
      const p = at(e);
      ctx.strokeStyle = color;
      ctx.fillStyle = color;
      ctx.lineWidth = penSize;
      ctx.lineCap = "round";
      ctx.beginPath();
      if (last) {
        ctx.moveTo(last[0], last[1]);
        ctx.lineTo(p[0], p[1]);
        ctx.stroke();
      } else {
        ctx.arc(p[0], p[1], penSize / 2, 0, 2 * Math.PI);
        ctx.fill();
      }
      last = p;
    };
    pad.addEventListener("pointerdown", (e) => {
      drawing = true;
      last = null;
      pad.setPointerCapture?.(e.pointerId);
      stroke(e);
    });
    pad.addEventListener("pointermove", (e) => {
      if (drawing) stroke(e);
    });
    const end = (): void => {
      drawing = false;
      last = null;
    };
    pad.addEventListener("pointerup", end);
    pad.addEventListener("pointerleave", end);
  }

  // ---------- messages from Python ----------
  function onMessage(msg: unknown, buffers: unknown): void {
    heardFromKernel();
    let m: Incoming | null;
    try {
      m = parseIncoming(msg);
    } catch (err) {
      showError(String(err));
      return;
    }
    if (!m) return;
    const bufs = (Array.isArray(buffers) ? buffers : []).map((b, i) => toDataView(b, `buffer ${i}`));
    if (m.type === "progress") {
      status.hidden = false;
      const total = Number(m.total) || 0;
      progress.max = total > 0 ? total : 1;
      progress.value = Math.min(Number(m.done) || 0, progress.max);
      statusText.textContent = typeof m.text === "string" ? m.text : "working…";
      return;
    }
    if (m.type === "item") {
      if (m.kind === "actmax") {
        try {
          const rgb = decodeRgbStack(rgbPayload(m.rgb, bufs, 0));
          let items = aItems.get(m.key);
          if (!items) {
            items = new Map();
            aItems.set(m.key, items);
          }
          items.set(Number(m.index), rgb);
          if (m.key === aKey) drawActmax();
        } catch (err) {
          showError(String(err));
        }
      }
      return;
    }
    const c = coalescer(m.kind);
    const t = sentAt.get(`${m.kind}:${m.id}`);
    if (t !== undefined) {
      sentAt.delete(`${m.kind}:${m.id}`);
      // request sent -> reply decoded here: kernel work plus transport
      root.dataset.lastRoundTripMs = (performance.now() - t).toFixed(2);
    }
    if (m.type === "reply") {
      cache.set(m.key, { msg: m, buffers: bufs }, bufferBytes(bufs) + 256);
      root.dataset.bytesReceived = String(Number(root.dataset.bytesReceived ?? "0") + bufferBytes(bufs));
    }
    const { next } = c.complete(m.id, have);
    if (next) send(m.kind, next.id, next.key, pendingParams.get(`${m.kind}:${next.key}`) ?? {});
    if (!c.busy) status.hidden = true;
    if (m.type === "error") {
      const text = typeof m.message === "string" ? m.message : "error";
      const target = { features: fMessage, kernels: kMessage, cam: cMessage, saliency: sMessage, actmax: aMessage, metrics: cFaith }[
        m.kind
      ];
      if (target && m.key === c.wanted) {
        target.textContent = text;
        target.hidden = false;
        target.classList.add("cnnviz-error");
      } else if (m.key === c.wanted) showError(text);
      return;
    }
    if (m.key !== c.wanted) return; // stale: kept in the cache, not drawn
    try {
      drawReply(m.kind, m.key);
    } catch (err) {
      showError(`Cannot show ${m.kind}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  function drawReply(kind: string, key: string): void {
    for (const box of [fMessage, kMessage, cMessage, sMessage, aMessage]) box?.classList.remove("cnnviz-error");
    if (kind === "features" && currentTab === "features") drawFeatures(key);
    else if (kind === "kernels" && currentTab === "kernels") drawKernels(key);
    else if (kind === "predictions") {
      drawPredictions(key);
      if (currentTab === "cam") refreshCam();
      if (currentTab === "saliency") refreshSaliency();
    } else if (kind === "cam" && currentTab === "cam") drawCam(key);
    else if (kind === "saliency" && currentTab === "saliency") drawSaliency(key);
    else if (kind === "metrics") drawMetrics(key);
    else if (kind === "actmax" && aMessage) {
      aMessage.hidden = true;
      drawActmax();
    }
  }
  const onCustom = (msg: unknown, buffers: unknown): void => onMessage(msg, buffers);
  model.on("msg:custom", onCustom);
  cleanups.push(() => model.off("msg:custom", onCustom));

  // ---------- trait changes ----------
  const refreshCurrent = (): void => panels.get(currentTab)?.refresh();
  listen("change:layer_name", () => {
    if (kSection) kSection.page = 0;
    if (fSection) fSection.page = 0;
    refreshCurrent();
  });
  listen("change:layers", refreshCurrent);
  listen("change:title", () => {
    title.textContent = str("title", "");
  });
  listen("change:error", () => showError(str("error", "")));
  listen("change:tab", () => {
    if (str("tab", "") !== currentTab) selectTab(str("tab", ""), false);
  });
  for (const name of ["cmap", "kernel_cmap", "cam_cmap"]) {
    listen(`change:${name}`, () => {
      fCmap?.input && (fCmap.input.value = str("cmap", "viridis"));
      kCmap?.input && (kCmap.input.value = str("kernel_cmap", "bwr"));
      cCmap?.input && (cCmap.input.value = str("cam_cmap", "jet"));
      refreshCurrent();
    });
  }
  listen("change:colormaps", () => {
    fCmap?.setOptions(colormapOptions(), str("cmap", "viridis"));
    kCmap?.setOptions(colormapOptions(), str("kernel_cmap", "bwr"));
    cCmap?.setOptions(colormapOptions(), str("cam_cmap", "jet"));
  });
  for (const name of ["cam_method", "cam_layer", "target_class", "cam_layers"]) listen(`change:${name}`, () => {
    if (cFaith) cFaith.textContent = "";
    if (currentTab === "cam") refreshCam();
    if (currentTab === "saliency" && name === "target_class") refreshSaliency();
  });
  listen("change:saliency_method", () => {
    if (currentTab === "saliency") refreshSaliency();
  });
  listen("change:cam_methods", () => cMethod?.setOptions(methodOptions("cam_methods"), str("cam_method", "GradCAM")));
  listen("change:image_version", () => {
    readImage();
    for (const prefix of ["features|", "cam|", "saliency|", "predictions|", "metrics|"]) cache.clear(prefix);
    refreshCurrent();
  });
  listen("change:input_image", () => {
    readImage();
    refreshCurrent();
  });

  // ---------- resize ----------
  let frame = 0;
  const onResize = (): void => {
    if (frame || !view) return;
    frame = view.requestAnimationFrame(() => {
      frame = 0;
      for (const s of [kSection, fSection, cSection, sSection, aSection]) s?.grid.resize(width(s.box));
    });
  };
  const observer = view && "ResizeObserver" in view ? new view.ResizeObserver(onResize) : null;
  observer?.observe(root);
  cleanups.push(() => {
    observer?.disconnect();
    if (frame && view) view.cancelAnimationFrame(frame);
  });

  root.appendChild(detail); // below the panels
  title.textContent = str("title", "");
  showError(str("error", ""));
  readImage();
  selectTab(str("tab", views[0] ?? "features"), false);

  return () => {
    for (const c of cleanups.reverse()) c();
    root.remove();
  };
}
