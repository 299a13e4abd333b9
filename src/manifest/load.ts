// From a manifest file to a Plan of primitive items: parse with positions,
// substitute variables, validate against the schema, check what the schema
// cannot (references, paths, checksums, included files), expand presets,
// merge duplicates. Every problem is collected and reported together.
import { access } from 'node:fs/promises';
import path from 'node:path';
import { parseReference, formatReference, isRegistryHost, ReferenceError, shownReference, type Reference } from '../oci/reference.js';
import { expandTrivy, type TrivySpec } from '../presets/trivy.js';
import { expandFalco, type FalcoSpec } from '../presets/falco.js';
import { expandOpenSearch, type OpenSearchSpec } from '../presets/opensearch.js';
import type { PresetContext } from '../presets/context.js';
import { expandKubespray, type KubesprayLanding, type KubespraySpec } from '../presets/kubespray/expand.js';
import { httpUrlProblem, redactUserinfo } from '../util/url.js';
import { READ_BOUNDS, readRegular } from '../fsx/safe.js';
import { extractImagesFromFile } from './images.js';
import { formatPath, formatProblem, ManifestError, sortProblems, type PathSegment, type Problem } from './problems.js';
import { validateSchema } from './schema.js';
import { YamlSource } from './source.js';
import { substitute } from './vars.js';
import { landingPathCollisions, landingPathProblem } from './paths.js';

export { landingPathProblem };
import type { ArtifactItem, ArtifactRole, Checksum, FileItem, ImageItem, Item, Origin, Plan, RegistrySettings } from './types.js';

export interface LoadOptions {
  /** `--set NAME=VALUE` overrides, already parsed. */
  set?: Record<string, string>;
}

/** Path as shown to the person: relative to the working directory when below it. */
export function displayPath(file: string): string {
  const rel = path.relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : file;
}

