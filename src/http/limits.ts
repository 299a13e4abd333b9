// Bounds every body by the bytes actually read, per attempt (SPEC §1): a 2xx
// body of a manifest or checksum file up to its `maxBody`; a blob or file
// body exactly its remaining `size` (a 206 counts from its Content-Range
// start); any error body up to 1 MiB. A Content-Length past the bound is
// refused before a body byte is read; a body that runs past it is cut at the
// bound (nothing past the size reaches the consumer) and the request fails;
// a body that ends short is a retryable error, so the retry layer resumes it.
// A retryable status (503) with an error body past the bound is still
// retried: its connection is closed, the body never read past the bound.
import type { Dispatcher } from 'undici';
import { BodyLimitError, HttpError, RETRY_STATUS_CODES, ShortBodyError, StatusError, withOrigin } from './errors.js';
import { Tracked, headerValue, type Controller, type DispatchOptions, type Headers } from './handler.js';

export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/** Token answers and error bodies. */
export const MAX_SMALL_BODY = 1024 * 1024;

export function limits(): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => dispatch(opts, new LimitsHandler(opts as DispatchOptions, handler));
}

class LimitsHandler extends Tracked {
  private bound = Infinity;
  private exact = false;
  private read = 0;
  private failed = false;
  /** Status and headers of an answer the retry layer may retry (503): its body past the bound is no reason not to. */
  private retriable: { statusCode: number; headers: Headers } | undefined;

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (statusCode < 200 || this.opts.method === 'HEAD') {
      super.onResponseStart(controller, statusCode, headers, statusMessage);
      return;
    }
    const a = this.opts.airlock;
    const what = a?.item ?? this.url;
    if (statusCode >= 300) {
      this.bound = MAX_SMALL_BODY;
      if (RETRY_STATUS_CODES.includes(statusCode)) this.retriable = { statusCode, headers };
    } else if (a?.size !== undefined) {
      let start = 0;
      if (statusCode === 206) {
        const m = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(headerValue(headers, 'content-range') ?? '');
        if (!m) return this.fail(controller, new HttpError(`${what}: a partial answer (206) without a valid Content-Range (${headerValue(headers, 'content-range') ?? 'none'})`, 'AIRLOCK_BAD_RANGE'));
        start = Number(m[1]);
        if (m[3] !== '*' && Number(m[3]) !== a.size) {
          return this.fail(controller, new BodyLimitError(`${what}: the server says the content is ${m[3]} bytes, expected ${a.size}`));
        }
      }
      this.bound = Math.max(0, a.size - start);
      this.exact = true;
    } else if (a?.maxBody !== undefined) {
      this.bound = a.maxBody;
    }
    const declared = headerValue(headers, 'content-length');
    if (declared !== undefined && /^\d+$/.test(declared)) {
      const n = Number(declared);
      if (n > this.bound) {
        if (this.retriable) return this.retry(n);
        const expected = this.exact ? `expected ${this.bound}` : `more than the ${this.bound} allowed`;
        return this.fail(controller, new BodyLimitError(`${what}: the server announces ${n} bytes, ${expected}; refusing it`));
      }
      if (this.exact && n < this.bound) {
        return this.fail(controller, new BodyLimitError(`${what}: the server announces ${n} bytes, expected ${this.bound}; refusing it`));
      }
    }
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.failed) return;
    this.read += chunk.length;
    if (this.read > this.bound) {
      if (this.retriable) return this.retry();
      const keep = this.bound - (this.read - chunk.length);
      if (keep > 0) super.onResponseData(controller, chunk.subarray(0, keep));
      const what = this.opts.airlock?.item ?? this.url;
      this.fail(controller, new BodyLimitError(`${what}: the body is longer than ${this.exact ? 'the expected ' : ''}${this.bound} bytes; cut there`));
      return;
    }
    super.onResponseData(controller, chunk);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    if (this.failed) return;
    if (this.exact && this.read < this.bound) {
      const what = this.opts.airlock?.item ?? this.url;
      this.failed = true;
      super.onResponseError(controller, withOrigin(new ShortBodyError(`${what}: the body ended after ${this.read} of ${this.bound} bytes`), this.url));
      return;
    }
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    super.onResponseError(controller, withOrigin(error, this.url));
  }

  /**
   * A throw, unlike an abort, reaches the retry policy, which retries the
   * status as if its body had been read; undici closes the connection.
   */
  private retry(announced?: number): never {
    const { statusCode, headers } = this.retriable ?? { statusCode: 0, headers: {} };
    const what = this.opts.airlock?.item ?? this.url;
    const size = announced !== undefined ? `of ${announced} bytes` : `longer than ${this.bound} bytes`;
    this.failed = true;
    const err = withOrigin(new StatusError(`${what}: HTTP ${statusCode}, with an error body ${size} (left unread)`, statusCode), this.url);
    throw Object.assign(err, { statusCode, headers });
  }

  private fail(controller: Controller, err: Error): void {
    this.failed = true;
    controller.abort(withOrigin(err, this.url));
  }
}
