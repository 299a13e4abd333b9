// Which of Kubespray's `downloads` an inventory enables, as its `download`
// role decides (roles/download/tasks/main.yml): every entry merged over
// `download_defaults`, kept when `enabled` holds, fetched as a container
// image when `container` holds (and download_container), as a file otherwise;
// plus the control-plane images kubeadm pulls itself.
import { TemplateError, Undef, type Value } from './jinja.js';
import type { Scope } from './tables.js';

/** Kubespray's arch names → the fact Ansible reports (host_architecture maps it back). */
export const ANSIBLE_ARCHITECTURE: Record<string, string> = { amd64: 'x86_64', arm64: 'aarch64', arm: 'armv7l', ppc64le: 'ppc64le' };

export interface KubesprayFile {
  /** The downloads entry, e.g. kubelet. */
  readonly name: string;
  /** The variable its url names (`url: "{{ kubelet_download_url }}"`), which an inventory overrides to move it. */
  readonly variable?: string;
  readonly url: string;
  /** Absent when Kubespray's tables give none for this version and arch. */
  readonly checksum?: { readonly algorithm: 'sha256' | 'sha512'; readonly hex: string };
  /** Why there is no checksum, when there is none. */
  readonly noChecksum?: string;
}

export interface KubesprayImage {
  readonly name: string;
  readonly ref: string;
}

/** kubeadm pulls these itself (`kubeadm config images list` minus coredns and pause, etcd being external). */
const KUBEADM_IMAGES = ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kube-proxy'];

export function facts(arch: string): Record<string, string> {
  // Only what the arch and Kubespray's Linux-only support fix; any other fact stays undefined (an error where a table needs it).
  return { ansible_architecture: ANSIBLE_ARCHITECTURE[arch] ?? arch, ansible_system: 'Linux' };
}

/** The base URLs Kubespray forms its download URLs from (its offline docs point them at files_repo). */
export const BASE_VARIABLES = ['github_url', 'dl_k8s_io_url', 'storage_googleapis_url', 'get_helm_url'];

export function baseUrls(scope: Scope): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of BASE_VARIABLES) if (scope.has(name)) out[name] = text(scope, scope.lookup(name), name);
  return out;
}

export function enabledDownloads(scope: Scope): { files: KubesprayFile[]; images: KubesprayImage[] } {
  const files: KubesprayFile[] = [];
  const images: KubesprayImage[] = [];
  const table = scope.lookup('downloads');
  const defaults = scope.lookup('download_defaults');
  if (!(table instanceof Map)) throw where(scope, 'downloads', 'is not a map of downloads');
  const defs = defaults instanceof Map ? defaults : new Map<string, Value>();
  const downloadContainer = flag(scope, scope.lookup('download_container'), 'download_container', 'download_container');
  for (const [name, entry] of table) {
    if (!(entry instanceof Map)) throw where(scope, 'downloads', `entry ${name} is not a map`);
    const field = (key: string): Value => {
      const raw = entry.has(key) ? entry.get(key) : defs.get(key);
      if (raw === undefined) return new Undef(`downloads.${name}.${key}`);
      return scope.evaluate(raw as Value, { ...at(scope, 'downloads'), variable: `downloads.${name}.${key}` });
    };
    if (!flag(scope, field('enabled'), `downloads.${name}.enabled`, 'downloads')) continue;
    const container = flag(scope, field('container'), `downloads.${name}.container`, 'downloads');
    if (container) {
      if (!downloadContainer) continue;
      const repo = text(scope, field('repo'), `downloads.${name}.repo`);
      const tag = text(scope, field('tag'), `downloads.${name}.tag`);
      const digest = optionalText(field('checksum'));
      images.push({ name, ref: digest ? `${repo}:${tag}@sha256:${digest.replace(/^sha256:/, '')}` : `${repo}:${tag}` });
      continue;
    }
    const url = text(scope, field('url'), `downloads.${name}.url`);
    const rawUrl = entry.get('url');
    const variable = typeof rawUrl === 'string' ? /^\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}$/.exec(rawUrl.trim())?.[1] : undefined;
    let checksum: KubesprayFile['checksum'];
    let noChecksum: string | undefined;
    try {
      const c = optionalText(field('checksum'));
      if (c) checksum = parseChecksum(scope, c, `downloads.${name}.checksum`);
      else noChecksum = 'its checksum is empty';
    } catch (err) {
      // A version or arch the checksum table has no row for: Kubespray gives no checksum.
      if (!(err instanceof TemplateError && err.undefinedUse)) throw err;
      noChecksum = err.reason;
    }
    files.push({ name, url, ...(variable && { variable }), ...(checksum && { checksum }), ...(noChecksum && { noChecksum }) });
  }
  // Kubespray's own switches: no container downloads at all, or none of kubeadm's (prep_kubeadm_images.yml).
  if (!downloadContainer || flag(scope, scope.lookup('skip_kubeadm_images'), 'skip_kubeadm_images', 'skip_kubeadm_images')) return { files, images };
  // kubeadm_image_repo appeared in v2.29; before it kubeadm used kube_image_repo.
  const repoVar = scope.has('kubeadm_image_repo') ? 'kubeadm_image_repo' : 'kube_image_repo';
  const repo = text(scope, scope.lookup(repoVar), repoVar);
  const version = text(scope, scope.lookup('kube_version'), 'kube_version');
  for (const image of KUBEADM_IMAGES) images.push({ name: `kubeadm ${image}`, ref: `${repo}/${image}:v${version}` });
  return { files, images };
}

function at(scope: Scope, variable: string): { variable: string; file: string; line: number } {
  const d = scope.definition(variable);
  return { variable, file: d?.file ?? '(kubespray)', line: d?.line ?? 0 };
}

function where(scope: Scope, variable: string, reason: string): TemplateError {
  return new TemplateError(at(scope, variable), reason);
}

function flag(scope: Scope, v: Value, name: string, variable: string): boolean {
  if (v instanceof Undef) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  if (v === null) return false;
  throw new TemplateError({ ...at(scope, variable), variable: name }, `expected true or false, found ${JSON.stringify(v instanceof Map ? 'a map' : v)}`);
}

function text(scope: Scope, v: Value, name: string): string {
  if (typeof v === 'string' && v !== '') return v;
  const variable = name.startsWith('downloads.') ? 'downloads' : name;
  throw new TemplateError({ ...at(scope, variable), variable: name }, v instanceof Undef ? `${v.name} is undefined` : `expected a non-empty string, found ${JSON.stringify(v instanceof Map ? 'a map' : v)}`, v instanceof Undef);
}

function optionalText(v: Value): string | undefined {
  if (v instanceof Undef || v === null || v === '' || v === 'None' || v === 0 || v === '0') return undefined;
  if (typeof v !== 'string') return undefined;
  return v;
}

/** `sha256:HEX` / `sha512:HEX` (v2.27 and later), or bare sha256 hex (earlier tables). */
function parseChecksum(scope: Scope, c: string, name: string): NonNullable<KubesprayFile['checksum']> {
  const m = /^(?:(sha256|sha512):)?([0-9a-fA-F]+)$/.exec(c.trim());
  const algorithm = (m?.[1] ?? 'sha256') as 'sha256' | 'sha512';
  const hex = m?.[2]?.toLowerCase();
  if (!hex || hex.length !== (algorithm === 'sha256' ? 64 : 128)) {
    throw new TemplateError({ ...at(scope, 'downloads'), variable: name }, `"${c}" is not a sha256 or sha512 checksum`);
  }
  return { algorithm, hex };
}
