// `airlock unpack`: from a signed bundle to the private registry and file
// server, same digests as upstream, as a short sequence of named steps.
//
// The signature is checked first; then a quick look at the target decides
// whether anything is missing at all (a rerun usually finds nothing to do and
// reads no further). Otherwise the tar's headers are checked, and every byte is
// verified in the same pass that streams the large blobs to the registry; only
// when all of it checked out is any upload committed. Manifests go after
// their blobs, children before parents, tags last; a tag never points at
// anything that was not verified. What is attached to the images (signatures,
// attestations, SBOMs) follows them (attached.ts).
import pLimit from 'p-limit';
import type { KeyObject } from 'node:crypto';
import type { Progress } from '../progress/reporter.js';
import { RegistryClient } from '../registry/client.js';
import type { Http } from '../http/client.js';
import { falcoIndexEntries, falcoIndexYaml } from '../emit/falco-index.js';
import { FALCO_INDEX_PATH as FALCO_INDEX } from '../manifest/paths.js';
import type { Receipt } from '../delta/receipt.js';
import { BLOBS_PREFIX, type BundleAttached, type BundleImage, type BundleIndex, type SignatureVerdict } from '../bundle/format.js';
import type { InsideOptions } from '../sign/publisher/carried.js';
import { checkSignatures, enforce, policyInside } from '../sign/publisher/recheck.js';
import { readGraph, type ImageGraph } from '../bundle/graph.js';
import { BundleReader } from '../bundle/reader.js';
import { planTargets, type Layout, type TargetName, type TargetRegistry } from '../bundle/targets.js';
import { trivyDbReports, trivyDbWarnings, type MaxDbAge } from '../bundle/trivydb.js';
import { readAttached } from '../bundle/attached.js';
import { attachedInPlace, inPlaceStats, attachedTargets, lookAttached, pushAttached, type AttachedStats, type AttachedTarget, type ReferrersFallback } from './attached.js';
import { countersign } from './countersign.js';
import { checkExternals, MissingBaseError } from './externals.js';
import type { FileTarget } from './files-target.js';
import { checkHarborProjects } from './harbor.js';
import { pushBlobs, pushManifests, putFiles, type BlobStats } from './push.js';
import { receiptFor } from './receipt.js';
import type { UnpackSource } from './source.js';

export { MissingBaseError } from './externals.js';

/** What unpack's steps need (sync runs them too, over the cache). */
export interface TargetOptions {
  /** What is read: the bundle file (sync: the manifest), for progress lines. */
  readonly bundle: string;
  readonly registry: TargetRegistry;
  readonly layout: Layout;
  readonly files: FileTarget;
  /** The dispatcher, with the target's TLS settings and credentials scoped to it. */
  readonly http: Http;
  readonly concurrency: number;
  readonly progress: Progress;
  readonly chunkSize?: number;
  /** Create missing Harbor projects (--create-projects). */
  readonly createProjects?: boolean;
  /** `--max-db-age`: warn when a Trivy DB in the bundle is older; undefined turns the check off. */
  readonly maxDbAge?: MaxDbAge;
  /** Work out the receipt (SPEC §6) of what the target holds once the unpack succeeded (--receipt). */
  readonly receipt?: boolean;
  /** `--referrers-fallback` (default auto): when to write the `sha256-<hex>` index of a subject's referrers. */
  readonly referrersFallback?: ReferrersFallback;
  /** `--policy` (loaded) and `--trusted-root` given inside; without them the carried policy, if any, is used (SPEC §9). */
  readonly signatures?: InsideOptions;
}

export interface UnpackOptions extends TargetOptions {
  readonly pub: KeyObject;
  /** Threads that hash entries (--jobs); default: the cores, at most 8. */
  readonly jobs?: number;
}

export interface CountersignOptions {
  /** `unpack --countersign KEY`: the inside key that signs every image whose publisher signatures counted. */
  readonly countersign?: KeyObject;
}

export interface UnpackItem {
  readonly kind: 'image' | 'artifact' | 'file';
  readonly source: string;
  /** Where it landed: registry/repo[:tag][@digest] or the file path. */
  readonly target: string;
  readonly digest: string;
  readonly status: 'pushed' | 'present';
}

