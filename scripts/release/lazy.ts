// Injected into the outer part of a release file (see bundle.ts): what each
// `import()` of a command became. The inner part arrives in INNER, brotli-
// compressed and base64-encoded (bundle.ts puts it there after building), and
// is decompressed and compiled once, on the first call: a run that needs no
// command (--version, --help) never does either.
//
// `require`: the one the file has (Node's own modules only in the SEA, and
// that is all the inner part asks for); taken at call time, not imported, so
// that zlib and vm are not loaded by a run that does not need them.
const INNER: string = '__AIRLOCK_INNER_SOURCE__';

type Loaders = Record<string, () => Promise<unknown>>;
let loaders: Loaders | undefined;

export function __airlockLazy(key: string): Promise<unknown> {
  if (!loaders) {
    /* eslint-disable @typescript-eslint/no-require-imports -- taken when needed, see above */
    const { brotliDecompressSync } = require('node:zlib') as typeof import('node:zlib');
    const { compileFunction } = require('node:vm') as typeof import('node:vm');
    /* eslint-enable @typescript-eslint/no-require-imports */
    const source = brotliDecompressSync(Buffer.from(INNER, 'base64')).toString('utf8');
    const module = { exports: {} as Loaders };
    compileFunction(source, ['require', 'module', 'exports'], { filename: 'airlock-inner.js' })(require, module, module.exports);
    loaders = module.exports;
  }
  const load = loaders[key];
  if (!load) return Promise.reject(new Error(`airlock release file: no module ${key} inside (a bug in scripts/release)`));
  return load();
}
