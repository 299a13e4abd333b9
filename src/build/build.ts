// `airlock build`: from a validated Plan to a signed bundle, as a short
// sequence of named steps. Every item is pulled into the content store with
// bounded concurrency (blobs shared by several images are fetched once),
// failures are collected rather than stopping the others, and the bundle is
// written only when all succeeded, in order, while layers still arrive.
import type { KeyObject } from 'node:crypto';
import pLimit from 'p-limit';
import { ContentStore } from '../cache/store.js';
import { pullFile, type PulledFile } from '../fetch/pull.js';
import type { FileItem, ImageItem, ArtifactItem, Plan } from '../manifest/types.js';
import type { Progress } from '../progress/reporter.js';
import { RegistryClient } from '../registry/client.js';
import { pullGraph, type Descriptor, type PulledGraph } from '../registry/pull.js';
import type { Http } from '../http/client.js';
import type { CredentialLookup } from '../http/credentials.js';
import type { RetryPolicy } from '../http/retry.js';
import type { Base } from '../delta/base.js';
import type { BundleAttached, TrivyDbInfo } from '../bundle/format.js';
import { trivyDbReports, trivyDbWarnings, type MaxDbAge, type TrivyDbReport } from '../bundle/trivydb.js';
import { writeBundle } from '../bundle/writer.js';
import { AttachedFinder, type ItemAttached } from './attached.js';
import { heldByBases } from './bases.js';
import { composeIndex, externalOf, uniqueBlobs } from './compose.js';
import { BlobFetcher, createHttp, hostSettings } from './fetch.js';
import { errorText, reportFile, reportGraph } from './report.js';
import { BUILD_DB_ADVICE, readDbInfo } from './trivy.js';
import type { Policy } from '../policy/types.js';
import type { SignatureVerdict } from '../bundle/format.js';
import { policyRecord } from '../sign/publisher/carried.js';
import { blocks, Judge, ruleText, warns, warnText } from '../sign/publisher/judge.js';

export interface BuildOptions {
  readonly plan: Plan;
  readonly output?: string;
  /** `--split-size`: write OUTPUT.001, OUTPUT.002, … of this many bytes. */
  readonly splitSize?: number;
  readonly key?: KeyObject;
  readonly cacheDir: string;
  readonly concurrency: number;
  /** `--platform`: replaces every image's platform filter. */
  readonly platforms?: string[];
  /** Credentials per host (flags for --auth-host hosts, then docker config.json). */
  readonly credentials?: CredentialLookup;
  readonly dryRun?: boolean;
  readonly progress: Progress;
  /** Seconds since the epoch (SOURCE_DATE_EPOCH): fixes `created` and tar mtimes. */
  readonly sourceDateEpoch?: number;
  readonly retry?: Partial<RetryPolicy>;
  readonly bodyTimeoutMs?: number;
  /** Minimum rate per window (AIRLOCK_MIN_RATE bytes/s over AIRLOCK_STALL_TIMEOUT). */
  readonly minBytesPerSecond?: number;
  readonly warn?: (message: string) => void;
  readonly tool: string;
  /** `--max-db-age`: warn when a Trivy DB is older; undefined turns the check off. */
  readonly maxDbAge?: MaxDbAge;
  /** `--base`: a delta; what these hold is marked external and left out of the tar (SPEC §6). */
  readonly bases?: readonly Base[];
  /** `--no-attached` (false): no signatures, attestations or SBOMs are looked for (SPEC §9); `spec.attached: false` does the same. */
  readonly attached?: boolean;
  /** `--policy` / `spec.policy`: every image's signatures are checked against it, enforce failures stop the build (SPEC §9). */
  readonly policy?: Policy;
}

export interface ItemReport {
  readonly kind: 'image' | 'artifact' | 'file';
  /** Reference for images and artifacts, landing path for files. */
  readonly name: string;
  readonly source?: string;
  readonly ok: boolean;
  readonly error?: string;
  readonly note?: string;
  readonly digest?: string;
  readonly upstreamDigest?: string;
  readonly size?: number;
  readonly platforms?: string[];
}

export interface BuildResult {
  readonly items: ItemReport[];
  readonly failed: ItemReport[];
  /** Bytes fetched from the network by this run (blobs, manifests excluded, and files). */
  readonly downloadedBytes: number;
  /** Bytes of all blobs and files, counted once. */
  readonly totalBytes: number;
  readonly blobs: number;
  /** A delta: blobs and files the bases hold, left out of the tar. */
  readonly external?: { blobs: number; files: number; bytes: number };
  readonly bundle?: { path: string; sha256: string; size: number; parts?: Array<{ path: string; size: number; sha256: string }> };
  /** The Trivy DBs' dates from their metadata.json (when a bundle is written). */
  readonly trivyDbs?: TrivyDbReport[];
  /** Signatures, attestations and SBOMs carried (bundle.json attached[]). */
  readonly attached?: number;
  /** The warnings about attached manifests (also on stderr): some left out, lookups that failed. */
  readonly warnings?: string[];
  /** With a policy: each image's verdict, as bundle.json records it. */
  readonly signatures?: SignatureVerdict[];
}

