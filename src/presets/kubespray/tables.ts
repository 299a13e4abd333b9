// Kubespray's tables read as data: roles/kubespray_defaults of a checkout and
// the inventory's vars files, layered as Ansible does, each variable
// evaluated lazily (only what the downloads need) with the Jinja subset in
// jinja.ts. YAML keeps key order (maps stay Maps) and every number-looking
// scalar a string: Kubespray means "1.35" and "1.17" as versions, not floats.
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Tags } from 'yaml';
import { readRegular } from '../../fsx/safe.js';
import { renderTemplate, TemplateError, Undef, type Resolver, type Value, type Where } from './jinja.js';

/** The tables Kubespray v2.28 and later keep in roles/kubespray_defaults, in Ansible's order (defaults, then vars). */
export const DEFAULTS_FILES = ['roles/kubespray_defaults/defaults/main/download.yml', 'roles/kubespray_defaults/defaults/main/main.yml'];
export const VARS_FILES = ['roles/kubespray_defaults/vars/main/checksums.yml', 'roles/kubespray_defaults/vars/main/main.yml'];

const TABLE_BOUNDS = { maxBytes: 16 * 1024 * 1024 };

export interface Definition {
  readonly value: Value;
  readonly file: string;
  readonly line: number;
}

/** A problem in a table or vars file, at its line. */
export class TableError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    message: string,
  ) {
    super(message);
    this.name = 'TableError';
  }
}

/** YAML 1.2 core without int and float: a version stays the string it was written as. */
function noNumbers(tags: Tags): Tags {
  return tags.filter((t) => typeof t === 'string' || (t.tag !== 'tag:yaml.org,2002:int' && t.tag !== 'tag:yaml.org,2002:float'));
}

/** Reads one YAML vars file: its top-level variables with the line each is defined at. */
export async function readVarsFile(abs: string, display: string): Promise<Map<string, Definition>> {
  let text: string;
  try {
    text = (await readRegular(abs, { ...TABLE_BOUNDS, follow: true })).toString('utf8');
  } catch (err) {
    throw new TableError(display, 1, `cannot read it: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const lines = new LineCounter();
  const doc = parseDocument(text, { schema: 'core', customTags: noNumbers, lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  const err = doc.errors[0];
  if (err) throw new TableError(display, lines.linePos(err.pos[0]).line, `invalid YAML: ${err.message.split('\n')[0] ?? ''}`);
  const out = new Map<string, Definition>();
  // A vars file of comments only (Kubespray's sample offline.yml) is an empty map.
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return out;
  if (!isMap(doc.contents)) throw new TableError(display, 1, 'expected a map of variables');
  const values = doc.toJS({ mapAsMap: true, maxAliasCount: 100 }) as Map<unknown, Value>;
  for (const pair of doc.contents.items) {
    const line = lines.linePos(isScalar(pair.key) ? (pair.key.range?.[0] ?? 0) : 0).line;
    if (!isScalar(pair.key) || typeof pair.key.value !== 'string') throw new TableError(display, line, 'a variable name must be a string');
    out.set(pair.key.value, { value: values.get(pair.key.value) ?? null, file: display, line });
  }
  return out;
}

export interface ScopeOptions {
  /** The checkout of Kubespray, absolute. */
  source: string;
  /** The inventory's vars files, absolute, in order (a later one wins). */
  inventory: { abs: string; display: string }[];
  /** Extra variables (like ansible-playbook -e): win over everything. */
  extra: Record<string, string>;
  /** Facts of the host being prepared (ansible_architecture, ansible_system). */
  facts: Record<string, string>;
  /** How the checkout's files are named in messages. */
  display: (rel: string) => string;
}

/** The layered variables Kubespray sees, loaded once and shared by every arch. */
export interface Tables {
  readonly layers: Map<string, Definition>[];
}

export async function loadTables(opts: Omit<ScopeOptions, 'extra' | 'facts'>): Promise<Tables> {
  const read = (rel: string) => readVarsFile(path.join(opts.source, rel), opts.display(rel));
  const defaults = await Promise.all(DEFAULTS_FILES.map(read));
  const inventory = await Promise.all(opts.inventory.map((f) => readVarsFile(f.abs, f.display)));
  const vars = await Promise.all(VARS_FILES.map(read));
  // Ansible's precedence: role defaults < inventory group_vars < role vars.
  return { layers: [...defaults, ...inventory, ...vars] };
}

/** One host's view of the variables: lazily evaluated, each at most once. */
export class Scope implements Resolver {
  private readonly defs = new Map<string, Definition>();
  private readonly done = new Map<string, Value>();
  private readonly evaluating: string[] = [];

  constructor(tables: Tables, facts: Record<string, string>, extra: Record<string, string>) {
    for (const [k, v] of Object.entries(facts)) this.defs.set(k, { value: v, file: '(facts)', line: 0 });
    for (const layer of tables.layers) for (const [k, d] of layer) this.defs.set(k, d);
    for (const [k, v] of Object.entries(extra)) this.defs.set(k, { value: v, file: '(spec.kubespray)', line: 0 });
  }

  has(name: string): boolean {
    return this.defs.has(name);
  }

  definition(name: string): Definition | undefined {
    return this.defs.get(name);
  }

  lookup(name: string): Value {
    if (this.done.has(name)) return this.done.get(name) as Value;
    const def = this.defs.get(name);
    if (!def) return new Undef(name);
    if (this.evaluating.includes(name)) {
      throw new TemplateError({ variable: name, file: def.file, line: def.line }, `refers to itself through ${[...this.evaluating.slice(this.evaluating.indexOf(name)), name].join(' → ')}`);
    }
    this.evaluating.push(name);
    try {
      const v = this.render(def.value, { variable: name, file: def.file, line: def.line });
      this.done.set(name, v);
      return v;
    } finally {
      this.evaluating.pop();
    }
  }

  /** Strings are rendered; maps and lists stay raw and are rendered entry by entry as they are reached. */
  render(raw: Value, where: Where): Value {
    return typeof raw === 'string' ? renderTemplate(raw, where, this) : raw;
  }

  /** Evaluates `raw` (a string of a table, e.g. a downloads entry's field) as belonging to `where`. */
  evaluate(raw: Value, where: Where): Value {
    return this.render(raw, where);
  }
}
