// HTTP for registries and file servers: one undici Agent per TLS setting so
// connections are reused across every request to a host, timeouts on connect
// and on stalled bodies, and redirects followed by hand so that Authorization
// never crosses to another host (registries redirect blobs to CDNs and
// pre-signed S3 URLs, which reject it).
import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher } from 'undici';
import type { Readable } from 'node:stream';

export interface HostSettings {
  plainHttp?: boolean;
  /** PEM file with the CA(s) to trust for this host. */
  caFile?: string;
  /** HTTPS without certificate verification. */
  insecure?: boolean;
}

export interface TransportOptions {
  /** Connections per origin. */
  connections?: number;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  /** Longest pause between two body chunks before the transfer counts as stalled. */
  bodyTimeoutMs?: number;
  userAgent?: string;
  /** Per-host settings (host as in a reference: `name[:port]`). */
  settings?: (host: string) => HostSettings;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Readable & { dump(opts?: { limit?: number }): Promise<void>; text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer> };
  /** The URL that answered, after redirects. */
  readonly url: URL;
}

export interface HttpRequest {
  method?: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  body?: Dispatcher.DispatchOptions['body'];
  maxRedirects?: number;
  signal?: AbortSignal;
}

const LOOPBACK_RE = /^(localhost|127(?:\.\d{1,3}){3}|\[::1\])(?::\d+)?$/;

export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_RE.test(host);
}

/** SPEC §1: loopback speaks plain HTTP unless TLS is configured; everything else HTTPS unless told otherwise. */
export function schemeFor(host: string, s: HostSettings = {}): 'http' | 'https' {
  if (s.plainHttp) return 'http';
  if (s.caFile || s.insecure) return 'https';
  return isLoopbackHost(host) ? 'http' : 'https';
}

export class Transport {
  private readonly agents = new Map<string, Agent>();
  private readonly options: Required<Omit<TransportOptions, 'settings'>> & Pick<TransportOptions, 'settings'>;

  constructor(options: TransportOptions = {}) {
    this.options = {
      connections: 8,
      connectTimeoutMs: 30_000,
      headersTimeoutMs: 60_000,
      bodyTimeoutMs: 60_000,
      userAgent: 'airlock',
      ...options,
    };
  }

  settingsFor(host: string): HostSettings {
    return this.options.settings?.(host) ?? {};
  }

  /** `http(s)://host` for a registry host, per SPEC §1. */
  baseUrl(host: string): string {
    return `${schemeFor(host, this.settingsFor(host))}://${host}`;
  }

  private agentFor(url: URL): Agent {
    const s = url.protocol === 'https:' ? this.settingsFor(url.host) : {};
    const key = `${s.caFile ?? ''}|${s.insecure ? 1 : 0}`;
    let agent = this.agents.get(key);
    if (!agent) {
      agent = new Agent({
        connections: this.options.connections,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: this.options.headersTimeoutMs,
        bodyTimeout: this.options.bodyTimeoutMs,
        connect: {
          timeout: this.options.connectTimeoutMs,
          ...(s.caFile && { ca: readFileSync(s.caFile) }),
          ...(s.insecure && { rejectUnauthorized: false }),
        },
      });
      this.agents.set(key, agent);
    }
    return agent;
  }

  async request(target: string | URL, req: HttpRequest = {}): Promise<HttpResponse> {
    let url = new URL(target);
    let method = req.method ?? 'GET';
    const headers: Record<string, string> = { 'user-agent': this.options.userAgent, ...lower(req.headers ?? {}) };
    let body = req.body;
    for (let hop = 0; ; hop++) {
      const res = await this.agentFor(url).request({
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        body: body ?? null,
        ...(req.signal && { signal: req.signal }),
      });
      const location = res.headers.location;
      if (![301, 302, 303, 307, 308].includes(res.statusCode) || !location) {
        return { status: res.statusCode, headers: res.headers, body: res.body as unknown as HttpResponse['body'], url };
      }
      await res.body.dump();
      if (hop >= (req.maxRedirects ?? 5)) throw new Error(`too many redirects from ${target.toString()}`);
      const next = new URL(Array.isArray(location) ? (location[0] ?? '') : location, url);
      if (url.protocol === 'https:' && next.protocol !== 'https:') {
        throw new Error(`refusing redirect from HTTPS to ${next.protocol} (${next.origin}): HTTPS never falls back to plain HTTP`);
      }
      if (next.origin !== url.origin) delete headers.authorization;
      if (res.statusCode === 303) {
        method = 'GET';
        body = undefined;
      }
      url = next;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.agents.values()].map((a) => a.close()));
    this.agents.clear();
  }
}

function lower(h: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));
}

export function header(res: Pick<HttpResponse, 'headers'>, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}
