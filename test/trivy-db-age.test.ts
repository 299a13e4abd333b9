// How old is the Trivy DB in a bundle: build reads metadata.json out of the
// DB layer and signs its dates into bundle.json; inspect shows them; build and
// unpack warn past --max-db-age. The DBs are seeded here into a real registry
// with a metadata.json we write, plus layers without one or with garbage.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { parseIndex } from '../src/bundle/reader.js';
import { readTrivyDbInfo } from '../src/bundle/trivydb.js';
import { parseMaxDbAge } from '../src/cli/options.js';
import { loadPrivateKey, signBytes } from '../src/sign/keys.js';
import { runAirlock, type CliResult } from './support/cli.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { gzipDeterministic, makeTar, MediaTypes, pseudoRandomBytes, Seeder } from './support/seed.js';
import { writeEntries } from './support/tamper.js';
import { entry, readTar } from './support/tarball.js';
import { TRIVY_CONFIG, TRIVY_DB_LAYER } from './support/upstream.js';

const TRIVY_JAVA_DB_LAYER = 'application/vnd.aquasec.trivy.javadb.layer.v1.tar+gzip';
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// Whole seconds, as Go writes them without a fraction; bundle.json keeps ISO milliseconds.
const at = (msAgo: number) => new Date(Math.floor((Date.now() - msAgo) / 1000) * 1000);
const goTime = (d: Date) => d.toISOString().replace('.000Z', 'Z');

const oldUpdated = at(10 * DAY);
const oldNext = new Date(oldUpdated.getTime() + 6 * HOUR);
const freshUpdated = at(HOUR);
const freshNext = new Date(freshUpdated.getTime() + DAY);

function metadata(updated: Date, next: Date): string {
  return JSON.stringify({ Version: 2, NextUpdate: goTime(next), UpdatedAt: goTime(updated), DownloadedAt: goTime(updated) });
}

let upstream: TestRegistry;
let seeder: Seeder;
let dir: string;
let key: string;
let pub: string;
let host: string;

async function seedDb(repo: string, tag: string, layerBytes: Buffer, layerMediaType = TRIVY_DB_LAYER, title = 'db.tar.gz'): Promise<void> {
  await seeder.pushArtifact(repo, tag, { artifactType: TRIVY_CONFIG, configMediaType: MediaTypes.ociEmpty, layerMediaType, layerBytes, title });
}

