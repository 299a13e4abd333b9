// Node's compile cache (V8 code for each module, kept on disk and checked
// against the module's source): a command starts without parsing and compiling
// its modules again. It lives in the user's own cache folder, beside the content
// store, not in a shared /tmp where another user could plant compiled code.
// NODE_COMPILE_CACHE (set by the user) wins; NODE_DISABLE_COMPILE_CACHE=1 turns
// it off. A cache that cannot be written (a read-only home) only costs the speed-up:
// Node reports that in the returned status and runs on.
import module from 'node:module';
import path from 'node:path';
import { defaultCacheDir } from '../fsx/cachedir.js';
import { mkdirsSync } from '../fsx/mkdirs.js';

type WithCompileCache = { enableCompileCache?: (dir?: string) => unknown; getCompileCacheDir?: () => string | undefined };

export function enableCompileCache(env: NodeJS.ProcessEnv = process.env): void {
  const m = module as WithCompileCache;
  if (!m.enableCompileCache || m.getCompileCacheDir?.() || env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE) return;
  let dir: string;
  try {
    dir = path.join(defaultCacheDir(env), 'node-compile-cache');
    // Made here first: Node's own making of it never returns under /proc (src/fsx/mkdirs.ts).
    mkdirsSync(dir);
  } catch {
    return; // no home folder, or no cache folder in it: the run goes on without the speed-up
  }
  m.enableCompileCache(dir);
}
