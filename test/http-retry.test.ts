// The retry interceptor and withRetry against real servers: 503s are retried
// after the Retry-After a server asks for (and not at all when it asks too
// much), a GET cut mid-body is resumed with Range to the exact bytes, a POST
// is left to the caller's withRetry, and an exhausted error is not retried
// again by an outer loop.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { Http, type HttpResponse } from '../src/http/client.js';
import { describeNetworkError, EXHAUSTED, isRetryable, StatusError } from '../src/http/errors.js';
import { DEFAULT_RETRY, parseRetryAfter, withRetry, type RetryPolicy } from '../src/http/retry.js';
import { startServer, type TestServer } from './support/httpserver.js';

const FAST: Partial<RetryPolicy> = { baseDelayMs: 5, maxDelayMs: 20 };
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function readAll(res: HttpResponse): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of res.body as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

describe('the retry interceptor', () => {
  let srv: TestServer;
  const blob = randomBytes(100_000);
  const count = (p: string) => srv.seen.filter((s) => new URL(s.path, 'http://x').pathname === p).length;

  before(async () => {
    srv = await startServer((req, res) => {
      const p = new URL(req.url ?? '/', 'http://x').pathname;
      const n = count(p);
      switch (p) {
        case '/busy-twice':
          if (n <= 2) {
            res.writeHead(503, { 'retry-after': '1' });
            res.end('busy');
            return;
          }
          res.writeHead(200);
          res.end('ok');
          return;
        case '/busy-long':
          res.writeHead(503, { 'retry-after': '3600' });
          res.end('come back in an hour');
          return;
        case '/always-503':
          res.writeHead(503);
          res.end();
          return;
        case '/drop': {
          const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
          if (range) {
            const start = Number(range[1]);
            res.writeHead(206, { etag: '"v1"', 'content-range': `bytes ${start}-${blob.length - 1}/${blob.length}`, 'content-length': blob.length - start });
            res.end(blob.subarray(start));
            return;
          }
          res.writeHead(200, { etag: '"v1"', 'content-length': blob.length });
          // 40 000 bytes, then the connection drops.
          res.write(blob.subarray(0, 40_000), () => setTimeout(() => res.socket?.destroy(), 20));
          return;
        }
        case '/post':
          if (n <= 2) {
            res.writeHead(503);
            res.end();
            return;
          }
          res.writeHead(201);
          res.end('created');
          return;
        default:
          res.writeHead(404);
          res.end();
      }
    });
  });
  after(async () => srv?.close());

  it('503 twice then 200: succeeds, having waited at least the Retry-After each time', async () => {
    const delays: number[] = [];
    const http = new Http({ retry: { ...FAST, onRetry: (_e, _a, d) => delays.push(d) } });
    try {
      const started = Date.now();
      const res = await http.request(`${srv.origin}/busy-twice`);
      const elapsed = Date.now() - started;
      assert.equal(res.status, 200);
      assert.equal(await res.body.text(), 'ok');
      assert.equal(count('/busy-twice'), 3);
      assert.ok(elapsed >= 2000, `waited ${elapsed} ms for two Retry-After: 1`);
      assert.equal(delays.length, 2);
      for (const d of delays) assert.ok(d >= 1000, `delay ${d}`);
    } finally {
      await http.close();
    }
  });

  it('a Retry-After beyond maxRetryAfterMs: gives up at once, marked exhausted, naming the status and origin', async () => {
    const http = new Http({ retry: FAST });
    try {
      const started = Date.now();
      const err = await http.request(`${srv.origin}/busy-long`).then(
        () => assert.fail('waited an hour?'),
        (e: unknown) => e,
      );
      assert.ok(Date.now() - started < 2000, 'promptly');
      assert.equal(count('/busy-long'), 1);
      assert.equal((err as { statusCode?: number }).statusCode, 503);
      assert.equal((err as Record<symbol, unknown>)[EXHAUSTED], true);
      assert.equal(isRetryable(err), false, 'an outer loop does not try again');
      const line = describeNetworkError(err);
      assert.ok(line.includes('503') && line.includes(srv.origin), line);
    } finally {
      await http.close();
    }
  });

  it('the attempts are counted in all: always 503 with attempts 3 → three requests', async () => {
    const http = new Http({ retry: { ...FAST, attempts: 3 } });
    try {
      await assert.rejects(http.request(`${srv.origin}/always-503`), (e: unknown) => (e as Record<symbol, unknown>)[EXHAUSTED] === true);
      assert.equal(count('/always-503'), 3);
    } finally {
      await http.close();
    }
  });

  for (const size of [undefined, blob.length]) {
    it(`a GET whose connection drops mid-body is resumed with Range, to the exact bytes${size ? ' (with size)' : ''}`, async () => {
      const http = new Http({ retry: FAST });
      const before = srv.seen.length;
      try {
        const res = await http.request(`${srv.origin}/drop`, size === undefined ? {} : { size });
        assert.equal(res.status, 200);
        const got = await readAll(res);
        assert.equal(got.length, blob.length);
        assert.equal(sha(got), sha(blob));
        const asked = srv.seen.slice(before);
        assert.equal(asked.length, 2);
        assert.equal(asked[1]?.headers.range, 'bytes=40000-99999');
        assert.equal(asked[1]?.headers['if-match'], '"v1"', 'resumed only if the content is the same');
      } finally {
        await http.close();
      }
    });
  }

  it('a blob redirected to a CDN that drops mid-body is resumed through the redirect', async () => {
    const registry = await startServer((_req, res) => {
      res.writeHead(307, { location: `${srv.origin}/drop` });
      res.end();
    });
    const http = new Http({ retry: FAST });
    const before = srv.seen.length;
    try {
      const res = await http.request(`${registry.origin}/v2/lib/app/blobs/sha256:${'2'.repeat(64)}`, { size: blob.length });
      assert.equal(res.status, 200);
      const got = await readAll(res);
      assert.equal(sha(got), sha(blob));
      assert.equal(res.url.href, `${srv.origin}/drop`);
      assert.equal(registry.seen.length, 2, 'asked again, and redirected again');
      assert.equal(registry.seen[1]?.headers.range, 'bytes=40000-99999');
      assert.equal(srv.seen.slice(before).at(-1)?.headers.range, 'bytes=40000-99999', 'the range went along');
    } finally {
      await http.close();
      await registry.close();
    }
  });

  it('a POST answered 503 is not retried by the interceptor; the caller withRetry does it', async () => {
    const http = new Http({ retry: FAST });
    try {
      const err = await http.request(`${srv.origin}/post`, { method: 'POST', body: 'x' }).then(
        () => assert.fail('a 503 POST went through'),
        (e: unknown) => e,
      );
      assert.equal(count('/post'), 1, 'one request: the interceptor left it alone');
      assert.equal((err as { statusCode?: number }).statusCode, 503);
      assert.ok(isRetryable(err), 'retryable for the caller');
      let attempts = 0;
      const res = await withRetry(async () => {
        attempts++;
        return http.request(`${srv.origin}/post`, { method: 'POST', body: 'x' });
      }, { ...DEFAULT_RETRY, ...FAST });
      assert.equal(res.status, 201);
      assert.equal(await res.body.text(), 'created');
      assert.equal(attempts, 2);
      assert.equal(count('/post'), 3);
    } finally {
      await http.close();
    }
  });

  it('a token server that keeps failing: its attempts are not multiplied by the request that needed the token', async () => {
    const tokenServer = await startServer((_req, res) => {
      res.writeHead(503);
      res.end('down');
    });
    const registry = await startServer((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${tokenServer.origin}/token",service="s"` });
      res.end();
    });
    const http = new Http({ retry: { ...FAST, attempts: 3 } });
    try {
      const err = await http.request(`${registry.origin}/v2/lib/app/manifests/v1`).then(
        () => assert.fail('got through'),
        (e: unknown) => e,
      );
      assert.equal((err as { statusCode?: number }).statusCode, 503);
      assert.equal((err as { origin?: string }).origin, tokenServer.origin, 'names the token server');
      assert.equal(tokenServer.seen.length, 3, 'the token request\'s own three attempts, not three times three');
      assert.equal(registry.seen.length, 1);
    } finally {
      await http.close();
      await registry.close();
      await tokenServer.close();
    }
  });

  it('withRetry does not multiply the attempts of an exhausted request', async () => {
    const http = new Http({ retry: { ...FAST, attempts: 3 } });
    const before = count('/always-503');
    try {
      let calls = 0;
      await assert.rejects(
        withRetry(async () => {
          calls++;
          return http.request(`${srv.origin}/always-503`);
        }, { ...DEFAULT_RETRY, ...FAST, attempts: 3 }),
      );
      assert.equal(calls, 1);
      assert.equal(count('/always-503') - before, 3, 'three requests, not nine');
    } finally {
      await http.close();
    }
  });
});

