// What checking publishers' signatures (SPEC §9 "Signature policy") adds to a build: 200 small
// images on a local registry, each with a keyless cosign tag-scheme signature from a test
// Sigstore PKI (certificate chain and Rekor SET, the expensive kind, checked through
// @sigstore/verify) naming its digest, and a policy with one keyless rule over them all.
// Warm-cache builds with --policy and without (both carry the signatures; without a policy
// nothing is verified), interleaved so that load on the machine hits both alike; medians of the
// wall clock and of the CPU seconds (user + system) of the airlock process. A script, not a test:
// it prints numbers and asserts nothing.
//
//   node --import tsx scripts/bench-policy.ts [--runs=N] [--images=N] [--cpu-prof=DIR]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import path from 'node:path';
import type { BundleIndex } from '../src/bundle/format.js';
import { AIRLOCK } from '../test/support/cli.js';
import { makeTempDir, removeTempDir } from '../test/support/proc.js';
import { startRegistry } from '../test/support/registry.js';
import { makeLayer, Seeder } from '../test/support/seed.js';
import { pushTagSignature, simplesigningPayload } from '../test/support/seed-signatures.js';
import { makePki, signKeyless } from '../test/support/sigstore-pki.js';
import { entry, readTar } from '../test/support/tarball.js';

const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const RUNS = Number(arg('runs') ?? 5);
const IMAGES = Number(arg('images') ?? 200);
/** Also write a V8 CPU profile of one build with --policy into this folder. */
const CPU_PROF = arg('cpu-prof');
const ISSUER = 'https://token.actions.githubusercontent.com';
const SUBJECT = 'https://github.com/example/app/.github/workflows/release.yml@refs/tags/v1.2.3';

interface Run {
  seconds: number;
  /** User + system CPU seconds of the airlock process, from GNU time. */
  cpu: number;
}

