// A client for one registry, speaking only the distribution API over the
// shared dispatcher (src/http: auth, retry, redirects and body limits live
// there). Manifests come back as the exact bytes the registry sent, checked
// against the digest; blobs come back as streams for the cache to hash while
// it writes; uploads stream from a re-readable source.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { apiHost } from '../oci/reference.js';
import { sha256Digest } from '../oci/digest.js';
import { MANIFEST_ACCEPT, OCI_INDEX } from '../oci/mediatypes.js';
import { header, statusError, type Http, type HttpRequest, type HttpResponse } from '../http/client.js';
import { describeNetworkError, HttpError, StatusError } from '../http/errors.js';
import { MAX_MANIFEST_BYTES } from '../http/limits.js';
import { withRetry } from '../http/retry.js';
import { jsonDepthProblem } from '../util/json.js';
import { printable } from '../util/printable.js';

export { MAX_MANIFEST_BYTES };

/** Pages of a tag list read at most (distribution pages by `n`, default all at once). */
const MAX_TAG_PAGES = 1000;

export class RegistryError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RegistryError';
  }
}

export interface Resolved {
  readonly digest: string;
  readonly mediaType: string;
  readonly size: number;
}

export interface Manifest extends Resolved {
  readonly bytes: Buffer;
}

export interface BlobResponse {
  readonly body: HttpResponse['body'];
  /** Offset the body starts at: the requested offset when the registry honoured Range, else 0. */
  readonly offset: number;
  /** Total blob size when the registry said. */
  readonly size?: number;
}

/** Reads bytes [start, end) of the content being uploaded; called again for a retry. */
/** The bytes an upload read did not hash to the digest it was to upload. */
export class UploadDigestMismatch extends RegistryError {
  constructor(
    message: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(message);
    this.name = 'UploadDigestMismatch';
  }
}

export type ReadRange = (start: number, end: number) => AsyncIterable<Buffer>;

export interface UploadOptions {
  readonly chunkSize?: number;
  readonly monolithicMax?: number;
}

/** An upload session with every byte sent and checked, not committed yet. */
export interface StagedUpload {
  readonly repo: string;
  readonly digest: string;
  /** For messages: "upload HOST/REPO@DIGEST". */
  readonly what: string;
  /** The session's URL as the registry last gave it. */
  readonly location: string;
}

export interface ReferrersPage {
  readonly status: number;
  /** Without parameters. */
  readonly contentType?: string;
  /** The body, on 200 only. */
  readonly bytes?: Buffer;
  /** Absolute URL of the next page (`Link: <…>; rel="next"`). */
  readonly next?: string;
}

export class RegistryClient {
  /** The host as named in references (`docker.io`); requests go to apiHost(). */
  readonly host: string;
  private readonly api: string;

  constructor(
    host: string,
    private readonly http: Http,
  ) {
    this.host = host;
    this.api = apiHost(host);
  }

