// airlock serve under hostile clients: many that stall mid-response, one that
// sends its headers a byte at a time, ones that go quiet, more than the
// connection limit. The serve process's memory stays bounded and the clients
// that behave are served correctly.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';
import { DEFAULT_LIMITS, limitsFromEnv } from '../src/serve/limits.js';
import { makeBlobBundle, patternedSlice, type BlobBundle } from './support/blobbundle.js';
import { makeTempDir, removeTempDir } from './support/proc.js';
import { startServe, type Served } from './support/serve.js';

const MiB = 1024 * 1024;
const BIG = 48 * MiB;
const MEDIUM = MiB;
let dir: string;
let bb: BlobBundle;
let big: { digest: string; size: number };
let medium: { digest: string; size: number };

before(async () => {
  dir = await makeTempDir('airlock-serve-limits-');
  bb = await makeBlobBundle(dir, [{ size: BIG, seed: 'big' }, { size: MEDIUM, seed: 'medium' }]);
  [big, medium] = bb.layers as [typeof big, typeof medium];
});
after(async () => {
  if (dir) await removeTempDir(dir);
});

const blobUrl = (s: Served, digest: string) => `${s.registry}/v2/${bb.repo}/blobs/${digest}`;

function procKiB(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0);
}

/** Resolves when the serve log has `times` lines matching `pattern` (polling), or rejects after `ms`. */
async function logShows(s: Served, pattern: RegExp, ms: number, times = 1): Promise<void> {
  const until = Date.now() + ms;
  const count = () => s.log().split('\n').filter((l) => pattern.test(l)).length;
  while (count() < times) {
    if (Date.now() > until) throw new Error(`${count()} of ${times} lines ${pattern} in the serve log after ${ms} ms:\n${s.log().slice(-2000)}`);
    await sleep(25);
  }
}

/** A raw TCP connection to host:port; `closed` resolves with when the server closed it and what it sent. */
function rawConnect(hostPort: string): Promise<{ sock: Socket; closed: Promise<{ at: number; data: string }> }> {
  const url = new URL(`http://${hostPort}`);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: url.hostname, port: Number(url.port) });
    let data = '';
    sock.setEncoding('utf8').on('data', (d: string) => (data += d));
    sock.on('error', () => undefined);
    const closed = new Promise<{ at: number; data: string }>((res) => sock.on('close', () => res({ at: Date.now(), data })));
    sock.once('connect', () => resolve({ sock, closed }));
    sock.once('error', reject);
  });
}

