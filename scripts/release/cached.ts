// The release files' command code kept in the user's cache folder (see
// lazy.ts), so that later runs neither decompress nor compile it again. That
// folder is a place another user may be able to write (a shared or group-
// writable home, a link planted where the folder would be made), and what is
// read from it is run. So: the folder is used only when nobody else can
// change what is in it (privateFolder); the copy is opened once, without
// following a link or blocking on a FIFO, must be a regular file of this
// user's, and the very bytes read are hashed and then compiled: the path is
// never read a second time, so a file swapped after the check is not what
// runs. Clean-up removes only this user's own regular files named like a copy.
//
// Node's own modules are taken when called, as in lazy.ts: a run that needs
// no command (--version) does not load node:crypto or node:module.
import { constants, closeSync, fstatSync, lstatSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { privateFolder } from '../../src/fsx/cachedir.js';

/** Far above the few MiB a copy is; a larger file there is not a copy and is not read. */
const MAX_BYTES = 64 * 1024 * 1024;
const COPY = /^[0-9a-f]{64}\.cjs$/;

export interface CacheFolderLoad<T> {
  /** The folder ($XDG_CACHE_HOME/airlock/release). */
  readonly dir: string;
  /** The sha256 (hex) of the source; the copy is `<sha256>.cjs`. */
  readonly sha256: string;
  /** The source, when the folder holds no good copy yet. */
  readonly source: () => Buffer;
  /** Compiles and runs the source, given as the text that was hashed, with `file` as its name. */
  readonly compile: (text: string, file: string) => T | Promise<T>;
}

/**
 * The module from the copy in `dir` (written there first when missing or not
 * right), or undefined when the folder cannot be used: the caller runs the
 * source from memory then.
 */
export async function fromCacheFolder<T>(o: CacheFolderLoad<T>): Promise<T | undefined> {
  if (!/^[0-9a-f]{64}$/.test(o.sha256) || !(await privateFolder(o.dir))) return undefined;
  const name = `${o.sha256}.cjs`;
  const file = path.join(o.dir, name);
  let bytes = readOwnCopy(file, o.sha256);
  if (!bytes) {
    bytes = o.source();
    if (sha256Hex(bytes) !== o.sha256) return undefined; // a bug in scripts/release: the caller runs what is inside
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, bytes, { mode: 0o600, flag: 'wx' });
      // rename() replaces whatever has the name (another user's file, a link, a FIFO) instead of writing through it.
      renameSync(tmp, file);
    } catch {
      // Not kept this time: what was decompressed runs all the same.
    } finally {
      rmSync(tmp, { force: true });
    }
    removeOldCopies(o.dir, name);
  }
  return o.compile(bytes.toString('utf8'), file);
}

/**
 * The copy's bytes when `file` is a regular file of this user's holding
 * exactly the source with digest `sha256`; undefined otherwise. Opened once;
 * what is returned is what was hashed.
 */
export function readOwnCopy(file: string, sha256: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(file, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch {
    return undefined; // missing, a link, or not to be opened: written anew
  }
  try {
    const s = fstatSync(fd);
    const uid = process.getuid?.();
    if (!s.isFile() || (uid !== undefined && s.uid !== uid) || s.size > MAX_BYTES) return undefined;
    const bytes = readFileSync(fd);
    return sha256Hex(bytes) === sha256 ? bytes : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Copies of earlier releases (a few MiB each, no longer run): this user's regular files named like one, nothing else. */
export function removeOldCopies(dir: string, keep: string): void {
  const uid = process.getuid?.();
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const name of names) {
    if (name === keep || !COPY.test(name)) continue;
    const file = path.join(dir, name);
    try {
      const s = lstatSync(file);
      if (s.isFile() && (uid === undefined || s.uid === uid)) rmSync(file, { force: true });
    } catch {
      // gone meanwhile, or not ours to look at
    }
  }
}

/**
 * Compiles CommonJS source held in memory as the module `file`, through
 * Node's own loader, so that Node's compile cache (when on) keeps its
 * compiled code: the next run with the same text skips compiling it. Its
 * `require` is a module's own (Node's modules are all the inner part asks for).
 */
export function compileCommonJs(text: string, file: string): unknown {
  const { Module } = process.getBuiltinModule('node:module') as unknown as { Module: new (id: string) => CommonJsModule };
  const m = new Module(file);
  m.filename = file;
  m.paths = [];
  m._compile(text, file, 'commonjs');
  return m.exports;
}

interface CommonJsModule {
  filename: string;
  paths: string[];
  exports: unknown;
  _compile(text: string, file: string, format?: string): unknown;
}

function sha256Hex(bytes: Buffer): string {
  return process.getBuiltinModule('node:crypto').createHash('sha256').update(bytes).digest('hex');
}
