/**
 * Activation maximization: optimised images for channels of a layer, shown
 * as each one finishes, in tiles laid out for every channel asked for (so
 * they keep their size); regularised (Lucid-style) or plain (FlashTorch)
 * optimisation; Python's time estimate while it runs.
 */

import { parseChannels } from "../channels";
import { type RgbStack, decodeRgbStack } from "../decode";
import { button, el, MessageLine, select, syncSelect } from "../dom";
import { requestKey } from "../keys";
import type { ActmaxItem, RequestParams } from "../messages";
import type { MessageKey } from "../i18n";
import { CANCELLED, type Progress } from "../status";
import { type TileSource, rgbSource } from "../tiles";
import { GridSection } from "./grid_section";
import { currentLayer } from "./layer_bar";
import { type Tab, type TabContext, sectionTab } from "./tab";

/** The tab's explanation (a key of the message table). */
export const ACTMAX_HELP = "actmax.help";

const MODES: [string, MessageKey][] = [
  ["regularized", "actmax.mode_regularized"],
  ["plain", "actmax.mode_plain"],
];

export function createActmaxTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const t = ctx.t;
  const panel = ctx.panel("actmax");
  const controls = el(doc, "div", "cnnviz-controls");
  const layerOptions = (): [string, string][] => ctx.get("layers").filter((l) => l.shape).map((l) => [l.name, l.name]);
  const layer = select(doc, t("common.layer"), layerOptions(), currentLayer(ctx)?.name ?? "", () => undefined);
  const chWrap = el(doc, "label", "cnnviz-control");
  const channels = el(doc, "input", "cnnviz-text");
  channels.type = "text";
  channels.value = "0-7";
  channels.setAttribute("aria-label", t("actmax.channels_label"));
  chWrap.append(el(doc, "span", "cnnviz-control-label", t("actmax.channels")), channels);
  const mode = select(doc, t("actmax.mode"), MODES.map(([v, k]) => [v, t(k)] as const), "regularized", () => undefined);
  const run = button(doc, t("actmax.run"), t("actmax.run_title"), () => start());
  controls.append(layer.wrap, chWrap, mode.wrap, run);
  const help = el(doc, "div", "cnnviz-meta cnnviz-actmax-help", t(ACTMAX_HELP));
  const message = new MessageLine(doc);
  panel.append(controls, help, message.el);
  const section = new GridSection(ctx, panel, { label: t("actmax.grid"), noun: t("actmax.noun"), onPage: () => draw() });
  /** Images that arrived, by request key, then channel; what each key asked for. */
  const items = new Map<string, Map<number, RgbStack>>();
  const asked = new Map<string, RequestParams["actmax"]>();
  let shownKey = "";

  const modeText = (p: RequestParams["actmax"]): string => (p.regularize ? t("actmax.regularised") : t("actmax.plain"));
  const what = (p: RequestParams["actmax"]): string =>
    p.channels.length === 1
      ? t("actmax.what_one", { layer: p.layer, mode: modeText(p) })
      : t("actmax.what_many", { count: p.channels.length, layer: p.layer, mode: modeText(p) });

  function start(): void {
    const name = layer.input.value;
    const info = ctx.get("layers").find((l) => l.name === name);
    try {
      const params = {
        layer: name,
        channels: parseChannels(channels.value, info?.shape?.[0] ?? 0),
        regularize: mode.input.value !== "plain",
      };
      shownKey = requestKey("actmax", params);
      asked.set(shownKey, params);
      if (!items.has(shownKey)) items.set(shownKey, new Map());
      ctx.session.retry("actmax"); // Run again after a cancel
      if (ctx.session.request("actmax", params)) message.show(t("actmax.done", { what: what(params) }));
      else message.show(t("actmax.optimising", { what: what(params) }));
      draw();
    } catch (err) {
      message.show(err instanceof Error ? err.message : String(err));
    }
  }

  function draw(): void {
    const found = items.get(shownKey);
    const params = asked.get(shownKey);
    help.hidden = params !== undefined;
    const first = found?.values().next().value;
    if (!found || !params || !first) {
      section.clear();
      return;
    }
    // Every channel asked for has its tile from the first image on (empty until its image
    // comes): the layout, and so the tile size, does not change as images arrive.
    const source: TileSource = {
      count: Math.max(...params.channels) + 1,
      height: first.height,
      width: first.width,
      paint: (c, out) => {
        const item = found.get(c);
        if (item && item.height === first.height && item.width === first.width) rgbSource(item).paint(0, out);
        else out.fill(0);
      },
      value: () => null,
      label: (c) => (found.has(c) ? t("tiles.channel", { index: c }) : t("actmax.tile_waiting", { index: c })),
    };
    section.show(source, params.channels, { key: shownKey });
    section.grid.canvas.dataset.done = String(found.size);
  }

  return {
    ...sectionTab({ el: panel, kinds: ["actmax"], traits: ["layers", "input_channels"], refresh: draw, section, message }),
    refresh: () => {
      syncSelect(layer, layerOptions(), layer.input.value || (currentLayer(ctx)?.name ?? ""));
      // A grayscale model: the regularised parameterisation makes RGB images, so plain only.
      const grey = ctx.get("input_channels") === 1;
      const regularized = mode.input.querySelector<HTMLOptionElement>('option[value="regularized"]');
      if (regularized) regularized.disabled = grey;
      if (grey && mode.input.value === "regularized") mode.input.value = "plain";
      draw();
    },
    reply: (_kind, key) => {
      const params = asked.get(key);
      if (key === shownKey && params) message.show(t("actmax.done", { what: what(params) }));
      draw();
    },
    error: (_kind, key, text) => {
      const params = asked.get(key);
      if (key !== shownKey || !params) return;
      if (text !== CANCELLED) {
        message.error(text);
        return;
      }
      const done = items.get(key)?.size ?? 0;
      message.show(t("actmax.cancelled", { done, what: what(params) }), { label: t("actmax.run_again"), run: start });
    },
    progress: (p: Readonly<Progress>) => {
      const params = asked.get(p.key);
      if (p.key === shownKey && params) message.show(t("actmax.optimising_progress", { what: what(params), progress: p.text }));
    },
    item: (item: ActmaxItem) => {
      let found = items.get(item.key);
      if (!found) items.set(item.key, (found = new Map()));
      found.set(item.index, decodeRgbStack(item.rgb));
      if (item.key === shownKey) draw();
    },
  };
}