describe('200 clients at once, half of them stalled on a large blob', () => {
  let served: Served;
  before(async () => {
    served = await startServe(bb.bundle, bb.pub);
  });
  after(async () => {
    await served?.stop();
  });

  it('serve stays under 150 MB RSS and the other 100 get the right bytes', async () => {
    const pid = served.child.pid ?? 0;
    const startKiB = procKiB(pid, 'VmRSS');
    let peakKiB = startKiB;
    const sampler = setInterval(() => (peakKiB = Math.max(peakKiB, procKiB(pid, 'VmRSS'))), 20);
    const stalledAgent = new Agent({ headersTimeout: 30_000, bodyTimeout: 0 });
    const activeAgent = new Agent({ headersTimeout: 30_000, bodyTimeout: 30_000 });
    const offsets = [0, 7 * MiB + 3, 31 * MiB + 77, BIG - 65536];
    const expected = offsets.map((o) => patternedSlice(BIG, 'big', o, o + 65536));
    try {
      // 100 clients ask for the 48 MiB blob and never read a byte of its body.
      const stalled = await Promise.all(Array.from({ length: 100 }, () => request(blobUrl(served, big.digest), { dispatcher: stalledAgent })));
      for (const r of stalled) assert.equal(r.statusCode, 200);
      // 100 more, while those hold their connections: the 1 MiB blob whole and 64 KiB of the large one.
      const active = await Promise.all(
        Array.from({ length: 100 }, async (_, i) => {
          const whole = await request(blobUrl(served, medium.digest), { dispatcher: activeAgent });
          const digest = `sha256:${createHash('sha256').update(Buffer.from(await whole.body.arrayBuffer())).digest('hex')}`;
          const o = offsets[i % offsets.length] ?? 0;
          const part = await request(blobUrl(served, big.digest), { dispatcher: activeAgent, headers: { range: `bytes=${o}-${o + 65535}` } });
          const bytes = Buffer.from(await part.body.arrayBuffer());
          return { status: whole.statusCode, digest, partStatus: part.statusCode, partOk: bytes.equals(expected[i % offsets.length] ?? Buffer.alloc(0)) };
        }),
      );
      for (const a of active) assert.deepEqual(a, { status: 200, digest: medium.digest, partStatus: 206, partOk: true });
      // Let the stalled responses fill every buffer there is before measuring.
      await sleep(750);
      clearInterval(sampler);
      peakKiB = Math.max(peakKiB, procKiB(pid, 'VmRSS'));
      const hwmKiB = procKiB(pid, 'VmHWM');
      process.stdout.write(
        `# serve RSS: ${(startKiB / 1024).toFixed(0)} MiB before, peak ${(peakKiB / 1024).toFixed(0)} MiB (VmRSS polled), VmHWM ${(hwmKiB / 1024).toFixed(0)} MiB with 100 stalled and 100 active clients\n`,
      );
      assert.ok(hwmKiB * 1024 < 150e6, `serve peaked at ${(hwmKiB / 1024).toFixed(0)} MiB`);
      // The stalled responses really were stuck mid-body: none finished, and each ends aborted once its client goes.
      assert.doesNotMatch(served.log(), new RegExp(`GET /v2/${bb.repo}/blobs/${big.digest} 200 \\d+ \\d+ms$`, 'm'));
      for (const r of stalled) r.body.destroy();
      await logShows(served, new RegExp(`GET /v2/${bb.repo}/blobs/${big.digest} 200 \\d+ \\d+ms \\(aborted\\)$`), 5_000, 100);
    } finally {
      clearInterval(sampler);
      await stalledAgent.destroy();
      await activeAgent.close();
    }
  });
});

describe('idle timeout (AIRLOCK_SERVE_IDLE_TIMEOUT=1)', () => {
  let served: Served;
  before(async () => {
    served = await startServe(bb.bundle, bb.pub, [], { AIRLOCK_SERVE_IDLE_TIMEOUT: '1' });
  });
  after(async () => {
    await served?.stop();
  });

  it('drops a client that stops reading a response, one that sends nothing, and an idle keep-alive connection', async () => {
    const agent = new Agent({ bodyTimeout: 0 });
    try {
      const res = await request(blobUrl(served, big.digest), { dispatcher: agent });
      const t0 = Date.now();
      assert.equal(res.statusCode, 200);
      await logShows(served, /blobs\/sha256:[a-f0-9]{64} 200 \d+ \d+ms \(aborted\)/, 4_000);
      const dropped = Date.now() - t0;
      // What the kernel had buffered still arrives, then the body ends short.
      let got = 0;
      await assert.rejects(async () => {
        for await (const c of res.body) got += (c as Buffer).length;
      });
      assert.ok(got < BIG, `${got} bytes`);

      const t1 = Date.now();
      const silent = await rawConnect(served.host);
      const kept = await rawConnect(served.host);
      kept.sock.write(`GET /v2/ HTTP/1.1\r\nHost: ${served.host}\r\n\r\n`);
      const [s, k] = await Promise.all([silent.closed, kept.closed]);
      assert.match(k.data, /^HTTP\/1\.1 200 /, 'the keep-alive request was answered first');
      assert.equal(s.data, '');
      process.stdout.write(`# with a 1 s idle timeout: stalled reader dropped ${dropped} ms after its response began; silent connection after ${s.at - t1} ms, idle keep-alive after ${k.at - t1} ms\n`);
      assert.ok(dropped < 3_000);
      assert.ok(s.at - t1 < 3_000 && k.at - t1 < 3_000);
    } finally {
      await agent.destroy();
    }
  });
});

