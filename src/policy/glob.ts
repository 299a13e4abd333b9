// Repository patterns of a signature policy: `HOST/PATH` globs matched against
// the normalized repository of a source reference (no tag, no digest, Docker
// Hub as docker.io/library/NAME).
//
// `*` matches any characters within one path segment (the host is the first
// segment), `**` standing as a whole segment matches zero or more whole
// segments, as in .gitignore: `registry.k8s.io/**` matches registry.k8s.io/pause
// and registry.k8s.io/a/b; `ghcr.io/**/falco` also matches ghcr.io/falco. There
// are no other metacharacters: `?`, `[`, `]`, `{`, `}` and `!` can never be in a
// repository name, so a pattern holding one is refused rather than read
// literally (it would silently never match) or as a glob a person may expect
// from a shell (it would match what they did not review).

export interface RepositoryPattern {
  readonly text: string;
  /** One entry a segment: `**`, or an anchored expression for one segment. */
  readonly segments: readonly ('**' | RegExp)[];
}

const FORBIDDEN = /[?[\]{}!\\\s]/;
// A host's characters (and `*`), then path segments of lowercase names as distribution allows, with `*`.
const HOST_SEGMENT = /^[A-Za-z0-9.:\-*]+$/;
const PATH_SEGMENT = /^[a-z0-9._\-*]+$/;

/** The pattern compiled, or why it cannot be (a sentence with what to write instead). */
export function compilePattern(text: string): RepositoryPattern | { problem: string } {
  const fail = (problem: string) => ({ problem });
  if (text === '') return fail('an empty pattern; write HOST/PATH, e.g. "registry.k8s.io/**"');
  const bad = FORBIDDEN.exec(text);
  if (bad) {
    const what = /\s/.test(bad[0]) ? 'whitespace' : `"${bad[0]}"`;
    return fail(`${what} is not allowed in a pattern: only "*" (within one segment) and "**" (any number of segments) are wildcards`);
  }
  if (text.includes('://')) return fail('a pattern has no URL scheme; drop the "https://"');
  if (text.includes('@')) return fail(`a pattern matches the repository, not a digest; drop "${text.slice(text.indexOf('@'))}"`);
  const segments = text.split('/');
  const [host = '', ...rest] = segments;
  const tagAt = rest.findIndex((s) => s.includes(':'));
  if (tagAt !== -1) {
    const seg = rest[tagAt] ?? '';
    return fail(`a pattern matches the repository, not a tag; drop ":${seg.slice(seg.indexOf(':') + 1)}"`);
  }
  if (rest.length === 0) {
    return host.includes('.') || host.includes(':') || host === 'localhost'
      ? fail(`"${text}" names a registry and no repository; write "${text}/**" for every repository in it`)
      : fail(`"${text}" has no registry host; write it in full, e.g. "docker.io/library/${text}" for a Docker Hub image`);
  }
  if (host !== '**' && host !== '*' && !host.includes('.') && !host.includes(':') && !host.includes('*') && host !== 'localhost') {
    return fail(`"${text}" does not start with a registry host; write it in full, e.g. "docker.io/${text}"`);
  }
  if (host === 'index.docker.io') return fail('Docker Hub is matched as docker.io; write "docker.io/…"');
  if (host === 'docker.io' && rest.length === 1 && rest[0] !== '**' && !rest[0]?.includes('*')) {
    return fail(`Docker Hub's official images are docker.io/library/NAME; write "docker.io/library/${rest[0] ?? ''}"`);
  }
  const compiled: ('**' | RegExp)[] = [];
  for (const [i, seg] of segments.entries()) {
    if (seg === '') return fail('an empty segment ("//" or a trailing "/")');
    if (seg === '**') {
      compiled.push('**');
      continue;
    }
    if (seg.includes('**')) return fail(`"**" must be a whole segment ("a/**/b"), not part of "${seg}"; use "*" within a segment`);
    if (i === 0 ? !HOST_SEGMENT.test(seg) : !PATH_SEGMENT.test(seg)) {
      return fail(
        i === 0
          ? `"${seg}" is not a registry host`
          : `"${seg}" cannot be part of a repository name (lowercase letters, digits, ".", "_", "-"; "*" as a wildcard)`,
      );
    }
    // Hosts are compared without case (DNS names); paths are lowercase already.
    const body = seg.split('*').map(escapeRegExp).join('[^/]*');
    compiled.push(new RegExp(`^${body}$`, i === 0 ? 'i' : ''));
  }
  return { text, segments: compiled };
}

/** True when `repository` (`HOST/PATH`, normalized) matches the pattern. */
export function matchesPattern(pattern: RepositoryPattern, repository: string): boolean {
  return matchFrom(pattern.segments, 0, repository.split('/'), 0);
}

function matchFrom(pat: readonly ('**' | RegExp)[], p: number, segs: readonly string[], s: number): boolean {
  if (p === pat.length) return s === segs.length;
  const head = pat[p];
  if (head === '**') {
    // Zero or more segments; the tail is short, so trying each split is cheap.
    for (let k = s; k <= segs.length; k++) if (matchFrom(pat, p + 1, segs, k)) return true;
    return false;
  }
  return s < segs.length && head !== undefined && head.test(segs[s] ?? '') && matchFrom(pat, p + 1, segs, s + 1);
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
