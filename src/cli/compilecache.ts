// Node's compile cache (V8 code for each module, kept on disk and checked
// against the module's source): a command starts without parsing and compiling
// its modules again. It lives in the user's own cache folder, beside the content
// store, not in a shared /tmp where another user could plant compiled code.
// NODE_COMPILE_CACHE (set by the user) wins; NODE_DISABLE_COMPILE_CACHE=1 turns
// it off. A cache that cannot be made (a read-only home) only costs the speed-up.
// The compiled code found there is run as it is: Node checks it only against
// checksums that whoever writes the folder can compute as well. So the folder
// must be one nobody else can write (src/fsx/cachedir.ts privateFolder);
// another user's, a group-writable one, or a link is not used. Silently, like
// a read-only home: nothing is wrong with the run, it only starts slower, and
// a line on every start (--version in scripts and health checks too) would
// be noise about a speed-up.
//
// Used by bin/airlock and by the release files' loader (scripts/release/lazy.ts),
// which is part of every start of a release file: node:module is taken when
// called, not imported, so that --version does not load it.
import path from 'node:path';
import { defaultCacheDir, privateFolder } from '../fsx/cachedir.js';

type WithCompileCache = { enableCompileCache?: (dir?: string) => unknown; getCompileCacheDir?: () => string | undefined };

export async function enableCompileCache(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const m = process.getBuiltinModule('node:module') as WithCompileCache;
  if (!m.enableCompileCache || m.getCompileCacheDir?.() || env.NODE_COMPILE_CACHE || env.NODE_DISABLE_COMPILE_CACHE) return;
  let dir: string;
  try {
    dir = path.join(defaultCacheDir(env), 'node-compile-cache');
  } catch {
    return; // no home folder: the run goes on without the speed-up
  }
  // Made here first: Node's own making of it never returns under /proc (src/fsx/mkdirs.ts).
  if (await privateFolder(dir)) m.enableCompileCache(dir);
}
