// From a signature policy file (SPEC §9) to a Policy: parse with positions,
// validate against manifests/policy.schema.json, then check what the schema
// cannot (one identity a rule, key names, patterns, issuers, regular
// expressions) and read the files it names (keys, trusted root), relative to
// the policy. Every problem is collected and reported together.
import path from 'node:path';
import { READ_BOUNDS, readRegular, type ReadBound } from '../fsx/safe.js';
import { displayPath } from '../manifest/load.js';
import { formatPath, formatProblem, sortProblems, type PathSegment, type Problem } from '../manifest/problems.js';
import { closest, validateSchema, type ValidateFunction } from '../manifest/schema.js';
import { YamlSource } from '../manifest/source.js';
import { sha256Digest } from '../oci/digest.js';
import { compilePattern, type RepositoryPattern } from './glob.js';
import { parsePublicKey } from './keys.js';
import { PolicyError } from './problems.js';
import { parseTrustedRoot } from './trustedroot.js';
import type { DefaultMode, KeylessIdentity, KeyIdentity, Policy, PolicyKey, PolicyRule, PolicySource, RuleMode, TrustedRoot } from './types.js';
import generated from './validate.generated.js';

const validatePolicy = generated as ValidateFunction;

/**
 * What applies to an image no rule matches, when the policy does not say.
 * enforce: a policy is written to make sure of what is carried, and an image
 * nobody wrote a rule for is one nobody decided to trust; refusing it is what
 * an auditor expects of "a policy is in force", and the build names it so a
 * rule (or `default: warn` / `skip`, written down and reviewable) can be
 * added. Falling open silently would let a new image in unchecked.
 */
export const DEFAULT_MODE: DefaultMode = 'enforce';

export interface LoadPolicyOptions {
  /** `--trusted-root FILE` given on the command line: used instead of the policy's `trustedRoot`. */
  trustedRoot?: string;
}

/**
 * Where the files a policy names (keys, trusted root) are read from: beside it
 * on disk, or, inside, from the bundle that carried them.
 */
export interface PolicyFiles {
  /** What `rel` (as the policy writes it) leads to, read whole within `bound`; throws an Error whose message names it and says why. */
  read(rel: string, bound: ReadBound): Promise<{ file: string; bytes: Buffer }>;
}

/** The files a policy on disk names, relative to it, read as every input is (bounded, regular files only). */
export function filesBeside(policyFile: string): PolicyFiles {
  const dir = path.dirname(path.resolve(policyFile));
  return {
    async read(rel, bound) {
      const file = path.resolve(dir, rel);
      try {
        return { file, bytes: await readRegular(file, { ...bound, follow: true }) };
      } catch (err) {
        // Named as written, at the line that names it; the message says where that led.
        const shown = rel === displayPath(file) ? rel : `${rel} (${displayPath(file)})`;
        const missing = (err as NodeJS.ErrnoException).code === 'ENOENT' ? '; paths in a policy are relative to the policy file' : '';
        throw new Error(`${(err as Error).message.replace(file, shown)}${missing}`, { cause: err });
      }
    },
  };
}

/** Loads and checks a policy file. Throws PolicyError (exit 2) listing every problem. */
export async function loadPolicy(file: string, options: LoadPolicyOptions = {}): Promise<Policy> {
  const abs = path.resolve(file);
  let bytes: Buffer;
  try {
    bytes = await readRegular(abs, { ...READ_BOUNDS.policy, follow: true });
  } catch (err) {
    throw new PolicyError([{ file: displayPath(abs), line: 1, col: 1, path: '', message: `cannot read the signature policy: ${(err as Error).message}` }]);
  }
  return parsePolicy({ file: abs, display: displayPath(abs), bytes }, filesBeside(abs), options);
}

/**
 * Checks a policy already read (`file` as recorded, `display` as messages name
 * it), reading what it names through `files`: a bundle carries a policy with
 * its keys and trusted root as entries, and they are checked again inside.
 */