type Limit = <T>(fn: () => Promise<T>) => Promise<T>;
export type GraphResult = { item: ImageItem | ArtifactItem; graph?: PulledGraph; attached?: ItemAttached; verdict?: SignatureVerdict; error?: string };
export type FileResult = { item: FileItem; file?: PulledFile; error?: string };

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const { plan, progress } = opts;
  const store = new ContentStore(opts.cacheDir);
  await store.init();
  const http = createHttp(opts, (host) => hostSettings(plan, host));
  const limit = pLimit(opts.concurrency);
  // Manifests (and the configs a walk waits on) get slots of their own: queued behind
  // layer downloads, the walks (and so bundle.json, which comes first in the tar)
  // would wait for nearly all of them, and writing could not start until then.
  const walkLimit = pLimit(opts.concurrency);
  const held = heldByBases(opts.bases ?? []);
  const fetcher = new BlobFetcher(store, http, progress, limit, held.blobs, walkLimit);
  progress.itemsTotal(plan.items.length);

  const warnings: string[] = [];
  const warn = (m: string) => {
    warnings.push(m);
    progress.log(`warning: ${m}`);
  };
  if (opts.policy && (opts.attached === false || plan.attached === false)) {
    throw new Error('build: a signature policy checks the signatures carried with the images; it cannot go with --no-attached or spec.attached: false');
  }
  // A dry run checks the signatures too (they and the manifests are all it fetches): the policy's first try.
  const judge = opts.policy ? new Judge(opts.policy) : undefined;
  const graphs = await resolveImages(opts, store, http, fetcher, walkLimit, warn, judge);
  const files = await resolveFiles(opts, store, http, limit, held.fileSizes);
  const attached = attachedOf(graphs);
  const refused = judge ? judgeAll(judge.policy, graphs, warn) : new Map<string, string>();
  const carried = opts.policy && !opts.dryRun ? await carryPolicy(opts.policy, store) : [];
  // The attached manifests and their blobs after every image's: small, and needed last by the writer. The policy's files last.
  const blobs = uniqueBlobs([...graphs.flatMap((r) => r.graph?.blobs ?? []), ...graphs.flatMap((r) => r.attached?.blobs ?? []), ...carried]);
  const totalBytes = blobs.reduce((n, b) => n + b.size, 0) + files.reduce((n, r) => n + (r.file?.size ?? 0), 0);

  let written: Awaited<ReturnType<typeof writeBundle>> | undefined;
  let writeError: unknown;
  let trivyDbs: TrivyDbReport[] | undefined;
  let external: BuildResult['external'];
  if (graphs.every((r) => r.graph) && files.every((r) => r.file) && refused.size === 0 && !opts.dryRun) {
    if (!opts.output || !opts.key) throw new Error('build: output and key are required unless --dry-run');
    // bundle.json comes first in the tar and carries the DBs' dates: the DB layers are read before writing starts.
    const dbInfo = await readDbDates(graphs, store, fetcher, held.blobs);
    const created = opts.sourceDateEpoch !== undefined ? new Date(opts.sourceDateEpoch * 1000) : new Date();
    const index = composeIndex({
      plan,
      tool: opts.tool,
      key: opts.key,
      created,
      graphs: graphs as Array<{ item: ImageItem | ArtifactItem; graph: PulledGraph }>,
      files: files as Array<{ item: FileItem; file: PulledFile }>,
      blobs,
      attached,
      dbInfo,
      held,
      ...(opts.bases && { bases: opts.bases }),
      ...(judge && { policy: policyRecord(judge.policy).record, signatures: graphs.map((r) => r.verdict!) }),
      ...(judge && opts.bases?.length && { keepInTar: await keptInTar(attached, carried, store) }),
    });
    if (opts.bases?.length) external = externalOf(index);
    trivyDbs = trivyDbReports(index.images, opts.maxDbAge);
    for (const w of trivyDbWarnings(trivyDbs, opts.maxDbAge, BUILD_DB_ADVICE)) progress.log(w);
    // Layers may still be arriving: the bundle is written in order while they do.
    const inTar = totalBytes - (external?.bytes ?? 0);
    progress.addTotal(inTar);
    const t = progress.transfer(`writing ${opts.output}`, inTar);
    try {
      written = await writeBundle({ output: opts.output, store, index, key: opts.key, mtime: created, ...(opts.splitSize !== undefined && { splitSize: opts.splitSize }), onBytes: (n) => t.advance(n), ready: (digest) => fetcher.pending(digest) ?? Promise.resolve() });
    } catch (err) {
      writeError = err;
    } finally {
      t.done();
    }
  }
  const settled = await settleDownloads(graphs);
  await http.close();

  const reports: ItemReport[] = [
    ...settled.map((r) => (refused.has(r.item.ref) ? reportGraph(r.item, undefined, refused.get(r.item.ref)) : reportGraph(r.item, r.graph, r.error))),
    ...files.map((r) => reportFile(r.item, r.file, r.error)),
  ];
  const failed = reports.filter((r) => !r.ok);
  const base = {
    items: reports,
    failed,
    downloadedBytes: fetcher.downloaded + files.reduce((n, r) => n + (r.file?.downloaded ?? 0), 0),
    totalBytes,
    blobs: blobs.length,
    ...(external && { external }),
    ...(attached.length > 0 && { attached: attached.length }),
    ...(warnings.length > 0 && { warnings }),
    ...(judge && { signatures: graphs.flatMap((r) => (r.verdict ? [r.verdict] : [])) }),
  };
  if (writeError && failed.length === 0) throw writeError;
  if (!written || failed.length > 0) return base;
  return { ...base, bundle: { path: written.path, sha256: written.sha256, size: written.size, ...(opts.splitSize !== undefined && { parts: [...written.parts] }) }, ...(trivyDbs && { trivyDbs }) };
}

