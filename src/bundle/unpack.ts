// `airlock unpack`: from a signed bundle to the private registry and file
// server, same digests as upstream.
//
// Design (issue #4's choice): the signature is checked first; then a quick
// look at the target decides whether anything is missing at all (a rerun
// usually finds nothing to do and reads no further). Otherwise one pass
// verifies every entry of the tar, recording where each starts, and only
// then does anything get pushed, concurrently, with positioned reads that
// hash the bytes again on the way out. Manifests go after their blobs,
// children before parents, tags last; a tag never points at anything that
// was not verified.
import pLimit from 'p-limit';
import type { KeyObject } from 'node:crypto';
import type { Progress } from '../progress/reporter.js';
import { RegistryClient, RegistryError } from '../registry/client.js';
import { HarborApi, harborProject } from '../registry/harbor.js';
import type { Http } from '../http/client.js';
import { falcoIndexEntries, falcoIndexYaml } from '../emit/falco-index.js';
import { makeReceipt, type HeldImage, type Receipt } from '../delta/receipt.js';
import { BLOBS_PREFIX, FILES_PREFIX, type BlobFrom, type BundleImage, type BundleIndex } from './format.js';
import type { FileTarget } from './files-target.js';
import { readGraph, type ImageGraph } from './graph.js';
import { BundleReader } from './reader.js';
import { walkGraph } from '../oci/graph.js';
import { parseReference } from '../oci/reference.js';
import { printable } from '../util/printable.js';
import { planTargets, targetRepository, TargetConflictError, type Layout, type TargetName, type TargetRegistry } from './targets.js';
import { trivyDbReports, trivyDbWarnings, type MaxDbAge } from './trivydb.js';

export interface UnpackOptions {
  readonly bundle: string;
  readonly pub: KeyObject;
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
  readonly index: BundleReader['index'];
  /** With `receipt: true`: what the target now holds from this bundle. */
  readonly receipt?: Receipt;
}

/** A delta whose external entries are not all at the target: nothing was pushed. */
export class MissingBaseError extends Error {
  readonly exitCode = 1;
  constructor(readonly missing: string[]) {
    super(
      `the target lacks ${missing.length} item${missing.length === 1 ? '' : 's'} this delta leaves to its bases; nothing was pushed. ` +
        `Unpack the base named first (or build a full bundle, or a delta against a receipt of this target):\n` +
        missing.map((m) => `  ${m}`).join('\n'),
    );
    this.name = 'MissingBaseError';
  }
}

interface Graph extends ImageGraph {
  readonly image: BundleImage;
  readonly target: TargetName;
}

export async function unpack(opts: UnpackOptions): Promise<UnpackResult> {
  const reader = await BundleReader.open(opts.bundle, { pub: opts.pub });
  try {
    return await run(reader, opts);
  } finally {
    await reader.close();
  }
}