before(async () => {
  upstream = await startRegistry();
  host = upstream.host;
  seeder = new Seeder({ url: upstream.url });
  dir = await makeTempDir('airlock-dbage-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
  key = path.join(dir, 'k.key');
  pub = path.join(dir, 'k.pub');
  // As trivy-db's Makefile packs them: the database first, metadata.json last.
  await seedDb('aquasecurity/trivy-db', '2', gzipDeterministic(await makeTar([{ name: 'trivy.db', data: pseudoRandomBytes('old-db', 300_000) }, { name: 'metadata.json', data: metadata(oldUpdated, oldNext) }])));
  await seedDb(
    'aquasecurity/trivy-java-db',
    '1',
    gzipDeterministic(await makeTar([{ name: 'trivy-java.db', data: pseudoRandomBytes('java-db', 200_000) }, { name: 'metadata.json', data: metadata(freshUpdated, freshNext) }])),
    TRIVY_JAVA_DB_LAYER,
    'javadb.tar.gz',
  );
  await seedDb('bad/no-metadata', '2', gzipDeterministic(await makeTar([{ name: 'trivy.db', data: pseudoRandomBytes('nometa', 50_000) }])));
  await seedDb('bad/garbage', '2', pseudoRandomBytes('not gzip at all', 40_000));
  await seedDb('bad/not-json', '2', gzipDeterministic(await makeTar([{ name: 'metadata.json', data: '{"UpdatedAt": "2026-01-01T00:00:00Z",' }])));
  await seedDb('bad/no-date', '2', gzipDeterministic(await makeTar([{ name: 'metadata.json', data: '{"Version": 2, "UpdatedAt": "last tuesday"}' }])));
  await seedDb('bad/huge', '2', gzipDeterministic(await makeTar([{ name: 'metadata.json', data: `{"pad": "${'x'.repeat(100_000)}"}` }])));
});

after(async () => {
  await seeder?.close();
  await upstream?.stop();
});

let n = 0;
async function build(spec: string, args: string[] = []): Promise<{ r: CliResult; bundle: string }> {
  const d = path.join(dir, `b${n++}`);
  await mkdir(d);
  await writeFile(path.join(d, 'm.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: dbs\nspec:\n${spec}`);
  const bundle = path.join(d, 'b.tar');
  const r = await runAirlock(['build', path.join(d, 'm.yaml'), '-o', bundle, '--key', key, '--cache', path.join(dir, 'cache'), ...args]);
  return { r, bundle };
}

async function unpack(bundle: string, args: string[] = []): Promise<CliResult> {
  const target = await startRegistry();
  try {
    const files = await makeTempDir('airlock-dbage-files-');
    return await runAirlock(['unpack', bundle, '--pub', pub, '--registry', target.host, '--files-dir', files, ...args]);
  } finally {
    await target.stop();
  }
}

interface Report {
  ref: string;
  role?: string;
  updatedAt?: string;
  nextUpdate?: string;
  version?: number;
  ageSeconds?: number;
  stale?: boolean;
  problem?: string;
}

const dbWarning = /warning: (trivy-db|trivy-java-db|Trivy DB) .*(older than --max-db-age|cannot tell)/;

describe('a bundle whose Trivy DB was updated 10 days ago', () => {
  const spec = () => `  trivy:\n    db: ${host}/aquasecurity/trivy-db:2\n    javaDb: ${host}/aquasecurity/trivy-java-db:1\n`;
  let bundle: string;
  let first: CliResult;

  before(async () => {
    const b = await build(spec(), ['--json']);
    first = b.r;
    bundle = b.bundle;
  });

  it('build warns with the default --max-db-age (7d), for the old DB only, and --json carries the dates', () => {
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stderr, new RegExp(`warning: trivy-db ${host}/aquasecurity/trivy-db:2 was updated 10 days ago \\(UpdatedAt ${oldUpdated.toISOString()}\\), older than --max-db-age 7d; `));
    assert.doesNotMatch(first.stderr, /trivy-java-db .* was updated/);
    assert.doesNotMatch(first.stderr, /cannot tell/);
    const dbs = (JSON.parse(first.stdout) as { trivyDbs: Report[] }).trivyDbs;
    const db = dbs.find((d) => d.role === 'trivy-db');
    assert.deepEqual({ ...db, ageSeconds: undefined }, {
      ref: `${host}/aquasecurity/trivy-db:2`,
      role: 'trivy-db',
      updatedAt: oldUpdated.toISOString(),
      nextUpdate: oldNext.toISOString(),
      version: 2,
      ageSeconds: undefined,
      stale: true,
    });
    assert.ok(Math.abs((db?.ageSeconds ?? 0) - 10 * 86400) < 600, `age ${db?.ageSeconds}`);
    const java = dbs.find((d) => d.role === 'trivy-java-db');
    assert.equal(java?.updatedAt, freshUpdated.toISOString());
    assert.equal(java?.nextUpdate, freshNext.toISOString());
    assert.equal(java?.stale, false);
  });

  it('records the dates in the signed bundle.json', async () => {
    const bj = JSON.parse(entry(await readTar(bundle), 'bundle.json').data.toString('utf8')) as { images: Array<{ ref: string; trivyDb?: unknown }> };
    const byRef = new Map(bj.images.map((i) => [i.ref, i.trivyDb]));
    assert.deepEqual(byRef.get(`${host}/aquasecurity/trivy-db:2`), { updatedAt: oldUpdated.toISOString(), nextUpdate: oldNext.toISOString(), version: 2 });
    assert.deepEqual(byRef.get(`${host}/aquasecurity/trivy-java-db:1`), { updatedAt: freshUpdated.toISOString(), nextUpdate: freshNext.toISOString(), version: 2 });
    const v = await runAirlock(['verify', bundle, '--pub', pub]);
    assert.equal(v.code, 0, v.stderr);
  });

  it('build with --max-db-age 0 or 30d does not warn; 36h does', async () => {
    for (const age of ['0', '30d']) {
      const b = await build(spec(), ['--max-db-age', age]);
      assert.equal(b.r.code, 0, b.r.stderr);
      assert.doesNotMatch(b.r.stderr, dbWarning, `--max-db-age ${age}`);
    }
    const h = await build(spec(), ['--max-db-age', '36h']);
    assert.equal(h.r.code, 0, h.r.stderr);
    assert.match(h.r.stderr, /trivy-db \S+ was updated 10 days ago .* older than --max-db-age 36h/);
    assert.doesNotMatch(h.r.stderr, /trivy-java-db \S+ was updated/);
    // The text summary says it too, under the item.
    assert.match(h.r.stdout, new RegExp(`^ +DB updated ${oldUpdated.toISOString()} \\(10 days ago\\), next update ${oldNext.toISOString()}$`, 'm'));
  });

  it('inspect shows UpdatedAt, the age and NextUpdate; --json carries them', async () => {
    const r = await runAirlock(['inspect', bundle]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^  ${host}/aquasecurity/trivy-db:2  trivy-db  .*\\n    DB updated ${oldUpdated.toISOString()} \\(10 days ago\\), next update ${oldNext.toISOString()}$`, 'm'));
    assert.match(r.stdout, new RegExp(`^  ${host}/aquasecurity/trivy-java-db:1  trivy-java-db  .*\\n    DB updated ${freshUpdated.toISOString()} \\(1 hour ago\\), next update ${freshNext.toISOString()}$`, 'm'));
    const j = await runAirlock(['inspect', bundle, '--json']);
    assert.equal(j.code, 0, j.stderr);
    const doc = JSON.parse(j.stdout) as { trivyDbs: Report[]; images: Array<{ ref: string; trivyDb?: { updatedAt: string } }> };
    const db = doc.trivyDbs.find((d) => d.role === 'trivy-db');
    assert.equal(db?.updatedAt, oldUpdated.toISOString());
    assert.equal(db?.nextUpdate, oldNext.toISOString());
    assert.ok(Math.abs((db?.ageSeconds ?? 0) - 10 * 86400) < 600);
    assert.equal(doc.images.find((i) => i.ref.endsWith('/trivy-db:2'))?.trivyDb?.updatedAt, oldUpdated.toISOString());
  });

  it('unpack warns with the default, before pushing; 0 and 30d silence it; --json carries the dates', async () => {
    const r = await unpack(bundle, ['--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`warning: trivy-db ${host}/aquasecurity/trivy-db:2 was updated 10 days ago \\(UpdatedAt ${oldUpdated.toISOString()}\\), older than --max-db-age 7d; .*newer bundle`));
    assert.doesNotMatch(r.stderr, /trivy-java-db .* was updated/);
    const dbs = (JSON.parse(r.stdout) as { trivyDbs: Report[] }).trivyDbs;
    assert.deepEqual(
      dbs.map((d) => [d.role, d.updatedAt, d.nextUpdate, d.stale]),
      [
        ['trivy-db', oldUpdated.toISOString(), oldNext.toISOString(), true],
        ['trivy-java-db', freshUpdated.toISOString(), freshNext.toISOString(), false],
      ],
    );
    for (const age of ['0', '30d']) {
      const q = await unpack(bundle, ['--max-db-age', age]);
      assert.equal(q.code, 0, q.stderr);
      assert.doesNotMatch(q.stderr, dbWarning, `--max-db-age ${age}`);
    }
  });

  it('a bad --max-db-age is exit 2 on build and unpack', async () => {
    for (const bad of ['7', '7w', '-1d', 'abc', '1.5d', '']) {
      const b = await build(spec(), ['--max-db-age', bad]);
      assert.equal(b.r.code, 2, `build --max-db-age "${bad}": ${b.r.stderr}`);
      assert.match(b.r.stderr, /--max-db-age .*give days or hours, e\.g\. 7d or 36h/);
      const u = await runAirlock(['unpack', bundle, '--pub', pub, '--registry', '127.0.0.1:1', '--files-dir', dir, '--max-db-age', bad]);
      assert.equal(u.code, 2, `unpack --max-db-age "${bad}": ${u.stderr}`);
    }
  });

  it('a bundle from before the dates were recorded: inspect and unpack say the age is unknown', async () => {
    const entries = await readTar(bundle);
    const bj = JSON.parse(entry(entries, 'bundle.json').data.toString('utf8')) as { images: Array<Record<string, unknown>> };
    for (const i of bj.images) delete i.trivyDb;
    const bytes = Buffer.from(JSON.stringify(bj, null, 2) + '\n');
    const sig = Buffer.from(await signBytes(bytes, await loadPrivateKey(key)));
    const older = path.join(dir, 'older.tar');
    await writeEntries(older, [
      { name: 'bundle.json', data: bytes },
      { name: 'bundle.json.sig', data: sig },
      ...entries.filter((e) => e.name !== 'bundle.json' && e.name !== 'bundle.json.sig').map((e) => ({ name: e.name, data: e.data })),
    ]);
    const r = await runAirlock(['inspect', older]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^ {4}cannot tell the DB's age: bundle\.json records no DB dates \(the bundle was built by an older airlock\)$/m);
    const u = await unpack(older);
    assert.equal(u.code, 0, u.stderr);
    assert.match(u.stderr, /warning: cannot tell the DB's age of trivy-db \S+: bundle\.json records no DB dates/);
    assert.equal((await unpack(older, ['--max-db-age', '0'])).stderr.match(/cannot tell/), null);
  });
});

describe('DB layers without a usable metadata.json', () => {
  let r: CliResult;
  let bundle: string;
  const problems = () =>
    new Map([
      [`${host}/bad/no-metadata:2`, "the layer holds no metadata.json"],
      [`${host}/bad/garbage:2`, 'the layer is not a readable gzip tar ('],
      [`${host}/bad/not-json:2`, 'metadata.json is not JSON'],
      [`${host}/bad/no-date:2`, 'metadata.json has no UpdatedAt time (RFC 3339)'],
      [`${host}/bad/huge:2`, 'metadata.json is '],
    ]);

  before(async () => {
    const b = await build(`  trivy:\n    db: ${host}/bad/no-metadata:2\n    javaDb: false\n  artifacts:\n    - ${host}/bad/garbage:2\n    - ${host}/bad/not-json:2\n    - ${host}/bad/no-date:2\n    - ${host}/bad/huge:2\n`, ['--json']);
    r = b.r;
    bundle = b.bundle;
  });

  it('build still writes the bundle, with a clear "cannot tell" warning for each', () => {
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`warning: cannot tell the DB's age of trivy-db ${host}/bad/no-metadata:2: the layer holds no metadata\\.json`));
    // Artifacts listed without a role are recognised by the DB layer's media type.
    assert.match(r.stderr, new RegExp(`warning: cannot tell the DB's age of Trivy DB ${host}/bad/garbage:2: the layer is not a readable gzip tar \\(`));
    assert.match(r.stderr, /cannot tell the DB's age of Trivy DB \S+\/bad\/not-json:2: metadata\.json is not JSON/);
    assert.match(r.stderr, /cannot tell the DB's age of Trivy DB \S+\/bad\/no-date:2: metadata\.json has no UpdatedAt time/);
    assert.match(r.stderr, /cannot tell the DB's age of Trivy DB \S+\/bad\/huge:2: metadata\.json is \d+ bytes, more than 65536/);
    const dbs = (JSON.parse(r.stdout) as { trivyDbs: Report[] }).trivyDbs;
    for (const [ref, problem] of problems()) {
      const d = dbs.find((x) => x.ref === ref);
      assert.ok(d?.problem?.startsWith(problem), `${ref}: ${d?.problem}`);
      assert.equal(d?.updatedAt, undefined);
    }
  });

  it('inspect and unpack say so and carry on', async () => {
    const i = await runAirlock(['inspect', bundle]);
    assert.equal(i.code, 0, i.stderr);
    assert.match(i.stdout, new RegExp(`^  ${host}/bad/no-metadata:2  trivy-db  .*\\n    cannot tell the DB's age: the layer holds no metadata\\.json$`, 'm'));
    assert.equal(i.stdout.match(/cannot tell the DB's age/g)?.length, 5);
    const u = await unpack(bundle, ['--json']);
    assert.equal(u.code, 0, u.stderr);
    assert.equal(u.stderr.match(/warning: cannot tell the DB's age/g)?.length, 5, u.stderr);
    assert.equal((JSON.parse(u.stdout) as { trivyDbs: Report[] }).trivyDbs.filter((d) => d.problem).length, 5);
  });
});

describe('reading metadata.json out of a layer', () => {
  const stream = (buf: Buffer, chunk = 4096) =>
    Readable.from(
      (function* () {
        for (let i = 0; i < buf.length; i += chunk) yield buf.subarray(i, i + chunk);
      })(),
    );
  const meta = metadata(oldUpdated, oldNext);

  it('finds it after a large database, under ./, and stops reading right after it', async () => {
    const big = gzipSync(await makeTar([{ name: './trivy.db', data: Buffer.alloc(40 * 1024 * 1024, 1) }, { name: './metadata.json', data: meta }, { name: 'after', data: pseudoRandomBytes('x', 1_000_000) }]));
    let read = 0;
    const src = stream(big);
    src.on('data', (c: Buffer) => (read += c.length));
    const info = await readTrivyDbInfo(src);
    assert.deepEqual(info, { updatedAt: oldUpdated.toISOString(), nextUpdate: oldNext.toISOString(), version: 2 });
    assert.ok(read < big.length, 'the entry after metadata.json was not read to the end');
  });

  it('a truncated layer, not a tar, a directory or link named metadata.json, too many entries: a problem, no throw', async () => {
    const whole = gzipSync(await makeTar([{ name: 'trivy.db', data: pseudoRandomBytes('t', 200_000) }, { name: 'metadata.json', data: meta }]));
    assert.match((await readTrivyDbInfo(stream(whole.subarray(0, 50_000)))).problem ?? '', /not a readable gzip tar/);
    assert.match((await readTrivyDbInfo(stream(Buffer.alloc(0)))).problem ?? '', /no metadata\.json|not a readable/);
    assert.match((await readTrivyDbInfo(stream(gzipSync(Buffer.from('{"UpdatedAt":"2026-01-01T00:00:00Z"}'))))).problem ?? '', /not a readable gzip tar/);
    const arr = gzipSync(await makeTar([{ name: 'metadata.json', data: '[1,2]' }]));
    assert.deepEqual(await readTrivyDbInfo(stream(arr)), { problem: 'metadata.json is not a JSON object' });
    // A directory or a symlink by that name is not the file.
    const pack = tar.pack();
    const chunks: Buffer[] = [];
    const done = (async () => {
      for await (const c of pack) chunks.push(Buffer.from(c as Uint8Array));
    })();
    pack.entry({ name: 'metadata.json', type: 'directory' }).end(undefined);
    pack.entry({ name: './metadata.json', type: 'symlink', linkname: '/etc/passwd' }).end(undefined);
    pack.finalize();
    await done;
    assert.deepEqual(await readTrivyDbInfo(stream(gzipSync(Buffer.concat(chunks)))), { problem: 'the layer holds no metadata.json' });
    // More entries than any DB layer has: it gives up rather than walk on.
    const many = gzipSync(await makeTar(Array.from({ length: 1200 }, (_, i) => ({ name: `f${i}`, data: '' }))));
    assert.match((await readTrivyDbInfo(stream(many))).problem ?? '', /no metadata\.json in the first 1000 entries/);
  });

  it('Go times with nanoseconds and offsets are read; an impossible one is not', async () => {
    const layer = async (m: unknown) => readTrivyDbInfo(stream(gzipSync(await makeTar([{ name: 'metadata.json', data: JSON.stringify(m) }]))));
    assert.deepEqual(await layer({ UpdatedAt: '2026-11-26T06:12:09.123456789Z', NextUpdate: '2026-11-26T14:12:09+02:00', Version: 2 }), {
      updatedAt: '2026-11-26T06:12:09.123Z',
      nextUpdate: '2026-11-26T12:12:09.000Z',
      version: 2,
    });
    assert.deepEqual(await layer({ UpdatedAt: '2026-11-26T06:12:09Z', NextUpdate: 'soon', Version: 'two' }), { updatedAt: '2026-11-26T06:12:09.000Z' });
    assert.ok((await layer({ UpdatedAt: '2026-13-40T99:00:00Z' })).problem);
    assert.ok((await layer({ UpdatedAt: 1764137529 })).problem);
  });
});

describe('bundle.json validation of trivyDb', () => {
  const digest = `sha256:${'a'.repeat(64)}`;
  const doc = (trivyDb: unknown) =>
    Buffer.from(
      JSON.stringify({
        schemaVersion: 1,
        name: 'x',
        version: '',
        created: '2026-01-01T00:00:00.000Z',
        tool: 'airlock test',
        signer: { fingerprint: 'sha256:x' },
        images: [{ ref: 'ghcr.io/aquasecurity/trivy-db:2', digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', kind: 'artifact', role: 'trivy-db', platforms: [], size: 1, trivyDb }],
        files: [],
        blobs: [{ digest, size: 1 }],
        layout: { 'oci-layout': { sha256: 'a'.repeat(64), size: 1 }, 'index.json': { sha256: 'a'.repeat(64), size: 1 } },
      }),
    );

  it('accepts what build writes and refuses anything else', () => {
    assert.ok(parseIndex(doc({ updatedAt: '2026-01-01T00:00:00.000Z', nextUpdate: '2026-01-01T06:00:00.000Z', version: 2 })));
    assert.ok(parseIndex(doc({ problem: 'the layer holds no metadata.json' })));
    assert.ok(parseIndex(doc(undefined)));
    for (const [bad, why] of [
      ['2026-01-01', /is not an object/],
      [{ updatedAt: 5 }, /trivyDb\.updatedAt is not a UTC time/],
      [{ updatedAt: '2026-01-01T00:00:00Z' }, /trivyDb\.updatedAt is not a UTC time/],
      [{ updatedAt: '2026-01-01T00:00:00.000Z', nextUpdate: 'tomorrow' }, /trivyDb\.nextUpdate is not a UTC time/],
      [{ updatedAt: '2026-01-01T00:00:00.000Z', version: -1 }, /trivyDb\.version is not a whole number/],
      [{ problem: 7 }, /trivyDb\.problem is not a short text/],
      [{ problem: 'x'.repeat(501) }, /trivyDb\.problem is not a short text/],
      [{}, /needs exactly one of updatedAt and problem/],
      [{ updatedAt: '2026-01-01T00:00:00.000Z', problem: 'both' }, /needs exactly one of updatedAt and problem/],
      [{ updatedAt: '2026-01-01T00:00:00.000Z', extra: 1 }, /trivyDb has an unknown field "extra"/],
    ] as Array<[unknown, RegExp]>) {
      assert.throws(() => parseIndex(doc(bad)), why, JSON.stringify(bad));
    }
  });

  it('--max-db-age takes days or hours; 0 turns it off', () => {
    assert.deepEqual(parseMaxDbAge(undefined), { ms: 7 * DAY, label: '7d' });
    assert.deepEqual(parseMaxDbAge('36h'), { ms: 36 * HOUR, label: '36h' });
    assert.equal(parseMaxDbAge('0'), undefined);
    assert.equal(parseMaxDbAge('0d'), undefined);
    for (const bad of ['7', '7 d', 'd', '1e3d', '9999999d']) assert.throws(() => parseMaxDbAge(bad), /--max-db-age/);
  });
});