/**
 * Every image and artifact: its manifests resolved and walked; its blobs on
 * their way into the cache; then what is attached to each of its manifests
 * found (unless turned off), while its layers download.
 */
export async function resolveImages(
  opts: BuildOptions,
  store: ContentStore,
  http: Http,
  fetcher: BlobFetcher,
  limit: Limit,
  warn: (message: string) => void,
  judge?: Judge,
  /** A policy checks the signatures (here with `judge`, or later: sync): see AttachedFinder. */
  forPolicy = judge !== undefined,
): Promise<GraphResult[]> {
  const clients = new Map<string, RegistryClient>();
  const clientFor = (host: string) => {
    let c = clients.get(host);
    if (!c) clients.set(host, (c = new RegistryClient(host, http)));
    return c;
  };
  const refs = opts.plan.items.filter((i): i is ImageItem | ArtifactItem => i.kind !== 'file');
  // Slots of its own (the dispatcher has connections for them): lookups neither wait behind layers nor hold a slot one needs.
  // Twice the downloads': each is a small GET, and an image's lookups are a chain (tags and referrers, the fallback tag, each
  // manifest found), so with fewer the bundle's first byte waited for them (measured: scripts/bench-attached.ts).
  // With a policy the signatures' blobs are fetched ahead of layers: every verdict goes into bundle.json, the tar's first entry.
  const finder = opts.attached !== false && opts.plan.attached !== false && (opts.dryRun !== true || forPolicy) ? new AttachedFinder(store, fetcher, pLimit(opts.concurrency * 2), warn, forPolicy) : undefined;
  return Promise.all(
    refs.map(async (item): Promise<GraphResult> => {
      const platforms = item.kind === 'image' ? (opts.platforms ?? item.platforms) : undefined;
      try {
        const hooks = {
          limit,
          fetchBlob: (c: RegistryClient, repo: string, d: Parameters<BlobFetcher['fetch']>[2], urgent?: boolean) => fetcher.fetch(c, repo, d, urgent),
          dryRun: opts.dryRun === true,
          ...(finder && { rootKnown: (digest: string) => finder.start(clientFor(item.reference.registry), item, digest) }),
        };
        const g = await pullGraph(clientFor(item.reference.registry), item.reference, store, hooks, platforms);
        if (g.note) opts.progress.log(`${item.ref}: ${g.note}`);
        if (!finder) return { item, graph: g };
        const attached = await finder.find(clientFor(item.reference.registry), item, g);
        // A blob of an attached manifest that fails fails the item, as any of its blobs does.
        const downloads = Promise.all([g.downloads, attached.downloads]).then(() => undefined);
        downloads.catch(() => undefined);
        if (!judge) return { item, graph: { ...g, downloads }, attached };
        // Verified while the layers still download: the signatures' blobs are few and small.
        await attached.downloads;
        const image = { ref: item.ref, digest: g.digest, children: g.manifests.slice(1), ...(g.upstreamDigest && { upstreamDigest: g.upstreamDigest }) };
        const verdict = await judge.judge(image, attached.entries, { blob: (d) => store.read(d) });
        return { item, graph: { ...g, downloads }, attached, verdict };
      } catch (err) {
        return { item, error: errorText(err, item.ref) };
      } finally {
        opts.progress.itemDone();
      }
    }),
  );
}