async function run(reader: BundleReader, opts: UnpackOptions): Promise<UnpackResult> {
  const { index } = reader;
  const targets = planTargets(index.images, opts.registry, opts.layout);
  await checkHarborProjects(targets, opts);
  const client = new RegistryClient(opts.registry.host, opts.http);
  const limit = pLimit(opts.concurrency);
  const falcoEntries = falcoIndexEntries(index, opts.registry, opts.layout);
  const dbAdvice = 'Trivy in the air gap scans with this DB: build and carry a newer bundle';
  for (const w of trivyDbWarnings(trivyDbReports(index.images, opts.maxDbAge), opts.maxDbAge, dbAdvice)) opts.progress.log(w);

  // Quick look: which images (by digest, and by tag) and files are there already?
  const present = await Promise.all(
    targets.map((t) =>
      limit(async () => {
        const byDigest = await client.resolve(t.repository, t.digest);
        if (!byDigest || byDigest.digest !== t.digest) return false;
        if (t.tag === undefined) return true;
        return (await client.resolve(t.repository, t.tag))?.digest === t.digest;
      }),
    ),
  );
  const filesPresent = await Promise.all(index.files.map((f) => limit(() => opts.files.has(f.path, f.sha256, f.size))));
  const items: UnpackItem[] = [];
  const imageItem = (t: TargetName, img: BundleImage, status: UnpackItem['status']): UnpackItem => ({
    kind: img.kind,
    source: img.ref,
    target: `${opts.registry.host}/${t.repository}${t.tag !== undefined ? `:${t.tag}` : ''}@${t.digest}`,
    digest: t.digest,
    status,
  });
  const fileItem = (i: number, status: UnpackItem['status']): UnpackItem => {
    const f = index.files[i]!;
    return { kind: 'file', source: f.source, target: `${opts.files.describe}/${f.path}`, digest: `sha256:${f.sha256}`, status };
  };

  if (present.every(Boolean) && filesPresent.every(Boolean)) {
    if (falcoEntries.length) await opts.files.putBytes('falco/index.yaml', falcoIndexYaml(falcoEntries));
    targets.forEach((t, i) => items.push(imageItem(t, index.images[i]!, 'present')));
    index.files.forEach((_f, i) => items.push(fileItem(i, 'present')));
    // The receipt needs each image's manifests: the tar's headers are walked and the manifests read (small), nothing else.
    const receipt = opts.receipt ? await receiptFor(reader, opts, targets, new Map(), false) : undefined;
    return { items, blobsPushed: 0, blobsMounted: 0, blobsPresent: 0, bytesUploaded: 0, filesWritten: 0, upToDate: true, index, ...(falcoEntries.length && { falcoIndex: 'falco/index.yaml' }), ...(receipt && { receipt }) };
  }

  // Every byte is verified before anything is pushed.
  const total = reader.plan().reduce((n, e) => n + e.size, 0);
  opts.progress.addTotal(total);
  const vt = opts.progress.transfer(`verifying ${opts.bundle}`, total);
  await reader.verify((n) => vt.advance(n));
  vt.done();

  const graphs: Graph[] = [];
  for (const [i, image] of index.images.entries()) {
    if (present[i]) {
      items.push(imageItem(targets[i]!, image, 'present'));
      continue;
    }
    graphs.push({ image, target: targets[i]!, ...(await readGraph(reader, image)) });
  }
  // A delta: every external entry must be at the target before anything is pushed.
  const mountFrom = await checkExternals(index, graphs, filesPresent, client, opts, limit);

  // Blobs: each repository needs every blob of its images. The first repository
  // to need a digest uploads it; the others mount it from there.
  let blobsPushed = 0;
  let blobsMounted = 0;
  let blobsPresent = 0;
  let bytesUploaded = 0;
  const uploads = new Map<string, Promise<string>>();
  const needed = new Map<string, Set<string>>();
  for (const g of graphs) {
    const set = needed.get(g.target.repository) ?? new Set<string>();
    for (const d of g.blobs) set.add(d);
    needed.set(g.target.repository, set);
  }
  const sizeOf = new Map(index.blobs.map((b) => [b.digest, b.size]));
  opts.progress.addTotal([...new Set([...needed.values()].flatMap((s) => [...s]))].reduce((n, d) => n + (sizeOf.get(d) ?? 0), 0));
  const ensureBlob = async (repo: string, digest: string): Promise<void> => {
    const size = sizeOf.get(digest) ?? 0;
    if (await limit(() => client.hasBlob(repo, digest))) {
      blobsPresent++;
      return;
    }
    const external = mountFrom.get(digest);
    if (external !== undefined) {
      // Not in the tar: a base put it in another repository, checked above.
      if (!(await limit(() => client.mountBlob(repo, digest, external)))) {
        throw new RegistryError(`${opts.registry.host} did not mount ${digest} from ${external} into ${repo}, and the delta does not carry it; unpack the base into ${repo} first`);
      }
      blobsMounted++;
      return;
    }
    const first = uploads.get(digest);
    if (first) {
      const from = await first;
      if (from !== repo && (await limit(() => client.mountBlob(repo, digest, from)))) {
        blobsMounted++;
        return;
      }
    }
    const upload = (async () => {
      await limit(async () => {
        const t = opts.progress.transfer(`${repo}@${digest.slice(7, 19)}`, size);
        try {
          const name = BLOBS_PREFIX + digest.slice(7);
          await client.uploadBlob(repo, digest, size, (start, end) => counted(reader.range(name, start, end), (n) => t.advance(n)), {
            ...(opts.chunkSize && { chunkSize: opts.chunkSize, monolithicMax: opts.chunkSize }),
          });
        } finally {
          t.done();
        }
      });
      blobsPushed++;
      bytesUploaded += size;
      return repo;
    })();
    if (!first) uploads.set(digest, upload);
    await upload;
  };
  await Promise.all([...needed.entries()].flatMap(([repo, digests]) => [...digests].map((d) => ensureBlob(repo, d))));

  // Manifests, children first, byte for byte; the tag goes with the root, last.
  await Promise.all(
    graphs.map((g) =>
      limit(async () => {
        if (g.manifests.length === 0 && g.target.tag !== undefined) {
          // The root is external, at the target by digest (checked above): only the tag is new. Its bytes come from there, checked against the digest.
          const m = await client.manifest(g.target.repository, g.image.digest);
          await client.putManifest(g.target.repository, g.target.tag, m.bytes, m.mediaType);
        }
        for (const [i, m] of g.manifests.entries()) {
          const bytes = await reader.readEntry(BLOBS_PREFIX + m.digest.slice(7));
          const isRoot = i === g.manifests.length - 1;
          await client.putManifest(g.target.repository, m.digest, bytes, m.mediaType);
          if (isRoot && g.target.tag !== undefined) await client.putManifest(g.target.repository, g.target.tag, bytes, m.mediaType);
        }
        items.push(imageItem(g.target, g.image, 'pushed'));
      }),
    ),
  );

  // Files: streamed from the bundle, visible only once their digest matched.
  let filesWritten = 0;
  opts.progress.addTotal(index.files.reduce((n, f, i) => n + (filesPresent[i] ? 0 : f.size), 0));
  await Promise.all(
    index.files.map((f, i) =>
      limit(async () => {
        if (filesPresent[i]) {
          items.push(fileItem(i, 'present'));
          return;
        }
        const t = opts.progress.transfer(f.path, f.size);
        try {
          // The file target hashes what it writes and keeps it only on a match.
          await opts.files.put(f.path, counted(reader.range(FILES_PREFIX + f.path, 0, f.size), (n) => t.advance(n)), f.sha256, f.size);
        } finally {
          t.done();
        }
        filesWritten++;
        items.push(fileItem(i, 'pushed'));
      }),
    ),
  );
  if (falcoEntries.length) await opts.files.putBytes('falco/index.yaml', falcoIndexYaml(falcoEntries));

  const receipt = opts.receipt ? await receiptFor(reader, opts, targets, new Map(graphs.map((g) => [g.image.ref, g])), true) : undefined;
  return { items, blobsPushed, blobsMounted, blobsPresent, bytesUploaded, filesWritten, upToDate: false, index, ...(falcoEntries.length && { falcoIndex: 'falco/index.yaml' }), ...(receipt && { receipt }) };
}

