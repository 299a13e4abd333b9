// npm run bench: airlock measured against skopeo in the same run, on this
// machine, against a real local registry. A script, not a test: it prints
// numbers and ratios and asserts nothing.
//
//   npm run bench                 # all of it
//   npm run bench -- --no-big     # skip the 1 GiB layer part (peak RSS, verify and unpack rates)
//   npm run bench -- --runs=5     # runs of each measure (default 3); figures are medians
//   npm run bench -- --startup-only   # only the start-up times (benchStartup, at the end)
//   npm run bench -- --verify-only    # only verify of 500 entries, about 2 GiB (scripts/bench-verify.ts)
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, readFileSync, statSync } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { once } from 'node:events';
import { Agent, request } from 'undici';
import { AIRLOCK } from '../test/support/cli.js';
import { startFaultProxy } from '../test/support/faultproxy.js';
import { makeTempDir } from '../test/support/proc.js';
import { startRegistry, type TestRegistry } from '../test/support/registry.js';
import { makeLayer, MediaTypes, jsonBytes, Seeder } from '../test/support/seed.js';
import { skopeoOk } from '../test/support/skopeo.js';
import { benchVerifyMany } from './bench-verify.js';

const IMAGES = 12;
const MB = 1024 * 1024;
const big = !process.argv.includes('--no-big');

interface Timed {
  seconds: number;
  peakRssMB: number;
  /** User + system CPU seconds of the process (last /proc sample before it exited: up to one sample short). */
  cpuSeconds: number;
}

interface Ran extends Timed {
  code: number | null;
  stderr: string;
}

/** Runs a command, sampling the peak resident set (VmHWM) from /proc while it runs; returns its exit code. */
async function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Ran> {
  const start = process.hrtime.bigint();
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let peak = 0;
  let cpu = 0;
  const sample = () => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peak = Math.max(peak, Number(m[1]) / 1024);
      cpu = Math.max(cpu, cpuOf(child.pid ?? 0));
    } catch {
      // exited between samples
    }
  };
  const timer = setInterval(sample, 10);
  const [code] = (await once(child, 'exit')) as [number | null];
  clearInterval(timer);
  return { seconds: Number(process.hrtime.bigint() - start) / 1e9, peakRssMB: peak, cpuSeconds: cpu, code, stderr };
}

