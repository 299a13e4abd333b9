import { lstat, realpath } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import { mkdirs } from './mkdirs.js';

/** The content store's default folder (`--cache`), and the parent of Node's compile cache for airlock. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(homedir(), '.cache');
  return path.join(base, 'airlock');
}

/**
 * Makes `dir` (0700) when it is missing and says whether only this user can
 * change what is in it, for folders whose content is run as code (the release
 * files' command code, Node's compile cache): `dir` itself must be a folder,
 * not a link to one, owned by this user and writable by no group or other
 * user; every folder above it must be owned by this user or root and be
 * writable by nobody else, unless it has the sticky bit (/tmp), where others
 * cannot rename or remove what is ours. Whoever can write a folder above could
 * swap `dir` for another after it was checked. False also when the folder
 * cannot be made or looked at: the caller goes on without it.
 * Where there are no POSIX owners (Windows) there is nothing to check.
 */
export async function privateFolder(dir: string): Promise<boolean> {
  const uid = process.getuid?.();
  try {
    await mkdirs(dir, 0o700);
    if (uid === undefined) return true;
    const s = await lstat(dir);
    if (!s.isDirectory() || s.uid !== uid || (s.mode & 0o022) !== 0) return false;
    for (let d = await realpath(path.dirname(dir)); ; d = path.dirname(d)) {
      const a = await lstat(d);
      if ((a.uid !== uid && a.uid !== 0) || ((a.mode & 0o022) !== 0 && (a.mode & 0o1000) === 0)) return false;
      if (path.dirname(d) === d) return true;
    }
  } catch {
    return false;
  }
}
