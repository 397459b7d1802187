import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { agrees, arithmeticArrays, channelTerms, splitTerms } from "../src/arithmetic";
import { classPurity, exampleClass, exampleLabel } from "../src/examples_text";
import { translator } from "../src/i18n";
import { type ReplyContent, parseMessage } from "../src/messages";

const en = translator("en");
const zh = translator("zh");

function content(over: Partial<ReplyContent["examples"]> = {}): ReplyContent["examples"] {
  return {
    layer: "features.9",
    channel: 3,
    indices: [856, 19, 647],
    scores: [4.2587, 4.1288, 3.9525],
    labels: [0, 2, -1],
    label_names: ["circle", "triangle", null],
    positions: [
      [4, 5],
      [7, 5],
      [6, 3],
    ],
    boxes: [
      [25, 17, 63, 55],
      [25, 26, 63, 64],
      [9, 26, 47, 64],
    ],
    channels: null,
    rgb: { shape: [3, 38, 38, 3] },
    maps: null,
    ...over,
  };
}

describe("dataset examples replies", () => {
  it("parse with real-valued scores, unknown labels and an RGB buffer", () => {
    const c = content();
    const rgb = new DataView(new ArrayBuffer(3 * 38 * 38 * 3));
    const m = parseMessage({ type: "reply", id: 1, key: "examples|features.9|3", kind: "examples", ...c }, [rgb]);
    assert.ok(m?.type === "reply" && m.reply.kind === "examples");
    const got = m.reply.content as ReplyContent["examples"];
    assert.deepEqual(got.scores, c.scores);
    assert.deepEqual(got.labels, [0, 2, -1]);
    assert.deepEqual(got.label_names, ["circle", "triangle", null]);
    assert.equal(got.maps, null);
    assert.throws(() => parseMessage({ type: "reply", id: 1, key: "k", kind: "examples", ...c, scores: ["x"] }, [rgb]), /finite numbers/);
  });
});

describe("dataset example texts", () => {
  it("names the image, its class, score and the position of the maximum", () => {
    assert.equal(exampleLabel(content(), 0, en), "image #856 · circle · score 4.259 · max at row 4, col 5");
    assert.equal(exampleLabel(content(), 1, zh), "图像 #19 · triangle · 得分 4.129 · 最大值位于第 7 行、第 5 列");
  });

  it("leaves out an unknown label and puts the channel first in an overview", () => {
    assert.equal(exampleLabel(content(), 2, en), "image #647 · score 3.953 · max at row 6, col 3");
    assert.equal(exampleLabel(content({ channels: [0, 1, 2] }), 1, en).split(" · ")[0], "channel 1");
  });

  it("falls back to the label number without class names", () => {
    assert.equal(exampleClass(content({ label_names: null }), 1, en), "label 2");
    assert.equal(exampleClass(content({ label_names: null }), 2, en), "");
  });

  it("measures how pure a channel's examples are", () => {
    assert.deepEqual(classPurity([3, 3, 1, 3, -1, 1]), { share: 3 / 6, label: 3 });
    assert.deepEqual(classPurity([1, 2, 2, 1]), { share: 0.5, label: 1 }); // a tie: the lower label
    assert.equal(classPurity([-1, -1]), null);
  });
});

/** DataViews of float32 little-endian values, as Python sends them. */
function f32(values: number[]): DataView {
  const out = new DataView(new ArrayBuffer(values.length * 4));
  values.forEach((v, i) => out.setFloat32(i * 4, v, true));
  return out;
}

describe("conv unit arithmetic", () => {
  // 3 input channels of 2 x 2: products written out by hand
  const patch = [1, 2, 3, 4, 0, 0, 1, 0, -1, -2, 0, 0];
  const kernel = [0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 2, 0, 0, 2];
  const products = patch.map((p, i) => p * (kernel[i] as number));

  it("reads the three float32 arrays and checks their size", () => {
    const a = arithmeticArrays([f32(patch), f32(kernel), f32(products)], [3, 2, 2]);
    assert.deepEqual(Array.from(a.products), products);
    assert.throws(() => arithmeticArrays([f32(patch), f32(kernel), f32(products)], [3, 2, 3]), /expected 72 bytes/);
    assert.throws(() => arithmeticArrays([], [3, 4]), /kernel_shape/);
  });

  it("sums each input channel's products and orders them by magnitude", () => {
    const terms = channelTerms(new Float32Array(products), [3, 2, 2], [10, 11, 12]);
    // sums: 5, 1, -2
    assert.deepEqual(terms, [
      { index: 0, channel: 10, sum: 5 },
      { index: 2, channel: 12, sum: -2 },
      { index: 1, channel: 11, sum: 1 },
    ]);
    const { shown, rest } = splitTerms(terms, 1);
    assert.equal(shown.length, 1);
    assert.deepEqual(rest, { count: 2, sum: -1 });
    assert.equal(shown[0]!.sum + rest.sum, 4); // every channel counted once
  });

  it("says whether the sum equals the layer's output", () => {
    assert.ok(agrees(1.00001, 1.00002));
    assert.ok(agrees(1000.01, 1000.05));
    assert.ok(!agrees(1.0, 1.01));
  });
});