/** As run, but a non-zero exit stops the bench. */
async function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Timed> {
  const r = await run(cmd, args, env);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}:\n${r.stderr}`);
  return { seconds: r.seconds, peakRssMB: r.peakRssMB, cpuSeconds: r.cpuSeconds };
}

const CLOCK_TICKS = 100; // getconf CLK_TCK on Linux

/** User + system CPU seconds a process has used so far (/proc/PID/stat fields 14 and 15). */
function cpuOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const RUNS = Math.max(1, Number(process.argv.find((a) => a.startsWith('--runs='))?.slice(7) ?? 3));

/** Each figure of the summary: airlock's runs against the comparison's, in the same bench. */
interface Row {
  readonly measure: string;
  readonly airlock: string;
  readonly against: string;
  readonly ratio: string;
  readonly target: string;
}
const rows: Row[] = [];
const fmt = (xs: number[], unit: string, digits = 2) => `${median(xs).toFixed(digits)} ${unit} (${xs.map((x) => x.toFixed(digits)).join(', ')})`;

/** Wall seconds of fn(). */
async function seconds(fn: () => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - start) / 1e9;
}

async function seedImages(reg: TestRegistry): Promise<{ refs: string[]; bytes: number }> {
  const seeder = new Seeder({ url: reg.url });
  const bases = [await makeLayer('base-a', 8 * MB), await makeLayer('base-b', 8 * MB)];
  const refs: string[] = [];
  let bytes = bases[0]!.length + bases[1]!.length;
  for (let i = 0; i < IMAGES; i++) {
    const own = [await makeLayer(`img${i}-1`, 2 * MB), await makeLayer(`img${i}-2`, 3 * MB), await makeLayer(`img${i}-3`, 4 * MB)];
    bytes += own.reduce((n, l) => n + l.length, 0);
    await seeder.pushImage(`bench/app${i}`, 'v1', { layers: [bases[i % 2]!, ...own], format: 'oci' });
    refs.push(`${reg.host}/bench/app${i}:v1`);
  }
  await seeder.close();
  return { refs, bytes };
}

/** Streams a large blob into the registry without holding it in memory. */
async function pushBigImage(reg: TestRegistry, dir: string, size: number): Promise<{ ref: string; file: string; digest: string }> {
  const file = path.join(dir, 'big.layer');
  const out = createWriteStream(file);
  const chunk = Buffer.alloc(4 * MB);
  const hash = createHash('sha256');
  let seed = createHash('sha256').update('big').digest();
  for (let done = 0; done < size; done += chunk.length) {
    for (let o = 0; o < chunk.length; o += 32) {
      seed = createHash('sha256').update(seed).digest();
      seed.copy(chunk, o);
    }
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  const digest = `sha256:${hash.digest('hex')}`;
  const agent = new Agent();
  const post = await request(`${reg.url}/v2/bench/big/blobs/uploads/`, { method: 'POST', dispatcher: agent });
  await post.body.dump();
  const put = new URL(String(post.headers.location), reg.url);
  put.searchParams.set('digest', digest);
  const res = await request(put, {
    method: 'PUT',
    body: createReadStream(file),
    headers: { 'content-length': String(statSync(file).size), 'content-type': 'application/octet-stream' },
    dispatcher: agent,
  });
  await res.body.dump();
  if (res.statusCode !== 201) throw new Error(`pushing the big layer: HTTP ${res.statusCode}`);
  await agent.close();
  const seeder = new Seeder({ url: reg.url });
  const config = jsonBytes({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [digest] } });
  const cfg = await seeder.pushBlob('bench/big', config, MediaTypes.ociConfig);
  const manifest = jsonBytes({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: cfg, layers: [{ mediaType: MediaTypes.ociLayerGzip, digest, size }] });
  await seeder.pushManifest('bench/big', 'v1', manifest, MediaTypes.ociManifest);
  await seeder.close();
  return { ref: `${reg.host}/bench/big:v1`, file, digest };
}

/** unpack into a fresh registry vs a skopeo copy loop from the same bundle into another, a second unpack, RUNS times; verify vs sha256sum. */
async function benchUnpack(refs: string[], dir: string): Promise<void> {
  const bundle = path.join(dir, 'b.tar');
  const pub = path.join(dir, 'k.pub');
  const first: Timed[] = [];
  const second: number[] = [];
  const sk: number[] = [];
  const regCpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t1 = await startRegistry();
    const t2 = await startRegistry();
    try {
      const files = await makeTempDir('airlock-bench-files-');
      const args = [AIRLOCK, 'unpack', bundle, '--pub', pub, '--registry', t1.host, '--files-dir', files];
      const before = cpuOf(t1.pid);
      first.push(await timed(process.execPath, args));
      regCpu.push(cpuOf(t1.pid) - before);
      second.push((await timed(process.execPath, args)).seconds);
      sk.push(
        await seconds(async () => {
          for (const r of refs) await skopeoOk(['copy', '--quiet', '--dest-tls-verify=false', `oci-archive:${bundle}:${r}`, `docker://${t2.host}/${r.slice(r.indexOf('/') + 1)}`]);
        }),
      );
    } finally {
      await t1.stop();
      await t2.stop();
    }
  }
  const verify: number[] = [];
  const sum: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    verify.push((await timed(process.execPath, [AIRLOCK, 'verify', bundle, '--pub', pub])).seconds);
    sum.push((await timed('sha256sum', [bundle])).seconds);
  }
  const u = first.map((t) => t.seconds);
  console.log(`\nunpack into a fresh registry vs skopeo copy oci-archive:… loop from the same bundle (${RUNS} runs, median first):`);
  console.log(`  airlock unpack, first        ${fmt(u, 's')}  peak RSS ${median(first.map((t) => t.peakRssMB)).toFixed(0)} MiB`);
  console.log(`    CPU: airlock ${fmt(first.map((t) => t.cpuSeconds), 's')}, the registry ${fmt(regCpu, 's')} (2 cores shared)`);
  console.log(`  skopeo copy × ${IMAGES}            ${fmt(sk, 's')}`);
  console.log(`  ratio unpack/skopeo = ${(median(u) / median(sk)).toFixed(2)} (target ≤ 0.5)`);
  console.log(`  airlock unpack, second       ${fmt(second, 's')}`);
  console.log(`  ratio second/first = ${(median(second) / median(u)).toFixed(3)} (target ≤ 0.08)`);
  console.log(`  airlock verify               ${fmt(verify, 's')}`);
  console.log(`  sha256sum                    ${fmt(sum, 's')}`);
  console.log(`  ratio verify/sha256sum = ${(median(verify) / median(sum)).toFixed(2)}`);
  rows.push({ measure: `unpack vs a skopeo loop into a fresh registry`, airlock: fmt(u, 's'), against: fmt(sk, 's'), ratio: (median(u) / median(sk)).toFixed(2), target: '≤ 0.5' });
  rows.push({ measure: 'second unpack (all present) vs first', airlock: fmt(second, 's'), against: fmt(u, 's'), ratio: (median(second) / median(u)).toFixed(3), target: '≤ 0.08' });
}


