// Which entries of the served bundle are known good, and since when. An entry
// is hashed whole before its first byte goes out; that verdict holds only while
// the bundle file is unchanged (same device, inode, size, mtime and ctime, taken
// with fstat of the handle every read goes through). When the file changed, the
// entry is hashed again before it is served.
import type { BigIntStats } from 'node:fs';
import pLimit from 'p-limit';
import { BundleError } from '../bundle/reader.js';
import type { BundleReader } from '../bundle/reader.js';

/** Entries hashed at once: each holds a 1 MiB read buffer, and the disk is the limit anyway. */
const VERIFY_CONCURRENCY = 4;

/** One state of the bundle file. An in-place write moves mtime and ctime (ctime cannot be set back); a replacement changes the inode. */
export function fileStamp(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

interface Check {
  /** The file's stamp taken before the entry was hashed. */
  readonly stamp: string;
  readonly done: Promise<void>;
}

export class EntryGuard {
  private readonly checks = new Map<string, Check>();
  private readonly limit = pLimit(VERIFY_CONCURRENCY);

  constructor(private readonly reader: BundleReader) {}

  async stamp(): Promise<string> {
    return this.reader.stamp();
  }

  /**
   * Resolves with the stamp under which the entry hashed to its signed digest:
   * the earlier verdict when the file has not changed since, else a new hash
   * (one at a time per entry, shared by every caller). Throws when it does not match.
   */
  async ensure(name: string): Promise<string> {
    const stamp = await this.stamp();
    let c = this.checks.get(name);
    if (!c || c.stamp !== stamp) {
      c = { stamp, done: this.limit(() => this.reader.verifyEntry(name)) };
      this.checks.set(name, c);
      c.done.catch(() => undefined);
    }
    await c.done;
    return stamp;
  }

  /** Records an entry hashed by someone else (the catalog's manifests) with the stamp taken before it was read. */
  markVerified(name: string, stamp: string): void {
    this.checks.set(name, { stamp, done: Promise.resolve() });
  }

  /** Drops the verdict on an entry whose bytes were just seen not to match. */
  forget(name: string): void {
    this.checks.delete(name);
  }

  /** Throws when the bundle file changed since `stamp`. */
  async unchangedSince(name: string, stamp: string): Promise<void> {
    if ((await this.stamp()) !== stamp) throw new ChangedError(`entry "${name}": the bundle changed on disk while it was being sent`);
  }
}

/** The bytes being sent can no longer be vouched for. */
export class ChangedError extends BundleError {}
