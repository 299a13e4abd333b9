// CI, after `npm run release`: the release files behave exactly like bin/airlock
// (SPEC §8), run the way they are run inside the air gap.
//
//   node --import tsx scripts/release-check.ts
//
// A bundle is built with bin/airlock from a seeded local "internet" (a real
// docker-registry and nginx); it, its key and the release files are copied to
// a folder outside the checkout with no node_modules above it. Then bin/airlock,
// `node airlock.mjs` and airlock-linux-x64 each run the same commands with the
// same relative arguments, in folders of their own: verify, inspect, unpack
// into a real registry (one each, started fresh), a reproducible build, and
// the errors a user meets first. Every output, the unpacked config and the
// receipt must be the same; the registry address is the only thing replaced.
// Exits 1 on any difference, printing both sides.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { startRegistry } from '../test/support/registry.js';
import { startUpstream } from '../test/support/upstream.js';
import { assertNoNodeModulesAbove, checkout, mjs, runWith, sea, type Ran, type Runner } from './release/runners.js';

const root = path.resolve(import.meta.dirname, '..');
const EPOCH = '1767225600';

interface Step {
  name: string;
  args: string[];
  /** What must be the same: code and stdout always; stderr where it says something fixed. */
  compareStderr?: boolean;
  /** Runs against a registry of its own; its host is replaced in every output. */
  registry?: boolean;
  env?: NodeJS.ProcessEnv;
  stdin?: string;
  /** After the run: more output to compare (files it wrote). */
  collect?: (dir: string, norm: (text: string) => string) => Promise<string>;
  /** Puts stdout in an order that does not depend on which concurrent push finished first. */
  normalize?: (stdout: string) => string;
}

/** Every file under `dir`, named and sorted after `norm` (file names hold the registry's address). */
async function treeText(dir: string, norm: (text: string) => string): Promise<string> {
  const out: string[] = [];
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const f = path.join(e.parentPath, e.name);
    out.push(norm(`--- ${path.relative(dir, f)}\n${await readFile(f, 'utf8')}`));
  }
  return out.sort().join('\n');
}

const sha256 = async (file: string) => createHash('sha256').update(await readFile(file)).digest('hex');

const STEPS: Step[] = [
  { name: 'version', args: ['--version'], compareStderr: true },
  { name: 'help', args: ['--help'], compareStderr: true },
  { name: 'unpack help', args: ['unpack', '--help'], compareStderr: true },
  { name: 'verify', args: ['verify', 'b.tar', '--pub', 'k.pub'] },
  { name: 'verify --json', args: ['verify', 'b.tar', '--pub', 'k.pub', '--json'] },
  // Entries hashed on threads: a release file is one file, and the threads' code must come with it.
  { name: 'verify --jobs 2', args: ['verify', 'b.tar', '--pub', 'k.pub', '--jobs', '2', '--json'] },
  { name: 'verify --jobs 0', args: ['verify', 'b.tar', '--pub', 'k.pub', '--jobs', '0'], compareStderr: true },
  { name: 'verify from stdin', args: ['verify', '-', '--pub', 'k.pub', '--json'], stdin: 'not a bundle', compareStderr: true },
  { name: 'verify, wrong key', args: ['verify', 'b.tar', '--pub', 'other.pub'], compareStderr: true },
  { name: 'verify, no key', args: ['verify', 'b.tar'], compareStderr: true },
  { name: 'inspect', args: ['inspect', 'b.tar'] },
  { name: 'inspect --json', args: ['inspect', 'b.tar', '--json'] },
  { name: 'diff', args: ['diff', 'b.tar', 'b.tar', '--json'] },
  {
    name: 'report',
    args: ['report', 'b.tar', '--pub', 'k.pub', '-o', 'r.html', '--cyclonedx', 'r.cdx.json', '--json'],
    env: { SOURCE_DATE_EPOCH: EPOCH },
    collect: async (dir) => `--- r.html\n${await readFile(path.join(dir, 'r.html'), 'utf8')}\n--- r.cdx.json\n${await readFile(path.join(dir, 'r.cdx.json'), 'utf8')}`,
  },
  // The manifest schema is carried inside the release files: its messages must be the same.
  { name: 'build, manifest error', args: ['build', 'bad.yaml', '--dry-run'], compareStderr: true },
  {
    name: 'build (reproducible)',
    args: ['build', 'm.yaml', '-o', 'rebuilt.tar', '--key', 'k.key', '--cache', 'cache', '--json'],
    env: { SOURCE_DATE_EPOCH: EPOCH },
    collect: async (dir) => `rebuilt.tar sha256 ${await sha256(path.join(dir, 'rebuilt.tar'))}\n${await readFile(path.join(dir, 'rebuilt.tar.sha256'), 'utf8')}`,
  },
  {
    name: 'unpack',
    args: ['unpack', 'b.tar', '--pub', 'k.pub', '--registry', 'REGISTRY/rc', '--files-dir', 'files', '--emit-config', 'config', '--fileserver-url', 'http://files.internal:8080', '--receipt', 'receipt.json', '--json'],
    registry: true,
    normalize: (stdout) => {
      const report = JSON.parse(stdout) as { items: Array<{ target: string }> };
      report.items.sort((a, b) => a.target.localeCompare(b.target));
      return JSON.stringify(report, null, 2);
    },
    collect: async (dir, norm) => `${await treeText(path.join(dir, 'files'), norm)}\n${await treeText(path.join(dir, 'config'), norm)}\n--- receipt.json\n${norm(await readFile(path.join(dir, 'receipt.json'), 'utf8'))}`,
  },
  { name: 'unpack again', args: ['unpack', 'b.tar', '--pub', 'k.pub', '--registry', 'REGISTRY/rc', '--files-dir', 'files'], registry: true },
];

