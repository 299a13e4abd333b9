// Threads that hash entries of a bundle, so that verify uses every core. Each
// thread opens the bundle file (or part) itself and reads its own byte ranges:
// no entry byte passes through the main thread (an earlier attempt that
// copied chunks over to workers was slower than one thread). A file a thread
// opens must be the one the main thread checked when it opened the bundle
// (device, inode, size and times, as ./handles.ts checks a part opened again):
// a bundle replaced meanwhile is refused, not read. One entry is one job, read
// front to back by one thread: a single large entry stays one stream.
//
// The thread's code is a string compiled with `eval: true`, not a module file:
// the release files (scripts/release.ts) are one file each, with nothing beside
// them for a Worker to load. It uses Node's own modules only.
import { stat } from 'node:fs/promises';
import os from 'node:os';
import { Worker } from 'node:worker_threads';

/** Bytes of one file that are part of an entry. */
export interface Segment {
  /** The file to open: the bundle, or one part of a split bundle. */
  readonly path: string;
  /** The part's name for messages; undefined for a whole bundle. */
  readonly part: string | undefined;
  /** statStamp() of that file when the bundle was opened. */
  readonly stamp: string;
  readonly pos: number;
  readonly len: number;
}

/** Why a thread could not hash an entry: `segment` is the index of the file it was reading. */
export class HashFailure extends Error {
  constructor(
    readonly kind: 'open' | 'changed' | 'truncated' | 'io',
    readonly segment: number,
    readonly code: string | undefined,
  ) {
    super(`${kind}${code ? ` (${code})` : ''}`);
  }
}

/** The default for --jobs: one thread per core, at most 8 (beyond that the disk, not the hash, is the limit). */
export function defaultJobs(): number {
  return Math.max(1, Math.min(8, os.availableParallelism()));
}

/** By default, threads are started only for this much to hash: two take 50–90 ms to start on 2 cores (measured), 40–70 MB of hashing. */
export const THREADS_MIN_BYTES = 32 * 1024 * 1024;

/**
 * Threads for `airlock verify FILE`, started before the modules that read the
 * bundle are loaded: two take about 90 ms to start on 2 cores (measured), and
 * started at the top of the command they overlap that loading, the signature
 * check and the walk over the headers instead of following them. Only where
 * the reader would start them anyway (a --jobs given, or a file of at least
 * THREADS_MIN_BYTES); undefined otherwise. The caller hands them to
 * BundleReader.open, which closes them, or closes them itself.
 */
export async function startEarly(file: string, jobs: number | undefined): Promise<HashPool | undefined> {
  const n = jobs ?? defaultJobs();
  if (n < 2 || file === '-') return undefined;
  if (jobs === undefined) {
    const size = await stat(file).then(
      (s) => (s.isFile() ? s.size : 0),
      () => 0,
    );
    if (size < THREADS_MIN_BYTES) return undefined;
  }
  const pool = new HashPool(n);
  pool.warm();
  return pool;
}

/** Jobs given to one thread ahead of time, so that small entries do not wait for a message each. */
const QUEUED_PER_THREAD = 4;

interface Job {
  readonly id: number;
  readonly segments: readonly Segment[];
  readonly size: number;
  readonly onBytes: ((n: number) => void) | undefined;
  readonly resolve: (sha256: string) => void;
  readonly reject: (err: Error) => void;
}

interface Thread {
  readonly worker: Worker;
  readonly jobs: Map<number, Job>;
  /** Bytes of the jobs given to it and not done yet. */
  load: number;
}

type Reply = { id: number; n: number; sha256?: string; fail?: { kind: HashFailure['kind']; segment: number; code?: string } };

export class HashPool {
  private readonly threads: Thread[] = [];
  private readonly waiting: Job[] = [];
  private nextId = 0;
  private closed = false;

  /** `size` threads at most, started as jobs come. */
  constructor(readonly size: number) {}

  /** The hex sha256 of the bytes of `segments`, in order; rejects with a HashFailure when they cannot be read. */
  hash(segments: readonly Segment[], onBytes?: (n: number) => void): Promise<string> {
    if (this.closed) return Promise.reject(new Error('internal error: hashing after the pool was closed'));
    return new Promise<string>((resolve, reject) => {
      const size = segments.reduce((n, s) => n + s.len, 0);
      this.waiting.push({ id: this.nextId++, segments, size, onBytes, resolve, reject });
      this.dispatch();
    });
  }

  /** Starts every thread now (they take tens of milliseconds), so that they are ready when the first job comes. */
  warm(): void {
    while (!this.closed && this.threads.length < this.size) this.start();
  }

  /**
   * Ends every thread; jobs not done are rejected. The threads keep the process
   * alive until then (every reader is closed): unref'd while idle and ref'd again
   * for a job, a verify under load sometimes exited 0 halfway, its result never read.
   */
  async close(): Promise<void> {
    this.closed = true;
    const threads = this.threads.splice(0);
    for (const job of this.waiting.splice(0)) job.reject(new Error('internal error: the hashing threads were closed'));
    await Promise.all(threads.map((t) => t.worker.terminate()));
  }

