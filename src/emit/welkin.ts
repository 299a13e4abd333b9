// Welkin (compliantkubernetes-apps) config overrides for what the bundle holds:
// Trivy's databases and mirrors, Falco's artifact index and driver kind, and the
// network policies they need, in common-config.yaml; OpenSearch plugin URLs,
// Harbor's scanner and their network policies in sc-config.yaml.
//
// Every value is checked against Welkin's config schema and its consumer
// (elastisys/compliantkubernetes-apps@0fc99b2, test/emit.test.ts). A setting that
// would break its consumer as the target is set up is left out; the notes say
// why and what to do (DIR/README.md).
import { stringify } from 'yaml';
import { parseReference } from '../oci/reference.js';
import { hostComponent, targetRepository } from '../bundle/targets.js';
import type { BundleImage } from '../bundle/format.js';
import { mirrorFor, registryPort, registryTrust, TRUST_WORDS, urlPort, type EmitContext, type RegistryTrust } from './context.js';
import { commentText, mdCode } from './escape.js';
import type { Notes } from './notes.js';

/** Welkin's placeholder for a value the operator must fill in; `ck8s validate` flags it. */
export const SET_ME = 'set-me';
export const WELKIN_SOURCE = 'elastisys/compliantkubernetes-apps@0fc99b2';
export const COMMON_FILE = 'welkin/common-config.yaml';
export const SC_FILE = 'welkin/sc-config.yaml';

/** Upstream hosts Welkin's air-gapped flavor mirrors, plus every host in the bundle. */
const WELKIN_MIRRORED = ['docker.io', 'gcr.io', 'ghcr.io', 'index.docker.io', 'quay.io', 'registry.k8s.io'];

/**
 * trivy-operator's chart turns each mirror into the ConfigMap key
 * `trivy.registry.mirror.<host>`; ConfigMap keys allow only these characters.
 */
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]{1,253}$/;

export function upstreamHosts(ctx: EmitContext): string[] {
  return [...new Set(ctx.index.images.map((i) => parseReference(i.ref).registry))].sort();
}

interface Held {
  trivyDb?: BundleImage;
  javaDb?: BundleImage;
  falcoArtifacts: BundleImage[];
  hasImages: boolean;
  driverFiles: string[];
  pluginPaths: string[];
}

function held(ctx: EmitContext): Held {
  const images = ctx.index.images;
  const trivyDb = images.find((i) => i.role === 'trivy-db');
  const javaDb = images.find((i) => i.role === 'trivy-java-db');
  return {
    ...(trivyDb && { trivyDb }),
    ...(javaDb && { javaDb }),
    falcoArtifacts: images.filter((i) => i.role === 'falco-rules' || i.role === 'falco-plugin'),
    hasImages: images.some((i) => i.kind === 'image'),
    driverFiles: ctx.index.files.filter((f) => f.role === 'falco-driver').map((f) => f.path),
    pluginPaths: ctx.index.files.filter((f) => f.role === 'opensearch-plugin').map((f) => f.path),
  };
}

const repositoryOf = (ctx: EmitContext, img: BundleImage) => targetRepository(parseReference(img.ref), ctx.registry, ctx.layout);
const uniq = <T>(xs: T[]) => [...new Set(xs)];

const header = (ctx: EmitContext, file: string) => `# ${commentText(`Welkin ${file} overrides written by airlock for ${ctx.index.name} ${ctx.index.version}`)}; see ../README.md.\n`;

/** Welkin's own `set-me-if-…` network policy placeholders these consumers still need filled. */
function welkinOwnStep(notes: Notes, welkinOwn: string[]): void {
  if (welkinOwn.length) notes.step(`Welkin's own placeholders (set-me-if-…) for these consumers want IP/32 netmasks too: ${welkinOwn.join('; ')}.`);
}

