// Open file handles for the parts of a split bundle, a few at a time: a bundle
// cut into 2000 parts must not need 2000 file descriptors. A part is opened
// when a read needs it and closed again once more than `max` are open and it
// is idle (least recently used first). A part opened again must still be the
// file that was checked when the bundle was opened (same device, inode, size
// and times): reads never quietly move on to a replaced or rewritten file.
import { constants, type BigIntStats } from 'node:fs';
import { open, stat, type FileHandle } from 'node:fs/promises';
import { printable } from '../util/printable.js';
import { BundleError } from './tarread.js';

/** One state of a file. An in-place write moves mtime and ctime (ctime cannot be set back); a replacement changes the inode. */
export function statStamp(s: BigIntStats): string {
  return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
}

export interface PoolFile {
  readonly name: string;
  readonly path: string;
  /** statStamp() of the file when the bundle was opened. */
  readonly stamp: string;
}

interface Slot {
  readonly fh: Promise<FileHandle>;
  users: number;
}

export const MAX_OPEN_PARTS = 8;

export class HandlePool {
  /** Open (or opening) handles by part index, least recently used first (a Map keeps insertion order). */
  private readonly slots = new Map<number, Slot>();
  private readonly closing = new Set<Promise<void>>();

  constructor(
    private readonly files: readonly PoolFile[],
    private readonly max = MAX_OPEN_PARTS,
  ) {}

  /** Runs `fn` with part `i`'s handle, which stays open until `fn` settles. */
  async with<T>(i: number, fn: (fh: FileHandle) => Promise<T>): Promise<T> {
    let slot = this.slots.get(i);
    if (slot) this.slots.delete(i);
    else {
      const fh = this.openChecked(i);
      const s: Slot = { fh, users: 0 };
      slot = s;
      fh.catch(() => {
        if (this.slots.get(i) === s) this.slots.delete(i);
      });
    }
    this.slots.set(i, slot);
    slot.users++;
    try {
      return await fn(await slot.fh);
    } finally {
      slot.users--;
      this.evict();
    }
  }

  /** Part `i`'s current state: fstat of its open handle, else stat of its path. */
  async stamp(i: number): Promise<string> {
    const f = this.files[i] as PoolFile;
    const slot = this.slots.get(i);
    try {
      if (slot) {
        slot.users++;
        try {
          return statStamp(await (await slot.fh).stat({ bigint: true }));
        } finally {
          slot.users--;
          this.evict();
        }
      }
      return statStamp(await stat(f.path, { bigint: true }));
    } catch (err) {
      return `gone (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`;
    }
  }

  /** How many handles are open or opening now (for tests of the limit). */
  get openCount(): number {
    return this.slots.size;
  }

  async close(): Promise<void> {
    const slots = [...this.slots.values()];
    this.slots.clear();
    await Promise.all([...this.closing, ...slots.map((s) => s.fh.then((fh) => fh.close()).catch(() => undefined))]);
  }

  private async openChecked(i: number): Promise<FileHandle> {
    const f = this.files[i] as PoolFile;
    let fh: FileHandle;
    try {
      // Non-blocking: a part swapped for a FIFO since it was checked must not hang here (the stamp check then refuses it).
      fh = await open(f.path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (err) {
      throw new BundleError(`cannot open part ${printable(f.path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    try {
      if (statStamp(await fh.stat({ bigint: true })) !== f.stamp) {
        throw new BundleError(`part ${printable(f.name)} changed on disk since the bundle was opened (another file, or written to); start again`);
      }
      return fh;
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  private evict(): void {
    for (const [i, s] of this.slots) {
      if (this.slots.size <= this.max) return;
      if (s.users > 0) continue;
      this.slots.delete(i);
      // A close that fails leaves nothing to do: the handle is gone either way.
      const p = s.fh.then((fh) => fh.close()).catch(() => undefined);
      this.closing.add(p);
      void p.then(() => this.closing.delete(p));
    }
  }
}
