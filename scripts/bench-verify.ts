// The verify part of `npm run bench`: a bundle of many entries (500 files of
// 4 MiB, about 2 GiB) verified against `openssl sha256` of the same file, with
// the default --jobs (the cores, at most 8) and with --jobs 1, the page cache
// warm; and a bundle of 500 entries of 4 KiB, for what each entry costs apart
// from its bytes. Medians of RUNS, interleaved so that load hits all alike;
// `uptime`'s load averages are printed before and after (the machine may be shared).
//
//   node --import tsx scripts/bench-verify.ts [--runs=5] [--entries=500] [--entry-mib=4] [--keep=DIR]
//
// --keep=DIR builds the bundles there once and reuses them on the next run.
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import path from 'node:path';
import { AIRLOCK } from '../test/support/cli.js';
import { startFileServer } from '../test/support/fileserver.js';
import { makeTempDir } from '../test/support/proc.js';

const MiB = 1024 * 1024;

export interface VerifyRow {
  measure: string;
  airlock: string;
  against: string;
  ratio: string;
  target: string;
}

/** Wall seconds of one run; throws on a non-zero exit. */
async function wall(cmd: string, args: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const load = () => execFileSync('uptime', { encoding: 'utf8' }).replace(/.*load average:\s*/, '').trim();

/** A bundle of `entries` files of `size` bytes each (random, so nothing compresses or repeats), built with bin/airlock from a real nginx. */
export async function makeBundle(dir: string, name: string, entries: number, size: number): Promise<string> {
  const bundle = path.join(dir, `${name}.tar`);
  if (existsSync(bundle)) return bundle;
  const files = await startFileServer();
  try {
    const lines: string[] = [];
    for (let i = 0; i < entries; i++) {
      const rel = `f/${name}-${String(i).padStart(4, '0')}.bin`;
      await mkdir(path.dirname(path.join(files.root, rel)), { recursive: true });
      const data = randomBytes(size);
      await writeFile(path.join(files.root, rel), data);
      lines.push(`    - url: ${files.url}/${rel}\n      path: ${name}/${path.basename(rel)}\n      sha256: ${createHash('sha256').update(data).digest('hex')}`);
    }
    const manifest = path.join(dir, `${name}.yaml`);
    await writeFile(manifest, `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: bench-${name}\n  version: "1.0"\nspec:\n  images: []\n  files:\n${lines.join('\n')}\n`);
    await wall(process.execPath, [AIRLOCK, 'build', manifest, '-o', `${bundle}.tmp`, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, `cache-${name}`)]);
    execFileSync('rm', ['-rf', path.join(dir, `cache-${name}`)]);
    execFileSync('mv', [`${bundle}.tmp`, bundle]);
  } finally {
    await files.stop();
  }
  return bundle;
}

