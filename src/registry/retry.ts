// Retries with exponential backoff and full jitter, for the failures that go
// away by themselves: dropped connections, timeouts, 429 and 5xx.

export class RetryableError extends Error {
  constructor(
    message: string,
    /** Seconds the server asked us to wait (Retry-After), if any. */
    readonly retryAfter?: number,
  ) {
    super(message);
    this.name = 'RetryableError';
  }
}

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
]);

export const RETRY_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/** For an answer worth retrying (408, 429, 5xx): drains its body and throws, carrying Retry-After. */
export async function throwIfRetryable(
  res: { status: number; headers: Record<string, string | string[] | undefined>; body: { dump(): Promise<void> } },
  what: string,
): Promise<void> {
  if (!RETRY_STATUSES.has(res.status)) return;
  await res.body.dump();
  throw new RetryableError(`${what}: HTTP ${res.status}`, parseRetryAfter(res.headers['retry-after']));
}

export function isTransient(err: unknown): boolean {
  if (err instanceof RetryableError) return true;
  const code = (err as { code?: string } | undefined)?.code;
  if (code && TRANSIENT_CODES.has(code)) return true;
  const cause = (err as { cause?: unknown } | undefined)?.cause;
  return cause !== undefined && cause !== err && isTransient(cause);
}

/** Parses Retry-After (seconds or an HTTP date) into seconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const when = Date.parse(v);
  return Number.isNaN(when) ? undefined : Math.max(0, (when - now) / 1000);
}

export interface RetryOptions {
  attempts?: number;
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Longest Retry-After we honour; beyond it we give up rather than hang. */
  maxRetryAfterMs?: number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export const DEFAULT_RETRY: Required<Omit<RetryOptions, 'onRetry'>> = {
  attempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  maxRetryAfterMs: 120_000,
};

export async function withRetry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  const o = { ...DEFAULT_RETRY, ...options };
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= o.attempts || !isTransient(err)) throw err;
      const after = err instanceof RetryableError && err.retryAfter !== undefined ? err.retryAfter * 1000 : undefined;
      if (after !== undefined && after > o.maxRetryAfterMs) throw err;
      const backoff = Math.random() * Math.min(o.maxDelayMs, o.baseDelayMs * 2 ** (attempt - 1));
      const delay = after !== undefined ? after + Math.random() * 100 : backoff;
      o.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
