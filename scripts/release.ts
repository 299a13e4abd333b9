// npm run release: the files that carry airlock into the air gap, where there
// is no npm registry (SPEC §8), written to release/:
//
//   airlock.mjs         one file, every dependency inside: `node airlock.mjs` on Node ^22.22.2 or ≥ 24.15
//   airlock-linux-x64   a single executable with Node 24 inside, needing nothing installed
//   SHA256SUMS          both, in `sha256sum -c` format
//
// The single executable is built from the Node 24 of the npm registry (the
// binary scripts/node24.sh installs), not from whatever node runs this script:
// a distribution's node may be linked against a shared libnode, and the blob
// must be written by the very binary it is injected into.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { bundle } from './release/bundle.js';
import { buildSea } from './release/sea.js';

const root = path.resolve(import.meta.dirname, '..');
const out = path.join(root, 'release');

/** Node 24 from the npm registry, installed where scripts/node24.sh puts it (and reused from there). */
function node24(): string {
  const dir = process.env.AIRLOCK_NODE_DIR ?? path.join(os.homedir(), '.cache/airlock/node24');
  const bin = path.join(dir, 'node_modules/node/bin/node');
  if (!existsSync(bin)) {
    console.error(`release: installing node@24 from the npm registry into ${dir} (for the single executable)`);
    execFileSync('npm', ['install', '--prefix', dir, '--no-save', '--no-audit', '--no-fund', '--loglevel=error', 'node@24'], { stdio: 'inherit' });
  }
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
  if (!version.startsWith('v24.')) throw new Error(`release: ${bin} is ${version}, not Node 24; remove ${dir} and run again`);
  return bin;
}

async function sha256(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

/** Written under a temporary name and renamed: an interrupted release leaves no half file behind. */
async function put(file: string, data: string | Buffer, mode: number): Promise<void> {
  await writeFile(`${file}.tmp`, data, { mode });
  await chmod(`${file}.tmp`, mode);
  await rename(`${file}.tmp`, file);
}

async function main(): Promise<void> {
  const started = Date.now();
  const pkg = JSON.parse(await readFile(path.join(root, 'package.json'), 'utf8')) as { version: string };
  const input = { root, version: pkg.version };
  await mkdir(out, { recursive: true });

  const mjs = path.join(out, 'airlock.mjs');
  await put(mjs, await bundle(input, 'esm'), 0o755);

  const sea = path.join(out, 'airlock-linux-x64');
  const node = node24();
  const work = await mkdtemp(path.join(os.tmpdir(), 'airlock-release-'));
  try {
    await buildSea({ node, main: await bundle(input, 'cjs'), work, output: path.join(work, 'airlock-linux-x64') });
    await rm(sea, { force: true });
    await rename(path.join(work, 'airlock-linux-x64'), sea).catch(async (err: NodeJS.ErrnoException) => {
      // Another file system (tmpfs): copy instead.
      if (err.code !== 'EXDEV') throw err;
      await put(sea, await readFile(path.join(work, 'airlock-linux-x64')), 0o755);
    });
  } finally {
    await rm(work, { recursive: true, force: true });
  }

  const names = ['airlock.mjs', 'airlock-linux-x64'];
  const sums = await Promise.all(names.map(async (n) => `${await sha256(path.join(out, n))}  ${n}\n`));
  await put(path.join(out, 'SHA256SUMS'), sums.join(''), 0o644);

  const nodeVersion = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  for (const n of [...names, 'SHA256SUMS']) {
    const size = (await stat(path.join(out, n))).size;
    console.log(`  ${path.join('release', n).padEnd(28)} ${(size / 1024 / 1024).toFixed(1).padStart(6)} MiB`);
  }
  console.log(`airlock ${pkg.version} released in ${((Date.now() - started) / 1000).toFixed(1)} s (single executable with Node ${nodeVersion})`);
}

await main();
