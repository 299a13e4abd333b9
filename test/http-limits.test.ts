// The limits interceptor against real servers: a manifest past its bound is
// refused at once (Content-Length) or cut (chunked) without the client
// holding it; a blob is exactly its size (longer cut, announced otherwise
// refused, a 206 must be of the same content); error bodies stay small; a
// short body is resumed with a Range request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Http, type HttpResponse } from '../src/http/client.js';
import { BodyLimitError, EXHAUSTED, HttpError, isRetryable, StatusError } from '../src/http/errors.js';
import { DEFAULT_RETRY } from '../src/http/retry.js';
import { MAX_MANIFEST_BYTES, MAX_SMALL_BODY } from '../src/http/limits.js';
import { pour, startServer, type TestServer } from './support/httpserver.js';

const MiB = 1024 * 1024;
const RETRY = { baseDelayMs: 5, maxDelayMs: 20 };

/** Reads a body to the end or its error, counting bytes (keeping none, or all when asked). */
async function drain(res: HttpResponse, keep = false): Promise<{ bytes: number; error?: unknown; data: Buffer }> {
  let bytes = 0;
  const parts: Buffer[] = [];
  try {
    for await (const chunk of res.body as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (keep) parts.push(chunk);
    }
    return { bytes, data: Buffer.concat(parts) };
  } catch (error) {
    return { bytes, error, data: Buffer.concat(parts) };
  }
}