export async function parsePolicy(policy: { file: string; display: string; bytes: Buffer }, files: PolicyFiles, options: LoadPolicyOptions = {}): Promise<Policy> {
  const { file, display, bytes } = policy;
  const whole = (message: string) => new PolicyError([{ file: display, line: 1, col: 1, path: '', message }]);
  if (bytes.length > READ_BOUNDS.policy.max) throw whole(`is ${bytes.length} bytes, more than ${READ_BOUNDS.policy.what} may be (${READ_BOUNDS.policy.max} bytes)`);
  const { source, problems: syntax } = YamlSource.parse(display, bytes.toString('utf8'));
  if (syntax.length) throw new PolicyError(syntax);
  if (source.docs.length !== 1) {
    const where = source.docs[1] ? source.positionOfOffset(source.docs[1].range[0]) : { line: 1, col: 1 };
    throw new PolicyError([{ file: display, ...where, path: '', message: `expected exactly one YAML document, found ${source.docs.length}; keep one policy a file` }]);
  }
  const raw: unknown = source.docs[0]?.toJS({ maxAliasCount: 100 });
  if (!isObject(raw)) throw whole('the policy must be a map with apiVersion: airlock/v1, kind: SignaturePolicy and rules');
  return new Loader(file, bytes, source, raw, files, options).load();
}

class Loader {
  private readonly problems: Problem[] = [];
  private readonly warnings: string[] = [];
  private schemaPaths: string[] = [];

  constructor(
    private readonly file: string,
    private readonly bytes: Buffer,
    private readonly source: YamlSource,
    private readonly raw: Record<string, unknown>,
    private readonly files: PolicyFiles,
    private readonly options: LoadPolicyOptions,
  ) {}

  async load(): Promise<Policy> {
    const schema = validateSchema(this.raw, this.source, validatePolicy);
    this.problems.push(...schema);
    this.schemaPaths = schema.map((p) => p.path);

    const keys = await this.keys();
    const rulesRaw = Array.isArray(this.raw.rules) ? (this.raw.rules as unknown[]) : [];
    const rules = rulesRaw.map((r, i) => this.rule(r, i, keys)).filter((r): r is PolicyRule => r !== undefined);
    const trustedRoot = await this.trustedRoot(rules);

    if (this.problems.length) throw new PolicyError(sortProblems(this.problems));
    return {
      source: { file: this.file, bytes: this.bytes, sha256: sha256Digest(this.bytes) },
      rules,
      default: (this.raw.default as DefaultMode | undefined) ?? DEFAULT_MODE,
      ...(trustedRoot && { trustedRoot }),
      keys,
      warnings: this.warnings,
    };
  }

  private async keys(): Promise<Map<string, PolicyKey>> {
    const keys = new Map<string, PolicyKey>();
    if (!isObject(this.raw.keys) || !this.ok(['keys'])) return keys;
    for (const [name, rel] of Object.entries(this.raw.keys)) {
      const at = ['keys', name];
      if (typeof rel !== 'string' || !this.ok(at)) continue;
      const read = await this.read(rel, READ_BOUNDS.key, at);
      if (!read) continue;
      const parsed = parsePublicKey(read.bytes);
      if ('problem' in parsed) this.problem(at, `${rel} ${parsed.problem}`);
      else keys.set(name, { name, key: parsed.key, fingerprint: parsed.fingerprint, type: parsed.type, source: read });
    }
    return keys;
  }

