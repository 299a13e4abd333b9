// Hostile bundles: each one is refused by verify and by unpack, which writes
// nothing outside its folder and leaves no tag in the registry.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Agent, request } from 'undici';
import { runAirlock } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { flip, paxRecord, rewrite, splitInto, tarEntryBytes, writeEntries, type HostileEntry, type TailGames } from './support/tamper.js';
import { readTar, type TarEntry } from './support/tarball.js';
import { startUpstream, type Upstream } from './support/upstream.js';

let up: Upstream;
let target: TestRegistry;
let work: string;
let good: string;
/** A delta of the same manifest against `good`: everything external, the tar holds bundle.json, its signature and the layout. */
let delta: string;
let pub: string;
let keyFile: string;
/** Where traversal entries would land if anything followed them. */
let outside: string;
/** `good` and `delta` split into parts (SPEC §7), each with its BUNDLE.sha256: the stale sidecars for the split cases. */
let goodParts: string;
let deltaParts: string;
/** Part sizes that cut the bundle (about 1.3 MiB) and the delta (a few KiB) into several parts, through entries and headers alike. */
const PART = 256 * 1024;
const DELTA_PART = 2048;

before(async () => {
  up = await startUpstream();
  target = await startRegistry();
  work = await makeTempDir('airlock-tamper-');
  outside = path.join(work, 'outside');
  await mkdir(outside);
  assert.equal((await runAirlock(['keygen', '--out', path.join(work, 'k')])).code, 0);
  pub = path.join(work, 'k.pub');
  keyFile = path.join(work, 'k.key');
  await writeFile(path.join(work, 'm.yaml'), up.manifest());
  good = path.join(work, 'good.tar');
  const b = await runAirlock(['build', path.join(work, 'm.yaml'), '-o', good, '--key', keyFile, '--cache', path.join(work, 'cache')]);
  assert.equal(b.code, 0, b.stderr);
  delta = path.join(work, 'delta.tar');
  const d = await runAirlock(['build', path.join(work, 'm.yaml'), '-o', delta, '--key', keyFile, '--cache', path.join(work, 'cache'), '--base', good]);
  assert.equal(d.code, 0, d.stderr);
  goodParts = await splitInto(good, path.join(work, 'good-parts'), PART);
  deltaParts = await splitInto(delta, path.join(work, 'delta-parts'), DELTA_PART);
});
after(async () => {
  await up?.stop();
  await target?.stop();
});

const same = (e: TarEntry): HostileEntry => ({ name: e.name, data: e.data });
const isLayer = (e: TarEntry) => e.name.startsWith('blobs/') && e.size > 50_000;
const isFile = (e: TarEntry) => e.name.startsWith('files/');

function resign(bundleJson: Buffer, privatePem: string): Buffer {
  return Buffer.from(sign('sha256', bundleJson, { key: privatePem, dsaEncoding: 'der' }).toString('base64'));
}

interface Made extends TailGames {
  entries: HostileEntry[];
}

interface Case {
  name: string;
  reason: RegExp;
  make: (entries: TarEntry[]) => Promise<Made> | Made;
}

/** Puts a pax extended header holding `records` in front of the first file entry. */
function paxBeforeFile(es: TarEntry[], records: Buffer): HostileEntry[] {
  const i = es.findIndex(isFile);
  return [...es.slice(0, i).map(same), { name: 'PaxHeader/x', type: 'pax-header', data: records }, ...es.slice(i).map(same)];
}

/** A complete tar entry, then the end-of-archive marker: what a reader that stops at the first marker never sees. */
const hidden = () => Buffer.concat([tarEntryBytes('files/evil.sh', Buffer.from('echo evil\n')), Buffer.alloc(1024)]);

const otherKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;