/**
 * verify of the bench bundle as one file, as parts (build --split-size, at
 * least 8 parts, with BUNDLE.sha256: each part checked in the same pass) and
 * as `cat PARTS | airlock verify -`; runs interleaved, medians of 3.
 */
async function benchSplit(dir: string): Promise<void> {
  const bundle = path.join(dir, 'b.tar');
  const pub = path.join(dir, 'k.pub');
  const partsDir = path.join(dir, 'parts');
  await mkdir(partsDir);
  const split = path.join(partsDir, 'b.tar');
  const size = statSync(bundle).size;
  const splitSize = `${Math.ceil(size / 10 / 1024)}K`;
  await timed(process.execPath, [AIRLOCK, 'build', path.join(dir, 'm.yaml'), '-o', split, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'cache'), '--split-size', splitSize]);
  const parts = (await readdir(partsDir)).filter((n) => /^b\.tar\.\d+$/.test(n)).sort((x, y) => Number(x.slice(6)) - Number(y.slice(6)));
  const q = (x: string) => `'${x.replace(/'/g, `'\\''`)}'`;
  const piped = `cat ${parts.map((n) => q(path.join(partsDir, n))).join(' ')} | ${q(process.execPath)} ${q(AIRLOCK)} verify - --pub ${q(pub)}`;
  const times = { whole: [] as number[], parts: [] as number[], stdin: [] as number[] };
  for (let i = 0; i < 3; i++) {
    times.whole.push((await timed(process.execPath, [AIRLOCK, 'verify', bundle, '--pub', pub])).seconds);
    times.parts.push((await timed(process.execPath, [AIRLOCK, 'verify', split, '--pub', pub])).seconds);
    times.stdin.push((await timed('sh', ['-c', piped])).seconds);
  }
  const [a, b, c] = [median(times.whole), median(times.parts), median(times.stdin)];
  const all = (xs: number[]) => xs.map((x) => x.toFixed(2)).join(', ');
  console.log(`
