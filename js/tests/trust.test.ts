import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { translator } from "../src/i18n";
import { parseMessage } from "../src/messages";
import type { EvaluationRecord } from "../src/traits";
import { LoadedImage, fitSize, nextSort, scoresText, sortArrow, sortRows, stepLabel, verdictText, worstItemText } from "../src/trust_text";

const en = translator("en");
const zh = translator("zh");

function rec(method: string, metric: string, mean: number | null, low: number | null = null, high: number | null = null): EvaluationRecord {
  return { method, metric, group: "faithfulness", n: 10, mean, ci_low: low, ci_high: high, better: "higher" };
}

describe("sanity-check text", () => {
  it("gives the verdict with the engine's threshold, passing or failing", () => {
    assert.equal(
      verdictText({ fails: true, value: 0.8312, threshold: 0.5, over: "average" }, en),
      "fails: Spearman stays above 0.5 (mean 0.83 over the randomised layers)",
    );
    assert.equal(
      verdictText({ fails: false, value: 0.17, threshold: 0.5, over: "average" }, en),
      "passes: the maps change once the top layers are random (mean Spearman 0.17, at most 0.5)",
    );
    assert.match(verdictText({ fails: false, value: 0.1, threshold: 0.3, over: "final" }, en), /every layer is random.*0\.3/);
    assert.equal(verdictText({ fails: null, value: null, threshold: 0.5, over: "average" }, en), "no verdict: the model has no layer to randomise");
    assert.match(verdictText({ fails: true, value: 0.9, threshold: 0.5, over: "average" }, zh), /^未通过/);
  });

  it("writes scores with two decimals, n/a for undefined, and the randomised layer by mode", () => {
    assert.equal(scoresText({ spearman: 0.8312, ssim: -0.05, hog: null }, en), "Spearman 0.83 · SSIM -0.05 · HOG n/a");
    assert.equal(stepLabel("cascade", "features.9", en), "features.9 and above random");
    assert.equal(stepLabel("independent", "features.9", en), "only features.9 random");
  });
});

describe("evaluation table sorting", () => {
  const rows = [rec("GradCAM", "sparseness", 0.4, 0.3, 0.5), rec("ScoreCAM", "road_combined", null), rec("EigenCAM", "sparseness", 0.7, 0.6, 0.65), rec("FEM", "road_combined", 0.1, 0.0, 0.4)];

  it("keeps the given order without a sort", () => {
    assert.deepEqual(sortRows(rows, null), rows);
  });

  it("sorts by a column in either direction, missing values last in both", () => {
    const up = sortRows(rows, { column: "mean", ascending: true }).map((r) => r.method);
    assert.deepEqual(up, ["FEM", "GradCAM", "EigenCAM", "ScoreCAM"]);
    const down = sortRows(rows, { column: "mean", ascending: false }).map((r) => r.method);
    assert.deepEqual(down, ["EigenCAM", "GradCAM", "FEM", "ScoreCAM"]);
    assert.deepEqual(sortRows(rows, { column: "method", ascending: true }).map((r) => r.method), ["EigenCAM", "FEM", "GradCAM", "ScoreCAM"]);
    // interval: by its width; stable among equals (metric ties keep the given order)
    assert.deepEqual(sortRows(rows, { column: "interval", ascending: true }).map((r) => r.method), ["EigenCAM", "GradCAM", "FEM", "ScoreCAM"]);
    assert.deepEqual(sortRows(rows, { column: "metric", ascending: true }).map((r) => r.method), ["ScoreCAM", "FEM", "GradCAM", "EigenCAM"]);
  });

  it("flips the direction on a second click, starts numbers descending and text ascending; the arrow says which", () => {
    const first = nextSort(null, "mean");
    assert.deepEqual(first, { column: "mean", ascending: false });
    assert.deepEqual(nextSort(first, "mean"), { column: "mean", ascending: true });
    assert.deepEqual(nextSort(first, "method"), { column: "method", ascending: true });
    assert.equal(sortArrow(first, "mean"), " ▼");
    assert.equal(sortArrow({ column: "mean", ascending: true }, "mean"), " ▲");
    assert.equal(sortArrow(first, "metric"), "");
  });
});

