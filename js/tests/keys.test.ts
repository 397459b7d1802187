/**
 * Request keys against the golden cases that Python is checked against too
 * (tests/data/request_keys.json at the repository root).
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, it } from "node:test";
import { KEYS, keyVersion, requestKey } from "../src/keys";
import { REQUEST_KINDS, type RequestKind, type RequestParams } from "../src/messages";

const jsRoot = process.env.CNNVIZ_JS_ROOT ?? process.cwd();

interface GoldenCase {
  kind: RequestKind;
  params: RequestParams[RequestKind];
  key: string;
}

const golden = JSON.parse(readFileSync(resolve(jsRoot, "../tests/data/request_keys.json"), "utf8")) as {
  cases: GoldenCase[];
};

describe("request keys", () => {
  it("builds every golden key", () => {
    assert.ok(golden.cases.length > 0);
    for (const c of golden.cases) {
      assert.ok((REQUEST_KINDS as readonly string[]).includes(c.kind), c.kind);
      assert.equal(requestKey(c.kind, c.params), c.key, JSON.stringify(c));
    }
  });
  it("has golden cases for every kind, and a class-agnostic CAM and metrics key", () => {
    assert.deepEqual(new Set(golden.cases.map((c) => c.kind)), new Set(Object.keys(KEYS)));
    for (const kind of ["cam", "metrics"]) {
      assert.ok(golden.cases.some((c) => c.kind === kind && c.key.split("|")[3] === "*"), kind);
    }
  });
  it("reads the image version of a key", () => {
    assert.equal(keyVersion("features|3|layer1"), 3);
    assert.equal(keyVersion("cam|2|EigenCAM|*|features.11"), 2);
    assert.equal(keyVersion("kernels|features.0"), null);
    assert.equal(keyVersion("actmax|features.0|1,5"), null);
  });
});
