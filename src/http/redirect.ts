// Follows redirects (registries send blob downloads to CDNs and pre-signed
// object-store URLs). Written here rather than using undici's redirect
// interceptor for two reasons: undici follows an HTTPS → HTTP redirect, which
// SPEC §1 forbids, and it does not tell the consumer which URL answered, which
// upload sessions need (a relative Location resolves against it) and errors
// need (they name the origin that failed). Credentials never cross origins:
// the authorization header is dropped on any redirect to another origin.
import type { Dispatcher } from 'undici';
import { RedirectError, withOrigin } from './errors.js';
import { Forward, headerValue, setHeaders, type Controller, type DispatchOptions, type Headers } from './handler.js';

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECT_BODY = 1024 * 1024;

export function isReplayable(body: Dispatcher.DispatchOptions['body']): boolean {
  return body === null || body === undefined || typeof body === 'string' || body instanceof Uint8Array;
}

/** The context every response carries (`res.context.url`): the URL that answered. */
export interface RequestContext {
  url?: string;
}

export function redirect(maxRedirects = 5): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) => dispatch(opts, new RedirectHandler(dispatch, opts as DispatchOptions, handler, maxRedirects));
}

function urlOf(opts: Dispatcher.DispatchOptions): URL {
  return new URL(opts.path, String(opts.origin));
}

class RedirectHandler extends Forward {
  private location: URL | undefined;
  private hops = 0;

  constructor(
    private readonly dispatch: Dispatcher.Dispatch,
    private opts: DispatchOptions,
    handler: Dispatcher.DispatchHandler,
    private readonly max: number,
  ) {
    super(handler);
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    super.onRequestStart(controller, { ...(context as object), url: urlOf(this.opts).toString() });
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    const loc = headerValue(headers, 'location');
    // A streamed request body is spent: such a request cannot be sent again, so its redirect goes to the caller.
    const replayable = statusCode === 303 || isReplayable(this.opts.body);
    if (!REDIRECTS.has(statusCode) || !loc || !replayable) {
      this.location = undefined;
      super.onResponseStart(controller, statusCode, headers, statusMessage);
      return;
    }
    const from = urlOf(this.opts);
    let next: URL;
    try {
      next = new URL(loc, from);
    } catch {
      controller.abort(withOrigin(new RedirectError(`${from.origin} redirected to an invalid URL (${loc.slice(0, 200)})`), from));
      return;
    }
    let refusal: string | undefined;
    if (++this.hops > this.max) refusal = `more than ${this.max} redirects (last to ${next.origin})`;
    else if (next.protocol !== 'http:' && next.protocol !== 'https:') refusal = `refusing a redirect to ${next.protocol} (${next.href.slice(0, 200)})`;
    else if (from.protocol === 'https:' && next.protocol === 'http:') refusal = `refusing a redirect from HTTPS to plain HTTP (${next.origin}): HTTPS never falls back to plain HTTP`;
    if (refusal) {
      controller.abort(withOrigin(new RedirectError(refusal), from));
      return;
    }
    this.location = next;
    this.dropped = 0;
    if (statusCode === 303 && this.opts.method !== 'HEAD') this.switchToGet = true;
  }

  private switchToGet = false;
  private dropped = 0;

  override onResponseData(controller: Controller, chunk: Buffer): void {
    if (!this.location) {
      super.onResponseData(controller, chunk);
      return;
    }
    // A redirect's own body is dropped unread, up to the bound for bodies nobody wants.
    this.dropped += chunk.length;
    if (this.dropped > MAX_REDIRECT_BODY) {
      this.location = undefined;
      controller.abort(withOrigin(new RedirectError(`a redirect body longer than ${MAX_REDIRECT_BODY} bytes`), urlOf(this.opts)));
    }
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    const next = this.location;
    if (!next) {
      super.onResponseEnd(controller, trailers);
      return;
    }
    this.location = undefined;
    const crossOrigin = next.origin !== urlOf(this.opts).origin;
    const drop: Record<string, undefined> = { host: undefined };
    if (crossOrigin) Object.assign(drop, { authorization: undefined, cookie: undefined, 'proxy-authorization': undefined });
    if (this.switchToGet) Object.assign(drop, { 'content-type': undefined, 'content-length': undefined });
    this.opts = {
      ...this.opts,
      origin: next.origin,
      path: next.pathname + next.search,
      headers: setHeaders(this.opts.headers, drop),
      ...(this.switchToGet && { method: 'GET', body: null }),
    };
    this.switchToGet = false;
    this.dispatch(this.opts, this);
  }

  override onResponseError(controller: Controller, error: Error): void {
    super.onResponseError(controller, withOrigin(error, urlOf(this.opts)));
  }
}
