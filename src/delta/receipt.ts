// The receipt (SPEC §6): what a target registry and file server hold from a
// bundle after `airlock unpack … --receipt FILE`. A later delta build takes it
// as a base (what the inside already has), a delta unpack reads it to find
// where each blob is; so it is written atomically and read back as hostile
// input: every field checked for type, format and consistency, the file
// bounded in size.
//
// One entry per blob: a blob held by several images is listed once, with the
// repository of the first image in bundle.json order that holds it (its
// manifests, index children, config or layers). Unpack pushes every blob into
// every repository that needs it, so that repository really holds it, and a
// delta unpack can HEAD it there and mount it from there. (A registry answers
// for a manifest or index under /manifests/<digest>, not /blobs/<digest>: the
// receipt does not mark which entries are manifests; the bundle's graphs say.)
import { createHash } from 'node:crypto';
import { ATTACHED_KINDS, isTagSchemeTagOf, type AttachedKind, type BundleAttached, type BundleIndex } from '../bundle/format.js';
import { parseTargetRegistry, targetRepository, type Layout, type TargetName, type TargetRegistry } from '../bundle/targets.js';
import { writeAtomic } from '../fsx/atomic.js';
import { READ_BOUNDS, readRegular, UnsafeFileError, type ReadBound } from '../fsx/safe.js';
import { landingPathProblem } from '../manifest/paths.js';
import { parseReference } from '../oci/reference.js';
import { parseUntrustedJson } from '../util/json.js';
import { printable } from '../util/printable.js';

export const RECEIPT_API_VERSION = 'airlock/v1';
export const RECEIPT_KIND = 'Receipt';
/** A receipt larger than this is refused unread: even a platform's worth of images stays far below (READ_BOUNDS.receipt says by how much). */
export const MAX_RECEIPT_BYTES = READ_BOUNDS.receipt.max;

export interface ReceiptImage {
  /** The source reference, as in bundle.json. */
  ref: string;
  /** The root manifest or index digest. */
  digest: string;
  /** Where it is: `HOST[:PORT]/REPO:TAG`, or `HOST[:PORT]/REPO@DIGEST` when untagged. */
  target: string;
}

export interface ReceiptBlob {
  /** Any content-addressed object: manifest, index, config or layer. */
  digest: string;
  size: number;
  /** A repository (below the registry host) that holds it. */
  repository: string;
}

export interface ReceiptFile {
  /** Relative to the file server root. */
  path: string;
  /** Hex. */
  sha256: string;
  size: number;
}

/** A signature, attestation or SBOM pushed with an image (SPEC §9). Its manifest and blobs are in `blobs` too. */
export interface ReceiptAttached {
  /** The digest it is attached to. */
  subject: string;
  /** The attached manifest's digest. */
  digest: string;
  /** The target repository (below the registry host) it was pushed to: its image's. */
  repository: string;
  kind: AttachedKind;
  /** Tag scheme: the tag it was pushed by; absent for a referrer (pushed by digest). */
  tag?: string;
}

export interface Receipt {
  apiVersion: typeof RECEIPT_API_VERSION;
  kind: typeof RECEIPT_KIND;
  /**
   * The bundle unpacked, with the hex sha256 of the exact bytes of its
   * bundle.json; or, written by sync, which has no bundle, the manifest and
   * the time of the sync, marked `synced` and with no sha256: nothing was signed.
   */
  bundle: { name: string; version: string; created: string; sha256: string } | { name: string; version: string; created: string; synced: true };
  /** `HOST[:PORT][/PREFIX]` (trailing slashes dropped). */
  registry: string;
  layout: Layout;
  images: ReceiptImage[];
  blobs: ReceiptBlob[];
  files: ReceiptFile[];
  /** Absent from receipts of bundles without attached manifests, and from those airlock wrote before it carried them. */
  attached?: ReceiptAttached[];
}

export class ReceiptError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'ReceiptError';
  }
}

/** `HOST[:PORT][/PREFIX]` of a target registry. */
export function registryText(r: TargetRegistry): string {
  return r.prefix ? `${r.host}/${r.prefix}` : r.host;
}

