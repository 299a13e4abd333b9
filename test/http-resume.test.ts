// A download cut mid-body after a redirect, through the real CLI: a real
// registry (and nginx for `files:`) behind the fault proxy, which 307s blobs
// and files to a second fault proxy playing a CDN that ignores Range and cuts
// the body. Cut once, the download starts over from byte 0 and the build
// succeeds; cut every time, the build fails naming the item, the CDN's origin
// and what to do. Then, against small servers, a resume answered with another
// length or another ETag is refused with the same care.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Http, type HttpResponse } from '../src/http/client.js';
import { describeNetworkError, isRetryable } from '../src/http/errors.js';
import { runAirlock, type CliResult } from './support/cli.js';
import { startFaultProxy, type TestFaultProxy } from './support/faultproxy.js';
import { startFileServer, type TestFileServer } from './support/fileserver.js';
import { startServer, type TestServer } from './support/httpserver.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startRegistry, type TestRegistry } from './support/registry.js';
import { makeLayer, pseudoRandomBytes, Seeder, sha256 } from './support/seed.js';

const LAYER_BYTES = 600_000;
const FILE_BYTES = 500_000;
const CUT_AT = 100_000;

describe('a CDN behind a redirect that cuts the body and ignores Range', () => {
  let registry: TestRegistry;
  let files: TestFileServer;
  let cdn: TestFaultProxy;
  let cdnFiles: TestFaultProxy;
  let front: TestFaultProxy;
  let frontFiles: TestFaultProxy;
  let work: string;
  let key: string;
  let layer: string;
  let layerSize: number;
  let fileSha: string;

  before(async () => {
    registry = await startRegistry();
    files = await startFileServer();
    const seeder = new Seeder({ url: registry.url });
    try {
      const pushed = await seeder.pushImage('lib/app', '1', { layers: [await makeLayer('cdn-cut', LAYER_BYTES)], format: 'oci' });
      layer = pushed.layerDescriptors[0]?.digest ?? '';
      layerSize = pushed.layerDescriptors[0]?.size ?? 0;
    } finally {
      await seeder.close();
    }
    const bytes = pseudoRandomBytes('cdn-file', FILE_BYTES);
    fileSha = sha256(bytes).replace(/^sha256:/, '');
    await writeFile(path.join(files.root, 'tool.bin'), bytes);
    cdn = await startFaultProxy(registry.url, { ignoreRange: true });
    cdnFiles = await startFaultProxy(files.url, { ignoreRange: true });
    front = await startFaultProxy(registry.url, { rules: [{ kind: 'redirect', method: 'GET', match: /\/blobs\/sha256:/, to: cdn.url, times: 1000 }] });
    frontFiles = await startFaultProxy(files.url, { rules: [{ kind: 'redirect', match: /^\/tool\.bin/, to: cdnFiles.url, times: 1000 }] });
    work = await makeTempDir('airlock-cdn-');
    const k = await runAirlock(['keygen', '--out', path.join(work, 'k')]);
    assert.equal(k.code, 0, k.stderr);
    key = path.join(work, 'k.key');
  });

  after(async () => {
    await Promise.all([front?.stop(), frontFiles?.stop(), cdn?.stop(), cdnFiles?.stop()]);
    await Promise.all([registry?.stop(), files?.stop()]);
    if (work) await removeTempDir(work);
  });

  let n = 0;
  async function build(what: 'image' | 'file'): Promise<{ r: CliResult; dir: string }> {
    const dir = path.join(work, `b${n++}`);
    await mkdir(dir);
    const spec =
      what === 'image'
        ? `  images:\n    - ${front.host}/lib/app:1\n`
        : `  files:\n    - url: ${frontFiles.url}/tool.bin\n      path: tools/tool.bin\n      sha256: ${fileSha}\n`;
    const manifest = path.join(work, `m${n}.yaml`);
    await writeFile(manifest, `apiVersion: airlock/v1\nkind: Bundle\nmetadata:\n  name: cdn\n  version: "1"\nspec:\n${spec}`);
    const r = await runAirlock(['build', manifest, '-o', path.join(dir, 'bundle.tar'), '--key', key, '--cache', path.join(dir, 'cache')]);
    return { r, dir };
  }

  function reset(): void {
    for (const p of [cdn, cdnFiles, front, frontFiles]) p.stats.reset();
  }

  it('a blob cut once: the download starts over from byte 0 and the build succeeds', async () => {
    reset();
    cdn.addRule({ kind: 'drop', method: 'GET', match: new RegExp(`/blobs/${layer}`), afterBytes: CUT_AT });
    const { r, dir } = await build('image');
    assert.equal(r.code, 0, r.stderr);
    const v = await runAirlock(['verify', path.join(dir, 'bundle.tar'), '--pub', key.replace(/\.key$/, '.pub')]);
    assert.equal(v.code, 0, v.stderr);
    const asked = cdn.stats.requests.filter((q) => q.path.endsWith(layer));
    assert.ok(asked.length >= 2, `the CDN was asked again (${asked.length})`);
    assert.ok(asked.every((q) => q.status === 200), 'the CDN always answered the whole blob');
    assert.equal(cdn.pendingRules, 0);
  });

  it('a file cut once: the download starts over from byte 0 and the build succeeds', async () => {
    reset();
    cdnFiles.addRule({ kind: 'drop', method: 'GET', match: /^\/tool\.bin/, afterBytes: CUT_AT });
    const { r, dir } = await build('file');
    assert.equal(r.code, 0, r.stderr);
    const v = await runAirlock(['verify', path.join(dir, 'bundle.tar'), '--pub', key.replace(/\.key$/, '.pub')]);
    assert.equal(v.code, 0, v.stderr);
    assert.ok(cdnFiles.stats.requests.filter((q) => q.path === '/tool.bin').length >= 2, 'the CDN was asked again');
  });

  function assertNamed(r: CliResult, item: string, origin: string, total: number): void {
    assert.equal(r.code, 1, r.stderr);
    const line = r.stderr.split('\n').find((l) => l.includes(item)) ?? '';
    assert.ok(line, `stderr names ${item}: ${r.stderr}`);
    assert.ok(line.includes(origin), `names the CDN ${origin}: ${line}`);
    assert.match(line, /ignored Range/, line);
    assert.ok(line.includes(`cut at ${CUT_AT} of ${total} bytes`), `says where it was cut: ${line}`);
    assert.match(line, /run again/, `says what to do: ${line}`);
    assert.doesNotMatch(r.stderr, /^\s+at /m, 'no stack trace');
    assert.doesNotMatch(r.stderr, /server does not support the range header/);
  }

  it('a blob cut every time: fails naming the blob, the CDN and what to do', async () => {
    reset();
    cdn.addRule({ kind: 'drop', method: 'GET', match: new RegExp(`/blobs/${layer}`), afterBytes: CUT_AT, times: 1000 });
    const { r } = await build('image');
    cdn.clearRules();
    assertNamed(r, `lib/app@${layer}`, cdn.url, layerSize);
  });

  it('a file cut every time: fails naming the URL, the CDN and what to do', async () => {
    reset();
    cdnFiles.addRule({ kind: 'drop', method: 'GET', match: /^\/tool\.bin/, afterBytes: CUT_AT, times: 1000 });
    const { r } = await build('file');
    cdnFiles.clearRules();
    assertNamed(r, `${frontFiles.url}/tool.bin`, cdnFiles.url, FILE_BYTES);
  });
});

