// A delta's external entries (SPEC §6): each must be at the target before
// anything is pushed; what a base put in another repository is mounted from there.
import { parseReference } from '../oci/reference.js';
import type { RegistryClient } from '../registry/client.js';
import type { BlobFrom, BundleIndex } from '../bundle/format.js';
import { targetRepository } from '../bundle/targets.js';
import { printable } from '../util/printable.js';
import type { Graph, TargetOptions } from './unpack.js';

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

/** Where a base put an external blob at this target: the receipt's repository, or where this unpack's layout puts the base image that held it. */
export function fromRepository(from: BlobFrom, opts: Pick<TargetOptions, 'registry' | 'layout'>): string | undefined {
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
 * those of the images and of the attached manifests (`attached`, named by `what`) to push:
 * each external manifest (HEAD by digest in the image's repository), each
 * external config and layer (in the image's repository, else where its base put
 * it: then it is mounted from there), each external file not at the file
 * server. Throws MissingBaseError naming every one missing and its base;
 * returns, for the blobs to mount, the repository to mount them from.
 */
export async function checkExternals(
  index: BundleIndex,
  graphs: readonly Graph[],
  filesPresent: readonly boolean[],
  client: RegistryClient,
  opts: TargetOptions,
  limit: <T>(fn: () => Promise<T>) => Promise<T>,
  attached: ReadonlyArray<Pick<Graph, 'blobs' | 'externalManifests'> & { target: { repository: string }; what: string }> = [],
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
  const all = [...graphs.map((g) => ({ ...g, what: g.image.ref })), ...attached];
  for (const g of all) {
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
            `manifest ${m.digest} of ${g.what}, not in ${opts.registry.host}/${repo}; held by ${baseName(b?.from?.base)}` +
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
          missing.push(`blob ${d} of ${g.what}, in neither ${opts.registry.host}/${repo}${from !== undefined && from !== repo ? ` nor ${opts.registry.host}/${from}` : ''}; held by ${baseName(b.from?.base)}`);
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