  /** HEAD a manifest: digest, type and size without counting against pull quotas. */
  async resolve(repo: string, ref: string): Promise<Resolved | undefined> {
    const what = `HEAD manifest ${this.ref(repo, ref)}`;
    const res = await this.send(what, repo, `/manifests/${ref}`, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } });
    await res.body.dump();
    if (res.status === 404) return undefined;
    await this.expect(res, [200], what);
    const digest = header(res, 'docker-content-digest');
    const mediaType = contentType(res);
    const size = Number(header(res, 'content-length'));
    if (!digest || !mediaType || !Number.isFinite(size)) return undefined; // registry too old to say; caller GETs
    return { digest, mediaType, size };
  }

  /** GET a manifest by tag or digest; checks the bytes against the digest asked for or announced. */
  async manifest(repo: string, ref: string): Promise<Manifest> {
    const what = this.ref(repo, ref);
    const res = await this.send(what, repo, `/manifests/${ref}`, { headers: { accept: MANIFEST_ACCEPT }, maxBody: MAX_MANIFEST_BYTES });
    if (res.status === 404) {
      const text = await this.text(res, what);
      throw new RegistryError(`${what}: not found (${ociErrorSummary(text) || 'HTTP 404'}); check the name and tag`, 404, 'MANIFEST_UNKNOWN');
    }
    await this.expect(res, [200], `GET manifest ${what}`);
    const bytes = Buffer.from(await this.read(res, what, () => res.body.arrayBuffer()));
    const digest = sha256Digest(bytes);
    if (ref.startsWith('sha256:') && digest !== ref) {
      throw new RegistryError(`${what}: ${res.url.origin} sent a manifest whose digest is ${digest}; refusing it`);
    }
    const announced = header(res, 'docker-content-digest');
    if (announced?.startsWith('sha256:') && announced !== digest) {
      throw new RegistryError(`${what}: Docker-Content-Digest says ${announced} but the bytes hash to ${digest}; refusing it`);
    }
    const mediaType = manifestMediaType(bytes, contentType(res), what);
    return { bytes, digest, mediaType, size: bytes.length };
  }

  /**
   * Opens a blob of `size` bytes, from `offset` when resuming. The dispatcher
   * cuts a body at the size and resumes a dropped one; what reached the
   * caller's disk is the caller's to resume from after a crash.
   */
  async blob(repo: string, digest: string, offset = 0, size?: number): Promise<BlobResponse> {
    const what = `blob ${this.host}/${repo}@${digest}`;
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.send(what, repo, `/blobs/${digest}`, { headers, ...(size !== undefined && { size }) });
    if (res.status === 404) {
      await res.body.dump();
      throw new RegistryError(`${what}: not found at ${res.url.origin}`, 404, 'BLOB_UNKNOWN');
    }
    if (res.status === 416 && offset > 0) {
      // We already hold the whole blob (or more than it): start over from zero.
      await res.body.dump();
      return this.blob(repo, digest, 0, size);
    }
    await this.expect(res, [200, 206], `GET ${what}`);
    if (res.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res, 'content-range') ?? '');
      if (!range || Number(range[1]) !== offset) {
        await res.body.dump();
        throw new RegistryError(`${what}: asked ${res.url.origin} for bytes from ${offset}, got Content-Range ${header(res, 'content-range') ?? 'none'}`);
      }
      return { body: res.body, offset, ...(range[3] !== '*' && { size: Number(range[3]) }) };
    }
    const len = header(res, 'content-length');
    return { body: res.body, offset: 0, ...(len !== undefined && { size: Number(len) }) };
  }

  // ---- push side ----

  /** True when the repository already holds the blob. */
  async hasBlob(repo: string, digest: string): Promise<boolean> {
    const what = `HEAD blob ${this.host}/${repo}@${digest}`;
    const res = await this.send(what, repo, `/blobs/${digest}`, { method: 'HEAD' });
    await res.body.dump();
    if (res.status === 404) return false;
    await this.expect(res, [200], what);
    return true;
  }

  /** Cross-repository mount: true when the registry linked the blob without an upload. */
  async mountBlob(repo: string, digest: string, from: string): Promise<boolean> {
    const what = `mount ${digest} from ${from} into ${this.host}/${repo}`;
    return withRetry(async () => {
      const q = new URLSearchParams({ mount: digest, from });
      const res = await this.send(what, repo, `/blobs/uploads/?${q.toString()}`, { method: 'POST', headers: { 'content-length': '0' } });
      if (res.status === 201) {
        await res.body.dump();
        return true;
      }
      await this.expect(res, [202], what);
      await res.body.dump();
      // The registry opened an upload session instead; close it, the caller uploads.
      const location = header(res, 'location');
      if (location) await this.cancelUpload(repo, new URL(location, res.url).toString());
      return false;
    }, this.http.retryPolicy);
  }

  /**
   * Uploads a blob from a re-readable source. Up to `monolithicMax` bytes it
   * is one PUT with the body; larger blobs stream in PATCH chunks of
   * `chunkSize` (each streamed from the source, not buffered; proxies in
   * front of Harbor limit body sizes), then PUT ?digest=. The bytes are
   * hashed on the way and the upload is abandoned before the final PUT if
   * they do not match; a failed attempt starts over from the source.
   */
  async uploadBlob(repo: string, digest: string, size: number, read: ReadRange, opts: UploadOptions = {}): Promise<void> {
    const monolithicMax = opts.monolithicMax ?? 8 * 1024 * 1024;
    await withRetry(async () => {
      const session = await this.openUpload(repo, digest);
      const chunk = Math.max(opts.chunkSize ?? 64 * 1024 * 1024, session.minChunk, 1);
      if (size <= Math.min(monolithicMax, chunk)) {
        const hash = createHash('sha256');
        const parts: Buffer[] = [];
        for await (const c of read(0, size)) {
          hash.update(c);
          parts.push(c);
        }
        await this.checkHashed(session, hash.digest('hex'));
        await this.putUpload(session, Buffer.concat(parts));
      } else {
        await this.patchAll(session, size, read, chunk);
        await this.putUpload(session);
      }
    }, this.http.retryPolicy);
  }

  /**
   * The first half of an upload: the session opened and every byte sent in
   * PATCH chunks and hashed, but not committed: nothing is in the repository
   * until commitBlob(). For unpack, which streams each blob once, verifying as
   * it sends, and commits only when the whole bundle checked out.
   */
  async stageBlob(repo: string, digest: string, size: number, read: ReadRange, opts: UploadOptions = {}): Promise<StagedUpload> {
    return withRetry(async () => {
      const session = await this.openUpload(repo, digest);
      await this.patchAll(session, size, read, Math.max(opts.chunkSize ?? 64 * 1024 * 1024, session.minChunk, 1));
      return session;
    }, this.http.retryPolicy);
  }

  /** Completes a staged upload (PUT ?digest=, no body). */
  async commitBlob(staged: StagedUpload): Promise<void> {
    await withRetry(() => this.putUpload(staged), this.http.retryPolicy);
  }

  /** Gives up a staged upload: the registry drops what was sent (an abandoned session also expires on its own). */
  async abandonBlob(staged: StagedUpload): Promise<void> {
    await this.cancelUpload(staged.repo, staged.location);
  }

  private async openUpload(repo: string, digest: string): Promise<StagedUpload & { minChunk: number }> {
    const what = `upload ${this.host}/${repo}@${digest}`;
    const start = await this.send(what, repo, '/blobs/uploads/', { method: 'POST', headers: { 'content-length': '0' } });
    await this.expect(start, [202], what);
    await start.body.dump();
    return { repo, digest, what, location: this.location(start, what), minChunk: Number(header(start, 'oci-chunk-min-length') ?? 0) };
  }

  /** Streams bytes [0, size) in PATCH chunks, hashing them; a mismatch abandons the session. Updates `session.location`. */
  private async patchAll(session: { -readonly [K in keyof StagedUpload]: StagedUpload[K] }, size: number, read: ReadRange, chunk: number): Promise<void> {
    const { what, repo } = session;
    const hash = createHash('sha256');
    const hashed = async function* (src: AsyncIterable<Buffer>) {
      for await (const c of src) {
        hash.update(c);
        yield c;
      }
    };
    for (let offset = 0; offset < size; offset += chunk) {
      const end = Math.min(size, offset + chunk);
      const res = await this.sendUrl(`${what} (chunk at ${offset})`, session.location, {
        method: 'PATCH',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - offset), 'content-range': `${offset}-${end - 1}` },
        body: Readable.from(hashed(read(offset, end))),
        scope: pushScopes(repo),
      });
      await this.expect(res, [202], `${what} (chunk at ${offset})`);
      await res.body.dump();
      session.location = this.location(res, what);
    }
    await this.checkHashed(session, hash.digest('hex'));
  }

  private async checkHashed(session: StagedUpload, hex: string): Promise<void> {
    const actual = `sha256:${hex}`;
    if (actual === session.digest) return;
    await this.cancelUpload(session.repo, session.location);
    throw new UploadDigestMismatch(`${session.what}: the bytes read hash to ${actual}; upload abandoned`, session.digest, actual);
  }

  private async putUpload(session: StagedUpload, body?: Buffer): Promise<void> {
    const { what, digest, repo } = session;
    const put = new URL(session.location);
    put.searchParams.set('digest', digest);
    const done = await this.sendUrl(what, put, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) },
      ...(body && { body }),
      scope: pushScopes(repo),
    });
    await this.expect(done, [201], what);
    await done.body.dump();
    const got = header(done, 'docker-content-digest');
    if (got && got !== digest) throw new RegistryError(`${what}: the registry stored ${got}`);
  }

  /**
   * PUTs manifest bytes as they are, under a tag or their digest; checks the
   * digest the registry computed. `ociSubject`: the `OCI-Subject` header, which
   * a registry with the referrers API sends when it processed a `subject`.
   */
  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<{ ociSubject?: string }> {
    const digest = sha256Digest(bytes);
    const what = `PUT manifest ${this.ref(repo, ref)}`;
    const res = await this.send(what, repo, `/manifests/${ref}`, { method: 'PUT', headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: bytes });
    await this.expect(res, [201], what);
    await res.body.dump();
    const got = header(res, 'docker-content-digest');
    if (got && got !== digest) throw new RegistryError(`${what}: the registry stored ${got}, not ${digest}`);
    const ociSubject = header(res, 'oci-subject');
    return ociSubject ? { ociSubject } : {};
  }

  /**
   * `DELETE /v2/<repo>/manifests/<digest>`: "deleted" (202), or "absent" (404:
   * never there or already deleted, so a rerun is idempotent). Any other answer
   * throws a RegistryError carrying the status and the OCI code (405
   * UNSUPPORTED: distribution without storage.delete.enabled).
   */
  async deleteManifest(repo: string, digest: string): Promise<'deleted' | 'absent'> {
    const what = `DELETE manifest ${this.ref(repo, digest)}`;
    const res = await this.send(what, repo, `/manifests/${digest}`, { method: 'DELETE', scope: [`repository:${repo}:delete`] });
    if (res.status === 404) {
      await res.body.dump();
      return 'absent';
    }
    await this.expect(res, [200, 202, 204], what);
    await res.body.dump();
    return 'deleted';
  }

  /** Every tag of `repo` (`GET /v2/<repo>/tags/list`, following `Link` pages); an empty list when the repository is unknown. */
  async tags(repo: string): Promise<string[]> {
    const what = `tags of ${this.host}/${repo}`;
    const base = `${this.http.baseUrl(this.api)}/v2/${repo}/tags/list`;
    const out: string[] = [];
    let url: URL | undefined = new URL(base);
    for (let page = 0; url && page < MAX_TAG_PAGES; page++) {
      if (url.origin !== new URL(base).origin) throw new RegistryError(`${what}: the registry links the next page to another origin (${url.origin}); refusing to follow`);
      const res = await this.sendUrl(what, url, { maxBody: MAX_MANIFEST_BYTES, scope: [`repository:${repo}:pull`] });
      if (res.status === 404) {
        await res.body.dump();
        return out;
      }
      await this.expect(res, [200], `GET ${what}`);
      const text = await this.text(res, what);
      let tags: unknown;
      try {
        tags = (JSON.parse(text) as { tags?: unknown }).tags;
      } catch {
        throw new RegistryError(`${what}: the answer is not JSON`);
      }
      if (tags !== null && tags !== undefined && (!Array.isArray(tags) || !tags.every((t) => typeof t === 'string'))) throw new RegistryError(`${what}: "tags" is not a list of names`);
      out.push(...((tags as string[] | null) ?? []));
      const link = nextLink(res.headers['link']);
      url = link === undefined ? undefined : new URL(link, res.url);
    }
    if (url) throw new RegistryError(`${what}: more than ${MAX_TAG_PAGES} pages of tags; refusing to read on`);
    return out;
  }

  /**
   * One page of `GET /v2/<repo>/referrers/<digest>` (or the `next` URL a
   * previous page linked to, same origin only). Answers whatever the registry
   * said, for the caller to decide whether to trust it: a registry without the
   * API answers 404, 400 or 405, or a page of HTML. A 5xx after the retries
   * throws; the body is read (bounded like a manifest) only on 200.
   */
  async referrersPage(repo: string, digest: string, next?: string): Promise<ReferrersPage> {
    const what = `referrers of ${this.host}/${repo}@${digest}`;
    const base = `${this.http.baseUrl(this.api)}/v2/${repo}/referrers/${digest}`;
    const url = next === undefined ? new URL(base) : new URL(next, base);
    if (url.origin !== new URL(base).origin) throw new RegistryError(`${what}: the registry links the next page to another origin (${url.origin}); refusing to follow`, undefined, 'AIRLOCK_FOREIGN_LINK');
    const res = await this.sendUrl(what, url, { headers: { accept: OCI_INDEX }, maxBody: MAX_MANIFEST_BYTES, scope: [`repository:${repo}:pull`] });
    if (res.status >= 500) await this.expect(res, [200], `GET ${what}`);
    const type = contentType(res);
    if (res.status !== 200) {
      await res.body.dump();
      return { status: res.status, ...(type !== undefined && { contentType: type }) };
    }
    const bytes = Buffer.from(await this.read(res, what, () => res.body.arrayBuffer()));
    const link = nextLink(res.headers['link']);
    return { status: 200, bytes, ...(type !== undefined && { contentType: type }), ...(link !== undefined && { next: new URL(link, res.url).toString() }) };
  }

  private ref(repo: string, ref: string): string {
    return `${this.host}/${repo}${ref.includes(':') ? '@' : ':'}${ref}`;
  }

  private send(what: string, repo: string, suffix: string, req: HttpRequest): Promise<HttpResponse> {
    const write = req.method !== undefined && !['GET', 'HEAD'].includes(req.method);
    return this.sendUrl(what, `${this.http.baseUrl(this.api)}/v2/${repo}${suffix}`, { scope: write ? pushScopes(repo) : [`repository:${repo}:pull`], ...req });
  }

  /** One request; a failure names the item and the origin. */
  private async sendUrl(what: string, url: string | URL, req: HttpRequest): Promise<HttpResponse> {
    try {
      return await this.http.request(url, { item: what, ...req });
    } catch (err) {
      throw networkError(what, err);
    }
  }

  private async read<T>(res: HttpResponse, what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw networkError(what, err, res.url.origin);
    }
  }

  private text(res: HttpResponse, what: string): Promise<string> {
    return this.read(res, what, () => res.body.text());
  }

  private location(res: HttpResponse, what: string): string {
    const loc = header(res, 'location');
    if (!loc) throw new RegistryError(`${what}: ${res.url.origin} sent no Location for the upload`);
    return new URL(loc, res.url).toString();
  }

  private async cancelUpload(repo: string, location: string): Promise<void> {
    try {
      const res = await this.http.request(location, { method: 'DELETE', scope: pushScopes(repo) });
      await res.body.dump();
    } catch {
      // An abandoned session expires on its own.
    }
  }

  private async expect(res: HttpResponse, ok: number[], what: string): Promise<void> {
    if (ok.includes(res.status)) return;
    const body = res.status === 404 || res.status >= 400 ? await this.text(res, what).catch(() => '') : (await res.body.dump().catch(() => undefined), '');
    const summary = ociErrorSummary(body);
    const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(body)?.[1];
    const hint =
      res.status === 401
        ? '; the registry refused the credentials: check --username/--password-stdin or docker config.json'
        : res.status === 403
          ? '; the credentials lack access to it'
          : res.status === 400 && res.url.protocol === 'http:'
            ? `; if ${this.host} speaks HTTPS, set registries."${this.host}".caFile (or insecureSkipTLSVerify) in the manifest`
            : '';
    throw statusError(res, `${what}: ${res.url.origin} answered HTTP ${res.status}${summary ? ` ${summary}` : ''}${hint}`, code);
  }
}

