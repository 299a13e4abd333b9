// Reading a bundle that came across the trust boundary. Nothing in it is
// believed until bundle.json's signature checks out against the public key;
// then every entry must be exactly the next one bundle.json names, with that
// size and digest. Anything else fails the whole bundle. Every name that
// comes from the bundle goes through printable() before it is in a message.
import type { KeyObject } from 'node:crypto';
import { createHash, hash } from 'node:crypto';
import { landingPathCollisions, landingPathProblem } from '../manifest/paths.js';
import { parseReference } from '../oci/reference.js';
import { fingerprint, verifyBytes } from '../sign/keys.js';
import { READ_BOUNDS } from '../fsx/safe.js';
import { parseUntrustedJson } from '../util/json.js';
import { printable } from '../util/printable.js';
import { parseTime } from './trivydb.js';
import {
  BLOBS_PREFIX,
  BUNDLE_JSON,
  BUNDLE_SCHEMA_VERSION,
  BUNDLE_SIG,
  FILES_PREFIX,
  INDEX_JSON,
  OCI_LAYOUT_FILE,
  ATTACHED_KINDS,
  compareAttached,
  imageRepository,
  isTagSchemeTagOf,
  type BundleAttached,
  type BundleIndex,
} from './format.js';
import { isIndexType, isManifestType } from '../oci/mediatypes.js';
import { BundleError, checkEnd, readEntryHeader, readExactly, type ReadSource } from './tarread.js';
import { openSource, type Part, type PositionedSource } from './source.js';
import { PartMismatchError } from './parts.js';
import { checkPolicyRecord, checkSignatures } from './verdicts.js';
import { readRanges, warmBuffers, type PositionedRead } from './readahead.js';
import { HeaderReadAhead } from './headerahead.js';
import { BLOCK } from './tar.js';
import { defaultJobs, HashFailure, HashPool, THREADS_MIN_BYTES, type Segment } from './hashpool.js';

export { BundleError };

/** bundle.json is read before its signature is checked, and unsigned by inspect, diff and --base: bounded (READ_BOUNDS says why so). */
export const MAX_BUNDLE_JSON = READ_BOUNDS.bundleJson.max;
export const MAX_SIG = 4096;
const CHUNK = 1024 * 1024;

export interface PlannedEntry {
  readonly name: string;
  readonly kind: 'oci-layout' | 'index.json' | 'blob' | 'file';
  /** Hex sha256 the entry must hash to. */
  readonly sha256: string;
  readonly size: number;
}

export interface LocatedEntry extends PlannedEntry {
  readonly dataOffset: number;
}

export interface OpenOptions {
  /** Public key to check the signature with; without one the bundle is read unverified (inspect). */
  readonly pub?: KeyObject;
  /**
   * Threads that hash entries (--jobs); 1 hashes on this thread alone. Given,
   * they are used for any bundle; by default (defaultJobs()) only when there is
   * THREADS_MIN_BYTES to hash.
   */
  readonly jobs?: number;
  /** Hashing threads started already (startEarly, for --jobs): the reader uses and closes them. */
  readonly pool?: HashPool;
}

/** Serve hashes a smaller entry on its own thread: a message to a thread and back costs more than hashing it. */
const THREAD_MIN_ENTRY = 1024 * 1024;
/** Entries handed to the threads ahead of their work: small entries do not wait for a message each, and the pass stays close behind. */
const IN_FLIGHT_PER_THREAD = 4;
const EMPTY = Buffer.alloc(0);

export interface Head {
  readonly index: BundleIndex;
  /** The exact bytes that were signed. */
  readonly bundleJson: Buffer;
  readonly signed: boolean;
  readonly verified: boolean;
  /** Offset of the first entry after the signature. */
  readonly next: number;
}

/**
 * bundle.json and its signature, the first two entries: the signature is
 * checked (with `pub`) before a byte of bundle.json is parsed. Shared by the
 * file reader and the stream reader (`verify -`).
 */
export async function readHead(src: ReadSource, what: string, pub: KeyObject | undefined): Promise<Head> {
  const first = await readEntryHeader(src, 0);
  if (!first || first.name !== BUNDLE_JSON) {
    throw new BundleError(`${what} is not an airlock bundle: the first entry is ${first ? `"${printable(first.name)}"` : 'missing'}, not bundle.json`);
  }
  if (first.size > MAX_BUNDLE_JSON) throw new BundleError(`bundle.json is ${first.size} bytes, more than ${MAX_BUNDLE_JSON}; refusing it`);
  const bundleJson = await readExactly(src, first.size, first.dataOffset, 'bundle.json');
  const second = await readEntryHeader(src, first.nextOffset);
  let signed = false;
  let verified = false;
  let next = first.nextOffset;
  if (second?.name === BUNDLE_SIG) {
    if (second.size > MAX_SIG) throw new BundleError(`bundle.json.sig is ${second.size} bytes; a signature is under ${MAX_SIG}`);
    signed = true;
    const sig = (await readExactly(src, second.size, second.dataOffset, 'bundle.json.sig')).toString('utf8');
    if (pub) {
      verified = verifyBytes(bundleJson, sig, pub);
      if (!verified) {
        throw new BundleError(`the signature of bundle.json does not verify with the public key (${fingerprint(pub)}); the bundle was changed or signed with another key: do not use it`);
      }
    }
    next = second.nextOffset;
  } else if (pub) {
    throw new BundleError('the bundle is not signed (no bundle.json.sig after bundle.json); refusing it');
  }
  return { index: parseIndex(bundleJson), bundleJson, signed, verified, next };
}

