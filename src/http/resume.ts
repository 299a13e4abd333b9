// What undici's retry interceptor does not say. It resumes a GET cut
// mid-body with Range (and If-Match) and splices the rest into the same
// stream, which is the right thing; but when the resume is answered with
// something else (the whole content again because the server ignores Range,
// another length, another ETag, 412) it fails with "server does not support
// the range header and the payload was partially consumed" or "Content-Range
// mismatch", naming neither the item, nor the server (after a redirect: the
// CDN), nor what to do. Two handlers around it, sharing one Transfer per
// request: inside, each attempt's answer to a resume is checked before undici
// sees it and refused with a ResumeError that says all that; outside, an
// error that ends a body already handed to the consumer is made to name the
// item, the origin and how far the body got.
//
// The two answers are never spliced: a resume answered whole (200) is refused
// rather than skipped to the offset, so every byte of the content comes from
// one answer or from Range answers about the same content. The ResumeError is
// retryable for an item-level loop, which starts the download over from byte
// 0 (the content store asks again from its partial file; a server ignoring
// Range answers whole, and the store starts the file over), verified by digest.
import type { Dispatcher } from 'undici';
import { describeNetworkError, EXHAUSTED, HttpError, isRetryable, ResumeError, StatusError, withOrigin, RETRY_STATUS_CODES } from './errors.js';
import { Forward, Tracked, headerValue, type Controller, type DispatchOptions, type Headers } from './handler.js';
import { printable } from '../util/printable.js';

/** One request across its attempts: what was handed on, from which answer. */
class Transfer {
  /** The first 2xx answer handed on: where its body starts, its total length and strong ETag when it said. */
  first: { start: number; total?: number; etag?: string } | undefined;
  /** Body bytes handed on so far. */
  received = 0;
  /** Set once headers reached the consumer: later errors end a body it is reading. */
  delivered = false;
  /** The URL (after redirects) whose answer was handed on last. */
  url = '';
  attempts = 0;

  constructor(readonly what: string) {}

  /** `at 40000 of 100000 bytes`, with the offset the next byte belongs at. */
  at(): string {
    const at = (this.first?.start ?? 0) + this.received;
    return this.first?.total !== undefined ? `${at} of ${this.first.total} bytes` : `${at} bytes`;
  }
}

/** Wraps undici's retry interceptor: `retry` is it, already configured. */
export function checkedResume(retry: Dispatcher.DispatcherComposeInterceptor): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => {
    const checked: Dispatcher.Dispatch = (opts, handler) => dispatch(opts, new ResumeCheck(opts as DispatchOptions, handler));
    const retrying = retry(checked);
    return (opts, handler) => {
      const o = opts as DispatchOptions;
      const t = new Transfer(o.airlock?.item ?? new URL(o.path, String(o.origin)).toString());
      // undici copies the options of every attempt from these (a shallow copy), so the Transfer is shared.
      const withTransfer = { ...o, [TRANSFER]: t } as DispatchOptions;
      return retrying(withTransfer, new Delivery(handler, t));
    };
  };
}

const TRANSFER = Symbol('airlock.transfer');

function transferOf(opts: DispatchOptions): Transfer | undefined {
  return (opts as unknown as Record<symbol, Transfer | undefined>)[TRANSFER];
}

function contentRange(headers: Headers): { start: number; end: number; total?: number } | undefined {
  const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headerValue(headers, 'content-range') ?? '');
  if (!m) return undefined;
  return { start: Number(m[1]), end: Number(m[2]), ...(m[3] !== '*' && { total: Number(m[3]) }) };
}

function strongEtag(headers: Headers): string | undefined {
  const e = headerValue(headers, 'etag');
  return e && !e.startsWith('W/') ? e : undefined;
}

/** Per attempt, inside the retry interceptor: records the first answer, checks every resume. */
class ResumeCheck extends Tracked {
  private readonly t: Transfer | undefined;