const cases: Case[] = [
  {
    name: 'a flipped byte in a layer',
    reason: /entry "blobs\/sha256\/[a-f0-9]{64}" is corrupt: its sha256 is/,
    make: (es) => {
      const i = es.findIndex(isLayer);
      return { entries: es.map((e, j) => (j === i ? { name: e.name, data: flip(e.data) } : same(e))) };
    },
  },
  {
    name: 'a flipped byte in a file',
    reason: /entry "files\/.+" is corrupt/,
    make: (es) => ({ entries: es.map((e) => (isFile(e) ? { name: e.name, data: flip(e.data) } : same(e))) }),
  },
  {
    name: 'bundle.json changed, old signature kept',
    reason: /signature of bundle\.json does not verify/,
    make: (es) => ({
      entries: es.map((e) => (e.name === 'bundle.json' ? { name: e.name, data: Buffer.from(e.data.toString('utf8').replace('"test-bundle"', '"evil-bundle"')) } : same(e))),
    }),
  },
  {
    name: 'signed with another key',
    reason: /signature of bundle\.json does not verify/,
    make: (es) => {
      const bj = es.find((e) => e.name === 'bundle.json')!.data;
      return { entries: es.map((e) => (e.name === 'bundle.json.sig' ? { name: e.name, data: resign(bj, otherKey) } : same(e))) };
    },
  },
  {
    name: 'no signature',
    reason: /not signed/,
    make: (es) => ({ entries: es.filter((e) => e.name !== 'bundle.json.sig').map(same) }),
  },
  {
    name: 'an extra entry at the end',
    reason: /entry "extra\.txt" is not named in bundle\.json/,
    make: (es) => ({ entries: [...es.map(same), { name: 'extra.txt', data: Buffer.from('hi') }] }),
  },
  {
    name: 'a path traversal entry',
    reason: /entry "files\/\.\.\/\.\.\/.*" is not named in bundle\.json/,
    make: (es) => {
      const rel = path.relative(path.join(work, 'x', 'y'), path.join(outside, 'evil.txt'));
      const i = es.findIndex(isFile);
      return { entries: [...es.slice(0, i).map(same), { name: `files/../../${rel}`, data: Buffer.from('evil') }, ...es.slice(i).map(same)] };
    },
  },
  {
    name: 'an absolute path entry',
    reason: /entry "\/.*evil-abs\.txt" is not named in bundle\.json/,
    make: (es) => {
      const i = es.findIndex(isFile);
      return { entries: [...es.slice(0, i).map(same), { name: path.join(outside, 'evil-abs.txt'), data: Buffer.from('evil') }, ...es.slice(i).map(same)] };
    },
  },
  {
    name: 'a symlink in place of a file',
    reason: /is a symbolic link; a bundle holds regular files only/,
    make: (es) => ({ entries: es.map((e) => (isFile(e) ? { name: e.name, type: 'symlink', linkname: '/etc/passwd' } : same(e))) }),
  },
  {
    name: 'a hard link in place of a blob',
    reason: /is a hard link; a bundle holds regular files only/,
    make: (es) => {
      const i = es.findIndex(isLayer);
      return { entries: es.map((e, j) => (j === i ? { name: e.name, type: 'link', linkname: 'bundle.json' } : same(e))) };
    },
  },
  {
    name: 'truncated in the middle of a layer',
    reason: /truncated/,
    make: async (es) => {
      // Written whole, then cut: find where the first layer's data starts.
      const i = es.findIndex(isLayer);
      let offset = 0;
      for (const e of es.slice(0, i)) offset += 512 + Math.ceil(e.size / 512) * 512;
      return { entries: es.map(same), truncateAt: offset + 512 + 1000 };
    },
  },
  {
    name: 'a missing blob',
    reason: /expected "blobs\/sha256\/[a-f0-9]{64}" here/,
    make: (es) => {
      const i = es.findIndex(isLayer);
      return { entries: es.filter((_e, j) => j !== i).map(same) };
    },
  },
  {
    name: 'a duplicate entry',
    reason: /is a duplicate of an earlier entry/,
    make: (es) => {
      const i = es.findIndex(isLayer);
      return { entries: [...es.slice(0, i + 1).map(same), same(es[i]!), ...es.slice(i + 1).map(same)] };
    },
  },
  {
    name: 'two blobs swapped',
    reason: /is out of order/,
    make: (es) => {
      const blobs = es.map((e, j) => [e, j] as const).filter(([e]) => e.name.startsWith('blobs/'));
      const [a, b] = [blobs[1]![1], blobs[2]![1]];
      const out = es.map(same);
      [out[a], out[b]] = [out[b]!, out[a]!];
      return { entries: out };
    },
  },
  {
    name: 'a signed bundle.json naming a file path with ..',
    reason: /bundle\.json: file path "\.\.\/escape\.bin" contains "\.\."/,
    make: async (es) => {
      const bj = JSON.parse(es.find((e) => e.name === 'bundle.json')!.data.toString('utf8')) as { files: Array<{ path: string }> };
      bj.files[0]!.path = '../escape.bin';
      const data = Buffer.from(JSON.stringify(bj));
      const pem = await readFile(keyFile, 'utf8');
      return { entries: es.map((e) => (e.name === 'bundle.json' ? { name: e.name, data } : e.name === 'bundle.json.sig' ? { name: e.name, data: resign(data, pem) } : same(e))) };
    },
  },
  ...(
    [
      ['a kubespray version that is not a release name', { version: 'v2.31.0\n# injected', archs: ['amd64'] }, /bundle\.json: kubespray\.version is not a release name/],
      ['a kubespray base that leaves the file server', { version: 'v2.31.0', archs: ['amd64'], bases: { github_url: '../etc' } }, /bundle\.json: kubespray\.bases\.github_url contains "\.\."/],
      ['a kubespray field airlock does not know', { version: 'v2.31.0', archs: ['amd64'], hook: 'x' }, /bundle\.json: kubespray has an unknown field "hook"/],
    ] as const
  ).map(([name, kubespray, reason]) => ({
    name: `a signed bundle.json with ${name}`,
    reason,
    make: async (es: TarEntry[]) => {
      const bj = JSON.parse(es.find((e) => e.name === 'bundle.json')!.data.toString('utf8')) as Record<string, unknown>;
      bj.kubespray = kubespray;
      const data = Buffer.from(JSON.stringify(bj));
      const pem = await readFile(keyFile, 'utf8');
      return { entries: es.map((e) => (e.name === 'bundle.json' ? { name: e.name, data } : e.name === 'bundle.json.sig' ? { name: e.name, data: resign(data, pem) } : same(e))) };
    },
  })),
  {
    name: 'a directory entry',
    reason: /is a directory; a bundle holds regular files only/,
    make: (es) => {
      const i = es.findIndex(isFile);
      return { entries: [...es.slice(0, i).map(same), { name: 'files/tools/', type: 'directory' }, ...es.slice(i).map(same)] };
    },
  },
  {
    name: 'an oversized pax header',
    reason: /a pax header of \d+ bytes is larger than 65536/,
    make: (es) => {
      const i = es.findIndex(isFile);
      return { entries: [...es.slice(0, i).map(same), { name: `files/${'x/'.repeat(40_000)}y`, data: Buffer.from('evil') }, ...es.slice(i).map(same)] };
    },
  },
  {
    name: 'trailing garbage after the end-of-archive marker',
    reason: /trailing data after the end-of-archive marker at byte \d+: non-zero bytes \(67 61 72 62 61 67 65 20 61 66 74 65 72 20 74 68 …\) at byte \d+; only zero bytes may follow the marker/,
    make: (es) => ({ entries: es.map(same), append: Buffer.from('garbage after the end\n') }),
  },
  {
    name: 'a non-zero block (a whole tar entry) after the end-of-archive marker',
    reason: /trailing data after the end-of-archive marker at byte \d+: a tar header for entry "files\/evil\.sh" at byte \d+/,
    make: (es) => ({ entries: es.map(same), append: hidden() }),
  },
  {
    name: 'a tar entry after a lone zero block',
    reason: /the end-of-archive marker at byte \d+ is not two zero blocks: a tar header for entry "files\/evil\.sh" at byte \d+/,
    make: (es) => ({ entries: es.map(same), dropEnd: true, append: Buffer.concat([Buffer.alloc(512), hidden()]) }),
  },
  // Each malformed record below says only mtime, which the reader ignores: a lax parser would take the bundle.
  {
    name: 'a pax record without its newline',
    reason: /pax header at byte \d+: the record at byte \d+ does not end in a newline/,
    make: (es) => ({ entries: paxBeforeFile(es, paxRecord('mtime=17672256000')) }),
  },
  {
    name: 'a pax record length written 0x22',
    reason: /pax header at byte \d+: the record at byte \d+ has a malformed length "0x22"/,
    // 0x22 = 34 = the record's real length.
    make: (es) => ({ entries: paxBeforeFile(es, paxRecord(`mtime=1767225600.${'0'.repeat(11)}\n`, '0x22')) }),
  },
  {
    name: 'a pax record length with a leading zero',
    reason: /pax header at byte \d+: the record at byte \d+ has a malformed length "020"/,
    make: (es) => ({ entries: paxBeforeFile(es, paxRecord('mtime=176722560\n', '020')) }),
  },
  {
    name: 'a pax record length that runs past the data',
    reason: /pax header at byte \d+: the record at byte \d+ is 99 bytes long, which runs past the end of the pax data \(20 bytes left\)/,
    make: (es) => ({ entries: paxBeforeFile(es, paxRecord('mtime=1767225600\n', '99')) }),
  },
  {
    name: 'a pax record without "="',
    reason: /pax header at byte \d+: the record at byte \d+ has no "=" between keyword and value/,
    make: (es) => ({ entries: paxBeforeFile(es, paxRecord('mtimes\n')) }),
  },
  {
    name: 'not a tar at all',
    reason: /is not an airlock bundle|bad checksum|truncated/,
    make: () => ({ entries: [{ name: 'README', data: Buffer.from('hello') }] }),
  },
];

