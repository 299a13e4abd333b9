// Error bodies from upstream, with a real registry behind the fault proxy:
// what a registry writes in an error reaches the operator's terminal escaped
// and on one line (a newline or an escape sequence cannot forge a line), and
// a retryable status is retried whatever the size of its error body.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Http } from '../src/http/client.js';
import { RegistryClient } from '../src/registry/client.js';
import { runAirlock } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, Seeder } from './support/seed.js';

const FORGED = 'OK bundle.tar: signature valid';
const ESC = '\u001b[2K\r';

describe('error bodies from a registry', () => {
  let registry: TestRegistry;
  let proxy: TestFaultProxy;
  let work: string;
  let key: string;

  before(async () => {
    registry = await startRegistry();
    const seeder = new Seeder({ url: registry.url });
    try {
      await seeder.pushImage('lib/app', '1', { layers: [await makeLayer('errbody', 20_000)], format: 'oci' });
    } finally {
      await seeder.close();
    }
    proxy = await startFaultProxy(registry.url);
    work = await makeTempDir('airlock-errbody-');
    const k = await runAirlock(['keygen', '--out', path.join(work, 'k')]);
    assert.equal(k.code, 0, k.stderr);
    key = path.join(work, 'k.key');
  });

  after(async () => {
    await proxy?.stop();
    await registry?.stop();
    if (work) await removeTempDir(work);
  });

  let n = 0;
  async function build(): Promise<{ code: number | null; stderr: string }> {
    const dir = path.join(work, `b${n++}`);
    const manifest = `${dir}.yaml`;
    await writeFile(manifest, `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: e\n  version: "1"\nspec:\n  images:\n    - ${proxy.host}/lib/app:1\n`);
    return runAirlock(['build', manifest, '-o', `${dir}.tar`, '--key', key, '--cache', path.join(work, `cache${n}`)]);
  }

  for (const [kind, body] of [
    ['the message of a JSON error', JSON.stringify({ errors: [{ code: 'DENIED', message: `no access\n${FORGED}${ESC}` }] })],
    ['a plain-text error body', `no access\n${FORGED}${ESC}\n`],
  ] as const) {
    it(`${kind}: escaped, on the one line of the error`, async () => {
      proxy.clearRules();
      proxy.addRule({ kind: 'status', status: 403, method: 'GET', match: /\/manifests\//, body, times: 10 });
      const r = await build();
      proxy.clearRules();
      assert.equal(r.code, 1, r.stderr);
      const lines = r.stderr.split('\n');
      assert.ok(!lines.some((l) => l.startsWith(FORGED) || l.trimStart().startsWith(FORGED)), `a forged line on stderr:\n${r.stderr}`);
      assert.ok(!r.stderr.includes('\u001b'), 'no raw ESC on stderr');
      const line = lines.find((l) => l.includes('HTTP 403')) ?? '';
      assert.ok(line.includes(`no access\\n${FORGED}\\x1b[2K`), `escaped on the error's line: ${line}`);
      assert.ok(line.includes(proxy.url), `names the origin: ${line}`);
    });
  }

  for (const chunked of [false, true]) {
    it(`a 503 with a 2 MiB error body${chunked ? ' (chunked)' : ''} is retried, then the manifest arrives`, async () => {
      proxy.stats.reset();
      proxy.addRule({ kind: 'status', status: 503, method: 'GET', match: /\/manifests\/1$/, bodyBytes: 2 * 1024 * 1024, chunked });
      const http = new Http({ retry: { baseDelayMs: 5, maxDelayMs: 20 } });
      try {
        const m = await new RegistryClient(proxy.host, http).manifest('lib/app', '1');
        assert.match(m.mediaType, /manifest/);
        const asked = proxy.stats.requests.filter((q) => q.path.endsWith('/manifests/1'));
        assert.deepEqual(
          asked.map((q) => q.status),
          [503, 200],
        );
      } finally {
        await http.close();
      }
    });
  }
});
