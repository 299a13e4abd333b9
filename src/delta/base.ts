// "What the other side holds", from any of the three files that can say it
// (SPEC §6): a bundle tar, its bare bundle.json, or a receipt. diff compares
// two of them; build --base leaves out what its bases hold. All three are
// hostile input: a tar goes through the strict reader (bundle.json only, no
// key: its signature is not checked here), a bare bundle.json through the
// reader's own bundle.json checks, a receipt through the receipt's.
import { createHash } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { placeAttached, readAllGraphs } from '../bundle/attached.js';
import { BundleError, BundleReader, parseIndex } from '../bundle/reader.js';
import type { AttachedKind, BundleIndex } from '../bundle/format.js';
import type { Layout } from '../bundle/targets.js';
import { openInput, READ_BOUNDS, UnsafeFileError } from '../fsx/safe.js';
import { parseUntrustedJson } from '../util/json.js';
import { printable } from '../util/printable.js';
import { checkReceipt, readBounded, ReceiptError, type Receipt } from './receipt.js';

export interface BaseImage {
  ref: string;
  digest: string;
  /** Receipts only: where the image is at the target. */
  target?: string;
}

export interface BaseBlob {
  digest: string;
  size: number;
  /** Receipts only: a repository at the target that holds it. */
  repository?: string;
}

export interface BaseFile {
  path: string;
  /** Hex. */
  sha256: string;
  size: number;
}

/** A signature, attestation or SBOM the base holds for one of its images (SPEC §9). */
export interface BaseAttached {
  subject: string;
  digest: string;
  /** A bundle: the source repository (HOST/PATH); a receipt: the target repository below the registry host. */
  repository: string;
  kind: AttachedKind;
  tag?: string;
  /** Bundles only. */
  artifactType?: string;
  /** The ref of the image it belongs to, when that could be told (see placeAttached). */
  image?: string;
}

export interface Base {
  /** As SPEC §6 records bases: a bundle (a tar or its bundle.json) or a receipt. */
  kind: 'bundle' | 'receipt';
  /** What the file was. */
  form: 'tar' | 'bundle.json' | 'receipt';
  file: string;
  name: string;
  version: string;
  created: string;
  /** Hex sha256 of the bundle's bundle.json (tar, bundle.json) or of the receipt file. */
  sha256: string;
  /** A tar with a bundle.json.sig. Nothing here checks a signature: use verify --pub for that. */
  signed?: boolean;
  /** Receipts only: the target the receipt describes. */
  registry?: string;
  layout?: Layout;
  images: BaseImage[];
  blobs: BaseBlob[];
  files: BaseFile[];
  /** Attached manifests (none for bundles and receipts from before airlock carried them). */
  attached: BaseAttached[];
  /** Bundle tars only: for each blob (manifests included), the ref of the first image (bundle.json order) whose graph holds it. */
  imageOf?: Map<string, string>;
  /** Bundle tars only: why `imageOf` could not be worked out (the tar's entries or manifests did not check out). */
  unplaced?: string;
}

/** A file that is none of the three, or fails its checks. */
export class BaseError extends Error {
  readonly exitCode = 1;
  constructor(message: string) {
    super(message);
    this.name = 'BaseError';
  }
}

/** Reads `file` as a bundle tar, a bundle.json or a receipt, telling them apart by content. */
export async function loadBase(file: string): Promise<Base> {
  if (!(await startsLikeJson(file))) return fromTar(file);
  const j = await loadJson(file);
  return j.form === 'receipt' ? fromReceipt(file, j.receipt, j.sha256) : fromIndex(file, 'bundle.json', j.index, j.sha256);
}

/** A bundle.json or a receipt, checked as loadBase checks them; `sha256` is of the file's bytes. */
export type JsonSource = { form: 'bundle.json'; index: BundleIndex; sha256: string } | { form: 'receipt'; receipt: Receipt; sha256: string };

/** Reads `file` (which startsLikeJson) as a bundle.json or a receipt, telling them apart by content. */
export async function loadJson(file: string): Promise<JsonSource> {
  const max = Math.max(READ_BOUNDS.bundleJson.max, READ_BOUNDS.receipt.max);
  const bytes = await readBounded(file, { max, what: 'a bundle.json or a receipt' }, (m) => new BaseError(m));
  const v = parseUntrustedJson(bytes, (problem) => new BaseError(`${printable(file)} starts like JSON but ${problem}; give a bundle, its bundle.json or a receipt`));
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const o = typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
  if ('apiVersion' in o || 'kind' in o) {
    try {
      return { form: 'receipt', receipt: checkReceipt(v, file), sha256 };
    } catch (err) {
      if (err instanceof ReceiptError) throw new BaseError(err.message);
      throw err;
    }
  }
  if ('schemaVersion' in o) {
    try {
      return { form: 'bundle.json', index: parseIndex(bytes), sha256 };
    } catch (err) {
      if (err instanceof BundleError) throw new BaseError(`${printable(file)}: ${err.message}`);
      throw err;
    }
  }
  throw new BaseError(`${printable(file)} is JSON but neither a bundle.json (no schemaVersion) nor a receipt (no apiVersion and kind); give a bundle, its bundle.json or a receipt`);
}

