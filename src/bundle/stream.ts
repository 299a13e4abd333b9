// A bundle read from a stream (standard input) in one pass: `airlock verify -`
// and `airlock inspect -` (SPEC §7). Entries are in bundle.json order, so
// nothing needs a seek: bundle.json and its signature come first and are
// checked before anything else is believed, then each entry is hashed as it
// streams by, then only zeros may follow the end-of-archive marker. The same
// strict header reader as for files (./tarread.ts) does the parsing; nothing
// is copied to disk, and only small JSON blobs (manifests, configs) are kept,
// for the image graph walk verify makes after the pass.
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { printable } from '../util/printable.js';
import { BLOBS_PREFIX, type BundleIndex } from './format.js';
import { policyBlobs } from './verdicts.js';
import { planEntries, readHead } from './reader.js';
import { BLOCK } from './tar.js';
import { archiveEndLimit, BundleError, checksumOk, headerName, readEntryHeader, tooMuchPadding, type ReadSource } from './tarread.js';

/** Blobs up to this size that look like JSON are kept for the graph walk. */
const KEEP_MAX = 4 * 1024 * 1024;
const KEEP_TOTAL = 256 * 1024 * 1024;
const CHUNK = 1024 * 1024;

/** Forward-only positioned reads over an async byte stream: a read may skip ahead, never back. */
class StreamSource implements ReadSource {
  private pos = 0;
  private pending: Buffer = Buffer.alloc(0);
  private ended = false;
  private readonly it: AsyncIterator<Buffer | string>;

  constructor(stream: AsyncIterable<Buffer | string>) {
    this.it = stream[Symbol.asyncIterator]();
  }

  /** Bytes read from the stream so far. */
  get position(): number {
    return this.pos;
  }

  private async fill(): Promise<boolean> {
    if (this.pending.length > 0) return true;
    if (this.ended) return false;
    const r = await this.it.next();
    if (r.done) {
      this.ended = true;
      return false;
    }
    this.pending = typeof r.value === 'string' ? Buffer.from(r.value) : r.value;
    return true;
  }

  async read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }> {
    if (position < this.pos) throw new Error(`stream reader: a read at byte ${position} goes back before byte ${this.pos}`);
    while (this.pos < position) {
      if (!(await this.fill())) return { bytesRead: 0 };
      const skip = Math.min(this.pending.length, position - this.pos);
      this.pending = this.pending.subarray(skip);
      this.pos += skip;
    }
    if (length === 0 || !(await this.fill())) return { bytesRead: 0 };
    const n = Math.min(length, this.pending.length);
    this.pending.copy(buffer, offset, 0, n);
    this.pending = this.pending.subarray(n);
    this.pos += n;
    return { bytesRead: n };
  }

  size(): Promise<number> {
    return Promise.reject(new Error('a stream has no size until it ends'));
  }
}

export interface StreamResult {
  readonly index: BundleIndex;
  readonly bundleJson: Buffer;
  readonly signed: boolean;
  readonly verified: boolean;
  /** Bytes read from the stream. */
  readonly bytes: number;
  /** Verified small entries kept for readGraph (the same shape as BundleReader's). */
  readEntry(name: string): Promise<Buffer>;
  has(name: string): boolean;
}

export interface StreamOptions {
  /** Check the signature with this key (verify); without, bundle.json is read unverified and nothing else is (inspect). */
  readonly pub?: KeyObject;
  readonly onBytes?: (n: number) => void;
  /** Called once the signature checked out, with the bytes of entries that will be hashed (for progress). */
  readonly onPlan?: (bytes: number) => void;
}

/**
 * Reads a bundle from `stream`. With `pub`: the signature is checked, then
 * every entry, then the end; any fault throws a BundleError (as the file
 * reader's). Without: only bundle.json (and whether a signature follows) is read.
 */