export interface UnpackResult {
  readonly items: UnpackItem[];
  readonly blobsPushed: number;
  readonly blobsMounted: number;
  readonly blobsPresent: number;
  readonly bytesUploaded: number;
  readonly filesWritten: number;
  /**
   * True when the quick check found everything in place and the tar was not read past bundle.json
   * (with `receipt`, its headers and the manifests are read besides: small).
   */
  readonly upToDate: boolean;
  readonly falcoIndex?: string;
  readonly index: BundleIndex;
  /** With `receipt: true`: what the target now holds from this bundle. */
  readonly receipt?: Receipt;
  /** When the bundle carries attached manifests (SPEC §9): how many were pushed, by kind, and what became of the fallback indexes. */
  readonly attached?: AttachedStats;
  /** With a policy (carried or given): where it came from and each image's verdict, checked before anything was pushed. */
  readonly signatures?: { from: 'given' | 'carried'; verdicts: SignatureVerdict[]; warnings: string[] };
  /** `--countersign`: the inside key's signature of each verified image, at its `.sig` tag. */
  readonly countersigned?: Array<{ ref: string; target: string; status: 'pushed' | 'present' }>;
}

export interface Graph extends ImageGraph {
  readonly image: BundleImage;
  readonly target: TargetName;
}

type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

export async function unpack(opts: UnpackOptions & CountersignOptions): Promise<UnpackResult> {
  const reader = await BundleReader.open(opts.bundle, { pub: opts.pub, ...(opts.jobs !== undefined && { jobs: opts.jobs }) });
  try {
    return await unpackFrom(reader, opts);
  } finally {
    await reader.close();
  }
}

/** Unpack's steps over a verified source: a bundle, or (sync) the content store filled from upstream as needed. */
export async function unpackFrom(reader: UnpackSource, opts: TargetOptions & CountersignOptions): Promise<UnpackResult> {
  const { index } = reader;
  const targets = planTargets(index.images, opts.registry, opts.layout);
  // The publishers' signatures, checked again offline before anything is pushed or even looked for.
  const signatures = await checkPublishers(reader, opts);
  if (opts.countersign && !signatures) throw new NoPolicyError(`--countersign signs the images whose publisher signatures counted, but ${opts.bundle} carries no signature policy; give --policy FILE`);
  const finish = async (r: UnpackResult): Promise<UnpackResult> => {
    const countersigned = opts.countersign && signatures ? await countersignVerified(signatures.verdicts, index, targets, client, opts.registry.host, opts.countersign, limit) : undefined;
    return { ...r, ...(signatures && { signatures }), ...(countersigned && { countersigned }) };
  };
  await checkHarborProjects(targets, opts);
  warnAboutStaleDbs(index, opts);
  const client = new RegistryClient(opts.registry.host, opts.http);
  const limit = pLimit(opts.concurrency);
  const items = new Items(index, targets, opts);

  // Attached manifests go where their image goes; looked for by tag or digest, their fallback indexes read.
  const attached = attachedTargets(index, targets);
  const mode = opts.referrersFallback ?? 'auto';
  // A `.sig` at the target that holds every carried signature and more (a countersignature) is not pushed over.
  const scanned = memo(() => reader.scan());
  const carried = async (a: AttachedTarget) => {
    await scanned();
    return reader.readEntry(BLOBS_PREFIX + a.entry.digest.slice(7));
  };
  const [look, attachedLook] = await Promise.all([quickLook(index, targets, client, opts, limit), attached.length > 0 ? lookAttached(attached, client, mode, limit, carried) : undefined]);
  if (look.images.every(Boolean) && look.files.every(Boolean) && (!attachedLook || attachedInPlace(attachedLook))) {
    await writeFalcoIndex(index, opts);
    items.allPresent();
    // The receipt needs each image's manifests: the tar's headers are walked and the manifests read (small), nothing else.
    const receipt = opts.receipt ? await receiptFor(reader, opts, targets, new Map(), false, attached) : undefined;
    const stats = attachedLook && inPlaceStats(attachedLook, mode);
    return finish(result(items, { blobsPushed: 0, blobsMounted: 0, blobsPresent: 0, bytesUploaded: 0 }, 0, true, index, opts, receipt, stats));
  }

  // The headers only: each entry where bundle.json says, of that size. Its bytes are verified while the blobs are pushed (push.ts).
  await reader.scan();
  const { graphs, all } = await readGraphs(reader, targets, look.images, items, attached.length > 0);
  // Every attached manifest checked against its image and walked like one, before anything is pushed.
  // Same order as `attached`: every entry checked, those attached to a rewritten upstream index (never pushed) then dropped.
  const attachedGraphs = attached.length > 0 ? (await readAttached(reader, all)).filter((g) => !g.entry.upstream) : [];
  const attachedMissing = attached.map((a, i) => ({ target: { repository: a.repository }, what: attachedName(a.entry, attachedGraphs[i]!.image), ...attachedGraphs[i]! })).filter((_a, i) => !attachedLook?.present[i]);
  const mountFrom = await checkExternals(index, graphs, look.files, client, opts, limit, attachedMissing).catch(async (err: unknown) => {
    // A damaged bundle is the thing to fix first (a base unpacked would not help): say so if it is.
    if (err instanceof MissingBaseError) await reader.verify();
    throw err;
  });
  // The attached manifests' blobs go up in the same pass: verified with every other byte before any is committed.
  const stats = await pushBlobs([...graphs, ...attachedMissing], reader, client, mountFrom, opts, limit);
  await pushManifests(graphs, reader, client, limit, (g) => items.image(g.target, g.image, 'pushed'));
  // After the images they belong to: an attached manifest never points at something not pushed yet.
  const attachedStats = attachedLook && (await pushAttached(attached, attachedGraphs, attachedLook.present, reader, client, mode, limit));
  const filesWritten = await putFiles(index, look.files, reader, opts, limit, (i, status) => items.file(i, status));
  await writeFalcoIndex(index, opts);
  const receipt = opts.receipt ? await receiptFor(reader, opts, targets, new Map(graphs.map((g) => [g.image.ref, g])), true, attached) : undefined;
  return finish(result(items, stats, filesWritten, false, index, opts, receipt, attachedStats));
}

