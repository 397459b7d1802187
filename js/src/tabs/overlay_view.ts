/**
 * What the CAM and saliency tabs share: the class buttons, a message line
 * and a 2-tile grid (the map blended on the input image, and the map alone),
 * plus their opacity slider.
 */

import { Colorizer } from "../colormap";
import { valueAt } from "../decode";
import { MessageLine, slider } from "../dom";
import { type Entry, partialNote, stackOf } from "../entry";
import { blendOverlay } from "../overlay";
import type { TileSource } from "../tiles";
import { GridSection } from "./grid_section";
import { ClassButtons } from "./predictions";
import type { TabContext } from "./tab";

/** Largest tile of the overlay grid, CSS pixels. */
const OVERLAY_TILE = 320;

/** [value, text] pairs of a list of method names. */
export function methodOptions(methods: readonly string[]): [string, string][] {
  return methods.map((m) => [m, m]);
}

/** The opacity slider (a display-only trait); `sync` sets it from the trait. */
export function opacitySlider(ctx: TabContext): { wrap: HTMLElement; sync: () => void } {
  const s = slider(ctx.doc, "Opacity", 0, 1, 0.05, ctx.get("opacity"), (v) => ctx.local("opacity", v));
  return { wrap: s.wrap, sync: () => (s.input.value = String(ctx.get("opacity"))) };
}

export class OverlayView {
  readonly classes: ClassButtons;
  readonly message: MessageLine;
  readonly section: GridSection;

  /** Appends to `panel`: the class buttons, the message line, `extras`, then the grid. */
  constructor(
    private readonly ctx: TabContext,
    panel: HTMLElement,
    label: string,
    onPage: () => void,
    extras: readonly HTMLElement[] = [],
  ) {
    this.classes = new ClassButtons(ctx);
    this.message = new MessageLine(ctx.doc);
    panel.append(this.classes.el, this.message.el, ...extras);
    this.section = new GridSection(ctx, panel, { label, maxTile: OVERLAY_TILE, onPage });
  }

  /** Draw map 0 of `entry` over the input image; `names` label the two tiles. */
  draw(entry: Entry<"cam" | "saliency">, names: [string, string]): void {
    const t0 = performance.now();
    const stack = stackOf(entry);
    const image = this.ctx.image();
    if (!image || image.height !== stack.height || image.width !== stack.width) {
      this.message.show("The map does not match the image size.");
      return;
    }
    const colorizer = new Colorizer(stack, this.ctx.colorTable(this.ctx.get("cam_cmap")), { scale: "map", symmetric: false });
    const opacity = this.ctx.get("opacity");
    const rgb = image.data.subarray(0, image.height * image.width * 3);
    const source: TileSource = {
      count: 2,
      height: stack.height,
      width: stack.width,
      paint: (i, out) => {
        const colored = colorizer.colorize(0);
        if (i === 1) out.set(colored);
        else blendOverlay(rgb, colored, opacity, out);
      },
      value: (_i, row, col) => valueAt(stack, 0, row, col),
      label: (i) => names[i] ?? "",
    };
    this.message.show(entry.partial ? partialNote(entry.partial) : "");
    this.section.show(source, [0, 1], { key: entry.key });
    this.ctx.markPaint(entry.kind, t0);
  }
}