/**
 * The receipt once every image and file is at the target: each image's
 * manifests and blobs from the bundle (graphs already read are reused; the
 * others are read from their verified, re-hashed manifest entries, after a
 * walk over the tar's headers when the tar was not read yet).
 */
async function receiptFor(reader: BundleReader, opts: UnpackOptions, targets: readonly TargetName[], known: ReadonlyMap<string, ImageGraph>, scanned: boolean): Promise<Receipt> {
  if (!scanned) await reader.scan();
  const inIndex = new Set(reader.index.blobs.map((b) => b.digest));
  const client = new RegistryClient(opts.registry.host, opts.http);
  const limit = pLimit(opts.concurrency);
  const held: HeldImage[] = await Promise.all(
    reader.index.images.map(async (image, i) => {
      const g = known.get(image.ref) ?? (await readGraph(reader, image));
      const target = targets[i]!;
      // A delta's external manifests are at the target (checked before pushing): what they list is read from there, so
      // the receipt names this image's repository for it too.
      const below = await Promise.all(g.externalManifests.map((m) => limit(() => belowAtTarget(client, target.repository, image.ref, m))));
      return { target, manifests: [...g.manifests, ...g.externalManifests].map((m) => m.digest), blobs: [...g.blobs, ...below.flat().filter((d) => inIndex.has(d))] };
    }),
  );
  // What still has no repository (a manifest the target would not serve again): where its base put it, when that is one of this bundle's repositories.
  const repositories = new Set(targets.map((t) => t.repository));
  const elsewhere = new Map<string, string>();
  for (const b of reader.index.blobs) {
    const repo = b.from && fromRepository(b.from, opts);
    if (b.external && repo !== undefined && repositories.has(repo)) elsewhere.set(b.digest, repo);
  }
  return makeReceipt({ bundleJson: reader.bundleJson, index: reader.index, registry: opts.registry, layout: opts.layout, held, elsewhere });
}

