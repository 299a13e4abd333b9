// `airlock build`: from a validated Plan to a signed bundle. Every item is
// pulled into the content store with bounded concurrency (blobs shared by
// several images are fetched once), failures are collected rather than
// stopping the others, and the bundle is written only when all succeeded.
import type { KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';
import pLimit from 'p-limit';
import { ContentStore } from '../cache/store.js';
import { pullFile, type PulledFile } from '../fetch/pull.js';
import type { FileItem, ImageItem, ArtifactItem, Plan } from '../manifest/types.js';
import type { Progress } from '../progress/reporter.js';
import { RegistryClient } from '../registry/client.js';
import { pullGraph, type Descriptor, type PulledGraph } from '../registry/pull.js';
import type { HostSettings } from '../http/agent.js';
import { Http } from '../http/client.js';
import type { CredentialLookup } from '../http/credentials.js';
import type { RetryPolicy } from '../http/retry.js';
import type { Base } from '../delta/base.js';
import { BUNDLE_SCHEMA_VERSION, type BlobFrom, type BundleBlob, type BundleFile, type BundleImage, type BundleIndex, type TrivyDbInfo } from './format.js';
import { isTrivyDbRole, readTrivyDbInfo, TRIVY_DB_LAYER, trivyDbLayer, trivyDbReports, trivyDbWarnings, type MaxDbAge, type TrivyDbReport } from './trivydb.js';
import { writeBundle } from './writer.js';
import { fingerprint } from '../sign/keys.js';

export interface BuildOptions {
  readonly plan: Plan;
  readonly output?: string;
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
  readonly bundle?: { path: string; sha256: string; size: number };
  /** The Trivy DBs' dates from their metadata.json (when a bundle is written). */
  readonly trivyDbs?: TrivyDbReport[];
}

export async function build(opts: BuildOptions): Promise<BuildResult> {
  const { plan, progress } = opts;
  const store = new ContentStore(opts.cacheDir);
  await store.init();
  const http = createHttp(opts, (host) => hostSettings(plan, host));
  const clients = new Map<string, RegistryClient>();
  const clientFor = (host: string) => {
    let c = clients.get(host);
    if (!c) clients.set(host, (c = new RegistryClient(host, http)));
    return c;
  };
  const limit = pLimit(opts.concurrency);
  let downloaded = 0;
  const blobFetches = new Map<string, Promise<void>>();
  const held = heldByBases(opts.bases ?? []);

  const fetchBlob = (client: RegistryClient, repo: string, d: Descriptor): Promise<void> => {
    // A base holds it: it stays out of the tar, so it is not downloaded (manifests are: the walk needs them).
    if (held.blobs.has(d.digest)) return Promise.resolve();
    let p = blobFetches.get(d.digest);
    if (!p) {
      p = (async () => {
        progress.addTotal(d.size);
        if (await store.has(d.digest, d.size)) {
          const t = progress.transfer(d.digest, d.size);
          t.advance(d.size);
          t.done();
          return;
        }
        await limit(async () => {
          const what = `${client.host}/${repo}@${d.digest}`;
          const t = progress.transfer(`${repo}@${d.digest.slice(7, 19)}`, d.size);
          try {
            const got = await store.ingest({
              what,
              expected: d.digest,
              size: d.size,
              source: { open: (offset) => client.blob(repo, d.digest, offset, d.size) },
              retry: http.retryPolicy,
              onBytes: (n) => t.advance(n),
              onWait: (pid) => progress.log(`${what}: another airlock (pid ${pid}) is fetching it into the same cache; waiting for it`),
            });
            downloaded += got.downloaded;
          } finally {
            t.done();
          }
        });
      })();
      blobFetches.set(d.digest, p);
    }
    return p;
  };

  const refs = plan.items.filter((i): i is ImageItem | ArtifactItem => i.kind !== 'file');
  const files = plan.items.filter((i): i is FileItem => i.kind === 'file');
  progress.itemsTotal(plan.items.length);

  const graphResults = await Promise.all(
    refs.map(async (item) => {
      const platforms = item.kind === 'image' ? (opts.platforms ?? item.platforms) : undefined;
      try {
        const g = await pullGraph(clientFor(item.reference.registry), item.reference, store, { limit, fetchBlob, dryRun: opts.dryRun === true }, platforms);
        if (g.note) progress.log(`${item.ref}: ${g.note}`);
        return { item, graph: g };
      } catch (err) {
        return { item, error: errorText(err, item.ref) };
      } finally {
        progress.itemDone();
      }
    }),
  );
  const fileResults = await Promise.all(
    files.map(async (item) => {
      try {
        const f = await pullFile(item, { http, store, limit, progress, dryRun: opts.dryRun === true, held: (path, sha256) => held.fileSizes.get(`${path}\0${sha256}`) });
        downloaded += f.downloaded;
        return { item, file: f };
      } catch (err) {
        return { item, error: errorText(err, item.url) };
      } finally {
        progress.itemDone();
      }
    }),
  );
  // Layers may still be arriving: the bundle is written in order while they do.
  let written: Awaited<ReturnType<typeof writeBundle>> | undefined;
  let writeError: unknown;
  const resolved = graphResults.every((r) => r.graph) && fileResults.every((r) => r.file);
  const blobs = uniqueBlobs(graphResults.flatMap((r) => r.graph?.blobs ?? []));
  const totalBytes = blobs.reduce((n, b) => n + b.size, 0) + fileResults.reduce((n, r) => n + (r.file?.size ?? 0), 0);
  let trivyDbs: TrivyDbReport[] | undefined;
  let external: BuildResult['external'];
  if (resolved && !opts.dryRun) {
    if (!opts.output || !opts.key) throw new Error('build: output and key are required unless --dry-run');
    // bundle.json comes first in the tar and carries the DBs' dates: the DB layers are read before writing starts.
    const dbInfo = new Map<string, TrivyDbInfo>();
    await Promise.all(
      graphResults.map(async ({ item, graph }) => {
        const info = graph && (await readDbInfo(item, graph, store, (d) => blobFetches.get(d), held.blobs));
        if (info) dbInfo.set(item.ref, info);
      }),
    );
    const created = opts.sourceDateEpoch !== undefined ? new Date(opts.sourceDateEpoch * 1000) : new Date();
    const index: Omit<BundleIndex, 'layout'> = {
      schemaVersion: BUNDLE_SCHEMA_VERSION,
      name: plan.name,
      version: plan.version ?? '',
      created: created.toISOString(),
      tool: opts.tool,
      signer: { fingerprint: fingerprint(opts.key) },
      images: graphResults.map(({ item, graph }): BundleImage => {
        const g = graph as PulledGraph;
        return {
          ref: item.ref,
          digest: g.digest,
          mediaType: g.mediaType,
          kind: item.kind,
          ...(item.kind === 'artifact' && item.role && { role: item.role }),
          ...(g.upstreamDigest && { upstreamDigest: g.upstreamDigest }),
          platforms: g.platforms,
          size: g.size,
          ...(dbInfo.has(item.ref) && { trivyDb: dbInfo.get(item.ref) }),
        };
      }),
      files: fileResults.map(({ item, file }): BundleFile => {
        const f = file as PulledFile;
        const sha256 = f.sha256 ?? '';
        const size = f.size ?? 0;
        return { path: item.path, sha256, size, source: item.url, role: item.role, checksum: f.checksum, ...(held.files.has(fileKey(item.path, sha256, size)) && { external: true as const }) };
      }),
      blobs: blobs.map((b): BundleBlob => {
        const from = held.blobs.get(b.digest);
        return from ? { ...b, external: true, from } : b;
      }),
      ...(opts.bases?.length && { bases: opts.bases.map((b) => ({ kind: b.kind, name: b.name, version: b.version, sha256: b.sha256 })) }),
    };
    const extBlobs = index.blobs.filter((b) => b.external);
    const extFiles = index.files.filter((f) => f.external);
    if (opts.bases?.length) external = { blobs: extBlobs.length, files: extFiles.length, bytes: extBlobs.reduce((n, b) => n + b.size, 0) + extFiles.reduce((n, f) => n + f.size, 0) };
    trivyDbs = trivyDbReports(index.images, opts.maxDbAge);
    for (const w of trivyDbWarnings(trivyDbs, opts.maxDbAge, BUILD_DB_ADVICE)) progress.log(w);
    const inTar = totalBytes - (external?.bytes ?? 0);
    progress.addTotal(inTar);
    const t = progress.transfer(`writing ${opts.output}`, inTar);
    try {
      written = await writeBundle({
        output: opts.output,
        store,
        index,
        key: opts.key,
        mtime: created,
        onBytes: (n) => t.advance(n),
        ready: (digest) => blobFetches.get(digest) ?? Promise.resolve(),
      });
    } catch (err) {
      writeError = err;
    } finally {
      t.done();
    }
  }
  // Every download has settled before anything is reported, so every failure is named.
  const settled = await Promise.all(
    graphResults.map(async (r) => {
      if (!r.graph) return r;
      try {
        await r.graph.downloads;
        return r;
      } catch (err) {
        return { item: r.item, error: errorText(err, r.item.ref) };
      }
    }),
  );
  await http.close();

  const reports: ItemReport[] = [
    ...settled.map((r): ItemReport => reportGraph(r.item, r.graph, r.error)),
    ...fileResults.map((r): ItemReport => reportFile(r.item, r.file, r.error)),
  ];
  const failed = reports.filter((r) => !r.ok);
  const base = { items: reports, failed, downloadedBytes: downloaded, totalBytes, blobs: blobs.length, ...(external && { external }) };
  if (writeError && failed.length === 0) throw writeError;
  if (!written || failed.length > 0) return base;
  return { ...base, bundle: { path: written.path, sha256: written.sha256, size: written.size }, ...(trivyDbs && { trivyDbs }) };
}

const BUILD_DB_ADVICE = 'Trivy publishes a new DB every 6 hours (the Java DB daily): check that the source is not a stale mirror or a pinned digest';

/**
 * A Trivy DB's metadata.json dates, streamed from its layer in the cache once
 * the download is done; undefined for anything that is not a Trivy DB. A failed
 * download leaves it unknown (the failure itself is reported with the item).
 */
async function readDbInfo(
  item: ImageItem | ArtifactItem,
  graph: PulledGraph,
  store: ContentStore,
  fetched: (digest: string) => Promise<void> | undefined,
  held: ReadonlyMap<string, unknown>,
): Promise<TrivyDbInfo | undefined> {
  const layer = trivyDbLayer(graph.blobs);
  if (!layer) return item.kind === 'artifact' && isTrivyDbRole(item.role) ? { problem: `it has no layer of type ${TRIVY_DB_LAYER} (or the Java DB's)` } : undefined;
  if (held.has(layer.digest) && !(await store.has(layer.digest, layer.size))) return { problem: 'its layer is held by a base and was not downloaded' };
  try {
    await (fetched(layer.digest) ?? graph.downloads);
  } catch {
    return { problem: 'its layer was not downloaded' };
  }
  return store.derived('trivydb', layer.digest, () => readTrivyDbInfo(createReadStream(store.pathOf(layer.digest))));
}

function hostSettings(plan: Plan, host: string): HostSettings {
  const r = plan.registries[host];
  if (!r) return {};
  return {
    ...(r.plainHttp !== undefined && { plainHttp: r.plainHttp }),
    ...(r.caFile !== undefined && { caFile: r.caFile }),
    ...(r.insecureSkipTLSVerify !== undefined && { insecure: r.insecureSkipTLSVerify }),
  };
}

/** What the bases hold: each blob with where the inside finds it (the first base that holds it), each file by path, sha256 and size. */
function heldByBases(bases: readonly Base[]): { blobs: Map<string, BlobFrom>; files: Set<string>; fileSizes: Map<string, number> } {
  const blobs = new Map<string, BlobFrom>();
  const files = new Set<string>();
  /** Path and sha256 to size: a file whose checksum the manifest gives is not downloaded when a base holds it. */
  const fileSizes = new Map<string, number>();
  for (const [n, b] of bases.entries()) {
    for (const x of b.blobs) {
      if (blobs.has(x.digest)) continue;
      const image = b.imageOf?.get(x.digest);
      blobs.set(x.digest, { base: n, ...(x.repository !== undefined && { repository: x.repository }), ...(image !== undefined && { image }) });
    }
    for (const f of b.files) {
      files.add(fileKey(f.path, f.sha256, f.size));
      if (!fileSizes.has(`${f.path}\0${f.sha256}`)) fileSizes.set(`${f.path}\0${f.sha256}`, f.size);
    }
  }
  return { blobs, files, fileSizes };
}

function fileKey(path: string, sha256: string, size: number): string {
  return `${path}\0${sha256}\0${size}`;
}

function uniqueBlobs(all: Descriptor[]): BundleBlob[] {
  const seen = new Map<string, BundleBlob>();
  for (const d of all) if (!seen.has(d.digest)) seen.set(d.digest, { digest: d.digest, size: d.size });
  return [...seen.values()];
}

function reportGraph(item: ImageItem | ArtifactItem, g: PulledGraph | undefined, error: string | undefined): ItemReport {
  if (!g) return { kind: item.kind, name: item.ref, ok: false, error: error ?? 'failed' };
  return {
    kind: item.kind,
    name: item.ref,
    ok: true,
    digest: g.digest,
    ...(g.upstreamDigest && { upstreamDigest: g.upstreamDigest }),
    size: g.size,
    platforms: g.platforms,
    ...(g.note && { note: g.note }),
  };
}

function reportFile(item: FileItem, f: PulledFile | undefined, error: string | undefined): ItemReport {
  if (!f) return { kind: 'file', name: item.path, source: item.url, ok: false, error: error ?? 'failed' };
  return { kind: 'file', name: item.path, source: item.url, ok: true, ...(f.sha256 && { digest: `sha256:${f.sha256}` }), ...(f.size !== undefined && { size: f.size }) };
}

function errorText(err: unknown, what: string): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.includes(what) ? msg : `${what}: ${msg}`;
}

/** The one dispatcher of a build: TLS per source host, credentials per host, the minimum rate. */
function createHttp(opts: BuildOptions, settings: (host: string) => HostSettings): Http {
  const window = opts.bodyTimeoutMs ?? 60_000;
  return new Http({
    connections: opts.concurrency,
    settings,
    ...(opts.bodyTimeoutMs !== undefined && { bodyTimeoutMs: opts.bodyTimeoutMs }),
    rateWindowMs: window,
    minBytesPerWindow: Math.round(((opts.minBytesPerSecond ?? 1024) * window) / 1000),
    userAgent: opts.tool.replace(' ', '/'),
    ...(opts.credentials && { credentials: opts.credentials }),
    ...(opts.retry && { retry: opts.retry }),
    ...(opts.warn && { warn: opts.warn }),
  });
}
