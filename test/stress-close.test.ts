// 20 builds in a row against a file server that closes every connection
// after the body (HTTP/1.0 style, no Content-Length) and a registry behind a
// proxy that cuts a blob mid-way: every build completes, none crashes (with
// undici 7 two in nine died of nodejs/undici#5360).
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { makeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { gzipDeterministic, pseudoRandomBytes, Seeder } from './support/seed.js';

const FILE = pseudoRandomBytes('close-file', 3 * 1024 * 1024);
let files: Server;
let filesUrl: string;
let reg: TestRegistry;
let proxy: TestFaultProxy;
let dir: string;

before(async () => {
  files = createServer((req, res) => {
    // No Content-Length: the body ends when the connection does.
    res.writeHead(200, { connection: 'close', 'content-type': 'application/octet-stream' });
    res.end(req.method === 'HEAD' ? undefined : FILE);
  });
  await new Promise<void>((r) => files.listen(0, '127.0.0.1', r));
  filesUrl = `http://127.0.0.1:${(files.address() as AddressInfo).port}`;
  reg = await startRegistry();
  await new Seeder({ url: reg.url }).pushImage('team/big', '1.0', { layers: [gzipDeterministic(pseudoRandomBytes('close-layer', 2 * 1024 * 1024))], format: 'oci' });
  proxy = await startFaultProxy(reg.url);
  dir = await makeTempDir('airlock-close-');
  assert.equal((await runAirlock(['keygen', '--out', path.join(dir, 'k')])).code, 0);
  const sha = createHash('sha256').update(FILE).digest('hex');
  await writeFile(
    path.join(dir, 'm.yaml'),
    `apiVersion: airlock/v1\nkind: Bundle\nmetadata: { name: close }\nspec:\n  images: [${proxy.host}/team/big:1.0]\n  files:\n    - { url: "${filesUrl}/tool.bin", path: tools/tool.bin, sha256: ${sha} }\n`,
  );
});

after(async () => {
  await proxy?.stop();
  await reg?.stop();
  await new Promise<void>((r) => (files ? files.close(() => r()) : r()));
});

it('20 builds against a Connection: close file server and through a cutting proxy: no crash', async () => {
  for (let i = 0; i < 20; i++) {
    proxy.addRule({ kind: 'drop', afterBytes: 500_000 + i * 50_000, method: 'GET', match: /\/blobs\/sha256:/ });
    const r = await runAirlock(['build', path.join(dir, 'm.yaml'), '-o', path.join(dir, `b${i}.tar`), '--key', path.join(dir, 'k.key'), '--cache', path.join(dir, `cache${i}`)]);
    assert.equal(r.code, 0, `build ${i}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /AssertionError|Unhandled|\n\s+at /, `build ${i} printed no crash`);
  }
  assert.equal(proxy.pendingRules, 0, 'every cut happened');
});
