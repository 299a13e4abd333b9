// Image references, parsed and normalized the way distribution/reference does
// (ParseNormalizedNamed + TagNameOnly), so that what airlock prints is what
// docker, containerd and skopeo would pull.

export const DOCKER_HUB = 'docker.io';
const LEGACY_DOCKER_HUB = 'index.docker.io';
const DOCKER_HUB_API = 'registry-1.docker.io';
const OFFICIAL_PREFIX = 'library/';
const MAX_NAME_LENGTH = 255;

// Grammar pieces from distribution/reference/regexp.go.
const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_NAME}|${IPV6})`;
const DOMAIN_RE = new RegExp(`^${HOST}(?::[0-9]+)?$`);
const PATH_COMPONENT_RE = new RegExp(`^${PATH_COMPONENT}$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$/;
const HEX64_RE = /^[a-f0-9]{64}$/;

export interface Reference {
  /** Registry host as written after normalization, e.g. `docker.io`, `quay.io`, `127.0.0.1:5000`. */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/nginx`. */
  readonly repository: string;
  readonly tag?: string;
  readonly digest?: string;
}

export class ReferenceError extends Error {
  constructor(
    readonly input: string,
    readonly reason: string,
  ) {
    super(`invalid image reference "${shownReference(input)}": ${reason}`);
    this.name = 'ReferenceError';
  }
}

/**
 * `input` as a message may show it: a user name or password written before an
 * `@` in its first part (`user:pw@host/app:1`, `https://user:pw@host/app`)
 * becomes `***`, so that an error about a reference cannot leak a password into
 * a terminal or a CI log. `app@sha256:…` (a digest, no slash) is not that and stays.
 */
export function shownReference(input: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(input)?.[0] ?? '';
  const rest = input.slice(scheme.length);
  const slash = rest.indexOf('/');
  const first = slash === -1 ? rest : rest.slice(0, slash);
  const at = first.lastIndexOf('@');
  const after = first.slice(at + 1);
  // Before a '/', an '@' cannot start a digest; with no '/', it is userinfo only when a host follows (a dot, a port or localhost), not `name@sha256:…`.
  const host = slash !== -1 ? after !== '' : !/^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-f0-9]/i.test(after) && /\.|:\d+$|^localhost$/i.test(after);
  return at === -1 || !host ? input : `${scheme}***${rest.slice(at)}`;
}

/** Checks a digest string; returns the reason it is invalid, or undefined. */
export function digestProblem(digest: string): string | undefined {
  if (!DIGEST_RE.test(digest)) return `"${digest}" is not a digest (want algorithm:hex, e.g. sha256:<64 hex>)`;
  const [alg, hex = ''] = digest.split(':', 2);
  if (alg === 'sha256' && !HEX64_RE.test(hex)) return `sha256 digest must be 64 lowercase hex characters, got ${hex.length}`;
  if (alg === 'sha512' && !/^[a-f0-9]{128}$/.test(hex)) return `sha512 digest must be 128 lowercase hex characters`;
  if (alg !== 'sha256' && alg !== 'sha512') return `unsupported digest algorithm "${alg}" (use sha256)`;
  return undefined;
}

/** True for `host`, `host:port`, `[v6]:port` as a registry is named in a reference. */
export function isRegistryHost(host: string): boolean {
  return DOMAIN_RE.test(host);
}

/** True when the first path component names a registry host rather than a Docker Hub namespace. */
function looksLikeDomain(component: string): boolean {
  return component.includes('.') || component.includes(':') || component === 'localhost' || component !== component.toLowerCase();
}

/**
 * Parses a reference as written by a person and normalizes it:
 * `nginx` → docker.io/library/nginx:latest. A reference with a digest keeps
 * its tag when one was written and gets no default tag otherwise.
 */
export function parseReference(input: string): Reference {
  const fail = (reason: string): never => {
    throw new ReferenceError(input, reason);
  };
  if (input.length === 0) fail('empty reference');
  if (input !== input.trim()) fail('leading or trailing whitespace');
  if (/\s/.test(input)) fail('contains whitespace');
  if (shownReference(input) !== input) fail('it holds a user name or password before the registry host, which airlock does not take from a reference; put the credentials in docker config.json ("auths", or a credential helper; see docs/registries.md)');
  if (input.includes('://')) fail('a reference has no URL scheme; drop the "http(s)://" prefix');

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    const problem = digestProblem(digest);
    if (problem) fail(problem);
  }

  // A tag follows the last colon that comes after the last slash; earlier colons belong to a port.
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.indexOf(':', lastSlash + 1);
  if (colon !== -1) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      fail(tag === '' ? 'empty tag after ":"' : `invalid tag "${tag}" (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`);
    }
  }
  if (rest === '') fail('missing repository name');

  let registry: string;
  let repository: string;
  const slash = rest.indexOf('/');
  const first = slash === -1 ? '' : rest.slice(0, slash);
  if (slash !== -1 && looksLikeDomain(first)) {
    registry = first;
    repository = rest.slice(slash + 1);
    if (!DOMAIN_RE.test(registry)) fail(`invalid registry host "${registry}"`);
  } else {
    registry = DOCKER_HUB;
    repository = rest;
  }
  if (registry === LEGACY_DOCKER_HUB) registry = DOCKER_HUB;
  if (repository === '') fail('missing repository path after the registry host');
  if (repository !== repository.toLowerCase()) fail('repository name must be lowercase');
  for (const component of repository.split('/')) {
    if (component === '') fail('empty path component ("//" or a trailing "/")');
    if (!PATH_COMPONENT_RE.test(component)) {
      fail(`invalid path component "${component}" (lowercase letters and digits, separated by ".", "_", "__" or "-")`);
    }
  }
  if (registry === DOCKER_HUB && !repository.includes('/')) {
    if (HEX64_RE.test(repository) && tag === undefined && digest === undefined) {
      fail('a 64-character hex string is an image ID, not a repository name; write sha256:... after "@"');
    }
    repository = OFFICIAL_PREFIX + repository;
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) fail(`name longer than ${MAX_NAME_LENGTH} characters`);

  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, ...(tag !== undefined && { tag }), ...(digest !== undefined && { digest }) };
}

/** The repository name with its registry, no tag or digest: `docker.io/library/nginx`. */
export function referenceName(ref: Reference): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The canonical string form: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: Reference): string {
  return referenceName(ref) + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}

/** Parses and prints back in canonical form. Throws ReferenceError. */
export function normalizeReference(input: string): string {
  return formatReference(parseReference(input));
}

/** The host to speak the registry API to; Docker Hub's API lives on another name. */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/** Shortest form a person would write (`nginx`, `quay.io/x/y:1`), for display only. */
export function familiarReference(ref: Reference): string {
  let name = referenceName(ref);
  if (ref.registry === DOCKER_HUB) {
    name = ref.repository.startsWith(OFFICIAL_PREFIX) ? ref.repository.slice(OFFICIAL_PREFIX.length) : ref.repository;
  }
  return name + (ref.tag !== undefined ? `:${ref.tag}` : '') + (ref.digest !== undefined ? `@${ref.digest}` : '');
}
