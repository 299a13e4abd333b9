// Structural validation against the published JSON Schema
// (manifests/airlock.schema.json), with ajv's errors turned into messages
// that say what to write instead. The schema is compiled ahead of time
// (scripts/gen-validator.ts, npm run gen): no ajv, no compile at start.
import type { ErrorObject } from 'ajv';
import type { PathSegment, Problem } from './problems.js';
import type { YamlSource } from './source.js';
import { formatPath } from './problems.js';
import generated from './validate.generated.js';
import { printable } from '../util/printable.js';

/** What the schema's definitions/line refuses: C0, DEL, C1, and the separators PyYAML reads as line breaks. */
// eslint-disable-next-line no-control-regex -- finding control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/** An ajv validator, as scripts/gen-validator.ts generates one. */
export interface ValidateFunction {
  (data: unknown): boolean;
  errors?: ErrorObject[] | null;
}

const manifestValidator = generated as ValidateFunction;

type SchemaNode = { 'x-hint'?: string; properties?: Record<string, SchemaNode>; enum?: unknown[]; const?: unknown };

/**
 * Validates `data` (the manifest after variable substitution, or another YAML
 * document airlock reads with its own generated `validate`, such as a
 * signature policy); positions come from `source`.
 */
export function validateSchema(data: unknown, source: YamlSource, validate: ValidateFunction = manifestValidator): Problem[] {
  if (validate(data)) return [];
  const problems: Problem[] = [];
  const seen = new Set<string>();
  for (const err of validate.errors ?? []) {
    // if/then/else reports the branch's own errors plus a summary we do not need.
    if (err.keyword === 'if') continue;
    const path = pointerToPath(err.instancePath, data);
    const problem = toProblem(err, path, source);
    const key = `${problem.line}:${problem.col}:${problem.path}:${problem.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push(problem);
    }
  }
  return problems;
}

function toProblem(err: ErrorObject, path: PathSegment[], source: YamlSource): Problem {
  const parent = (err.parentSchema ?? {}) as SchemaNode;
  const hint = parent['x-hint'];
  const withHint = (msg: string, h = hint) => (h ? `${msg}; ${h}` : msg);
  switch (err.keyword) {
    case 'additionalProperties': {
      const key = String((err.params as { additionalProperty: string }).additionalProperty);
      const allowed = Object.keys(parent.properties ?? {});
      const guess = closest(key, allowed);
      const pos = source.positionOfKey(path, key);
      const msg = allowed.length
        ? `unknown key "${key}"${guess ? `; did you mean "${guess}"?` : ''} (allowed: ${allowed.join(', ')})`
        : `unknown key "${key}"`;
      return { file: source.display, ...pos, path: formatPath([...path, key]), message: msg };
    }
    case 'required': {
      const missing = String((err.params as { missingProperty: string }).missingProperty);
      const sub = parent.properties?.[missing]?.['x-hint'];
      return source.problemAt(path, withHint(`missing required key "${missing}"`, sub ?? hint));
    }
    case 'propertyNames': {
      const name = String((err.params as { propertyName: string }).propertyName);
      const pos = source.positionOfKey(path, name);
      return { file: source.display, ...pos, path: formatPath([...path, name]), message: withHint(`invalid name "${name}"`) };
    }
    case 'type': {
      const want = String((err.params as { type: string | string[] }).type).replace(',', ' or ');
      return source.problemAt(path, withHint(`must be ${article(want)}, not ${describe(err.data)}`));
    }
    case 'const':
      return source.problemAt(path, withHint(`must be ${JSON.stringify(parent.const)}, not ${describe(err.data)}`));
    case 'enum':
      return source.problemAt(path, withHint(`must be one of ${(parent.enum ?? []).map((v) => JSON.stringify(v)).join(', ')}, not ${describe(err.data)}`));
    case 'pattern': {
      // The one-line rule (definitions/line) says which character and where; other patterns show the value.
      const control = typeof err.data === 'string' ? CONTROL.exec(err.data) : null;
      if (control) return source.problemAt(path, withHint(`contains the control character ${printable(control[0])} at character ${control.index + 1}`));
      return source.problemAt(path, withHint(`${describe(err.data)} is not valid`));
    }
    case 'minItems':
      return source.problemAt(path, withHint('must not be empty'));
    case 'minLength':
      return source.problemAt(path, withHint('must not be empty'));
    case 'maxLength':
      return source.problemAt(path, withHint(`is too long (${err.message ?? ''})`));
    default:
      return source.problemAt(path, withHint(err.message ?? 'is invalid'));
  }
}

/** JSON pointer → path, with array indexes as numbers (as the YAML document wants them). */
function pointerToPath(pointer: string, data: unknown): PathSegment[] {
  if (pointer === '') return [];
  const path: PathSegment[] = [];
  let cur: unknown = data;
  for (const raw of pointer.slice(1).split('/')) {
    const seg = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(cur)) {
      const i = Number(seg);
      path.push(i);
      cur = cur[i];
    } else {
      path.push(seg);
      cur = cur && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
    }
  }
  return path;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'empty';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a map';
  if (typeof value === 'string') return JSON.stringify(value);
  return `${typeof value} ${String(value)}`;
}

function article(type: string): string {
  const names: Record<string, string> = { object: 'a map', array: 'a list', string: 'a string', boolean: 'true or false', integer: 'an integer', number: 'a number' };
  return type
    .split(' or ')
    .map((t) => names[t] ?? t)
    .join(' or ');
}

/** The allowed key nearest to a misspelt one (edit distance ≤ 2, or same letters ignoring case). */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : editDistance(word, c);
    if (d < bestDist) {
      best = c;
      bestDist = d;
    }
  }
  return bestDist <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = row[j] ?? 0;
      row[j] = Math.min((row[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return row[b.length] ?? 0;
}
