// Opening files that someone else may have planted: a symbolic link is never
// followed, anything but a regular file (a FIFO, a device, a folder) is refused
// before a byte is read or written, and opening never blocks. Errors name the
// path and say what to do.
//
// Inputs the user names (the bundle and its parts and BUNDLE.sha256, --base,
// diff inputs, --pub, --key, the manifest and what it names, CA files) are
// opened the same way but a symbolic link is followed: a link of one's own to
// a file is an ordinary way to name it. What it leads to must still be a
// regular file: a FIFO would block open() and read() forever, a device like
// /dev/zero never ends. And every file read whole is read with a bound
// (READ_BOUNDS), refused unread when it is larger.
import { closeSync, constants, fstatSync, lstatSync, openSync, readSync, statSync, type Stats } from 'node:fs';
import { lstat, open, realpath, stat, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { mkdirs } from './mkdirs.js';

const { O_NOFOLLOW, O_NONBLOCK } = constants;

export class UnsafeFileError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly path: string,
    /** The errno code when opening failed (ENOENT: there is no such file). */
    readonly code?: string,
  ) {
    super(message);
    this.name = 'UnsafeFileError';
  }
}

const KiB = 1024;
const MiB = 1024 * KiB;

/**
 * How much of each kind of file airlock reads whole, at most: all in one place
 * so each bound can be weighed against the others. Each is far above what the
 * file holds in use; the unsigned JSON ones are also kept low enough to parse
 * and check in well under a second (a receipt of 10 000 images and 80 000
 * blobs is 14 MiB and takes 0.3 s; a Welkin platform's is 0.2 MiB).
 */
export const READ_BOUNDS = {
  /** BUNDLE.sha256: an 80-byte line per part. */
  sidecar: { max: 4 * MiB, what: 'a BUNDLE.sha256 file' },
  /** A PEM P-256 key is a few hundred bytes. */
  key: { max: 64 * KiB, what: 'a key file' },
  /** A receipt (SPEC §6), read back as untrusted input by diff, build --base and delta unpack. */
  receipt: { max: 16 * MiB, what: 'a receipt' },
  /** bundle.json, from a tar or on its own; read unsigned by inspect, diff and --base. */
  bundleJson: { max: 16 * MiB, what: 'bundle.json' },
  manifest: { max: 4 * MiB, what: 'a manifest' },
  imageList: { max: 16 * MiB, what: 'an image list' },
  /** Rendered YAML (helm template, kubectl get -o yaml of a whole cluster). */
  rendered: { max: 256 * MiB, what: 'a rendered manifest' },
  /** CA bundles (the system one is about 200 KiB) and TLS certificates and keys. */
  pem: { max: 4 * MiB, what: 'a PEM file' },
  dockerConfig: { max: 4 * MiB, what: 'a docker config.json' },
  /** A signature policy (SPEC §9): a few rules, a few KiB. */
  policy: { max: 1 * MiB, what: 'a signature policy' },
  /** A Sigstore trusted_root.json: public-good's is 7 KiB (2 CAs, 2 logs, 2 CT logs, 1 TSA). */
  trustedRoot: { max: 4 * MiB, what: 'a Sigstore trusted root' },
  /** A checksum sidecar under --files-dir: one line. */
  fileSidecar: { max: 64 * KiB, what: 'a .sha256 file' },
  /** Files airlock keeps itself (cached manifests and configs, lookup tables): never larger than what was fetched. */
  kept: { max: 64 * MiB, what: 'a file airlock keeps' },
} as const satisfies Record<string, ReadBound>;

export interface ReadBound {
  readonly max: number;
  /** What the file is, for the message: "a receipt". */
  readonly what: string;
}

export interface ReadOptions extends Partial<ReadBound> {
  /** Follow a symbolic link (inputs the user names); the file it leads to must still be regular. */
  readonly follow?: boolean;
}

/** `size` undefined: the file said it was smaller, and read on past the bound. */
function tooLarge(file: string, size: number | undefined, b: ReadBound): UnsafeFileError {
  return new UnsafeFileError(`${file} is ${size === undefined ? '' : `${size} bytes, `}more than ${b.what} may be (${b.max} bytes); refusing it`, file);
}

/** A user's input that is not a regular file (a link to one is); the words say what it is instead. */
function notRegularInput(file: string, s: Stats, linked: boolean): UnsafeFileError {
  const kind = kindOf(s);
  const it = linked ? `a symbolic link to ${kind === 'not a regular file' ? 'something that is not a regular file' : kind}` : kind === 'not a regular file' ? 'not a regular file' : `${kind}, not a regular file`;
  return new UnsafeFileError(`${file} is ${it}: airlock reads only regular files (a pipe or device could block or never end); copy it to a file and give that`, file);
}

