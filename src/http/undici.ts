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

export const Agent: typeof UndiciAgent = AgentClass;
export const Pool: typeof UndiciPool = PoolClass;
export const retry: typeof UndiciInterceptors.retry = retryInterceptor;

export function request(dispatcher: Dispatcher, opts: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  return (apiRequest as (this: Dispatcher, o: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>).call(dispatcher, opts);
}
