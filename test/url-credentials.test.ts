// A user name and password written into a URL (or into --registry) are refused
// at every entry point, exit 2, with what to do instead; the password appears
// nowhere: not on stdout or stderr, not in any file written. Earlier, unpack
// ignored them for the PUTs and copied them into sc-config.yaml, README.md and
// its report.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeBundle } from '../src/bundle/writer.js';
import { ContentStore } from '../src/cache/store.js';
import { fingerprint, keygen, loadPrivateKey } from '../src/sign/keys.js';
import { httpUrlProblem, redactUserinfo } from '../src/util/url.js';
import { runAirlock, type CliResult } from './support/cli.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';

const PASSWORD = 'S3cret-pw-7f1c';
const HEX = 'a'.repeat(64);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** Every file below `dir`, with its text. */
async function filesBelow(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile()) out.set(path.join(e.parentPath, e.name), await readFile(path.join(e.parentPath, e.name), 'utf8'));
  }
  return out;
}

function assertNoPassword(r: CliResult, ...written: Array<Map<string, string>>): void {
  assert.ok(!r.stdout.includes(PASSWORD), `the password is on stdout:\n${r.stdout}`);
  assert.ok(!r.stderr.includes(PASSWORD), `the password is on stderr:\n${r.stderr}`);
  for (const files of written) for (const [f, text] of files) assert.ok(!text.includes(PASSWORD), `the password is in ${f}`);
}