/** A failure of the network layer as a RegistryError naming the item and the origin; retryability travels as the cause. */
function networkError(what: string, err: unknown, origin?: string): Error {
  if (err instanceof RegistryError || err instanceof StatusError) return err;
  const e = err as { origin?: string };
  if (origin && !e?.origin && err && typeof err === 'object') e.origin = origin;
  const text = describeNetworkError(err);
  return new RegistryError(text.startsWith(what) ? text : `${what}: ${text}`, (err as { statusCode?: number })?.statusCode, err instanceof HttpError ? err.code : undefined, { cause: err });
}

function pushScopes(repo: string): string[] {
  return [`repository:${repo}:pull,push`];
}

function contentType(res: HttpResponse): string | undefined {
  return header(res, 'content-type')?.split(';')[0]?.trim();
}

/** The manifest's own mediaType wins; it must agree with Content-Type when both are there. */
function manifestMediaType(bytes: Buffer, ct: string | undefined, what: string): string {
  const deep = jsonDepthProblem(bytes);
  if (deep) throw new RegistryError(`${what}: the manifest ${deep}`);
  let parsed: { mediaType?: unknown; schemaVersion?: unknown };
  try {
    parsed = JSON.parse(bytes.toString('utf8')) as typeof parsed;
  } catch {
    throw new RegistryError(`${what}: the manifest is not JSON`);
  }
  const inner = typeof parsed.mediaType === 'string' ? parsed.mediaType : undefined;
  if (parsed.schemaVersion === 1) throw new RegistryError(`${what}: Docker schema 1 manifests are not supported (deprecated since 2017); use a newer tag`);
  if (inner && ct && inner !== ct && ct !== 'application/json') {
    throw new RegistryError(`${what}: Content-Type ${ct} differs from the manifest's mediaType ${inner}; refusing it`);
  }
  const mt = inner ?? ct;
  if (!mt || mt === 'application/json') throw new RegistryError(`${what}: the manifest has no media type`);
  return mt;
}

/**
 * `{"errors":[{"code":"X","message":"y"}]}` → `X: y`; any other body, its
 * start. Escaped: it goes into a message on the operator's terminal, where a
 * newline or an escape sequence in it would forge lines.
 */
export function ociErrorSummary(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: unknown; message?: unknown }> };
    const parts = (body.errors ?? []).map((e) => [e.code, e.message].filter((v) => typeof v === 'string' && v).join(': '));
    return printable(parts.join('; ').slice(0, 1000));
  } catch {
    return printable(text.trim().slice(0, 200));
  }
}

/** The target of `rel="next"` in a Link header (RFC 8288), as written. */
export function nextLink(value: string | string[] | undefined): string | undefined {
  for (const v of Array.isArray(value) ? value : value ? [value] : []) {
    for (const m of v.matchAll(/<([^>]*)>\s*((?:;\s*[^;,]+)*)/g)) {
      if (/;\s*rel\s*=\s*"?next"?(\s|;|$)/i.test(m[2] ?? '')) return m[1];
    }
  }
  return undefined;
}