/**
 * `--countersign KEY` (SPEC §9): each image whose publisher signatures counted gets the inside
 * key's cosign signature at its `.sig` tag, after its own signatures went in (the `.sig` gains a
 * layer). An image seen twice (two references, one digest and repository) is signed once.
 */
async function countersignVerified(
  verdicts: readonly SignatureVerdict[],
  index: BundleIndex,
  targets: readonly TargetName[],
  client: RegistryClient,
  host: string,
  key: KeyObject,
  limit: Limit,
): Promise<NonNullable<UnpackResult['countersigned']>> {
  const done = new Map<string, Promise<{ tag: string; status: 'pushed' | 'present' }>>();
  const out = verdicts.map(async (v, i) => {
    if (v.verdict !== 'verified') return undefined;
    const t = targets[i]!;
    const digest = index.images[i]!.digest;
    const k = `${t.repository}@${digest}`;
    let p = done.get(k);
    if (!p) done.set(k, (p = limit(() => countersign(client, t.repository, digest, `${host}/${t.repository}`, key))));
    const r = await p;
    return { ref: v.ref, target: `${host}/${t.repository}:${r.tag}`, status: r.status };
  });
  return (await Promise.all(out)).filter((x): x is NonNullable<typeof x> => x !== undefined);
}

/** Runs `fn` once, whoever asks first; later callers wait for the same run. */
function memo(fn: () => Promise<void>): () => Promise<void> {
  let p: Promise<void> | undefined;
  return () => (p ??= fn());
}

/**
 * SPEC §9 "Inside": with a policy given inside or carried, every image is
 * judged from the bundle's own entries (each hashed as read); an image under
 * an enforce rule with no signature that counts stops here, before anything
 * is pushed. Warnings go to the progress log.
 */
async function checkPublishers(reader: UnpackSource, opts: TargetOptions): Promise<UnpackResult['signatures']> {
  const given = opts.signatures ?? {};
  if (given.policy === undefined && reader.index.policy === undefined) {
    if (given.trustedRoot !== undefined) throw new NoPolicyError(`--trusted-root is for checking the publishers' signatures, but ${opts.bundle} carries no signature policy; give --policy FILE too`);
    return undefined;
  }
  // Entries are located by the headers: the small ones the check reads are hashed as they are read.
  await reader.scan();
  const chosen = await policyInside(reader, opts.bundle, given);
  if (!chosen) return undefined;
  const check = await checkSignatures(reader, chosen);
  for (const w of check.warnings) opts.progress.log(`warning: ${w}`);
  enforce(check, 'nothing was pushed');
  return { from: check.from, verdicts: check.verdicts, warnings: check.warnings };
}