describe('header timeout and connection cap (AIRLOCK_SERVE_HEADERS_TIMEOUT=1, AIRLOCK_SERVE_MAX_CONNECTIONS=8)', () => {
  let served: Served;
  before(async () => {
    served = await startServe(bb.bundle, bb.pub, [], { AIRLOCK_SERVE_HEADERS_TIMEOUT: '1', AIRLOCK_SERVE_MAX_CONNECTIONS: '8' });
  });
  after(async () => {
    await served?.stop();
  });

  it('disconnects a client that sends its headers a byte at a time within the header timeout', async () => {
    const { sock, closed } = await rawConnect(served.host);
    const t0 = Date.now();
    const text = `GET /v2/ HTTP/1.1\r\nHost: ${served.host}\r\nUser-Agent: ${'slow'.repeat(200)}\r\n`;
    let sent = 0;
    const drip = setInterval(() => {
      if (sent < text.length && !sock.destroyed) sock.write(text[sent++] ?? '');
    }, 50);
    try {
      const { at, data } = await Promise.race([closed, sleep(6_000).then(() => assert.fail('still connected after 6 s'))]);
      process.stdout.write(`# slow-loris connection closed after ${at - t0} ms, ${sent} header bytes sent\n`);
      assert.ok(at - t0 < 2_500, `closed after ${at - t0} ms`);
      assert.ok(sent < text.length, 'closed before the headers were complete');
      assert.match(data, /^(HTTP\/1\.1 408 |$)/);
    } finally {
      clearInterval(drip);
      sock.destroy();
    }
  });

  it('a response that takes longer than the header timeout is not cut', async () => {
    const agent = new Agent();
    try {
      const t0 = Date.now();
      const res = await request(blobUrl(served, big.digest), { dispatcher: agent });
      const h = createHash('sha256');
      let n = 0;
      for await (const c of res.body) {
        h.update(c as Buffer);
        n += (c as Buffer).length;
        if (Date.now() - t0 < 1_500) await sleep(20);
      }
      assert.deepEqual({ digest: `sha256:${h.digest('hex')}`, n }, { digest: big.digest, n: BIG });
      assert.ok(Date.now() - t0 >= 1_500);
    } finally {
      await agent.close();
    }
  });

  it('refuses connections over the cap and serves again once they close', async () => {
    const held = await Promise.all(Array.from({ length: 8 }, () => rawConnect(served.host)));
    try {
      const extra = await rawConnect(served.host);
      const r = await Promise.race([extra.closed, sleep(3_000).then(() => assert.fail('a 9th connection stayed open'))]);
      assert.equal(r.data, '');
      await logShows(served, /registry: 8 connections open \(the limit\); refused 1/, 2_000);
    } finally {
      for (const h of held) h.sock.destroy();
    }
    await sleep(100);
    const agent = new Agent();
    try {
      const res = await request(`${served.registry}/v2/`, { dispatcher: agent });
      assert.equal(res.statusCode, 200);
      await res.body.dump();
    } finally {
      await agent.close();
    }
  });
});

describe('limits from the environment', () => {
  it('reads AIRLOCK_SERVE_* and refuses values that are not positive numbers', () => {
    const bad = (m: string) => new Error(m);
    assert.deepEqual(limitsFromEnv({}, bad), DEFAULT_LIMITS);
    assert.deepEqual(limitsFromEnv({ AIRLOCK_SERVE_MAX_CONNECTIONS: '16', AIRLOCK_SERVE_HEADERS_TIMEOUT: '2.5', AIRLOCK_SERVE_IDLE_TIMEOUT: '' }, bad), {
      maxConnections: 16,
      headersTimeoutMs: 2500,
      idleTimeoutMs: DEFAULT_LIMITS.idleTimeoutMs,
    });
    for (const env of [{ AIRLOCK_SERVE_MAX_CONNECTIONS: '0' }, { AIRLOCK_SERVE_MAX_CONNECTIONS: '1.5' }, { AIRLOCK_SERVE_HEADERS_TIMEOUT: '0' }, { AIRLOCK_SERVE_IDLE_TIMEOUT: '-1' }, { AIRLOCK_SERVE_IDLE_TIMEOUT: '10s' }]) {
      assert.throws(() => limitsFromEnv(env, bad), new RegExp(Object.keys(env)[0] ?? ''));
    }
  });
});