/** bundle.json of a delta, edited and written back unsigned-over (the old signature stays). */
function editDelta(es: TarEntry[], edit: (bj: { blobs: Array<Record<string, unknown>>; files: Array<Record<string, unknown>>; bases: Array<Record<string, unknown>> }) => void): HostileEntry[] {
  return es.map((e) => {
    if (e.name !== 'bundle.json') return same(e);
    const bj = JSON.parse(e.data.toString('utf8')) as Parameters<typeof edit>[0];
    edit(bj);
    return { name: e.name, data: Buffer.from(JSON.stringify(bj, null, 2) + '\n') };
  });
}

const deltaCases: Case[] = [
  {
    name: 'a delta whose bundle.json no longer marks a blob external',
    reason: /signature of bundle\.json does not verify/,
    make: (es) => ({ entries: editDelta(es, (bj) => void delete bj.blobs[0]!.external) }),
  },
  {
    name: 'a delta whose bundle.json marks a file not external',
    reason: /signature of bundle\.json does not verify/,
    make: (es) => ({ entries: editDelta(es, (bj) => void delete bj.files[0]!.external) }),
  },
  {
    name: 'a delta whose bases were edited',
    reason: /signature of bundle\.json does not verify/,
    make: (es) => ({ entries: editDelta(es, (bj) => void (bj.bases[0]!.sha256 = '0'.repeat(64))) }),
  },
  {
    name: 'a delta whose bases were removed and re-signed with another key',
    reason: /signature of bundle\.json does not verify/,
    make: (es) => {
      const entries = editDelta(es, (bj) => void (bj.bases = []));
      const bj = entries[0]!.data!;
      return { entries: entries.map((e) => (e.name === 'bundle.json.sig' ? { name: e.name, data: resign(bj, otherKey) } : e)) };
    },
  },
  {
    name: 'a delta tar that carries a blob bundle.json marks external',
    reason: /entry "blobs\/sha256\/[a-f0-9]{64}" is not named in bundle\.json/,
    make: async (es) => {
      const layer = (await readTar(good)).find(isLayer)!;
      return { entries: [...es.map(same), { name: layer.name, data: layer.data }] };
    },
  },
  {
    name: 'a delta tar that carries a file bundle.json marks external',
    reason: /entry "files\/.*" is not named in bundle\.json/,
    make: async (es) => {
      const file = (await readTar(good)).find(isFile)!;
      return { entries: [...es.map(same), { name: file.name, data: file.data }] };
    },
  },
];

