// Injected into the outer part of a release file (see bundle.ts): what each
// `import()` of a command became. The inner part arrives in INNER, brotli-
// compressed and base64-encoded, with the sha256 of its source in INNER_SHA256
// (bundle.ts puts both there after building). It is loaded once, on the first
// call: a run that needs no command (--version, --help) never does.
//
// Loaded how: the first run writes the source to the user's cache folder
// ($XDG_CACHE_HOME/airlock/release/SHA256.cjs) and requires it from there with
// Node's compile cache on, so later runs neither decompress nor compile it
// again: each run reads the file and checks it against INNER_SHA256 before it
// runs a line of it (a file cut short or changed is written anew). Where the
// folder cannot be written (a read-only home), the source is decompressed and
// compiled in memory, as every run did before: slower, nothing else differs.
//
// `require`: the one the file has (Node's own modules only in the SEA, and
// that is all the inner part asks for); taken at call time, not imported, so
// that nothing is loaded by a run that does not need it.
/* eslint-disable @typescript-eslint/no-require-imports -- taken when needed, see above */
import { enableCompileCache } from '../../src/cli/compilecache.js';
import { defaultCacheDir } from '../../src/fsx/cachedir.js';
import { mkdirs } from '../../src/fsx/mkdirs.js';

const INNER: string = '__AIRLOCK_INNER_SOURCE__';
const INNER_SHA256: string = '__AIRLOCK_INNER_SHA256__';

type Loaders = Record<string, () => Promise<unknown>>;
let loading: Promise<Loaders> | undefined;

export async function __airlockLazy(key: string): Promise<unknown> {
  loading ??= fromCacheFolder().then((loaders) => loaders ?? inMemory(source()));
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

/**
 * The copy in the cache folder, checked against INNER_SHA256 (and written anew
 * when it differs), required with the compile cache on; undefined when there is
 * no folder to be had. The copy is read twice, to check it and by require():
 * in between only its owner can change it (the folder is made 0700).
 */
async function fromCacheFolder(): Promise<Loaders | undefined> {
  const fs = require('node:fs') as typeof import('node:fs');
  const path = require('node:path') as typeof import('node:path');
  const { createHash } = require('node:crypto') as typeof import('node:crypto');
  const { createRequire } = require('node:module') as typeof import('node:module');
  try {
    const dir = path.join(defaultCacheDir(), 'release');
    const file = path.join(dir, `${INNER_SHA256}.cjs`);
    const matches = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex') === INNER_SHA256;
    let ok = false;
    try {
      ok = fs.lstatSync(file).isFile() && matches(fs.readFileSync(file));
    } catch {
      // not there yet
    }
    if (!ok) {
      const text = Buffer.from(source(), 'utf8');
      if (!matches(text)) return inMemory(text.toString('utf8')); // a bug in scripts/release: run what is inside
      await mkdirs(dir, 0o700);
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        fs.writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
        fs.renameSync(tmp, file);
      } finally {
        fs.rmSync(tmp, { force: true });
      }
      // Earlier releases' files: each is a few MiB and no longer run.
      for (const name of fs.readdirSync(dir)) if (name.endsWith('.cjs') && name !== path.basename(file)) fs.rmSync(path.join(dir, name), { force: true });
    }
    await enableCompileCache();
    return createRequire(file)(file) as Loaders;
  } catch {
    return undefined;
  }
}