  private rule(raw: unknown, index: number, keys: ReadonlyMap<string, PolicyKey>): PolicyRule | undefined {
    const at: PathSegment[] = ['rules', index];
    if (!isObject(raw) || !this.okHere(at)) return undefined;
    let sound = this.ok(at);
    const patterns: RepositoryPattern[] = [];
    const images = Array.isArray(raw.images) ? (raw.images as unknown[]) : [];
    images.forEach((text, j) => {
      if (typeof text !== 'string' || !this.ok([...at, 'images', j])) return void (sound = false);
      const compiled = compilePattern(text);
      if ('problem' in compiled) {
        this.problem([...at, 'images', j], compiled.problem);
        sound = false;
      } else patterns.push(compiled);
    });
    let identity: KeylessIdentity | KeyIdentity | undefined;
    if (raw.keyless !== undefined && raw.key !== undefined) {
      this.problem(at, 'has both keyless and key; a rule names one identity: split it into two rules, or keep one');
    } else if (raw.keyless === undefined && raw.key === undefined) {
      this.problem(at, 'names no identity; add keyless: { issuer, subject } (or subjectRegExp) or key: NAME (one of keys)');
    } else if (raw.keyless !== undefined) identity = this.keyless(raw.keyless, [...at, 'keyless']);
    else identity = this.key(raw.key, [...at, 'key'], keys);
    if (!sound || !identity) return undefined;
    return { index, images: images as string[], patterns, identity, mode: (raw.mode as RuleMode | undefined) ?? 'enforce' };
  }

  private keyless(raw: unknown, at: PathSegment[]): KeylessIdentity | undefined {
    if (!isObject(raw) || !this.okHere(at)) return undefined;
    const { issuer, subject, subjectRegExp } = raw;
    let sound = typeof issuer === 'string' && this.ok([...at, 'issuer']);
    if (typeof issuer === 'string' && sound) {
      const problem = issuerProblem(issuer);
      if (problem) {
        this.problem([...at, 'issuer'], problem);
        sound = false;
      }
    }
    if (subject !== undefined && subjectRegExp !== undefined) {
      this.problem(at, 'has both subject and subjectRegExp; keep subject (compared exactly) or subjectRegExp (must match the whole subject), not both');
      return undefined;
    }
    if (subject === undefined && subjectRegExp === undefined) {
      // A misspelt subjectRegExp has its own problem ("did you mean"), which says it better.
      if (!this.ok(at)) return undefined;
      this.problem(at, 'names no subject; add subject: IDENTITY (the certificate\'s e-mail or URI, compared exactly) or subjectRegExp: EXPRESSION');
      return undefined;
    }
    if (subject !== undefined) {
      if (typeof subject !== 'string' || !sound || !this.ok(at)) return undefined;
      return { kind: 'keyless', issuer: issuer as string, subject };
    }
    if (typeof subjectRegExp !== 'string' || !this.ok([...at, 'subjectRegExp'])) return undefined;
    let expression: RegExp;
    try {
      // Anchored here, whatever was written: a certificate for https://github.com/evil/x must not
      // pass a rule written for https://github.com/falcosecurity/ because the expression matched inside it.
      expression = new RegExp(`^(?:${subjectRegExp})$`);
    } catch (err) {
      this.problem([...at, 'subjectRegExp'], `is not a regular expression: ${(err as Error).message.replace(/^Invalid regular expression: /, '')}`);
      return undefined;
    }
    if (subjectRegExp.startsWith('^') && !subjectRegExp.endsWith('$') && !subjectRegExp.endsWith('.*')) {
      // Written as a prefix, which it is not: it matches that text alone and no real subject.
      this.warn([...at, 'subjectRegExp'], `must match the whole subject, and matches nothing longer than "${subjectRegExp}" describes; to take every subject starting so, end it with ".*"`);
    }
    if (!sound || !this.ok(at)) return undefined;
    return { kind: 'keyless', issuer: issuer as string, subjectRegExpSource: subjectRegExp, subjectRegExp: expression };
  }

  private key(raw: unknown, at: PathSegment[], keys: ReadonlyMap<string, PolicyKey>): KeyIdentity | undefined {
    if (typeof raw !== 'string' || !this.ok(at)) return undefined;
    const found = keys.get(raw);
    if (found) return { kind: 'key', name: raw, key: found.key, fingerprint: found.fingerprint };
    const declared = isObject(this.raw.keys) ? Object.keys(this.raw.keys) : [];
    // A declared key that failed to load has its own problem already.
    if (declared.includes(raw)) return undefined;
    const guess = closest(raw, declared);
    this.problem(
      at,
      `names the key "${raw}", which keys does not list` +
        (guess ? `; did you mean "${guess}"?` : declared.length ? ` (keys: ${declared.join(', ')})` : '; add it under keys: { NAME: FILE.pub }'),
    );
    return undefined;
  }

