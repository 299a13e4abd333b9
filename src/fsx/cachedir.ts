import { homedir } from 'node:os';
import path from 'node:path';

/** The content store's default folder (`--cache`), and the parent of Node's compile cache for airlock. */
export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CACHE_HOME || path.join(homedir(), '.cache');
  return path.join(base, 'airlock');
}