/** common-config.yaml (both clusters): trivy-operator, Falco, and their network policies. */
export function welkinCommonConfig(ctx: EmitContext, notes: Notes): string | undefined {
  const h = held(ctx);
  const trust = registryTrust(ctx);
  const regPort = registryPort(ctx);
  const common: Record<string, unknown> = {};
  const commonNetpol: Record<string, unknown> = {};
  const welkinOwn: string[] = [];

  // trivy-operator: where its scan jobs get the databases and the scanned images.
  const scanner: Record<string, unknown> = {};
  if (h.trivyDb || h.javaDb) {
    scanner.offlineScanEnabled = true;
    if (h.trivyDb) {
      scanner.dbRegistry = ctx.registry.host;
      scanner.dbRepository = repositoryOf(ctx, h.trivyDb);
    } else {
      notes.step('The bundle holds no Trivy DB (ghcr.io/aquasecurity/trivy-db:2): trivy.scanner.dbRegistry and dbRepository are not written (set-me in the air-gapped flavor); carry it (`trivy: {}` in the manifest) or set them yourself.');
    }
    if (h.javaDb) {
      scanner.javaDbRegistry = ctx.registry.host;
      scanner.javaDbRepository = repositoryOf(ctx, h.javaDb);
    } else {
      notes.step('The bundle holds no Trivy Java DB (ghcr.io/aquasecurity/trivy-java-db:1): trivy.scanner.javaDbRegistry and javaDbRepository are not written (set-me in the air-gapped flavor); carry it (`trivy: {}` in the manifest) or set them yourself.');
    }
  }
  if (h.hasImages) {
    const mirror: Record<string, string> = {};
    for (const host of uniq([...WELKIN_MIRRORED, ...upstreamHosts(ctx)]).sort()) {
      if (!CONFIGMAP_KEY.test(host)) {
        notes.omit({
          setting: `trivy.scanner.registry.mirror."${host}"`,
          why: `trivy-operator's chart makes each mirror the ConfigMap key \`trivy.registry.mirror.<host>\`, and a ConfigMap key may hold only letters, digits, ".", "_" and "-": "${host}" would make the trivy-operator release fail.`,
          todo: `None in Welkin: Trivy scans images from ${host} by pulling them from ${host} itself, so their vulnerability reports fail unless the cluster can reach it. Carry such images from a registry named without a port where you can.`,
        });
        continue;
      }
      mirror[host] = mirrorFor(ctx, host === 'index.docker.io' ? 'docker.io' : host, hostComponent);
    }
    scanner.registry = { mirror };
  }
  if (Object.keys(scanner).length) {
    // TRIVY_INSECURE, for the databases and the scanned images alike.
    scanner.dbRepositoryInsecure = ctx.registryInsecure;
    common.trivy = { scanner };
    if (trust === 'private-ca') {
      notes.warn(
        `Trivy (trivy-operator's scan jobs) checks ${ctx.registry.host}'s certificate against the trust store in the Trivy image, and Welkin has no setting for a CA (trivy.scanner has only dbRepositoryInsecure): the database downloads and image pulls will fail with "x509: certificate signed by unknown authority". ` +
          'Either serve the registry with a certificate from a CA the Trivy image trusts, or set trivy.scanner.dbRepositoryInsecure: true (Trivy then skips verification, for the databases and the scanned images).',
      );
    }
    welkinOwn.push(
      regPort === 80 || regPort === 443
        ? 'networkPolicies.global.trivy.ips: the registry (common-config.yaml)'
        : `networkPolicies.global.trivy.ips (common-config.yaml): ck8s validate asks for it while Trivy is enabled; the registry's IP will do, though that rule does not cover port ${regPort}`,
    );
    if (regPort !== 80 && regPort !== 443) {
      commonNetpol.additional = trivyEgressPolicies(regPort);
      notes.placeholder(COMMON_FILE, 'networkPolicies.additional (ipBlock.cidr, twice)', { unchecked: true });
      notes.step(
        `networkPolicies.additional in ${COMMON_FILE} holds two NetworkPolicies letting Trivy (namespace monitoring) reach the registry on port ${regPort}: Welkin's own rule for Trivy (egress-rule-trivy in helmfile.d/values/networkpolicies/common/common.yaml.gotmpl) allows ports 443 and 80 only and ignores networkPolicies.global.trivy.port. ` +
          'Fill in both `cidr: set-me` by hand with the registry\'s IP/32: `ck8s validate` does not catch them, because Welkin\'s schema takes networkPolicies.additional as one opaque string and never looks inside it; a `set-me` left there is only refused by the Kubernetes API when the policy is applied. ' +
          'networkPolicies.additional is that one string, not a list: merging this file replaces the string in your common-config.yaml. If you already set networkPolicies.additional, do not merge this key: append these two documents (each starts with `---`) to your own string.',
      );
    }
  }

  // Falco: falcoctl's artifact install (never turned on: see falcoctlStep), and the driver.
  const falco: Record<string, unknown> = {};
  if (h.falcoArtifacts.length && ctx.fileserverUrl) falcoctlStep(ctx, notes, h, trust, regPort, urlPort(ctx.fileserverUrl));
  if (h.driverFiles.length) {
    const legacy = h.driverFiles.filter((p) => p.endsWith('.o')).length;
    const kind = legacy === h.driverFiles.length ? 'ebpf' : legacy ? 'kmod (or ebpf)' : 'kmod';
    const repo = ctx.fileserverUrl ? `${ctx.fileserverUrl}/falco/driver` : '<file server URL>/falco/driver';
    falco.driver = { kind: 'modern_ebpf' };
    notes.omit({
      setting: `falco.driver.kind: ${kind}, falco.driver.module.repoURL: ${repo}`,
      why:
        `Welkin (${WELKIN_SOURCE}) cannot point Falco at a driver repository: helmfile.d/values/falco/falco-common.yaml.gotmpl puts falco.driver.module.repoURL into the driver loader's FALCOCTL_DRIVER_NAME (the driver's file-name prefix), where falcoctl reads the repository from FALCOCTL_DRIVER_REPOS; ` +
        'and config/schemas/config.yaml declares repoURL as oneOf [{contst: ""}, {format: uri}] — "contst" is no keyword, so every URL matches both branches and `ck8s validate` rejects it.',
      todo:
        'falco.driver.kind: modern_ebpf is written instead: Welkin\'s default, built into Falco, nothing to download (Linux 5.8 or later). ' +
        `To use the bundled drivers, patch falco-common.yaml.gotmpl so that driver.loader.initContainer.env sets FALCOCTL_DRIVER_REPOS to ${mdCode(repo)}, set falco.driver.kind: ${kind.split(' ')[0]} with repoURL left empty, and allow the file server's IP and port in networkPolicies.falco.plugins.` +
        (legacy ? ` ${LEGACY_EBPF_GONE}` : ''),
    });
  }
  if (Object.keys(falco).length) common.falco = falco;
  if (Object.keys(commonNetpol).length) common.networkPolicies = commonNetpol;
  welkinOwnStep(notes, welkinOwn);
  crossplaneStep(ctx, notes, regPort);
  return Object.keys(common).length ? header(ctx, 'common-config.yaml') + stringify(common) : undefined;
}

