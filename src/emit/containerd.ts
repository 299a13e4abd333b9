// containerd registry mirrors: certs.d/<upstream host>/hosts.toml per upstream
// registry, and the same as Kubespray's containerd_registries_mirrors.
import { stringify } from 'yaml';
import { apiHost } from '../oci/reference.js';
import { hostComponent } from '../bundle/targets.js';
import type { EmitContext } from './context.js';
import { upstreamHosts } from './welkin.js';

interface Mirror {
  /** URL containerd talks to, with the path prefix when the layout needs one. */
  url: string;
  overridePath: boolean;
}

function mirror(ctx: EmitContext, upstream: string): Mirror {
  const pathPart = [ctx.registry.prefix, ctx.layout === 'host' ? hostComponent(upstream) : ''].filter(Boolean).join('/');
  const base = `${ctx.registryScheme}://${ctx.registry.host}`;
  // With a path, containerd must be told the URL already holds the API root.
  return pathPart ? { url: `${base}/v2/${pathPart}`, overridePath: true } : { url: base, overridePath: false };
}

const toml = (s: string) => JSON.stringify(s);

export function hostsToml(ctx: EmitContext, upstream: string): string {
  const m = mirror(ctx, upstream);
  const lines = [
    `# written by airlock unpack: pull ${upstream} images from the private registry`,
    `server = ${toml(`https://${apiHost(upstream)}`)}`,
    '',
    `[host.${toml(m.url)}]`,
    '  capabilities = ["pull", "resolve"]',
  ];
  if (m.overridePath) lines.push('  override_path = true');
  if (ctx.registryScheme === 'https' && ctx.registryInsecure) lines.push('  skip_verify = true');
  if (ctx.caFile) lines.push(`  ca = ${toml(ctx.caFile)}`);
  return lines.join('\n') + '\n';
}

export function containerdHosts(ctx: EmitContext): Map<string, string> {
  return new Map(upstreamHosts(ctx).map((h) => [h, hostsToml(ctx, h)]));
}

export function kubesprayMirrors(ctx: EmitContext): string | undefined {
  const hosts = upstreamHosts(ctx);
  if (hosts.length === 0) return undefined;
  const entries = hosts.map((h) => {
    const m = mirror(ctx, h);
    return {
      prefix: h,
      mirrors: [{ host: m.url, capabilities: ['pull', 'resolve'], skip_verify: ctx.registryScheme === 'https' && ctx.registryInsecure, ...(m.overridePath && { override_path: true }) }],
    };
  });
  return `# Kubespray inventory variables written by airlock unpack.\n${stringify({ containerd_registries_mirrors: entries })}`;
}
