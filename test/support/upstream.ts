// A small "internet" on this machine: a real registry seeded (independently of
// airlock's client) with every kind of thing a bundle carries, and nginx
// serving an OpenSearch plugin with its .sha512, a Falco driver and a plain
// file. Used by the build, unpack and serve tests and by the demo.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { startFileServer, type TestFileServer } from './fileserver.js';
import { startRegistry, type RegistryOptions, type TestRegistry } from './registry.js';
import { makeLayer, MediaTypes, pseudoRandomBytes, Seeder, sha256, type PushedImage, type PushedManifest } from './seed.js';

export const TRIVY_DB_LAYER = 'application/vnd.aquasec.trivy.db.layer.v1.tar+gzip';
export const TRIVY_CONFIG = 'application/vnd.aquasec.trivy.config.v1+json';
export const FALCO_RULES_CONFIG = 'application/vnd.cncf.falco.rulesfile.config.v1+json';
export const FALCO_RULES_LAYER = 'application/vnd.cncf.falco.rulesfile.layer.v1+tar.gz';

export interface SeededRef {
  /** Repository path and tag or digest as a manifest names it after the host. */
  readonly path: string;
  readonly pushed: PushedManifest;
  /** Children (for an index or manifest list). */
  readonly children?: PushedImage[];
}

export interface SeededFile {
  readonly urlPath: string;
  readonly landing: string;
  readonly bytes: Buffer;
  readonly sha256: string;
}

export interface Upstream {
  readonly registry: TestRegistry;
  readonly files: TestFileServer;
  readonly seeder: Seeder;
  readonly refs: {
    ociIndex: SeededRef;
    docker: SeededRef;
    dockerList: SeededRef;
    pause: SeededRef;
    trivyDb: SeededRef;
    falcoRules: SeededRef;
    digestOnly: SeededRef;
  };
  /** A Falco plugin as falcoctl pushes it: an index of per-platform artifacts. Not in manifest(). */
  readonly falcoPlugin: SeededRef;
  /** The layer the OCI index children and the Docker image share. */
  readonly sharedLayer: string;
  readonly opensearch: SeededFile;
  readonly driver: SeededFile;
  readonly tool: SeededFile;
  /** An airlock manifest naming everything above, through `registryHost` (default the registry itself). */
  manifest(opts?: { registryHost?: string; filesUrl?: string; extra?: string; specExtra?: string }): string;
  stop(): Promise<void>;
}

export interface UpstreamOptions {
  registry?: RegistryOptions;
  /** How the seeder logs in, when the registry demands it (token auth: bearer with these credentials). */
  seederAuth?: { username: string; password: string; bearer?: boolean; /** CA for an HTTPS token realm. */ caFile?: string };
  /** Size of the layer shared by several images. */
  sharedLayerBytes?: number;
  /** Size of each image's own layer. */
  layerBytes?: number;
}