export class BundleReader {
  private located = new Map<string, LocatedEntry>();
  private pool: HashPool | undefined;
  /** Entries handed to threads so far (for tests and the bench). */
  threadJobs = 0;

  private constructor(
    readonly path: string,
    private readonly fh: PositionedSource,
    readonly index: BundleIndex,
    readonly bundleJson: Buffer,
    /** True when a signature entry is present; `verified` says whether it checked out. */
    readonly signed: boolean,
    readonly verified: boolean,
    /** Offset of the entry after bundle.json.sig (or after bundle.json when unsigned). */
    private readonly firstEntryOffset: number,
    private readonly jobs: number,
    /** Bytes to hash below which the threads are not started. */
    private readonly threadsMinBytes: number,
  ) {}

  static async open(file: string, opts: OpenOptions = {}): Promise<BundleReader> {
    try {
      const fh = await openSource(file);
      try {
        return await BundleReader.read(file, fh, opts);
      } catch (err) {
        await fh.close();
        throw err;
      }
    } catch (err) {
      await opts.pool?.close();
      throw err;
    }
  }

  private static async read(file: string, fh: PositionedSource, opts: OpenOptions): Promise<BundleReader> {
    const h = await readHead(fh, printable(file), opts.pub).catch((err: unknown) => blame(fh, err));
    const r = new BundleReader(file, fh, h.index, h.bundleJson, h.signed, h.verified, h.next, opts.jobs ?? defaultJobs(), opts.jobs === undefined ? THREADS_MIN_BYTES : 0);
    r.pool = opts.pool;
    return r;
  }

  /** The entries bundle.json promises after the signature, in order. */
  plan(): PlannedEntry[] {
    return planEntries(this.index);
  }

  /**
   * Checks the whole tar: the headers first (each entry the next planned one,
   * regular, of that size, nothing after the end), then every entry hashed
   * against bundle.json, in one pass front to back that also checks each part
   * of a split bundle against BUNDLE.sha256. Records where each entry's data starts.
   */
  async verify(onBytes?: (n: number) => void): Promise<void> {
    const plan = this.plan();
    if (!this.threadsFor(plan)) {
      const warm = warmBuffers(plan.reduce((n, e) => n + e.size, 0));
      await this.scan();
      await warm.ready;
      return this.pass(plan, onBytes, warm.buffers);
    }
    // The threads start while the headers are read.
    this.threads().warm();
    if (this.fh.parts.length > 1) {
      await this.scan();
      return this.pass(plan, onBytes);
    }
    await this.hashBehindScan(onBytes);
  }

  /**
   * verify() of a whole bundle on threads: each entry is handed to them as soon
   * as the walk over the headers has checked its own, so the hashing starts
   * before the walk ends (on 2 cores the walk of 500 entries took 40–90 ms while
   * the threads started). The walk's verdict comes first all the same: a
   * malformed archive is refused as such, whatever the threads found; then the
   * first entry in plan order that does not match is named.
   */
  private async hashBehindScan(onBytes?: (n: number) => void): Promise<void> {
    const pool = this.threads();
    const results: Array<Promise<unknown>> = [];
    await this.scan((e) => {
      const segments = this.fh.segments(e.dataOffset, e.size);
      this.threadJobs++;
      results.push(
        pool.hash(segments, onBytes).then(
          (actual) => (actual === e.sha256 ? undefined : corrupt(e, actual)),
          (err: unknown) => threadError(e, segments, err),
        ),
      );
    });
    for (const result of results) {
      const err = await result;
      if (err !== undefined) throw err;
    }
  }

  /**
   * The entries verifyExcept(streamed) hashes: all but `streamed`, whose readers
   * hash them as they go (unpack's uploads).
   */
  toVerify(streamed: ReadonlySet<string>): PlannedEntry[] {
    return this.plan().filter((e) => !streamed.has(e.name));
  }

  /**
   * Verifies toVerify(streamed), after scan(). A split bundle with BUNDLE.sha256
   * is read whole all the same, front to back, for its part lines: the bytes of
   * `streamed` go into the part hashes only, whoever else reads them meanwhile.
   */
  async verifyExcept(streamed: ReadonlySet<string>, onBytes?: (n: number) => void): Promise<void> {
    if (this.fh.checksParts()) return this.pass(this.toVerify(streamed), onBytes);
    await this.hashAll(this.toVerify(streamed).map((e) => this.entry(e.name)), undefined, onBytes);
  }

  /** One pass front to back (after scan) hashing `entries`, in plan order; the bytes between them go to the part checks. */
  private async pass(entries: readonly PlannedEntry[], onBytes?: (n: number) => void, buffers?: readonly Buffer[]): Promise<void> {
    const located = entries.map((e) => this.entry(e.name));
    const pass = this.fh.beginPass();
    try {
      await this.hashAll(located, pass, onBytes, buffers);
      await this.fh.endPass();
    } finally {
      // A failure ends the pass too, without reading on to the end.
      this.fh.stopPass();
    }
  }

  /** Hashes `entries` (in plan order): on threads when --jobs allows and there is enough to hash, else here. */
  private hashAll(entries: readonly LocatedEntry[], pass: PositionedRead | undefined, onBytes?: (n: number) => void, buffers?: readonly Buffer[]): Promise<void> {
    return this.threadsFor(entries) ? this.hashOnThreads(entries, pass, onBytes) : this.hashHere(entries, pass, onBytes, buffers);
  }

