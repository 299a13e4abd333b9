// Retries what goes away by itself: dropped connections, timeouts, 408, 429
// and 5xx, with exponential backoff and full jitter, honouring Retry-After up
// to a bound. undici's own retry interceptor does the work, including the
// hard part: a GET that fails mid-body is resumed with a Range request and
// its bytes are spliced into the same response stream. The policy is ours,
// and so are the checks of a resume's answer and the naming of an error that
// ends a body (resume.ts). An error it gives up on is marked, so item-level
// loops do not multiply the attempts.
import type { Dispatcher } from 'undici';
import { retry as retryInterceptor } from './undici.js';
import { EXHAUSTED, isRetryable, ResumeError, RETRY_STATUS_CODES, retryAfterOf, TRANSIENT_CODES } from './errors.js';
import { checkedResume } from './resume.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Longest Retry-After honoured; beyond it we give up rather than hang. */
  maxRetryAfterMs: number;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

export const DEFAULT_RETRY: RetryPolicy = {
  attempts: 6,
  baseDelayMs: 250,
  maxDelayMs: 20_000,
  maxRetryAfterMs: 120_000,
};

export const RETRY_STATUSES = RETRY_STATUS_CODES;
/** Idempotent methods; uploads (POST, PATCH) are retried as a whole by the registry client. */
export const RETRIED_METHODS: readonly string[] = ['GET', 'HEAD', 'PUT', 'DELETE'];

/** Parses Retry-After (seconds or an HTTP date) into seconds. */
export function parseRetryAfter(value: string | string[] | undefined, now = Date.now()): number | undefined {
  const v = Array.isArray(value) ? value[0] : value;
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const when = Date.parse(v);
  return Number.isNaN(when) ? undefined : Math.max(0, (when - now) / 1000);
}

export function backoffMs(p: RetryPolicy, attempt: number): number {
  return Math.random() * Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (attempt - 1));
}

export function retry(policy: RetryPolicy = DEFAULT_RETRY): Dispatcher.DispatcherComposeInterceptor {
  return checkedResume(retryInterceptor({
    maxRetries: policy.attempts - 1,
    methods: [...RETRIED_METHODS] as Dispatcher.HttpMethod[],
    statusCodes: [...RETRY_STATUSES],
    errorCodes: [...TRANSIENT_CODES],
    retry: (err, { state, opts }, cb) => {
      const e = err as Error & { statusCode?: number; code?: string; headers?: Record<string, string | string[] | undefined> };
      const method = opts.method ?? 'GET';
      // Already given up on by an inner stack (a token request): retrying the whole would multiply its attempts.
      if ((e as unknown as Record<symbol, boolean>)[EXHAUSTED]) return cb(err);
      // Asking again for the rest would be answered the same: only starting over can help, which is the item's to do.
      if (e instanceof ResumeError) return cb(err);
      const transient = e.statusCode !== undefined ? RETRY_STATUSES.includes(e.statusCode) : isRetryable(e);
      if (!RETRIED_METHODS.includes(method) || !transient) return cb(err);
      const giveUp = () => {
        (e as unknown as Record<symbol, boolean>)[EXHAUSTED] = true;
        cb(err);
      };
      if (state.counter >= policy.attempts) return giveUp();
      const after = retryAfterOf(e);
      if (after !== undefined && after * 1000 > policy.maxRetryAfterMs) return giveUp();
      const delay = after !== undefined ? after * 1000 + Math.random() * 100 : backoffMs(policy, state.counter);
      policy.onRetry?.(err, state.counter, delay);
      return setTimeout(() => cb(null), delay) as unknown as void;
    },
  }));
}

/** For operations the interceptor cannot retry (an upload session, a resumed download): the same policy around the whole. */
export async function withRetry<T>(fn: (attempt: number) => Promise<T>, policy: RetryPolicy = DEFAULT_RETRY): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.attempts || !isRetryable(err)) throw err;
      const after = retryAfterOf(err);
      if (after !== undefined && after * 1000 > policy.maxRetryAfterMs) throw err;
      const delay = after !== undefined ? after * 1000 + Math.random() * 100 : backoffMs(policy, attempt);
      policy.onRetry?.(err, attempt, delay);
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}
