// A client for one registry (distribution API), pull side. Manifests come
// back as the exact bytes the registry sent, checked against the digest;
// blobs come back as streams for the cache to hash while it writes.
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
  private async send(repo: string, suffix: string, req: HttpRequest, actions = 'pull'): Promise<HttpResponse> {
    const url = `${this.transport.baseUrl(this.api)}/v2/${repo}${suffix}`;
    const scopes = [`repository:${repo}:${actions}`];
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
