// Where images land inside the air gap (SPEC §3): the private registry, an
// optional project prefix, and the flat or host layout.
import { isRegistryHost, parseReference, type Reference } from '../oci/reference.js';
import { redactUserinfo } from '../util/url.js';

export type Layout = 'flat' | 'host';

export interface TargetRegistry {
  /** host[:port] */
  readonly host: string;
  /** Path prefix (a Harbor project), without slashes at the ends; '' for none. */
  readonly prefix: string;
}

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;

/** Parses `--registry HOST[:PORT][/PREFIX]`; throws with what to write. */
export function parseTargetRegistry(value: string): TargetRegistry {
  // Every message shows the value without what stands before an "@": that may be a password.
  const shown = redactUserinfo(value);
  const userinfo = /^(?:[a-z][a-z0-9+.-]*:\/\/)?[^/]*@([^/@]*)/i.exec(value);
  if (userinfo) {
    const host = userinfo[1] || 'the registry';
    throw new Error(`--registry ${shown}: a user name or password does not go in --registry; give them with --username and --password-stdin, or in docker config.json ("auths" for ${host}; see docs/registries.md)`);
  }
  if (/^[a-z]+:\/\//i.test(value)) throw new Error(`--registry ${shown}: give host[:port][/prefix] without a scheme (use --plain-http for HTTP)`);
  const v = value;
  const slash = v.indexOf('/');
  const host = slash === -1 ? v : v.slice(0, slash);
  const prefix = slash === -1 ? '' : v.slice(slash + 1).replace(/\/+$/, '');
  if (!isRegistryHost(host)) throw new Error(`--registry ${shown}: "${host}" is not a registry host; write host[:port][/prefix]`);
  if (prefix) {
    for (const c of prefix.split('/')) {
      if (!COMPONENT.test(c)) throw new Error(`--registry ${shown}: prefix component "${c}" is not a valid repository name part (lowercase letters, digits, ".", "_", "-")`);
    }
  }
  return { host, prefix };
}

/**
 * A registry host as one valid repository path component:
 * `127.0.0.1:5000` → `127.0.0.1_5000`, `[::1]:5000` → `ip6---1_5000`.
 */
export function hostComponent(host: string): string {
  const h = host.toLowerCase();
  const v6 = /^\[([0-9a-f:.]+)\](?::(\d+))?$/.exec(h);
  if (v6) return `ip6-${(v6[1] ?? '').replace(/:/g, '-')}${v6[2] ? `_${v6[2]}` : ''}`.replace(/-+$/, '');
  return h.replace(/:/g, '_');
}

/** The repository path in the private registry for an upstream reference. */
export function targetRepository(ref: Reference, target: TargetRegistry, layout: Layout): string {
  return [target.prefix, layout === 'host' ? hostComponent(ref.registry) : '', ref.repository].filter(Boolean).join('/');
}

export interface TargetName {
  readonly repository: string;
  /** Tag to set, if the source had one; digest-only references are pushed by digest only. */
  readonly tag?: string;
  readonly digest: string;
  readonly source: string;
}

/**
 * Maps every bundle image to its target. Two sources that land on the same
 * repository and tag with different digests are an error naming both.
 */
export function planTargets(images: ReadonlyArray<{ ref: string; digest: string }>, target: TargetRegistry, layout: Layout): TargetName[] {
  const out: TargetName[] = [];
  const byName = new Map<string, TargetName>();
  const problems: string[] = [];
  for (const img of images) {
    const ref = parseReference(img.ref);
    const repository = targetRepository(ref, target, layout);
    if (repository.length + target.host.length + 1 > 255) problems.push(`${img.ref}: the target name ${target.host}/${repository} is longer than 255 characters`);
    const t: TargetName = { repository, ...(ref.tag !== undefined && { tag: ref.tag }), digest: img.digest, source: img.ref };
    if (t.tag !== undefined) {
      const key = `${repository}:${t.tag}`;
      const other = byName.get(key);
      if (other && other.digest !== t.digest) {
        problems.push(`${other.source} and ${img.ref} both land on ${target.host}/${key} with different digests; use --layout host (or another prefix) to keep them apart`);
        continue;
      }
      byName.set(key, t);
    }
    out.push(t);
  }
  if (problems.length) throw new TargetConflictError(problems);
  return out;
}

export class TargetConflictError extends Error {
  readonly exitCode = 2;
  constructor(readonly problems: string[]) {
    super(`the bundle cannot be unpacked with this layout; nothing was pushed:\n${problems.map((p) => `  ${p}`).join('\n')}`);
    this.name = 'TargetConflictError';
  }
}
