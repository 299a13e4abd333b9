/**
 * Publisher signatures made the way publishers make them, with openssl (not
 * with airlock's code), pushed through the raw distribution API (the Seeder):
 * a cosign tag-scheme `sha256-<hex>.sig` manifest whose layers are
 * simplesigning payloads with their signature annotations (cosign's
 * `pkg/oci/static/signature.go` shape: OCI manifest, config listing the layers'
 * diff_ids, one layer per signature).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { jsonBytes, MediaTypes, sha256, type Seeder } from './seed.js';

export const SIMPLESIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';

/** cosign's simplesigning payload, compact JSON, for `repo` (HOST/PATH) and `digest`. */
export function simplesigningPayload(repo: string, digest: string): Buffer {
  return Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': repo }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null }));
}

export interface OpensslKey {
  key: string;
  pub: string;
  /** sha256:<hex> of the SPKI DER, as openssl computes it. */
  fingerprint: string;
}

/** An ECDSA P-256 key pair made by openssl under `dir`. */
export function opensslKey(dir: string, name: string): OpensslKey {
  const key = path.join(dir, `${name}.key`);
  const pub = path.join(dir, `${name}.pub`);
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { stdio: 'pipe' });
  execFileSync('openssl', ['pkey', '-in', key, '-pubout', '-out', pub], { stdio: 'pipe' });
  const der = execFileSync('openssl', ['pkey', '-pubin', '-in', pub, '-outform', 'DER'], { stdio: ['pipe', 'pipe', 'pipe'] });
  return { key, pub, fingerprint: `sha256:${createHash('sha256').update(der).digest('hex')}` };
}

/** The cosign signature annotation for `payload`: base64 of openssl's DER ECDSA signature over its SHA-256. */
export function opensslSignature(dir: string, key: OpensslKey, payload: Buffer): Record<string, string> {
  const file = path.join(dir, `payload-${sha256(payload).slice(7, 19)}`);
  writeFileSync(file, payload);
  const sig = execFileSync('openssl', ['dgst', '-sha256', '-sign', key.key, file], { stdio: ['pipe', 'pipe', 'pipe'] });
  return { 'dev.cosignproject.cosign/signature': sig.toString('base64') };
}

/** Pushes `sha256-<hex>.sig` for `subject` with one layer per signature. Returns the manifest digest. */
export async function pushTagSignature(seeder: Seeder, repo: string, subject: string, layers: Array<{ payload: Buffer; annotations: Record<string, string> }>): Promise<string> {
  const descriptors = [];
  for (const l of layers) descriptors.push({ ...(await seeder.pushBlob(repo, l.payload, SIMPLESIGNING)), annotations: l.annotations });
  const config = jsonBytes({ architecture: '', created: '0001-01-01T00:00:00Z', history: layers.map(() => ({ created: '0001-01-01T00:00:00Z' })), os: '', rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l.payload)) }, config: {} });
  const configDescriptor = await seeder.pushBlob(repo, config, MediaTypes.ociConfig);
  const manifest = jsonBytes({ schemaVersion: 2, mediaType: MediaTypes.ociManifest, config: configDescriptor, layers: descriptors });
  const d = await seeder.pushManifest(repo, `${subject.replace(':', '-')}.sig`, manifest, MediaTypes.ociManifest);
  return d.digest;
}