/** A tar starts with a header naming bundle.json; JSON starts with "{" (after white space). Also used by serve --base, which refuses JSON. */
export async function startsLikeJson(file: string): Promise<boolean> {
  let fh;
  try {
    fh = await openInput(file);
  } catch (err) {
    if (!(err instanceof UnsafeFileError)) throw err;
    // A split bundle (SPEC §7): BUNDLE is its parts BUNDLE.001, …, which the bundle reader reads as one.
    if (err.code === 'ENOENT' && (await lstat(`${file}.001`).catch(() => undefined))) return false;
    throw new BaseError(err.code === undefined ? err.message : `cannot open ${printable(file)}: ${err.code === 'ENOENT' ? 'no such file' : err.code}`);
  }
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    const text = head.subarray(0, bytesRead).toString('latin1');
    return /^\s*\{/.test(text);
  } finally {
    await fh.close();
  }
}

async function fromTar(file: string): Promise<Base> {
  let reader: BundleReader;
  try {
    reader = await BundleReader.open(file);
  } catch (err) {
    if (err instanceof BundleError) throw new BaseError(`${printable(file)} (read as a bundle tar, as it is not JSON): ${err.message}`);
    throw err;
  }
  // Which image held each blob: the manifests are read from the tar (headers walked, manifests re-hashed), so a delta
  // unpack can find a blob where this unpack's layout puts that image. Only a hint: a tar whose entries cannot be
  // walked (cut short, changed) still says what it holds through its bundle.json, and its blobs are left unplaced.
  // An attached manifest's blobs are placed with the image it belongs to: unpack pushes them into that image's repository.
  const imageOf = new Map<string, string>();
  const owner = new Map<string, string>();
  let unplaced: string | undefined;
  try {
    await reader.scan();
    const graphs = await readAllGraphs(reader);
    const place = (ref: string, g: { manifests: Array<{ digest: string }>; externalManifests: Array<{ digest: string }>; blobs: Iterable<string> }) => {
      for (const d of [...g.manifests.map((m) => m.digest), ...g.externalManifests.map((m) => m.digest), ...g.blobs]) if (!imageOf.has(d)) imageOf.set(d, ref);
    };
    for (const image of reader.index.images) place(image.ref, graphs.images.get(image.ref)!);
    for (const a of graphs.attached) {
      place(a.image, a);
      owner.set(`${a.entry.repository}\0${a.entry.digest}`, a.image);
    }
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    unplaced = err.message;
  } finally {
    await reader.close();
  }
  const base = fromIndex(file, 'tar', reader.index, createHash('sha256').update(reader.bundleJson).digest('hex'), (a) => owner.get(`${a.repository}\0${a.digest}`));
  return { ...base, signed: reader.signed, ...(unplaced === undefined ? { imageOf } : { unplaced }) };
}

/** `ownerOf`: the image an attached entry belongs to, when the graphs were read (a tar); else placeAttached tells what bundle.json can. Also used by report, which reads a tar's bundle.json only. */
export function fromIndex(file: string, form: 'tar' | 'bundle.json', i: BundleIndex, sha256: string, ownerOf?: (a: { repository: string; digest: string }) => string | undefined): Base {
  return {
    kind: 'bundle',
    form,
    file,
    name: i.name,
    version: i.version,
    created: i.created,
    sha256,
    images: i.images.map((x) => ({ ref: x.ref, digest: x.digest })),
    blobs: i.blobs.map((b) => ({ digest: b.digest, size: b.size })),
    files: i.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size })),
    attached: placeAttached(i).map(({ entry: a, image }) => {
      const owner = ownerOf?.(a) ?? image;
      return { subject: a.subject, digest: a.digest, repository: a.repository, kind: a.kind, ...(a.tag !== undefined && { tag: a.tag }), ...(a.artifactType !== undefined && { artifactType: a.artifactType }), ...(owner !== undefined && { image: owner }) };
    }),
  };
}

export function fromReceipt(file: string, r: Receipt, sha256: string): Base {
  return {
    kind: 'receipt',
    form: 'receipt',
    file,
    name: r.bundle.name,
    version: r.bundle.version,
    created: r.bundle.created,
    sha256,
    registry: r.registry,
    layout: r.layout,
    images: r.images.map((x) => ({ ref: x.ref, digest: x.digest, target: x.target })),
    blobs: r.blobs.map((b) => ({ digest: b.digest, size: b.size, repository: b.repository })),
    files: r.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size })),
    attached: (r.attached ?? []).map((a) => {
      const image = receiptImageOf(r, a);
      return { subject: a.subject, digest: a.digest, repository: a.repository, kind: a.kind, ...(a.tag !== undefined && { tag: a.tag }), ...(image !== undefined && { image }) };
    }),
  };
}

/** The receipt image an attached entry belongs to: the one in its target repository whose digest is the subject, else the only one in that repository. */
function receiptImageOf(r: Receipt, a: { subject: string; repository: string }): string | undefined {
  // A target is HOST/REPO:TAG or HOST/REPO@DIGEST (checkReceipt made sure), and a repository has no ':' or '@'.
  const host = r.registry.split('/')[0] ?? '';
  const repositoryOf = (target: string) => target.slice(host.length + 1).split(/[:@]/)[0];
  const mine = r.images.filter((i) => repositoryOf(i.target) === a.repository);
  return (mine.find((i) => i.digest === a.subject) ?? (mine.length === 1 ? mine[0] : undefined))?.ref;
}
