/**
 * Seeds a registry through the raw distribution HTTP API (undici only), with
 * no code from src/: blobs, manifests, images, indexes and OCI artifacts.
 *
 * Every builder returns the exact bytes it pushed; manifests are never
 * re-serialised after their digest is taken.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import tar from 'tar-stream';
import { Agent, request, type Dispatcher } from 'undici';

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  artifactType?: string;
}

export interface PushedManifest {
  /** The exact manifest bytes pushed. */
  manifest: Buffer;
  digest: string;
  mediaType: string;
  /** Descriptor of the manifest (with platform when one was given). */
  descriptor: Descriptor;
}

export interface PushedImage extends PushedManifest {
  /** The exact config blob bytes pushed. */
  config: Buffer;
  configDescriptor: Descriptor;
  layerDescriptors: Descriptor[];
}

export interface PushedArtifact extends PushedManifest {
  config: Buffer;
  configDescriptor: Descriptor;
  layerDescriptor: Descriptor;
}

export const MediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociConfig: 'application/vnd.oci.image.config.v1+json',
  ociLayerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
  ociEmpty: 'application/vnd.oci.empty.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerConfig: 'application/vnd.docker.container.image.v1+json',
  dockerLayerGzip: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
} as const;

/** Accept header covering every manifest type. */
export const ACCEPT_ALL_MANIFESTS = [
  MediaTypes.ociIndex,
  MediaTypes.ociManifest,
  MediaTypes.dockerManifestList,
  MediaTypes.dockerManifest,
].join(', ');

export function sha256(buf: Buffer | Uint8Array | string): string {
  return `sha256:${createHash('sha256').update(buf).digest('hex')}`;
}

/** size bytes of pseudo-random data derived from seed (SHA-256 in counter mode). */
export function pseudoRandomBytes(seed: string, size: number): Buffer {
  const out = Buffer.alloc(size);
  let off = 0;
  for (let counter = 0; off < size; counter++) {
    const block = createHash('sha256').update(`${seed}\0${counter}`).digest();
    off += block.copy(out, off);
  }
  return out;
}

export interface TarEntry {
  name: string;
  data: Buffer | string;
  mode?: number;
}

/** A deterministic uncompressed tar of the given files (mtime 0, uid/gid 0). */
export async function makeTar(entries: readonly TarEntry[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = (async () => {
    for await (const chunk of pack) chunks.push(Buffer.from(chunk as Uint8Array));
  })();
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : e.data;
    await new Promise<void>((resolve, reject) => {
      pack.entry(
        { name: e.name, size: data.length, mode: e.mode ?? 0o644, mtime: new Date(0), uid: 0, gid: 0, uname: '', gname: '', type: 'file' },
        data,
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  pack.finalize();
  await done;
  return Buffer.concat(chunks);
}

/** gzip with fixed settings: the same input always gives the same bytes. */
export function gzipDeterministic(buf: Buffer): Buffer {
  return gzipSync(buf, { level: 6 });
}

/**
 * A real, deterministic tar.gz layer holding one file of sizeBytes
 * pseudo-random bytes derived from seedText (so it does not compress away).
 */
export async function makeLayer(seedText: string, sizeBytes: number): Promise<Buffer> {
  const safe = seedText.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 60) || 'layer';
  const tarBytes = await makeTar([
    { name: `seed/${safe}.txt`, data: `${seedText}\n` },
    { name: `seed/${safe}.bin`, data: pseudoRandomBytes(seedText, sizeBytes) },
  ]);
  return gzipDeterministic(tarBytes);
}

/** The bytes of a JSON document as the seeder pushes it (2-space indent, no trailing newline). */
export function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value, null, 2));
}