  /** Whether `entries` go to threads: more than one job, and (by default) enough bytes to pay for starting them. */
  private threadsFor(entries: readonly PlannedEntry[]): boolean {
    return this.jobs > 1 && entries.length > 0 && entries.reduce((n, e) => n + e.size, 0) >= this.threadsMinBytes;
  }

  /**
   * Hashes `entries` on this thread, read through `pass` (the verifying pass)
   * or the file: one stream of reads across all of them, several in flight
   * (readRanges), so that the hash never waits for the disk while bytes remain.
   */
  private async hashHere(entries: readonly LocatedEntry[], pass: PositionedRead | undefined, onBytes?: (n: number) => void, buffers?: readonly Buffer[]): Promise<void> {
    let done = 0;
    /** Bytes of entries[done] hashed so far. */
    let got = 0;
    let h = createHash('sha256');
    /** Ends entries[done]: a promise (that rejects) only when it does not match, so that a run of small entries costs no await each. */
    const finish = (): Promise<void> | undefined => {
      const e = entries[done] as LocatedEntry;
      const actual = h.digest('hex');
      done++;
      got = 0;
      h = createHash('sha256');
      return actual === e.sha256 ? undefined : this.check(e, actual, pass !== undefined);
    };
    const ranges = entries.map((e) => ({ at: e.dataOffset, size: e.size }));
    try {
      for await (const [k, chunk] of readRanges(pass ?? this.fh, ranges, (k) => truncated(entries[k] as LocatedEntry), buffers)) {
        while (done < k) {
          const bad = finish();
          if (bad) await bad;
        }
        const e = entries[k] as LocatedEntry;
        if (got === 0 && chunk.length === e.size) {
          // A whole entry in one chunk (a run of small entries): one call, no Hash object.
          onBytes?.(chunk.length);
          done++;
          const actual = hash('sha256', chunk, 'hex');
          if (actual !== e.sha256) await this.check(e, actual, pass !== undefined);
          continue;
        }
        h.update(chunk);
        got += chunk.length;
        onBytes?.(chunk.length);
      }
    } catch (err) {
      if (!(err instanceof PartMismatchError)) throw err;
      // A damaged part: the entries in it not hashed yet, read outside the pass, say whether the damage is in one of them.
      for (; done < entries.length && (entries[done] as LocatedEntry).dataOffset < err.end; done++, got = 0, h = createHash('sha256')) {
        const e = entries[done] as LocatedEntry;
        for await (const [, chunk] of readRanges(this.fh, [{ at: e.dataOffset + got, size: e.size - got }], () => err)) h.update(chunk);
        const actual = h.digest('hex');
        if (actual === e.sha256) continue;
        const c = corrupt(e, actual);
        c.message = `${c.message}; ${err.message}`;
        throw c;
      }
      throw err;
    }
    while (done < entries.length) {
      const bad = finish();
      if (bad) await bad;
    }
  }

  /**
   * Hashes `entries` on threads that read the bundle themselves (./hashpool.ts);
   * this thread hands them out in plan order (up to IN_FLIGHT_PER_THREAD ahead
   * per thread) and hashes none: with --jobs N there are N threads, one per
   * core, and this one is free for the order checks, the messages and, in a
   * split bundle, the part hashes. (It hashed entries too until the threads
   * read with blocking reads: two threads then beat this one and one thread.)
   * In a pass that checks parts, this thread moves the pass to the end of each
   * entry once it is handed out: when a part turns out damaged, every entry in
   * it has been handed out, so a damaged entry is still named, with its part.
   * Of the failures, the first in plan order is reported (the entries before it
   * are waited for).
   */
  private async hashOnThreads(entries: readonly LocatedEntry[], pass: PositionedRead | undefined, onBytes?: (n: number) => void): Promise<void> {
    const pool = this.threads();
    const failed: Array<{ k: number; err: unknown }> = [];
    let partFailure: unknown;
    /** Each entry's job by its index. */
    const jobs: Array<Promise<void>> = [];
    const running = new Set<Promise<void>>();
    let next = 0;
    const stopped = () => failed.length > 0 || partFailure !== undefined;
    /** Moves the pass (part hashes, or the part count) to the end of entry `k`: a read of no bytes there. */
    const movePass = async (k: number) => {
      if (pass === undefined || this.fh.parts.length < 2) return;
      const e = entries[k] as LocatedEntry;
      await pass.read(EMPTY, 0, 0, e.dataOffset + e.size).catch((err: unknown) => {
        partFailure ??= err;
      });
    };
    while (!stopped() && next < entries.length) {
      if (running.size >= pool.size * IN_FLIGHT_PER_THREAD) {
        await Promise.race(running);
        continue;
      }
      const k = next++;
      const e = entries[k] as LocatedEntry;
      const segments = this.fh.segments(e.dataOffset, e.size);
      const job: Promise<void> = pool.hash(segments, onBytes).then(
        (actual) => {
          if (actual !== e.sha256) failed.push({ k, err: corrupt(e, actual) });
        },
        (err: unknown) => {
          failed.push({ k, err: threadError(e, segments, err) });
        },
      );
      const tracked: Promise<void> = job.finally(() => running.delete(tracked));
      running.add(tracked);
      jobs[k] = tracked;
      this.threadJobs++;
      await movePass(k);
    }
    if (failed.length === 0) await Promise.all(running);
    // After a failure only the entries before it are waited for (one of them may be damaged too); the rest end with the reader.
    for (let k = Math.min(...failed.map((f) => f.k)); k > 0 && failed.length > 0; ) {
      await Promise.all(jobs.slice(0, k));
      const earliest = Math.min(...failed.map((f) => f.k));
      if (earliest === k) break;
      k = earliest;
    }
    const first = failed.sort((a, b) => a.k - b.k)[0];
    if (first) {
      const e = entries[first.k] as LocatedEntry;
      if (pass && first.err instanceof CorruptEntryError) await blame(this.fh, first.err, e.dataOffset, e.dataOffset + e.size);
      throw first.err;
    }
    if (partFailure !== undefined) throw partFailure;
  }