export async function benchVerifyMany(opts: { runs: number; entries?: number; entryBytes?: number; dir?: string }): Promise<VerifyRow[]> {
  const entries = opts.entries ?? 500;
  const entryBytes = opts.entryBytes ?? 4 * MiB;
  const dir = opts.dir ?? (await makeTempDir('airlock-bench-verify-'));
  await mkdir(dir, { recursive: true });
  if (!existsSync(path.join(dir, 'k.pub'))) await wall(process.execPath, [AIRLOCK, 'keygen', '--out', path.join(dir, 'k')]);
  const pub = path.join(dir, 'k.pub');
  console.log(`\nverify of ${entries} entries of ${(entryBytes / MiB).toFixed(0)} MiB (building the bundle in ${dir} …)`);
  const bundle = await makeBundle(dir, `many-${entries}x${entryBytes}`, entries, entryBytes);
  const small = await makeBundle(dir, `small-${entries}x4096`, entries, 4096);
  const bytes = statSync(bundle).size;
  // Page cache warm: each file read once before any timing.
  await wall('openssl', ['sha256', bundle]);
  await wall('openssl', ['sha256', small]);
  const before = load();
  const t = { openssl: [] as number[], jobs: [] as number[], one: [] as number[], small: [] as number[], smallOne: [] as number[], version: [] as number[] };
  for (let i = 0; i < opts.runs; i++) {
    t.openssl.push(await wall('openssl', ['sha256', bundle]));
    t.jobs.push(await wall(process.execPath, [AIRLOCK, 'verify', bundle, '--pub', pub]));
    t.one.push(await wall(process.execPath, [AIRLOCK, 'verify', bundle, '--pub', pub, '--jobs', '1']));
    t.small.push(await wall(process.execPath, [AIRLOCK, 'verify', small, '--pub', pub]));
    t.smallOne.push(await wall(process.execPath, [AIRLOCK, 'verify', small, '--pub', pub, '--jobs', '1']));
    t.version.push(await wall(process.execPath, [AIRLOCK, '--version']));
  }
  const after = load();
  const rate = (s: number) => bytes / MiB / s;
  const runs = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
  const line = (label: string, xs: number[]) => `${median(xs).toFixed(2)} s, ${rate(median(xs)).toFixed(0)} MiB/s, ${((median(xs) * 1000) / entries).toFixed(2)} ms per entry (${runs(xs)})`;
  const cores = Math.min(8, (await import('node:os')).availableParallelism());
  console.log(`  load averages before: ${before}; after: ${after}; ${opts.runs} runs, medians`);
  console.log(`  openssl sha256               ${line('openssl', t.openssl)}`);
  console.log(`  airlock verify (--jobs ${cores})     ${line('jobs', t.jobs)}`);
  console.log(`  airlock verify --jobs 1      ${line('one', t.one)}`);
  console.log(`  ratio of rates: --jobs ${cores} ${(median(t.openssl) / median(t.jobs)).toFixed(2)}× openssl (target ≥ 1.7 on 2 cores), --jobs 1 ${(median(t.openssl) / median(t.one)).toFixed(2)}× (target ≥ 0.95)`);
  // What an entry costs apart from its bytes: the small bundle's verify less a start-up (--version), per entry.
  const perEntry = (xs: number[]) => (((median(xs) - median(t.version)) * 1000) / entries).toFixed(3);
  console.log(`  ${entries} entries of 4 KiB: verify ${median(t.small).toFixed(2)} s (${runs(t.small)}), --jobs 1 ${median(t.smallOne).toFixed(2)} s (${runs(t.smallOne)}); --version ${median(t.version).toFixed(2)} s: at most ${perEntry(t.small)} ms (--jobs 1: ${perEntry(t.smallOne)} ms) per entry beyond start-up`);
  const ratio = (xs: number[]) => (median(t.openssl) / median(xs)).toFixed(2);
  return [
    { measure: `verify, ${entries} entries, ${(bytes / 1024 / MiB).toFixed(2)} GiB, --jobs ${cores} (MiB/s; load ${before} → ${after})`, airlock: `${rate(median(t.jobs)).toFixed(0)} MiB/s`, against: `openssl sha256 ${rate(median(t.openssl)).toFixed(0)} MiB/s`, ratio: ratio(t.jobs), target: '≥ 1.7 (2 cores)' },
    { measure: `verify, the same, --jobs 1`, airlock: `${rate(median(t.one)).toFixed(0)} MiB/s`, against: `openssl sha256 ${rate(median(t.openssl)).toFixed(0)} MiB/s`, ratio: ratio(t.one), target: '≥ 0.95' },
  ];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (k: string) => process.argv.find((a) => a.startsWith(`--${k}=`))?.slice(k.length + 3);
  const rows = await benchVerifyMany({
    runs: Number(arg('runs') ?? 5),
    entries: Number(arg('entries') ?? 500),
    entryBytes: Number(arg('entry-mib') ?? 4) * MiB,
    ...(arg('keep') && { dir: arg('keep') as string }),
  });
  for (const r of rows) console.log(`| ${r.measure} | ${r.airlock} | ${r.against} | ${r.ratio} | ${r.target} |`);
}
