/**
 * A plain-HTTP reverse proxy in front of a real upstream (a docker-registry),
 * injecting faults by rule: error statuses, dropped connections mid-body,
 * stalled bodies, delayed responses and redirects (to a second proxy playing
 * a CDN). With `ignoreRange` it plays a server without Range support.
 * Everything not faulted is forwarded as is, streamed both ways (bodies are
 * never buffered whole).
 *
 * Rules are tried in order against the method and the request path (with its
 * query string); the first one that matches is applied and spends one of its
 * `times` (default 1); a spent rule is removed.
 */
import { readFileSync } from 'node:fs';
import http, { type IncomingHttpHeaders, type IncomingMessage, type OutgoingHttpHeaders, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo, Socket } from 'node:net';

interface RuleBase {
  /** Tested against the request path including its query string, e.g. /v2/a\/b\/blobs\/sha256:/ */
  match: RegExp;
  /** Only requests with this method (e.g. 'GET'); default any. */
  method?: string;
  /** How many matching requests the rule applies to before it is used up; default 1. */
  times?: number;
}

/** Answer this status with an OCI error body (and Retry-After when given) without forwarding. */
export interface StatusRule extends RuleBase {
  kind: 'status';
  status: number;
  /** Seconds, sent as the Retry-After header. */
  retryAfter?: number;
  /** The body instead of the OCI error JSON (sent as text/plain unless it parses as JSON). */
  body?: string;
  /** Pad the body with spaces to this many bytes (a JSON body stays valid JSON). */
  bodyBytes?: number;
  /** Send the body chunked, without Content-Length. */
  chunked?: boolean;
}

/** Answer a redirect (default 307) to `to` + the request path, without forwarding: a registry sending blobs to a CDN. */
export interface RedirectRule extends RuleBase {
  kind: 'redirect';
  /** Origin to redirect to, e.g. another fault proxy's url. */
  to: string;
  status?: 301 | 302 | 303 | 307 | 308;
}

/** Forward, but cut the client connection after afterBytes bytes of the response body. */
export interface DropRule extends RuleBase {
  kind: 'drop';
  afterBytes: number;
}

/** Forward, but stop sending for ms after afterBytes bytes of the response body. */
export interface StallRule extends RuleBase {
  kind: 'stall';
  afterBytes: number;
  ms: number;
}

/** Wait ms before forwarding the request (so the response comes late). */
export interface DelayRule extends RuleBase {
  kind: 'delay';
  ms: number;
}

export type FaultRule = StatusRule | DropRule | StallRule | DelayRule | RedirectRule;

export interface ProxiedRequest {
  method: string;
  /** Path with query string, as received. */
  path: string;
  /** Status sent to the client (502 when the upstream failed). */
  status: number;
  /** Kind of the rule applied, if any. */
  fault?: FaultRule['kind'];
}

export interface FaultProxyStats {
  /** One entry per request, pushed when its response head is sent. */
  requests: ProxiedRequest[];
  /** Upstream response body bytes actually sent to clients, by path (without query string). Synthetic error bodies are not counted. */
  bytesByPath: Map<string, number>;
  /** Sum of bytesByPath over /v2/<name>/blobs/sha256:… paths. */
  blobBytes(): number;
  /** Client connections accepted so far (keep-alive reuses one). */
  connections: number;
  /** Clears requests, bytesByPath and connections. */
  reset(): void;
}

export interface FaultProxyOptions {
  /** PEM CA to trust when the upstream is https. */
  upstreamCaFile?: string;
  /** Rules installed at start. */
  rules?: FaultRule[];
  /** Forward without Range and If-Range, as a server that does not support Range: every GET is answered whole (200). */
  ignoreRange?: boolean;
}

export interface TestFaultProxy {
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** "127.0.0.1:PORT" */
  host: string;
  port: number;
  stats: FaultProxyStats;
  addRule(rule: FaultRule): void;
  clearRules(): void;
  /** Rules not yet used up. */
  readonly pendingRules: number;
  stop(): Promise<void>;
}

const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

const ERROR_CODES: Record<number, string> = {
  429: 'TOOMANYREQUESTS',
  500: 'UNKNOWN',
  502: 'UNKNOWN',
  503: 'UNAVAILABLE',
  504: 'UNAVAILABLE',
};

const BLOB_PATH = /^\/v2\/.+\/blobs\/sha256:/;