  /** Throws when `actual` is not `e`'s digest; in the pass, naming a damaged part of a split bundle too. */
  private async check(e: LocatedEntry, actual: string, inPass: boolean): Promise<void> {
    if (actual === e.sha256) return;
    const err = corrupt(e, actual);
    // In the pass, the parts before this one were checked already: at most one part is hashed to say which is damaged.
    // Outside it (serve), that could be every part a large layer spans, while the client waits.
    if (inPass) await blame(this.fh, err, e.dataOffset, e.dataOffset + e.size);
    throw err;
  }

  /** The threads of this reader, started as they are first needed, closed with it. */
  private threads(): HashPool {
    this.pool ??= new HashPool(this.jobs);
    return this.pool;
  }

  /**
   * Walks the headers only (no data read): each entry must be the next planned
   * one with that size, regular, and nothing may follow. For serving, where each
   * entry is then hashed once before its first byte goes out (verifyEntry).
   */
  async scan(onLocated?: (e: LocatedEntry) => void): Promise<void> {
    const plan = this.plan();
    const headers = new HeaderReadAhead(this.fh, plan.map((e) => e.size));
    // A damaged header is blamed on the part holding it, not on the one a read ahead last touched.
    await this.walk(plan, headers, onLocated).catch((err: unknown) => blame(this.fh, err, headers.lastPosition()));
  }

  private async walk(plan: readonly PlannedEntry[], headers: HeaderReadAhead, onLocated?: (e: LocatedEntry) => void): Promise<void> {
    let offset = this.firstEntryOffset;
    const located = new Map<string, LocatedEntry>();
    let overhead = BLOCK;
    for (const [i, want] of plan.entries()) {
      headers.expect(i, offset, overhead);
      const got = await readEntryHeader(headers, offset);
      if (!got) throw new BundleError(`entry "${printable(want.name)}" is missing: the archive ends before it`);
      if (got.name !== want.name) {
        const known = located.has(got.name) ? 'a duplicate of an earlier entry' : plan.some((p) => p.name === got.name) ? 'out of order' : 'not named in bundle.json';
        throw new BundleError(`entry "${printable(got.name)}" is ${known}; expected "${printable(want.name)}" here`);
      }
      if (got.size !== want.size) throw new BundleError(`entry "${printable(want.name)}" is ${got.size} bytes; bundle.json says ${want.size}`);
      const e = { ...want, dataOffset: got.dataOffset };
      located.set(want.name, e);
      onLocated?.(e);
      overhead = got.dataOffset - offset;
      offset = got.nextOffset;
    }
    headers.expect(plan.length, offset, overhead);
    const tail = await readEntryHeader(headers, offset);
    if (tail) throw new BundleError(`entry "${printable(tail.name)}" is not named in bundle.json; refusing the bundle`);
    this.fh.checkArchiveEnd(offset + 1024);
    await checkEnd(headers, offset);
    this.located = located;
  }

  /** Hashes one located entry whole (serve, before its first byte goes out); throws when it does not match bundle.json. */
  async verifyEntry(name: string, onBytes?: (n: number) => void): Promise<void> {
    const e = this.entry(name);
    if (this.jobs < 2 || e.size < THREAD_MIN_ENTRY) return this.hashHere([e], undefined, onBytes);
    const segments = this.fh.segments(e.dataOffset, e.size);
    this.threadJobs++;
    const actual = await this.threads()
      .hash(segments, onBytes)
      .catch((err: unknown) => Promise.reject(threadError(e, segments, err)));
    await this.check(e, actual, false);
  }

  /** A small entry's bytes (manifests, index.json), hashed against bundle.json as they are read. */
  async readEntry(name: string, maxBytes = 16 * 1024 * 1024): Promise<Buffer> {
    const e = this.entry(name);
    if (e.size > maxBytes) throw new BundleError(`entry "${printable(name)}" is ${e.size} bytes; too large to read whole`);
    const data = await readExactly(this.fh, e.size, e.dataOffset, printable(name));
    const actual = createHash('sha256').update(data).digest('hex');
    if (actual !== e.sha256) throw corrupt(e, actual);
    return data;
  }

  /**
   * Bytes [start, end) of a verified entry, not re-hashed: for uploads the registry (and the uploader) check by digest.
   * With `reuse`, every chunk is a view of that one buffer (serve: little memory per slow client): done with each before the next.
   */
  range(name: string, start: number, end: number, reuse?: Buffer): AsyncGenerator<Buffer> {
    const e = this.entry(name);
    if (start < 0 || end > e.size || start > end) throw new BundleError(`entry "${printable(name)}": bad range ${start}-${end}`);
    return this.chunks(e, start, end, reuse);
  }

