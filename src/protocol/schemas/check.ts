/**
 * Validation against the wire schemas (JSON Schema built with TypeBox, compiled once by Ajv and
 * cached): a value that does not fit becomes a typed `KlError` naming the first offending field in
 * words a person understands ("hello.id must be at most 254 characters", "frame.extra is not an
 * allowed field"). No coercion, no defaults, nothing removed: a value is accepted as it is or refused.
 * Runs in Node and in browsers (no Node built-ins). Ajv compiles validators to code; where a page's
 * Content-Security-Policy forbids that (no 'unsafe-eval', as on the dashboard), the same schemas are
 * checked by TypeBox's interpreter instead: the same verdicts and messages, except that it counts
 * string lengths in code points, so a string of astral characters may be up to twice as long there.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { Static, TSchema } from 'typebox';
import { Compile } from 'typebox/compile';
import { type ErrorCode, KlError } from '../errors.js';

const options = {
  // Accepted as is or refused: never coerced, defaulted or stripped.
  coerceTypes: false,
  useDefaults: false,
  removeAdditional: false,
  // Errors carry their schema, so a message can say "between 0 and 10".
  verbose: true,
  strict: true,
  // String limits count UTF-16 code units (`.length`, constant time) rather than code points, which
  // Ajv counts by walking the string: 1 ms for each 130 KB frame on the bulk path. Stricter, never laxer.
  unicode: false,
  // Ajv notes the option above as deprecated on every instance; anything else it says is passed on.
  logger: {
    log: (...args: unknown[]) => console.log(...args),
    warn: (...args: unknown[]) => {
      if (!String(args[0]).startsWith('DEPRECATED: option unicode')) console.warn(...args);
    },
    error: (...args: unknown[]) => console.error(...args),
  },
} as const;

/** A compiled check: whether a value fits, and if not, why (errors in Ajv's form). */
interface Checker {
  (value: unknown): boolean;
  errors(value: unknown): ErrorObject[];
}

let firstError: Ajv | undefined;
let everyError: Ajv | undefined;
const cache = new WeakMap<object, Checker>();
const cacheAll = new WeakMap<object, ValidateFunction>();

/** Whether code may be generated at run time (a Content-Security-Policy without 'unsafe-eval' forbids it). */
const canGenerateCode = (() => {
  try {
    return new Function('return true')() === true;
  } catch {
    return false;
  }
})();

/** Which engine checks values here: `ajv` (compiled code) or `typebox` (interpreted, CSP-safe). */
export const VALIDATION_ENGINE: 'ajv' | 'typebox' = canGenerateCode ? 'ajv' : 'typebox';

function ajvChecker(schema: TSchema): Checker {
  firstError ??= new Ajv({ ...options, allErrors: false });
  const v = firstError.compile(schema);
  const checker = (value: unknown) => v(value) === true;
  checker.errors = (value: unknown) => (v(value) ? [] : [...(v.errors ?? [])]);
  return checker;
}

/** TypeBox's interpreter, its errors put in Ajv's form (its schemaPath names the schema object itself). */
function typeboxChecker(schema: TSchema): Checker {
  const v = Compile(schema);
  const checker = (value: unknown) => v.Check(value);
  checker.errors = (value: unknown) =>
    v
      .Errors(value)
      .filter((e) => e.keyword !== 'boolean')
      .map((e) => {
        const p = e.params as Record<string, unknown>;
        const params =
          e.keyword === 'additionalProperties'
            ? { additionalProperty: (p.additionalProperties as string[])[0] }
            : e.keyword === 'required'
              ? { missingProperty: (p.requiredProperties as string[])[0] }
              : p;
        const parentSchema = at(schema, e.schemaPath);
        return {
          keyword: e.keyword,
          instancePath: e.instancePath,
          schemaPath: e.keyword === 'anyOf' ? e.schemaPath : `${e.schemaPath}/${e.keyword}`,
          params,
          parentSchema,
          message: e.message,
        } as ErrorObject;
      })
      .concat(unionError(schema, v.Errors(value)));
  return checker;
}

/**
 * Ajv reports a failed union (`anyOf`) after its branches' errors, TypeBox not always: the union's
 * error, where it is missing, at the shallowest place a branch failed (where the union applies).
 */
function unionError(
  schema: TSchema,
  errors: readonly { keyword: string; schemaPath: string; instancePath: string }[],
): ErrorObject[] {
  if (errors.some((e) => e.keyword === 'anyOf')) return [];
  const inUnion = errors.filter((e) => /\/anyOf\/\d+/.test(e.schemaPath));
  if (inUnion.length === 0) return [];
  const where = inUnion.reduce((a, b) =>
    b.instancePath.length < a.instancePath.length ? b : a,
  ).instancePath;
  const path = inUnion[0]!.schemaPath.replace(/\/anyOf\/\d+.*$/, '');
  return [
    {
      keyword: 'anyOf',
      instancePath: where,
      schemaPath: path,
      params: {},
      parentSchema: at(schema, path),
    } as ErrorObject,
  ];
}

