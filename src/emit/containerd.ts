// containerd registry mirrors: certs.d/<upstream host>/hosts.toml per upstream
// registry, and the same as Kubespray inventory variables
// (containerd_registries_mirrors, checked against kubespray's
// roles/container-engine/containerd/templates/hosts.toml.j2), plus Kubespray's
// pause image (pod_infra_image_repo/_tag) when the bundle holds it. Each Kubespray
// entry names its `server`, as its hosts.toml does: without one Kubespray writes
// `https://<prefix>` (roles/container-engine/containerd/templates/hosts.toml.j2),
// which for docker.io is not the registry containerd would otherwise use.
import { stringify } from 'yaml';
import { apiHost, parseReference } from '../oci/reference.js';
import { hostComponent, targetRepository } from '../bundle/targets.js';
import { registryTrust, type EmitContext } from './context.js';
import { commentText, tomlString } from './escape.js';
import type { Notes } from './notes.js';
import { upstreamHosts } from './welkin.js';

/** The CA's file name in DIR/containerd/ and in /etc/containerd/ on the nodes (DIR/containerd/ mirrors /etc/containerd/). */
export const CA_FILE = 'airlock-registry-ca.crt';
export const NODE_CA_PATH = `/etc/containerd/${CA_FILE}`;
export const KUBESPRAY_FILE = 'kubespray/containerd-mirrors.yaml';

interface Entry {
  /** The registry host images are named with (containerd's namespace, Kubespray's `prefix`). */
  prefix: string;
  /** containerd's fallback server. */
  server: string;
  /** URL containerd talks to, with the path prefix when the layout needs one. */
  url: string;
  overridePath: boolean;
  comment: string;
}

function upstreamEntry(ctx: EmitContext, upstream: string): Entry {
  const pathPart = [ctx.registry.prefix, ctx.layout === 'host' ? hostComponent(upstream) : ''].filter(Boolean).join('/');
  const base = `${ctx.registryScheme}://${ctx.registry.host}`;
  return {
    prefix: upstream,
    server: `https://${apiHost(upstream)}`,
    // With a path, containerd must be told the URL already holds the API root.
    ...(pathPart ? { url: `${base}/v2/${pathPart}`, overridePath: true } : { url: base, overridePath: false }),
    comment: `pull ${upstream} images from the private registry`,
  };
}

/**
 * Every upstream registry in the bundle, and the private registry itself when
 * containerd's default (HTTPS, system trust store) cannot reach it: images named
 * with it, such as Kubespray's pod_infra_image_repo, are pulled from it directly.
 */
function entries(ctx: EmitContext): Entry[] {
  const hosts = upstreamHosts(ctx);
  if (hosts.length === 0) return [];
  const out = hosts.map((h) => upstreamEntry(ctx, h));
  if (registryTrust(ctx) !== 'public' && !hosts.includes(ctx.registry.host)) {
    const url = `${ctx.registryScheme}://${ctx.registry.host}`;
    out.push({ prefix: ctx.registry.host, server: url, url, overridePath: false, comment: 'how to reach the private registry itself (pod_infra_image_repo and images named with it)' });
  }
  return out;
}

const skipVerify = (ctx: EmitContext) => ctx.registryScheme === 'https' && ctx.registryInsecure;
const toml = tomlString;

function hostsToml(ctx: EmitContext, e: Entry): string {
  const lines = [`# ${commentText(`written by airlock: ${e.comment}`)}`, `server = ${toml(e.server)}`, '', `[host.${toml(e.url)}]`, '  capabilities = ["pull", "resolve"]'];
  if (e.overridePath) lines.push('  override_path = true');
  if (skipVerify(ctx)) lines.push('  skip_verify = true');
  // A path on the node; DIR/containerd/ holds the file to put there.
  if (ctx.caFile) lines.push(`  ca = ${toml(NODE_CA_PATH)}`);
  return lines.join('\n') + '\n';
}

/** `certs.d/<host>` folder name → hosts.toml text. */
export function containerdHosts(ctx: EmitContext): Map<string, string> {
  return new Map(entries(ctx).map((e) => [e.prefix, hostsToml(ctx, e)]));
}

/** Kubespray's pause image: a single-component `pause` repository, registry.k8s.io's first. */
function pauseImage(ctx: EmitContext): { repo: string; tags: string[] } | undefined {
  const pauses = ctx.index.images.map((i) => parseReference(i.ref)).filter((r) => r.repository === 'pause');
  if (pauses.length === 0) return undefined;
  const host = pauses.some((r) => r.registry === 'registry.k8s.io') ? 'registry.k8s.io' : (pauses[0]?.registry ?? '');
  const chosen = pauses.filter((r) => r.registry === host);
  const first = chosen[0];
  if (!first) return undefined;
  return {
    repo: `${ctx.registry.host}/${targetRepository(first, ctx.registry, ctx.layout)}`,
    tags: [...new Set(chosen.flatMap((r) => (r.tag !== undefined ? [r.tag] : [])))].sort(),
  };
}

/** Kubespray's containerd_registries_mirrors for every source registry in the bundle, each with its `server`. */
export function kubesprayMirrorList(ctx: EmitContext): unknown[] {
  return entries(ctx).map((e) => ({
      prefix: e.prefix,
      server: e.server,
      mirrors: [
        {
          host: e.url,
          capabilities: ['pull', 'resolve'],
          skip_verify: skipVerify(ctx),
          ...(e.overridePath && { override_path: true }),
          ...(ctx.caFile && { ca: [NODE_CA_PATH] }),
        },
      ],
  }));
}

export function kubesprayMirrors(ctx: EmitContext, notes: Notes): string | undefined {
  const es = entries(ctx);
  if (es.length === 0) return undefined;
  const vars: Record<string, unknown> = { containerd_registries_mirrors: kubesprayMirrorList(ctx) };
  notes.step(`${KUBESPRAY_FILE}: each entry's server (the one its hosts.toml names) is read by Kubespray v2.25 or later; an older Kubespray writes https://<prefix> instead, which is not what containerd/ holds.`);
  if (es.some((e) => e.overridePath)) notes.step(`${KUBESPRAY_FILE}: override_path needs Kubespray v2.24.0 or later.`);
  if (ctx.caFile) {
    notes.step(
      `${KUBESPRAY_FILE}: Kubespray writes \`ca = ["${NODE_CA_PATH}"]\` into each hosts.toml (Kubespray v2.28.0 or later) but does not copy the file: put containerd/${CA_FILE} at ${NODE_CA_PATH} on every node before running cluster.yml, ` +
        'or add the CA to the nodes\' system trust store (then `ca` may go).',
    );
  }
  const pause = pauseImage(ctx);
  if (pause) {
    vars.pod_infra_image_repo = pause.repo;
    if (pause.tags.length === 1) vars.pod_infra_image_tag = pause.tags[0];
    else if (pause.tags.length > 1) notes.step(`${KUBESPRAY_FILE}: pod_infra_image_tag is not set, as the bundle holds pause ${pause.tags.join(', ')}: Kubespray's default tag (pod_infra_version, by Kubernetes version) must be one of them.`);
    else notes.step(`${KUBESPRAY_FILE}: pod_infra_image_tag is not set, as the bundle holds the pause image by digest only: Kubespray pulls it by tag (pod_infra_version), so carry it with that tag.`);
  }
  const what = `Kubespray inventory variables written by airlock for ${ctx.index.name} ${ctx.index.version}`;
  return `# ${commentText(what)}; see ../README.md.\n${stringify(vars)}`;
}
