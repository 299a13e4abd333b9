// SPEC §7: a bundle split into parts (build --split-size) is the unsplit
// bundle cut into pieces; verify, inspect, unpack and serve read the parts as
// one, and every missing, short, swapped, extra or damaged part is refused by name.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { runAirlock } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { ACCEPT_ALL_MANIFESTS } from './support/seed.js';
import { startServe, type Served } from './support/serve.js';
import { flip } from './support/tamper.js';
import { run, runOk } from './support/tools.js';
import { AIRLOCK } from './support/cli.js';
import { startUpstream, type Upstream } from './support/upstream.js';

const SPLIT = 300 * 1024;
const env = { ...process.env, SOURCE_DATE_EPOCH: '1700000000' };

let up: Upstream;
let work: string;
let pub: string;
let whole: string;
/** The split bundle's name (no such file: its parts are parts/b.tar.001, …). */
let split: string;
let partNames: string[];

before(async () => {
  up = await startUpstream();
  work = await makeTempDir('airlock-volumes-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  pub = path.join(work, 'k.pub');
  await writeFile(path.join(work, 'm.yaml'), up.manifest());
  const common = [path.join(work, 'm.yaml'), '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache')];
  whole = path.join(work, 'whole.tar');
  const w = await runAirlock(['build', ...common, '-o', whole], undefined, { env });
  assert.equal(w.code, 0, w.stderr);
  await mkdir(path.join(work, 'parts'));
  split = path.join(work, 'parts', 'b.tar');
  const s = await runAirlock(['build', ...common, '-o', split, '--split-size', '300K'], undefined, { env });
  assert.equal(s.code, 0, s.stderr);
  partNames = (await readdir(path.join(work, 'parts'))).filter((n) => /^b\.tar\.\d+$/.test(n)).sort();
});
after(async () => up?.stop());

/** A copy of the parts (and BUNDLE.sha256) in a fresh folder, for one fault. */
async function copyParts(withSidecar = true): Promise<string> {
  const dir = await makeTempDir('airlock-volumes-case-');
  for (const n of [...partNames, ...(withSidecar ? ['b.tar.sha256'] : [])]) await copyFile(path.join(work, 'parts', n), path.join(dir, n));
  return path.join(dir, 'b.tar');
}

describe('build --split-size', () => {
  it('writes BUNDLE.001, … each exactly SIZE bytes but the last, and no BUNDLE', async () => {
    assert.ok(partNames.length >= 4, `several parts: ${partNames.join(', ')}`);
    assert.deepEqual(partNames, partNames.map((_, i) => `b.tar.${String(i + 1).padStart(3, '0')}`));
    const files = await readdir(path.join(work, 'parts'));
    assert.deepEqual(files.sort(), [...partNames, 'b.tar.sha256'].sort(), 'no BUNDLE, no temp files');
    for (const [i, n] of partNames.entries()) {
      const { size } = await stat(path.join(work, 'parts', n));
      if (i < partNames.length - 1) assert.equal(size, SPLIT, n);
      else assert.ok(size > 0 && size <= SPLIT, n);
    }
  });

  it('parts that cat into the unsplit bundle of the same build, byte for byte', async () => {
    const parts = await Promise.all(partNames.map((n) => readFile(path.join(work, 'parts', n))));
    assert.ok(Buffer.concat(parts).equals(await readFile(whole)));
  });

  it('a BUNDLE.sha256 that sha256sum -c passes, one line per part, names without folders', async () => {
    const lines = (await readFile(`${split}.sha256`, 'utf8')).trim().split('\n');
    assert.deepEqual(lines.map((l) => l.split('  ')[1]), partNames);
    await runOk('sha256sum', ['-c', 'b.tar.sha256'], { cwd: path.join(work, 'parts') });
  });

  it('numbers past 999 with four digits (1K parts), still the same bytes and still verified', async () => {
    const dir = await makeTempDir('airlock-volumes-many-');
    const b = path.join(dir, 'b.tar');
    const r = await runAirlock(['build', path.join(work, 'm.yaml'), '-o', b, '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache'), '--split-size', '1K'], undefined, { env });
    assert.equal(r.code, 0, r.stderr);
    const names = (await readdir(dir)).filter((n) => /^b\.tar\.\d+$/.test(n));
    assert.ok(names.length > 1000, `${names.length} parts`);
    assert.ok(names.includes('b.tar.999') && names.includes('b.tar.1000') && !names.includes('b.tar.0999'));
    const ordered = names.sort((x, y) => Number(x.slice(6)) - Number(y.slice(6)));
    const bytes = Buffer.concat(await Promise.all(ordered.map((n) => readFile(path.join(dir, n)))));
    assert.ok(bytes.equals(await readFile(whole)));
    const v = await runAirlock(['verify', b, '--pub', pub]);
    assert.equal(v.code, 0, v.stderr);
  });

  it('refuses a bad --split-size with exit 2', async () => {
    for (const bad of ['0', '12X', '-1M', '1.5G', 'M']) {
      const r = await runAirlock(['build', path.join(work, 'm.yaml'), '-o', path.join(work, 'bad.tar'), '--key', path.join(work, 'k.key'), '--split-size', bad]);
      assert.equal(r.code, 2, `${bad}: ${r.stderr}`);
      assert.match(r.stderr, /--split-size/);
    }
  });
});