export async function readBundleStream(stream: AsyncIterable<Buffer | string>, opts: StreamOptions = {}): Promise<StreamResult> {
  const src = new StreamSource(stream);
  const head = await readHead(src, 'standard input', opts.pub);
  const { index, bundleJson, signed, verified } = head;
  let offset = head.next;
  const kept = new Map<string, Buffer>();
  const seen = new Set<string>();
  const result = (): StreamResult => ({
    index,
    bundleJson,
    signed,
    verified,
    bytes: src.position,
    has: (name) => seen.has(name),
    readEntry: (name) => {
      const data = kept.get(name);
      return data ? Promise.resolve(data) : Promise.reject(new BundleError(`entry "${printable(name)}" was not kept from the stream (not small JSON)`));
    },
  });
  if (!opts.pub) return result();

  const plan = planEntries(index);
  // The policy's YAML and key files are not JSON, and are needed after the pass (verify - --signatures).
  const policy = new Set(policyBlobs(index.policy).map((d) => BLOBS_PREFIX + d.slice(7)));
  opts.onPlan?.(plan.reduce((n, e) => n + e.size, 0));
  const buf = Buffer.allocUnsafe(CHUNK);
  let keptBytes = 0;
  for (const want of plan) {
    const got = await readEntryHeader(src, offset);
    if (!got) throw new BundleError(`entry "${printable(want.name)}" is missing: the archive ends before it`);
    if (got.name !== want.name) {
      const known = seen.has(got.name) ? 'a duplicate of an earlier entry' : plan.some((p) => p.name === got.name) ? 'out of order' : 'not named in bundle.json';
      throw new BundleError(`entry "${printable(got.name)}" is ${known}; expected "${printable(want.name)}" here`);
    }
    if (got.size !== want.size) throw new BundleError(`entry "${printable(want.name)}" is ${got.size} bytes; bundle.json says ${want.size}`);
    const h = createHash('sha256');
    const keep = want.kind === 'blob' && want.size <= KEEP_MAX && keptBytes + want.size <= KEEP_TOTAL ? Buffer.allocUnsafe(want.size) : undefined;
    for (let done = 0; done < want.size; ) {
      const { bytesRead } = await src.read(buf, 0, Math.min(CHUNK, want.size - done), got.dataOffset + done);
      if (bytesRead === 0) throw new BundleError(`the bundle is truncated: entry "${printable(want.name)}" ends after ${done} of ${want.size} bytes`);
      const chunk = buf.subarray(0, bytesRead);
      h.update(chunk);
      if (keep) chunk.copy(keep, done);
      done += bytesRead;
      opts.onBytes?.(bytesRead);
    }
    const actual = h.digest('hex');
    if (actual !== want.sha256) throw new BundleError(`entry "${printable(want.name)}" is corrupt: its sha256 is ${actual}, bundle.json says ${want.sha256}`);
    seen.add(want.name);
    // Manifests and configs are JSON (and signature payloads and Sigstore bundles); layers are not kept.
    if (keep && (/^\s*[[{]/.test(keep.subarray(0, 16).toString('latin1')) || policy.has(want.name))) {
      kept.set(want.name, keep);
      keptBytes += keep.length;
    }
    offset = got.nextOffset;
  }
  const tail = await readEntryHeader(src, offset);
  if (tail) throw new BundleError(`entry "${printable(tail.name)}" is not named in bundle.json; refusing the bundle`);
  await checkStreamEnd(src, offset);
  return result();
}

/**
 * The end-of-archive marker at `offset`, then only zeros to the end of the
 * stream, at most one tar record of them (a stream of zeros would never end);
 * else what is there, worded as for files.
 */
async function checkStreamEnd(src: StreamSource, offset: number): Promise<void> {
  // readEntryHeader has read (and found zero) the marker's first block.
  let pos = src.position;
  const limit = archiveEndLimit(offset);
  const block = Buffer.alloc(BLOCK);
  for (;;) {
    let got = 0;
    while (got < BLOCK) {
      const { bytesRead } = await src.read(block, got, BLOCK - got, pos + got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    if (got === 0) break;
    const i = block.subarray(0, got).findIndex((b) => b !== 0);
    if (i !== -1) {
      const at = pos + i;
      const hex = [...block.subarray(i, Math.min(got, i + 16))].map((b) => b.toString(16).padStart(2, '0')).join(' ');
      const what = got === BLOCK && checksumOk(block) ? `a tar header for entry "${printable(headerName(block))}"` : `non-zero bytes (${hex}${i + 16 < got || got === BLOCK ? ' …' : ''})`;
      if (at < offset + 2 * BLOCK) throw new BundleError(`the end-of-archive marker at byte ${offset} is not two zero blocks: ${what} at byte ${at}`);
      throw new BundleError(`trailing data after the end-of-archive marker at byte ${offset}: ${what} at byte ${at}; only zero bytes may follow the marker`);
    }
    pos += got;
    if (pos > limit) throw tooMuchPadding('standard input', offset);
    if (got < BLOCK) break;
  }
  if (pos < offset + 2 * BLOCK) throw new BundleError('the bundle is truncated: the end-of-archive marker is missing');
}
