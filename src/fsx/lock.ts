// A lock file per cache entry, so two airlock processes sharing one cache do
// not write the same partial file. The lock is created O_CREAT|O_EXCL and
// holds the owner's pid. Whoever finds it taken waits, polling with backoff,
// while the owner is alive (kill(pid, 0)); a lock left by a dead process (a
// SIGKILLed build) is taken over. Inside one process, callers of the same
// lock queue up in memory first.
import { constants } from 'node:fs';
import { lstat, open, readdir, rm, unlink } from 'node:fs/promises';
import path from 'node:path';
import { explain, openRegular } from './safe.js';

const { O_CREAT, O_EXCL, O_NOFOLLOW, O_RDONLY, O_WRONLY } = constants;

/** A lock whose file has no pid yet is someone between create and write; after this long, a crash. */
const EMPTY_LOCK_GRACE_MS = 10_000;
const MAX_POLL_MS = 1_000;

export interface Lock {
  release(): Promise<void>;
}

export interface LockOptions {
  /** Called once when the lock is held by another live process, with its pid. */
  readonly onWait?: (pid: number) => void;
}

const queues = new Map<string, Promise<void>>();

export async function acquireLock(file: string, opts: LockOptions = {}): Promise<Lock> {
  // One holder per process: the file's pid cannot tell two of our own callers apart.
  const before = queues.get(file) ?? Promise.resolve();
  let letNextIn!: () => void;
  const mine = new Promise<void>((resolve) => (letNextIn = resolve));
  const tail = before.then(() => mine);
  queues.set(file, tail);
  const leave = () => {
    letNextIn();
    if (queues.get(file) === tail) queues.delete(file);
  };
  await before;
  let ino: number;
  try {
    ino = await lockFile(file, opts);
  } catch (err) {
    leave();
    throw err;
  }
  let released = false;
  return {
    async release() {
      if (released) return;
      released = true;
      try {
        // Still the file this process created (its inode): a lock taken over meanwhile is left to its new owner.
        const s = await lstat(file).catch(() => undefined);
        if (s?.isFile() && s.ino === ino) await unlink(file).catch(() => undefined);
      } finally {
        leave();
      }
    },
  };
}

/** Takes the lock; returns the inode of the lock file it created. */
async function lockFile(file: string, opts: LockOptions): Promise<number> {
  let delay = 20;
  let told = false;
  for (;;) {
    try {
      const fh = await open(file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o644);
      try {
        await fh.write(`${process.pid}\n`);
        return (await fh.stat()).ino;
      } finally {
        await fh.close();
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw await explain(err, file);
    }
    const owner = await readOwner(file);
    if (!owner) continue; // released meanwhile
    if (isStale(owner)) {
      await removeStale(file, owner);
      continue;
    }
    if (!told && owner.pid !== undefined) {
      told = true;
      opts.onWait?.(owner.pid);
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(MAX_POLL_MS, delay * 2);
  }
}

interface Owner {
  readonly pid: number | undefined;
  readonly ino: number;
  readonly mtimeMs: number;
}

/** The lock's owner, or undefined when there is no lock; a link or FIFO at the lock's name is refused. */
async function readOwner(file: string): Promise<Owner | undefined> {
  let fh;
  try {
    fh = await openRegular(file, O_RDONLY);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    const s = await fh.stat();
    // A pid is a few digits: the first 64 bytes say it, whatever else was planted.
    const head = Buffer.alloc(64);
    const text = head.subarray(0, (await fh.read(head, 0, 64, 0)).bytesRead).toString('utf8');
    const pid = /^\d+$/.test(text.trim()) ? Number(text.trim()) : undefined;
    return { pid, ino: s.ino, mtimeMs: s.mtimeMs };
  } finally {
    await fh.close();
  }
}

/**
 * Removes the locks in `dir` left by processes that are gone (killed between
 * storing an entry and letting go of its lock, say). Best effort: a lock that
 * cannot be read is left alone.
 */
export async function removeStaleLocks(dir: string): Promise<void> {
  for (const name of await readdir(dir).catch(() => [] as string[])) {
    const file = path.join(dir, name);
    if (queues.has(file)) continue; // ours, or about to be
    const owner = await readOwner(file).catch(() => undefined);
    if (owner && isStale(owner)) await removeStale(file, owner).catch(() => undefined);
  }
}

/** A lock is stale when its process is gone. Callers make sure this process does not hold or await it. */
function isStale(owner: Owner): boolean {
  if (owner.pid === undefined) return Date.now() - owner.mtimeMs > EMPTY_LOCK_GRACE_MS;
  // Our own pid, while we do not hold it: left by an earlier process with our pid (a container's pid 1, say).
  if (owner.pid === process.pid) return true;
  try {
    process.kill(owner.pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/** Removes a stale lock unless someone took it over meanwhile (a new lock file is a new inode). */
async function removeStale(file: string, owner: Owner): Promise<void> {
  const s = await lstat(file).catch(() => undefined);
  if (s && s.ino === owner.ino && s.mtimeMs === owner.mtimeMs) await rm(file, { force: true });
}