async function main(): Promise<void> {
  const started = Date.now();
  const release = path.join(root, 'release');
  // Not makeTempDir: that one is removed at exit, and a failed check leaves it for a look.
  const work = await mkdtemp(path.join(os.tmpdir(), 'airlock-release-check-'));
  if (!path.relative(root, work).startsWith('..')) throw new Error(`${work} is inside the checkout`);
  assertNoNodeModulesAbove(work);
  const up = await startUpstream();
  const registries: Array<{ stop(): Promise<void> }> = [];
  let failed = 0;
  try {
    // What crosses the gap, checked as the person carrying it would.
    const carried = path.join(work, 'carried');
    await mkdir(carried);
    for (const f of ['airlock.mjs', 'airlock-linux-x64', 'SHA256SUMS']) await copyFile(path.join(release, f), path.join(carried, f));
    execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: carried, stdio: 'inherit' });
    for (const f of ['airlock.mjs', 'airlock-linux-x64']) execFileSync('chmod', ['+x', path.join(carried, f)]);

    const src = path.join(work, 'src');
    await mkdir(src);
    const ok = (r: Ran, what: string) => {
      if (r.code !== 0) throw new Error(`${what}: exit ${r.code}\n${r.stderr}`);
    };
    ok(await runWith(checkout, ['keygen', '--out', 'k'], { cwd: src }), 'keygen');
    ok(await runWith(checkout, ['keygen', '--out', 'other'], { cwd: src }), 'keygen');
    await writeFile(path.join(src, 'm.yaml'), up.manifest());
    await writeFile(path.join(src, 'bad.yaml'), 'apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: x\nspec:\n  imagez: []\n');
    ok(await runWith(checkout, ['build', 'm.yaml', '-o', 'b.tar', '--key', 'k.key', '--cache', 'cache'], { cwd: src, env: { SOURCE_DATE_EPOCH: EPOCH } }), 'build');

    const runners: Runner[] = [checkout, mjs(carried), sea(carried)];
    const results = new Map<string, Map<string, string>>();
    for (const r of runners) {
      const dir = path.join(work, r.name.replace(/\W+/g, '-'));
      await mkdir(dir);
      for (const f of ['b.tar', 'k.key', 'k.pub', 'other.pub', 'm.yaml', 'bad.yaml']) await copyFile(path.join(src, f), path.join(dir, f));
      await mkdir(path.join(dir, 'files'));
      const reg = await startRegistry();
      registries.push(reg);
      const mine = new Map<string, string>();
      results.set(r.name, mine);
      // The registry's port also appears alone (network policies in the emitted config).
      const port = new RegExp(`(?<![0-9a-f])${reg.port}(?![0-9a-f])`, 'g');
      const norm = (text: string) => text.split(reg.host).join('REGISTRY').split(dir).join('DIR').replace(port, 'PORT');
      for (const s of STEPS) {
        const args = s.args.map((a) => a.replace('REGISTRY', reg.host));
        const ran = await runWith(r, args, { cwd: dir, ...(s.env && { env: s.env }), ...(s.stdin !== undefined && { stdin: s.stdin }) });
        const stdout = ran.code === 0 && s.normalize ? s.normalize(ran.stdout) : ran.stdout;
        const extra = ran.code === 0 && s.collect ? await s.collect(dir, norm) : '';
        mine.set(s.name, `${norm(`exit ${ran.code}\n--- stdout\n${stdout}${s.compareStderr ? `--- stderr\n${ran.stderr}` : ''}`)}${extra ? `\n${extra}` : ''}`);
        if (ran.code !== 0 && !s.compareStderr) mine.set(s.name, `${mine.get(s.name)}\n--- stderr (failed)\n${norm(ran.stderr)}`);
      }
    }

    const ref = results.get(checkout.name) ?? new Map<string, string>();
    for (const s of STEPS) {
      const want = ref.get(s.name) ?? '';
      const codes = runners.map((r) => /^exit (\S+)/.exec(results.get(r.name)?.get(s.name) ?? '')?.[1]).join('/');
      const diverged = runners.slice(1).filter((r) => results.get(r.name)?.get(s.name) !== want);
      console.log(`${diverged.length === 0 ? 'same' : 'DIFF'}  ${s.name.padEnd(24)} exit ${codes}`);
      for (const r of diverged) {
        failed++;
        console.log(`  ${r.name} differs from bin/airlock:\n  --- bin/airlock\n${indent(want)}\n  --- ${r.name}\n${indent(results.get(r.name)?.get(s.name) ?? '')}`);
      }
    }
  } finally {
    await Promise.all(registries.map((r) => r.stop()));
    await up.stop();
    if (failed === 0) await rm(work, { recursive: true, force: true });
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  if (failed > 0) {
    console.error(`release check FAILED: ${failed} output(s) differ from bin/airlock (${secs} s); left ${work} for a look`);
    process.exit(1);
  }
  console.log(`release check passed: airlock.mjs and airlock-linux-x64 behave like bin/airlock on ${STEPS.length} commands (${secs} s, ${os.tmpdir()})`);
}

const indent = (t: string) => t.split('\n').map((l) => `    ${l}`).join('\n');

await main();
