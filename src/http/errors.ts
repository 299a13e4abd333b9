// Errors of the network layer. Each names the origin that failed (after a
// redirect, the origin that answered last) so that the item's error line can
// say where to look; `retryable` tells the item-level loops (resume from the
// partial file, restart an upload) whether another attempt can help.

export class HttpError extends Error {
  readonly exitCode = 1;
  /** `scheme://host[:port]` of the server that failed. */
  origin?: string;
  constructor(
    message: string,
    readonly code: string,
    readonly retryable = false,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

/** A body past its bound (manifest 4 MiB, token or error 1 MiB, a blob past its size). Never retried: the server would send it again. */
export class BodyLimitError extends HttpError {
  constructor(message: string) {
    super(message, 'AIRLOCK_BODY_LIMIT');
  }
}

/** The body ended before the size the item expects: worth resuming. */
export class ShortBodyError extends HttpError {
  constructor(message: string) {
    super(message, 'AIRLOCK_SHORT_BODY', true);
  }
}

/** Bytes arrive, but slower than the minimum rate (a trickle that defeats the idle timeout): worth resuming. */
export class SlowBodyError extends HttpError {
  constructor(message: string) {
    super(message, 'AIRLOCK_SLOW_BODY', true);
  }
}

/**
 * A resumed body answered with something else than the rest of the same
 * content (Range ignored, another length or ETag). The transport does not
 * retry it (it would be answered the same); an item-level loop that can start
 * the download over from byte 0 may.
 */
export class ResumeError extends HttpError {
  constructor(message: string) {
    super(message, 'AIRLOCK_RESUME', true);
  }
}

export class AuthError extends HttpError {
  constructor(message: string) {
    super(message, 'AIRLOCK_AUTH');
  }
}

export class RedirectError extends HttpError {
  constructor(message: string) {
    super(message, 'AIRLOCK_REDIRECT');
  }
}

/** Codes of failures that go away by themselves: connections dropped or refused, timeouts. */
export const TRANSIENT_CODES: readonly string[] = [
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'ENETDOWN',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EHOSTUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
  'ERR_STREAM_PREMATURE_CLOSE',
  'AIRLOCK_SHORT_BODY',
];

export const RETRY_STATUS_CODES: readonly number[] = [408, 429, 500, 502, 503, 504];

/** Seconds a server asked to wait (Retry-After), found on the error or its causes. */
export function retryAfterOf(err: unknown, depth = 0): number | undefined {
  if (!err || typeof err !== 'object' || depth > 5) return undefined;
  const e = err as { retryAfter?: number; headers?: Record<string, string | string[] | undefined>; cause?: unknown };
  if (typeof e.retryAfter === 'number') return e.retryAfter;
  const h = e.headers?.['retry-after'];
  const v = Array.isArray(h) ? h[0] : h;
  if (v !== undefined) {
    if (/^\d+$/.test(v.trim())) return Number(v.trim());
    const when = Date.parse(v);
    if (!Number.isNaN(when)) return Math.max(0, (when - Date.now()) / 1000);
  }
  return retryAfterOf(e.cause, depth + 1);
}

/** Set on an error once the retry interceptor gave up on it, so outer loops do not multiply the attempts. */
export const EXHAUSTED = Symbol('airlock.retriesExhausted');

/** For item-level loops: true when another attempt of the whole operation may succeed. */
export function isRetryable(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  if ((err as { [EXHAUSTED]?: boolean })[EXHAUSTED]) return false;
  if (err instanceof HttpError) return err.retryable;
  const code = (err as { code?: string }).code;
  if (code && TRANSIENT_CODES.includes(code)) return true;
  // undici's retry interceptor hands on a 408/429/5xx it did not retry (POST, PATCH) as this error.
  const status = (err as { statusCode?: number }).statusCode;
  if (code === 'UND_ERR_REQ_RETRY' && status !== undefined && RETRY_STATUS_CODES.includes(status)) return true;
  const cause = (err as { cause?: unknown }).cause;
  return cause !== undefined && cause !== err && isRetryable(cause);
}

/** Attaches the origin to an error once (the innermost layer knows it best). */
export function withOrigin<E>(err: E, origin: string | URL | undefined): E {
  if (err && typeof err === 'object' && origin !== undefined && !(err as { origin?: string }).origin) {
    try {
      (err as { origin?: string }).origin = typeof origin === 'string' ? new URL(origin).origin : origin.origin;
    } catch {
      // not a URL: leave it unnamed
    }
  }
  return err;
}

/** One line for a person: what failed, at which origin, without a stack. */
export function describeNetworkError(err: unknown): string {
  const e = err as { message?: string; code?: string; origin?: string; statusCode?: number; cause?: { message?: string; code?: string } } | undefined;
  let msg = e?.message ?? String(err);
  const code = e?.code;
  if (code === 'UND_ERR_REQ_RETRY' && e?.statusCode) msg = `HTTP ${e.statusCode}`;
  else if (code && !(err instanceof HttpError) && !msg.includes(code)) msg = `${msg} (${code})`;
  if (e?.cause?.message && !msg.includes(e.cause.message)) msg = `${msg}: ${e.cause.message}`;
  if (!e?.origin || msg.includes(e.origin)) return msg;
  // An error that already names the host (auth) needs no second name.
  const host = new URL(e.origin).host;
  return new RegExp(`(^|[\\s/(])${host.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}([\\s:/),;]|$)`).test(msg) ? msg : `${e.origin}: ${msg}`;
}

/** An answer with an unexpected status; retryable for 408, 429 and 5xx (with the Retry-After seconds). */
export class StatusError extends HttpError {
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfter?: number,
    readonly ociCode?: string,
    retryable = RETRY_STATUS_CODES.includes(status),
  ) {
    super(message, 'AIRLOCK_STATUS', retryable);
  }
}
