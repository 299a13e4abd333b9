// Getting bytes into the cache: one dispatcher for the whole build (TLS per
// source host, credentials per host, the minimum rate), and one fetch per blob
// digest however many images share it, under the shared concurrency limit.
import type { ContentStore } from '../cache/store.js';
import type { HostSettings } from '../http/agent.js';
import { Http } from '../http/client.js';
import type { Plan } from '../manifest/types.js';
import type { Progress } from '../progress/reporter.js';
import type { RegistryClient } from '../registry/client.js';
import type { Descriptor } from '../registry/pull.js';
import type { BuildOptions } from './build.js';

type Limit = <T>(fn: () => Promise<T>) => Promise<T>;

export class BlobFetcher {
  /** Bytes taken off the network by this build. */
  downloaded = 0;
  private readonly fetches = new Map<string, Promise<void>>();

  constructor(
    private readonly store: ContentStore,
    private readonly http: Http,
    private readonly progress: Progress,
    private readonly limit: Limit,
    /** Digests a base holds: they stay out of the tar, so they are not downloaded (manifests are: the walk needs them). */
    private readonly held: ReadonlyMap<string, unknown>,
    /** Slots for what the walk waits on (configs): the manifests' own. */
    private readonly urgentLimit: Limit = limit,
  ) {}

  /** The fetch of `digest`, when one was started. */
  pending(digest: string): Promise<void> | undefined {
    return this.fetches.get(digest);
  }

  fetch(client: RegistryClient, repo: string, d: Descriptor, urgent = false): Promise<void> {
    if (this.held.has(d.digest)) return Promise.resolve();
    let p = this.fetches.get(d.digest);
    if (!p) {
      p = this.ingest(client, repo, d, urgent ? this.urgentLimit : this.limit);
      this.fetches.set(d.digest, p);
    }
    return p;
  }

  private async ingest(client: RegistryClient, repo: string, d: Descriptor, limit: Limit): Promise<void> {
    const { store, progress } = this;
    progress.addTotal(d.size);
    if (await store.has(d.digest, d.size)) {
      const t = progress.transfer(d.digest, d.size);
      t.advance(d.size);
      t.done();
      return;
    }
    await limit(async () => {
      const what = `${client.host}/${repo}@${d.digest}`;
      const t = progress.transfer(`${repo}@${d.digest.slice(7, 19)}`, d.size);
      try {
        const got = await store.ingest({
          what,
          expected: d.digest,
          size: d.size,
          source: { open: (offset) => client.blob(repo, d.digest, offset, d.size) },
          retry: this.http.retryPolicy,
          onBytes: (n) => t.advance(n),
          onWait: (pid) => progress.log(`${what}: another airlock (pid ${pid}) is fetching it into the same cache; waiting for it`),
        });
        this.downloaded += got.downloaded;
      } finally {
        t.done();
      }
    });
  }
}

/** The one dispatcher of a build (or a sync): TLS per host, credentials per host, the minimum rate. */
export function createHttp(opts: Pick<BuildOptions, 'concurrency' | 'bodyTimeoutMs' | 'minBytesPerSecond' | 'tool' | 'credentials' | 'retry' | 'warn'>, settings: (host: string) => HostSettings): Http {
  const window = opts.bodyTimeoutMs ?? 60_000;
  return new Http({
    // Per origin: the downloads' slots, the manifest walk's and the attached lookups' (twice as many: small requests in chains of
    // three round trips, build.ts), so neither walks nor lookups wait for a free connection behind layers.
    connections: opts.concurrency * 4,
    settings,
    ...(opts.bodyTimeoutMs !== undefined && { bodyTimeoutMs: opts.bodyTimeoutMs }),
    rateWindowMs: window,
    minBytesPerWindow: Math.round(((opts.minBytesPerSecond ?? 1024) * window) / 1000),
    userAgent: opts.tool.replace(' ', '/'),
    ...(opts.credentials && { credentials: opts.credentials }),
    ...(opts.retry && { retry: opts.retry }),
    ...(opts.warn && { warn: opts.warn }),
  });
}

export function hostSettings(plan: Plan, host: string): HostSettings {
  const r = plan.registries[host];
  if (!r) return {};
  return {
    ...(r.plainHttp !== undefined && { plainHttp: r.plainHttp }),
    ...(r.caFile !== undefined && { caFile: r.caFile }),
    ...(r.insecureSkipTLSVerify !== undefined && { insecure: r.insecureSkipTLSVerify }),
  };
}

