// What build reports per item.
import type { PulledFile } from '../fetch/pull.js';
import type { ArtifactItem, FileItem, ImageItem } from '../manifest/types.js';
import type { PulledGraph } from '../registry/pull.js';
import type { ItemReport } from './build.js';

export function reportGraph(item: ImageItem | ArtifactItem, g: PulledGraph | undefined, error: string | undefined): ItemReport {
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

export function reportFile(item: FileItem, f: PulledFile | undefined, error: string | undefined): ItemReport {
  if (!f) return { kind: 'file', name: item.path, source: item.url, ok: false, error: error ?? 'failed' };
  return { kind: 'file', name: item.path, source: item.url, ok: true, ...(f.sha256 && { digest: `sha256:${f.sha256}` }), ...(f.size !== undefined && { size: f.size }) };
}

export function errorText(err: unknown, what: string): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg.includes(what) ? msg : `${what}: ${msg}`;
}