export interface SeederRegistry {
  url: string;
  caFile?: string;
  username?: string;
  password?: string;
  /**
   * Answer Bearer challenges (distribution `auth: token`): fetch a token from
   * the challenge's realm (with Basic credentials when given, else
   * anonymously) and retry. Default false: a 401 is returned as is.
   */
  bearer?: boolean;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

/** Parses `Bearer realm="…",service="…",scope="…"`; undefined for other schemes. */
export function parseBearerChallenge(header: string | undefined): Record<string, string> | undefined {
  if (header === undefined || !/^bearer\s/i.test(header)) return undefined;
  const params: Record<string, string> = {};
  for (const m of header.slice(6).matchAll(/([A-Za-z_]+)\s*=\s*(?:"([^"]*)"|([^,\s]*))/g)) {
    const key = m[1];
    if (key !== undefined) params[key.toLowerCase()] = m[2] ?? m[3] ?? '';
  }
  return params['realm'] === undefined ? undefined : params;
}

/** Repository name of a /v2/<name>/(manifests|blobs|tags)/… path, '' otherwise. */
function repoOfPath(pathname: string): string {
  const m = /^\/v2\/(.+?)\/(?:manifests|blobs|tags)\//.exec(pathname);
  return m?.[1] ?? '';
}

export class Seeder {
  readonly url: string;
  private readonly dispatcher: Dispatcher;
  private readonly auth: string | undefined;
  /**
   * Set once the registry answered with a Bearer challenge: from then on the
   * Seeder sends tokens (fetched from the challenge's realm with its Basic
   * credentials, or anonymously) instead of Basic auth.
   */
  private bearer = false;
  private readonly followBearer: boolean;
  /** Bearer token per repository name ('' for /v2/ itself). */
  private readonly tokens = new Map<string, string>();

  constructor(registry: SeederRegistry) {
    this.url = registry.url.replace(/\/+$/, '');
    this.followBearer = registry.bearer === true;
    const ca = registry.caFile === undefined ? undefined : readFileSync(registry.caFile);
    this.dispatcher = new Agent({ connect: ca === undefined ? {} : { ca } });
    this.auth =
      registry.username === undefined
        ? undefined
        : `Basic ${Buffer.from(`${registry.username}:${registry.password ?? ''}`).toString('base64')}`;
  }

  /**
   * One HTTP request against the registry (path relative to its URL, or an
   * absolute URL). Basic auth is sent when credentials were given; with
   * `bearer: true` a Bearer challenge is answered with a token from its realm
   * and the request retried once. `auth: false` sends no credentials and does
   * not follow challenges.
   */
  async fetch(
    method: Dispatcher.HttpMethod,
    pathOrUrl: string | URL,
    init: { headers?: Record<string, string>; body?: Buffer; auth?: boolean } = {},
  ): Promise<RawResponse> {
    const target = new URL(pathOrUrl, `${this.url}/`);
    const repo = repoOfPath(target.pathname);
    const once = async (): Promise<RawResponse> => {
      const headers: Record<string, string> = { ...init.headers };
      if (init.auth !== false) {
        const token = this.tokens.get(repo);
        if (this.bearer && token !== undefined) headers['authorization'] = `Bearer ${token}`;
        else if (!this.bearer && this.auth !== undefined) headers['authorization'] = this.auth;
      }
      if (init.body !== undefined) headers['content-length'] = String(init.body.length);
      return this.raw(method, target, headers, init.body);
    };
    const first = await once();
    if (first.status !== 401 || init.auth === false || !this.followBearer) return first;
    const challenge = parseBearerChallenge(first.headers['www-authenticate']);
    if (challenge === undefined) return first;
    this.bearer = true;
    this.tokens.set(repo, await this.fetchToken(challenge));
    return once();
  }

  /**
   * GETs a token from a Bearer challenge's realm for its service and scope
   * (Basic auth with this Seeder's credentials, if any); throws unless 200.
   */
  async fetchToken(challenge: Record<string, string>): Promise<string> {
    const realm = challenge['realm'];
    if (realm === undefined) throw new Error('Bearer challenge without realm');
    const url = new URL(realm);
    if (challenge['service'] !== undefined) url.searchParams.set('service', challenge['service']);
    for (const s of (challenge['scope'] ?? '').split(' ')) if (s !== '') url.searchParams.append('scope', s);
    const headers: Record<string, string> = {};
    if (this.auth !== undefined) headers['authorization'] = this.auth;
    const r = await this.raw('GET', url, headers);
    if (r.status !== 200) throw new Error(`token server ${url.origin}${url.pathname}: HTTP ${r.status} ${r.body.toString('utf8')}`);
    const json = JSON.parse(r.body.toString('utf8')) as { token?: string; access_token?: string };
    const token = json.token ?? json.access_token;
    if (token === undefined || token === '') throw new Error(`token server ${url.origin}${url.pathname}: no token in answer`);
    return token;
  }

