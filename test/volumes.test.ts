// SPEC §7: a bundle split into parts (build --split-size) is the unsplit
// bundle cut into pieces; verify, inspect, unpack and serve read the parts as
// one, and every missing, short, swapped, extra or damaged part is refused by name.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { copyFile, mkdir, open, readdir, readFile, rename, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { MAX_OPEN_PARTS } from '../src/bundle/handles.js';
import { BundleReader } from '../src/bundle/reader.js';
import { loadPublicKey } from '../src/sign/keys.js';
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

let many: Promise<string> | undefined;
/** The same build split into 1K parts (more than 999), built once. */
function manyParts(): Promise<string> {
  many ??= (async () => {
    const dir = await makeTempDir('airlock-volumes-many-');
    const b = path.join(dir, 'b.tar');
    const r = await runAirlock(['build', path.join(work, 'm.yaml'), '-o', b, '--key', path.join(work, 'k.key'), '--cache', path.join(work, 'cache'), '--split-size', '1K'], undefined, { env });
    assert.equal(r.code, 0, r.stderr);
    return b;
  })();
  return many;
}

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
    const b = await manyParts();
    const names = (await readdir(path.dirname(b))).filter((n) => /^b\.tar\.\d+$/.test(n));
    assert.ok(names.length > 1000, `${names.length} parts`);
    assert.ok(names.includes('b.tar.999') && names.includes('b.tar.1000') && !names.includes('b.tar.0999'));
    const ordered = names.sort((x, y) => Number(x.slice(6)) - Number(y.slice(6)));
    const bytes = Buffer.concat(await Promise.all(ordered.map((n) => readFile(path.join(path.dirname(b), n)))));
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
      // Written before it listens; stderr may still be on its way.
      while (!/parts read in order/.test(served.log())) await new Promise((r) => setTimeout(r, 20));
      assert.match(served.log(), new RegExp(`b\\.tar: a split bundle, ${partNames.length} parts read in order as one \\([^)]+\\): b\\.tar\\.001, b\\.tar\\.002`));
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

/** Bytes this process has read through read(2) and friends so far (Linux), page cache or not. */
async function bytesRead(): Promise<number> {
  return Number(/^rchar: (\d+)$/m.exec(await readFile('/proc/self/io', 'utf8'))?.[1]);
}

const openFds = () => readdirSync('/proc/self/fd').length;

/**
 * Bytes read through fs/promises file handles so far: the bundle's parts, and
 * not the reads of /dev/zero that warm the pass's buffers (src/bundle/readahead.ts
 * warmBuffers, through a plain fd), which rchar counts too.
 */
let handleBytes = 0;
{
  const probe = await open(process.execPath);
  const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
  await probe.close();
  const read = proto.read;
  proto.read = async function (this: unknown, ...args: unknown[]) {
    const r = await read.apply(this, args);
    handleBytes += r.bytesRead;
    return r;
  };
}

describe('one pass over the parts, a few open at a time', () => {
  it('verify checks every part against BUNDLE.sha256 in the pass that hashes the entries: each byte is read once', async () => {
    const total = (await stat(whole)).size;
    const key = await loadPublicKey(pub);
    const before = handleBytes;
    const r = await BundleReader.open(split, { pub: key });
    try {
      await r.verify();
    } finally {
      await r.close();
    }
    const read = handleBytes - before;
    // Hashing the parts at open and then verifying read every byte twice.
    assert.ok(read >= total && read < total * 1.5, `${read} bytes read for a ${total}-byte bundle`);
  });

  it('inspect reads bundle.json only, not the parts', async () => {
    const before = await bytesRead();
    const r = await BundleReader.open(split);
    await r.close();
    const read = (await bytesRead()) - before;
    assert.ok(read < SPLIT, `${read} bytes read`);
  });

  it('a damaged part is named by the pass as it leaves the part, before the entries after it are read, with the entry the damage is in', async () => {
    const b = await copyParts();
    // Near its end, in a layer that goes on into the next part: the part's line catches it before the layer's digest,
    // and the rest of that layer, read outside the pass, says the damage is in it.
    const p2 = at(b, 2);
    const bytes = await readFile(p2);
    await writeFile(p2, flip(bytes, bytes.length - 10));
    const r = await BundleReader.open(b, { pub: await loadPublicKey(pub) });
    const seen: string[] = [];
    r.onPart((p) => seen.push(p.name));
    try {
      await assert.rejects(r.verify(), /^BundleError: entry "blobs\/sha256\/[a-f0-9]{64}" is corrupt: its sha256 is [a-f0-9]{64}, bundle\.json says [a-f0-9]{64}; part b\.tar\.002 does not match b\.tar\.sha256 \(its sha256 is [a-f0-9]{64}\): it is damaged/);
    } finally {
      await r.close();
    }
    assert.deepEqual(seen, ['b.tar.001', 'b.tar.002']);
  });

  it('verifies a bundle of more than 1000 parts with a handful of files open', async () => {
    const b = await manyParts();
    const parts = (await readdir(path.dirname(b))).filter((n) => /^b\.tar\.\d+$/.test(n)).length;
    const base = openFds();
    let most = 0;
    const r = await BundleReader.open(b, { pub: await loadPublicKey(pub) });
    r.onPart(() => (most = Math.max(most, openFds() - base)));
    try {
      await r.verify();
    } finally {
      await r.close();
    }
    assert.ok(most > 0 && most <= 2 * MAX_OPEN_PARTS, `${most} more files open while reading ${parts} parts`);
    assert.equal(openFds(), base, 'all closed again');
  });

  it('refuses a part replaced on disk after the bundle was opened, once it is read again', async () => {
    const src = await manyParts();
    const dir = await makeTempDir('airlock-volumes-replaced-');
    for (const n of await readdir(path.dirname(src))) await copyFile(path.join(path.dirname(src), n), path.join(dir, n));
    const b = path.join(dir, 'b.tar');
    const r = await BundleReader.open(b, { pub: await loadPublicKey(pub) });
    try {
      await r.scan(); // every part read since b.tar.001: it is no longer open
      // The same bytes in another file: still not the file that was checked.
      await copyFile(at(b, 1), `${b}.new`);
      await rename(`${b}.new`, at(b, 1));
      await assert.rejects(r.verify(), /part b\.tar\.001 changed on disk since the bundle was opened/);
    } finally {
      await r.close();
    }
  });
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