/** The full pushed name of an image: `HOST/REPO:TAG`, or `HOST/REPO@DIGEST` when it has no tag. */
export function targetText(host: string, t: Pick<TargetName, 'repository' | 'tag' | 'digest'>): string {
  return `${host}/${t.repository}${t.tag !== undefined ? `:${t.tag}` : `@${t.digest}`}`;
}

export interface HeldImage {
  readonly target: TargetName;
  /** Every manifest and index of the image, the root included. */
  readonly manifests: Iterable<string>;
  /** Configs and layers. */
  readonly blobs: Iterable<string>;
}

/** An attached manifest pushed to the target (SPEC §9), with what its graph holds. */
export interface HeldAttached {
  readonly entry: BundleAttached;
  /** The target repository it was pushed to (its image's). */
  readonly repository: string;
  /** Its manifest (and, for an index, its children). */
  readonly manifests: Iterable<string>;
  /** Configs and layers. */
  readonly blobs: Iterable<string>;
}

/**
 * The receipt for a bundle whose images (`held`, in bundle.json order, one per
 * image) and files are all at the target, with the attached manifests pushed
 * (`attached`: those only; an attached entry not pushed is not in the receipt).
 */
export function makeReceipt(input: {
  bundleJson: Buffer;
  index: BundleIndex;
  registry: TargetRegistry;
  layout: Layout;
  held: readonly HeldImage[];
  attached?: readonly HeldAttached[];
  /** A delta: external blobs no held image reaches (below external manifests), where their base put them. */
  elsewhere?: ReadonlyMap<string, string>;
}): Receipt {
  const { index, registry, held } = input;
  if (held.length !== index.images.length) throw new Error(`receipt: ${held.length} images held, bundle.json lists ${index.images.length}`);
  const repositoryOf = new Map<string, string>();
  for (const h of held) for (const d of [...h.manifests, ...h.blobs]) if (!repositoryOf.has(d)) repositoryOf.set(d, h.target.repository);
  for (const a of input.attached ?? []) for (const d of [...a.manifests, ...a.blobs]) if (!repositoryOf.has(d)) repositoryOf.set(d, a.repository);
  for (const [d, repo] of input.elsewhere ?? []) if (!repositoryOf.has(d)) repositoryOf.set(d, repo);
  const blobs: ReceiptBlob[] = [];
  for (const b of index.blobs) {
    const repository = repositoryOf.get(b.digest);
    if (repository !== undefined) blobs.push({ digest: b.digest, size: b.size, repository });
  }
  const inIndex = new Set(index.blobs.map((b) => b.digest));
  const stray = [...repositoryOf.keys()].find((d) => !inIndex.has(d));
  if (stray) throw new Error(`receipt: ${stray} is held by an image but not listed in bundle.json`);
  return {
    apiVersion: RECEIPT_API_VERSION,
    kind: RECEIPT_KIND,
    bundle: { name: index.name, version: index.version, created: index.created, sha256: createHash('sha256').update(input.bundleJson).digest('hex') },
    registry: registryText(registry),
    layout: input.layout,
    images: index.images.map((img, i) => ({ ref: img.ref, digest: img.digest, target: targetText(registry.host, held[i]!.target) })),
    blobs,
    files: index.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size })),
    ...(input.attached?.length && {
      attached: input.attached.map((a) => ({ subject: a.entry.subject, digest: a.entry.digest, repository: a.repository, kind: a.entry.kind, ...(a.entry.tag !== undefined && { tag: a.entry.tag }) })),
    }),
  };
}

export function receiptText(r: Receipt): string {
  return JSON.stringify(r, null, 2) + '\n';
}

/** Writes the receipt whole or not at all (temp file, fsync, rename). */
export async function writeReceipt(file: string, r: Receipt): Promise<void> {
  await writeAtomic(file, receiptText(r));
}

/** Reads and checks a receipt file: a regular file (no FIFO, device or folder), at most MAX_RECEIPT_BYTES. */
export async function readReceipt(file: string): Promise<{ receipt: Receipt; bytes: Buffer }> {
  const bytes = await readBounded(file, READ_BOUNDS.receipt, (m) => new ReceiptError(m));
  return { receipt: parseReceipt(bytes, file), bytes };
}