function cannotOpen(err: unknown, file: string): UnsafeFileError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : (code ?? (err as Error).message);
  return Object.assign(new UnsafeFileError(`cannot read ${file}: ${why}`, file, code), { cause: err });
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

/**
 * Opens a file the user named, for reading: a symbolic link is followed, but
 * what it leads to must be a regular file; opening never blocks (O_NONBLOCK:
 * a FIFO opens at once and is then refused). Errors are UnsafeFileErrors
 * naming the file as `label` (`code` ENOENT when there is none).
 */
export async function openInput(file: string, label = file): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(file, constants.O_RDONLY | O_NONBLOCK);
  } catch (err) {
    // A socket cannot be opened (ENXIO): say what it is.
    const s = await stat(file).catch(() => undefined);
    if (s && !s.isFile()) throw notRegularInput(label, s, (await lstat(file).catch(() => s)).isSymbolicLink());
    throw cannotOpen(err, label);
  }
  try {
    const s = await fh.stat();
    if (!s.isFile()) throw notRegularInput(label, s, (await lstat(file).catch(() => s)).isSymbolicLink());
  } catch (err) {
    await fh.close().catch(() => undefined);
    throw err;
  }
  return fh;
}

/**
 * Reads a regular file whole, at most `max` bytes: larger is refused unread,
 * naming the file and the bound (and so is a file that grows past it while
 * read, or that says it is smaller than it is). Without `follow` (airlock's
 * own files: indexes, sidecars) a symbolic link is refused too; with it (the
 * user's inputs) it is followed. A FIFO, device or folder is refused, never
 * waited on. Without a bound, READ_BOUNDS.kept.
 */
export async function readRegular(file: string, opts: ReadOptions = {}): Promise<Buffer> {
  const bound = { max: opts.max ?? READ_BOUNDS.kept.max, what: opts.what ?? READ_BOUNDS.kept.what };
  const fh = opts.follow ? await openInput(file) : await openRegular(file, constants.O_RDONLY);
  try {
    return await readBounded(fh, file, bound);
  } finally {
    await fh.close();
  }
}

/** Reads the open regular file `fh` whole from its start, refusing it past `b.max` bytes. */
export async function readBounded(fh: FileHandle, file: string, b: ReadBound): Promise<Buffer> {
  const { size } = await fh.stat();
  if (size > b.max) throw tooLarge(file, size, b);
  // One byte more than the size: a file that grew is seen to, and read on up to the bound.
  let buf: Buffer = Buffer.allocUnsafe(size + 1);
  let done = 0;
  for (;;) {
    if (done === buf.length) buf = grown(buf, file, b);
    const { bytesRead } = await fh.read(buf, done, buf.length - done, done);
    if (bytesRead === 0) return buf.subarray(0, done);
    done += bytesRead;
  }
}

/** `buf`, full, copied into a larger one: the file says it is smaller than it is (it grew, or is a /proc file); at most one byte past the bound. */
function grown(buf: Buffer, file: string, b: ReadBound): Buffer {
  if (buf.length > b.max) throw tooLarge(file, undefined, b);
  const bigger = Buffer.allocUnsafe(Math.min(b.max + 1, Math.max(buf.length * 2, 64 * KiB)));
  buf.copy(bigger);
  return bigger;
}

/**
 * readRegular for the few callers that must stay synchronous (a TLS option,
 * docker config.json read inside a lookup): the same checks and bound.
 */
export function readRegularSync(file: string, opts: ReadOptions = {}): Buffer {
  const b = { max: opts.max ?? READ_BOUNDS.kept.max, what: opts.what ?? READ_BOUNDS.kept.what };
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | O_NONBLOCK | (opts.follow ? 0 : O_NOFOLLOW));
  } catch (err) {
    const s = (() => {
      try {
        return opts.follow ? statSync(file) : lstatSync(file);
      } catch {
        return undefined;
      }
    })();
    if (s && !s.isFile()) throw opts.follow ? notRegularInput(file, s, lstatSync(file).isSymbolicLink()) : notRegular(file, s);
    throw cannotOpen(err, file);
  }
  try {
    const s = fstatSync(fd);
    if (!s.isFile()) throw opts.follow ? notRegularInput(file, s, lstatSync(file).isSymbolicLink()) : notRegular(file, s);
    if (s.size > b.max) throw tooLarge(file, s.size, b);
    let buf: Buffer = Buffer.allocUnsafe(s.size + 1);
    let done = 0;
    for (;;) {
      if (done === buf.length) buf = grown(buf, file, b);
      const n = readSync(fd, buf, done, buf.length - done, done);
      if (n === 0) return buf.subarray(0, done);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
}