async function catalog(): Promise<string[]> {
  const agent = new Agent();
  try {
    const res = await request(`${target.url}/v2/_catalog`, { dispatcher: agent });
    return (JSON.parse(Buffer.from(await res.body.arrayBuffer()).toString('utf8')) as { repositories: string[] }).repositories;
  } finally {
    await agent.close();
  }
}

/**
 * The hostile bundle `file` split into parts, once with a BUNDLE.sha256 of
 * those very parts (the parts' lines pass: the tar itself must be refused as
 * when whole) and once with the stale BUNDLE.sha256 of the untampered bundle's
 * parts (refused by either). verify and unpack refuse both; unpack writes nothing.
 */
async function refusesSplit(file: string, tag: string, partSize: number, stale: string, reason: RegExp): Promise<void> {
  const staleReason = new RegExp(`${reason.source}|part b\\.tar\\.\\d{3} (does not match b\\.tar\\.sha256|is missing|is extra)`);
  for (const [variant, sidecar, why] of [['fresh', undefined, reason], ['stale', `${stale}.sha256`, staleReason]] as const) {
    const b = await splitInto(file, path.join(work, `split-${tag}-${variant}`), partSize, sidecar);
    const parts = (await readdir(path.dirname(b))).length - 1;
    // On this thread (--jobs 1, and the default for a bundle this small) and on threads that read the parts themselves (--jobs 2).
    for (const jobs of ['1', '2']) {
      const v = await runAirlock(['verify', b, '--pub', pub, '--jobs', jobs]);
      assert.equal(v.code, 1, `verify --jobs ${jobs} of ${parts} parts, ${variant} BUNDLE.sha256: exit code; stderr: ${v.stderr}`);
      assert.match(v.stderr, why, `verify --jobs ${jobs}, ${variant} BUNDLE.sha256`);
      const dest = path.join(work, 'x', 'y', `files-${tag}-${variant}-${jobs}`);
      await mkdir(dest, { recursive: true });
      const u = await runAirlock(['unpack', b, '--pub', pub, '--jobs', jobs, '--registry', `${target.host}/${tag}-${variant}`, '--files-dir', dest]);
      assert.equal(u.code, 1, `unpack --jobs ${jobs} of ${parts} parts, ${variant} BUNDLE.sha256: exit code; stderr: ${u.stderr}`);
      assert.match(u.stderr, why, `unpack --jobs ${jobs}, ${variant} BUNDLE.sha256`);
      assert.deepEqual(await readdir(dest), [], 'nothing written into the folder');
    }
  }
}

