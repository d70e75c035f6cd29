/**
 * A small declarative shape checker for values that arrive from outside (transactions, proofs,
 * receipts). A shape lists every allowed field; unknown fields, wrong types, over-long strings and
 * over-long arrays are refused with a typed error that names the field. Routes use JSON Schema
 * (Fastify); this is the same idea for data that does not come through a route.
 */
import { type ErrorCode, KlError } from './errors.js';

/** The shape of one field. */
export type FieldShape =
  | {
      type: 'string';
      max: number;
      min?: number;
      pattern?: RegExp;
      enum?: readonly string[];
      optional?: boolean;
    }
  | { type: 'integer'; min: number; max: number; optional?: boolean }
  | { type: 'boolean'; optional?: boolean }
  | { type: 'object'; fields: ObjectShape; optional?: boolean }
  | { type: 'array'; items: FieldShape; maxItems: number; minItems?: number; optional?: boolean }
  | { type: 'flat-record'; maxEntries: number; maxValueLength: number; optional?: boolean };

/** The shape of an object: its allowed fields. */
export type ObjectShape = Readonly<Record<string, FieldShape>>;

const KEY = /^[A-Za-z][A-Za-z0-9_]{0,39}$/;

/**
 * Checks `value` against `shape`; throws `KlError(code)` naming the first offending field.
 * Returns `value` typed as `T` for convenience (the caller states what the shape describes).
 */
export function checkShape<T>(value: unknown, shape: ObjectShape, code: ErrorCode, path = ''): T {
  checkObject(value, shape, code, path);
  return value as T;
}

function fail(code: ErrorCode, path: string, what: string): never {
  throw new KlError(code, `${path || 'value'} ${what}`, { field: path || undefined });
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function checkObject(value: unknown, shape: ObjectShape, code: ErrorCode, path: string): void {
  if (!isPlainObject(value)) fail(code, path, 'must be an object');
  for (const key of Object.keys(value)) {
    if (!Object.hasOwn(shape, key)) fail(code, join(path, key), 'is not an allowed field');
  }
  for (const [key, field] of Object.entries(shape)) {
    const v = value[key];
    if (v === undefined) {
      if (!field.optional) fail(code, join(path, key), 'is required');
      continue;
    }
    checkField(v, field, code, join(path, key));
  }
}

function checkField(v: unknown, field: FieldShape, code: ErrorCode, path: string): void {
  switch (field.type) {
    case 'string':
      if (typeof v !== 'string') fail(code, path, 'must be a string');
      if (v.length > field.max) fail(code, path, `must be at most ${field.max} characters`);
      if (v.length < (field.min ?? 0)) fail(code, path, `must be at least ${field.min} characters`);
      if (field.pattern && !field.pattern.test(v)) fail(code, path, 'has the wrong format');
      if (field.enum && !field.enum.includes(v)) fail(code, path, `must be one of ${field.enum.join(', ')}`);
      return;
    case 'integer':
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) fail(code, path, 'must be an integer');
      if (v < field.min || v > field.max) fail(code, path, `must be between ${field.min} and ${field.max}`);
      return;
    case 'boolean':
      if (typeof v !== 'boolean') fail(code, path, 'must be true or false');
      return;
    case 'object':
      checkObject(v, field.fields, code, path);
      return;
    case 'array':
      if (!Array.isArray(v)) fail(code, path, 'must be an array');
      if (v.length > field.maxItems) fail(code, path, `must have at most ${field.maxItems} items`);
      if (v.length < (field.minItems ?? 0)) fail(code, path, `must have at least ${field.minItems} items`);
      v.forEach((item, i) => {
        checkField(item, field.items, code, `${path}[${i}]`);
      });
      return;
    case 'flat-record': {
      if (!isPlainObject(v)) fail(code, path, 'must be an object');
      const entries = Object.entries(v);
      if (entries.length > field.maxEntries)
        fail(code, path, `must have at most ${field.maxEntries} entries`);
      for (const [k, item] of entries) {
        if (!KEY.test(k)) fail(code, join(path, k), 'is not an acceptable key');
        const ok =
          (typeof item === 'string' && item.length <= field.maxValueLength) ||
          (typeof item === 'number' && Number.isSafeInteger(item)) ||
          typeof item === 'boolean';
        if (!ok) fail(code, join(path, k), `must be a short string, an integer or a boolean`);
      }
      return;
    }
  }
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}