/** sc-config.yaml (service cluster): OpenSearch's plugins, Harbor's scanner, and their network policies. */
export function welkinScConfig(ctx: EmitContext, notes: Notes): string | undefined {
  const h = held(ctx);
  const trust = registryTrust(ctx);
  const regPort = registryPort(ctx);
  const sc: Record<string, unknown> = {};
  const scNetpol: Record<string, unknown> = {};
  const welkinOwn: string[] = [];

  // OpenSearch's plugin installer, on the service cluster.
  if (h.pluginPaths.length && ctx.fileserverUrl) {
    const base = ctx.fileserverUrl;
    sc.opensearch = {
      plugins: {
        installExternalObjectStoragePlugin: false,
        additionalPlugins: h.pluginPaths.map((p) => `${base}/${p.split('/').map(encodeURIComponent).join('/')}`),
      },
    };
    const port = urlPort(base);
    if (port !== 443) {
      scNetpol.opensearch = { plugins: { ips: [SET_ME], ports: [port] } };
      notes.placeholder(SC_FILE, 'networkPolicies.opensearch.plugins.ips (the file server)');
    } else {
      welkinOwn.push('networkPolicies.opensearch.plugins.ips: the file server (sc-config.yaml)');
    }
  }

  // Harbor's own scanner fetches the databases too, from the internet unless told otherwise.
  if (h.trivyDb || h.javaDb) {
    const env: Array<{ name: string; value: string }> = [];
    if (h.trivyDb) env.push({ name: 'SCANNER_TRIVY_DB_REPOSITORY', value: `${ctx.registry.host}/${repositoryOf(ctx, h.trivyDb)}` });
    if (h.javaDb) env.push({ name: 'SCANNER_TRIVY_JAVA_DB_REPOSITORY', value: `${ctx.registry.host}/${repositoryOf(ctx, h.javaDb)}` });
    sc.harbor = { trivy: { extraEnvVars: env } };
    notes.step(`harbor.trivy.extraEnvVars in ${SC_FILE} replaces the list in your sc-config.yaml: if you set other variables there, keep them in the list.`);
    if (regPort !== 443) {
      scNetpol.harbor = { trivy: { ips: [SET_ME], ports: [regPort] } };
      notes.placeholder(SC_FILE, 'networkPolicies.harbor.trivy.ips (the registry)');
    } else {
      welkinOwn.push('networkPolicies.harbor.trivy.ips: the registry (sc-config.yaml)');
    }
    if (trust !== 'public') notes.warn(harborScannerWarning(ctx, trust));
  }
  if (Object.keys(scNetpol).length) sc.networkPolicies = scNetpol;
  welkinOwnStep(notes, welkinOwn);
  return Object.keys(sc).length ? header(ctx, 'sc-config.yaml') + stringify(sc) : undefined;
}