/**
 * Each verdict under an enforce rule with no signature that counts, as the
 * item's error (by ref): the build stops before the bundle is written. Warn
 * verdicts are warnings.
 */
function judgeAll(policy: Policy, graphs: readonly GraphResult[], warn: (m: string) => void): Map<string, string> {
  const refused = new Map<string, string>();
  for (const { item, verdict } of graphs) {
    if (!verdict) continue;
    if (warns(verdict)) warn(warnText(policy, verdict));
    if (blocks(verdict)) {
      const reasons = (verdict.reasons ?? []).map((r) => `\n      - ${r}`).join('');
      refused.set(item.ref, `${item.ref}: signature policy: ${verdict.verdict} under ${ruleText(policy, verdict.rule)}, which requires a signature that counts${reasons}`);
    }
  }
  return refused;
}

/** The policy, its keys and trusted root into the store: blobs of the bundle. */
async function carryPolicy(policy: Policy, store: ContentStore): Promise<Descriptor[]> {
  const { blobs } = policyRecord(policy);
  for (const b of blobs) await store.putBuffer(b.bytes, b.digest);
  // Not OCI content: the media type only satisfies the descriptor shape, bundle.json records digest and size.
  return blobs.map((b) => ({ mediaType: 'application/octet-stream', digest: b.digest, size: b.size }));
}

/**
 * What a delta built with a policy keeps in its tar although a base holds it:
 * what the inside needs to check the publishers' signatures again offline from
 * the bundle alone (the policy's files, each signature's manifest, blobs and
 * subject). A few KiB. Without a policy a delta stays minimal.
 */
async function keptInTar(attached: readonly BundleAttached[], carried: ReadonlyArray<{ digest: string }>, store: ContentStore): Promise<Set<string>> {
  const keep = new Set(carried.map((c) => c.digest));
  for (const a of attached) {
    if (a.kind !== 'signature') continue;
    keep.add(a.digest).add(a.subject);
    const m = JSON.parse((await store.read(a.digest)).toString('utf8')) as { config?: { digest?: unknown }; layers?: Array<{ digest?: unknown }> };
    for (const d of [m.config, ...(m.layers ?? [])]) if (typeof d?.digest === 'string') keep.add(d.digest);
  }
  return keep;
}

/** The attached entries of every item, each once (two references to one image find the same ones). */
export function attachedOf(graphs: readonly GraphResult[]): BundleAttached[] {
  const out = new Map<string, BundleAttached>();
  for (const r of graphs) {
    for (const a of r.attached?.entries ?? []) {
      const key = `${a.repository}\0${a.subject}\0${a.tag ?? ''}\0${a.digest}`;
      // The same index carried whole by another reference: its signature is pushed with it, not kept for the policy only.
      if (a.upstream && out.has(key)) continue;
      out.set(key, a);
    }
  }
  return [...out.values()];
}

/** Every file, verified into the cache (or left to a base that holds it). */
export async function resolveFiles(opts: BuildOptions, store: ContentStore, http: Http, limit: Limit, heldSizes: ReadonlyMap<string, number>): Promise<FileResult[]> {
  const files = opts.plan.items.filter((i): i is FileItem => i.kind === 'file');
  return Promise.all(
    files.map(async (item): Promise<FileResult> => {
      try {
        const f = await pullFile(item, { http, store, limit, progress: opts.progress, dryRun: opts.dryRun === true, held: (path, sha256) => heldSizes.get(`${path}\0${sha256}`) });
        return { item, file: f };
      } catch (err) {
        return { item, error: errorText(err, item.url) };
      } finally {
        opts.progress.itemDone();
      }
    }),
  );
}

async function readDbDates(graphs: readonly GraphResult[], store: ContentStore, fetcher: BlobFetcher, held: ReadonlyMap<string, unknown>): Promise<Map<string, TrivyDbInfo>> {
  const dbInfo = new Map<string, TrivyDbInfo>();
  await Promise.all(
    graphs.map(async ({ item, graph }) => {
      const info = graph && (await readDbInfo(item, graph, store, (d) => fetcher.pending(d), held));
      if (info) dbInfo.set(item.ref, info);
    }),
  );
  return dbInfo;
}

/** Every download has settled before anything is reported, so every failure is named. */
async function settleDownloads(graphs: readonly GraphResult[]): Promise<GraphResult[]> {
  return Promise.all(
    graphs.map(async (r) => {
      if (!r.graph) return r;
      try {
        await r.graph.downloads;
        return r;
      } catch (err) {
        return { item: r.item, error: errorText(err, r.item.ref) };
      }
    }),
  );
}
