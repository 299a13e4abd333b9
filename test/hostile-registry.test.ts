// A hostile registry beside the real one (SPEC §1): credentials stay with
// their host, foreign realms get anonymous token requests, redirects carry no
// Authorization across origins, and bodies are bounded by what was read.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { AIRLOCK, runAirlock } from './support/cli.js';
import { startHostileRegistry, type HostileRegistry, type Mode } from './support/hostile.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { pseudoRandomBytes, gzipDeterministic, Seeder } from './support/seed.js';

let hostile: HostileRegistry;
let real: TestRegistry;
let key: string;

before(async () => {
  hostile = await startHostileRegistry();
  real = await startRegistry({ basicAuth: { username: 'ops', password: 'real-secret' } });
  const seeder = new Seeder({ url: real.url, caFile: real.caFile ?? '', username: 'ops', password: 'real-secret' });
  await seeder.pushImage('team/app', '1.0', { layers: [gzipDeterministic(pseudoRandomBytes('hostile-real', 2000))], format: 'oci' });
  const dir = await makeTempDir('airlock-hostile-key-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
  key = path.join(dir, 'k.key');
});

after(async () => {
  await hostile?.stop();
  await real?.stop();
});

interface Run {
  code: number | null;
  stderr: string;
  /** Peak resident memory of the airlock process, bytes (VmHWM). */
  peakRss: number;
  dir: string;
}

/** Builds `images` (refs), with the password for `authHost` on stdin and a docker config.json; records peak RSS. */
async function build(images: string[], opts: { authHost?: string; dockerAuths?: Record<string, string> } = {}): Promise<Run> {
  const dir = await makeTempDir('airlock-hostile-');
  const registries = `  registries:\n    "${real.host}": { caFile: "${real.caFile}" }\n`;
  await writeFile(path.join(dir, 'm.yaml'), `apiVersion: airlock/v1\nkind: Bundle\nmetadata: { name: hostile }\nspec:\n${registries}  images:\n${images.map((i) => `    - ${i}\n`).join('')}`);
  await writeFile(
    path.join(dir, 'config.json'),
    JSON.stringify({ auths: Object.fromEntries(Object.entries(opts.dockerAuths ?? {}).map(([h, up]) => [h, { auth: Buffer.from(up).toString('base64') }])) }),
  );
  const args = [AIRLOCK, 'build', path.join(dir, 'm.yaml'), '-o', path.join(dir, 'b.tar'), '--key', key, '--cache', path.join(dir, 'cache')];
  if (opts.authHost) args.push('--username', 'ops', '--password-stdin', '--auth-host', opts.authHost);
  const child = spawn(process.execPath, args, { env: { ...process.env, DOCKER_CONFIG: dir, AIRLOCK_STALL_TIMEOUT: '5' }, stdio: ['pipe', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  child.stdin.end(opts.authHost ? 'real-secret\n' : '');
  let peakRss = 0;
  const poll = setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
      if (m) peakRss = Math.max(peakRss, Number(m[1]) * 1024);
    } catch {
      // exited
    }
  }, 20);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearInterval(poll);
  return { code, stderr, peakRss, dir };
}

const authAt = (mode: Mode) => hostile.seen.filter((s) => s.path.startsWith(`/v2/${mode}/`) && s.authorization !== undefined);

describe('a hostile registry on 127.0.0.1 beside the real docker-registry', () => {
  it('answering 401 Basic never receives the credentials meant for another host', async () => {
    const r = await build([`${real.host}/team/app:1.0`, hostile.ref('basic')], { authHost: real.host });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`${hostile.host} asks for a user name and password`));
    assert.doesNotMatch(r.stderr, new RegExp(`image ${real.host}/team/app:1.0:`), 'the real image was built with its credentials');
    assert.ok(hostile.seen.some((s) => s.path.startsWith('/v2/basic/')), 'the hostile registry was asked');
    assert.deepEqual(authAt('basic'), [], 'no Authorization ever reached it');
  });

  it('a Bearer realm on another host, over plain HTTP, gets an anonymous token request', async () => {
    hostile.realm.seen.length = 0;
    const r = await build([hostile.ref('bearer-foreign')], { dockerAuths: { [hostile.host]: 'victim:hostile-pass' } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(hostile.realm.seen.length > 0, 'a token was asked for');
    assert.ok(hostile.realm.seen.every((s) => s.authorization === undefined), 'without credentials');
    assert.match(r.stderr, new RegExp(`not sending the credentials for ${hostile.host} to ${hostile.realm.host}`));
  });

  it('a 307 to another origin arrives there without Authorization', async () => {
    hostile.cdn.seen.length = 0;
    const r = await build([hostile.ref('redirect-blobs')], { dockerAuths: { [hostile.host]: 'user:pass' } });
    assert.equal(r.code, 0, r.stderr);
    assert.ok(authAt('redirect-blobs').length > 0, 'the registry itself got the credentials it asked for');
    assert.ok(hostile.cdn.seen.length >= 2, 'both blobs came from the other origin');
    assert.ok(hostile.cdn.seen.every((s) => s.authorization === undefined), 'no Authorization crossed to it');
  });

  it('a chunked layer that never ends is cut at its size: the item fails, nothing past the size is kept', async (t) => {
    const r = await build([hostile.ref('endless-layer')]);
    t.diagnostic(r.stderr.trim().split('\n').pop() ?? '');
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`image ${hostile.ref('endless-layer')}: .*longer than the expected ${hostile.layer.size} bytes`));
    assert.equal(existsSync(path.join(r.dir, 'b.tar')), false, 'no bundle');
    for (const sub of ['partial', 'blobs/sha256', 'tmp']) {
      const folder = path.join(r.dir, 'cache', sub);
      for (const f of existsSync(folder) ? readdirSync(folder) : []) {
        assert.ok(statSync(path.join(folder, f)).size <= hostile.layer.size, `${sub}/${f} holds at most the declared size`);
      }
    }
  });

  it('a Content-Length shorter than the descriptor fails the item cleanly, without a stack trace', async () => {
    const r = await build([hostile.ref('short-length')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, new RegExp(`image ${hostile.ref('short-length')}: .*announces ${hostile.layer.size - 100} bytes, expected ${hostile.layer.size}`));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  });

  for (const mode of ['huge-manifest', 'huge-manifest-chunked'] as const) {
    it(`a 20 MiB manifest (${mode === 'huge-manifest' ? 'with' : 'without'} Content-Length) is refused with peak RSS under 150 MB`, async (t) => {
      const r = await build([hostile.ref(mode)]);
      t.diagnostic(`peak RSS ${(r.peakRss / 1048576).toFixed(1)} MiB; ${r.stderr.trim().split('\n').pop()}`);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, new RegExp(`image ${hostile.ref(mode)}: .*(announces 20971520 bytes, more than the 4194304 allowed|longer than 4194304 bytes)`));
      assert.ok(r.peakRss > 0 && r.peakRss < 150 * 1024 * 1024, `peak RSS ${(r.peakRss / 1048576).toFixed(1)} MiB`);
    });
  }

  it('control characters in what a registry says reach the terminal escaped', async () => {
    const r = await build([hostile.ref('escapes')]);
    assert.equal(r.code, 1, r.stderr);
    const raw = [...r.stderr].filter((c) => c !== '\n' && ((c.codePointAt(0) ?? 0) < 0x20 || c === '\u007f'));
    assert.deepEqual(raw, [], 'no raw control character');
    assert.match(r.stderr, /\\x1b\[2K\\rOK bundle\.tar: signature valid\\x07/);
  });

  it('a manifest whose bytes do not match its digest is refused', async () => {
    const r = await build([hostile.ref('lying-manifest')]);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /sent a manifest whose digest is sha256:[0-9a-f]{64}; refusing it|Docker-Content-Digest says/);
    assert.equal(existsSync(path.join(r.dir, 'b.tar')), false);
  });
});