function copyHeaders(src: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const connectionTokens = new Set(
    String(src['connection'] ?? '')
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter((t) => t !== ''),
  );
  for (const [k, v] of Object.entries(src)) {
    if (v === undefined || HOP_BY_HOP.has(k) || connectionTokens.has(k)) continue;
    out[k] = v;
  }
  return out;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Ends the client connection abruptly: no more bytes, FIN now, destroyed soon after. */
function cut(socket: Socket): void {
  socket.end();
  setTimeout(() => socket.destroy(), 1000).unref();
}

export async function startFaultProxy(upstreamUrl: string, opts: FaultProxyOptions = {}): Promise<TestFaultProxy> {
  const upstream = new URL(upstreamUrl);
  const secure = upstream.protocol === 'https:';
  if (!secure && upstream.protocol !== 'http:') throw new Error(`unsupported upstream ${upstreamUrl}`);
  const ca = opts.upstreamCaFile === undefined ? undefined : readFileSync(opts.upstreamCaFile);
  const agent = secure
    ? new https.Agent({ keepAlive: true, ...(ca === undefined ? {} : { ca }) })
    : new http.Agent({ keepAlive: true });
  const requestUpstream = secure ? https.request : http.request;

  let rules: Array<{ rule: FaultRule; left: number }> = [];
  const addRule = (rule: FaultRule): void => {
    rules.push({ rule, left: rule.times ?? 1 });
  };
  for (const r of opts.rules ?? []) addRule(r);

  const takeRule = (method: string, path: string): FaultRule | undefined => {
    for (let i = 0; i < rules.length; i++) {
      const entry = rules[i];
      if (entry === undefined) continue;
      const { rule } = entry;
      if (rule.method !== undefined && rule.method.toUpperCase() !== method) continue;
      rule.match.lastIndex = 0;
      if (!rule.match.test(path)) continue;
      entry.left--;
      if (entry.left <= 0) rules.splice(i, 1);
      return rule;
    }
    return undefined;
  };

  const stats: FaultProxyStats = {
    requests: [],
    bytesByPath: new Map(),
    connections: 0,
    blobBytes() {
      let total = 0;
      for (const [p, n] of stats.bytesByPath) if (BLOB_PATH.test(p)) total += n;
      return total;
    },
    reset() {
      stats.requests.length = 0;
      stats.bytesByPath.clear();
      stats.connections = 0;
    },
  };

  let origin = ''; // "http://127.0.0.1:PORT", set once listening

  const rewriteLocation = (value: string): string => {
    let loc: URL;
    try {
      loc = new URL(value);
    } catch {
      return value; // relative: already points wherever the client is talking to
    }
    if (loc.host !== upstream.host || loc.protocol !== upstream.protocol) return value;
    return `${origin}${loc.pathname}${loc.search}${loc.hash}`;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const method = (req.method ?? 'GET').toUpperCase();
    const path = req.url ?? '/';
    const pathname = path.split('?')[0] ?? path;
    const rule = takeRule(method, path);
    const record = (status: number): void => {
      stats.requests.push({ method, path, status, ...(rule === undefined ? {} : { fault: rule.kind }) });
    };
    const aborted = new AbortController();
    // 'close' also follows a normal finish: only an unfinished response means the client went away.
    res.once('close', () => {
      if (!res.writableFinished) aborted.abort();
    });

    if (rule?.kind === 'status') {
      req.resume(); // discard any request body
      const code = ERROR_CODES[rule.status] ?? 'UNKNOWN';
      const text = rule.body ?? JSON.stringify({ errors: [{ code, message: `fault injected by test proxy: HTTP ${rule.status}`, detail: {} }] });
      const json = rule.body === undefined || isJson(rule.body);
      const body = Buffer.concat([Buffer.from(text), Buffer.alloc(Math.max(0, (rule.bodyBytes ?? 0) - Buffer.byteLength(text)), 0x20)]);
      const headers: OutgoingHttpHeaders = {
        'content-type': json ? 'application/json; charset=utf-8' : 'text/plain; charset=utf-8',
        'docker-distribution-api-version': 'registry/2.0',
      };
      if (!rule.chunked) headers['content-length'] = body.length;
      if (rule.retryAfter !== undefined) headers['retry-after'] = String(rule.retryAfter);
      res.writeHead(rule.status, headers);
      record(rule.status);
      if (method === 'HEAD') {
        res.end();
        return;
      }
      // In pieces, so a client that stops reading (a bound) is not handed the whole at once.
      for (let at = 0; at < body.length && !aborted.signal.aborted; at += 64 * 1024) {
        if (!res.write(body.subarray(at, at + 64 * 1024))) {
          await new Promise<void>((resolve) => {
            const go = (): void => {
              res.off('drain', go);
              res.off('close', go);
              resolve();
            };
            res.once('drain', go);
            res.once('close', go);
          });
        }
      }
      res.end();
      return;
    }

    if (rule?.kind === 'redirect') {
      req.resume();
      const status = rule.status ?? 307;
      res.writeHead(status, { location: `${rule.to}${path}`, 'content-length': 0 });
      record(status);
      res.end();
      return;
    }

    if (rule?.kind === 'delay') await sleep(rule.ms, aborted.signal);
    if (aborted.signal.aborted) return;

    const headers = copyHeaders(req.headers);
    headers['host'] = upstream.host;
    if (opts.ignoreRange) {
      delete headers['range'];
      delete headers['if-range'];
    }
    const upReq = requestUpstream({
      protocol: upstream.protocol,
      hostname: upstream.hostname,
      port: upstream.port,
      method,
      path,
      headers,
      agent,
    });
    aborted.signal.addEventListener('abort', () => upReq.destroy(), { once: true });

    const upRes = await new Promise<IncomingMessage | Error>((resolve) => {
      upReq.once('response', resolve);
      upReq.once('error', resolve);
      req.pipe(upReq);
      req.once('error', (e) => upReq.destroy(e));
    });
    if (upRes instanceof Error) {
      if (aborted.signal.aborted) return;
      if (!res.headersSent) {
        const body = Buffer.from(JSON.stringify({ errors: [{ code: 'UNKNOWN', message: `upstream: ${upRes.message}` }] }));
        res.writeHead(502, { 'content-type': 'application/json', 'content-length': body.length });
        record(502);
        res.end(body);
      } else {
        res.destroy();
      }
      return;
    }

    const outHeaders = copyHeaders(upRes.headers);
    const location = upRes.headers['location'];
    if (typeof location === 'string') outHeaders['location'] = rewriteLocation(location);
    const status = upRes.statusCode ?? 502;
    res.writeHead(status, upRes.statusMessage, outHeaders);
    record(status);

    let sent = 0;
    const count = (n: number): void => {
      sent += n;
      stats.bytesByPath.set(pathname, (stats.bytesByPath.get(pathname) ?? 0) + n);
    };
    const write = (chunk: Buffer): Promise<void> =>
      new Promise((resolve) => {
        if (chunk.length === 0) {
          resolve();
          return;
        }
        const ok = res.write(chunk, () => count(chunk.length));
        if (ok) resolve();
        else {
          const onDrain = (): void => {
            res.off('close', onDrain);
            resolve();
          };
          res.once('drain', onDrain);
          res.once('close', onDrain);
        }
      });

    const socket = req.socket;
    let stalled = false;
    try {
      if (rule?.kind === 'drop' && rule.afterBytes <= 0) {
        res.flushHeaders();
        upRes.destroy();
        cut(socket);
        return;
      }
      for await (const data of upRes) {
        if (aborted.signal.aborted) break;
        let chunk = data as Buffer;
        if (rule?.kind === 'drop' && sent + chunk.length >= rule.afterBytes) {
          const head = chunk.subarray(0, rule.afterBytes - sent);
          await new Promise<void>((resolve) => {
            if (head.length === 0) resolve();
            else res.write(head, () => {
              count(head.length);
              resolve();
            });
          });
          upRes.destroy();
          cut(socket);
          return;
        }
        if (rule?.kind === 'stall' && !stalled && sent + chunk.length >= rule.afterBytes) {
          const head = chunk.subarray(0, rule.afterBytes - sent);
          await write(head);
          stalled = true;
          await sleep(rule.ms, aborted.signal);
          if (aborted.signal.aborted) break;
          chunk = chunk.subarray(head.length);
        }
        await write(chunk);
      }
      if (aborted.signal.aborted) {
        upRes.destroy();
        return;
      }
      res.end();
    } catch {
      upRes.destroy();
      res.destroy();
    }
  };

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.keepAliveTimeout = 30_000;
  server.headersTimeout = 60_000;
  server.requestTimeout = 0;
  const sockets = new Set<Socket>();
  server.on('connection', (s: Socket) => {
    stats.connections++;
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  origin = `http://${host}`;

  let stopping: Promise<void> | undefined;
  return {
    url: origin,
    host,
    port,
    stats,
    addRule,
    clearRules: () => {
      rules = [];
    },
    get pendingRules() {
      return rules.length;
    },
    stop: () => {
      stopping ??= (async () => {
        const closed = new Promise<void>((r) => server.close(() => r()));
        for (const s of sockets) s.destroy();
        agent.destroy();
        await closed;
      })();
      return stopping;
    },
  };
}