  private dispatch(): void {
    while (this.waiting.length > 0) {
      const t = this.pick();
      if (!t) return;
      const job = this.waiting.shift() as Job;
      t.jobs.set(job.id, job);
      t.load += job.size;
      t.worker.postMessage({ id: job.id, segments: job.segments });
    }
  }

  /** The thread with the least left to hash, a new one while fewer than `size` run; undefined when all have enough queued. */
  private pick(): Thread | undefined {
    const idle = this.threads.find((t) => t.jobs.size === 0);
    if (idle) return idle;
    if (this.threads.length < this.size) return this.start();
    let best: Thread | undefined;
    for (const t of this.threads) if (t.jobs.size < QUEUED_PER_THREAD && (!best || t.load < best.load)) best = t;
    return best;
  }

  private start(): Thread {
    const worker = new Worker(THREAD_SOURCE, { eval: true });
    const t: Thread = { worker, jobs: new Map(), load: 0 };
    this.threads.push(t);
    worker.on('message', (m: Reply) => this.reply(t, m));
    const lost = (why: string) => {
      const i = this.threads.indexOf(t);
      if (i >= 0) this.threads.splice(i, 1);
      for (const job of t.jobs.values()) job.reject(new Error(`internal error: a hashing thread ${why}`));
      t.jobs.clear();
      this.dispatch();
    };
    worker.on('error', (err) => lost(`failed: ${err.message}`));
    worker.on('exit', (code) => lost(`exited (${code})`));
    return t;
  }

  private reply(t: Thread, m: Reply): void {
    const job = t.jobs.get(m.id);
    if (!job) return;
    if (m.n > 0) job.onBytes?.(m.n);
    if (m.sha256 === undefined && m.fail === undefined) return;
    t.jobs.delete(m.id);
    t.load -= job.size;
    if (m.fail) job.reject(new HashFailure(m.fail.kind, m.fail.segment, m.fail.code));
    else job.resolve(m.sha256 as string);
    this.dispatch();
  }
}

/**
 * The thread: jobs one after another, each segment read with blocking 1 MiB
 * reads into one buffer, each hashed at once. A thread that blocks harms no
 * one here (it has nothing else to do, and the others go on), and the read's
 * copy lands in this core's cache just before the hash reads it: measured
 * on 2 cores, 2 GiB warm, two threads took 0.94–0.98 s this way against
 * 1.08–1.11 s with four 1 MiB reads in flight through libuv's pool, whose
 * threads copied on the other core. Files stay open between jobs, at most 8
 * (a split bundle may have thousands of parts).
 */
const THREAD_SOURCE = `
'use strict';
const { parentPort } = require('node:worker_threads');
const fs = require('node:fs');
const { createHash } = require('node:crypto');
const CHUNK = 1024 * 1024;
const REPORT = 8 * 1024 * 1024;
const MAX_OPEN = 8;
const open = new Map();
let buffer;
const stampOf = (s) => s.dev + ':' + s.ino + ':' + s.size + ':' + s.mtimeNs + ':' + s.ctimeNs;
class Fail extends Error {
  constructor(kind, segment, code) { super(kind); this.fail = { kind, segment, code }; }
}
function fdFor(seg, i) {
  const had = open.get(seg.path);
  if (had !== undefined) {
    open.delete(seg.path);
    open.set(seg.path, had);
    return had;
  }
  let fd;
  try {
    fd = fs.openSync(seg.path, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (err) {
    throw new Fail('open', i, err.code);
  }
  if (stampOf(fs.fstatSync(fd, { bigint: true })) !== seg.stamp) {
    fs.closeSync(fd);
    throw new Fail('changed', i);
  }
  open.set(seg.path, fd);
  for (const [p, old] of open) {
    if (open.size <= MAX_OPEN) break;
    open.delete(p);
    fs.closeSync(old);
  }
  return fd;
}
function hashJob(job) {
  const h = createHash('sha256');
  buffer ??= Buffer.allocUnsafe(CHUNK);
  let unreported = 0;
  for (const [i, seg] of job.segments.entries()) {
    const fd = fdFor(seg, i);
    for (let got = 0; got < seg.len; ) {
      let n;
      try {
        n = fs.readSync(fd, buffer, 0, Math.min(CHUNK, seg.len - got), seg.pos + got);
      } catch (err) {
        throw new Fail('io', i, err.code);
      }
      if (n === 0) throw new Fail('truncated', i);
      h.update(buffer.subarray(0, n));
      got += n;
      unreported += n;
      if (unreported >= REPORT) {
        parentPort.postMessage({ id: job.id, n: unreported });
        unreported = 0;
      }
    }
  }
  return { sha256: h.digest('hex'), n: unreported };
}
parentPort.on('message', (job) => {
  let done;
  try {
    done = hashJob(job);
  } catch (err) {
    if (!err.fail) throw err;
    parentPort.postMessage({ id: job.id, n: 0, fail: err.fail });
    return;
  }
  parentPort.postMessage({ id: job.id, n: done.n, sha256: done.sha256 });
});
`;