describe('unpack and sync flags', () => {
  let work: string;
  let bundle: string;
  let pub: string;
  let reg: TestRegistry;
  let nginx: TestFileServer;

  before(async () => {
    work = await makeTempDir('airlock-urlcreds-');
    // A signed bundle with one file: enough for the file server URL to reach the report, README.md and sc-config.yaml.
    const store = new ContentStore(path.join(work, 'cache'));
    await store.init();
    const bytes = Buffer.from('a tool\n');
    await store.putBuffer(bytes);
    await keygen(path.join(work, 'k'));
    const key = await loadPrivateKey(path.join(work, 'k.key'));
    pub = path.join(work, 'k.pub');
    bundle = path.join(work, 'bundle.tar');
    await writeBundle({
      output: bundle,
      store,
      key,
      mtime: new Date(0),
      index: {
        schemaVersion: 1,
        name: 'creds',
        version: '1',
        created: new Date(0).toISOString(),
        tool: 'airlock test',
        signer: { fingerprint: fingerprint(key) },
        images: [],
        files: [{ path: 'tools/tool.bin', sha256: sha256(bytes), size: bytes.length, source: 'https://upstream.example/tool.bin', role: 'file', checksum: 'manifest' }],
        blobs: [],
      },
    });
    reg = await startRegistry();
    nginx = await startFileServer();
  });
  after(async () => {
    await nginx?.stop();
    await reg?.stop();
  });

  /** Runs unpack with `flags`, an --emit-config folder and a --receipt; checks exit 2, the advice, and that nothing was written. */
  async function refusedUnpack(flags: string[], advice: RegExp): Promise<void> {
    const out = await makeTempDir('airlock-urlcreds-out-');
    const files = await makeTempDir('airlock-urlcreds-files-');
    const args = ['unpack', bundle, '--pub', pub, '--emit-config', path.join(out, 'config'), '--receipt', path.join(out, 'receipt.json'), ...flags];
    const r = await runAirlock(args.map((a) => a.replace('FILES_DIR', files)));
    assertNoPassword(r, await filesBelow(out), await filesBelow(files), await filesBelow(nginx.root));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, advice);
    assert.deepEqual(await readdir(out), [], 'no config and no receipt');
    assert.deepEqual(await readdir(files), []);
    assert.deepEqual(await readdir(nginx.root), []);
  }

  const CONFIG_JSON = /user name or password.*docker config\.json \("auths".*docs\/registries\.md/;

  it('--files-url http://user:password@host', async () => {
    const url = nginx.url.replace('http://', `http://airlock:${PASSWORD}@`);
    await refusedUnpack(['--registry', reg.host, '--files-url', url], new RegExp(`--files-url "http://\\*\\*\\*@127\\.0\\.0\\.1:${nginx.port}" holds a ${CONFIG_JSON.source}`));
  });

  it('--files-url http:user:password@host (no slashes, which URL parsers accept)', async () => {
    await refusedUnpack(['--registry', reg.host, '--files-url', `http:airlock:${PASSWORD}@127.0.0.1:${nginx.port}`], CONFIG_JSON);
  });

  it('--fileserver-url https://user:password@host', async () => {
    await refusedUnpack(['--registry', reg.host, '--files-dir', 'FILES_DIR', '--fileserver-url', `https://airlock:${PASSWORD}@files.example/root`], CONFIG_JSON);
  });

  it('--fileserver-url with only a user name, and a password that would make it no URL at all', async () => {
    await refusedUnpack(['--registry', reg.host, '--files-dir', 'FILES_DIR', '--fileserver-url', `https://${PASSWORD}@files.example/`], CONFIG_JSON);
    await refusedUnpack(['--registry', reg.host, '--files-dir', 'FILES_DIR', '--fileserver-url', `https://a:${PASSWORD}@[bad/`], /--fileserver-url "https:\/\/\*\*\*@\[bad\/" is not a URL/);
  });

  it('--registry user:password@host[/prefix]', async () => {
    await refusedUnpack(['--registry', `airlock:${PASSWORD}@${reg.host}/team`, '--files-dir', 'FILES_DIR'], /--registry \*\*\*@127\.0\.0\.1:\d+\/team: a user name or password does not go in --registry; give them with --username and --password-stdin, or in docker config\.json/);
    await refusedUnpack(['--registry', `https://airlock:${PASSWORD}@${reg.host}`, '--files-dir', 'FILES_DIR'], /--registry https:\/\/\*\*\*@127\.0\.0\.1:\d+: a user name or password/);
  });

  it('what the advice says works: docker config.json auths for the file server host, used for its PUTs', async () => {
    const locked = await startFileServer({ basicAuth: { username: 'airlock', password: PASSWORD } });
    try {
      const docker = await makeTempDir('airlock-urlcreds-docker-');
      const env = { ...process.env, DOCKER_CONFIG: docker };
      const args = ['unpack', bundle, '--pub', pub, '--registry', reg.host, '--files-url', locked.url];
      const anonymous = await runAirlock(args, undefined, { env });
      assert.equal(anonymous.code, 1, anonymous.stderr);
      assert.match(anonymous.stderr, new RegExp(`127\\.0\\.0\\.1:${locked.port} asks for a user name and password.*docker config\\.json`));
      const auth = Buffer.from(`airlock:${PASSWORD}`).toString('base64');
      await writeFile(path.join(docker, 'config.json'), JSON.stringify({ auths: { [`127.0.0.1:${locked.port}`]: { auth } } }));
      const r = await runAirlock(args, undefined, { env });
      assert.equal(r.code, 0, r.stderr);
      assertNoPassword(r);
      assert.equal(await readFile(path.join(locked.root, 'tools', 'tool.bin'), 'utf8'), 'a tool\n');
      assert.match(await readFile(path.join(locked.root, 'tools', 'tool.bin.sha256'), 'utf8'), /^[0-9a-f]{64} {2}tool\.bin\n$/);
    } finally {
      await locked.stop();
    }
  });

  it('sync --files-url: refused before the manifest is fetched', async () => {
    const dir = await makeTempDir('airlock-urlcreds-sync-');
    await writeFile(path.join(dir, 'm.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: t\nspec:\n  files:\n    - url: http://127.0.0.1:9/tool.bin\n      sha256: ${HEX}\n`);
    const url = nginx.url.replace('http://', `http://airlock:${PASSWORD}@`);
    const r = await runAirlock(['sync', 'm.yaml', '--registry', reg.host, '--files-url', url, '--cache', path.join(dir, 'cache'), '--emit-config', path.join(dir, 'config')], undefined, { cwd: dir });
    assertNoPassword(r, await filesBelow(dir), await filesBelow(nginx.root));
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, CONFIG_JSON);
    assert.deepEqual((await readdir(dir)).sort(), ['m.yaml']);
  });
});

describe('manifest URLs', () => {
  /** build --dry-run on a manifest whose spec is `spec`: the manifest is all that is checked. */
  async function buildSpec(spec: string): Promise<CliResult> {
    const dir = await makeTempDir('airlock-urlcreds-manifest-');
    await writeFile(path.join(dir, 'm.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: t\nspec:\n${spec}`);
    const r = await runAirlock(['build', 'm.yaml', '--dry-run', '--cache', path.join(dir, 'cache')], undefined, { cwd: dir });
    const written = await filesBelow(dir);
    written.delete(path.join(dir, 'm.yaml'));
    assertNoPassword(r, written);
    return r;
  }

  const ADVICE = /holds a user name or password, which airlock does not take from a URL; put the credentials for [^ ]+ in docker config\.json/;

  it('files: url', async () => {
    const r = await buildSpec(`  files:\n    - url: https://me:${PASSWORD}@files.example/tool.bin\n      sha256: ${HEX}\n`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`m\\.yaml:7:\\d+: spec\\.files\\[0\\]\\.url: "https://\\*\\*\\*@files\\.example/tool\\.bin" ${ADVICE.source}`));
    assert.match(r.stderr, /credentials for files\.example in/);
  });

  it('files: checksumUrl', async () => {
    const r = await buildSpec(`  files:\n    - url: https://files.example/tool.bin\n      checksumUrl: http:me:${PASSWORD}@files.example/tool.bin.sha256\n`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`m\\.yaml:8:\\d+: spec\\.files\\[0\\]\\.checksumUrl: "http:\\*\\*\\*@files\\.example/tool\\.bin\\.sha256" ${ADVICE.source}`));
  });

  it('falco.drivers.repoUrl', async () => {
    const r = await buildSpec(`  falco:\n    drivers:\n      repoUrl: https://me:${PASSWORD}@mirror.example/driver\n      version: 8.1.0+driver\n      kernels:\n        - { target: ubuntu-generic, kernelRelease: 6.8.0-79-generic, kernelVersion: "79", sha256: ${HEX} }\n`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`m\\.yaml:8:\\d+: spec\\.falco\\.drivers\\.repoUrl: "https://\\*\\*\\*@mirror\\.example/driver" ${ADVICE.source}`));
  });

  it('opensearch.baseUrl', async () => {
    const r = await buildSpec(`  opensearch:\n    version: 2.19.4\n    plugins: [repository-s3]\n    baseUrl: https://me:${PASSWORD}@mirror.example/plugins\n`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`m\\.yaml:9:\\d+: spec\\.opensearch\\.baseUrl: "https://\\*\\*\\*@mirror\\.example/plugins" ${ADVICE.source}`));
  });

  it('a URL from a variable (--set) is checked after substitution', async () => {
    const dir = await makeTempDir('airlock-urlcreds-set-');
    await writeFile(path.join(dir, 'm.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: t\nspec:\n  files:\n    - url: \${MIRROR}/tool.bin\n      sha256: ${HEX}\n`);
    const r = await runAirlock(['build', 'm.yaml', '--dry-run', '--cache', path.join(dir, 'cache'), '--set', `MIRROR=https://me:${PASSWORD}@files.example`], undefined, { cwd: dir });
    const written = await filesBelow(dir);
    written.delete(path.join(dir, 'm.yaml'));
    assertNoPassword(r, written);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, ADVICE);
  });

  it('a registries key written as user:password@host is not echoed', async () => {
    const r = await buildSpec(`  registries:\n    "me:${PASSWORD}@registry.example": { plainHttp: true }\n`);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, /"\*\*\*@registry\.example" is not a registry host/);
  });
});

describe('the helper every entry point uses', () => {
  it('hides the user name and password whatever the form, and never names them as a scheme', () => {
    const cases: Array<[string, string]> = [
      [`https://me:${PASSWORD}@h.example/x`, 'https://***@h.example/x'],
      [`http:me:${PASSWORD}@h.example`, 'http:***@h.example'],
      [`me:${PASSWORD}@h.example/prefix`, '***@h.example/prefix'],
      [`https://a@b:${PASSWORD}@h.example/x`, 'https://***@h.example/x'],
      [`ftp://me:${PASSWORD}@h.example`, 'ftp://***@h.example'],
      ['https://h.example/a@b', 'https://h.example/a@b'],
      ['registry.example:5000/team', 'registry.example:5000/team'],
    ];
    for (const [value, shown] of cases) {
      assert.equal(redactUserinfo(value), shown);
      const problem = httpUrlProblem(value) ?? '';
      assert.ok(!problem.includes(PASSWORD) && !problem.includes('me:'), problem);
    }
    assert.equal(httpUrlProblem('https://h.example/a@b'), undefined);
  });
});