/** Loads, validates and expands a manifest. Throws ManifestError listing every problem. */
export async function loadManifest(file: string, options: LoadOptions = {}): Promise<Plan> {
  const abs = path.resolve(file);
  const display = displayPath(abs);
  let text: string;
  try {
    text = (await readRegular(abs, { ...READ_BOUNDS.manifest, follow: true })).toString('utf8');
  } catch (err) {
    throw new ManifestError([{ file: display, line: 1, col: 1, path: '', message: `cannot read the manifest: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  const { source, problems: syntax } = YamlSource.parse(display, text);
  if (syntax.length) throw new ManifestError(syntax);
  if (source.docs.length !== 1) {
    const where = source.docs[1] ? source.positionOfOffset(source.docs[1].range[0]) : { line: 1, col: 1 };
    throw new ManifestError([{ file: display, ...where, path: '', message: `expected exactly one YAML document, found ${source.docs.length}; keep one manifest a file` }]);
  }
  const raw: unknown = source.docs[0]?.toJS({ maxAliasCount: 1000 });
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ManifestError([{ file: display, line: 1, col: 1, path: '', message: 'the manifest must be a map with apiVersion, kind, metadata and spec' }]);
  }
  return new Loader(abs, source, raw as Record<string, unknown>, options).load();
}

class Loader {
  private readonly problems: Problem[] = [];
  /** `file:line:col: path: message`, for what works but should not be chosen. */
  private readonly warnings: string[] = [];
  private readonly dir: string;
  private readonly items = new Map<string, Item>();
  private schemaPaths: string[] = [];

  constructor(
    private readonly file: string,
    private readonly source: YamlSource,
    private readonly raw: Record<string, unknown>,
    private readonly options: LoadOptions,
  ) {
    this.dir = path.dirname(file);
  }

  async load(): Promise<Plan> {
    const vars = this.vars();
    const { vars: _vars, ...rest } = this.raw;
    const sub = substitute(rest, vars);
    for (const p of sub.problems) this.problem(p.path, p.message);
    // A value with an unresolved variable gets that one message, not a second one about its shape.
    const varProblems = new Set(this.problems);
    const varPaths = new Set(sub.problems.map((p) => formatPath(p.path)));
    const data: Record<string, unknown> = { ...(sub.value as Record<string, unknown>), ...(_vars !== undefined && { vars: _vars }) };

    const schemaProblems = validateSchema(data, this.source);
    this.problems.push(...schemaProblems);
    this.schemaPaths = schemaProblems.map((p) => p.path);

    const spec = (isObject(data.spec) ? data.spec : {}) as Record<string, unknown>;
    const defaultPlatforms = this.ok(['spec', 'platforms']) && Array.isArray(spec.platforms) ? (spec.platforms as string[]) : undefined;
    const registries = await this.registries(spec.registries);
    this.images(spec.images, defaultPlatforms);
    await this.imageLists(spec.imageLists, defaultPlatforms);
    await this.renderedManifests(spec.renderedManifests, defaultPlatforms);
    if (Array.isArray(spec.artifacts)) {
      spec.artifacts.forEach((ref, i) => typeof ref === 'string' && this.ok(['spec', 'artifacts', i]) && this.addRef('artifact', ref, ['spec', 'artifacts', i]));
    }
    this.files(spec.files);
    const ctx = this.presetContext();
    if (isObject(spec.trivy) && this.ok(['spec', 'trivy'])) expandTrivy(spec.trivy as TrivySpec, ctx);
    if (isObject(spec.falco) && this.ok(['spec', 'falco'])) expandFalco(spec.falco as FalcoSpec, ctx);
    if (isObject(spec.opensearch) && this.ok(['spec', 'opensearch'])) expandOpenSearch(spec.opensearch as unknown as OpenSearchSpec, ctx);
    const kubespray = isObject(spec.kubespray) && this.ok(['spec', 'kubespray']) ? (spec.kubespray as unknown as KubespraySpec) : undefined;
    const landing = kubespray ? await this.kubespray(kubespray, spec.files, defaultPlatforms) : undefined;
    this.landingCollisions();

    const problems = this.problems.filter((p) => varProblems.has(p) || !varPaths.has(p.path) || p.file !== this.source.display);
    if (problems.length) throw new ManifestError(sortProblems(problems));
    const metadata = data.metadata as { name: string; version?: string };
    return {
      file: this.file,
      name: metadata.name,
      ...(metadata.version !== undefined && { version: metadata.version }),
      ...(defaultPlatforms && { platforms: defaultPlatforms }),
      ...(spec.attached === false && { attached: false as const }),
      ...(typeof spec.policy === 'string' && { policy: path.resolve(this.dir, spec.policy) }),
      ...(this.warnings.length && { warnings: [...this.warnings] }),
      ...(kubespray && {
        kubespray: {
          version: kubespray.version,
          ...(kubespray.kubeVersion && { kubeVersion: kubespray.kubeVersion }),
          archs: kubespray.archs ?? ['amd64'],
          ...(landing && { bases: landing.bases, urls: landing.urls }),
        },
      }),
      registries,
      vars,
      items: [...this.items.values()],
    };
  }

  /** True when the schema found nothing wrong at or below `p`. */
  private ok(p: PathSegment[]): boolean {
    const prefix = formatPath(p);
    return !this.schemaPaths.some((s) => s === prefix || s.startsWith(`${prefix}.`) || s.startsWith(`${prefix}[`));
  }

  private problem(p: PathSegment[], message: string): void {
    this.problems.push(this.source.problemAt(p, message));
  }

  private origin(p: PathSegment[]): Origin {
    const pos = this.source.positionOf(p);
    return { file: this.source.display, ...pos, path: formatPath(p) };
  }

  private vars(): Record<string, string> {
    const out: Record<string, string> = {};
    if (isObject(this.raw.vars)) {
      for (const [k, v] of Object.entries(this.raw.vars)) {
        if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[k] = String(v);
      }
    }
    return { ...out, ...this.options.set };
  }

  private async registries(value: unknown): Promise<Record<string, RegistrySettings>> {
    const out: Record<string, RegistrySettings> = {};
    if (!isObject(value)) return out;
    for (const [host, settings] of Object.entries(value)) {
      const at: PathSegment[] = ['spec', 'registries', host];
      if (!isRegistryHost(host)) {
        // The key is shown without what stands before an "@" (a password, maybe), in the message and in the key path.
        const shown = redactUserinfo(host);
        this.problems.push({ ...this.source.problemAt(at, `"${shown}" is not a registry host; write host or host:port, e.g. registry.example:5000`), path: formatPath(['spec', 'registries', shown]) });
        continue;
      }
      if (!isObject(settings) || !this.ok(at)) continue;
      const s = settings as RegistrySettings;
      const entry: RegistrySettings = { ...s };
      if (s.plainHttp && (s.caFile || s.insecureSkipTLSVerify)) {
        this.problem(at, 'plainHttp contradicts caFile/insecureSkipTLSVerify (those mean HTTPS); keep one');
      }
      if (s.caFile) {
        entry.caFile = path.resolve(this.dir, s.caFile);
        if (!(await exists(entry.caFile))) this.problem([...at, 'caFile'], `file ${displayPath(entry.caFile)} does not exist; give a PEM file path relative to the manifest`);
      }
      out[host] = entry;
    }
    return out;
  }

  private images(value: unknown, defaultPlatforms: string[] | undefined): void {
    if (!Array.isArray(value)) return;
    value.forEach((entry, i) => {
      const at: PathSegment[] = ['spec', 'images', i];
      // An entry the schema refused (a control character) gets that one message, not a second about its reference.
      if (!this.ok(at)) return;
      if (typeof entry === 'string') this.addRef('image', entry, at, undefined, defaultPlatforms);
      else if (isObject(entry) && typeof entry.ref === 'string') {
        const platforms = Array.isArray(entry.platforms) && this.ok([...at, 'platforms']) ? (entry.platforms as string[]) : defaultPlatforms;
        this.addRef('image', entry.ref, [...at, 'ref'], undefined, platforms);
      }
    });
  }

  private async imageLists(value: unknown, defaultPlatforms: string[] | undefined): Promise<void> {
    if (!Array.isArray(value)) return;
    for (const [i, rel] of value.entries()) {
      if (typeof rel !== 'string') continue;
      const at: PathSegment[] = ['spec', 'imageLists', i];
      const abs = path.resolve(this.dir, rel);
      let text: string;
      try {
        text = (await readRegular(abs, { ...READ_BOUNDS.imageList, follow: true })).toString('utf8');
      } catch (err) {
        this.problem(at, `cannot read image list ${displayPath(abs)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}; give a path relative to the manifest`);
        continue;
      }
      const display = displayPath(abs);
      text.split(/\r?\n/).forEach((line, n) => {
        const hash = line.indexOf('#');
        const ref = (hash === -1 ? line : line.slice(0, hash)).trim();
        if (!ref) return;
        const col = line.indexOf(ref) + 1;
        this.addRefAt('image', ref, { file: display, line: n + 1, col, path: formatPath(at) }, undefined, defaultPlatforms);
      });
    }
  }

  private async renderedManifests(value: unknown, defaultPlatforms: string[] | undefined): Promise<void> {
    if (!Array.isArray(value)) return;
    for (const [i, rel] of value.entries()) {
      if (typeof rel !== 'string') continue;
      const at: PathSegment[] = ['spec', 'renderedManifests', i];
      const abs = path.resolve(this.dir, rel);
      if (!(await exists(abs))) {
        this.problem(at, `file ${displayPath(abs)} does not exist; give a path relative to the manifest`);
        continue;
      }
      const { images, problems } = await extractImagesFromFile(abs, displayPath(abs));
      this.problems.push(...problems.map((p) => ({ ...p, path: formatPath(at) })));
      for (const img of images) {
        this.addRefAt('image', img.value, { file: img.file, line: img.line, col: img.col, path: formatPath(at) }, undefined, defaultPlatforms);
      }
    }
  }

  private files(value: unknown): void {
    if (!Array.isArray(value)) return;
    value.forEach((entry, i) => {
      const at: PathSegment[] = ['spec', 'files', i];
      if (!isObject(entry) || !this.ok(at)) return;
      const f = entry as { url: string; path?: string; sha256?: string; sha512?: string; checksumUrl?: string };
      const url = this.httpUrl(f.url, [...at, 'url']);
      const given = [f.sha256 && 'sha256', f.sha512 && 'sha512', f.checksumUrl && 'checksumUrl'].filter(Boolean);
      if (given.length === 0) {
        this.problem(at, 'has no checksum; add sha256: <64 hex>, sha512: <128 hex> or checksumUrl: <URL of a .sha256/.sha512 file>');
        return;
      }
      if (given.length > 1) {
        this.problem(at, `has ${given.join(' and ')}; keep exactly one checksum`);
        return;
      }
      let checksum: Checksum;
      if (f.sha256) checksum = { type: 'digest', algorithm: 'sha256', hex: f.sha256.toLowerCase() };
      else if (f.sha512) checksum = { type: 'digest', algorithm: 'sha512', hex: f.sha512.toLowerCase() };
      else {
        const cu = this.httpUrl(f.checksumUrl ?? '', [...at, 'checksumUrl']);
        if (!cu) return;
        const algorithm = /\.sha512$/i.test(new URL(cu).pathname) ? 'sha512' : /\.sha256$/i.test(new URL(cu).pathname) ? 'sha256' : undefined;
        checksum = { type: 'url', url: cu, ...(algorithm && { algorithm }) };
      }
      if (!url) return;
      const landing = f.path ?? decodeURIComponent(new URL(url).pathname.split('/').pop() ?? '');
      this.addFile({ url, path: landing, checksum, role: 'file' }, f.path !== undefined ? [...at, 'path'] : at);
    });
  }

  /** spec.kubespray: Kubespray's own tables, read from the checkout and evaluated for the inventory (SPEC §12). */
  private async kubespray(spec: KubespraySpec, files: unknown, defaultPlatforms: string[] | undefined): Promise<KubesprayLanding | undefined> {
    const listed = new Set(Array.isArray(files) ? files.flatMap((f) => (isObject(f) && typeof f.url === 'string' ? [f.url] : [])) : []);
    return expandKubespray(spec, {
      origin: (p) => this.origin(p),
      problem: (p) => this.problems.push(p),
      resolve: (rel) => {
        const abs = path.resolve(this.dir, rel);
        return { abs, display: displayPath(abs) };
      },
      image: (ref, origin) => this.addRefAt('image', ref, origin, undefined, defaultPlatforms),
      file: (item, origin) => this.addFileAt(item, origin),
      listed: (url) => listed.has(url),
    });
  }

  private httpUrl(value: string, at: PathSegment[]): string | undefined {
    const problem = httpUrlProblem(value);
    if (problem) this.problem(at, problem);
    return problem ? undefined : value;
  }

  private presetContext(): PresetContext {
    return {
      origin: (p) => this.origin(p),
      problem: (p, m) => this.problem(p, m),
      warn: (p, m) => this.warnings.push(formatProblem(this.source.problemAt(p, m))),
      artifact: (ref, p, role) => this.addRef('artifact', ref, p, role),
      file: (item, p) => this.addFile({ ...item }, p),
    };
  }

  private addRef(kind: 'image' | 'artifact', ref: string, at: PathSegment[], role?: ArtifactRole, platforms?: string[]): void {
    const origin = this.origin(at);
    this.addRefAt(kind, ref, origin, role, platforms);
  }

  /** Adds an image or artifact, merging with one already declared under the same canonical reference. */
  private addRefAt(kind: 'image' | 'artifact', ref: string, origin: Origin, role?: ArtifactRole, platforms?: string[]): void {
    let reference: Reference;
    try {
      reference = parseReference(ref);
    } catch (err) {
      const reason = err instanceof ReferenceError ? err.reason : (err as Error).message;
      this.problems.push({ ...origin, message: `invalid ${kind === 'image' ? 'image' : 'OCI'} reference "${shownReference(ref)}": ${reason}` });
      return;
    }
    const canonical = formatReference(reference);
    if (ref !== canonical) origin = { ...origin, written: ref };
    const key = `ref:${canonical}`;
    const existing = this.items.get(key);
    if (!existing) {
      const item: ImageItem | ArtifactItem =
        kind === 'image'
          ? { kind, ref: canonical, reference, ...(platforms && { platforms: [...platforms] }), origins: [origin] }
          : { kind, ref: canonical, reference, ...(role && { role }), origins: [origin] };
      this.items.set(key, item);
      return;
    }
    if (existing.kind === 'file') return;
    existing.origins.push(origin);
    if (kind === 'artifact' && existing.kind === 'image') {
      // An artifact is copied whole with every platform; that covers the image too.
      this.items.set(key, { kind: 'artifact', ref: canonical, reference, ...(role && { role }), origins: existing.origins });
      return;
    }
    if (existing.kind === 'artifact') {
      if (role && existing.role && role !== existing.role) {
        const first = existing.origins[0];
        this.problems.push({ ...origin, message: `${canonical} is already declared as ${existing.role} at ${first?.file}:${first?.line}; one reference can have one role` });
      } else if (role) existing.role = role;
      return;
    }
    // Both images: all platforms wins, otherwise the union.
    if (!existing.platforms || !platforms) delete existing.platforms;
    else existing.platforms = [...new Set([...existing.platforms, ...platforms])];
  }

  private addFile(item: Omit<FileItem, 'kind' | 'origins'>, at: PathSegment[]): void {
    this.addFileAt(item, this.origin(at));
  }

  private addFileAt(item: Omit<FileItem, 'kind' | 'origins'>, origin: Origin): void {
    const bad = landingPathProblem(item.path);
    if (bad) {
      this.problems.push({ ...origin, message: `landing path "${item.path}" ${bad}; write a relative path such as tools/tool.tar.gz` });
      return;
    }
    const key = `file:${item.path}`;
    const existing = this.items.get(key);
    if (!existing) {
      this.items.set(key, { kind: 'file', ...item, origins: [origin] });
      return;
    }
    if (existing.kind !== 'file') return;
    if (existing.url === item.url && sameChecksum(existing.checksum, item.checksum)) {
      existing.origins.push(origin);
      return;
    }
    const first = existing.origins[0];
    this.problems.push({
      ...origin,
      message: `lands at files/${item.path}, where ${first?.file}:${first?.line}:${first?.col} (${first?.path}) already puts ${existing.url}${existing.url === item.url ? ' with another checksum' : ''}; give one of them another path`,
    });
  }

  /** Files that would land on each other's names, or on a name unpack and serve write themselves: both named. */
  private landingCollisions(): void {
    const files = new Map<string, FileItem>();
    for (const item of this.items.values()) if (item.kind === 'file') files.set(item.path, item);
    for (const c of landingPathCollisions([...files.keys()])) {
      const origin = files.get(c.second)?.origins[0];
      const first = c.first !== undefined ? files.get(c.first)?.origins[0] : undefined;
      if (!origin) continue;
      const other = first ? ` (files/${c.first} comes from ${first.file}:${first.line}:${first.col}, ${first.path})` : '';
      this.problems.push({ ...origin, message: `landing path "${c.second}" collides: ${c.message}${other}; give ${first ? 'one of them' : 'it'} another path` });
    }
  }
}

function sameChecksum(a: Checksum, b: Checksum): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

async function exists(p: string): Promise<boolean> {
  try {
    await access(p);
    return true;
  } catch {
    return false;
  }
}
