/** Trait defaults, the class a map explains, and what a class-agnostic method is. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { figuresText } from "../src/explain";
import { chosenClass, isClassAgnostic } from "../src/tabs/predictions";
import { tabsFor } from "../src/tabs/registry";
import { DEFAULTS, type TraitName, get } from "../src/traits";

const model = (state: Record<string, unknown>) => ({ get: (name: TraitName): unknown => state[name] });

describe("traits", () => {
  it("gives each trait its value, or its default when missing or of another type", () => {
    const m = model({ cmap: "magma", opacity: "high", layers: "x", global_range: [0, 1], target_class: Number.NaN, shown_cam: 3 });
    assert.equal(get(m, "cmap"), "magma");
    assert.equal(get(m, "kernel_cmap"), "bwr");
    assert.equal(get(m, "opacity"), DEFAULTS.opacity);
    assert.deepEqual(get(m, "layers"), []);
    assert.deepEqual(get(m, "global_range"), [0, 1]);
    assert.equal(get(m, "target_class"), -1);
    assert.equal(get(m, "shown_cam"), null);
    assert.deepEqual(get(m, "colormaps"), {});
  });
});

describe("the class a map explains", () => {
  const top = [{ index: 7, name: "cat", prob: 0.9 }];
  it("is the chosen class, else the top prediction, else not known yet", () => {
    assert.equal(chosenClass(3, top), 3);
    assert.equal(chosenClass(-1, top), 7);
    assert.equal(chosenClass(-1, null), null);
    assert.equal(chosenClass(-1, []), null);
  });
  it("does not matter for class-agnostic methods (names compared case-insensitively)", () => {
    assert.equal(isClassAgnostic("EigenCAM", ["EigenCAM", "KPCA_CAM"]), true);
    assert.equal(isClassAgnostic("eigencam", ["EigenCAM"]), true);
    assert.equal(isClassAgnostic("GradCAM", ["EigenCAM"]), false);
  });
  it("writes faithfulness figures for people", () => {
    assert.equal(figuresText({ deletion_auc: 0.25, note: "x", average_drop: null }), "deletion AUC 0.25 · note x · average drop n/a");
    assert.equal(
      figuresText({ deletion_auc: 0.25, insertion_auc: 0.5 }, { deletion_auc: "lower", insertion_auc: "higher" }),
      "deletion AUC 0.25 (lower is better) · insertion AUC 0.5 (higher is better)",
    );
  });
});

describe("tab registry", () => {
  it("shows the tabs asked for, in table order; all when none are named", () => {
    assert.deepEqual(tabsFor(["draw", "features"]).map((t) => t.name), ["features", "draw"]);
    assert.deepEqual(tabsFor([]).map((t) => t.name), ["kernels", "features", "cam", "objects", "saliency", "actmax", "examples", "trust", "draw"]);
  });
});
