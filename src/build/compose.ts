// bundle.json for what was pulled (SPEC §4, §6): every image, file and blob,
// a delta's external ones marked with where the inside finds them.
import type { KeyObject } from 'node:crypto';
import type { Base } from '../delta/base.js';
import type { PulledFile } from '../fetch/pull.js';
import type { ArtifactItem, FileItem, ImageItem, Plan } from '../manifest/types.js';
import type { Descriptor, PulledGraph } from '../registry/pull.js';
import { fingerprint } from '../sign/keys.js';
import { BUNDLE_SCHEMA_VERSION, compareAttached, type BlobFrom, type BundleAttached, type BundleBlob, type BundleFile, type BundleImage, type BundleIndex, type BundlePolicy, type SignatureVerdict, type TrivyDbInfo } from '../bundle/format.js';
import { fileKey } from './bases.js';

export interface ComposeInput {
  readonly plan: Plan;
  readonly tool: string;
  /** The signing key; sync composes the same index unsigned, for its own steps. */
  readonly key?: KeyObject;
  readonly created: Date;
  readonly graphs: ReadonlyArray<{ item: ImageItem | ArtifactItem; graph: PulledGraph }>;
  readonly files: ReadonlyArray<{ item: FileItem; file: PulledFile }>;
  /** Every blob once (uniqueBlobs), those of the attached manifests included. */
  readonly blobs: readonly BundleBlob[];
  /** Signatures, attestations, SBOMs found for the images (SPEC §9), in any order; their manifests and blobs are in `blobs`. */
  readonly attached?: readonly BundleAttached[];
  readonly dbInfo: ReadonlyMap<string, TrivyDbInfo>;
  readonly held: { blobs: ReadonlyMap<string, BlobFrom>; files: ReadonlySet<string> };
  readonly bases?: readonly Base[];
  /** The signature policy the images were checked against, carried; its blobs are in `blobs`. */
  readonly policy?: BundlePolicy;
  /** One verdict per graph, in the same order. */
  readonly signatures?: readonly SignatureVerdict[];
  /** Blobs kept in the tar even when a base holds them: what the signature check inside reads. */
  readonly keepInTar?: ReadonlySet<string>;
}

export function composeIndex(c: ComposeInput): Omit<BundleIndex, 'layout'> {
  const listed = new Set(c.blobs.map((b) => b.digest));
  for (const a of c.attached ?? []) {
    // The reader refuses such a bundle: say so here, where the mistake is.
    if (!listed.has(a.digest) || !listed.has(a.subject)) throw new Error(`compose: attached ${a.digest} (subject ${a.subject}) is not among the blobs`);
  }
  return {
    schemaVersion: BUNDLE_SCHEMA_VERSION,
    name: c.plan.name,
    version: c.plan.version ?? '',
    created: c.created.toISOString(),
    tool: c.tool,
    signer: { fingerprint: c.key ? fingerprint(c.key) : '' },
    images: c.graphs.map(({ item, graph: g }): BundleImage => ({
      ref: item.ref,
      digest: g.digest,
      mediaType: g.mediaType,
      kind: item.kind,
      ...(item.kind === 'artifact' && item.role && { role: item.role }),
      ...(g.upstreamDigest && { upstreamDigest: g.upstreamDigest }),
      platforms: g.platforms,
      size: g.size,
      ...(c.dbInfo.has(item.ref) && { trivyDb: c.dbInfo.get(item.ref) }),
    })),
    files: c.files.map(({ item, file: f }): BundleFile => {
      const sha256 = f.sha256 ?? '';
      const size = f.size ?? 0;
      return { path: item.path, sha256, size, source: item.url, role: item.role, checksum: f.checksum, ...(c.held.files.has(fileKey(item.path, sha256, size)) && { external: true as const }) };
    }),
    blobs: c.blobs.map((b): BundleBlob => {
      const from = c.keepInTar?.has(b.digest) ? undefined : c.held.blobs.get(b.digest);
      return from ? { ...b, external: true, from } : b;
    }),
    ...(c.attached?.length && { attached: [...c.attached].sort(compareAttached) }),
    ...(c.bases?.length && { bases: c.bases.map((b) => ({ kind: b.kind, name: b.name, version: b.version, sha256: b.sha256 })) }),
    ...(c.policy && { policy: c.policy }),
    ...(c.signatures && { signatures: [...c.signatures] }),
    ...(c.plan.kubespray && { kubespray: c.plan.kubespray }),
  };
}

/** Every blob of every graph once, in walk order: the bundle's byte order. */
export function uniqueBlobs(all: readonly Descriptor[]): BundleBlob[] {
  const seen = new Map<string, BundleBlob>();
  for (const d of all) if (!seen.has(d.digest)) seen.set(d.digest, { digest: d.digest, size: d.size });
  return [...seen.values()];
}

/** A delta's external counts, for the report. */
export function externalOf(index: Pick<BundleIndex, 'blobs' | 'files'>): { blobs: number; files: number; bytes: number } {
  const blobs = index.blobs.filter((b) => b.external);
  const files = index.files.filter((f) => f.external);
  return { blobs: blobs.length, files: files.length, bytes: blobs.reduce((n, b) => n + b.size, 0) + files.reduce((n, f) => n + f.size, 0) };
}
