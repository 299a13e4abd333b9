// spec.kubespray → files and images: Kubespray's own tables, evaluated for the
// inventory's choices and each arch, with Kubespray's checksums. Files land at
// <original host>/<original path>, Kubespray's advice for a files_repo.
import path from 'node:path';
import type { FileItem, Origin } from '../../manifest/types.js';
import type { Problem } from '../../manifest/problems.js';
import { TemplateError } from './jinja.js';
import { baseUrls, enabledDownloads, facts } from './downloads.js';
import { loadTables, Scope, TableError, type Tables } from './tables.js';

export interface KubespraySpec {
  version: string;
  source: string;
  kubeVersion?: string;
  archs?: string[];
  vars?: string[];
}

export interface KubesprayContext {
  /** Where spec.kubespray (or one of its keys) is in the manifest. */
  origin(at: (string | number)[]): Origin;
  problem(p: Problem): void;
  /** Manifest-relative path → absolute, and how to show it. */
  resolve(rel: string): { abs: string; display: string };
  image(ref: string, origin: Origin): void;
  file(item: Omit<FileItem, 'kind' | 'origins'>, origin: Origin): void;
  /** True when spec.files lists this URL (with its own checksum). */
  listed(url: string): boolean;
}

/** Where a Kubespray file lands below the file server: its original host and path. */
export function kubesprayLandingPath(url: string): string {
  const u = new URL(url);
  return `${u.host}${decodeURIComponent(u.pathname)}`.replace(/\/+$/, '');
}

/**
 * What unpack's --emit-config needs to point Kubespray at the file server: the
 * landing prefix of each base URL, and of each download URL none covers.
 */
export interface KubesprayLanding {
  bases: Record<string, string>;
  urls: Record<string, string>;
}

export async function expandKubespray(spec: KubespraySpec, ctx: KubesprayContext): Promise<KubesprayLanding | undefined> {
  const landing: KubesprayLanding = { bases: {}, urls: {} };
  const ambiguous = new Set<string>();
  const source = ctx.resolve(spec.source);
  const base = ctx.origin(['spec', 'kubespray']);
  const fail = (file: string, line: number, message: string) => ctx.problem({ file, line: Math.max(line, 1), col: 1, path: 'spec.kubespray', message });
  let tables: Tables;
  try {
    tables = await loadTables({
      source: source.abs,
      inventory: (spec.vars ?? []).map((v) => ctx.resolve(v)),
      display: (rel) => path.join(source.display, rel),
    });
  } catch (err) {
    if (!(err instanceof TableError)) throw err;
    fail(err.file, err.line, `${err.message}; spec.kubespray.source must be a Kubespray checkout (v2.28 or later) and vars its inventory's group_vars files`);
    return undefined;
  }
  // An image serves every arch (its index holds them); it is listed once.
  const images = new Set<string>();
  const extra: Record<string, string> = spec.kubeVersion ? { kube_version: spec.kubeVersion.replace(/^v/, '') } : {};
  for (const arch of spec.archs ?? ['amd64']) {
    let found: ReturnType<typeof enabledDownloads>;
    let bases: Record<string, string>;
    try {
      const scope = new Scope(tables, facts(arch), extra);
      found = enabledDownloads(scope);
      bases = baseUrls(scope);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      fail(err.where.file, err.where.line ?? 1, `${err.where.variable} (arch ${arch}): ${err.reason}; airlock evaluates only the Jinja that Kubespray's tables use and never guesses — set the value in a vars file, or report the construct`);
      continue;
    }
    for (const [name, b] of Object.entries(bases)) landing.bases[name] = kubesprayLandingPath(b);
    for (const img of found.images) {
      if (images.has(img.ref)) continue;
      images.add(img.ref);
      ctx.image(img.ref, { ...base, path: `spec.kubespray: ${img.name}` });
    }
    for (const f of found.files) {
      const origin = { ...base, path: `spec.kubespray: downloads.${f.name} (${arch})` };
      if (!f.checksum) {
        if (ctx.listed(f.url)) continue;
        ctx.problem({ ...base, path: 'spec.kubespray', message: `${f.url} (downloads.${f.name}, ${arch}): Kubespray gives no checksum for it (${f.noChecksum ?? 'none'}); list it under spec.files with its sha256, or choose a version Kubespray's checksums.yml has` });
        continue;
      }
      const under = Object.entries(bases).find(([, b]) => f.url.startsWith(`${b.replace(/\/+$/, '')}/`));
      if (!under && f.variable) {
        const p = kubesprayLandingPath(f.url);
        if (landing.urls[f.variable] !== undefined && landing.urls[f.variable] !== p) ambiguous.add(f.variable);
        landing.urls[f.variable] = p;
      }
      ctx.file({ url: f.url, path: kubesprayLandingPath(f.url), checksum: { type: 'digest', algorithm: f.checksum.algorithm, hex: f.checksum.hex }, role: 'kubespray' }, origin);
    }
  }
  // One variable, a URL per arch: no single value points Kubespray at all of them.
  for (const v of ambiguous) delete landing.urls[v];
  return landing;
}
