/** Activation maximization: optimised images for channels of a layer, shown as each one finishes. */

import { type RgbStack, decodeRgbStack } from "../decode";
import { button, el, MessageLine, select, syncSelect } from "../dom";
import { requestKey } from "../keys";
import { type ActmaxItem, parseChannels } from "../messages";
import { type TileSource, rgbSource } from "../tiles";
import { GridSection } from "./grid_section";
import { currentLayer } from "./layer_bar";
import { type Tab, type TabContext, sectionTab } from "./tab";

export function createActmaxTab(ctx: TabContext): Tab {
  const doc = ctx.doc;
  const panel = ctx.panel("actmax");
  const controls = el(doc, "div", "cnnviz-controls");
  const layerOptions = (): [string, string][] => ctx.get("layers").filter((l) => l.shape).map((l) => [l.name, l.name]);
  const layer = select(doc, "Layer", layerOptions(), currentLayer(ctx)?.name ?? "", () => undefined);
  const chWrap = el(doc, "label", "cnnviz-control");
  const channels = el(doc, "input", "cnnviz-text");
  channels.type = "text";
  channels.value = "0-7";
  channels.setAttribute("aria-label", "Channels to optimise, e.g. 0-7 or 1,5,9");
  chWrap.append(el(doc, "span", "cnnviz-control-label", "Channels"), channels);
  const run = button(doc, "Run", "Optimise images that excite these channels", () => start());
  controls.append(layer.wrap, chWrap, run);
  const message = new MessageLine(doc);
  panel.append(controls, message.el);
  const section = new GridSection(ctx, panel, { label: "optimised images", onPage: () => draw() });
  /** Images that arrived, by request key, then channel. */
  const items = new Map<string, Map<number, RgbStack>>();
  let shownKey = "";

  function start(): void {
    const name = layer.input.value;
    const info = ctx.get("layers").find((l) => l.name === name);
    try {
      const params = { layer: name, channels: parseChannels(channels.value, info?.shape?.[0] ?? 0) };
      shownKey = requestKey("actmax", params);
      if (!items.has(shownKey)) items.set(shownKey, new Map());
      message.show(`optimising ${params.channels.length} image(s) for ${name}…`);
      if (ctx.session.request("actmax", params)) message.hide();
      draw();
    } catch (err) {
      message.show(err instanceof Error ? err.message : String(err));
    }
  }

  function draw(): void {
    const found = items.get(shownKey);
    if (!found || found.size === 0) {
      section.clear();
      return;
    }
    const chans = [...found.keys()].sort((a, b) => a - b);
    const first = found.get(chans[0] as number) as RgbStack;
    const source: TileSource = {
      count: Math.max(...chans) + 1,
      height: first.height,
      width: first.width,
      paint: (c, out) => {
        const item = found.get(c);
        if (item) rgbSource(item).paint(0, out);
      },
      value: () => null,
      label: (c) => `channel ${c}`,
    };
    section.show(source, chans);
  }

  return {
    ...sectionTab({ el: panel, kinds: ["actmax"], traits: ["layers"], refresh: draw, section, message }),
    refresh: () => {
      syncSelect(layer, layerOptions(), layer.input.value || (currentLayer(ctx)?.name ?? ""));
      draw();
    },
    reply: () => {
      message.hide();
      draw();
    },
    item: (item: ActmaxItem) => {
      let found = items.get(item.key);
      if (!found) items.set(item.key, (found = new Map()));
      found.set(item.index, decodeRgbStack(item.rgb));
      if (item.key === shownKey) draw();
    },
  };
}