/** Every manifest, config and layer below an external manifest, walked at the target (each manifest checked against its digest); none when that fails. */
async function belowAtTarget(client: RegistryClient, repo: string, ref: string, m: { digest: string; mediaType: string }): Promise<string[]> {
  try {
    const root = await client.manifest(repo, m.digest);
    const graph = await walkGraph({ digest: m.digest, bytes: root.bytes, mediaType: m.mediaType }, { ref, advice: 'left out of the receipt', load: async (d) => (await client.manifest(repo, d.digest)).bytes });
    return [...graph.manifests.map((n) => n.digest), ...graph.blobs.map((d) => d.digest)];
  } catch {
    return [];
  }
}

/** Where a base put an external blob at this target: the receipt's repository, or where this unpack's layout puts the base image that held it. */
function fromRepository(from: BlobFrom, opts: Pick<UnpackOptions, 'registry' | 'layout'>): string | undefined {
  if (from.repository !== undefined) return from.repository;
  if (from.image === undefined) return undefined;
  try {
    return targetRepository(parseReference(from.image), opts.registry, opts.layout);
  } catch {
    return undefined;
  }
}

/**
 * A delta's external entries, checked at the target before anything is pushed:
 * each external manifest (HEAD by digest in the image's repository), each
 * external config and layer (in the image's repository, else where its base put
 * it: then it is mounted from there), each external file not at the file
 * server. Throws MissingBaseError naming every one missing and its base;
 * returns, for the blobs to mount, the repository to mount them from.
 */
