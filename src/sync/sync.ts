// `airlock sync`: what build then unpack would do, for a machine that reaches
// both upstream and the private registry, with no bundle and no key. The
// same steps, composed differently: build's walk resolves every image's
// manifests from upstream into the content store (small) and its file step
// pins every file; build's composeIndex makes the same index a bundle would
// carry; then unpack's steps run with the content store as their source
// (src/sync/source.ts): the quick look at the target first, then only what
// it lacks is fetched from upstream (verified into the cache) and pushed.
import pLimit from 'p-limit';
import { ContentStore } from '../cache/store.js';
import { attachedOf, resolveFiles, resolveImages, type BuildOptions, type FileResult, type GraphResult } from '../build/build.js';
import { composeIndex, uniqueBlobs } from '../build/compose.js';
import { reportFile, reportGraph } from '../build/report.js';
import { BUILD_DB_ADVICE, readDbInfo } from '../build/trivy.js';
import type { BundleIndex } from '../bundle/format.js';
import { isTrivyDbRole, trivyDbLayer, trivyDbReports, trivyDbWarnings, type MaxDbAge } from '../bundle/trivydb.js';
import type { PulledFile } from '../fetch/pull.js';
import type { ArtifactItem, FileItem, ImageItem, Plan } from '../manifest/types.js';
import type { PulledGraph } from '../registry/pull.js';
import { unpackFrom, type TargetOptions, type UnpackResult } from '../unpack/unpack.js';
import { LazyFetcher } from './fetch.js';
import { heldByTarget } from './files.js';
import { CacheSource } from './source.js';

export interface SyncOptions extends TargetOptions {
  readonly plan: Plan;
  readonly cacheDir: string;
  /** `--platform`: replaces every image's platform filter. */
  readonly platforms?: string[];
  readonly tool: string;
  /** Seconds since the epoch (SOURCE_DATE_EPOCH): fixes `created`. */
  readonly sourceDateEpoch?: number;
  /** `--no-attached` (false): no signatures, attestations or SBOMs are looked for (SPEC §9). */
  readonly attached?: boolean;
}

export interface SyncResult extends UnpackResult {
  /** What came from upstream: blobs and files not in the cache and needed by the target. */
  readonly fetched: { blobs: number; files: number; bytes: number };
}

/** Items that failed to resolve or download: nothing was pushed. */
export class SyncResolveError extends Error {
  readonly exitCode = 1;
  constructor(readonly failed: Array<{ kind: string; name: string; error?: string }>, total: number) {
    super(
      `${failed.length} of ${total} items failed; nothing was pushed:\n` +
        failed.map((f) => `  ${f.kind} ${f.name}: ${withoutPrefix(f.error ?? 'failed', `${f.name}: `)}`).join('\n'),
    );
    this.name = 'SyncResolveError';
  }
}

export async function sync(opts: SyncOptions): Promise<SyncResult> {
  const { plan, progress, http } = opts;
  const store = new ContentStore(opts.cacheDir);
  await store.init();
  const limit = pLimit(opts.concurrency);
  // Downloads get a limit of their own: an upload holds a slot of `limit` while its blob is fetched.
  const fetcher = new LazyFetcher(store, http, progress, pLimit(opts.concurrency));
  const asBuild: BuildOptions = { plan, cacheDir: opts.cacheDir, concurrency: opts.concurrency, progress, tool: opts.tool, ...(opts.platforms && { platforms: opts.platforms }), ...(opts.attached === false && { attached: false }) };
  progress.itemsTotal(plan.items.length);

  const held = await heldByTarget(plan, store, http, opts.files, limit);
  const [graphs, files] = await Promise.all([resolveImages(asBuild, store, http, fetcher, limit, (m) => progress.log(`warning: ${m}`), undefined, opts.signatures?.policy !== undefined), resolveFiles(asBuild, store, http, limit, held)]);
  const failed = [...graphs.filter((r) => !r.graph).map((r) => reportGraph(r.item, undefined, r.error)), ...files.filter((r) => !r.file).map((r) => reportFile(r.item, undefined, r.error))];
  if (failed.length > 0) throw new SyncResolveError(failed, plan.items.length);

  const index = syncIndex(opts, graphs, files);
  const source = new CacheSource(index, Buffer.from(JSON.stringify(index, null, 2) + '\n'), store, fetcher);
  // The DBs' dates are known only after the push (their layers may be fetched by it): warned about then, not by unpack's step.
  const result = await unpackFrom(source, { ...opts, maxDbAge: undefined });
  await recordDbDates(index, graphs, store, opts.maxDbAge, (m) => progress.log(m));
  const filesBytes = files.reduce((n, r) => n + (r.file?.downloaded ?? 0), 0);
  // No bundle, nothing signed: the receipt says so instead of naming the sha256 of an index nobody can check.
  const receipt = result.receipt && { ...result.receipt, bundle: { name: index.name, version: index.version, created: index.created, synced: true as const } };
  return { ...result, ...(receipt && { receipt }), fetched: { blobs: fetcher.fetched, files: files.filter((r) => (r.file?.downloaded ?? 0) > 0).length, bytes: fetcher.downloaded + filesBytes } };
}

/** The index a build of the same manifest would sign (no tar behind it, so no layout entries, no signer). */
function syncIndex(opts: SyncOptions, graphs: readonly GraphResult[], files: readonly FileResult[]): BundleIndex {
  const resolved = graphs as Array<{ item: ImageItem | ArtifactItem; graph: PulledGraph }>;
  const composed = composeIndex({
    plan: opts.plan,
    tool: opts.tool,
    created: opts.sourceDateEpoch !== undefined ? new Date(opts.sourceDateEpoch * 1000) : new Date(),
    graphs: resolved,
    files: files as Array<{ item: FileItem; file: PulledFile }>,
    blobs: uniqueBlobs([...resolved.flatMap((r) => r.graph.blobs), ...graphs.flatMap((r) => r.attached?.blobs ?? [])]),
    attached: attachedOf(graphs),
    dbInfo: new Map(),
    held: { blobs: new Map(), files: new Set() },
  });
  return { ...composed, layout: { 'oci-layout': { sha256: '', size: 0 }, 'index.json': { sha256: '', size: 0 } } };
}

/**
 * A Trivy DB's dates, read from its layer when the cache holds it (fetched
 * now, or by an earlier run), and the --max-db-age warnings as build gives
 * them. A layer the target held and the cache lacks is not fetched for this.
 */
async function recordDbDates(index: BundleIndex, graphs: readonly GraphResult[], store: ContentStore, maxDbAge: MaxDbAge | undefined, warn: (m: string) => void): Promise<void> {
  for (const [i, { item, graph }] of graphs.entries()) {
    const image = index.images[i];
    if (!graph || !image) continue;
    const layer = trivyDbLayer(graph.blobs);
    if (!layer && !(item.kind === 'artifact' && isTrivyDbRole(item.role))) continue;
    if (layer && !(await store.has(layer.digest, layer.size))) {
      image.trivyDb = { problem: 'its layer was at the target already and is not in the cache, so sync did not fetch it to read the dates' };
      continue;
    }
    const info = await readDbInfo(item, graph, store, () => undefined, new Map()).catch(() => undefined);
    if (info) image.trivyDb = info;
  }
  for (const w of trivyDbWarnings(trivyDbReports(index.images, maxDbAge), maxDbAge, BUILD_DB_ADVICE)) warn(w);
}

function withoutPrefix(text: string, prefix: string): string {
  return text.startsWith(prefix) ? text.slice(prefix.length) : text;
}
