// Types for the undici files src/http/undici.ts loads one by one (undici ships
// types only for its index); each is the index's export of the same name.
declare module 'undici/lib/dispatcher/agent.js' {
  import { Agent } from 'undici';
  export default Agent;
}
declare module 'undici/lib/dispatcher/pool.js' {
  import { Pool } from 'undici';
  export default Pool;
}
declare module 'undici/lib/interceptor/retry.js' {
  import { interceptors } from 'undici';
  const retry: typeof interceptors.retry;
  export default retry;
}
declare module 'undici/lib/api/api-request.js' {
  const request: unknown;
  export default request;
}
