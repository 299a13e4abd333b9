// A minimum transfer rate. undici's body timeout ends a body that stops; a
// body that sends a byte every few seconds never trips it and keeps a build
// alive forever. Here every window of `windowMs` must bring at least
// `minBytes`, or the attempt fails with a retryable error, so the item
// resumes from what it kept (and gives up after its attempts).
import type { Dispatcher } from 'undici';
import { SlowBodyError, withOrigin } from './errors.js';
import { Tracked, type Controller, type DispatchOptions, type Headers } from './handler.js';

export interface RateOptions {
  windowMs: number;
  minBytes: number;
}

export function minimumRate(o: RateOptions): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) =>
    (opts.method === 'HEAD' || o.minBytes <= 0 ? dispatch(opts, handler) : dispatch(opts, new RateHandler(opts as DispatchOptions, handler, o)));
}

class RateHandler extends Tracked {
  private timer: NodeJS.Timeout | undefined;
  private bytes = 0;
  constructor(
    opts: DispatchOptions,
    handler: Dispatcher.DispatchHandler,
    private readonly o: RateOptions,
  ) {
    super(opts, handler);
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (statusCode >= 200 && !this.timer) {
      this.timer = setInterval(() => {
        // A consumer holding back (backpressure) is not the server's slowness.
        if (this.bytes < this.o.minBytes && !controller.paused) {
          this.stop();
          const what = this.opts.airlock?.item ?? this.url;
          controller.abort(withOrigin(new SlowBodyError(`${what}: fewer than ${this.o.minBytes} bytes in ${this.o.windowMs / 1000} s (AIRLOCK_MIN_RATE); the link is too slow or stalled`), this.url));
        }
        this.bytes = 0;
      }, this.o.windowMs);
      this.timer.unref();
    }
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    this.bytes += chunk.length;
    super.onResponseData(controller, chunk);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    this.stop();
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.stop();
    super.onResponseError(controller, error);
  }

  private stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