/**
 * Crossplane packages (provider-*, function-*) are pulled by Crossplane's package
 * manager, not by containerd: the mirrors do not apply. Welkin names them in
 * images.crossplane.{providers,functions}.<name> (helmfile.d/values/crossplane-packages.yaml.gotmpl),
 * read through container_uri.parse (helmfile.d/values/_helpers.tpl), which splits
 * a reference at its first ":": a registry with a port cannot be named there.
 */
function crossplaneStep(ctx: EmitContext, notes: Notes, regPort: number): void {
  const settings: string[] = [];
  for (const img of ctx.index.images) {
    const ref = parseReference(img.ref);
    const m = /^(provider|function)-(.+)$/.exec(ref.repository.split('/').at(-1) ?? '');
    if (!m || ref.tag === undefined) continue;
    settings.push(`images.crossplane.${m[1]}s.${m[2]}: ${ctx.registry.host}/${repositoryOf(ctx, img)}:${ref.tag}`);
  }
  if (settings.length === 0) return;
  const why = "Crossplane packages are pulled by Crossplane's own package manager, not by containerd, so the registry mirrors do not cover them.";
  if (ctx.registry.host.includes(':')) {
    notes.omit({
      setting: settings.join(', '),
      why:
        `${why} Welkin reads images.crossplane.* through container_uri.parse (helmfile.d/values/_helpers.tpl), which splits a reference at its first ":" to find the tag: ` +
        `with the registry's port in it (${mdCode(ctx.registry.host)}) the registry, repository and tag come out wrong, and the packages would not install.`,
      todo: `Leave images.crossplane.* as they are (Crossplane then pulls from xpkg.crossplane.io, which the air gap blocks) until the registry is reachable under a name without a port (HTTPS on 443); then set them to the references above, with that name.`,
    });
    return;
  }
  notes.step(
    `${why} To install them from the registry, set ${settings.map(mdCode).join(', ')} and allow the registry (its IP, port ${regPort}) in networkPolicies.crossplane.packageRegistry; ` +
      'the package manager speaks HTTPS and checks the certificate against its own trust store (Welkin passes the Crossplane chart no CA bundle).',
  );
}

/**
 * An https:// file server airlock was told nothing about is taken to have a public
 * certificate; with --ca-file (the registry's private CA) it is taken to share
 * that CA. Then none of its consumers can reach it: each checks the certificate
 * against its own image's trust store, and Welkin gives none of them a CA.
 */
export function fileServerCaWarning(ctx: EmitContext, notes: Notes): void {
  if (!ctx.fileserverUrl?.startsWith('https:') || !ctx.caFile) return;
  const h = held(ctx);
  const consumers = [
    h.pluginPaths.length ? ["OpenSearch's plugin installer", "(opensearch-plugin install, Java's trust store in the OpenSearch image; Welkin passes it no CA)"] : [],
    h.falcoArtifacts.length ? ['falcoctl', "(for the index: Go's trust store in the falcoctl image; no CA setting, in falcoctl or in Welkin)"] : [],
    h.driverFiles.length ? ["Falco's driver loader", '(falcoctl driver install: only --http-insecure, which skips verification, and no CA)'] : [],
  ].filter((c) => c.length > 0);
  if (consumers.length === 0) return;
  notes.alert(
    `The file server ${mdCode(ctx.fileserverUrl)} speaks HTTPS and --ca-file was given, so airlock takes its certificate to come from that private CA. These would then fail with "certificate signed by unknown authority": ${consumers.map((c) => c.join(' ')).join('; ')}. ` +
      'Give the cluster a plain http:// URL to the same files (--fileserver-url http://…, or let the file server listen on HTTP too): OpenSearch checks no checksum for a plugin given by URL either way, and falcoctl reads an index over http. Or serve the files with a certificate from a public CA.',
    `note: the file server ${ctx.fileserverUrl} is https and --ca-file was given: ${consumers.map((c) => c[0]).join(', ')} in the cluster cannot be given a private CA; see README.md in the --emit-config folder (an http:// --fileserver-url works)`,
  );
}