describe('resumes against small servers', () => {
  let srv: TestServer;
  const blob = randomBytes(100_000);
  const other = randomBytes(120_000);
  const FAST = { baseDelayMs: 5, maxDelayMs: 20 };

  before(async () => {
    srv = await startServer((req, res) => {
      const p = new URL(req.url ?? '/', 'http://x').pathname;
      const range = /^bytes=(\d+)-/.exec(req.headers.range ?? '');
      const start = range ? Number(range[1]) : 0;
      if (!range) {
        res.writeHead(200, { etag: '"v1"', 'content-length': blob.length });
        res.write(blob.subarray(0, 40_000), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      if (p === '/longer') {
        // Another version of the content: another total length.
        res.writeHead(206, { etag: '"v1"', 'content-range': `bytes ${start}-${other.length - 1}/${other.length}`, 'content-length': other.length - start });
        res.end(other.subarray(start));
        return;
      }
      if (p === '/etag') {
        res.writeHead(206, { etag: '"v2"', 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`, 'content-length': blob.length - start });
        res.end(blob.subarray(start));
        return;
      }
      if (p === '/cuts') {
        // Honours Range, but cuts every answer after 10 000 bytes.
        res.writeHead(206, { etag: '"v1"', 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`, 'content-length': blob.length - start });
        res.write(blob.subarray(start, start + 10_000), () => setTimeout(() => res.socket?.destroy(), 20));
        return;
      }
      if (p === '/changed') {
        // If-Match no longer matches.
        res.writeHead(412, { 'content-length': 0 });
        res.end();
        return;
      }
      res.writeHead(404);
      res.end();
    });
  });
  after(async () => srv?.close());

  async function failure(p: string, attempts = 6): Promise<Error> {
    const http = new Http({ retry: { ...FAST, attempts } });
    try {
      const res: HttpResponse = await http.request(`${srv.origin}${p}`, { item: `file ${srv.origin}${p}` });
      assert.equal(res.status, 200);
      let got = 0;
      try {
        for await (const c of res.body as AsyncIterable<Buffer>) got += c.length;
      } catch (err) {
        if (p !== '/cuts') assert.ok(got <= 40_000, `nothing of the other answer reached the consumer (${got})`);
        return err as Error;
      }
      assert.fail(`read ${got} bytes without an error`);
    } finally {
      await http.close();
    }
  }

  for (const [p, said] of [
    ['/longer', /120000 bytes, not 100000/],
    ['/etag', /ETag/],
    ['/changed', /HTTP 412/],
  ] as const) {
    it(`${p}: refused naming the item, the origin, the byte it was cut at and what to do`, async () => {
      const err = await failure(p);
      const line = describeNetworkError(err);
      assert.ok(line.includes(`file ${srv.origin}${p}`), line);
      assert.ok(line.includes(`cut at 40000 of 100000 bytes`), line);
      assert.match(line, said);
      assert.match(line, /changed|run again/, line);
      assert.doesNotMatch(line, /Content-Range mismatch|ETag mismatch|server does not support/);
      assert.equal(isRetryable(err), true, 'an item-level loop may start over');
    });
  }

  it('a body cut on every attempt: the last error names the item, the origin, how far it got and what to do', async () => {
    const err = await failure('/cuts', 3);
    const line = describeNetworkError(err);
    assert.ok(line.startsWith(`file ${srv.origin}/cuts: `), line);
    assert.ok(line.includes(`(from ${srv.origin}, after 60000 of 100000 bytes, 3 attempts)`), `names the origin and how far it got: ${line}`);
    assert.match(line, /run again: the download resumes/);
    assert.equal(isRetryable(err), false, 'the attempts are spent: an outer loop does not multiply them');
  });
});
