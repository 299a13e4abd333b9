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
  /** Written by `airlock sync` (from a manifest, no bundle) rather than unpack. */
  readonly via?: 'sync';
}

/** `REGISTRY[/PREFIX]` for an upstream host, matching the layout. */
export function mirrorFor(ctx: EmitContext, upstreamHost: string, hostComponent: (h: string) => string): string {
  return [ctx.registry.host, ctx.registry.prefix, ctx.layout === 'host' ? hostComponent(upstreamHost) : ''].filter(Boolean).join('/');
}

/**
 * How a client inside the cluster can reach the registry: `public` is HTTPS that a
 * stock trust store verifies; the others need a client that can be told so.
 */
export type RegistryTrust = 'public' | 'private-ca' | 'insecure' | 'plain-http';

export function registryTrust(ctx: EmitContext): RegistryTrust {
  if (ctx.registryScheme === 'http') return 'plain-http';
  if (ctx.registryInsecure) return 'insecure';
  return ctx.caFile ? 'private-ca' : 'public';
}

export const TRUST_WORDS: Record<RegistryTrust, string> = {
  public: 'HTTPS, certificate from a public CA',
  'private-ca': 'HTTPS, certificate from a private CA (--ca-file)',
  insecure: 'HTTPS without certificate verification (--insecure)',
  'plain-http': 'plain HTTP',
};

/** TCP port of a URL, the scheme's default when it names none. */
export function urlPort(url: string): number {
  const u = new URL(url);
  if (u.port) return Number(u.port);
  return u.protocol === 'http:' ? 80 : 443;
}

/** TCP port the cluster reaches the registry on. */
export function registryPort(ctx: EmitContext): number {
  return urlPort(`${ctx.registryScheme}://${ctx.registry.host}`);
}