async function checkExternals(
  index: BundleIndex,
  graphs: readonly Graph[],
  filesPresent: readonly boolean[],
  client: RegistryClient,
  opts: UnpackOptions,
  limit: <T>(fn: () => Promise<T>) => Promise<T>,
): Promise<Map<string, string>> {
  const mountFrom = new Map<string, string>();
  const blobs = new Map(index.blobs.map((b) => [b.digest, b]));
  const baseName = (n: number | undefined): string => {
    const b = n !== undefined ? index.bases?.[n] : undefined;
    if (b) return `${b.kind} ${b.name}${b.version ? ` ${b.version}` : ''}`;
    return (index.bases ?? []).map((x) => `${x.kind} ${x.name}${x.version ? ` ${x.version}` : ''}`).join(' or ');
  };
  const missing: string[] = [];
  const checks: Array<Promise<void>> = [];
  const seen = new Set<string>();
  for (const g of graphs) {
    const repo = g.target.repository;
    for (const m of g.externalManifests) {
      if (seen.has(`m ${repo} ${m.digest}`)) continue;
      seen.add(`m ${repo} ${m.digest}`);
      checks.push(
        limit(async () => {
          const r = await client.resolve(repo, m.digest);
          if (r?.digest === m.digest) return;
          const b = blobs.get(m.digest);
          const from = b?.from && fromRepository(b.from, opts);
          // Manifests are not mounted: one its base put in another repository would need copying with all it lists.
          const elsewhere = from !== undefined && from !== repo && (await client.resolve(from, m.digest))?.digest === m.digest;
          missing.push(
            `manifest ${m.digest} of ${g.image.ref}, not in ${opts.registry.host}/${repo}; held by ${baseName(b?.from?.base)}` +
              (elsewhere ? ` (it is in ${opts.registry.host}/${from}, but an unpack does not copy manifests between repositories: build this image without that --base)` : ''),
          );
        }),
      );
    }
    for (const d of g.blobs) {
      const b = blobs.get(d);
      if (!b?.external || seen.has(`b ${repo} ${d}`)) continue;
      seen.add(`b ${repo} ${d}`);
      checks.push(
        limit(async () => {
          if (await client.hasBlob(repo, d)) return;
          const from = b.from && fromRepository(b.from, opts);
          if (from !== undefined && from !== repo && (await client.hasBlob(from, d))) {
            mountFrom.set(d, from);
            return;
          }
          missing.push(`blob ${d} of ${g.image.ref}, in neither ${opts.registry.host}/${repo}${from !== undefined && from !== repo ? ` nor ${opts.registry.host}/${from}` : ''}; held by ${baseName(b.from?.base)}`);
        }),
      );
    }
  }
  await Promise.all(checks);
  index.files.forEach((f, i) => {
    if (f.external && !filesPresent[i]) missing.push(`file ${f.path} (sha256:${f.sha256}), not at ${opts.files.describe}; held by ${baseName(undefined)}`);
  });
  if (missing.length > 0) throw new MissingBaseError(missing.sort().map((m) => printable(m)));
  return mountFrom;
}

async function* counted(source: AsyncIterable<Buffer>, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  for await (const c of source) {
    onBytes(c.length);
    yield c;
  }
}

/**
 * On Harbor, every repository must sit inside a project that exists: checked
 * before anything is pushed, and missing projects created only when asked.
 */
async function checkHarborProjects(targets: readonly TargetName[], opts: UnpackOptions): Promise<void> {
  const harbor = await HarborApi.detect(opts.http, opts.registry.host);
  if (!harbor) return;
  const outside = [...new Set(targets.filter((t) => !harborProject(t.repository)).map((t) => t.repository))];
  if (outside.length) {
    throw new TargetConflictError(
      outside.map(
        (r) =>
          `${opts.registry.host}/${r} (from ${targets.find((t) => t.repository === r)?.source}) would land outside a Harbor project, which Harbor cannot hold; ` +
          `give a project as prefix (--registry ${opts.registry.host}/PROJECT, e.g. ${opts.registry.host}/library) or use --layout host`,
      ),
    );
  }
  const projects = [...new Set(targets.map((t) => harborProject(t.repository) ?? ''))].sort();
  const missing: string[] = [];
  for (const p of projects) if (!(await harbor.projectExists(p))) missing.push(p);
  if (missing.length === 0) return;
  if (!opts.createProjects) {
    throw new RegistryError(
      `Harbor at ${opts.registry.host} has no project ${missing.join(', ')}; nothing was pushed. Create ${missing.length > 1 ? 'them' : 'it'} in Harbor, or rerun with --create-projects (with credentials allowed to create projects)`,
    );
  }
  for (const p of missing) {
    await harbor.createProject(p);
    opts.progress.log(`created Harbor project ${p} at ${opts.registry.host}`);
  }
}