  /** The open bundle file's (or parts') state (fstat of the handles every read uses), to tell whether it changed. */
  stamp(): Promise<string> {
    return this.fh.stamp();
  }

  /** The file, or the parts of a split bundle in order, with their sizes. */
  get parts(): readonly Part[] {
    return this.fh.parts;
  }

  /** Tells `fn` each time reading moves on to another part of a split bundle. */
  onPart(fn: ((part: Part, index: number) => void) | undefined): void {
    if (fn) this.fh.onPart = fn;
    else delete this.fh.onPart;
  }

  /** Positioned reads of an entry's data; with `reuse`, every chunk is a view of that one buffer. */
  private async *chunks(e: LocatedEntry, start: number, end: number, reuse?: Buffer): AsyncGenerator<Buffer> {
    for (let pos = start; pos < end; ) {
      const buf = reuse ?? Buffer.allocUnsafe(Math.min(CHUNK, end - pos));
      const { bytesRead } = await this.fh.read(buf, 0, Math.min(buf.length, end - pos), e.dataOffset + pos);
      if (bytesRead === 0) throw new BundleError(`entry "${printable(e.name)}" is truncated on disk`);
      pos += bytesRead;
      yield buf.subarray(0, bytesRead);
    }
  }

  /** Whether the tar holds this entry (after scan). */
  has(name: string): boolean {
    return this.located.has(name);
  }

  entry(name: string): LocatedEntry {
    const e = this.located.get(name);
    if (!e) throw new BundleError(`entry "${printable(name)}" is not in the bundle (or the bundle was not read yet)`);
    return e;
  }

  async close(): Promise<void> {
    await this.pool?.close();
    await this.fh.close();
  }
}

/** An entry that does not hash to bundle.json's digest. */
class CorruptEntryError extends BundleError {}

function corrupt(e: PlannedEntry, actual: string): CorruptEntryError {
  return new CorruptEntryError(`entry "${printable(e.name)}" is corrupt: its sha256 is ${actual}, bundle.json says ${e.sha256}`);
}

function truncated(e: PlannedEntry): BundleError {
  return new BundleError(`entry "${printable(e.name)}" is truncated on disk`);
}

/** A thread's failure to read `e` (from `segments`), in the words this thread would use. */
function threadError(e: PlannedEntry, segments: readonly Segment[], err: unknown): unknown {
  if (!(err instanceof HashFailure)) return err;
  const seg = segments[err.segment];
  const file = seg?.part !== undefined ? `part ${printable(seg.part)}` : 'the bundle';
  switch (err.kind) {
    case 'truncated':
      return truncated(e);
    case 'changed':
      return new BundleError(`${file} changed on disk since ${seg?.part !== undefined ? 'the bundle' : 'it'} was opened (another file, or written to); start again`);
    case 'open':
      return new BundleError(`cannot open ${seg?.part !== undefined ? `part ${printable(seg.path)}` : 'the bundle'}: ${err.code ?? 'unknown error'}`);
    case 'io':
      return new BundleError(`cannot read entry "${printable(e.name)}" from ${file}: ${err.code ?? 'unknown error'}`);
  }
}

/**
 * Rethrows `err`, adding which parts of a split bundle around the failure do
 * not match BUNDLE.sha256 (bytes [from, to), else the part of the last read):
 * the part to copy again. A part already named is not hashed again.
 */
async function blame(fh: PositionedSource, err: unknown, from?: number, to?: number): Promise<never> {
  if (!(err instanceof BundleError) || err instanceof PartMismatchError) throw err;
  const at = from ?? fh.lastPosition();
  const parts = await fh.damagedParts(at, to ?? at + 1).catch(() => undefined);
  if (parts) err.message = `${err.message}; ${parts}`;
  throw err;
}

