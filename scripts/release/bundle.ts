// One JavaScript file holding airlock and every dependency, for `npm run release`.
//
// A plain esbuild bundle is 2.6 MB of code that V8 has to scan before the first
// line runs, and as an ES module it imports every Node module named anywhere in
// it up front (node:http alone loads Node's internal undici): `airlock --version`
// took 2.5× as long as bin/airlock. So the file
// has two parts. The outer part is what every run needs: the Node check, the
// commander wiring of src/cli and commander itself. Everything the commands
// load with `await import()` (undici, ajv, yaml, tar-stream, …) is the inner
// part, bundled on its own as CommonJS and carried in the outer one as a string
// literal (brotli, base64), which V8 skips over in a fraction of the time; it is
// decompressed and compiled on the first `import()` of a command, and only then;
// after the first run, from a copy in the user's cache folder that Node's compile
// cache keeps compiled (see lazy.ts). Compressed, the string costs a third of the
// start-up time the plain source text did.
// The build is deterministic: `npm run release` in the same checkout writes the
// same bytes.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { brotliCompressSync, constants } from 'node:zlib';
import path from 'node:path';
import { build, type BuildOptions, type Plugin } from 'esbuild';

export interface BundleInput {
  /** The checkout's root. */
  root: string;
  version: string;
}

const PLACEHOLDER = '__AIRLOCK_INNER_SOURCE__';
const PLACEHOLDER_SHA256 = '__AIRLOCK_INNER_SHA256__';

/** Node ^22.22.2 / ≥ 24.15 runs every release file (engines); the SEA's Node is newer anyway. */
const TARGET = 'node22.22';

function common(input: BundleInput): BuildOptions {
  return {
    absWorkingDir: input.root,
    bundle: true,
    platform: 'node',
    target: TARGET,
    write: false,
    // Smaller to read and parse; names are kept so that the stack of a bug still says where it was.
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'none',
    // What src/cli/version.ts reads from disk when run from dist/.
    define: { AIRLOCK_VERSION: JSON.stringify(input.version) },
    // Those reads sit behind the defines above and never run in a release file.
    logOverride: { 'empty-import-meta': 'silent' },
    logLevel: 'warning',
  };
}

/**
 * Replaces each `import('./x.js')` in the outer part's sources with
 * `__airlockLazy('src/…/x.ts')` and records the module it named: those are the
 * inner part's entries. The entry's own import of main.js stays: main is outer.
 */
function lazyImports(root: string, entry: string, keys: Set<string>): Plugin {
  return {
    name: 'airlock-lazy-imports',
    setup(b) {
      b.onLoad({ filter: /[/\\]src[/\\].*\.ts$/ }, async (args) => {
        const source = await readFile(args.path, 'utf8');
        if (path.resolve(args.path) === path.resolve(root, entry)) return { contents: source, loader: 'ts' };
        const contents = source.replace(/\bimport\((['"])(\.\.?\/[^'"]+)\1\)/g, (m, _q: string, spec: string) => {
          const file = path.resolve(path.dirname(args.path), spec.replace(/\.js$/, '.ts'));
          // Not a module of ours (text in a comment, say): left for esbuild as it is.
          if (!existsSync(file)) return m;
          const key = path.relative(root, file).split(path.sep).join('/');
          keys.add(key);
          return `__airlockLazy(${JSON.stringify(key)})`;
        });
        return { contents, loader: 'ts' };
      });
    },
  };
}

/** The inner part, packed: one CommonJS module whose exports map each key to a function importing it. */
async function innerSource(input: BundleInput, keys: Set<string>): Promise<{ packed: string; sha256: string }> {
  const table = [...keys].sort().map((k) => `  ${JSON.stringify(k)}: () => import(${JSON.stringify(`./${k}`)}),`);
  const result = await build({
    ...common(input),
    stdin: { contents: `module.exports = {\n${table.join('\n')}\n};\n`, resolveDir: input.root, sourcefile: 'airlock-inner.js', loader: 'js' },
    format: 'cjs',
  });
  const source = Buffer.from(text(result.outputFiles));
  const packed = brotliCompressSync(source, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } });
  return { packed: packed.toString('base64'), sha256: createHash('sha256').update(source).digest('hex') };
}

/**
 * `format` esm: release/airlock.mjs, for `node airlock.mjs`. `format` cjs: the
 * main script of the single executable (Node 24's SEA runs CommonJS only).
 */
export async function bundle(input: BundleInput, format: 'esm' | 'cjs'): Promise<string> {
  const entry = 'src/cli/standalone.ts';
  const keys = new Set<string>();
  const outer = await build({
    ...common(input),
    entryPoints: [entry],
    format,
    plugins: [lazyImports(input.root, entry, keys)],
    inject: [path.join(input.root, 'scripts/release/lazy.ts')],
    // CommonJS dependencies (commander) call require() for Node's own modules; an ES module has none of its own.
    ...(format === 'esm' && { banner: { js: "import { createRequire as __airlockCreateRequire } from 'node:module';\nconst require = __airlockCreateRequire(import.meta.url);" } }),
  });
  const inner = await innerSource(input, keys);
  let code = text(outer.outputFiles);
  for (const [placeholder, value] of [[PLACEHOLDER, inner.packed], [PLACEHOLDER_SHA256, inner.sha256]] as const) {
    const quoted = JSON.stringify(placeholder);
    if (code.split(quoted).length !== 2) throw new Error(`release: expected the placeholder ${placeholder} once in the outer part`);
    code = code.replace(quoted, () => JSON.stringify(value));
  }
  return `#!/usr/bin/env node\n${code}`;
}

function text(files: { text: string }[] | undefined): string {
  const [file, ...rest] = files ?? [];
  if (!file || rest.length > 0) throw new Error('release: esbuild wrote other than one file');
  return file.text;
}
