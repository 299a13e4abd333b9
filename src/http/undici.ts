// The parts of undici airlock uses, loaded one by one. undici's index loads all
// of it (fetch, WebSocket, EventSource, caches, mocks): about 150 ms at every
// start of a command on the bench machine, against about 60 ms for these four.
// Its index also gives every dispatcher a request() method; here request() is
// undici's own api-request called on our dispatcher, which is all that does.
import type { Dispatcher, Agent as UndiciAgent, Pool as UndiciPool, interceptors as UndiciInterceptors } from 'undici';
import AgentClass from 'undici/lib/dispatcher/agent.js';
import PoolClass from 'undici/lib/dispatcher/pool.js';
import retryInterceptor from 'undici/lib/interceptor/retry.js';
import apiRequest from 'undici/lib/api/api-request.js';
import { setFlagsFromString } from 'node:v8';

export const Agent: typeof UndiciAgent = AgentClass;
export const Pool: typeof UndiciPool = PoolClass;
export const retry: typeof UndiciInterceptors.retry = retryInterceptor;

export function request(dispatcher: Dispatcher, opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  return (apiRequest as (this: Dispatcher, o: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>).call(dispatcher, opts);
}

// undici parses HTTP/1.1 with llhttp compiled to WebAssembly. V8 starts with a
// quick baseline compile of it and, once the parser is hot, optimizes it again
// on a background thread; that job takes about 90 ms here, and a process does
// not exit before it ends (the class of nodejs/node#36616). The 12 HEAD requests
// of a second unpack, in a bare script: 0.25 s with undici, 0.15-0.16 s with
// the optimizing tier off, 0.15 s with node:http, whose parser is native. The
// parser spends its time in JavaScript callbacks and in copying bytes, not in
// its own code (cold builds were no slower): the baseline code is kept.
// The flags are set here, once undici's modules are loaded and before the first
// connection compiles the parser: set at start they cost ~30 ms, because V8 then
// refuses the code cache of Node's own modules (it is keyed by the flags).
setFlagsFromString('--no-wasm-tier-up --no-wasm-dynamic-tiering');
