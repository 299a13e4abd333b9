// One countersignature pushed (SPEC §9 "Inside", `unpack --countersign KEY`): the inside's key
// signs the image at its target, and the signature goes to the image's `sha256-<hex>.sig` tag,
// PUT by that tag (Harbor links a `.sig` as a cosign accessory only then). A `.sig` already there
// (the publisher's, pushed by unpack) gains a layer, its own kept; one this key signed already
// is left alone, so a rerun pushes nothing. The registry gives no compare-and-swap on a tag
// (distribution ignores If-Match): a signature another client adds between the read and the PUT
// is lost, as with cosign itself.
import { createPublicKey, type KeyObject } from 'node:crypto';
import { alreadySigned, checkSignatureManifest, cosignPayload, signatureManifest, signPayload, type ExistingSignatures } from '../sign/countersign.js';
import { tagSchemeTag } from '../oci/attached.js';
import { sha256Digest } from '../oci/digest.js';
import { MAX_MANIFEST_BYTES, RegistryError, type RegistryClient } from '../registry/client.js';
import { manifestOrNone } from '../registry/referrers.js';

export interface Countersigned {
  /** `sha256-<hex>.sig` */
  readonly tag: string;
  /** The digest of the `.sig` manifest at the tag now. */
  readonly manifestDigest: string;
  /** `present`: the tag held a signature by this key over this payload already; nothing was written. */
  readonly status: 'pushed' | 'present';
}

/**
 * Signs `digest` in `repository` with `key` and pushes the signature to its `.sig` tag. The
 * payload names `dockerReference` (the image's repository at the target, HOST/PATH). Refuses,
 * writing nothing, when the tag holds something other than a cosign signature manifest.
 */
export async function countersign(client: RegistryClient, repository: string, digest: string, dockerReference: string, key: KeyObject): Promise<Countersigned> {
  const payload = cosignPayload(dockerReference, digest);
  const tag = tagSchemeTag(digest, 'sig');
  const what = `${client.host}/${repository}:${tag}`;
  const found = await manifestOrNone(client, repository, tag);
  let existing: ExistingSignatures | undefined;
  if (found) {
    const m = checkSignatureManifest(found.bytes, found.mediaType, what);
    if (alreadySigned(m.layers, payload, createPublicKey(key))) return { tag, manifestDigest: found.digest, status: 'present' };
    existing = { manifest: found.bytes, mediaType: found.mediaType, config: await smallBlob(client, repository, m.config.digest, m.config.size, `the config of ${what}`) };
  }
  const signature = await signPayload(key, payload);
  const next = signatureManifest(existing, { payload, signature });
  // Blobs before the manifest that lists them; a blob already there (the payload of an earlier run with another key) is not sent again.
  for (const blob of [payload, next.config]) {
    const d = sha256Digest(blob);
    if (!(await client.hasBlob(repository, d))) await client.uploadBlob(repository, d, blob.length, bufferRange(blob));
  }
  await client.putManifest(repository, tag, next.manifest, next.mediaType);
  return { tag, manifestDigest: sha256Digest(next.manifest), status: 'pushed' };
}

/** A blob small enough to hold in memory (an image config), checked against its digest. */
export async function smallBlob(client: RegistryClient, repository: string, digest: string, size: number, what: string): Promise<Buffer> {
  if (size > MAX_MANIFEST_BYTES) throw new RegistryError(`${what} is ${size} bytes, more than the ${MAX_MANIFEST_BYTES} a signature config may be; not adding a signature`);
  const res = await client.blob(repository, digest, 0, size);
  const bytes = Buffer.from(await res.body.arrayBuffer());
  const got = sha256Digest(bytes);
  if (got !== digest) throw new RegistryError(`${what}: ${client.host} sent bytes whose digest is ${got}, not ${digest}`);
  return bytes;
}

export function bufferRange(bytes: Buffer): (start: number, end: number) => AsyncIterable<Buffer> {
  return async function* (start, end) {
    yield bytes.subarray(start, end);
  };
}
