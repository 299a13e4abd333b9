// Files over HTTP(S): checksum files, and a resumable Source for the cache.
import path from 'node:path';
import type { HashAlgorithm } from '../manifest/types.js';
import { header, statusError, type Http, type HttpRequest, type HttpResponse } from '../http/client.js';
import { describeNetworkError } from '../http/errors.js';
import type { Source } from '../cache/store.js';

export class FetchError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly status?: number,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'FetchError';
  }
}

const MAX_CHECKSUM_FILE = 64 * 1024;

/** A Source that GETs `url`, with `Range` when resuming; `size` (when known) bounds the body. */
export function httpSource(http: Http, url: string, size?: number): Source {
  return {
    async open(offset) {
      const res = await send(http, url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {}, ...(size !== undefined && { size }) });
      if (res.status === 416 && offset > 0) {
        await res.body.dump();
        return this.open(0);
      }
      if (res.status === 206) {
        const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header(res, 'content-range') ?? '');
        if (!range || Number(range[1]) !== offset) {
          await res.body.dump();
          throw new FetchError(`${url}: asked ${res.url.origin} for bytes from ${offset}, got Content-Range ${header(res, 'content-range') ?? 'none'}`);
        }
        return { body: res.body, offset, ...(range[2] !== '*' && { size: Number(range[2]) }) };
      }
      await expectOk(res, url);
      const len = header(res, 'content-length');
      return { body: res.body, offset: 0, ...(len !== undefined && { size: Number(len) }) };
    },
  };
}

/** Size from a HEAD request (for --dry-run), when the server says. */
export async function headSize(http: Http, url: string): Promise<number | undefined> {
  const res = await send(http, url, { method: 'HEAD' });
  await res.body.dump();
  await expectOk(res, url);
  const len = header(res, 'content-length');
  return len === undefined ? undefined : Number(len);
}

/**
 * Fetches a checksum file (`<hex>  name`, `<hex> *name` or bare hex) and returns
 * the digest for `fileUrl`. The algorithm comes from the declared one or the hex length.
 */
export async function fetchChecksum(http: Http, checksumUrl: string, fileUrl: string, declared: HashAlgorithm | undefined): Promise<{ algorithm: HashAlgorithm; hex: string }> {
  const what = `checksum file ${checksumUrl}`;
  const res = await send(http, checksumUrl, { maxBody: MAX_CHECKSUM_FILE, item: what });
  await expectOk(res, what);
  let text: string;
  try {
    text = await res.body.text();
  } catch (err) {
    throw new FetchError(`${what}: ${describeNetworkError(err)}${(err as { code?: string }).code === 'AIRLOCK_BODY_LIMIT' ? '; is the URL right?' : ''}`, undefined, err);
  }
  return parseChecksumFile(text, checksumUrl, fileUrl, declared);
}

async function send(http: Http, url: string, req: HttpRequest): Promise<HttpResponse> {
  try {
    return await http.request(url, { item: url, ...req });
  } catch (err) {
    throw new FetchError(`${req.item ?? url}: ${describeNetworkError(err)}`, undefined, err);
  }
}

async function expectOk(res: HttpResponse, what: string): Promise<void> {
  if (res.status === 200) return;
  await res.body.dump().catch(() => undefined);
  if (res.status === 404) throw new FetchError(`${what}: not found at ${res.url.origin} (HTTP 404); check the URL or version`, 404);
  throw statusError(res, `${what}: ${res.url.origin} answered HTTP ${res.status}`);
}

export function parseChecksumFile(text: string, checksumUrl: string, fileUrl: string, declared?: HashAlgorithm): { algorithm: HashAlgorithm; hex: string } {
  const wantName = path.posix.basename(new URL(fileUrl).pathname);
  const lines = text.split(/\r?\n/).map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const candidates: Array<{ hex: string; name?: string }> = [];
  for (const line of lines) {
    const m = /^([A-Fa-f0-9]{64}|[A-Fa-f0-9]{128})(?:\s+\*?(.+))?$/.exec(line);
    if (m) candidates.push({ hex: (m[1] ?? '').toLowerCase(), ...(m[2] !== undefined && { name: m[2].trim() }) });
  }
  const named = candidates.filter((c) => c.name !== undefined);
  const pick =
    candidates.length === 1 && (candidates[0]?.name === undefined || path.posix.basename(candidates[0].name) === wantName)
      ? candidates[0]
      : named.find((c) => path.posix.basename(c.name ?? '') === wantName);
  if (!pick) {
    throw new FetchError(
      candidates.length === 0
        ? `checksum file ${checksumUrl} holds no sha256 or sha512 ("<hex>  ${wantName}" or bare hex)`
        : `checksum file ${checksumUrl} has no line for ${wantName}`,
    );
  }
  const algorithm: HashAlgorithm = pick.hex.length === 128 ? 'sha512' : 'sha256';
  if (declared && declared !== algorithm) {
    throw new FetchError(`checksum file ${checksumUrl} holds a ${algorithm}, but its name says ${declared}`);
  }
  return { algorithm, hex: pick.hex };
}