export async function startUpstream(opts: UpstreamOptions = {}): Promise<Upstream> {
  const registry = await startRegistry(opts.registry ?? {});
  const files = await startFileServer();
  const seeder = new Seeder({
    url: registry.url,
    ...(registry.caFile && { caFile: registry.caFile }),
    ...(registry.username && { username: registry.username, password: registry.password ?? '' }),
    ...opts.seederAuth,
  });
  try {
    const shared = await makeLayer('shared-base', opts.sharedLayerBytes ?? 300_000);
    const own = (seed: string) => makeLayer(seed, opts.layerBytes ?? 80_000);

    // OCI index, amd64 + arm64, sharing the base layer.
    const amd64 = await seeder.pushImage('team/app', undefined, { layers: [shared, await own('app-amd64')], format: 'oci', platform: { os: 'linux', architecture: 'amd64' } });
    const arm64 = await seeder.pushImage('team/app', undefined, { layers: [shared, await own('app-arm64')], format: 'oci', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const index = await seeder.pushIndex('team/app', '1.0', [amd64.descriptor, arm64.descriptor], 'oci');

    // Docker schema2 image sharing the same layer bytes.
    const docker = await seeder.pushImage('team/docker-app', '2.0', { layers: [shared, await own('docker-app')], format: 'docker' });

    // Docker manifest list.
    const dAmd = await seeder.pushImage('team/docker-multi', undefined, { layers: [await own('dm-amd64')], format: 'docker', platform: { os: 'linux', architecture: 'amd64' } });
    const dArm = await seeder.pushImage('team/docker-multi', undefined, { layers: [await own('dm-arm64')], format: 'docker', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    const dList = await seeder.pushIndex('team/docker-multi', '3.0', [dAmd.descriptor, dArm.descriptor], 'docker');

    // A single-component repository, like registry.k8s.io/pause.
    const pause = await seeder.pushImage('pause', '3.9', { layers: [await own('pause')], format: 'docker' });

    // Trivy DB as oras 1.2 pushes it: artifactType, empty config, one titled layer.
    const trivy = await seeder.pushArtifact('aquasecurity/trivy-db', '2', {
      artifactType: TRIVY_CONFIG,
      configMediaType: MediaTypes.ociEmpty,
      layerMediaType: TRIVY_DB_LAYER,
      layerBytes: await own('trivy-db'),
      title: 'db.tar.gz',
      annotations: { 'org.opencontainers.image.created': '2026-11-26T00:00:00Z' },
    });

    // Falco rules as falcoctl pushes them.
    const falco = await seeder.pushArtifact('falcosecurity/rules/falco-rules', '4.0.0', {
      configMediaType: FALCO_RULES_CONFIG,
      configBytes: Buffer.from('{"name":"falco-rules","version":"4.0.0","dependencies":[],"requirements":[{"name":"engine_version_semver","version":"0.31.0"}]}'),
      layerMediaType: FALCO_RULES_LAYER,
      layerBytes: await own('falco-rules'),
      title: 'falco_rules.yaml.tar.gz',
    });

    // An image only ever referenced by digest.
    const pinned = await seeder.pushImage('team/pinned', undefined, { layers: [await own('pinned')], format: 'oci' });

    const pluginChildren = [];
    for (const architecture of ['amd64', 'arm64']) {
      const a = await seeder.pushArtifact('falcosecurity/plugins/plugin/k8saudit', undefined, {
        configMediaType: 'application/vnd.cncf.falco.plugin.config.v1+json',
        configBytes: Buffer.from(`{"name":"k8saudit","version":"0.7.0","arch":"${architecture}"}`),
        layerMediaType: 'application/vnd.cncf.falco.plugin.layer.v1+tar.gz',
        layerBytes: await own(`k8saudit-${architecture}`),
        title: 'k8saudit-0.7.0-linux-x86_64.tar.gz',
      });
      pluginChildren.push({ ...a.descriptor, platform: { os: 'linux', architecture } });
    }
    const plugin = await seeder.pushIndex('falcosecurity/plugins/plugin/k8saudit', '0.7.0', pluginChildren, 'oci');

    const opensearch = await serveFile(files, 'releases/plugins/repository-s3/2.19.4/repository-s3-2.19.4.zip', 'opensearch/repository-s3-2.19.4.zip', pseudoRandomBytes('os-plugin', 150_000));
    await writeFile(path.join(files.root, `${opensearch.urlPath}.sha512`), `${createHash('sha512').update(opensearch.bytes).digest('hex')}  repository-s3-2.19.4.zip\n`);
    // nginx decodes %2B in the request to the literal + on disk, as download.falco.org's storage does.
    const driver = await serveFile(
      files,
      'driver/8.1.0+driver/x86_64/falco_debian_6.1.0-13-amd64_1.ko',
      'falco/driver/8.1.0+driver/x86_64/falco_debian_6.1.0-13-amd64_1.ko',
      pseudoRandomBytes('driver', 90_000),
    );
    const tool = await serveFile(files, 'tools/tool-1.0.bin', 'tools/tool.bin', pseudoRandomBytes('tool', 40_000));

    const refs: Upstream['refs'] = {
      ociIndex: { path: 'team/app:1.0', pushed: index, children: [amd64, arm64] },
      docker: { path: 'team/docker-app:2.0', pushed: docker },
      dockerList: { path: 'team/docker-multi:3.0', pushed: dList, children: [dAmd, dArm] },
      pause: { path: 'pause:3.9', pushed: pause },
      trivyDb: { path: 'aquasecurity/trivy-db:2', pushed: trivy },
      falcoRules: { path: 'falcosecurity/rules/falco-rules:4.0.0', pushed: falco },
      digestOnly: { path: `team/pinned@${pinned.digest}`, pushed: pinned },
    };
    return {
      registry,
      files,
      seeder,
      refs,
      falcoPlugin: { path: 'falcosecurity/plugins/plugin/k8saudit:0.7.0', pushed: plugin },
      sharedLayer: sha256(shared),
      opensearch,
      driver,
      tool,
      manifest({ registryHost = registry.host, filesUrl = files.url, extra = '', specExtra = '' } = {}) {
        const h = registryHost;
        return `apiVersion: airlock/v1
kind: Bundle
metadata:
  name: test-bundle
  version: "1.0"
spec:
${specExtra}  images:
    - ${h}/${refs.ociIndex.path}
    - ${h}/${refs.docker.path}
    - ${h}/${refs.dockerList.path}
    - ${h}/${refs.pause.path}
    - ${h}/${refs.digestOnly.path}
  trivy:
    db: ${h}/${refs.trivyDb.path}
    javaDb: false
  falco:
    rules: [${h}/${refs.falcoRules.path}]
    drivers:
      repoUrl: ${filesUrl}/driver
      version: 8.1.0+driver
      kernels:
        - { target: debian, kernelRelease: 6.1.0-13-amd64, kernelVersion: "1" }
  opensearch:
    version: "2.19.4"
    plugins: [repository-s3]
    baseUrl: ${filesUrl}/releases/plugins
  files:
    - url: ${filesUrl}/${tool.urlPath}
      path: ${tool.landing}
      sha256: ${tool.sha256}
${extra}`;
      },
      async stop() {
        await seeder.close();
        await Promise.all([registry.stop(), files.stop()]);
      },
    };
  } catch (err) {
    await seeder.close().catch(() => undefined);
    await Promise.all([registry.stop(), files.stop()]);
    throw err;
  }
}

async function serveFile(files: TestFileServer, urlPath: string, landing: string, bytes: Buffer): Promise<SeededFile> {
  const onDisk = path.join(files.root, urlPath);
  await mkdir(path.dirname(onDisk), { recursive: true });
  await writeFile(onDisk, bytes);
  return { urlPath: urlPath.replace("+", "%2B"), landing, bytes, sha256: sha256(bytes).slice("sha256:".length) };
}