  constructor(opts: DispatchOptions, handler: Dispatcher.DispatchHandler) {
    super(opts, handler);
    this.t = transferOf(opts);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    const t = this.t;
    if (!t || statusCode < 200 || this.opts.method === 'HEAD') {
      super.onResponseStart(controller, statusCode, headers, statusMessage);
      return;
    }
    t.attempts++;
    if (!t.first) {
      if (statusCode < 300) {
        const range = statusCode === 206 ? contentRange(headers) : undefined;
        const length = Number(headerValue(headers, 'content-length') ?? NaN);
        const total = range ? range.total : Number.isFinite(length) ? length : this.opts.airlock?.size;
        const etag = strongEtag(headers);
        t.first = { start: range?.start ?? 0, ...(total !== undefined && { total }), ...(etag && { etag }) };
        t.url = this.url;
      }
      super.onResponseStart(controller, statusCode, headers, statusMessage);
      return;
    }
    // A resume: a throw (not an abort) hands the error to the retry policy, which retries only a retryable status.
    const problem = this.problem(statusCode, headers);
    if (problem) throw problem;
    t.url = this.url;
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  private problem(statusCode: number, headers: Headers): Error | undefined {
    const t = this.t as Transfer & { first: NonNullable<Transfer['first']> };
    const origin = new URL(this.url).origin;
    const cut = `the body was cut at ${t.at()}`;
    const from = t.url && new URL(t.url).origin !== origin ? ` (by ${new URL(t.url).origin})` : '';
    const fail = (what: string, advice: string) => withOrigin(new ResumeError(`${t.what}: ${cut}${from}, and ${origin} ${what}; ${advice}`), this.url);
    const changed = 'the content changed while it was downloading: run again (the download starts over from byte 0)';
    if (statusCode === 200) {
      return fail(
        'ignored Range when asked for the rest (it answered 200, the whole content again)',
        `the download has to start over from byte 0; if it is cut every time, check the connection to ${origin} (a proxy or firewall that ends long transfers?) and run again`,
      );
    }
    if (statusCode === 412) return fail('answered HTTP 412 to the resume: its ETag no longer matches', changed);
    if (RETRY_STATUS_CODES.includes(statusCode)) {
      const err = withOrigin(new StatusError(`${t.what}: ${cut}${from}, and ${origin} answered HTTP ${statusCode} when asked for the rest`, statusCode), this.url);
      return Object.assign(err, { statusCode, headers });
    }
    if (statusCode !== 206) return fail(`answered HTTP ${statusCode} when asked for the rest`, 'run again; if it persists, the server does not let the download resume');
    const range = contentRange(headers);
    const at = t.first.start + t.received;
    if (!range) return fail(`answered the resume without a valid Content-Range (${printable(headerValue(headers, 'content-range') ?? 'none')})`, 'run again');
    if (range.start !== at) return fail(`answered the resume with the bytes from ${range.start}, not from ${at}`, 'run again');
    const length = headerValue(headers, 'content-length');
    if (length !== undefined && Number(length) !== range.end - range.start + 1) {
      return fail(`answered the resume with Content-Length ${printable(length)} for the bytes ${range.start}-${range.end}`, 'run again');
    }
    if (t.first.total !== undefined && range.total !== undefined && range.total !== t.first.total) {
      return fail(`now says the content is ${range.total} bytes, not ${t.first.total}`, changed);
    }
    const etag = strongEtag(headers);
    if (t.first.etag && etag !== t.first.etag) return fail(`now gives the ETag ${printable(etag ?? '(none)')}, not ${printable(t.first.etag)}`, changed);
    return undefined;
  }
}

/** Outside the retry interceptor, in front of the consumer: counts what was handed on, names an error that ends a body. */
class Delivery extends Forward {
  constructor(
    handler: Dispatcher.DispatchHandler,
    private readonly t: Transfer,
  ) {
    super(handler);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (statusCode >= 200) this.t.delivered = true;
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    this.t.received += chunk.length;
    super.onResponseData(controller, chunk);
  }

  override onResponseError(controller: Controller, error: Error): void {
    super.onResponseError(controller, this.t.delivered ? this.named(error) : error);
  }

  /** An error in the middle of a body: nothing above the transport sees the request any more, so it names everything here. */
  private named(err: Error): Error {
    const t = this.t;
    if (err instanceof ResumeError || (err as { code?: string }).code === 'UND_ERR_ABORTED') return err;
    const exhausted = (err as { [EXHAUSTED]?: boolean })[EXHAUSTED] === true;
    withOrigin(err, t.url || undefined);
    // The message as it is, then where and how far: callers match on how it starts.
    // undici's own resume errors carry the 2xx status they came with; "HTTP 206" would say nothing.
    const status = (err as { statusCode?: number }).statusCode;
    const view = { origin: undefined, ...(status !== undefined && status < 300 && { statusCode: undefined }) };
    const bare = describeNetworkError(Object.assign(Object.create(err) as Error, view));
    const origin = (err as { origin?: string }).origin;
    // describeNetworkError leaves out an origin the message already names.
    const where = origin && describeNetworkError(Object.assign(Object.create(err) as Error, { ...view, origin })) !== bare ? `from ${origin}, ` : '';
    const tries = t.attempts > 1 ? `, ${t.attempts} attempts` : '';
    const advice = isRetryable(err) || exhausted ? '; run again: the download resumes from what arrived' : '';
    const text = `${bare.includes(t.what) ? '' : `${t.what}: `}${bare} (${where}after ${t.at()}${tries})${advice}`;
    if (err instanceof HttpError) {
      // Ours: the same error (callers test its class and code), saying more.
      err.message = text;
      return err;
    }
    const wrapped = withOrigin(new HttpError(text, (err as { code?: string }).code ?? 'AIRLOCK_NETWORK', isRetryable(err)), (err as { origin?: string }).origin);
    if (exhausted) (wrapped as { [EXHAUSTED]?: boolean })[EXHAUSTED] = true;
    return Object.assign(wrapped, { cause: err });
  }
}