describe('tamper matrix', () => {
  it('the good bundle, rewritten entry by entry with another tar writer, still verifies (the control)', async () => {
    const copy = path.join(work, 'control.tar');
    await rewrite(good, copy, (es) => es.map(same));
    const r = await runAirlock(['verify', copy, '--pub', pub]);
    assert.equal(r.code, 0, r.stderr);
  });

  it('the good bundle and the delta, split into parts, still verify (the control for the split cases)', async () => {
    for (const b of [goodParts, deltaParts]) {
      assert.ok((await readdir(path.dirname(b))).length > 4, 'several parts');
      const r = await runAirlock(['verify', b, '--pub', pub]);
      assert.equal(r.code, 0, r.stderr);
    }
  });

  it('well-formed pax records (path, mtime, uid) and zero padding after the end-of-archive marker still verify (the control for the strict parser and tail)', async () => {
    const copy = path.join(work, 'control-pax.tar');
    const es = await readTar(good);
    const name = es.find(isFile)!.name;
    const records = Buffer.concat([paxRecord(`path=${name}\n`), paxRecord('mtime=1767225600.123456789\n'), paxRecord('uid=0\n')]);
    // GNU tar pads the archive to its 10240-byte record with zeros.
    await writeEntries(copy, paxBeforeFile(es, records), { append: Buffer.alloc(10240 - 1024) });
    const r = await runAirlock(['verify', copy, '--pub', pub]);
    assert.equal(r.code, 0, r.stderr);
  });

  for (const [n, c] of cases.entries()) {
    it(`refuses: ${c.name}`, async () => {
      const file = path.join(work, `hostile-${n}.tar`);
      const { entries, ...tail } = await c.make(await readTar(good));
      await writeEntries(file, entries, tail);

      const v = await runAirlock(['verify', file, '--pub', pub]);
      assert.equal(v.code, 1, `verify exit code; stderr: ${v.stderr}`);
      assert.match(v.stderr, c.reason);
      // The same refusal when the entries are hashed on threads that read the file themselves.
      const vj = await runAirlock(['verify', file, '--pub', pub, '--jobs', '2']);
      assert.equal(vj.code, 1, `verify --jobs 2 exit code; stderr: ${vj.stderr}`);
      assert.match(vj.stderr, c.reason);
      // The same refusal when the bundle streams in on standard input (verify -).
      const sv = await runAirlock(['verify', '-', '--pub', pub], await readFile(file));
      assert.equal(sv.code, 1, `verify - exit code; stderr: ${sv.stderr}`);
      assert.match(sv.stderr, c.reason);

      const dest = path.join(work, 'x', 'y', `files-${n}`);
      await mkdir(dest, { recursive: true });
      const u = await runAirlock(['unpack', file, '--pub', pub, '--jobs', '2', '--registry', `${target.host}/case${n}`, '--files-dir', dest]);
      assert.equal(u.code, 1, `unpack exit code; stderr: ${u.stderr}`);
      assert.match(u.stderr, c.reason);
      assert.deepEqual(await readdir(dest), [], 'nothing written into the folder');
      assert.deepEqual(await readdir(outside), [], 'nothing written outside it');
      assert.equal(existsSync(path.join(work, 'x', 'escape.bin')), false);
    });

    it(`refuses, split into parts: ${c.name}`, async () => {
      const file = path.join(work, `hostile-${n}.tar`);
      if (!existsSync(file)) {
        const { entries, ...tail } = await c.make(await readTar(good));
        await writeEntries(file, entries, tail);
      }
      await refusesSplit(file, `case${n}`, PART, goodParts, c.reason);
      assert.deepEqual(await readdir(outside), [], 'nothing written outside it');
      assert.equal(existsSync(path.join(work, 'x', 'escape.bin')), false);
    });
  }

  it('the delta itself verifies (the control for the delta cases)', async () => {
    const r = await runAirlock(['verify', delta, '--pub', pub]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /a delta: \d+ entries external/);
  });

  for (const [n, c] of deltaCases.entries()) {
    it(`refuses: ${c.name}`, async () => {
      const file = path.join(work, `hostile-delta-${n}.tar`);
      const { entries, ...tail } = await c.make(await readTar(delta));
      await writeEntries(file, entries, tail);
      for (const jobs of ['1', '2']) {
        const v = await runAirlock(['verify', file, '--pub', pub, '--jobs', jobs]);
        assert.equal(v.code, 1, `verify --jobs ${jobs} exit code; stderr: ${v.stderr}`);
        assert.match(v.stderr, c.reason);
      }
      const dest = path.join(work, 'x', 'y', `delta-files-${n}`);
      await mkdir(dest, { recursive: true });
      const u = await runAirlock(['unpack', file, '--pub', pub, '--registry', `${target.host}/delta${n}`, '--files-dir', dest]);
      assert.equal(u.code, 1, `unpack exit code; stderr: ${u.stderr}`);
      assert.match(u.stderr, c.reason);
      assert.deepEqual(await readdir(dest), [], 'nothing written into the folder');
      await refusesSplit(file, `delta${n}`, DELTA_PART, deltaParts, c.reason);
    });
  }

  it('no case left a repository, manifest or tag in the registry', async () => {
    assert.deepEqual(await catalog(), []);
    // Every case was refused before the first push: not even a blob upload started.
    const data = path.join(target.dataDir, 'docker/registry/v2/repositories');
    assert.equal(existsSync(data) ? (await readdir(data)).length : 0, 0);

  });
});
