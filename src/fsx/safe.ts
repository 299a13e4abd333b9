// Opening files that someone else may have planted: a symbolic link is never
// followed, anything but a regular file (a FIFO, a device, a folder) is refused
// before a byte is read or written, and opening never blocks. Errors name the
// path and say what to do.
import { constants, type Stats } from 'node:fs';
import { lstat, open, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { mkdirs } from './mkdirs.js';

const { O_NOFOLLOW, O_NONBLOCK } = constants;

export class UnsafeFileError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly path: string,
  ) {
    super(message);
    this.name = 'UnsafeFileError';
  }
}

/** What a file that is not a regular file is, in words. */
export function kindOf(s: Stats): string {
  if (s.isSymbolicLink()) return 'a symbolic link';
  if (s.isDirectory()) return 'a folder';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isSocket()) return 'a socket';
  if (s.isCharacterDevice() || s.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

export function notRegular(file: string, s: Stats): UnsafeFileError {
  if (s.isSymbolicLink()) return new UnsafeFileError(`${file} is a symbolic link; airlock does not follow links where it reads or writes its own files: remove it and run again`, file);
  if (s.isDirectory()) return new UnsafeFileError(`${file} is a folder where airlock keeps a file; move it away and run again`, file);
  return new UnsafeFileError(`${file} is ${kindOf(s)}, not a regular file; remove it and run again`, file);
}

/**
 * Turns an error from opening or renaming `file` into one that names it and
 * says what to do; other errors are returned as they are.
 */
export async function explain(err: unknown, file: string): Promise<unknown> {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ELOOP' || code === 'EISDIR' || code === 'ENOTDIR' || code === 'ENXIO' || code === 'EMLINK') {
    const s = await lstat(file).catch(() => undefined);
    if (s && !s.isFile()) return Object.assign(notRegular(file, s), { cause: err });
  }
  return err;
}

/**
 * Opens `file` (`flags` from fs.constants; O_CREAT allowed) without following
 * a symbolic link and without blocking on a FIFO, and refuses anything that
 * is not a regular file. The handle is positioned at 0 and never appends.
 */
export async function openRegular(file: string, flags: number, mode = 0o644): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(file, flags | O_NOFOLLOW | O_NONBLOCK, mode);
  } catch (err) {
    throw await explain(err, file);
  }
  try {
    const s = await fh.stat();
    if (!s.isFile()) throw notRegular(file, s);
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
  return fh;
}

/** True when `file` is a regular file (lstat: a link to one is not), with `size` bytes when given. */
export async function isRegularFile(file: string, size?: number): Promise<boolean> {
  try {
    const s = await lstat(file);
    return s.isFile() && (size === undefined || s.size === size);
  } catch {
    return false;
  }
}

/**
 * The absolute path for `rel` (slash-separated) under `root`, refusing
 * anything that would resolve outside it (a symbolic link to a folder
 * elsewhere, say). The nearest existing folder is checked before any folder
 * is created, so a link cannot make mkdir create folders elsewhere; the
 * parent is checked again once it exists. The last name itself is not
 * resolved: writers replace it with rename, which replaces a link rather
 * than following it.
 */
export async function resolveInside(root: string, rel: string, opts: { create: boolean; what: string; error?: (message: string) => Error }): Promise<string> {
  const fail = (message: string) => (opts.error ? opts.error(message) : new UnsafeFileError(message, rel));
  const realRoot = await realpath(root);
  const full = path.join(realRoot, ...rel.split('/'));
  const inside = (x: string) => x === realRoot || x.startsWith(realRoot + path.sep);
  let existing = path.dirname(full);
  for (;;) {
    try {
      existing = await realpath(existing);
      break;
    } catch {
      existing = path.dirname(existing);
    }
  }
  if (!inside(existing)) throw fail(`${opts.what} would be written under ${existing}, outside ${root} (a symbolic link in the folder?); refusing`);
  if (opts.create) await mkdirs(path.dirname(full));
  const parent = await realpath(path.dirname(full)).catch(() => path.dirname(full));
  if (!inside(parent)) throw fail(`${opts.what} would be written to ${parent}, outside ${root} (a symbolic link in the folder?); refusing`);
  return path.join(parent, path.basename(full));
}

/** Reads a regular file whole (small ones: indexes, sidecars); a link, FIFO or folder is refused, never waited on. */
export async function readRegular(file: string): Promise<Buffer> {
  const fh = await openRegular(file, constants.O_RDONLY);
  try {
    return await fh.readFile();
  } finally {
    await fh.close();
  }
}