/** Said wherever the legacy eBPF probe (driver kind `ebpf`, `.o` files) is chosen. */
export const LEGACY_EBPF_GONE =
  'The legacy eBPF probe (driver kind ebpf, .o files) is gone from falcoctl 0.13 and Falco 0.44 ("drop legacy BPF probe support"): it works with the Falco 0.41.3 and falcoctl 0.11.2 Welkin runs now, but not after an upgrade to those; use kmod, or modern_ebpf (nothing to download), for anything meant to last.';

/** The reference of the Falco container plugin the chart adds to falcoctl's install list (charts/falco values.yaml, chart 6.0.2). */
export const CHART_CONTAINER_PLUGIN = 'ghcr.io/falcosecurity/plugins/plugin/container:0.3.1';

/**
 * falcoctl's artifact install is left off (the air-gapped flavor's value) whatever
 * the target: with Welkin's defaults the Falco chart adds the container plugin by
 * its full ghcr.io reference to falcoctl's install list (templates/_helpers.tpl,
 * falco.containerPlugin: whenever containerEngine or any of the docker, containerd,
 * crio collectors is on, and useContainerEngine: false turns the latter back on),
 * and Welkin does not pass collectors.containerEngine.pluginRef through
 * (falco-common.yaml.gotmpl), so falcoctl would pull it from ghcr.io and Falco
 * would not start. The README says what to patch to turn it on.
 */
function falcoctlStep(ctx: EmitContext, notes: Notes, h: Held, trust: RegistryTrust, regPort: number, fsPort: number): void {
  const indexUrl = `${ctx.fileserverUrl}/falco/index.yaml`;
  const plugin = h.falcoArtifacts.find((i) => i.role === 'falco-plugin' && parseReference(i.ref).repository.split('/').at(-1) === 'container');
  const pluginTag = plugin ? parseReference(plugin.ref).tag : undefined;
  const pluginRef = plugin ? `${ctx.registry.host}/${repositoryOf(ctx, plugin)}${pluginTag !== undefined ? `:${pluginTag}` : `@${plugin.digest}`}` : undefined;
  const why = [
    `Welkin's default falco.useContainerEngine: true makes the Falco chart (${WELKIN_SOURCE} vendors chart 6.0.2; templates/_helpers.tpl, falco.containerPlugin) add collectors.containerEngine.pluginRef, the full reference ${mdCode(CHART_CONTAINER_PLUGIN)}, to falcoctl's install list ` +
      '(with useContainerEngine: false the chart\'s default docker, containerd and crio collectors add it all the same). falcoctl pulls a full reference as it is, from ghcr.io, not through falco.customIndexes: its init container fails and Falco never starts. ' +
      'Welkin (helmfile.d/values/falco/falco-common.yaml.gotmpl) does not pass collectors.containerEngine.pluginRef through, so no config value can point it at the registry.',
    plugin ? '' : `The bundle does not hold the container plugin either (carry it with \`falco: {plugins: [${CHART_CONTAINER_PLUGIN}]}\` in the manifest).`,
    trust === 'public' ? '' : falcoctlWhy(trust),
  ].filter(Boolean);
  const ports = uniq([regPort, fsPort]).sort((a, b) => a - b);
  const tags = h.falcoArtifacts.map((i) => parseReference(i.ref)).filter((r) => r.repository.endsWith('/falco-rules') && r.tag !== undefined).map((r) => r.tag ?? '');
  const steps = [
    trust === 'public' ? '' : `${falcoctlFix(trust)};`,
    plugin
      ? `patch helmfile.d/values/falco/falco-common.yaml.gotmpl: inside \`{{- if .Values.falco.useContainerEngine }}\`, below \`containerEngine:\` and its \`enabled: true\`, add ${mdCode(`pluginRef: ${pluginRef ?? ''}`)} (the container plugin in the registry);`
      : 'carry the container plugin, then patch helmfile.d/values/falco/falco-common.yaml.gotmpl to set collectors.containerEngine.pluginRef to its reference in the registry;',
    `set falco.artifact.install.enabled: true and falco.customIndexes: [{name: airlock, url: ${mdCode(indexUrl)}}];`,
    tags.length ? `set falco.rulesFiles.default.version to a tag the registry holds (falco-rules ${tags.map(mdCode).join(', ')}; Welkin's default is 4.0.0);` : '',
    `allow falcoctl to reach the registry and the file server: networkPolicies.falco.plugins.ips (their IP/32) and ports ${JSON.stringify(ports)} (the list replaces Welkin's [443]).`,
  ].filter(Boolean);
  notes.omit({
    setting: `falco.artifact.install.enabled: true, falco.customIndexes: [{name: airlock, url: ${indexUrl}}]`,
    why: why.join(' '),
    todo: `Keep falco.artifact.install.enabled: false (the air-gapped flavor's value): Falco then starts with the rules and the container plugin packaged in its image. To install the bundled rules instead: ${steps.join(' ')}`,
  });
}