verify of the ${(size / MB).toFixed(0)} MiB bundle: one file, ${parts.length} parts of ${splitSize}, and from standard input (median of 3):`);
  console.log(`  (a) verify BUNDLE             ${a.toFixed(2)} s  (${all(times.whole)})`);
  console.log(`  (b) verify BUNDLE.001 …       ${b.toFixed(2)} s  (${all(times.parts)})`);
  console.log(`  (c) cat PARTS | verify -      ${c.toFixed(2)} s  (${all(times.stdin)})`);
  console.log(`  ratio (b)/(a) = ${(b / a).toFixed(2)}, (c)/(a) = ${(c / a).toFixed(2)}`);
}

/**
 * The delta for one changed image: the full bundle unpacked into a fresh
 * registry with --receipt, one image changed upstream (its top layer replaced
 * by a new 3 MiB one on the same base, same tag), a delta built with --base
 * RECEIPT and one with --base FULL_BUNDLE, each unpacked into a registry that
 * holds the full bundle. The upstream tag is put back afterwards.
 */
async function benchDelta(reg: TestRegistry, dir: string, fullBuildSeconds: number): Promise<void> {
  const bundle = path.join(dir, 'b.tar');
  const pub = path.join(dir, 'k.pub');
  const key = path.join(dir, 'k.key');
  const receipt = path.join(dir, 'receipt.json');
  const tR = await startRegistry();
  const tB = await startRegistry();
  const seeder = new Seeder({ url: reg.url });
  const original = await seeder.getManifest('bench/app0', 'v1');
  if (original.status !== 200) throw new Error(`GET bench/app0:v1: HTTP ${original.status}`);
  try {
    const unpackArgs = (b: string, t: TestRegistry, files: string, extra: string[] = []) => [AIRLOCK, 'unpack', b, '--pub', pub, '--registry', t.host, '--files-dir', files, ...extra];
    const filesR = await makeTempDir('airlock-bench-files-');
    const filesB = await makeTempDir('airlock-bench-files-');
    const fullR = await timed(process.execPath, unpackArgs(bundle, tR, filesR, ['--receipt', receipt]));
    const fullB = await timed(process.execPath, unpackArgs(bundle, tB, filesB));

    // app0 rebuilt upstream: same base and first two layers, a new 3 MiB top layer, retagged v1.
    const layers = [await makeLayer('base-a', 8 * MB), await makeLayer('img0-1', 2 * MB), await makeLayer('img0-2', 3 * MB), await makeLayer('img0-new', 3 * MB)];
    await seeder.pushImage('bench/app0', 'v1', { layers, format: 'oci' });

    const buildDelta = (out: string, base: string, cache: string) =>
      timed(process.execPath, [AIRLOCK, 'build', path.join(dir, 'm.yaml'), '-o', out, '--key', key, '--cache', cache, '--base', base]);
    const dR = path.join(dir, 'delta-receipt.tar');
    const dB = path.join(dir, 'delta-bundle.tar');
    const buildR = await buildDelta(dR, receipt, path.join(dir, 'cache-delta-r'));
    const buildB = await buildDelta(dB, bundle, path.join(dir, 'cache-delta-b'));
    const unpackR = await run(process.execPath, unpackArgs(dR, tR, filesR));
    const unpackB = await run(process.execPath, unpackArgs(dB, tB, filesB));

    const mib = (f: string) => statSync(f).size / MB;
    const row = (label: string, value: string) => console.log(`  ${label.padEnd(38)}${value}`);
    const unpackRow = (label: string, u: Ran, full: Timed) =>
      u.code === 0
        ? row(label, `${u.seconds.toFixed(2)} s  ratio delta/full unpack = ${(u.seconds / full.seconds).toFixed(3)}`)
        : row(label, `FAILED: exited ${u.code} after ${u.seconds.toFixed(2)} s\n${u.stderr.trimEnd().replace(/^/gm, '    ')}`);
    console.log(`\ndelta for one changed image out of ${IMAGES} (its top layer replaced by a new 3 MiB one on the same base, same tag):`);
    row('full bundle', `${mib(bundle).toFixed(2)} MiB`);
    row('delta --base RECEIPT', `${mib(dR).toFixed(2)} MiB  (${((mib(dR) / mib(bundle)) * 100).toFixed(2)} % of the full bundle)`);
    row('delta --base FULL_BUNDLE', `${mib(dB).toFixed(2)} MiB  (${((mib(dB) / mib(bundle)) * 100).toFixed(2)} % of the full bundle)`);
    row('airlock build --base RECEIPT', `${buildR.seconds.toFixed(2)} s  (cold cache; ratio to the full cold build ${(buildR.seconds / fullBuildSeconds).toFixed(3)})`);
    row('airlock build --base FULL_BUNDLE', `${buildB.seconds.toFixed(2)} s  (cold cache; ratio to the full cold build ${(buildB.seconds / fullBuildSeconds).toFixed(3)})`);
    row('airlock unpack, full, --receipt R', `${fullR.seconds.toFixed(2)} s  (fresh registry)`);
    unpackRow('airlock unpack, delta from R', unpackR, fullR);
    row('airlock unpack, full', `${fullB.seconds.toFixed(2)} s  (another fresh registry)`);
    unpackRow('airlock unpack, delta from the bundle', unpackB, fullB);
  } finally {
    await seeder.pushManifest('bench/app0', 'v1', original.body, original.headers['content-type'] ?? MediaTypes.ociManifest);
    await seeder.close();
    await tR.stop();
    await tB.stop();
  }
}

async function skopeoLoop(refs: string[], ociDir: string): Promise<number> {
  const start = process.hrtime.bigint();
  for (const [i, r] of refs.entries()) {
    await skopeoOk(['copy', '--quiet', '--src-tls-verify=false', `docker://${r}`, `oci:${ociDir}:app${i}`]);
  }
  return Number(process.hrtime.bigint() - start) / 1e9;
}

