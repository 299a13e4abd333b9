// A handler that passes every callback on; interceptors extend it and
// override the callbacks they care about.
import type { Dispatcher } from 'undici';

export type Controller = Dispatcher.DispatchController;
export type Headers = Record<string, string | string[] | undefined>;

export class Forward implements Dispatcher.DispatchHandler {
  constructor(protected readonly handler: Dispatcher.DispatchHandler) {}

  onRequestStart(controller: Controller, context: unknown): void {
    this.handler.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: import('node:stream').Duplex): void {
    this.handler.onRequestUpgrade?.(controller, statusCode, headers as never, socket);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    this.handler.onResponseStart?.(controller, statusCode, headers as never, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    this.handler.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Controller, trailers: Headers): void {
    this.handler.onResponseEnd?.(controller, trailers as never);
  }

  onResponseError(controller: Controller, error: Error): void {
    this.handler.onResponseError?.(controller, error);
  }

  onBodySent(chunk: Buffer): void {
    this.handler.onBodySent?.(chunk);
  }

  onRequestSent(): void {
    this.handler.onRequestSent?.();
  }
}

/** A handler that knows the URL its request went to (after redirects: the one that answered), to name it in errors. */
export class Tracked extends Forward {
  protected url: string;

  constructor(
    protected readonly opts: DispatchOptions,
    handler: Dispatcher.DispatchHandler,
  ) {
    super(handler);
    this.url = new URL(opts.path, String(opts.origin)).toString();
  }

  override onRequestStart(controller: Controller, context: unknown): void {
    const url = (context as { url?: string } | undefined)?.url;
    if (url) this.url = url;
    super.onRequestStart(controller, context);
  }
}

/** Per-request settings the interceptors read; undici passes unknown dispatch options through untouched. */
export interface AirlockRequest {
  /** What the request is for, for error messages (a reference, a URL). */
  readonly item?: string;
  /** Registry token scopes; default derived from the /v2/ path and method. */
  readonly scope?: readonly string[];
  /** Upper bound of a 2xx body (manifests, checksum files). */
  readonly maxBody?: number;
  /** Exact size of the whole content (blobs, files): a 200 must carry this many bytes, a 206 the rest from its start. */
  readonly size?: number;
  /** Send the host's basic credentials up front (Harbor's API answers 401 without a challenge). */
  readonly basic?: boolean;
}

export type DispatchOptions = Dispatcher.DispatchOptions & { airlock?: AirlockRequest };

export function headerValue(headers: Headers | Dispatcher.DispatchOptions['headers'], name: string): string | undefined {
  if (!headers) return undefined;
  const want = name.toLowerCase();
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) if (String(headers[i]).toLowerCase() === want) return String(headers[i + 1]);
    return undefined;
  }
  for (const [k, v] of Object.entries(headers as Record<string, unknown>)) {
    if (k.toLowerCase() === want) return Array.isArray(v) ? String(v[0]) : v === undefined ? undefined : String(v);
  }
  return undefined;
}

/** A copy of `headers` as a plain lower-case object, with `set` applied (undefined deletes). */
export function setHeaders(headers: Dispatcher.DispatchOptions['headers'], set: Record<string, string | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  if (Array.isArray(headers)) {
    for (let i = 0; i + 1 < headers.length; i += 2) out[String(headers[i]).toLowerCase()] = String(headers[i + 1]);
  } else if (headers) {
    for (const [k, v] of Object.entries(headers as Record<string, unknown>)) if (v !== undefined) out[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : String(v);
  }
  for (const [k, v] of Object.entries(set)) {
    if (v === undefined) delete out[k.toLowerCase()];
    else out[k.toLowerCase()] = v;
  }
  return out;
}
