// The one dispatcher every request of airlock goes through, composed from
// small interceptors (outermost first): user agent → retry → limits →
// minimum rate → auth → redirect → the connection pool. Each sees what it
// needs: retry resumes a cut body and counts every attempt; limits bound each
// attempt's body; auth answers a 401 once and is the only place that sets
// Authorization; redirect is innermost so that Authorization never crosses
// origins and the origin that failed is named.
import type { Readable } from 'node:stream';
import type { Agent, Dispatcher } from 'undici';
import { request } from './undici.js';
import { createAgent, schemeFor, type AgentOptions, type HostSettings } from './agent.js';
import { auth } from './auth.js';
import type { CredentialLookup } from './credentials.js';
import { minimumRate } from './deadline.js';
import { StatusError, withOrigin } from './errors.js';
import type { AirlockRequest } from './handler.js';
import { limits } from './limits.js';
import { redirect } from './redirect.js';
import { isReplayable } from './redirect.js';
import { DEFAULT_RETRY, parseRetryAfter, retry, RETRIED_METHODS, RETRY_STATUSES, type RetryPolicy } from './retry.js';
import { userAgent } from './useragent.js';
import { VERSION } from '../cli/version.js';
import { printable } from '../util/printable.js';

export interface HttpOptions extends AgentOptions {
  readonly userAgent?: string;
  readonly retry?: Partial<RetryPolicy>;
  /** Minimum rate: every `rateWindowMs` must bring `minBytesPerWindow` bytes (0: off). */
  readonly rateWindowMs?: number;
  readonly minBytesPerWindow?: number;
  readonly credentials?: CredentialLookup;
  readonly warn?: (message: string) => void;
  readonly maxRedirects?: number;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Readable & { dump(opts?: { limit?: number }): Promise<void>; text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer> };
  /** The URL that answered, after redirects. */
  readonly url: URL;
  /** True when the retry interceptor already spent its attempts on an answer like this one (idempotent, replayable). */
  readonly retried: boolean;
}

export interface HttpRequest extends AirlockRequest {
  method?: 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';
  headers?: Record<string, string>;
  body?: Dispatcher.DispatchOptions['body'];
  signal?: AbortSignal;
}

export class Http {
  readonly dispatcher: Dispatcher;
  readonly retryPolicy: RetryPolicy;
  private readonly agent: Agent;

  constructor(private readonly o: HttpOptions = {}) {
    this.agent = createAgent(o);
    this.retryPolicy = { ...DEFAULT_RETRY, ...o.retry };
    const window = o.rateWindowMs ?? 60_000;
    const min = o.minBytesPerWindow ?? 1024 * (window / 1000);
    const ua = userAgent(o.userAgent ?? `airlock/${VERSION}`);
    // Token requests: everything but auth.
    const tokens = this.agent.compose(redirect(o.maxRedirects), minimumRate({ windowMs: window, minBytes: min }), limits(), retry(this.retryPolicy), ua);
    this.dispatcher = this.agent.compose(
      redirect(o.maxRedirects),
      auth({ credentials: o.credentials ?? (async () => undefined), tokens: () => tokens, ...(o.warn && { warn: o.warn }) }),
      minimumRate({ windowMs: window, minBytes: min }),
      limits(),
      retry(this.retryPolicy),
      ua,
    );
  }

  settingsFor(host: string): HostSettings {
    return this.o.settings?.(host) ?? {};
  }

  /** `http(s)://host` for a registry host, per SPEC §1. */
  baseUrl(host: string): string {
    return `${schemeFor(host, this.settingsFor(host))}://${host}`;
  }

  async request(target: string | URL, req: HttpRequest = {}): Promise<HttpResponse> {
    const url = new URL(target);
    const { method = 'GET', headers = {}, body, signal, ...airlock } = req;
    try {
      const res = await request(this.dispatcher, {
        origin: url.origin,
        path: url.pathname + url.search,
        method,
        headers,
        body: body ?? null,
        ...(signal && { signal }),
        airlock,
      } as Dispatcher.RequestOptions);
      const answered = (res.context as { url?: string } | undefined)?.url;
      return {
        status: res.statusCode,
        headers: res.headers,
        body: res.body as unknown as HttpResponse['body'],
        url: answered ? new URL(answered) : url,
        retried: RETRIED_METHODS.includes(method) && isReplayable(body),
      };
    } catch (err) {
      throw withOrigin(err, url);
    }
  }

  async close(): Promise<void> {
    await this.agent.close();
  }
}

/**
 * An unexpected status as an error naming the item and the origin; retryable
 * only where the interceptor did not retry already. The message may quote the
 * answer's body: it is escaped here, the one place every caller's goes
 * through, so no upstream text reaches a terminal raw.
 */
export function statusError(res: HttpResponse, message: string, ociCode?: string): StatusError {
  const retryable = RETRY_STATUSES.includes(res.status) && !res.retried;
  return new StatusError(printable(message), res.status, parseRetryAfter(res.headers['retry-after']), ociCode, retryable);
}

export function header(res: Pick<HttpResponse, 'headers'>, name: string): string | undefined {
  const v = res.headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

/** Reads a small body whole; the limits interceptor has already bounded it. */
export async function readText(res: HttpResponse): Promise<string> {
  return res.body.text();
}