function falcoctlWhy(trust: RegistryTrust): string {
  return (
    `And the registry is ${TRUST_WORDS[trust]}. falcoctl 0.11.2, the version Welkin runs, pulls artifacts over HTTPS checked against its image's trust store: ` +
    'plain HTTP only with its --plain-http command-line flag, and no setting to skip verification or add a CA; Welkin passes it neither flags nor environment.'
  );
}

/** How falcoctl could be made to pull from this registry (the Falco chart's falcoctl.artifact.install.{args,env,mounts}, which Welkin does not expose). */
function falcoctlFix(trust: RegistryTrust): string {
  if (trust === 'plain-http') return 'patch helmfile.d/values/falco/falco-common.yaml.gotmpl to add --plain-http to the Falco chart\'s falcoctl.artifact.install.args, or serve the registry over HTTPS with a certificate from a public CA';
  if (trust === 'private-ca') return 'patch helmfile.d/values/falco/falco-common.yaml.gotmpl to mount the CA into the falcoctl-artifact-install init container (the Falco chart\'s falcoctl.artifact.install.mounts) and point SSL_CERT_FILE at it (falcoctl.artifact.install.env), or serve the registry with a certificate from a public CA';
  return 'serve the registry with a certificate falcoctl can verify (falcoctl cannot skip verification)';
}

function harborScannerWarning(ctx: EmitContext, trust: RegistryTrust): string {
  const fix = trust === 'private-ca' ? 'caBundleSecretName (a Secret holding the CA)' : 'trivy.insecure: true';
  return (
    `Harbor's scanner (trivy-adapter) will not get the databases from ${ctx.registry.host} (${TRUST_WORDS[trust]}): it speaks HTTPS and checks the certificate against its image's trust store, ` +
    'and Welkin passes neither the Harbor chart\'s trivy.insecure (SCANNER_TRIVY_INSECURE) nor caBundleSecretName (helmfile.d/values/harbor/harbor.yaml.gotmpl); ' +
    'airlock does not add SCANNER_TRIVY_INSECURE to extraEnvVars, because the chart already sets that variable and a second entry of one name is ambiguous to `helm upgrade`. ' +
    `Serve the registry with a certificate from a CA the adapter image trusts, or patch harbor.yaml.gotmpl to pass ${fix}.`
  );
}

/**
 * NetworkPolicies (networkPolicies.additional) letting trivy-operator and its
 * scan jobs reach the registry on a port Welkin's egress-rule-trivy does not allow.
 */
function trivyEgressPolicies(port: number): string {
  const policy = (name: string, matchLabels: Record<string, string>) => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name, namespace: 'monitoring' },
    spec: {
      podSelector: { matchLabels },
      policyTypes: ['Egress'],
      egress: [{ to: [{ ipBlock: { cidr: SET_ME } }], ports: [{ protocol: 'TCP', port }] }],
    },
  });
  return [
    policy('airlock-trivy-scanner-registry', { 'vulnerabilityReport.scanner': 'Trivy' }),
    policy('airlock-trivy-operator-registry', { 'app.kubernetes.io/instance': 'trivy-operator', 'app.kubernetes.io/name': 'trivy-operator' }),
  ]
    .map((p) => `---\n${stringify(p)}`)
    .join('');
}