/** The entries bundle.json promises after the signature, in order. */
export function planEntries(i: BundleIndex): PlannedEntry[] {
  return [
    { name: OCI_LAYOUT_FILE, kind: 'oci-layout', sha256: i.layout['oci-layout'].sha256, size: i.layout['oci-layout'].size },
    { name: INDEX_JSON, kind: 'index.json', sha256: i.layout['index.json'].sha256, size: i.layout['index.json'].size },
    ...i.blobs.filter((b) => !b.external).map((b): PlannedEntry => ({ name: BLOBS_PREFIX + b.digest.slice(7), kind: 'blob', sha256: b.digest.slice(7), size: b.size })),
    ...i.files.filter((f) => !f.external).map((f): PlannedEntry => ({ name: FILES_PREFIX + f.path, kind: 'file', sha256: f.sha256, size: f.size })),
  ];
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;
const HEX = /^[a-f0-9]{64}$/;
/** A registry repository name (OCI distribution spec), bounded. */
const REPOSITORY = /^(?=.{1,255}$)[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/** bundle.json is hostile input too: check its shape before anything uses it. */
export function parseIndex(bytes: Buffer): BundleIndex {
  if (bytes.length > MAX_BUNDLE_JSON) throw new BundleError(`bundle.json is ${bytes.length} bytes, more than ${MAX_BUNDLE_JSON}; refusing it`);
  const v = parseUntrustedJson(bytes, (problem) => new BundleError(`bundle.json ${problem}`));
  // Everything named here comes from bundle.json, which may not even be signed (inspect).
  const bad = (what: string): never => {
    throw new BundleError(`bundle.json: ${printable(what)}`);
  };
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  const size = (x: unknown, what: string) => (Number.isSafeInteger(x) && (x as number) >= 0 ? (x as number) : bad(`${what} is not a size`));
  if (!isObj(v)) return bad('not an object');
  if (v.schemaVersion !== BUNDLE_SCHEMA_VERSION) bad(`schemaVersion ${String(v.schemaVersion)} is not ${BUNDLE_SCHEMA_VERSION}; use a matching airlock`);
  for (const k of ['name', 'version', 'created', 'tool'] as const) if (typeof v[k] !== 'string') bad(`${k} is not a string`);
  if (!Array.isArray(v.images) || !Array.isArray(v.files) || !Array.isArray(v.blobs) || !isObj(v.layout)) bad('images, files, blobs or layout missing');
  let bases = 0;
  if (v.bases !== undefined) {
    if (!Array.isArray(v.bases)) bad('bases is not a list');
    for (const [n, x] of (v.bases as unknown[]).entries()) {
      if (!isObj(x)) return bad(`base ${n} is not an object`);
      for (const k of Object.keys(x)) if (!['kind', 'name', 'version', 'sha256'].includes(k)) bad(`base ${n} has an unknown field ${JSON.stringify(k)}`);
      if (x.kind !== 'bundle' && x.kind !== 'receipt') bad(`base ${n} has an unknown kind`);
      if (typeof x.name !== 'string' || typeof x.version !== 'string') bad(`base ${n} has no name or version`);
      if (typeof x.sha256 !== 'string' || !HEX.test(x.sha256)) bad(`base ${n} has no sha256`);
    }
    bases = (v.bases as unknown[]).length;
  }
  /** `external` is absent or true; an external entry needs a base to come from. */
  const external = (x: Record<string, unknown>, what: string): boolean => {
    if (x.external === undefined) return false;
    if (x.external !== true) bad(`${what}: external is not true`);
    if (bases === 0) bad(`${what} is external but bundle.json lists no bases`);
    return true;
  };
  const blobs = new Set<string>();
  for (const b of v.blobs as unknown[]) {
    if (!isObj(b) || typeof b.digest !== 'string' || !DIGEST.test(b.digest)) bad(`blob ${JSON.stringify(b)} has no sha256 digest`);
    const bb = b as { digest: string; size: unknown } & Record<string, unknown>;
    size(bb.size, `blob ${bb.digest} size`);
    if (blobs.has(bb.digest)) bad(`blob ${bb.digest} is listed twice`);
    blobs.add(bb.digest);
    const ext = external(bb, `blob ${bb.digest}`);
    if (bb.from !== undefined) {
      if (!ext) bad(`blob ${bb.digest} has "from" but is not external`);
      const f = bb.from;
      if (!isObj(f)) return bad(`blob ${bb.digest}: from is not an object`);
      for (const k of Object.keys(f)) if (!['base', 'repository', 'image'].includes(k)) bad(`blob ${bb.digest}: from has an unknown field ${JSON.stringify(k)}`);
      if (!Number.isSafeInteger(f.base) || (f.base as number) < 0 || (f.base as number) >= bases) bad(`blob ${bb.digest}: from.base is not one of the ${bases} bases`);
      if (f.repository !== undefined && (typeof f.repository !== 'string' || !REPOSITORY.test(f.repository))) bad(`blob ${bb.digest}: from.repository is not a repository name`);
      if (f.image !== undefined) {
        if (typeof f.image !== 'string') bad(`blob ${bb.digest}: from.image is not a reference`);
        try {
          parseReference(f.image as string);
        } catch (err) {
          bad(`blob ${bb.digest}: from.image: ${(err as Error).message}`);
        }
      }
    }
  }
  const paths = new Set<string>();
  for (const f of v.files as unknown[]) {
    if (!isObj(f) || typeof f.path !== 'string') bad('a file has no path');
    const ff = f as Record<string, unknown>;
    const problem = landingPathProblem(ff.path as string);
    if (problem) bad(`file path "${String(ff.path)}" ${problem}`);
    if (paths.has(ff.path as string)) bad(`file ${String(ff.path)} is listed twice`);
    paths.add(ff.path as string);
    if (typeof ff.sha256 !== 'string' || !HEX.test(ff.sha256)) bad(`file ${String(ff.path)} has no sha256`);
    size(ff.size, `file ${String(ff.path)} size`);
    if (!['opensearch-plugin', 'falco-driver', 'kubespray', 'file'].includes(ff.role as string)) bad(`file ${String(ff.path)} has an unknown role`);
    external(ff, `file ${String(ff.path)}`);
  }
  refuseLandingCollisions([...paths], bad);
  const refs = new Set<string>();
  /** Each image's normalized repository: what an attached entry must name. */
  const repositories = new Set<string>();
  for (const i of v.images as unknown[]) {
    if (!isObj(i) || typeof i.ref !== 'string') bad('an image has no ref');
    const ii = i as Record<string, unknown>;
    try {
      parseReference(ii.ref as string);
    } catch (err) {
      bad(`image ref: ${(err as Error).message}`);
    }
    if (refs.has(ii.ref as string)) bad(`image ${String(ii.ref)} is listed twice`);
    refs.add(ii.ref as string);
    repositories.add(imageRepository(ii.ref as string));
    if (typeof ii.digest !== 'string' || !blobs.has(ii.digest)) bad(`image ${String(ii.ref)}: its digest is not one of the blobs`);
    if (typeof ii.mediaType !== 'string') bad(`image ${String(ii.ref)} has no mediaType`);
    if (ii.kind !== 'image' && ii.kind !== 'artifact') bad(`image ${String(ii.ref)} has an unknown kind`);
    if (ii.role !== undefined && !['trivy-db', 'trivy-java-db', 'falco-rules', 'falco-plugin'].includes(ii.role as string)) bad(`image ${String(ii.ref)} has an unknown role`);
    if (!Array.isArray(ii.platforms)) bad(`image ${String(ii.ref)} has no platforms list`);
    if (ii.trivyDb !== undefined) checkTrivyDb(ii.trivyDb, `image ${String(ii.ref)}: trivyDb`, bad);
  }
  if (v.attached !== undefined) checkAttached(v.attached, blobs, repositories, upstreamIndexes(v.images as Array<{ ref: string; upstreamDigest?: unknown }>), bad);
  const layout = v.layout as Record<string, unknown>;
  for (const k of ['oci-layout', 'index.json']) {
    const e = layout[k];
    if (!isObj(e) || typeof e.sha256 !== 'string' || !HEX.test(e.sha256)) bad(`layout ${k} has no sha256`);
    size((e as Record<string, unknown>).size, `layout ${k} size`);
  }
  if (!isObj(v.signer) || typeof v.signer.fingerprint !== 'string') bad('signer is missing');
  if (v.policy !== undefined) {
    const inTar = new Map((v.blobs as Array<{ digest: string; size: number; external?: true }>).filter((b) => !b.external).map((b) => [b.digest, b.size]));
    checkPolicyRecord(v.policy, inTar, bad);
  }
  if (v.signatures !== undefined) checkSignatures(v.signatures, v.images as Array<{ ref: string; digest: string }>, bad);
  if (v.kubespray !== undefined) checkKubespray(v.kubespray, bad);
  return v as unknown as BundleIndex;
}

/** `kubespray: {version, kubeVersion?, archs, bases?, urls?}`: short printable names and landing paths only (inspect and emit write them out). */
function checkKubespray(k: unknown, bad: (m: string) => never): void {
  const word = (x: unknown) => typeof x === 'string' && /^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$/.test(x);
  const isMapOf = (x: unknown, what: string) => {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) bad(`kubespray.${what} is not an object`);
    const entries = Object.entries(x as Record<string, unknown>);
    if (entries.length > 64) bad(`kubespray.${what} has too many entries`);
    for (const [name, p] of entries) {
      if (!/^[a-z_][a-z0-9_]{0,127}$/.test(name)) bad(`kubespray.${what} names ${JSON.stringify(name)}, not a variable`);
      const problem = typeof p === 'string' ? landingPathProblem(p) : 'is not a string';
      if (problem) bad(`kubespray.${what}.${name} ${problem}`);
    }
  };
  if (typeof k !== 'object' || k === null || Array.isArray(k)) bad('kubespray is not an object');
  const kk = k as Record<string, unknown>;
  for (const key of Object.keys(kk)) if (!['version', 'kubeVersion', 'archs', 'bases', 'urls'].includes(key)) bad(`kubespray has an unknown field ${JSON.stringify(key)}`);
  if (!word(kk.version)) bad('kubespray.version is not a release name');
  if (kk.kubeVersion !== undefined && !word(kk.kubeVersion)) bad('kubespray.kubeVersion is not a version');
  if (!Array.isArray(kk.archs) || kk.archs.length === 0 || kk.archs.length > 16 || !kk.archs.every(word)) bad('kubespray.archs is not a list of architectures');
  if (kk.bases !== undefined) isMapOf(kk.bases, 'bases');
  if (kk.urls !== undefined) isMapOf(kk.urls, 'urls');
}

const ATTACHED_FIELDS = ['subject', 'repository', 'digest', 'mediaType', 'artifactType', 'kind', 'tag', 'size', 'upstream'];
/** Longer than any media type in use; a bound on what inspect prints. */
const MAX_MEDIA_TYPE = 255;

/**
 * attached[] (SPEC §9), as far as bundle.json alone can tell: each entry's
 * shape, its manifest and subject among the blobs, its repository one of an
 * image's, a tag only of cosign's scheme for that very subject, no entry (or
 * tag) twice, and build's order. That the subject is in that image's graph,
 * and that the manifest says so, is checked when the manifests are read
 * (bundle/attached.ts).
 */
function checkAttached(list: unknown, blobs: ReadonlySet<string>, repositories: ReadonlySet<string>, upstream: ReadonlySet<string>, bad: (what: string) => never): void {
  if (!Array.isArray(list)) return bad('attached is not a list');
  const seen = new Set<string>();
  const tags = new Set<string>();
  let previous: BundleAttached | undefined;
  for (const [n, x] of (list as unknown[]).entries()) {
    if (typeof x !== 'object' || x === null || Array.isArray(x)) return bad(`attached entry ${n} is not an object`);
    const a = x as Record<string, unknown>;
    const name = `attached entry ${n} (${typeof a.digest === 'string' ? a.digest.slice(0, 80) : 'no digest'}${typeof a.repository === 'string' ? ` in ${a.repository.slice(0, 300)}` : ''})`;
    for (const k of Object.keys(a)) if (!ATTACHED_FIELDS.includes(k)) bad(`${name} has an unknown field ${JSON.stringify(k).slice(0, 80)}`);
    if (typeof a.digest !== 'string' || !DIGEST.test(a.digest)) bad(`${name}: digest is not a sha256 digest`);
    if (!blobs.has(a.digest as string)) bad(`${name}: its manifest is not one of the blobs`);
    if (typeof a.subject !== 'string' || !DIGEST.test(a.subject)) bad(`${name}: subject is not a sha256 digest`);
    if (!blobs.has(a.subject as string)) bad(`${name}: its subject ${String(a.subject)} is not one of the blobs`);
    if (a.subject === a.digest) bad(`${name} is attached to itself`);
    if (typeof a.repository !== 'string') return bad(`${name}: repository is not a string`);
    let normal: string | undefined;
    try {
      normal = imageRepository(a.repository);
    } catch (err) {
      bad(`${name}: repository: ${(err as Error).message}`);
    }
    if (normal !== a.repository) bad(`${name}: repository is not a normalized HOST/PATH without tag or digest (that would be ${String(normal)})`);
    if (!repositories.has(a.repository)) bad(`${name}: no image in the bundle is from ${a.repository}`);
    if (typeof a.mediaType !== 'string' || !(isManifestType(a.mediaType) || isIndexType(a.mediaType))) bad(`${name}: mediaType is not an OCI or Docker manifest or index`);
    if (a.artifactType !== undefined && (typeof a.artifactType !== 'string' || a.artifactType === '' || a.artifactType.length > MAX_MEDIA_TYPE)) bad(`${name}: artifactType is not a media type`);
    if (!ATTACHED_KINDS.includes(a.kind as BundleAttached['kind'])) bad(`${name}: kind is not one of ${ATTACHED_KINDS.join(', ')}`);
    if (a.tag !== undefined) {
      if (typeof a.tag !== 'string' || !/^sha256-[a-f0-9]{64}\.(?:sig|att|sbom)$/.test(a.tag)) bad(`${name}: tag is not cosign's sha256-<hex>.sig, .att or .sbom`);
      if (!isTagSchemeTagOf(a.tag as string, a.subject as string)) bad(`${name}: tag ${String(a.tag)} is not the tag of its subject ${String(a.subject)}`);
      const tagKey = `${a.repository}:${String(a.tag)}`;
      if (tags.has(tagKey)) bad(`${name}: tag ${tagKey} is given to two entries`);
      tags.add(tagKey);
    }
    if (!Number.isSafeInteger(a.size) || (a.size as number) < 0) bad(`${name}: size is not a size`);
    if (a.upstream !== undefined) {
      if (a.upstream !== true || a.kind !== 'signature') bad(`${name}: upstream is only true, and only on a signature`);
      if (!upstream.has(`${a.repository}\0${String(a.subject)}`)) bad(`${name} is marked upstream, but its subject is no image's upstream index from ${a.repository}`);
    }
    const key = `${a.repository}\0${a.digest as string}`;
    if (seen.has(key)) bad(`${name} is listed twice`);
    seen.add(key);
    const entry = a as unknown as BundleAttached;
    if (previous && compareAttached(previous, entry) > 0) bad(`${name} is out of order (attached[] is sorted by repository, subject, tag, digest)`);
    previous = entry;
  }
}

/** `REPOSITORY\0DIGEST` of every image's upstream index (a platform filter rewrote it). */
function upstreamIndexes(images: ReadonlyArray<{ ref: string; upstreamDigest?: unknown }>): Set<string> {
  const out = new Set<string>();
  for (const i of images) if (typeof i.upstreamDigest === 'string') out.add(`${imageRepository(i.ref)}\0${i.upstreamDigest}`);
  return out;
}

/**
 * Files that would land on each other's names (`a` and its sidecar `a.sha256`)
 * or on one unpack and serve write themselves: airlock's build refuses them,
 * so such a bundle was made by something else, signed or not.
 */
function refuseLandingCollisions(paths: readonly string[], bad: (what: string) => never): void {
  const [c] = landingPathCollisions(paths);
  if (!c) return;
  const which = c.first !== undefined ? `files "${c.first}" and "${c.second}" cannot both land` : `file "${c.second}" cannot land`;
  bad(`${which}: ${c.message}; refusing the bundle`);
}

/** A Trivy DB's recorded dates: ISO times (UTC, as build writes them), a whole Version, a short problem; nothing else. */
function checkTrivyDb(v: unknown, what: string, bad: (what: string) => never): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return bad(`${what} is not an object`);
  const db = v as Record<string, unknown>;
  for (const k of Object.keys(db)) if (!['updatedAt', 'nextUpdate', 'version', 'problem'].includes(k)) bad(`${what} has an unknown field ${JSON.stringify(k)}`);
  for (const k of ['updatedAt', 'nextUpdate'] as const) {
    if (db[k] !== undefined && (typeof db[k] !== 'string' || !ISO_UTC.test(db[k]) || parseTime(db[k]) === undefined)) bad(`${what}.${k} is not a UTC time`);
  }
  if (db.version !== undefined && !(Number.isSafeInteger(db.version) && (db.version as number) >= 0)) bad(`${what}.version is not a whole number`);
  if (db.problem !== undefined && (typeof db.problem !== 'string' || db.problem.length > 500)) bad(`${what}.problem is not a short text`);
  if ((db.updatedAt === undefined) === (db.problem === undefined)) bad(`${what} needs exactly one of updatedAt and problem`);
}

const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
