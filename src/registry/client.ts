// A client for one registry (distribution API), pull side. Manifests come
// back as the exact bytes the registry sent, checked against the digest;
// blobs come back as streams for the cache to hash while it writes.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { apiHost } from '../oci/reference.js';
import { sha256Digest } from '../oci/digest.js';
import { MANIFEST_ACCEPT } from '../oci/mediatypes.js';
import type { Authenticator } from './auth.js';
import { parseRetryAfter, RETRY_STATUSES, RetryableError, withRetry, type RetryOptions } from './retry.js';
import { header, type HttpRequest, type HttpResponse, type Transport } from './transport.js';

/** Manifests are small; a registry sending more is broken or hostile. */
export const MAX_MANIFEST_BYTES = 8 * 1024 * 1024;

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly code?: string,
  ) {
    super(message);
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
export type ReadRange = (start: number, end: number) => AsyncIterable<Buffer>;

export class RegistryClient {
  /** The host as named in references (`docker.io`); requests go to apiHost(). */
  readonly host: string;
  private readonly api: string;

  constructor(
    host: string,
    private readonly transport: Transport,
    private readonly auth: Authenticator,
    private readonly retry: RetryOptions = {},
  ) {
    this.host = host;
    this.api = apiHost(host);
  }

  /** HEAD a manifest: digest, type and size without counting against pull quotas. */
  async resolve(repo: string, ref: string): Promise<Resolved | undefined> {
    return withRetry(async () => {
      const res = await this.send(repo, `/manifests/${ref}`, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } });
      await res.body.dump();
      if (res.status === 404) return undefined;
      this.expect(res, [200], `HEAD manifest ${this.host}/${repo}:${ref}`, '');
      const digest = header(res, 'docker-content-digest');
      const mediaType = contentType(res);
      const size = Number(header(res, 'content-length'));
      if (!digest || !mediaType || !Number.isFinite(size)) return undefined; // registry too old to say; caller GETs
      return { digest, mediaType, size };
    }, this.retry);
  }

  /** GET a manifest by tag or digest; checks the bytes against the digest asked for or announced. */
  async manifest(repo: string, ref: string): Promise<Manifest> {
    const what = `${this.host}/${repo}${ref.includes(':') ? '@' : ':'}${ref}`;
    return withRetry(async () => {
      const res = await this.send(repo, `/manifests/${ref}`, { headers: { accept: MANIFEST_ACCEPT } });
      if (res.status === 404) {
        const text = await res.body.text();
        throw new RegistryError(`${what}: not found (${ociErrorSummary(text) || 'HTTP 404'}); check the name and tag`, 404, 'MANIFEST_UNKNOWN');
      }
      if (res.status !== 200) this.expect(res, [200], `GET manifest ${what}`, await res.body.text());
      const declared = Number(header(res, 'content-length'));
      if (declared > MAX_MANIFEST_BYTES) {
        await res.body.dump();
        throw new RegistryError(`${what}: manifest of ${declared} bytes is larger than ${MAX_MANIFEST_BYTES}; refusing`);
      }
      const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES, what);
      const digest = sha256Digest(bytes);
      if (ref.startsWith('sha256:') && digest !== ref) {
        throw new RegistryError(`${what}: the registry sent a manifest whose digest is ${digest}; refusing it`);
      }
      const announced = header(res, 'docker-content-digest');
      if (announced?.startsWith('sha256:') && announced !== digest) {
        throw new RegistryError(`${what}: Docker-Content-Digest says ${announced} but the bytes hash to ${digest}; refusing it`);
      }
      const mediaType = manifestMediaType(bytes, contentType(res), what);
      return { bytes, digest, mediaType, size: bytes.length };
    }, this.retry);
  }

  /** Opens a blob, from `offset` when resuming. Retries are the caller's: it knows how much it has. */
  async blob(repo: string, digest: string, offset = 0): Promise<BlobResponse> {
    const headers: Record<string, string> = offset > 0 ? { range: `bytes=${offset}-` } : {};
    const res = await this.send(repo, `/blobs/${digest}`, { headers });
    const what = `${this.host}/${repo}@${digest}`;
    if (res.status === 404) {
      await res.body.dump();
      throw new RegistryError(`blob ${what}: not found`, 404, 'BLOB_UNKNOWN');
    }
    if (res.status === 416 && offset > 0) {
      // We already hold the whole blob (or more than it): start over from zero.
      await res.body.dump();
      return this.blob(repo, digest, 0);
    }
    if (res.status !== 200 && res.status !== 206) this.expect(res, [200, 206], `GET blob ${what}`, await res.body.text());
    if (res.status === 206) {
      const range = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header(res, 'content-range') ?? '');
      if (!range || Number(range[1]) !== offset) {
        await res.body.dump();
        throw new RegistryError(`blob ${what}: asked for bytes from ${offset}, got Content-Range ${header(res, 'content-range') ?? 'none'}`);
      }
      return { body: res.body, offset, ...(range[3] !== '*' && { size: Number(range[3]) }) };
    }
    const len = header(res, 'content-length');
    return { body: res.body, offset: 0, ...(len !== undefined && { size: Number(len) }) };
  }

  /** One request with authentication: a known token is sent up front; a 401 is answered once. */
  private send(repo: string, suffix: string, req: HttpRequest, scopes: string[] = [`repository:${repo}:pull`]): Promise<HttpResponse> {
    return this.sendUrl(`${this.transport.baseUrl(this.api)}/v2/${repo}${suffix}`, repo, req, scopes);
  }

  private async sendUrl(url: string | URL, repo: string, req: HttpRequest, scopes: string[]): Promise<HttpResponse> {
    const known = await this.auth.authorization(this.api, scopes);
    let res = await this.transport.request(url, withAuth(req, known));
    if (res.status === 401) {
      const challenge = header(res, 'www-authenticate');
      await res.body.dump();
      if (known) this.auth.invalidate(this.api, scopes);
      const authorization = await this.auth.challenge(this.api, challenge, scopes);
      res = await this.transport.request(url, withAuth(req, authorization));
      if (res.status === 401) {
        await res.body.dump();
        throw new RegistryError(`${this.host}/${repo}: the registry refused the credentials (HTTP 401); check --username/--password-stdin or docker config.json`, 401, 'UNAUTHORIZED');
      }
    }
    if (RETRY_STATUSES.has(res.status)) {
      const text = await res.body.text().catch(() => '');
      throw new RetryableError(`${this.host}/${repo}: HTTP ${res.status} ${ociErrorSummary(text)}`.trim(), parseRetryAfter(res.headers['retry-after']));
    }
    return res;
  }

  // ---- push side ----

  /** True when the repository already holds the blob. */
  async hasBlob(repo: string, digest: string): Promise<boolean> {
    return withRetry(async () => {
      const res = await this.send(repo, `/blobs/${digest}`, { method: 'HEAD' }, pushScopes(repo));
      await res.body.dump();
      if (res.status === 404) return false;
      this.expect(res, [200], `HEAD blob ${this.host}/${repo}@${digest}`, '');
      return true;
    }, this.retry);
  }

  /** Cross-repository mount: true when the registry linked the blob without an upload. */
  async mountBlob(repo: string, digest: string, from: string): Promise<boolean> {
    return withRetry(async () => {
      const q = new URLSearchParams({ mount: digest, from });
      const res = await this.send(repo, `/blobs/uploads/?${q.toString()}`, { method: 'POST', headers: { 'content-length': '0' } }, [...pushScopes(repo), `repository:${from}:pull`]);
      const text = await res.body.text();
      if (res.status === 201) return true;
      this.expect(res, [202], `mount ${digest} from ${from} into ${this.host}/${repo}`, text);
      // The registry opened an upload session instead; close it, the caller uploads.
      const location = header(res, 'location');
      if (location) await this.cancelUpload(repo, location);
      return false;
    }, this.retry);
  }

  /**
   * Uploads a blob from a re-readable source. Up to `monolithicMax` bytes it
   * is one PUT with the body; larger blobs stream in PATCH chunks of
   * `chunkSize` (each streamed from the source, not buffered; proxies in
   * front of Harbor limit body sizes), then PUT ?digest=. The bytes are
   * hashed on the way and the upload is abandoned before the final PUT if
   * they do not match; a failed attempt starts over from the source.
   */
  async uploadBlob(repo: string, digest: string, size: number, read: ReadRange, opts: { chunkSize?: number; monolithicMax?: number } = {}): Promise<void> {
    const monolithicMax = opts.monolithicMax ?? 8 * 1024 * 1024;
    await withRetry(async () => {
      const what = `upload ${this.host}/${repo}@${digest}`;
      const start = await this.send(repo, '/blobs/uploads/', { method: 'POST', headers: { 'content-length': '0' } }, pushScopes(repo));
      const startText = await start.body.text();
      this.expect(start, [202], what, startText);
      let location = this.location(start, what);
      const minChunk = Number(header(start, 'oci-chunk-min-length') ?? 0);
      const chunk = Math.max(opts.chunkSize ?? 64 * 1024 * 1024, minChunk, 1);
      const hash = createHash('sha256');
      const hashed = async function* (src: AsyncIterable<Buffer>) {
        for await (const c of src) {
          hash.update(c);
          yield c;
        }
      };
      let body: Buffer | undefined;
      if (size <= Math.min(monolithicMax, chunk)) {
        const parts: Buffer[] = [];
        for await (const c of hashed(read(0, size))) parts.push(c);
        body = Buffer.concat(parts);
      } else {
        for (let offset = 0; offset < size; offset += chunk) {
          const end = Math.min(size, offset + chunk);
          const res = await this.sendUrl(location, repo, {
            method: 'PATCH',
            headers: { 'content-type': 'application/octet-stream', 'content-length': String(end - offset), 'content-range': `${offset}-${end - 1}` },
            body: Readable.from(hashed(read(offset, end))),
          }, pushScopes(repo));
          const text = await res.body.text();
          this.expect(res, [202], `${what} (chunk at ${offset})`, text);
          location = this.location(res, what);
        }
      }
      const actual = `sha256:${hash.digest('hex')}`;
      if (actual !== digest) {
        await this.cancelUpload(repo, location);
        throw new RegistryError(`${what}: the bytes read hash to ${actual}; upload abandoned`);
      }
      const put = new URL(location);
      put.searchParams.set('digest', digest);
      const done = await this.sendUrl(put, repo, {
        method: 'PUT',
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(body?.length ?? 0) },
        ...(body && { body }),
      }, pushScopes(repo));
      const text = await done.body.text();
      this.expect(done, [201], what, text);
      const got = header(done, 'docker-content-digest');
      if (got && got !== digest) throw new RegistryError(`${what}: the registry stored ${got}`);
    }, this.retry);
  }

  /** PUTs manifest bytes as they are, under a tag or their digest; checks the digest the registry computed. */
  async putManifest(repo: string, ref: string, bytes: Buffer, mediaType: string): Promise<void> {
    const digest = sha256Digest(bytes);
    await withRetry(async () => {
      const res = await this.send(repo, `/manifests/${ref}`, { method: 'PUT', headers: { 'content-type': mediaType, 'content-length': String(bytes.length) }, body: bytes }, pushScopes(repo));
      const text = await res.body.text();
      this.expect(res, [201], `PUT manifest ${this.host}/${repo}:${ref}`, text);
      const got = header(res, 'docker-content-digest');
      if (got && got !== digest) throw new RegistryError(`PUT manifest ${this.host}/${repo}:${ref}: the registry stored ${got}, not ${digest}`);
    }, this.retry);
  }

  private location(res: HttpResponse, what: string): string {
    const loc = header(res, 'location');
    if (!loc) throw new RegistryError(`${what}: the registry sent no Location for the upload`);
    return new URL(loc, res.url).toString();
  }

  private async cancelUpload(repo: string, location: string): Promise<void> {
    try {
      const res = await this.sendUrl(new URL(location, this.transport.baseUrl(this.api)), repo, { method: 'DELETE' }, pushScopes(repo));
      await res.body.dump();
    } catch {
      // An abandoned session expires on its own.
    }
  }

  private expect(res: HttpResponse, ok: number[], what: string, body: string): void {
    if (ok.includes(res.status)) return;
    const summary = ociErrorSummary(body);
    const code = /"code"\s*:\s*"([A-Z_]+)"/.exec(body)?.[1];
    const hint =
      res.status === 403
        ? '; the credentials lack access to it'
        : res.status === 400 && res.url.protocol === 'http:'
          ? `; if ${this.host} speaks HTTPS, set registries."${this.host}".caFile (or insecureSkipTLSVerify) in the manifest`
          : '';
    throw new RegistryError(`${what}: HTTP ${res.status}${summary ? ` ${summary}` : ''}${hint}`, res.status, code);
  }
}

function pushScopes(repo: string): string[] {
  return [`repository:${repo}:pull,push`];
}

function withAuth(req: HttpRequest, authorization: string | undefined): HttpRequest {
  return authorization ? { ...req, headers: { ...req.headers, authorization } } : req;
}

function contentType(res: HttpResponse): string | undefined {
  return header(res, 'content-type')?.split(';')[0]?.trim();
}

/** The manifest's own mediaType wins; it must agree with Content-Type when both are there. */
function manifestMediaType(bytes: Buffer, ct: string | undefined, what: string): string {
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

async function readLimited(body: HttpResponse['body'], limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += (chunk as Buffer).length;
    if (n > limit) {
      body.destroy();
      throw new RegistryError(`${what}: manifest larger than ${limit} bytes; refusing`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

/** `{"errors":[{"code":"X","message":"y"}]}` → `X: y`. */
export function ociErrorSummary(text: string): string {
  try {
    const body = JSON.parse(text) as { errors?: Array<{ code?: string; message?: string }> };
    return (body.errors ?? []).map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  } catch {
    return text.trim().slice(0, 200);
  }
}