/** A flag that needs a policy, and none was given or carried: a usage error. */
export class NoPolicyError extends Error {
  readonly exitCode = 2;
}

/** How an attached entry is named in messages: its kind, tag, and the image it belongs to. */
function attachedName(a: BundleAttached, image: string): string {
  return `${a.tag ?? `the ${a.kind} referrer ${a.digest}`} (attached to ${image})`;
}

function warnAboutStaleDbs(index: BundleIndex, opts: TargetOptions): void {
  const advice = 'Trivy in the air gap scans with this DB: build and carry a newer bundle';
  for (const w of trivyDbWarnings(trivyDbReports(index.images, opts.maxDbAge), opts.maxDbAge, advice)) opts.progress.log(w);
}

/** Which images (by digest, and by tag) and files are at the target already. */
async function quickLook(index: BundleIndex, targets: readonly TargetName[], client: RegistryClient, opts: TargetOptions, limit: Limit): Promise<{ images: boolean[]; files: boolean[] }> {
  const images = await Promise.all(
    targets.map((t) =>
      limit(async () => {
        // A tag that resolves to the digest means the manifest is there too: one request, not two.
        return (await client.resolve(t.repository, t.tag ?? t.digest))?.digest === t.digest;
      }),
    ),
  );
  const files = await Promise.all(index.files.map((f) => limit(() => opts.files.has(f.path, f.sha256, f.size))));
  return { images, files };
}

/** The graphs of the images the target lacks, to push; with `everyImage`, every image's too (attached manifests are checked against all of them). */
async function readGraphs(reader: UnpackSource, targets: readonly TargetName[], present: readonly boolean[], items: Items, everyImage: boolean): Promise<{ graphs: Graph[]; all: Map<string, ImageGraph> }> {
  const graphs: Graph[] = [];
  const all = new Map<string, ImageGraph>();
  for (const [i, image] of reader.index.images.entries()) {
    const g = present[i] && !everyImage ? undefined : await readGraph(reader, image);
    if (g) all.set(image.ref, g);
    if (present[i]) items.image(targets[i]!, image, 'present');
    else graphs.push({ image, target: targets[i]!, ...g! });
  }
  return { graphs, all };
}

async function writeFalcoIndex(index: BundleIndex, opts: TargetOptions): Promise<void> {
  const entries = falcoIndexEntries(index, opts.registry, opts.layout);
  if (entries.length) await opts.files.putBytes(FALCO_INDEX, await falcoIndexYaml(entries));
}

/** The report's lines, one per image and file, as they settle. */
class Items {
  readonly list: UnpackItem[] = [];

  constructor(
    private readonly index: BundleIndex,
    private readonly targets: readonly TargetName[],
    private readonly opts: TargetOptions,
  ) {}

  image(t: TargetName, img: BundleImage, status: UnpackItem['status']): void {
    this.list.push({ kind: img.kind, source: img.ref, target: `${this.opts.registry.host}/${t.repository}${t.tag !== undefined ? `:${t.tag}` : ''}@${t.digest}`, digest: t.digest, status });
  }

  file(i: number, status: UnpackItem['status']): void {
    const f = this.index.files[i]!;
    this.list.push({ kind: 'file', source: f.source, target: `${this.opts.files.describe}/${f.path}`, digest: `sha256:${f.sha256}`, status });
  }

  allPresent(): void {
    this.targets.forEach((t, i) => this.image(t, this.index.images[i]!, 'present'));
    this.index.files.forEach((_f, i) => this.file(i, 'present'));
  }
}

function result(items: Items, stats: BlobStats, filesWritten: number, upToDate: boolean, index: BundleIndex, opts: TargetOptions, receipt: Receipt | undefined, attached: AttachedStats | undefined): UnpackResult {
  const falco = falcoIndexEntries(index, opts.registry, opts.layout).length > 0;
  return { items: items.list, ...stats, filesWritten, upToDate, index, ...(falco && { falcoIndex: FALCO_INDEX }), ...(receipt && { receipt }), ...(attached && { attached }) };
}
