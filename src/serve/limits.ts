// What one client may hold of the server: a connection slot, a little memory
// while its response waits on it, and only so long without making progress.

export interface ServeLimits {
  /** Open connections per listener; more are closed as they arrive (AIRLOCK_SERVE_MAX_CONNECTIONS). */
  readonly maxConnections: number;
  /** Time a client has to send its request line and headers (and any body) (AIRLOCK_SERVE_HEADERS_TIMEOUT). */
  readonly headersTimeoutMs: number;
  /**
   * Time a connection may make no progress, e.g. a client that stopped reading, before it is dropped
   * (AIRLOCK_SERVE_IDLE_TIMEOUT). Node allows one more period when a write was still moving at the first.
   */
  readonly idleTimeoutMs: number;
}

export const DEFAULT_LIMITS: ServeLimits = { maxConnections: 256, headersTimeoutMs: 20_000, idleTimeoutMs: 30_000 };

/** Bytes per read from the bundle: with backpressure, about what a stalled response holds in memory besides the socket's buffer. */
export const READ_CHUNK = 64 * 1024;

/** An idle keep-alive connection is closed after this long (or the idle timeout, when shorter). */
export const KEEP_ALIVE_MS = 5_000;

export const LIMIT_ENV = {
  maxConnections: 'AIRLOCK_SERVE_MAX_CONNECTIONS',
  headersTimeoutMs: 'AIRLOCK_SERVE_HEADERS_TIMEOUT',
  idleTimeoutMs: 'AIRLOCK_SERVE_IDLE_TIMEOUT',
} as const;

/** The limits from the environment; `bad` builds the error for a value that is not a positive number. */
export function limitsFromEnv(env: NodeJS.ProcessEnv, bad: (message: string) => Error): ServeLimits {
  const seconds = (key: keyof typeof LIMIT_ENV): number => {
    const name = LIMIT_ENV[key];
    const v = env[name];
    if (v === undefined || v === '') return DEFAULT_LIMITS[key];
    if (!/^\d+(\.\d+)?$/.test(v) || Math.round(Number(v) * 1000) < 1) throw bad(`${name}=${v}: give seconds, e.g. ${DEFAULT_LIMITS[key] / 1000}`);
    return Math.round(Number(v) * 1000);
  };
  const max = env[LIMIT_ENV.maxConnections];
  let maxConnections = DEFAULT_LIMITS.maxConnections;
  if (max !== undefined && max !== '') {
    if (!/^\d+$/.test(max) || Number(max) < 1) throw bad(`${LIMIT_ENV.maxConnections}=${max}: give a whole number of connections, at least 1`);
    maxConnections = Number(max);
  }
  return { maxConnections, headersTimeoutMs: seconds('headersTimeoutMs'), idleTimeoutMs: seconds('idleTimeoutMs') };
}

const helpRow = (name: string, ...lines: string[]) => lines.map((l, i) => `  ${(i === 0 ? name : '').padEnd(31)}${l}`).join('\n');

export const LIMITS_HELP = [
  '',
  'Limits (environment; per listener):',
  helpRow(LIMIT_ENV.maxConnections, `open connections; more are refused (default ${DEFAULT_LIMITS.maxConnections})`),
  helpRow(LIMIT_ENV.headersTimeoutMs, `seconds a client has to send its request headers (default ${DEFAULT_LIMITS.headersTimeoutMs / 1000})`),
  helpRow(
    LIMIT_ENV.idleTimeoutMs,
    'seconds a connection may make no progress, e.g. a client',
    `that stopped reading, before it is dropped (default ${DEFAULT_LIMITS.idleTimeoutMs / 1000});`,
    `idle keep-alive connections close after ${KEEP_ALIVE_MS / 1000} s`,
  ),
].join('\n');