/** The schema object a JSON pointer ("#/properties/id") names inside `root`. */
function at(root: unknown, pointer: string): Record<string, unknown> {
  let node = root as Record<string, unknown> | undefined;
  for (const part of pointer.replace(/^#\/?/, '').split('/').filter(Boolean))
    node = node?.[part.replace(/~1/g, '/').replace(/~0/g, '~')] as Record<string, unknown> | undefined;
  return node ?? {};
}

function checkerOf(schema: TSchema): Checker {
  let c = cache.get(schema);
  if (!c) {
    c = canGenerateCode ? ajvChecker(schema) : typeboxChecker(schema);
    cache.set(schema, c);
  }
  return c;
}

/**
 * Checks `value` against `schema`; returns it typed as the schema's static type.
 * @param name what the value is, prefixed to field paths in the message (e.g. "hello").
 * @throws KlError `code`, naming the first offending field.
 */
export function check<S extends TSchema>(schema: S, value: unknown, code: ErrorCode, name = ''): Static<S> {
  const c = checkerOf(schema);
  if (c(value)) return value as Static<S>;
  const { field, text } = describe(c.errors(value), name);
  throw new KlError(code, `${field || 'value'} ${text}`, field ? { field } : undefined);
}

/** Whether `value` fits `schema` (no error thrown). */
export function fits<S extends TSchema>(schema: S, value: unknown): value is Static<S> {
  return checkerOf(schema)(value);
}

/**
 * Every problem of `value` against `schema`, one line each in Ajv's words with the field's path
 * ("/port must be integer"); empty when it fits. For configuration files, where a person fixes all at once.
 */
export function problemsOf(schema: TSchema, value: unknown): string[] {
  let v = cacheAll.get(schema);
  if (!v) {
    everyError ??= new Ajv({ ...options, allErrors: true });
    v = everyError.compile(schema);
    cacheAll.set(schema, v);
  }
  if (v(value)) return [];
  return (v.errors ?? []).map(
    (e) =>
      `${e.instancePath || '(top level)'} ${e.message}${'additionalProperty' in e.params ? `: ${e.params.additionalProperty}` : ''}`,
  );
}

/** A field path from a JSON pointer: "/signatures/0/sig" under "checkpoint" → "checkpoint.signatures[0].sig". */
function fieldOf(name: string, pointer: string): string {
  let path = name;
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path = /^[0-9]+$/.test(part) ? `${path}[${part}]` : path ? `${path}.${part}` : part;
  }
  return path;
}

const TYPE_WORDS: Record<string, string> = {
  object: 'must be an object',
  array: 'must be an array',
  string: 'must be a string',
  integer: 'must be an integer',
  number: 'must be a number',
  boolean: 'must be true or false',
  null: 'must be null',
};

/** The outermost union a schema path runs through ("#/properties/x/anyOf/1/type" → "#/properties/x/anyOf/1"). */
const BRANCH = /^(.*?\/anyOf\/\d+)/;

/**
 * The error to report. Inside a union (`anyOf`), each branch's first error is weighed: one deeper than
 * the union (its value was the right kind, a field of it was wrong) tells the most; otherwise no
 * branch came close, and the union itself is reported.
 */
function pick(errors: ErrorObject[]): ErrorObject | undefined {
  const first = errors[0];
  if (!first || !BRANCH.test(first.schemaPath)) return first;
  const firsts = new Map<string, ErrorObject>();
  for (const e of errors) {
    const branch = BRANCH.exec(e.schemaPath)?.[1];
    if (branch && !firsts.has(branch)) firsts.set(branch, e);
  }
  const union = errors.find((e) => e.keyword === 'anyOf');
  const deepest = [...firsts.values()].reduce((a, b) =>
    b.instancePath.length > a.instancePath.length ? b : a,
  );
  return union && deepest.instancePath.length <= union.instancePath.length ? union : deepest;
}

function describe(errors: ErrorObject[], name: string): { field: string; text: string } {
  const e = pick(errors);
  if (!e) return { field: name, text: 'is not valid' };
  const field = fieldOf(name, e.instancePath);
  const p = e.params as Record<string, unknown>;
  const parent = (e.parentSchema ?? {}) as Record<string, unknown>;
  const join = (key: unknown) => (field ? `${field}.${String(key)}` : String(key));
  switch (e.keyword) {
    case 'additionalProperties':
      return { field: join(p.additionalProperty), text: 'is not an allowed field' };
    case 'required':
      return { field: join(p.missingProperty), text: 'is required' };
    case 'type': {
      const t = Array.isArray(p.type) ? String(p.type[0]) : String(p.type);
      return { field, text: TYPE_WORDS[t] ?? `must be of type ${t}` };
    }
    case 'maxLength':
      return { field, text: `must be at most ${String(p.limit)} characters` };
    case 'minLength':
      return { field, text: `must be at least ${String(p.limit)} characters` };
    case 'pattern':
      return { field, text: 'has the wrong format' };
    case 'const':
      return { field, text: `must be ${JSON.stringify(p.allowedValue)}` };
    case 'enum':
      return { field, text: `must be one of ${(p.allowedValues as unknown[]).join(', ')}` };
    case 'minimum':
    case 'maximum':
    case 'exclusiveMinimum':
    case 'exclusiveMaximum': {
      const lo = parent.minimum ?? parent.exclusiveMinimum;
      const hi = parent.maximum ?? parent.exclusiveMaximum;
      if (lo !== undefined && hi !== undefined)
        return { field, text: `must be between ${String(lo)} and ${String(hi)}` };
      return {
        field,
        text: `must be ${e.keyword.endsWith('inimum') ? 'at least' : 'at most'} ${String(p.limit)}`,
      };
    }
    case 'maxItems':
      return { field, text: `must have at most ${String(p.limit)} items` };
    case 'minItems':
      return { field, text: `must have at least ${String(p.limit)} items` };
    case 'maxProperties':
      return { field, text: `must have at most ${String(p.limit)} entries` };
    case 'anyOf':
      return {
        field,
        text: typeof parent.description === 'string' ? `must be ${parent.description}` : 'has the wrong type',
      };
    default:
      return { field, text: 'is not valid' };
  }
}