describe('reading the parts as one', () => {
  it('verify takes BUNDLE or BUNDLE.001', async () => {
    for (const arg of [split, `${split}.001`]) {
      const r = await runAirlock(['verify', arg, '--pub', pub]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^OK .*signature valid/);
    }
  });

  it('inspect lists the parts with their sizes', async () => {
    const r = await runAirlock(['inspect', split]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`parts\\s+${partNames.length}`));
    for (const n of partNames) assert.match(r.stdout, new RegExp(`${n.replace('.', '\\.')}\\s`));
    const j = JSON.parse((await runAirlock(['inspect', split, '--json'])).stdout) as { parts: Array<{ name: string; size: number }> };
    assert.deepEqual(j.parts.map((p) => p.name), partNames);
    assert.equal(j.parts[0]?.size, SPLIT);
  });

  it('unpack pushes every image with its upstream digest', async () => {
    const target: TestRegistry = await startRegistry();
    try {
      const files = await makeTempDir('airlock-volumes-files-');
      const r = await runAirlock(['unpack', split, '--pub', pub, '--registry', target.host, '--files-dir', files]);
      assert.equal(r.code, 0, r.stderr);
      const agent = new Agent(target.caFile ? { connect: { ca: await readFile(target.caFile) } } : {});
      try {
        for (const k of ['ociIndex', 'docker', 'dockerList', 'pause', 'trivyDb', 'falcoRules'] as const) {
          const s = up.refs[k];
          const [repo, tag] = s.path.split(':') as [string, string];
          const res = await request(`${target.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: ACCEPT_ALL_MANIFESTS }, dispatcher: agent });
          await res.body.dump();
          assert.equal(res.statusCode, 200, s.path);
          assert.equal(res.headers['docker-content-digest'], s.pushed.digest, s.path);
        }
      } finally {
        await agent.close();
      }
      for (const f of [up.opensearch, up.driver, up.tool]) assert.ok((await readFile(path.join(files, f.landing))).equals(f.bytes), f.landing);
    } finally {
      await target.stop();
    }
  });

  it('serve serves them', async () => {
    const served: Served = await startServe(split, pub);
    const agent = new Agent();
    try {
      const s = up.refs.ociIndex;
      const res = await request(`${served.registry}/v2/team/app/manifests/1.0`, { headers: { accept: ACCEPT_ALL_MANIFESTS }, dispatcher: agent });
      const body = Buffer.from(await res.body.arrayBuffer());
      assert.equal(res.statusCode, 200);
      assert.equal(res.headers['docker-content-digest'], s.pushed.digest);
      assert.ok(body.equals(s.pushed.manifest));
      const layer = await request(`${served.registry}/v2/team/docker-app/blobs/${up.sharedLayer}`, { dispatcher: agent });
      assert.equal(layer.statusCode, 200);
      assert.ok((await layer.body.arrayBuffer()).byteLength > 0);
    } finally {
      await agent.close();
      await served.stop();
    }
  });
});

interface Fault {
  name: string;
  sidecar?: boolean;
  make: (bundle: string) => Promise<void>;
  reason: (n: string[]) => RegExp;
}

const at = (b: string, i: number) => `${b}.${String(i).padStart(3, '0')}`;

const faults: Fault[] = [
  { name: 'a missing part', make: (b) => rm(at(b, 2)), reason: () => /part b\.tar\.002 is missing/ },
  { name: 'a missing last part', make: (b) => rm(at(b, partNames.length)), reason: (n) => new RegExp(`part ${n[n.length - 1]?.replace('.', '\\.') ?? ''} is missing`) },
  { name: 'a missing last part, no BUNDLE.sha256', sidecar: false, make: (b) => rm(at(b, partNames.length)), reason: (n) => new RegExp(`the last part ${n[n.length - 2]?.replace('.', '\\.') ?? ''}`) },
  { name: 'a truncated part', make: (b) => truncate(at(b, 2), SPLIT - 1000), reason: () => /part b\.tar\.002 is \d+ bytes but b\.tar\.001 is/ },
  { name: 'a truncated last part', make: (b) => truncate(at(b, partNames.length), 1024), reason: (n) => new RegExp(`part ${n[n.length - 1]?.replace('.', '\\.') ?? ''} does not match`) },
  {
    name: 'two parts swapped',
    make: async (b) => {
      await rename(at(b, 2), `${b}.tmp`);
      await rename(at(b, 3), at(b, 2));
      await rename(`${b}.tmp`, at(b, 3));
    },
    reason: () => /part b\.tar\.002 does not match b\.tar\.sha256/,
  },
  {
    name: 'two parts swapped, no BUNDLE.sha256',
    sidecar: false,
    make: async (b) => {
      await rename(at(b, 2), `${b}.tmp`);
      await rename(at(b, 3), at(b, 2));
      await rename(`${b}.tmp`, at(b, 3));
    },
    reason: () => /tar header|corrupt|is not named|out of order|missing/,
  },
  { name: 'an extra part BUNDLE.sha256 does not list', make: (b) => writeFile(at(b, partNames.length + 1), 'extra'), reason: (n) => new RegExp(`part b\\.tar\\.${String(n.length + 1).padStart(3, '0')} is extra`) },
  { name: 'an extra part after the end of the archive', sidecar: false, make: (b) => writeFile(at(b, partNames.length + 1), 'extra'), reason: (n) => new RegExp(`part b\\.tar\\.${String(n.length + 1).padStart(3, '0')} is extra: it follows the end of the archive`) },
  {
    name: 'a byte flipped in a part',
    make: async (b) => writeFile(at(b, 3), flip(await readFile(at(b, 3)), 12345)),
    reason: () => /part b\.tar\.003 does not match b\.tar\.sha256/,
  },
  { name: 'BUNDLE beside BUNDLE.001', make: (b) => copyFile(whole, b), reason: () => /both \S*b\.tar and \S*b\.tar\.001 exist/ },
];

describe('faults in the parts', () => {
  let target: TestRegistry;
  before(async () => (target = await startRegistry()));
  after(async () => target?.stop());

  for (const [i, f] of faults.entries()) {
    it(`refuses ${f.name}, naming the part (verify and unpack)`, async () => {
      const b = await copyParts(f.sidecar !== false);
      await f.make(b);
      const v = await runAirlock(['verify', b, '--pub', pub]);
      assert.equal(v.code, 1, v.stderr);
      assert.match(v.stderr, f.reason(partNames));
      const files = await makeTempDir('airlock-volumes-files-');
      const u = await runAirlock(['unpack', b, '--pub', pub, '--registry', `${target.host}/fault${i}`, '--files-dir', files]);
      assert.equal(u.code, 1, u.stderr);
      assert.match(u.stderr, f.reason(partNames));
      assert.deepEqual(await readdir(files), [], 'nothing written');
    });
  }
});

describe('verify - and inspect - (standard input, one pass)', () => {
  const sh = (script: string) => run('sh', ['-c', script], { cwd: path.join(work, 'parts') });
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const airlock = `${q(process.execPath)} ${q(AIRLOCK)}`;

  it('cat BUNDLE.0* | airlock verify - --pub PUB passes', async () => {
    const r = await sh(`cat b.tar.0* | ${airlock} verify - --pub ${q(pub)}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.toString(), /^OK -: signature valid .* verified from standard input/);
  });

  it('fails (exit 1) with a byte flipped in a part, naming the entry', async () => {
    const b = await copyParts();
    await writeFile(at(b, 3), flip(await readFile(at(b, 3)), 12345));
    const r = await run('sh', ['-c', `cat b.tar.0* | ${airlock} verify - --pub ${q(pub)}`], { cwd: path.dirname(b) });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /-: entry "\S+" is corrupt/);
  });

  it('fails (exit 1) with a part left out', async () => {
    const r = await sh(`cat b.tar.001 b.tar.003 | ${airlock} verify - --pub ${q(pub)}`);
    assert.equal(r.code, 1, r.stderr);
  });

  it('inspect - lists the bundle from standard input', async () => {
    const r = await runAirlock(['inspect', '-'], await readFile(whole));
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^bundle {3}-\nname {5}test-bundle/);
    assert.match(r.stdout, /signed {3}yes/);
  });
});

describe('a split bundle as a base', () => {
  it('diff and build --base take BUNDLE of a split bundle', async () => {
    const d = await runAirlock(['diff', whole, split, '--json']);
    assert.equal(d.code, 0, d.stderr);
    const delta = path.join(work, 'delta.tar');
    const b = await runAirlock(['build', path.join(work, 'm.yaml'), '-o', delta, '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache'), '--base', split, '--json'], undefined, { env });
    assert.equal(b.code, 0, b.stderr);
    const report = JSON.parse(b.stdout) as { external?: { blobs: number; files: number } };
    assert.ok((report.external?.blobs ?? 0) > 0 && report.external?.files === 3, JSON.stringify(report.external));
  });
});