async function airlock(dir: string, args: string[], nodeFlags: string[] = []): Promise<Run> {
  const timeFile = path.join(dir, 'time.txt');
  const start = process.hrtime.bigint();
  const child = spawn('/usr/bin/time', ['-f', '%U %S', '-o', timeFile, process.execPath, ...nodeFlags, AIRLOCK, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  if (code !== 0) throw new Error(`airlock ${args.join(' ')}: exit ${code}\n${stderr}`);
  const [user, sys] = (await readFile(timeFile, 'utf8')).trim().split('\n').at(-1)!.split(' ').map(Number);
  return { seconds, cpu: user! + sys! };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const load = () => loadavg().map((x) => x.toFixed(2)).join(', ');
const fmt = (xs: number[]) => `median ${median(xs).toFixed(2)} s (${xs.map((x) => x.toFixed(2)).join(', ')})`;

async function verdicts(bundle: string): Promise<Record<string, number>> {
  const index = JSON.parse(entry(await readTar(bundle), 'bundle.json').data.toString('utf8')) as BundleIndex;
  const counts: Record<string, number> = {};
  for (const s of index.signatures ?? []) counts[s.verdict] = (counts[s.verdict] ?? 0) + 1;
  return counts;
}

console.log(`load average at start: ${load()}`);
const reg = await startRegistry();
const dir = await makeTempDir('airlock-bench-policy-');
try {
  const seeder = new Seeder({ url: reg.url });
  const pkiDir = path.join(dir, 'pki');
  await mkdir(pkiDir);
  const pki = makePki(pkiDir, 'bench');
  let signing = 0;
  const setupStart = process.hrtime.bigint();
  for (let i = 0; i < IMAGES; i++) {
    const repo = `sig/app${i}`;
    const img = await seeder.pushImage(repo, 'v1', { layers: [await makeLayer(`policy-bench-${i}`, 4096)], format: 'oci' });
    const payload = simplesigningPayload(`${reg.host}/${repo}`, img.digest);
    const t = process.hrtime.bigint();
    const annotations = signKeyless(pki, `leaf${i}`, payload, { subject: SUBJECT, issuer: ISSUER });
    signing += Number(process.hrtime.bigint() - t) / 1e9;
    await pushTagSignature(seeder, repo, img.digest, [{ payload, annotations }]);
  }
  await seeder.close();
  const setup = Number(process.hrtime.bigint() - setupStart) / 1e9;
  console.log(`setup: ${IMAGES} images pushed with a keyless signature each in ${setup.toFixed(1)} s (${signing.toFixed(1)} s of it making the signatures with openssl)`);

  await writeFile(path.join(dir, 'trusted_root.json'), JSON.stringify(pki.trustedRoot));
  const policy = path.join(dir, 'policy.yaml');
  await writeFile(
    policy,
    `apiVersion: airlock/v1\nkind: SignaturePolicy\ntrustedRoot: trusted_root.json\nrules:\n  - images: ["${reg.host}/sig/**"]\n    keyless: { issuer: "${ISSUER}", subject: "${SUBJECT}" }\n    mode: enforce\ndefault: enforce\n`,
  );
  const manifest = path.join(dir, 'm.yaml');
  await writeFile(
    manifest,
    `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: bench}\nspec:\n  registries:\n    "${reg.host}": {plainHttp: true}\n  images:\n${Array.from({ length: IMAGES }, (_, i) => `    - ${reg.host}/sig/app${i}:v1\n`).join('')}`,
  );
  await airlock(dir, ['keygen', '--out', path.join(dir, 'k')]);
  const cache = path.join(dir, 'cache');
  const build = (out: string, extra: string[], nodeFlags: string[] = []) =>
    airlock(dir, ['build', manifest, '-o', path.join(dir, out), '--key', path.join(dir, 'k.key'), '--cache', cache, ...extra], nodeFlags);

  // The first build fills the cache; its bundle shows what the policy made of each signature.
  const fill = await build('fill.tar', ['--policy', policy]);
  const counts = await verdicts(path.join(dir, 'fill.tar'));
  const verified = counts.verified ?? 0;
  console.log(`cold build with --policy (fills the cache): ${fill.seconds.toFixed(2)} s, CPU ${fill.cpu.toFixed(2)} s`);
  console.log(`verdicts in its bundle.json: ${JSON.stringify(counts)}`);
  if (verified !== IMAGES) console.log(`!! only ${verified} of ${IMAGES} verdicts are 'verified': the figures below do not measure ${IMAGES} verifications`);

  const on: Run[] = [];
  const off: Run[] = [];
  for (let r = 0; r < RUNS; r++) {
    const order = (r % 2 === 0 ? ['on', 'off'] : ['off', 'on']) as Array<'on' | 'off'>;
    for (const label of order) {
      const run = await build(`b-${label}.tar`, label === 'on' ? ['--policy', policy] : []);
      (label === 'on' ? on : off).push(run);
      console.log(`run ${r + 1} ${label === 'on' ? '--policy ' : 'no policy'} ${run.seconds.toFixed(2)} s, CPU ${run.cpu.toFixed(2)} s`);
    }
  }
  const wall = (xs: Run[]) => xs.map((x) => x.seconds);
  const cpu = (xs: Run[]) => xs.map((x) => x.cpu);
  console.log(`\nwarm-cache build of ${IMAGES} images, each with a keyless signature, ${RUNS} runs interleaved:`);
  console.log(`  --policy   wall ${fmt(wall(on))}, CPU ${fmt(cpu(on))}`);
  console.log(`  no policy  wall ${fmt(wall(off))}, CPU ${fmt(cpu(off))}`);
  const diff = median(wall(on)) - median(wall(off));
  // Each pair ran back to back: the median of the pairs' differences shrugs off load that came and went between runs.
  const pairs = on.map((x, i) => x.seconds - off[i]!.seconds);
  const cpuPairs = on.map((x, i) => x.cpu - off[i]!.cpu);
  console.log(`  difference of the medians: wall ${diff.toFixed(2)} s, CPU ${(median(cpu(on)) - median(cpu(off))).toFixed(2)} s (target: under 2 s for 200 signatures)`);
  console.log(`  median of the per-run differences: wall ${median(pairs).toFixed(2)} s, CPU ${median(cpuPairs).toFixed(2)} s`);
  console.log(`  load average at the end: ${load()}`);
  console.log(`  'verified' verdicts: ${verified} of ${IMAGES}${verified === IMAGES ? '' : ' — NOT all verified, see above'}`);

  if (CPU_PROF !== undefined) {
    await mkdir(CPU_PROF, { recursive: true });
    const p = await build('prof.tar', ['--policy', policy], ['--cpu-prof', `--cpu-prof-dir=${path.resolve(CPU_PROF)}`]);
    console.log(`CPU profile of a warm build with --policy (${p.seconds.toFixed(2)} s) written to ${path.resolve(CPU_PROF)}`);
  }
} finally {
  await reg.stop();
  await removeTempDir(dir);
}
