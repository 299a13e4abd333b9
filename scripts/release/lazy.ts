// Injected into the outer part of a release file (see bundle.ts): what each
// `import()` of a command became. The inner part arrives in INNER, brotli-
// compressed and base64-encoded, with the sha256 of its source in INNER_SHA256
// (bundle.ts puts both there after building). It is loaded once, on the first
// call: a run that needs no command (--version, --help) never does.
//
// Loaded how: the first run writes the source to the user's cache folder
// ($XDG_CACHE_HOME/airlock/release/SHA256.cjs) and later runs compile it from
// there with Node's compile cache on, so that they neither decompress nor
// compile it again: each run reads the copy once and checks those bytes
// against INNER_SHA256 before it compiles them (cached.ts says what else is
// checked; a copy cut short or changed is written anew). Where the folder
// cannot be written (a read-only home) or someone else could write it, the
// source is decompressed and compiled in memory: slower, nothing else differs.
//
// `require`: the one the file has (Node's own modules only in the SEA, and
// that is all the inner part asks for); taken at call time, not imported, so
// that nothing is loaded by a run that does not need it.
/* eslint-disable @typescript-eslint/no-require-imports -- taken when needed, see above */
import { enableCompileCache } from '../../src/cli/compilecache.js';
import { defaultCacheDir } from '../../src/fsx/cachedir.js';
import { compileCommonJs, fromCacheFolder } from './cached.js';

const INNER: string = '__AIRLOCK_INNER_SOURCE__';
const INNER_SHA256: string = '__AIRLOCK_INNER_SHA256__';

type Loaders = Record<string, () => Promise<unknown>>;
let loading: Promise<Loaders> | undefined;

export async function __airlockLazy(key: string): Promise<unknown> {
  loading ??= cached().then((loaders) => loaders ?? inMemory(source()));
  const load = (await loading)[key];
  if (!load) throw new Error(`airlock release file: no module ${key} inside (a bug in scripts/release)`);
  return load();
}

function source(): string {
  const { brotliDecompressSync } = require('node:zlib') as typeof import('node:zlib');
  return brotliDecompressSync(Buffer.from(INNER, 'base64')).toString('utf8');
}

function inMemory(text: string): Loaders {
  const { compileFunction } = require('node:vm') as typeof import('node:vm');
  const module = { exports: {} as Loaders };
  compileFunction(text, ['require', 'module', 'exports'], { filename: 'airlock-inner.js' })(require, module, module.exports);
  return module.exports;
}

/** The copy in the user's cache folder (cached.ts); undefined when there is no folder to be had. */
async function cached(): Promise<Loaders | undefined> {
  try {
    const path = require('node:path') as typeof import('node:path');
    return await fromCacheFolder({
      dir: path.join(defaultCacheDir(), 'release'),
      sha256: INNER_SHA256,
      source: () => Buffer.from(source(), 'utf8'),
      compile: async (text, file) => {
        await enableCompileCache();
        return compileCommonJs(text, file) as Loaders;
      },
    });
  } catch {
    return undefined;
  }
}
