// Files over HTTP(S): checksum files, and a resumable Source for the cache.
import path from 'node:path';
import type { HashAlgorithm } from '../manifest/types.js';
import { throwIfRetryable, withRetry, type RetryOptions } from '../registry/retry.js';
import { header, type Transport } from '../registry/transport.js';
import type { Source } from '../cache/store.js';

export class FetchError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
    this.name = 'FetchError';
  }
}

const MAX_CHECKSUM_FILE = 64 * 1024;

/** A Source that GETs `url`, with `Range` when resuming. */
export function httpSource(transport: Transport, url: string): Source {
  return {
    async open(offset) {
      const res = await transport.request(url, { headers: offset > 0 ? { range: `bytes=${offset}-` } : {} });
      await throwIfRetryable(res, url);
      if (res.status === 416 && offset > 0) {
        await res.body.dump();
        return this.open(0);
      }
      if (res.status === 206) {
        const range = /^bytes (\d+)-\d+\/(\d+|\*)$/.exec(header(res, 'content-range') ?? '');
        if (!range || Number(range[1]) !== offset) {
          await res.body.dump();
          throw new FetchError(`${url}: asked for bytes from ${offset}, got Content-Range ${header(res, 'content-range') ?? 'none'}`);
        }
        return { body: res.body, offset, ...(range[2] !== '*' && { size: Number(range[2]) }) };
      }
      if (res.status !== 200) {
        await res.body.dump();
        throw new FetchError(`${url}: HTTP ${res.status}${res.status === 404 ? ' (not found; check the URL or version)' : ''}`, res.status);
      }
      const len = header(res, 'content-length');
      return { body: res.body, offset: 0, ...(len !== undefined && { size: Number(len) }) };
    },
  };
}

/** Size from a HEAD request (for --dry-run), when the server says. */
export async function headSize(transport: Transport, url: string, retry?: RetryOptions): Promise<number | undefined> {
  return withRetry(async () => {
    const res = await transport.request(url, { method: 'HEAD' });
    await throwIfRetryable(res, url);
    await res.body.dump();
    if (res.status !== 200) throw new FetchError(`${url}: HTTP ${res.status}${res.status === 404 ? ' (not found; check the URL or version)' : ''}`, res.status);
    const len = header(res, 'content-length');
    return len === undefined ? undefined : Number(len);
  }, retry);
}

/**
 * Fetches a checksum file (`<hex>  name`, `<hex> *name` or bare hex) and returns
 * the digest for `fileUrl`. The algorithm comes from the declared one or the hex length.
 */
export async function fetchChecksum(
  transport: Transport,
  checksumUrl: string,
  fileUrl: string,
  declared: HashAlgorithm | undefined,
  retry?: RetryOptions,
): Promise<{ algorithm: HashAlgorithm; hex: string }> {
  const text = await withRetry(async () => {
    const res = await transport.request(checksumUrl);
    await throwIfRetryable(res, checksumUrl);
    if (res.status !== 200) {
      await res.body.dump();
      throw new FetchError(`checksum file ${checksumUrl}: HTTP ${res.status}`, res.status);
    }
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const c of res.body) {
      n += (c as Buffer).length;
      if (n > MAX_CHECKSUM_FILE) {
        res.body.destroy();
        throw new FetchError(`checksum file ${checksumUrl} is larger than ${MAX_CHECKSUM_FILE} bytes; is the URL right?`);
      }
      chunks.push(c as Buffer);
    }
    return Buffer.concat(chunks).toString('utf8');
  }, retry);
  return parseChecksumFile(text, checksumUrl, fileUrl, declared);
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