/**
 * A file the user named, read whole within `bound` (links followed; a FIFO,
 * device or folder refused, never waited on); every problem is thrown as
 * `error(message)`.
 */
export async function readBounded(file: string, bound: ReadBound, error: (message: string) => Error): Promise<Buffer> {
  try {
    return await readRegular(file, { ...bound, follow: true });
  } catch (err) {
    if (err instanceof UnsafeFileError) throw error(err.message);
    throw err;
  }
}

/** Parses receipt bytes (hostile input); throws ReceiptError naming the field and the problem. */
export function parseReceipt(bytes: Buffer, file = 'receipt'): Receipt {
  if (bytes.length > MAX_RECEIPT_BYTES) throw new ReceiptError(`${printable(file)} is ${bytes.length} bytes, more than a receipt may be (${MAX_RECEIPT_BYTES}); refusing it`);
  const v = parseUntrustedJson(bytes, (problem) => new ReceiptError(`${printable(file)} ${problem}; this is not a receipt airlock wrote`));
  return checkReceipt(v, file);
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HEX = /^[a-f0-9]{64}$/;
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;
const MAX_TEXT = 1024;

/** Checks a parsed receipt; throws ReceiptError naming the first problem (`images[3].digest: …`). */
export function checkReceipt(v: unknown, file = 'receipt'): Receipt {
  const bad = (where: string, problem: string): never => {
    throw new ReceiptError(`${printable(file)}: ${printable(where)}${where ? ' ' : ''}${printable(problem)}; this is not a receipt airlock wrote`);
  };
  const obj = (x: unknown, where: string, keys: readonly string[], optional: readonly string[] = []): Record<string, unknown> => {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) return bad(where, 'is not an object');
    const o = x as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!keys.includes(k) && !optional.includes(k)) bad(where, `has an unknown field ${JSON.stringify(k).slice(0, 80)}`);
    for (const k of keys) if (!(k in o)) bad(where, `has no field "${k}"`);
    return o;
  };
  const text = (x: unknown, where: string): string => {
    if (typeof x !== 'string') return bad(where, 'is not a string');
    if (x.length > MAX_TEXT) bad(where, `is longer than ${MAX_TEXT} characters`);
    return x;
  };
  const size = (x: unknown, where: string): number => (Number.isSafeInteger(x) && (x as number) >= 0 ? (x as number) : bad(where, 'is not a size (a whole number of bytes)'));
  const digest = (x: unknown, where: string): string => {
    const d = text(x, where);
    return DIGEST.test(d) ? d : bad(where, `"${d.slice(0, 100)}" is not a sha256 digest (sha256: and 64 lowercase hex)`);
  };
  const list = (x: unknown, where: string): unknown[] => (Array.isArray(x) ? x : bad(where, 'is not a list'));

  const r = obj(v, '', ['apiVersion', 'kind', 'bundle', 'registry', 'layout', 'images', 'blobs', 'files'], ['attached']);
  if (r.apiVersion !== RECEIPT_API_VERSION) bad('apiVersion', `is ${JSON.stringify(r.apiVersion)?.slice(0, 80)}, not "${RECEIPT_API_VERSION}"`);
  if (r.kind !== RECEIPT_KIND) bad('kind', `is ${JSON.stringify(r.kind)?.slice(0, 80)}, not "${RECEIPT_KIND}"`);
  const synced = typeof r.bundle === 'object' && r.bundle !== null && 'synced' in r.bundle;
  const b = obj(r.bundle, 'bundle', ['name', 'version', 'created', synced ? 'synced' : 'sha256']);
  for (const k of ['name', 'version', 'created'] as const) text(b[k], `bundle.${k}`);
  if (synced && b.synced !== true) bad('bundle.synced', 'is not true');
  if (!synced && !HEX.test(text(b.sha256, 'bundle.sha256'))) bad('bundle.sha256', 'is not 64 lowercase hex characters');
  let registry: TargetRegistry;
  try {
    registry = parseTargetRegistry(text(r.registry, 'registry'));
  } catch (err) {
    return bad('registry', `is not HOST[:PORT][/PREFIX]: ${(err as Error).message}`);
  }
  if (r.layout !== 'flat' && r.layout !== 'host') bad('layout', 'is neither "flat" nor "host"');
  const layout = r.layout as Layout;

  const refs = new Set<string>();
  const repositories = new Set<string>();
  const imageDigests: Array<[string, string]> = [];
  for (const [i, x] of list(r.images, 'images').entries()) {
    const where = `images[${i}]`;
    const img = obj(x, where, ['ref', 'digest', 'target']);
    const ref = text(img.ref, `${where}.ref`);
    let parsed;
    try {
      parsed = parseReference(ref);
    } catch (err) {
      return bad(`${where}.ref`, (err as Error).message);
    }
    if (refs.has(ref)) bad(`${where}.ref`, `${ref} is listed twice`);
    refs.add(ref);
    const d = digest(img.digest, `${where}.digest`);
    const target = text(img.target, `${where}.target`);
    const repository = targetRepository(parsed, registry, layout);
    const want = targetText(registry.host, { repository, ...(parsed.tag !== undefined && { tag: parsed.tag }), digest: d });
    if (target !== want) bad(`${where}.target`, `"${target}" is not where ${layout} layout under ${registryText(registry)} puts ${ref} (${want})`);
    repositories.add(repository);
    imageDigests.push([d, where]);
  }

  const blobs = new Set<string>();
  for (const [i, x] of list(r.blobs, 'blobs').entries()) {
    const where = `blobs[${i}]`;
    const bl = obj(x, where, ['digest', 'size', 'repository']);
    const d = digest(bl.digest, `${where}.digest`);
    if (blobs.has(d)) bad(`${where}.digest`, `${d} is listed twice`);
    blobs.add(d);
    size(bl.size, `${where}.size`);
    const repo = text(bl.repository, `${where}.repository`);
    if (!repo.split('/').every((c) => COMPONENT.test(c))) bad(`${where}.repository`, `"${repo}" is not a repository name`);
    if (!repositories.has(repo)) bad(`${where}.repository`, `${repo} is not the repository of any image in the receipt`);
  }
  for (const [d, where] of imageDigests) if (!blobs.has(d)) bad(`${where}.digest`, `${d} is not among the blobs`);

  const paths = new Set<string>();
  for (const [i, x] of list(r.files, 'files').entries()) {
    const where = `files[${i}]`;
    const f = obj(x, where, ['path', 'sha256', 'size']);
    const p = text(f.path, `${where}.path`);
    const problem = landingPathProblem(p);
    if (problem) bad(`${where}.path`, `"${p}" ${problem}`);
    if (paths.has(p)) bad(`${where}.path`, `${p} is listed twice`);
    paths.add(p);
    if (!HEX.test(text(f.sha256, `${where}.sha256`))) bad(`${where}.sha256`, 'is not 64 lowercase hex characters');
    size(f.size, `${where}.size`);
  }

  if (r.attached !== undefined) {
    const seen = new Set<string>();
    for (const [i, x] of list(r.attached, 'attached').entries()) {
      const where = `attached[${i}]`;
      const a = obj(x, where, ['subject', 'digest', 'repository', 'kind'], ['tag']);
      const subject = digest(a.subject, `${where}.subject`);
      const d = digest(a.digest, `${where}.digest`);
      if (!blobs.has(d)) bad(`${where}.digest`, `${d} is not among the blobs`);
      if (!blobs.has(subject)) bad(`${where}.subject`, `${subject} is not among the blobs`);
      const repo = text(a.repository, `${where}.repository`);
      if (!repositories.has(repo)) bad(`${where}.repository`, `${repo} is not the repository of any image in the receipt`);
      if (!ATTACHED_KINDS.includes(a.kind as AttachedKind)) bad(`${where}.kind`, `is not one of ${ATTACHED_KINDS.join(', ')}`);
      if (a.tag !== undefined && !isTagSchemeTagOf(text(a.tag, `${where}.tag`), subject)) {
        bad(`${where}.tag`, `"${(a.tag as string).slice(0, 100)}" is not cosign's sha256-<hex>.sig, .att or .sbom of its subject`);
      }
      if (seen.has(`${repo}\0${d}`)) bad(`${where}.digest`, `${d} is listed twice for ${repo}`);
      seen.add(`${repo}\0${d}`);
    }
  }
  return v as Receipt;
}
