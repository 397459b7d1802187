/**
 * Checks of the values in messages from Python: each throws a PayloadError
 * naming the field and what was expected.
 *
 * Pure module: no DOM access.
 */

import { PayloadError } from "./decode";

export type Rec = Record<string, unknown>;

export function record(value: unknown, what: string): Rec {
  if (value === null || typeof value !== "object" || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new PayloadError(`${what}: expected a dict`);
  }
  return value as Rec;
}

export function text(r: Rec, name: string, what: string): string {
  const v = r[name];
  if (typeof v !== "string") throw new PayloadError(`${what}: ${name} must be a string`);
  return v;
}

export function optionalText(r: Rec, name: string, what: string): string | undefined {
  return r[name] === undefined || r[name] === null ? undefined : text(r, name, what);
}

export function finite(r: Rec, name: string, what: string): number {
  const v = r[name];
  if (typeof v !== "number" || !Number.isFinite(v)) throw new PayloadError(`${what}: ${name} must be a number`);
  return v;
}

export function numbers(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((n) => typeof n === "number" && Number.isInteger(n) && n >= 0)) {
    throw new PayloadError(`${what}: expected a list of non-negative integers, got ${JSON.stringify(value)}`);
  }
  return value as number[];
}

/** A list of finite numbers. */
export function finiteNumbers(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((n) => typeof n === "number" && Number.isFinite(n))) {
    throw new PayloadError(`${what}: expected a list of finite numbers, got ${JSON.stringify(value)}`);
  }
  return value as number[];
}

/** A list of integers (of any sign). */
export function integers(value: unknown, what: string): number[] {
  if (!Array.isArray(value) || !value.every((n) => typeof n === "number" && Number.isInteger(n))) {
    throw new PayloadError(`${what}: expected a list of integers, got ${JSON.stringify(value)}`);
  }
  return value as number[];
}
