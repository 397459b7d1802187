import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { formatCount, formatRange, formatShape, formatValue } from "../src/format";

describe("formatValue", () => {
  it("gives 4 significant digits in fixed notation for ordinary magnitudes", () => {
    assert.equal(formatValue(1), "1");
    assert.equal(formatValue(1.5), "1.5");
    assert.equal(formatValue(0.1234567), "0.1235");
    assert.equal(formatValue(123.456), "123.5");
    assert.equal(formatValue(1234.56), "1235");
    assert.equal(formatValue(-3.14159), "-3.142");
    assert.equal(formatValue(0.5), "0.5");
    assert.equal(formatValue(100), "100");
    assert.equal(formatValue(0.0001234), "0.0001234");
    assert.equal(formatValue(0.0001), "0.0001");
  });

  it("switches to exponent notation for very small and large values", () => {
    assert.equal(formatValue(12345.6), "1.235e+04");
    assert.equal(formatValue(0.00001234), "1.234e-05");
    assert.equal(formatValue(1e-7), "1e-07");
    assert.equal(formatValue(-2.5e-9), "-2.5e-09");
    assert.equal(formatValue(3e7), "3e+07");
    assert.equal(formatValue(1e21), "1e+21");
    assert.equal(formatValue(1.23e100), "1.23e+100");
  });

  it("decides the notation after rounding", () => {
    assert.equal(formatValue(9999.6), "1e+04");
    assert.equal(formatValue(9.99996e-5), "0.0001");
    assert.equal(formatValue(999.96), "1000");
  });

  it("handles zero and special values", () => {
    assert.equal(formatValue(0), "0");
    assert.equal(formatValue(-0), "0");
    assert.equal(formatValue(Number.NaN), "NaN");
    assert.equal(formatValue(Infinity), "∞");
    assert.equal(formatValue(-Infinity), "-∞");
  });

  it("takes other digit counts", () => {
    assert.equal(formatValue(0.056789, 2), "0.057");
    assert.equal(formatValue(123.456, 2), "1.2e+02");
    assert.equal(formatValue(Math.PI, 6), "3.14159");
    assert.equal(formatValue(Math.PI, 1), "3");
  });
});

describe("formatShape, formatRange, formatCount", () => {
  it("formatShape joins with ×", () => {
    assert.equal(formatShape([64, 112, 112]), "64 × 112 × 112");
    assert.equal(formatShape([3]), "3");
    assert.equal(formatShape([]), "");
  });

  it("formatRange", () => {
    assert.equal(formatRange(-1.5, 2), "[-1.5, 2]");
    assert.equal(formatRange(1e-6, 12345.6), "[1e-06, 1.235e+04]");
  });

  it("formatCount groups thousands with thin spaces", () => {
    assert.equal(formatCount(1234567), "1\u2009234\u2009567");
    assert.equal(formatCount(999), "999");
    assert.equal(formatCount(-4096), "-4\u2009096");
    assert.equal(formatCount(0), "0");
  });
});
