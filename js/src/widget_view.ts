/**
 * The generic view shared by the widgets for now: a title, a line about the
 * data, paging controls for long stacks, the grid of map tiles and the hover
 * zoom box.
 */

import type { AnyModel } from "@anywidget/types";
import { COLOR_SCALES, type ColorScale, Colorizer, grayColorTable, stackRange } from "./colormap";
import { type MapStack, decodeColorTable, decodeMapStack, isEmptyStack } from "./decode";
import { formatRange, formatShape } from "./format";
import { GridView, placeHighlight } from "./grid_view";
import { translator } from "./i18n";
import { Pager } from "./pager";
import { ensureStyles } from "./styles";
import { pageRange } from "./tiling";
import { DRAW_TRAITS, type GenericTraits } from "./traits";
import { mapSource } from "./tiles";
import { ZoomBox } from "./zoom_box";

/** Most tiles on one page (keeps canvases within browser size limits). */
export const PAGE_SIZE = 256;
/** Width used before the element has been laid out. */
const FALLBACK_WIDTH = 640;
/** Shown before any maps arrive (a key of the message table). */
export const NO_DATA_TEXT = "generic.no_data";

type Model = AnyModel<GenericTraits>;

function element<K extends keyof HTMLElementTagNameMap>(
  doc: Document,
  tag: K,
  className: string,
): HTMLElementTagNameMap[K] {
  const node = doc.createElement(tag);
  node.className = className;
  return node;
}

function colorScaleOf(value: unknown): ColorScale {
  return typeof value === "string" && (COLOR_SCALES as readonly string[]).includes(value)
    ? (value as ColorScale)
    : "map";
}

/** Render the generic view into `el`; returns the cleanup function. */
export function renderGenericView(model: Model, el: HTMLElement): () => void {
  const doc = el.ownerDocument;
  const t = translator(model.get("lang"));
  ensureStyles(el);

  const root = element(doc, "div", "cnnviz-root");
  const header = element(doc, "div", "cnnviz-header");
  const title = element(doc, "div", "cnnviz-title");
  const meta = element(doc, "div", "cnnviz-meta");
  header.append(title, meta);
  const message = element(doc, "div", "cnnviz-message");
  const stage = element(doc, "div", "cnnviz-stage");
  const highlight = element(doc, "div", "cnnviz-highlight");
  highlight.hidden = true;
  root.append(header);
  el.appendChild(root);

  let stack: MapStack | null = null;
  let colorizer: Colorizer | null = null;
  let pageIndex = 0;

  const zoom = new ZoomBox(root, t);
  const grid = new GridView(stage, {
    t,
    onHover(hover) {
      const shown = hover && stack && colorizer ? hover : null;
      placeHighlight(highlight, grid.canvas, shown);
      if (shown) zoom.show(shown);
      else zoom.hide();
    },
  });
  stage.appendChild(highlight);
  const pager = new Pager(
    root,
    (page) => {
      pageIndex = page;
      showPage();
    },
    undefined,
    t,
  );
  root.append(message, stage);

  const containerWidth = (): number => {
    const w = stage.clientWidth || root.clientWidth || el.clientWidth;
    return w > 0 ? w : FALLBACK_WIDTH;
  };

  function showMessage(text: string, isError = false): void {
    message.textContent = text;
    message.classList.toggle("cnnviz-error", isError);
    message.hidden = false;
  }

  function showPage(): void {
    if (!stack || !colorizer) {
      pager.el.hidden = true;
      grid.setContent(null, containerWidth());
      return;
    }
    const page = pageRange(stack.channels, PAGE_SIZE, pageIndex);
    pageIndex = page.pageIndex;
    pager.update(page, stack.channels);
    const indices = Array.from({ length: page.end - page.start }, (_, i) => page.start + i);
    grid.setContent({ source: mapSource(stack, colorizer, t), indices }, containerWidth());
  }

  function updateTitle(): void {
    const t = model.get("title");
    title.textContent = typeof t === "string" ? t : "";
  }

  function updateData(): void {
    zoom.hide();
    zoom.invalidate();
    highlight.hidden = true;
    stack = null;
    colorizer = null;
    meta.textContent = "";
    try {
      const payload = model.get("maps");
      const decoded = payload == null ? null : decodeMapStack(payload);
      if (!decoded || isEmptyStack(decoded)) {
        showMessage(t(NO_DATA_TEXT));
      } else {
        const table = model.get("colormap");
        const colorTable = table == null ? grayColorTable() : decodeColorTable(table);
        const range = model.get("value_range");
        colorizer = new Colorizer(decoded, colorTable, {
          scale: colorScaleOf(model.get("color_scale")),
          symmetric: model.get("symmetric") === true,
          range: range ?? null,
        });
        stack = decoded;
        message.hidden = true;
        message.textContent = "";
        const all = stackRange(decoded);
        meta.textContent =
          `${formatShape([decoded.channels, decoded.height, decoded.width])} · ` +
          t("generic.values", { range: formatRange(all.lo, all.hi) });
      }
    } catch (err) {
      stack = null;
      colorizer = null;
      showMessage(
        t("explorer.cannot_show", { what: t("generic.these_maps"), error: err instanceof Error ? err.message : String(err) }),
        true,
      );
    }
    showPage();
  }

  const onData = (): void => {
    pageIndex = 0;
    updateData();
  };
  // A new colour table or scale keeps the page the user is on.
  const onColors = (): void => updateData();

  model.on("change:title", updateTitle);
  model.on("change:maps", onData);
  for (const name of DRAW_TRAITS) {
    if (name !== "maps") model.on(`change:${name}`, onColors);
  }

  let frame = 0;
  let lastWidth = -1;
  const view = doc.defaultView;
  const onResize = (): void => {
    if (frame || !view) return;
    frame = view.requestAnimationFrame(() => {
      frame = 0;
      const w = containerWidth();
      if (w !== lastWidth) {
        lastWidth = w;
        grid.resize(w);
      }
    });
  };
  const observer =
    view && "ResizeObserver" in view ? new view.ResizeObserver(onResize) : null;
  observer?.observe(stage);

  updateTitle();
  updateData();

  return () => {
    model.off("change:title", updateTitle);
    model.off("change:maps", onData);
    for (const name of DRAW_TRAITS) {
      if (name !== "maps") model.off(`change:${name}`, onColors);
    }
    observer?.disconnect();
    if (frame && view) view.cancelAnimationFrame(frame);
    grid.destroy();
    zoom.destroy();
    pager.destroy();
    root.remove();
  };
}