describe('withRetry', () => {
  const policy = { ...DEFAULT_RETRY, baseDelayMs: 10, maxDelayMs: 20 };

  it('retries what is retryable, honouring the Retry-After', async () => {
    let calls = 0;
    const started = Date.now();
    const v = await withRetry(async () => {
      if (++calls < 3) throw new StatusError('busy', 503, calls === 1 ? 0.2 : undefined);
      return 'ok';
    }, policy);
    assert.equal(v, 'ok');
    assert.equal(calls, 3);
    assert.ok(Date.now() - started >= 200, 'waited at least the Retry-After');
  });

  it('stops at once on what is not retryable, on an exhausted error, and on a Retry-After beyond the limit', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw new Error('not transient');
      }, policy),
      /not transient/,
    );
    assert.equal(calls, 1);

    calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw Object.assign(new StatusError('given up', 503), { [EXHAUSTED]: true });
      }, policy),
      /given up/,
    );
    assert.equal(calls, 1);

    calls = 0;
    const started = Date.now();
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw new StatusError('never', 503, 600);
      }, policy),
      /never/,
    );
    assert.equal(calls, 1);
    assert.ok(Date.now() - started < 1000);
  });

  it('gives up after its attempts', async () => {
    let calls = 0;
    await assert.rejects(
      withRetry(async () => {
        calls++;
        throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
      }, { ...policy, attempts: 4 }),
      /reset/,
    );
    assert.equal(calls, 4);
  });
});

describe('parseRetryAfter', () => {
  it('seconds or an HTTP date', () => {
    const now = Date.parse('Wed, 21 Oct 2015 07:28:00 GMT');
    assert.equal(parseRetryAfter('3'), 3);
    assert.equal(parseRetryAfter(' 120 '), 120);
    assert.equal(parseRetryAfter('0'), 0);
    assert.equal(parseRetryAfter(['5', '7']), 5);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:02 GMT', now), 2);
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:27:00 GMT', now), 0, 'a date in the past: now');
    const soon = parseRetryAfter(new Date(Date.now() + 2000).toUTCString());
    assert.ok(soon !== undefined && soon > 0 && soon <= 2, String(soon));
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(''), undefined);
    assert.equal(parseRetryAfter(undefined), undefined);
  });
});
