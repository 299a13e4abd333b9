// The single executable (https://nodejs.org/api/single-executable-applications.html):
// a copy of the Node 24 binary from the npm registry with airlock's bundle
// injected, so that it runs where nothing is installed.
//
// Node 24 has no `--build-sea` (Node 25.5 does) and its SEA runs only a
// CommonJS main script ("mainFormat": "module" is Node 25.7): so the classic
// flow, `--experimental-sea-config` to write the blob and postject to inject
// it, with the CommonJS variant of the bundle.
import { execFile } from 'node:child_process';
import { copyFile, chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { inject } from 'postject';

const run = promisify(execFile);

/** The sentinel Node's own build looks for; fixed for every Node version (see the SEA docs). */
const FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

export interface SeaInput {
  /** The Node binary to copy; the blob must be written by this same binary. */
  node: string;
  /** The CommonJS bundle (bundle(…, 'cjs')). */
  main: string;
  /** Folder for the blob and config, thrown away afterwards. */
  work: string;
  output: string;
}

export async function buildSea(input: SeaInput): Promise<void> {
  const mainFile = path.join(input.work, 'airlock.cjs');
  const blob = path.join(input.work, 'airlock.blob');
  const config = path.join(input.work, 'sea-config.json');
  await writeFile(mainFile, input.main);
  await writeFile(
    config,
    JSON.stringify({
      // Relative (to the cwd below): the blob records this name, and a temporary folder's would make two builds differ.
      main: path.basename(mainFile),
      output: path.basename(blob),
      // The warning would be printed on every run, before --json output's consumers see stderr noise.
      disableExperimentalSEAWarning: true,
      // No V8 code cache in the blob: with one, two builds of the same source differ (measured), and
      // without, `npm run release` is reproducible byte for byte for a given Node 24. The cache made
      // `--version` no faster (75 ms of CPU either way, measured): the main script is small, the rest
      // of airlock is compiled on demand (bundle.ts).
      useCodeCache: false,
    }),
  );
  await run(input.node, ['--experimental-sea-config', config], { cwd: input.work });
  await copyFile(input.node, input.output);
  await chmod(input.output, 0o755);
  // postject's ELF parser warns once per note section of Node's binary ("Can't find string offset
  // for section name '.note.100'"), which is harmless; those lines are dropped, any other is shown.
  const warn = console.warn;
  console.warn = (...args: unknown[]) => {
    if (!/^warning: Can't find string offset for section name/.test(String(args[0]))) warn(...args);
  };
  try {
    await inject(input.output, 'NODE_SEA_BLOB', await readFile(blob), { sentinelFuse: FUSE });
  } finally {
    console.warn = warn;
  }
}
