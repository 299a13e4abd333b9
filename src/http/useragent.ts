// Names airlock and its version to every server, unless the caller set one.
import type { Dispatcher } from 'undici';
import { headerValue, setHeaders } from './handler.js';

export function userAgent(value: string): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler) =>
    dispatch(headerValue(opts.headers, 'user-agent') !== undefined ? opts : { ...opts, headers: setHeaders(opts.headers, { 'user-agent': value }) }, handler);
}
