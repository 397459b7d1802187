/**
 * The pure logic behind issue 12's fixes: the status line (busy, cancelling,
 * a silent kernel), what a map explains in words, kernel paging by whole
 * filters, the filter field's clamp, diverging colour tables centred on zero,
 * the layer slider's width and which keys belong to the widget.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Colorizer, isDiverging, zeroPosition } from "../src/colormap";
import { decodeMapStack } from "../src/decode";
import {
  ClassNames,
  camLayerText,
  classText,
  computingText,
  explainedText,
  exportName,
  formatProb,
} from "../src/explain";
import { alignedColumns, clampFilter, filterPageText, filtersPerPage } from "../src/kernel_pages";
import { widgetKey } from "../src/keys_guard";
import { t } from "../src/i18n";
import { CANCELLING_TEXT, type Progress, type SessionState, WAITING_TEXT, statusLine } from "../src/status";
import { layerSliderWidth, pageRange } from "../src/tiling";
import { indexTable, quantize, reds } from "./helpers";

const idle: SessionState = {
  requests: 1,
  bytesReceived: 0,
  lastRoundTripMs: null,
  pending: 1,
  cancellable: true,
  silent: false,
  progress: null,
  cancelling: false,
};
const progress = (done: number, total: number, heartbeat = false): Progress => ({
  kind: "saliency",
  key: "k",
  text: "t",
  done,
  total,
  heartbeat,
  leftS: null,
});

describe("status line", () => {
  it("says nothing for a request without progress yet", () => {
    assert.equal(statusLine(idle), null);
  });
  it("moves an indeterminate bar while nothing is counted, a determinate one after", () => {
    assert.deepEqual(statusLine({ ...idle, progress: progress(0, 0, true) }), { text: "t", done: 0, total: null, bar: true });
    assert.deepEqual(statusLine({ ...idle, progress: progress(0, 50, true) }), { text: "t", done: 0, total: null, bar: true });
    assert.deepEqual(statusLine({ ...idle, progress: progress(32, 50, true) }), { text: "t", done: 32, total: 50, bar: true });
    assert.deepEqual(statusLine({ ...idle, progress: progress(60, 50) }), { text: "t", done: 50, total: 50, bar: true });
  });
  it("cancelling… until answered; a silent kernel wins, with no bar", () => {
    const cancelling = { ...idle, cancelling: true, progress: progress(3, 10) };
    assert.equal(statusLine(cancelling)?.text, t(CANCELLING_TEXT));
    assert.equal(statusLine(cancelling)?.text, "cancelling…");
    assert.deepEqual(statusLine({ ...cancelling, silent: true }), { text: t(WAITING_TEXT), done: 0, total: null, bar: false });
  });
});

describe("what a map explains", () => {
  it("names classes from predictions and from map replies, with their probability per image", () => {
    const names = new ClassNames();
    assert.equal(names.name(6), "class 6");
    names.learnPredictions(1, [{ index: 0, name: "circle", prob: 0.9 }]);
    names.learnExplained(1, { target: 6, class_name: "crescent", prob: 0.0004 });
    names.learnExplained(1, { target: null, class_name: null, prob: null });
    assert.equal(names.name(0), "circle");
    assert.equal(names.name(6), "crescent");
    assert.equal(names.prob(1, 6), 0.0004);
    assert.equal(names.prob(2, 6), null, "another image: not known");
  });
  it("labels maps and the computing notes", () => {
    assert.equal(formatProb(0.8766), "87.7%");
    assert.equal(formatProb(0.0001), "<0.1%");
    assert.equal(classText({ target: 2, class_name: "star", prob: 0.07 }), "star 7.0%");
    assert.equal(explainedText("GradCAM", { target: 2, class_name: "star", prob: 0.07 }, "features.11"), "GradCAM · star 7.0% · layer features.11");
    assert.equal(explainedText("EigenCAM", { target: null, class_name: null, prob: null }, "f"), "EigenCAM · class-agnostic · layer f");
    assert.equal(explainedText("vanilla", { target: 1, class_name: null, prob: null }), "vanilla · class 1");
    assert.equal(computingText("GradCAMPlusPlus", "circle", "features"), "computing GradCAMPlusPlus for circle at features…");
    assert.equal(computingText("KPCA_CAM", null, "layer4"), "computing KPCA_CAM (class-agnostic) at layer4…");
  });
  it("names PNG exports by view, method, class and layer", () => {
    assert.equal(exportName(["cam", "GradCAM", "circle", "features"]), "cam_GradCAM_circle_features.png");
    assert.equal(exportName(["features", "features.3"]), "features_features.3.png");
    assert.equal(exportName(["saliency", "vanilla", "tabby, tabby cat"]), "saliency_vanilla_tabby-tabby-cat.png");
    assert.equal(exportName(["kernels", "", null, "filter3"]), "kernels_filter3.png");
  });
  it("says when a CAM layer is a whole block", () => {
    const layers = ["features.0", "features.11", "features"];
    assert.equal(camLayerText("features", layers), "features (whole block output)");
    assert.equal(camLayerText("features.11", layers), "features.11");
  });
});

describe("kernels by whole filters", () => {
  it("clamps the filter field to the layer's filters", () => {
    assert.equal(clampFilter(500, 128), 127);
    assert.equal(clampFilter(-3, 128), 0);
    assert.equal(clampFilter(2.7, 128), 2);
    assert.equal(clampFilter(Number.NaN, 64), 0);
    assert.equal(clampFilter(5, 0), 0);
  });
  it("pages whole filters and starts each filter on a row", () => {
    assert.equal(filtersPerPage(16, 256), 16);
    assert.equal(filtersPerPage(512, 256), 1, "at least one filter, even with more kernels than a page");
    assert.equal(alignedColumns(16, 22), 16);
    assert.equal(alignedColumns(3, 22), 21, "first-layer filters: seven whole filters a row");
    assert.equal(alignedColumns(64, 20), 16);
    assert.equal(alignedColumns(512, 21), 16);
    assert.equal(alignedColumns(3, 2), 1);
    assert.equal(alignedColumns(16, 16), 16);
    for (const [inputs, fit] of [[64, 20], [27, 10], [7, 3]] as const) {
      const c = alignedColumns(inputs, fit);
      assert.ok(c <= fit && inputs % c === 0, `${inputs} in ${fit}: ${c}`);
    }
    const page = pageRange(32 * 16, filtersPerPage(16, 256) * 16, 1);
    assert.equal(filterPageText(page, 16, 32), "page 2 / 2 · filters 16–31 of 32 · 16 kernels each");
    assert.equal(filterPageText(pageRange(512, 512, 3), 512, 512), "page 1 / 1 · filter 0 of 512 · 512 kernels each");
  });
});

describe("diverging colour tables", () => {
  it("knows Python's diverging tables and where zero sits", () => {
    const diverging = ["bwr", "RdBu_r"];
    assert.ok(isDiverging("bwr", diverging) && isDiverging("RdBu_r", diverging) && !isDiverging("viridis", diverging));
    assert.equal(zeroPosition({ lo: -1, hi: 3 }), 0.25);
    assert.equal(zeroPosition({ lo: 0, hi: 3 }), null);
  });
  it("draws a negative value below the middle in every scale when centred", () => {
    // map 0: all negative (-0.76 .. -0.34); uncentred its -0.4 would be near the top (red)
    const stack = decodeMapStack(quantize([[-0.76, -0.4, -0.34], [-2, 0, 3]], 1, 3));
    for (const scale of ["map", "layer", "global"] as const) {
      const c = new Colorizer(stack, indexTable(), { scale, symmetric: true, range: [-4, 3] });
      const [lo, mid] = reds(c.colorize(0));
      assert.ok((lo as number) < 128 && (mid as number) < 128, `${scale}: ${lo}, ${mid}`);
      const [, zero, pos] = reds(c.colorize(1));
      assert.ok(Math.abs((zero as number) - 127.5) <= 1, `${scale}: zero at ${zero}`);
      assert.ok((pos as number) > 128);
    }
    const uncentred = new Colorizer(stack, indexTable(), { scale: "map" });
    assert.ok((reds(uncentred.colorize(0))[1] as number) > 128, "the bug: uncentred, -0.4 is on the red side");
  });
});

describe("controls", () => {
  it("gives deep models a wider layer slider, within bounds", () => {
    assert.equal(layerSliderWidth(5), 120);
    assert.equal(layerSliderWidth(21), 294);
    assert.equal(layerSliderWidth(52), 420);
  });
  it("keeps plain keys typed into the widget from the host, not its shortcuts", () => {
    const key = (k: string, mods: Partial<{ ctrlKey: boolean; metaKey: boolean; altKey: boolean }> = {}) =>
      widgetKey({ key: k, ctrlKey: false, metaKey: false, altKey: false, ...mods });
    for (const k of ["ArrowLeft", "ArrowRight", "Home", "End", "1", "a", "Enter", " "]) assert.ok(key(k), k);
    assert.ok(!key("Escape") && !key("Tab") && !key("s", { ctrlKey: true }) && !key("s", { metaKey: true }));
  });
});
