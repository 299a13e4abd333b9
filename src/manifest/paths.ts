// Landing paths for files: relative, inside the file server root, nothing a
// shell or a server would read as something else.

/** Why a landing path is unsafe, or undefined when it is a plain relative path. */
export function landingPathProblem(p: string): string | undefined {
  if (p === '') return 'is empty';
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return 'is absolute';
  if (p.includes('\\')) return 'contains "\\"';
  // eslint-disable-next-line no-control-regex -- rejecting control characters is the point
  if (/[\x00-\x1f\x7f]/.test(p)) return 'contains control characters';
  if (p.endsWith('/')) return 'ends with "/"';
  const segments = p.split('/');
  if (segments.some((s) => s === '..')) return 'contains ".."';
  if (segments.some((s) => s === '' || s === '.')) return 'contains an empty or "." segment';
  return undefined;
}

/**
 * Names airlock itself writes among the files, beside the bundle's own: the
 * Falco index (unpack writes it, serve answers it), and the checksum sidecar
 * `<path>.sha256` unpack and sync put next to each file (src/unpack/files-target.ts).
 * A bundle path on one of these names would be overwritten by it, or overwrite it.
 */
export const FALCO_INDEX_PATH = 'falco/index.yaml';
const GENERATED: ReadonlyMap<string, string> = new Map([[FALCO_INDEX_PATH, 'the Falco index that unpack and serve write']]);

/** Where the checksum of the file at `p` is written beside it. */
export function sidecarPath(p: string): string {
  return `${p}.sha256`;
}

/** Two landing paths (or one and a generated name) that cannot both land: `second` in the order given. */
export interface LandingCollision {
  readonly first?: string;
  readonly second: string;
  /** Both named, e.g. `files/a.sha256 is where the checksum of files/a is written`. */
  readonly message: string;
}

/**
 * Every landing path that cannot land beside the others: on the name another
 * file or its sidecar takes, on a generated name, or on a name another one
 * needs as a folder (`a` and `a/b`). Names are compared as they are (case
 * matters, as on Linux). Build's expansion and the bundle reader (so verify,
 * inspect, unpack and serve) ask this, so what one accepts the others can write.
 */
export function landingPathCollisions(paths: readonly string[]): LandingCollision[] {
  /** Every name written, as a file, and what puts it there: the landing path (its own sidecar, too) or a generated name. */
  const names = new Map<string, { owner?: string; what: string }>();
  /** Every name something needs as a folder, with the first name below it. */
  const folders = new Map<string, { owner?: string; what: string }>();
  const out: LandingCollision[] = [];
  const claim = (name: string, claimant: { owner?: string; what: string }, second: string): void => {
    const taken = names.get(name);
    if (taken && taken.owner !== claimant.owner) {
      out.push({ ...(taken.owner !== undefined && { first: taken.owner }), second, message: `files/${name} is ${taken.what}, and ${claimant.what}` });
      return;
    }
    const below = folders.get(name);
    if (below && below.owner !== claimant.owner) {
      out.push({ ...(below.owner !== undefined && { first: below.owner }), second, message: `files/${name} would be ${claimant.what}, but ${below.what} needs it as a folder` });
      return;
    }
    for (let i = name.indexOf('/'); i !== -1; i = name.indexOf('/', i + 1)) {
      const folder = name.slice(0, i);
      const file = names.get(folder);
      if (file && file.owner !== claimant.owner) {
        out.push({ ...(file.owner !== undefined && { first: file.owner }), second, message: `files/${folder} is ${file.what}, but ${claimant.what} needs it as a folder` });
        return;
      }
      if (!folders.has(folder)) folders.set(folder, claimant);
    }
    names.set(name, claimant);
  };
  for (const [name, what] of GENERATED) claim(name, { what }, name);
  for (const p of paths) {
    claim(p, { owner: p, what: `where files/${p} lands` }, p);
    // Claimed even when `p` itself collided: its sidecar may be the next one's problem (a, a.sha256, a.sha256.sha256).
    claim(sidecarPath(p), { owner: p, what: `where the checksum of files/${p} is written` }, p);
  }
  // One collision per path is enough to say what to change.
  const seen = new Set<string>();
  return out.filter((c) => !seen.has(c.second) && seen.add(c.second));
}
