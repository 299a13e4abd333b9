// What looking for attached manifests (SPEC §9) costs a build: the bench set
// of `npm run bench` (12 images × 4 layers, two 8 MiB bases shared) behind a
// proxy that answers every request 30 ms late, half of the images with a
// cosign .sig and an SBOM referrer (listed in the fallback index, as on
// distribution 2.8). Cold-cache builds with discovery on and with
// --no-attached, interleaved so that load on the machine hits both alike;
// medians. A script, not a test: it prints numbers and asserts nothing.
//
//   node --import tsx scripts/bench-attached.ts [--runs=N]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AIRLOCK } from '../test/support/cli.js';
import { startFaultProxy } from '../test/support/faultproxy.js';
import { makeTempDir, removeTempDir } from '../test/support/proc.js';
import { startRegistry } from '../test/support/registry.js';
import { makeLayer, Seeder } from '../test/support/seed.js';
import { pushFallbackIndex, pushRealSignature, pushSbomReferrer, referrerEntry } from '../test/support/seed-attached.js';

const IMAGES = 12;
const MB = 1024 * 1024;
const RUNS = Number(/^--runs=(\d+)$/.exec(process.argv.find((a) => a.startsWith('--runs=')) ?? '')?.[1] ?? 3);

async function airlock(args: string[]): Promise<number> {
  const start = process.hrtime.bigint();
  const child = spawn(process.execPath, [AIRLOCK, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`airlock ${args.join(' ')}: exit ${code}\n${stderr}`);
  return Number(process.hrtime.bigint() - start) / 1e9;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const reg = await startRegistry();
const dir = await makeTempDir('airlock-bench-attached-');
try {
  const seeder = new Seeder({ url: reg.url });
  const bases = [await makeLayer('base-a', 8 * MB), await makeLayer('base-b', 8 * MB)];
  for (let i = 0; i < IMAGES; i++) {
    const own = [await makeLayer(`img${i}-1`, 2 * MB), await makeLayer(`img${i}-2`, 3 * MB), await makeLayer(`img${i}-3`, 4 * MB)];
    const img = await seeder.pushImage(`bench/app${i}`, 'v1', { layers: [bases[i % 2]!, ...own], format: 'oci' });
    if (i % 2 === 0) {
      await pushRealSignature(seeder, `bench/app${i}`, img.digest);
      const sbom = await pushSbomReferrer(seeder, `bench/app${i}`, img.descriptor, i);
      await pushFallbackIndex(seeder, `bench/app${i}`, img.digest, [referrerEntry(sbom)]);
    }
  }
  await seeder.close();
  const proxy = await startFaultProxy(reg.url, { rules: [{ kind: 'delay', ms: 30, match: /./, times: Number.MAX_SAFE_INTEGER }] });
  try {
    const manifest = path.join(dir, 'm.yaml');
    await writeFile(manifest, `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: bench}\nspec:\n  images:\n${Array.from({ length: IMAGES }, (_, i) => `    - ${proxy.host}/bench/app${i}:v1\n`).join('')}`);
    await airlock(['keygen', '--out', path.join(dir, 'k')]);
    const on: number[] = [];
    const off: number[] = [];
    const onWarm: number[] = [];
    const offWarm: number[] = [];
    for (let r = 0; r < RUNS; r++) {
      for (const [label, times, extra] of (r % 2 === 0 ? [['on', on, []], ['off', off, ['--no-attached']]] : [['off', off, ['--no-attached']], ['on', on, []]]) as Array<[string, number[], string[]]>) {
        proxy.stats.reset();
        const s = await airlock(['build', manifest, '-o', path.join(dir, `b-${label}-${r}.tar`), '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, `cache-${label}-${r}`), ...extra]);
        times.push(s);
        console.log(`run ${r + 1} ${label.padEnd(3)} ${s.toFixed(2)} s, ${proxy.stats.requests.length} requests`);
      }
      // Warm: the same caches again (nothing to download; the lookups are all that is left to overlap with).
      for (const [label, times, extra] of [['on', onWarm, []], ['off', offWarm, ['--no-attached']]] as Array<[string, number[], string[]]>) {
        times.push(await airlock(['build', manifest, '-o', path.join(dir, `w-${label}-${r}.tar`), '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, `cache-${label}-${r}`), ...extra]));
      }
    }
    const ratio = median(on) / median(off);
    console.log(`\ncold-cache build of ${IMAGES} images, 30 ms added to every request, ${RUNS} runs interleaved:`);
    console.log(`  discovery on   median ${median(on).toFixed(2)} s (${on.map((x) => x.toFixed(2)).join(', ')})`);
    console.log(`  --no-attached  median ${median(off).toFixed(2)} s (${off.map((x) => x.toFixed(2)).join(', ')})`);
    console.log(`  on/off = ${ratio.toFixed(3)} (target ≤ 1.10)`);
    console.log(`warm cache (nothing downloaded): on median ${median(onWarm).toFixed(2)} s (${onWarm.map((x) => x.toFixed(2)).join(', ')}), off ${median(offWarm).toFixed(2)} s (${offWarm.map((x) => x.toFixed(2)).join(', ')}), on/off = ${(median(onWarm) / median(offWarm)).toFixed(3)}`);
  } finally {
    await proxy.stop();
  }
} finally {
  await reg.stop();
  await removeTempDir(dir);
}