function manifestFor(refs: string[]): string {
  return `apiVersion: airlock/v1\nkind: Bundle\nmetadata: {name: bench}\nspec:\n  images:\n${refs.map((r) => `    - ${r}\n`).join('')}`;
}

/**
 * sync against a `skopeo copy docker://… docker://…` loop: each into a fresh
 * registry from the same upstream, sync with a cold cache; then a second sync
 * (nothing to do), and a sync into a fresh registry from a warm cache.
 */
async function benchSync(refs: string[], dir: string): Promise<void> {
  const t1 = await startRegistry();
  const t2 = await startRegistry();
  const t3 = await startRegistry();
  try {
    const files = await makeTempDir('airlock-bench-files-');
    const args = (t: TestRegistry, cache: string) => [AIRLOCK, 'sync', path.join(dir, 'm.yaml'), '--registry', t.host, '--files-dir', files, '--cache', cache];
    const first = await timed(process.execPath, args(t1, path.join(dir, 'sync-cache')));
    const second = await timed(process.execPath, args(t1, path.join(dir, 'sync-cache')));
    const warm = await timed(process.execPath, args(t3, path.join(dir, 'sync-cache')));
    const skStart = process.hrtime.bigint();
    for (const r of refs) {
      const name = r.slice(r.indexOf('/') + 1);
      await skopeoOk(['copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${r}`, `docker://${t2.host}/${name}`]);
    }
    const sk = Number(process.hrtime.bigint() - skStart) / 1e9;
    console.log('\nsync into a fresh registry vs skopeo copy docker://… docker://… loop, loopback:');
    console.log(`  airlock sync, cold cache     ${first.seconds.toFixed(2)} s  (peak RSS ${first.peakRssMB.toFixed(0)} MiB)`);
    console.log(`  skopeo copy × ${IMAGES}            ${sk.toFixed(2)} s`);
    console.log(`  ratio sync/skopeo = ${(first.seconds / sk).toFixed(2)}`);
    console.log(`  airlock sync, second         ${second.seconds.toFixed(2)} s  (ratio second/first ${(second.seconds / first.seconds).toFixed(3)})`);
    console.log(`  airlock sync, warm cache     ${warm.seconds.toFixed(2)} s  (into another fresh registry)`);
  } finally {
    await t1.stop();
    await t2.stop();
    await t3.stop();
  }
}

/**
 * Cold builds (a fresh cache each) against skopeo copy loops into fresh OCI
 * folders, RUNS of each, interleaved; `b.tar` is kept from the first for the
 * sections after. Returns the build medians.
 */
async function benchBuild(label: string, reg: TestRegistry, refs: string[], dir: string, manifest: string, tag: string, target: string): Promise<number> {
  const builds: Timed[] = [];
  const sk: number[] = [];
  const regCpu: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const out = path.join(dir, i === 0 && tag === '' ? 'b.tar' : `b${tag}-${i}.tar`);
    const before = cpuOf(reg.pid);
    builds.push(await timed(process.execPath, [AIRLOCK, 'build', manifest, '-o', out, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, `cache${tag}-${i}`)]));
    regCpu.push(cpuOf(reg.pid) - before);
    sk.push(await skopeoLoop(refs, path.join(dir, `skopeo-oci${tag}-${i}`)));
  }
  const b = builds.map((t) => t.seconds);
  console.log(`\n${label} (${RUNS} runs, median first):`);
  console.log(`  airlock build, cold cache   ${fmt(b, 's')}  peak RSS ${median(builds.map((t) => t.peakRssMB)).toFixed(0)} MiB`);
  console.log(`    CPU: airlock ${fmt(builds.map((t) => t.cpuSeconds), 's')}, the registry ${fmt(regCpu, 's')} (2 cores shared)`);
  console.log(`  skopeo copy × ${IMAGES}           ${fmt(sk, 's')}`);
  console.log(`  ratio build/skopeo = ${(median(b) / median(sk)).toFixed(2)} (target ${target})`);
  rows.push({ measure: label, airlock: fmt(b, 's'), against: fmt(sk, 's'), ratio: (median(b) / median(sk)).toFixed(2), target });
  return median(b);
}

