// The connection layer: one undici Agent for every origin, so connections are
// reused across all requests to a host; TLS settings (CA, skip-verify) are
// chosen per origin by the Pool factory. Which scheme a host is spoken to
// with follows SPEC §1 and lives here too.
import { READ_BOUNDS, readRegularSync } from '../fsx/safe.js';
import type { Agent as UndiciAgent } from 'undici';
import { Agent, Pool } from './undici.js';

export interface HostSettings {
  plainHttp?: boolean;
  /** PEM file with the CA(s) to trust for this host. */
  caFile?: string;
  /** HTTPS without certificate verification. */
  insecure?: boolean;
}

export interface AgentOptions {
  /** Connections per origin. */
  connections?: number;
  connectTimeoutMs?: number;
  headersTimeoutMs?: number;
  /** Longest pause between two body chunks. */
  bodyTimeoutMs?: number;
  /** Per-host settings (host as in a URL: `name[:port]`). */
  settings?: (host: string) => HostSettings;
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

export function createAgent(o: AgentOptions = {}): UndiciAgent {
  const cas = new Map<string, Buffer>();
  const ca = (file: string) => {
    let pem = cas.get(file);
    if (!pem) cas.set(file, (pem = readRegularSync(file, { ...READ_BOUNDS.pem, follow: true })));
    return pem;
  };
  return new Agent({
    factory: (origin, opts) => {
      const url = new URL(origin);
      const s = url.protocol === 'https:' ? (o.settings?.(url.host) ?? {}) : {};
      return new Pool(origin, {
        ...opts,
        connections: o.connections ?? 8,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        headersTimeout: o.headersTimeoutMs ?? 60_000,
        bodyTimeout: o.bodyTimeoutMs ?? 60_000,
        connect: {
          timeout: o.connectTimeoutMs ?? 30_000,
          ...(s.caFile && { ca: ca(s.caFile) }),
          ...(s.insecure && { rejectUnauthorized: false }),
        },
      });
    },
  });
}
