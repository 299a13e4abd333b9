// The policy travels with the bundle (SPEC §9): at build its file, keys and
// trusted root become blobs named in bundle.json `policy`; inside they are read
// back from the bundle (each verified against its digest by the reader) and
// loaded with the same checks as a policy on disk. `--policy` and
// `--trusted-root` given inside win over what was carried.
import path from 'node:path';
import type { BundleIndex, BundlePolicy } from '../../bundle/format.js';
import { displayPath } from '../../manifest/load.js';
import { sha256Digest } from '../../oci/digest.js';
import { parsePolicy, type PolicyFiles } from '../../policy/load.js';
import { PolicyError } from '../../policy/problems.js';
import type { Policy } from '../../policy/types.js';
import type { BlobSource } from './judge.js';

export class CarriedPolicyError extends Error {
  readonly exitCode = 1;
}

/** What build writes: the record for bundle.json and the bytes to put into the store as blobs. */
export function policyRecord(policy: Policy): { record: BundlePolicy; blobs: Array<{ digest: string; size: number; bytes: Buffer }> } {
  const blobs = new Map<string, { digest: string; size: number; bytes: Buffer }>();
  const add = (bytes: Buffer) => {
    const digest = sha256Digest(bytes);
    blobs.set(digest, { digest, size: bytes.length, bytes });
    return { digest, size: bytes.length };
  };
  const files: BundlePolicy['files'] = [];
  for (const k of policy.keys.values()) files.push({ path: k.source.written ?? path.basename(k.source.file), role: 'key', ...add(k.source.bytes) });
  if (policy.trustedRoot) files.push({ path: policy.trustedRoot.source.written ?? path.basename(policy.trustedRoot.source.file), role: 'trusted-root', ...add(policy.trustedRoot.source.bytes) });
  const record: BundlePolicy = { name: path.basename(policy.source.file), ...add(policy.source.bytes), files };
  return { record, blobs: [...blobs.values()] };
}

/** The files a carried policy names, from the bundle's blobs: a name the record lacks is a problem at the line naming it. */
function carriedFiles(record: BundlePolicy, blobs: BlobSource, bundle: string): PolicyFiles {
  return {
    async read(rel, bound) {
      const f = record.files.find((x) => x.path === rel);
      if (!f) throw new Error(`the bundle ${bundle} carries no ${rel} for its policy`);
      if (f.size > bound.max) throw new Error(`${rel} is ${f.size} bytes, more than ${bound.what} may be (${bound.max} bytes)`);
      return { file: `${bundle}:policy/${rel}`, bytes: await blobs.blob(f.digest) };
    },
  };
}

export interface InsideOptions {
  /** `--policy FILE` given inside, loaded (with `--trusted-root`) before anything was read: used instead of the carried one. */
  readonly policy?: Policy;
  /** `--trusted-root FILE` given inside: used instead of the policy's. */
  readonly trustedRoot?: string;
}

/**
 * The policy to check a bundle's signatures against inside: `--policy` when
 * given, else the carried one (with `--trusted-root` when given); undefined
 * when neither exists. Throws CarriedPolicyError (exit 1) for a carried one that does
 * not (build loaded it: such a bundle was not written by this airlock).
 */
export async function insidePolicy(index: Pick<BundleIndex, 'policy'>, blobs: BlobSource, bundle: string, options: InsideOptions): Promise<{ policy: Policy; from: 'given' | 'carried' } | undefined> {
  const trusted = options.trustedRoot !== undefined ? { trustedRoot: options.trustedRoot } : {};
  if (options.policy !== undefined) return { policy: options.policy, from: 'given' };
  const record = index.policy;
  if (!record) return undefined;
  const bytes = await blobs.blob(record.digest);
  const display = `${displayPath(bundle)}:policy/${record.name}`;
  try {
    return { policy: await parsePolicy({ file: display, display, bytes }, carriedFiles(record, blobs, displayPath(bundle)), trusted), from: 'carried' };
  } catch (err) {
    // A failed check of the bundle (exit 1), not a file the person wrote.
    if (err instanceof PolicyError) throw new CarriedPolicyError(`the signature policy carried in ${displayPath(bundle)} does not load; give --policy to check against your own:\n${err.message}`);
    throw err;
  }
}