  private async raw(
    method: Dispatcher.HttpMethod,
    target: URL,
    headers: Record<string, string>,
    body?: Buffer,
  ): Promise<RawResponse> {
    const res = await request(target, {
      method,
      headers,
      body,
      dispatcher: this.dispatcher,
    });
    const data = method === 'HEAD' ? (await res.body.dump(), Buffer.alloc(0)) : Buffer.from(await res.body.arrayBuffer());
    const flat: Record<string, string> = {};
    for (const [k, v] of Object.entries(res.headers)) {
      if (v !== undefined) flat[k.toLowerCase()] = Array.isArray(v) ? v.join(', ') : v;
    }
    return { status: res.statusCode, headers: flat, body: data };
  }

  async blobExists(repo: string, digest: string): Promise<boolean> {
    const r = await this.fetch('HEAD', `v2/${repo}/blobs/${digest}`);
    if (r.status === 200) return true;
    if (r.status === 404) return false;
    throw new Error(`HEAD blob ${repo}@${digest}: HTTP ${r.status}`);
  }

  /** Monolithic upload (POST then PUT ?digest=), skipped when the blob is already there. */
  async pushBlob(repo: string, bytes: Buffer, mediaType = 'application/octet-stream'): Promise<Descriptor> {
    const digest = sha256(bytes);
    const desc: Descriptor = { mediaType, digest, size: bytes.length };
    if (await this.blobExists(repo, digest)) return desc;
    const start = await this.fetch('POST', `v2/${repo}/blobs/uploads/`, { body: Buffer.alloc(0) });
    if (start.status !== 202) {
      throw new Error(`POST upload ${repo}: HTTP ${start.status} ${start.body.toString('utf8')}`);
    }
    const location = start.headers['location'];
    if (location === undefined) throw new Error(`POST upload ${repo}: no Location header`);
    const put = new URL(location, `${this.url}/`);
    put.searchParams.set('digest', digest);
    const done = await this.fetch('PUT', put, {
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    if (done.status !== 201) {
      throw new Error(`PUT upload ${repo}@${digest}: HTTP ${done.status} ${done.body.toString('utf8')}`);
    }
    const got = done.headers['docker-content-digest'];
    if (got !== undefined && got !== digest) throw new Error(`registry stored blob ${got}, expected ${digest}`);
    return desc;
  }

  /** PUT a manifest by tag or digest; the registry must report the digest of exactly these bytes. */
  async pushManifest(repo: string, reference: string, bytes: Buffer, mediaType: string): Promise<Descriptor> {
    const digest = sha256(bytes);
    const r = await this.fetch('PUT', `v2/${repo}/manifests/${reference}`, {
      headers: { 'content-type': mediaType },
      body: bytes,
    });
    if (r.status !== 201) {
      throw new Error(`PUT manifest ${repo}:${reference}: HTTP ${r.status} ${r.body.toString('utf8')}`);
    }
    const got = r.headers['docker-content-digest'];
    if (got !== digest) {
      throw new Error(`PUT manifest ${repo}:${reference}: registry says ${got ?? '(no digest)'}, bytes are ${digest}`);
    }
    return { mediaType, digest, size: bytes.length };
  }

  /** GET a manifest with an Accept header covering all types (or the one given). */
  async getManifest(repo: string, reference: string, accept = ACCEPT_ALL_MANIFESTS): Promise<RawResponse> {
    return this.fetch('GET', `v2/${repo}/manifests/${reference}`, { headers: { accept } });
  }

  /**
   * Pushes config + layers + manifest of a single-platform image. With tag
   * undefined the manifest is pushed by digest only (e.g. an index child).
   */
  async pushImage(
    repo: string,
    tag: string | undefined,
    opts: { layers: Buffer[]; format: 'oci' | 'docker'; platform?: Platform; annotations?: Record<string, string> },
  ): Promise<PushedImage> {
    const oci = opts.format === 'oci';
    const platform: Platform = opts.platform ?? { os: 'linux', architecture: 'amd64' };
    const layerType = oci ? MediaTypes.ociLayerGzip : MediaTypes.dockerLayerGzip;
    const layerDescriptors: Descriptor[] = [];
    const diffIds: string[] = [];
    for (const layer of opts.layers) {
      diffIds.push(sha256(gunzipSync(layer)));
      layerDescriptors.push(await this.pushBlob(repo, layer, layerType));
    }
    const config = jsonBytes({
      created: '2024-01-01T00:00:00Z',
      architecture: platform.architecture,
      os: platform.os,
      ...(platform.variant === undefined ? {} : { variant: platform.variant }),
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({ created: '2024-01-01T00:00:00Z', created_by: 'airlock test seeder' })),
    });
    const configDescriptor = await this.pushBlob(repo, config, oci ? MediaTypes.ociConfig : MediaTypes.dockerConfig);
    const mediaType = oci ? MediaTypes.ociManifest : MediaTypes.dockerManifest;
    const manifest = jsonBytes({
      schemaVersion: 2,
      mediaType,
      config: configDescriptor,
      layers: layerDescriptors,
      ...(oci && opts.annotations !== undefined ? { annotations: opts.annotations } : {}),
    });
    const d = await this.pushManifest(repo, tag ?? sha256(manifest), manifest, mediaType);
    return {
      manifest,
      digest: d.digest,
      mediaType,
      descriptor: { ...d, platform },
      config,
      configDescriptor,
      layerDescriptors,
    };
  }

  /** Pushes an OCI image index or a Docker manifest list over already-pushed children. */
  async pushIndex(
    repo: string,
    tag: string | undefined,
    children: readonly Descriptor[],
    format: 'oci' | 'docker',
    annotations?: Record<string, string>,
  ): Promise<PushedManifest> {
    const oci = format === 'oci';
    const mediaType = oci ? MediaTypes.ociIndex : MediaTypes.dockerManifestList;
    const manifests = children.map((c) => {
      const out: Descriptor = { mediaType: c.mediaType, digest: c.digest, size: c.size };
      if (c.platform !== undefined) out.platform = c.platform;
      if (oci && c.annotations !== undefined) out.annotations = c.annotations;
      if (oci && c.artifactType !== undefined) out.artifactType = c.artifactType;
      return out;
    });
    const manifest = jsonBytes({
      schemaVersion: 2,
      mediaType,
      manifests,
      ...(oci && annotations !== undefined ? { annotations } : {}),
    });
    const d = await this.pushManifest(repo, tag ?? sha256(manifest), manifest, mediaType);
    return { manifest, digest: d.digest, mediaType, descriptor: d };
  }

  /**
   * Pushes an OCI artifact: a manifest with a config blob (default the empty
   * JSON `{}`) and one layer annotated with org.opencontainers.image.title.
   */
  async pushArtifact(
    repo: string,
    tag: string | undefined,
    opts: {
      artifactType?: string;
      configMediaType: string;
      configBytes?: Buffer;
      layerMediaType: string;
      layerBytes: Buffer;
      title: string;
      annotations?: Record<string, string>;
    },
  ): Promise<PushedArtifact> {
    const config = opts.configBytes ?? Buffer.from('{}');
    const configDescriptor = await this.pushBlob(repo, config, opts.configMediaType);
    const layer = await this.pushBlob(repo, opts.layerBytes, opts.layerMediaType);
    const layerDescriptor: Descriptor = { ...layer, annotations: { 'org.opencontainers.image.title': opts.title } };
    const mediaType = MediaTypes.ociManifest;
    const manifest = jsonBytes({
      schemaVersion: 2,
      mediaType,
      ...(opts.artifactType === undefined ? {} : { artifactType: opts.artifactType }),
      config: configDescriptor,
      layers: [layerDescriptor],
      ...(opts.annotations === undefined ? {} : { annotations: opts.annotations }),
    });
    const d = await this.pushManifest(repo, tag ?? sha256(manifest), manifest, mediaType);
    const descriptor: Descriptor = { ...d, ...(opts.artifactType === undefined ? {} : { artifactType: opts.artifactType }) };
    return { manifest, digest: d.digest, mediaType, descriptor, config, configDescriptor, layerDescriptor };
  }

  async close(): Promise<void> {
    await this.dispatcher.close();
  }
}