/**
 * The 1 GiB layer: build (peak RSS), verify of its bundle against `openssl
 * sha256` of the same file, and unpack into a fresh registry against one raw
 * `curl -T` PUT of the layer into another, RUNS of each.
 */
async function benchBig(reg: TestRegistry, dir: string): Promise<void> {
  console.log('\npushing an image with one 1 GiB layer …');
  const { ref, file, digest } = await pushBigImage(reg, dir, 1024 * MB);
  await writeFile(path.join(dir, 'big.yaml'), manifestFor([ref]));
  const bundle = path.join(dir, 'big.tar');
  // Against what writing the layer costs this machine without airlock: once (curl into the bundle's
  // place) and twice (curl | tee into a cache file and the bundle's place, as build does), each synced
  // as the bundle is. The first is the floor of a build that wrote each byte once and kept no cache.
  // RUNS of each, interleaved; everything written is removed and synced away before the next.
  const blobUrl = `${reg.url}/v2/bench/big/blobs/${digest}`;
  const once1 = path.join(dir, 'curl-once.layer');
  const twice = [path.join(dir, 'curl-cache.layer'), path.join(dir, 'curl-bundle.layer')];
  const builds: Timed[] = [];
  const w1: number[] = [];
  const w2: number[] = [];
  const clean = async (...files: string[]) => timed('sh', ['-c', 'rm -rf "$@" && sync', 'sh', ...files]);
  for (let i = 0; i < RUNS; i++) {
    await clean(bundle, path.join(dir, 'bigcache'));
    builds.push(await timed(process.execPath, [AIRLOCK, 'build', path.join(dir, 'big.yaml'), '-o', bundle, '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'bigcache')]));
    await clean(path.join(dir, 'bigcache'));
    w1.push((await timed('sh', ['-c', 'curl -sf -o "$2" "$1" && sync "$2"', 'sh', blobUrl, once1])).seconds);
    await clean(once1);
    w2.push((await timed('sh', ['-c', 'curl -sf "$1" | tee "$2" > "$3" && sync "$3"', 'sh', blobUrl, ...twice])).seconds);
    await clean(...twice);
  }
  const bb = builds.map((t) => t.seconds);
  console.log(`  airlock build of a 1 GiB layer ${fmt(bb, 's')}, peak RSS ${median(builds.map((t) => t.peakRssMB)).toFixed(0)} MiB, CPU ${fmt(builds.map((t) => t.cpuSeconds), 's')}`);
  console.log(`  curl -o, then sync of the file (bytes written once):          ${fmt(w1, 's')}`);
  console.log(`  curl | tee CACHE > BUNDLE, then sync BUNDLE (written twice):  ${fmt(w2, 's')}`);
  console.log(`  ratio build / written twice = ${(median(bb) / median(w2)).toFixed(2)}, build / written once = ${(median(bb) / median(w1)).toFixed(2)}`);
  rows.push({ measure: 'build of a 1 GiB layer vs curl \\| tee CACHE > BUNDLE, then sync', airlock: fmt(bb, 's'), against: `${fmt(w2, 's')}; written once: ${fmt(w1, 's')}`, ratio: (median(bb) / median(w2)).toFixed(2), target: '—' });
  const size = statSync(bundle).size;
  const gib = (bytes: number, s: number) => bytes / (1024 * MB) / s;

  const verify: number[] = [];
  const openssl: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    verify.push(gib(size, (await timed(process.execPath, [AIRLOCK, 'verify', bundle, '--pub', path.join(dir, 'k.pub')])).seconds));
    openssl.push(gib(size, (await timed('openssl', ['sha256', bundle])).seconds));
  }
  console.log(`  verify of its bundle          ${fmt(verify, 'GiB/s')}`);
  console.log(`  openssl sha256 of the same    ${fmt(openssl, 'GiB/s')}`);
  rows.push({ measure: `verify, ${(size / (1024 * MB)).toFixed(2)} GiB bundle (GiB/s)`, airlock: fmt(verify, 'GiB/s'), against: `openssl sha256 ${fmt(openssl, 'GiB/s')}`, ratio: (median(verify) / median(openssl)).toFixed(2), target: '≥ 1.4 GiB/s' });

  const unpack: Timed[] = [];
  const again: number[] = [];
  const curl: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const t = await startRegistry();
    const c = await startRegistry();
    try {
      const args = [AIRLOCK, 'unpack', bundle, '--pub', path.join(dir, 'k.pub'), '--registry', t.host, '--files-dir', await makeTempDir('airlock-bench-files-')];
      unpack.push(await timed(process.execPath, args));
      again.push((await timed(process.execPath, args)).seconds);
      curl.push(await rawPut(c, file, digest));
    } finally {
      await t.stop();
      await c.stop();
    }
  }
  const layer = statSync(file).size;
  const u = unpack.map((x) => gib(layer, x.seconds));
  const p = curl.map((x) => gib(layer, x));
  console.log(`  unpack of it (fresh registry) ${fmt(u, 'GiB/s')} of layer, peak RSS ${median(unpack.map((x) => x.peakRssMB)).toFixed(0)} MiB, CPU ${fmt(unpack.map((x) => x.cpuSeconds), 's')}`);
  console.log(`  curl -T PUT of the layer      ${fmt(p, 'GiB/s')}`);
  console.log(`  ratio unpack/raw PUT rate = ${(median(u) / median(p)).toFixed(2)} (target ≥ 0.9)`);
  console.log(`  second unpack                 ${fmt(again, 's')}`);
  rows.push({ measure: 'unpack of a 1 GiB layer vs one raw curl -T PUT of it (rate)', airlock: fmt(u, 'GiB/s'), against: fmt(p, 'GiB/s'), ratio: (median(u) / median(p)).toFixed(2), target: '≥ 0.9' });
}

/** One monolithic upload of `file` with curl (POST for the session, then PUT ?digest= with the body): the registry's own ingest rate. */
async function rawPut(reg: TestRegistry, file: string, digest: string): Promise<number> {
  const agent = new Agent();
  try {
    const post = await request(`${reg.url}/v2/raw/put/blobs/uploads/`, { method: 'POST', dispatcher: agent });
    await post.body.dump();
    const put = new URL(String(post.headers.location), reg.url);
    put.searchParams.set('digest', digest);
    const r = await timed('curl', ['-sS', '-f', '-o', '/dev/null', '-T', file, '-H', 'Content-Type: application/octet-stream', put.toString()]);
    return r.seconds;
  } finally {
    await agent.close();
  }
}

async function main(): Promise<void> {
  const reg = await startRegistry();
  const dir = await makeTempDir('airlock-bench-');
  try {
    console.log(`seeding ${IMAGES} images × 4 layers (2 shared 8 MiB bases + 2, 3, 4 MiB own) into ${reg.url} …`);
    const { refs, bytes } = await seedImages(reg);
    console.log(`  ${(bytes / MB).toFixed(0)} MiB of unique layers; ${RUNS} runs of each measure (--runs=N)`);
    const manifest = path.join(dir, 'm.yaml');
    await writeFile(manifest, manifestFor(refs));
    await timed(process.execPath, [AIRLOCK, 'keygen', '--out', path.join(dir, 'k')]);

    const cold = await benchBuild('build vs a skopeo copy loop into one OCI dir, loopback', reg, refs, dir, manifest, '', '≤ 0.9');
    const warm = await timed(process.execPath, [AIRLOCK, 'build', manifest, '-o', path.join(dir, 'b-warm.tar'), '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, 'cache-0')]);
    console.log(`  airlock build, warm cache   ${warm.seconds.toFixed(2)} s (CPU ${warm.cpuSeconds.toFixed(2)} s)`);

    // A registry across a network: every request answered 30 ms late (a proxy in front of the same registry).
    const proxy = await startFaultProxy(reg.url, { rules: [{ kind: 'delay', ms: 30, match: /./, times: Number.MAX_SAFE_INTEGER }] });
    try {
      const viaProxy = refs.map((r) => r.replace(reg.host, proxy.host));
      await writeFile(path.join(dir, 'm-wan.yaml'), manifestFor(viaProxy));
      await benchBuild('build vs a skopeo copy loop, 30 ms added to every request', reg, viaProxy, dir, path.join(dir, 'm-wan.yaml'), '-wan', '≤ 0.4');
    } finally {
      await proxy.stop();
    }

    await benchUnpack(refs, dir);
    await benchSync(refs, dir);
    await benchSplit(dir);
    await benchDelta(reg, dir, cold);
    if (big) await benchBig(reg, dir);
  } finally {
    await reg.stop();
  }
  // Last: the figure most sensitive to load on the machine, measured after everything else is done.
  if (big) rows.push(...(await benchVerifyMany({ runs: RUNS })));
}

if (process.argv.includes('--verify-only')) rows.push(...(await benchVerifyMany({ runs: RUNS })));
else if (!process.argv.includes('--startup-only')) await main();
if (!process.argv.includes('--verify-only')) await benchStartup();
printSummary();

function printSummary(): void {
  console.log('\nsummary (median of the runs, each run in parentheses):\n');
  console.log('| measure | airlock | against | ratio | target |\n| --- | --- | --- | --- | --- |');
  for (const r of rows) console.log(`| ${r.measure} | ${r.airlock} | ${r.against} | ${r.ratio} | ${r.target} |`);
}

/**
 * Start-up: `--version` of each way to run airlock, against bare `node -e 0`
 * (median of RUNS each, interleaved so that load on the machine hits all alike),
 * and peak RSS where GNU time is installed. The release files (npm run release)
 * are run from a copy outside the checkout, as they are inside the air gap.
 */
async function benchStartup(): Promise<void> {
  // Imported here, not at the top: this part stays apart from the rest of the file.
  const { spawnSync } = await import('node:child_process');
  const { copyFile, mkdtemp, rm } = await import('node:fs/promises');
  const os = await import('node:os');
  const RUNS = 11;
  const root = path.resolve(import.meta.dirname, '..');
  const release = path.join(root, 'release');
  const cases: Array<{ name: string; argv: string[] }> = [
    { name: 'node -e 0 (bare)', argv: [process.execPath, '-e', '0'] },
    { name: 'bin/airlock --version', argv: [process.execPath, AIRLOCK, '--version'] },
  ];
  const dir = await mkdtemp(path.join(os.tmpdir(), 'airlock-bench-startup-'));
  try {
    const files = ['airlock.mjs', 'airlock-linux-x64'];
    const have = files.every((f) => statSync(path.join(release, f), { throwIfNoEntry: false }));
    if (have) {
      for (const f of files) await copyFile(path.join(release, f), path.join(dir, f));
      spawnSync('chmod', ['+x', path.join(dir, 'airlock-linux-x64')]);
      cases.push({ name: 'node airlock.mjs --version', argv: [process.execPath, path.join(dir, 'airlock.mjs'), '--version'] });
      cases.push({ name: 'airlock-linux-x64 --version', argv: [path.join(dir, 'airlock-linux-x64'), '--version'] });
    }
    const times = cases.map(() => [] as number[]);
    for (let i = 0; i < RUNS; i++) {
      cases.forEach((c, k) => {
        const t = process.hrtime.bigint();
        const r = spawnSync(c.argv[0] ?? '', c.argv.slice(1), { cwd: dir, stdio: 'ignore' });
        if (r.status !== 0) throw new Error(`${c.name}: exit ${r.status}`);
        times[k]?.push(Number(process.hrtime.bigint() - t) / 1e6);
      });
    }
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1] ?? NaN;
    const gnuTime = statSync('/usr/bin/time', { throwIfNoEntry: false }) !== undefined;
    const rss = (argv: string[]) => {
      if (!gnuTime) return '';
      const r = spawnSync('/usr/bin/time', ['-f', '%M', ...argv], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'ignore', 'pipe'] });
      return `, peak RSS ${(Number(r.stderr.trim().split('\n').pop()) / 1024).toFixed(0)} MiB`;
    };
    const bare = median(times[0] ?? []);
    console.log(`\nstart-up, median of ${RUNS} runs (from ${dir}):`);
    cases.forEach((c, k) => {
      const m = median(times[k] ?? []);
      console.log(`  ${c.name.padEnd(30)} ${m.toFixed(0).padStart(5)} ms  (${(m / bare).toFixed(2)} × bare node${rss(c.argv)})`);
      if (k > 0) rows.push({ measure: `${c.name} wall time`, airlock: `${(m / 1000).toFixed(3)} s`, against: `node -e 0: ${(bare / 1000).toFixed(3)} s`, ratio: (m / bare).toFixed(2), target: '≤ 0.08 s' });
    });
    if (!have) console.log('  release files: run `npm run release` first to time release/airlock.mjs and release/airlock-linux-x64');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
