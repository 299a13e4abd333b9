// What the config writers need to know about the result of an unpack.
import type { BundleIndex } from '../bundle/format.js';
import type { Layout, TargetRegistry } from '../bundle/targets.js';

export interface EmitContext {
  readonly index: BundleIndex;
  readonly registry: TargetRegistry;
  readonly layout: Layout;
  /** Scheme the cluster uses to reach the registry. */
  readonly registryScheme: 'http' | 'https';
  /** HTTPS without verification, or plain HTTP: Trivy must be told it is "insecure". */
  readonly registryInsecure: boolean;
  readonly caFile?: string;
  /** File server URL as the cluster sees it, without a trailing slash. */
  readonly fileserverUrl?: string;
}

/** `REGISTRY[/PREFIX]` for an upstream host, matching the layout. */
export function mirrorFor(ctx: EmitContext, upstreamHost: string, hostComponent: (h: string) => string): string {
  return [ctx.registry.host, ctx.registry.prefix, ctx.layout === 'host' ? hostComponent(upstreamHost) : ''].filter(Boolean).join('/');
}