describe('bounds per answer', () => {
  let srv: TestServer;
  let http: Http;
  /** Bytes each path's last answer wrote before it ended or the client left. */
  const written = new Map<string, number>();
  const blob = randomBytes(100_000);
  const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

  /** 200 for the whole, 206 for `bytes=N-`; `short` ends a whole answer (chunked) after that many bytes. */
  function ranged(req: IncomingMessage, res: ServerResponse, short?: number) {
    const m = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    if (m) {
      const start = Number(m[1]);
      res.writeHead(206, { 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`, 'content-length': blob.length - start });
      res.end(blob.subarray(start));
      return;
    }
    res.writeHead(200);
    res.end(short === undefined ? blob : blob.subarray(0, short));
  }

  before(async () => {
    srv = await startServer(async (req, res) => {
      const p = new URL(req.url ?? '/', 'http://x').pathname;
      const record = (n: Promise<number>) => n.then((w) => written.set(p, w));
      switch (p) {
        case '/big-declared':
          res.writeHead(200, { 'content-length': 20 * MiB, 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
          return record(pour(res, 20 * MiB));
        case '/big-chunked':
          // Big enough that holding it would show: reading 20 MiB whole already grows RSS by about 40 MiB.
          res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
          return record(pour(res, 256 * MiB));
        case '/endless':
          res.writeHead(200);
          return record(pour(res, Infinity, Buffer.alloc(4096, 0x62)));
        case '/cl-2048':
          res.writeHead(200, { 'content-length': 2048 });
          res.end(Buffer.alloc(2048));
          return;
        case '/cl-512':
          res.writeHead(200, { 'content-length': 512 });
          res.end(Buffer.alloc(512));
          return;
        case '/other-total':
          res.writeHead(206, { 'content-range': 'bytes 0-1023/2048', 'content-length': 1024 });
          res.end(Buffer.alloc(1024));
          return;
        case '/partial-ok':
          res.writeHead(206, { 'content-range': 'bytes 512-1023/1024', 'content-length': 512 });
          res.end(Buffer.alloc(512, 0x63));
          return;
        case '/partial-bare':
          res.writeHead(206, { 'content-length': 512 });
          res.end(Buffer.alloc(512));
          return;
        case '/error-forever':
          res.writeHead(500, { 'content-type': 'text/html' });
          return record(pour(res, Infinity, Buffer.alloc(4096, 0x65)));
        case '/error-big':
          res.writeHead(404, { 'content-type': 'text/html' });
          return record(pour(res, 3 * MiB));
        case '/short-ranged':
          return ranged(req, res, 30_000);
        case '/short-no-range':
          res.writeHead(200);
          res.end(blob.subarray(0, 30_000));
          return;
        default:
          res.writeHead(404);
          res.end();
      }
    });
    http = new Http({ retry: RETRY });
  });
  after(async () => {
    await http?.close();
    await srv?.close();
  });

  it('a 20 MiB manifest with Content-Length is refused before its body is read', async () => {
    const started = Date.now();
    const err = await http.request(`${srv.origin}/big-declared`, { maxBody: MAX_MANIFEST_BYTES, item: 'lib/app:v1' }).then(
      () => assert.fail('accepted a 20 MiB manifest'),
      (e: unknown) => e,
    );
    assert.ok(err instanceof BodyLimitError, String(err));
    assert.equal(err.code, 'AIRLOCK_BODY_LIMIT');
    assert.match(err.message, /^lib\/app:v1: the server announces 20971520 bytes, more than the 4194304 allowed/);
    assert.equal(err.origin, srv.origin);
    assert.ok(Date.now() - started < 5000);
    await waitFor(() => written.has('/big-declared'));
    assert.ok((written.get('/big-declared') ?? 0) < 20 * MiB, `the server did not get to send it all (wrote ${written.get('/big-declared')})`);
    assert.equal(srv.seen.filter((s) => s.path === '/big-declared').length, 1, 'not retried');
  });

  it('a chunked 256 MiB manifest (no Content-Length) is cut at 4 MiB, and the client does not hold it', async () => {
    const rss = process.memoryUsage().rss;
    const res = await http.request(`${srv.origin}/big-chunked`, { maxBody: MAX_MANIFEST_BYTES, item: 'lib/app:v1' });
    assert.equal(res.status, 200);
    const err = await res.body.text().then(
      () => assert.fail('read the whole manifest'),
      (e: unknown) => e,
    );
    const grown = process.memoryUsage().rss - rss;
    assert.ok(err instanceof BodyLimitError, String(err));
    assert.match(err.message, /^lib\/app:v1: the body is longer than 4194304 bytes; cut there/);
    assert.ok(grown < 50 * MiB, `RSS grew by ${(grown / MiB).toFixed(1)} MiB`);
    await waitFor(() => written.has('/big-chunked'));
    assert.ok((written.get('/big-chunked') ?? 0) < 64 * MiB, `the server was stopped early (wrote ${written.get('/big-chunked')})`);
  });

  it('a blob body that never ends is cut at its size: the consumer gets at most that many bytes', async () => {
    const res = await http.request(`${srv.origin}/endless`, { size: 1024, item: 'sha256:abc' });
    assert.equal(res.status, 200);
    const got = await drain(res);
    assert.ok(got.error instanceof BodyLimitError, String(got.error));
    assert.match(got.error.message, /sha256:abc: the body is longer than the expected 1024 bytes/);
    assert.ok(got.bytes <= 1024, `received ${got.bytes}`);
    await waitFor(() => written.has('/endless'));
  });

  it('a Content-Length longer or shorter than the size is refused at once, not retried', async () => {
    for (const [p, n] of [
      ['/cl-2048', 2048],
      ['/cl-512', 512],
    ] as const) {
      await assert.rejects(http.request(`${srv.origin}${p}`, { size: 1024 }), (e: unknown) => {
        assert.ok(e instanceof BodyLimitError, String(e));
        assert.match(e.message, new RegExp(`announces ${n} bytes, expected 1024; refusing it`));
        return true;
      });
      assert.equal(srv.seen.filter((s) => s.path === p).length, 1, p);
    }
  });

  it('a 206 must be of the content asked for: another total is refused, a missing Content-Range too', async () => {
    await assert.rejects(http.request(`${srv.origin}/other-total`, { size: 1024, headers: { range: 'bytes=0-' } }), (e: unknown) => {
      assert.ok(e instanceof BodyLimitError, String(e));
      assert.match(e.message, /the server says the content is 2048 bytes, expected 1024/);
      return true;
    });
    await assert.rejects(http.request(`${srv.origin}/partial-bare`, { size: 1024, headers: { range: 'bytes=512-' } }), (e: unknown) => {
      assert.ok(e instanceof HttpError, String(e));
      assert.equal(e.code, 'AIRLOCK_BAD_RANGE');
      return true;
    });
    // A 206 counts from its start: 512 of 1024 is the whole rest.
    const ok = await http.request(`${srv.origin}/partial-ok`, { size: 1024, headers: { range: 'bytes=512-' } });
    assert.equal(ok.status, 206);
    const got = await drain(ok);
    assert.equal(got.error, undefined);
    assert.equal(got.bytes, 512);
  });

  it('an error body that never ends is bounded to 1 MiB, and its retryable status retried all the same', async () => {
    const started = Date.now();
    const before = srv.seen.filter((s) => s.path === '/error-forever').length;
    const failed = await http.request(`${srv.origin}/error-forever`).then(
      async (res) => drain(res),
      (error: unknown) => ({ error, bytes: 0 }),
    );
    assert.ok(failed.error instanceof StatusError, String(failed.error));
    assert.equal(failed.error.status, 500);
    assert.match(failed.error.message, new RegExp(`error body longer than ${MAX_SMALL_BODY} bytes`));
    assert.equal((failed.error as { [EXHAUSTED]?: boolean })[EXHAUSTED], true, 'given up after its attempts');
    assert.equal(srv.seen.filter((s) => s.path === '/error-forever').length - before, DEFAULT_RETRY.attempts, 'retried like any 500');
    assert.ok(failed.bytes <= MAX_SMALL_BODY);
    assert.ok(Date.now() - started < 10_000);
    await waitFor(() => written.has('/error-forever'));
    // A POST is not retried by the interceptor: its 500 body is bounded all the same, and the caller may try again.
    await assert.rejects(http.request(`${srv.origin}/error-forever`, { method: 'POST', body: 'x' }), (e: unknown) => e instanceof StatusError && isRetryable(e));
  });

  it('an error answer the caller reads is cut at 1 MiB too', async () => {
    const res = await http.request(`${srv.origin}/error-big`);
    assert.equal(res.status, 404);
    const got = await drain(res);
    assert.ok(got.error instanceof BodyLimitError, String(got.error));
    assert.ok(got.bytes <= MAX_SMALL_BODY, `received ${got.bytes}`);
  });

  it('a short body (chunked, ended early) is resumed with a Range request', async () => {
    const res = await http.request(`${srv.origin}/short-ranged`, { size: blob.length, item: 'blob' });
    assert.equal(res.status, 200);
    const got = await drain(res, true);
    assert.equal(got.error, undefined, String(got.error));
    assert.equal(got.bytes, blob.length);
    assert.equal(sha(got.data), sha(blob), 'the exact bytes');
    const asked = srv.seen.filter((s) => s.path === '/short-ranged');
    assert.equal(asked.length, 2);
    assert.equal(asked[0]?.headers.range, undefined);
    assert.equal(asked[1]?.headers.range, 'bytes=30000-');
  });

  it('a short body from a server without Range support fails rather than splicing two answers', async () => {
    const res = await http.request(`${srv.origin}/short-no-range`, { size: blob.length, item: 'blob' });
    const got = await drain(res);
    assert.ok(got.error, "fails");
    assert.ok(got.bytes <= 30_000, `received ${got.bytes}: nothing past the first answer`);
  });
});

async function waitFor(cond: () => boolean, ms = 5000): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}
