// Welkin (compliantkubernetes-apps) config overrides for what the bundle holds:
// Trivy's databases and mirrors, Falco's artifact index and driver repository
// in common-config.yaml; OpenSearch plugin URLs in sc-config.yaml.
import { stringify } from 'yaml';
import { parseReference } from '../oci/reference.js';
import { hostComponent, targetRepository } from '../bundle/targets.js';
import { mirrorFor, type EmitContext } from './context.js';

/** Upstream hosts Welkin's air-gapped flavor mirrors, plus every host in the bundle. */
const WELKIN_MIRRORED = ['docker.io', 'gcr.io', 'ghcr.io', 'index.docker.io', 'quay.io', 'registry.k8s.io'];

export function upstreamHosts(ctx: EmitContext): string[] {
  return [...new Set(ctx.index.images.map((i) => parseReference(i.ref).registry))].sort();
}

export function welkinCommonConfig(ctx: EmitContext): string | undefined {
  const images = ctx.index.images;
  const trivyDb = images.find((i) => i.role === 'trivy-db');
  const javaDb = images.find((i) => i.role === 'trivy-java-db');
  const falcoArtifacts = images.filter((i) => i.role === 'falco-rules' || i.role === 'falco-plugin');
  const drivers = ctx.index.files.filter((f) => f.role === 'falco-driver');
  const config: Record<string, unknown> = {};

  const scanner: Record<string, unknown> = {};
  if (trivyDb || javaDb) scanner.offlineScanEnabled = true;
  if (trivyDb) {
    scanner.dbRegistry = ctx.registry.host;
    scanner.dbRepository = targetRepository(parseReference(trivyDb.ref), ctx.registry, ctx.layout);
  }
  if (javaDb) {
    scanner.javaDbRegistry = ctx.registry.host;
    scanner.javaDbRepository = targetRepository(parseReference(javaDb.ref), ctx.registry, ctx.layout);
  }
  if (trivyDb || javaDb) scanner.dbRepositoryInsecure = ctx.registryInsecure;
  if (images.some((i) => i.kind === 'image')) {
    const hosts = [...new Set([...WELKIN_MIRRORED, ...upstreamHosts(ctx)])].sort();
    scanner.registry = { mirror: Object.fromEntries(hosts.map((h) => [h, mirrorFor(ctx, h === 'index.docker.io' ? 'docker.io' : h, hostComponent)])) };
  }
  if (Object.keys(scanner).length) config.trivy = { scanner };

  const falco: Record<string, unknown> = {};
  if (falcoArtifacts.length && ctx.fileserverUrl) {
    falco.artifact = { install: { enabled: true } };
    falco.customIndexes = [{ name: 'airlock', url: `${ctx.fileserverUrl}/falco/index.yaml` }];
  }
  if (drivers.length && ctx.fileserverUrl) {
    // Welkin's schema takes repoURL with kind kmod; the bundle's .o files mean the legacy eBPF probe.
    const kind = drivers.every((d) => d.path.endsWith('.o')) ? 'ebpf' : 'kmod';
    falco.driver = { kind, ...(kind === 'kmod' && { module: { repoURL: `${ctx.fileserverUrl}/falco/driver` } }) };
  }
  if (Object.keys(falco).length) config.falco = falco;
  if (Object.keys(config).length === 0) return undefined;
  return `# Welkin common-config.yaml overrides written by airlock unpack for bundle ${ctx.index.name} ${ctx.index.version}.\n` +
    '# Merge into your common-config.yaml.' +
    (drivers.length ? ' Note: Welkin maps falco.driver.module.repoURL to FALCOCTL_DRIVER_NAME; until that is fixed,\n# also set FALCOCTL_DRIVER_REPOS to the same URL in the driver loader environment.' : '') +
    `\n${stringify(config)}`;
}

export function welkinScConfig(ctx: EmitContext): string | undefined {
  const plugins = ctx.index.files.filter((f) => f.role === 'opensearch-plugin');
  if (plugins.length === 0 || !ctx.fileserverUrl) return undefined;
  const base = ctx.fileserverUrl;
  const config = {
    opensearch: {
      plugins: {
        installExternalObjectStoragePlugin: false,
        additionalPlugins: plugins.map((p) => `${base}/${p.path.split('/').map(encodeURIComponent).join('/')}`),
      },
    },
  };
  return `# Welkin sc-config.yaml overrides written by airlock unpack for bundle ${ctx.index.name} ${ctx.index.version}.\n${stringify(config)}`;
}