  private async trustedRoot(rules: readonly PolicyRule[]): Promise<TrustedRoot | undefined> {
    const given = this.options.trustedRoot;
    const written = typeof this.raw.trustedRoot === 'string' && this.ok(['trustedRoot']) ? this.raw.trustedRoot : undefined;
    if (given === undefined && written === undefined) {
      const keyless = rules.find((r) => r.identity.kind === 'keyless');
      if (keyless && this.raw.trustedRoot === undefined) {
        this.problem(['rules', keyless.index, 'keyless'], 'a keyless rule needs the Sigstore trusted root: add trustedRoot: trusted_root.json (relative to the policy)');
      }
      return undefined;
    }
    const read = given !== undefined ? await this.readGiven(given) : await this.read(written ?? '', READ_BOUNDS.trustedRoot, ['trustedRoot']);
    if (!read) return undefined;
    const parsed = parseTrustedRoot(read.bytes);
    if ('problems' in parsed) {
      for (const p of parsed.problems) {
        if (given !== undefined) this.problems.push({ file: displayPath(read.file), line: 1, col: 1, path: '', message: `--trusted-root ${p}` });
        else this.problem(['trustedRoot'], `${written ?? ''} ${p}`);
      }
      return undefined;
    }
    return { json: parsed.json, source: read };
  }

  /** Reads a file the policy names; a problem at `at` when it cannot be. */
  private async read(rel: string, bound: ReadBound, at: PathSegment[]): Promise<PolicySource | undefined> {
    try {
      const { file, bytes } = await this.files.read(rel, bound);
      if (bytes.length > bound.max) throw new Error(`${rel} is ${bytes.length} bytes, more than ${bound.what} may be (${bound.max} bytes)`);
      return { file, bytes, sha256: sha256Digest(bytes), written: rel };
    } catch (err) {
      this.problem(at, (err as Error).message);
      return undefined;
    }
  }

  private async readGiven(given: string): Promise<PolicySource | undefined> {
    const file = path.resolve(given);
    try {
      const bytes = await readRegular(file, { ...READ_BOUNDS.trustedRoot, follow: true });
      return { file, bytes, sha256: sha256Digest(bytes) };
    } catch (err) {
      this.problems.push({ file: displayPath(file), line: 1, col: 1, path: '', message: `--trusted-root: ${(err as Error).message}` });
      return undefined;
    }
  }

  /** True when the schema found nothing wrong at `at` itself (its type); what is inside may still be wrong. */
  private okHere(at: readonly PathSegment[]): boolean {
    const p = formatPath(at);
    return !this.schemaPaths.includes(p);
  }

  /** True when the schema found nothing wrong at `at` or inside it. */
  private ok(at: readonly PathSegment[]): boolean {
    const p = formatPath(at);
    return !this.schemaPaths.some((s) => s === p || s.startsWith(`${p}.`) || s.startsWith(`${p}[`));
  }

  private problem(at: readonly PathSegment[], message: string): void {
    this.problems.push(this.source.problemAt(at, message));
  }

  private warn(at: readonly PathSegment[], message: string): void {
    this.warnings.push(formatProblem(this.source.problemAt(at, message)));
  }
}

/** Why `issuer` is not an OIDC issuer URL a certificate can name, or undefined. */
function issuerProblem(issuer: string): string | undefined {
  let url: URL;
  try {
    url = new URL(issuer);
  } catch {
    return `"${issuer}" is not a URL; an issuer is the OIDC issuer's https:// URL, e.g. https://token.actions.githubusercontent.com`;
  }
  if (url.protocol !== 'https:') return `"${issuer}" is not an https:// URL; an issuer is the OIDC issuer's https:// URL, e.g. https://accounts.google.com`;
  if (url.username || url.password) return 'an issuer URL carries no user name or password';
  return undefined;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