describe("trust replies", () => {
  const level = new DataView(new ArrayBuffer(3 * 4 * 4));
  const lo = new DataView(new ArrayBuffer(12));
  const hi = new DataView(new ArrayBuffer(12));
  const sanity = {
    type: "reply",
    id: 3,
    key: "sanity|1|GradCAM|cascade|2",
    kind: "sanity",
    stack: { shape: [3, 4, 4], range_dtype: "float32", labels: ["original", "classifier.0", "random logit"] },
    method: "GradCAM",
    mode: "cascade",
    target: 2,
    class_name: "triangle",
    prob: 0.9,
    steps: [{ layer: "classifier.0", scores: { spearman: 0.8, ssim: null, hog: 0.5 } }],
    random_logit: { target: 0, class_name: "circle", scores: { spearman: 0.1, ssim: 0.2, hog: 0.3 } },
    similarity: "spearman",
    threshold: 0.5,
    over: "average",
    value: 0.8,
    fails: true,
  };

  it("parse a sanity check with NaN scores as null", () => {
    const m = parseMessage(sanity, [level, lo, hi]);
    assert.ok(m && m.type === "reply" && m.reply.kind === "sanity");
    const c = m.reply.content as typeof sanity;
    assert.equal(c.steps[0]?.scores.ssim, null);
    assert.equal(c.random_logit?.class_name, "circle");
    assert.equal(c.fails, true);
  });

  it("reject a sanity check without its stack buffers or with a bad score", () => {
    assert.throws(() => parseMessage(sanity, [level]), /buffers/);
    const bad = { ...sanity, steps: [{ layer: "x", scores: { spearman: "high", ssim: 0, hog: 0 } }] };
    assert.throws(() => parseMessage(bad, [level, lo, hi]), /spearman/);
  });

  it("parse the worst images of an evaluation", () => {
    const m = parseMessage(
      { type: "reply", id: 4, key: "evaluation_worst|GradCAM|sparseness", kind: "evaluation_worst", method: "GradCAM", metric: "sparseness", better: "higher", indices: [5, 2], values: [0.1, null], targets: [1, 0], labels: null, target_names: ["ring", "circle"], n: 8, images: false },
      [],
    );
    assert.ok(m && m.type === "reply" && m.reply.kind === "evaluation_worst");
    const c = m.reply.content as { values: (number | null)[]; images: boolean; labels: number[] | null; target_names: string[] | null };
    assert.deepEqual(c.values, [0.1, null]);
    assert.equal(c.images, false);
    assert.equal(c.labels, null);
    assert.deepEqual(c.target_names, ["ring", "circle"]);
  });
});

describe("the drill-down to the worst images", () => {
  const reply = { indices: [5, 2, 9], values: [0.41234, null, 0.5], targets: [1, 0, 2], labels: null, target_names: ["ring", "circle", null as unknown as string], label_names: null };

  it("writes each image's index, value and class; the label when the data has them", () => {
    const names = (i: number): string => ["circle", "ring", "square"][i] ?? String(i);
    assert.equal(worstItemText(reply, 0, names, en), "image 5: 0.4123 · class ring");
    assert.equal(worstItemText(reply, 1, names, en), "image 2: n/a · class circle");
    assert.equal(worstItemText({ ...reply, target_names: null }, 2, names, en), "image 9: 0.5 · class square");
    const labelled = { ...reply, labels: [1, 2, 2], label_names: ["ring", "square", "square"] };
    assert.equal(worstItemText(labelled, 1, names, en), "image 2: n/a · class circle · label square");
    assert.equal(worstItemText(reply, 0, names, zh), "图像 5：0.4123 · 类别 ring");
  });

  it("fits a thumbnail's longer side to the box, keeping its aspect", () => {
    assert.deepEqual(fitSize(64, 64, 96), [96, 96]);
    assert.deepEqual(fitSize(96, 48, 96), [96, 48]);
    assert.deepEqual(fitSize(30, 120, 96), [24, 96]);
    assert.deepEqual(fitSize(1000, 1, 96), [96, 1]);
  });

  it("marks the clicked image as the input once the image version moves, until it moves again", () => {
    const loaded = new LoadedImage();
    assert.deepEqual(loaded.at(3), { index: null, waiting: null });
    loaded.clicked(9, 3);
    assert.deepEqual(loaded.at(3), { index: null, waiting: 9 }); // Python has not answered yet
    assert.deepEqual(loaded.at(4), { index: 9, waiting: null });
    assert.deepEqual(loaded.at(4), { index: 9, waiting: null });
    assert.deepEqual(loaded.at(5), { index: null, waiting: null }); // another image (a drawing)
  });

  it("parses thumbnails and maps of the same size, and refuses others", () => {
    const head = { type: "reply", id: 5, key: "evaluation_worst|GradCAM|sparseness", kind: "evaluation_worst", method: "GradCAM", metric: "sparseness", better: "higher", indices: [5, 2], values: [0.1, 0.2], targets: [1, 0], labels: null, target_names: null, n: 8, layer: "features.11", images: true };
    const rgb = new Uint8Array(2 * 4 * 3 * 3);
    const levels = new Uint8Array(2 * 4 * 3);
    const lo = new Float32Array([0, 0]);
    const hi = new Float32Array([1, 1]);
    const m = parseMessage({ ...head, rgb: { shape: [2, 4, 3, 3] }, maps: { shape: [2, 4, 3], range_dtype: "float32" } }, [rgb, levels, lo, hi]);
    assert.ok(m && m.type === "reply" && m.reply.kind === "evaluation_worst");
    const c = m.reply.content as { images: boolean; layer: string | null; rgb: { shape: number[] } | null; maps: { shape: number[] } | null };
    assert.equal(c.images, true);
    assert.equal(c.layer, "features.11");
    assert.deepEqual(c.rgb?.shape, [2, 4, 3, 3]);
    assert.deepEqual(c.maps?.shape, [2, 4, 3]);
    assert.throws(() => parseMessage({ ...head, rgb: { shape: [2, 4, 3, 3] }, maps: { shape: [2, 3, 4], range_dtype: "float32" } }, [rgb, levels, lo, hi]), /differ/);
    assert.throws(() => parseMessage({ ...head, rgb: { shape: [2, 4, 3, 3] }, maps: { shape: [2, 4, 3] } }, [rgb]), /buffers/);
  });
});
