// Inside (SPEC §9 "Inside"): the carried signatures checked again, offline,
// from the bundle's own verified entries (or, in sync, the content store)
// against a policy — the carried one, or one given inside. verify
// --signatures, unpack and sync call this before they report or push.
import { BLOBS_PREFIX, type BundleIndex, type SignatureVerdict } from '../../bundle/format.js';
import { readGraph, type EntryReader, type ImageGraph } from '../../bundle/graph.js';
import type { Policy } from '../../policy/types.js';
import { insidePolicy, type InsideOptions } from './carried.js';
import { blockedText, blocks, Judge, warns, warnText, type BlobSource } from './judge.js';

export type SignatureSource = { index: BundleIndex } & EntryReader;

/** Blobs read through the bundle reader, which hashes each against bundle.json as it reads it. */
export function entryBlobs(source: SignatureSource): BlobSource {
  const external = new Set(source.index.blobs.filter((b) => b.external).map((b) => b.digest));
  return {
    blob: (digest) => {
      // A delta built without a policy leaves what its base holds out of the tar, signatures included.
      if (external.has(digest)) return Promise.reject(new Error(`${digest} is held by a base of this delta, not in the tar; check the signatures with the base bundle, or build the delta with --policy (it then carries what the check reads)`));
      return source.readEntry(BLOBS_PREFIX + digest.slice(7));
    },
  };
}

export interface SignatureCheck {
  readonly policy: Policy;
  /** Where the policy came from: given inside (`--policy`) or carried in the bundle. */
  readonly from: 'given' | 'carried';
  readonly verdicts: SignatureVerdict[];
  /** Images under an enforce rule with no signature that counts. */
  readonly blocked: SignatureVerdict[];
  /** One line per image under a warn rule with no signature that counts. */
  readonly warnings: string[];
}

export class SignaturePolicyError extends Error {
  readonly exitCode = 1;
  constructor(
    message: string,
    readonly check: SignatureCheck,
  ) {
    super(message);
    this.name = 'SignaturePolicyError';
  }
}

/**
 * The policy to use inside (given, else carried), or undefined when there is
 * none; with `required` (verify --signatures), none is a usage error the
 * caller reports.
 */
export async function policyInside(source: SignatureSource, bundle: string, options: InsideOptions): Promise<{ policy: Policy; from: 'given' | 'carried' } | undefined> {
  return insidePolicy(source.index, entryBlobs(source), bundle, options);
}

/** Every image judged against `policy`; `graphs` (by ref) when the caller read them already. */
export async function checkSignatures(source: SignatureSource, chosen: { policy: Policy; from: 'given' | 'carried' }, graphs?: ReadonlyMap<string, ImageGraph>): Promise<SignatureCheck> {
  const judge = new Judge(chosen.policy);
  const blobs = entryBlobs(source);
  const attached = source.index.attached ?? [];
  const verdicts: SignatureVerdict[] = [];
  for (const image of source.index.images) {
    const g = graphs?.get(image.ref) ?? (await readGraph(source, image));
    const children = g.manifests.map((m) => m.digest).filter((d) => d !== image.digest);
    verdicts.push(await judge.judge({ ref: image.ref, digest: image.digest, children, ...(image.upstreamDigest && { upstreamDigest: image.upstreamDigest }) }, attached, blobs));
  }
  return { ...chosen, verdicts, blocked: verdicts.filter(blocks), warnings: verdicts.filter(warns).map((v) => warnText(chosen.policy, v)) };
}

/** Throws SignaturePolicyError when an image under an enforce rule has no signature that counts. */
export function enforce(check: SignatureCheck, what: string): void {
  if (check.blocked.length === 0) return;
  throw new SignaturePolicyError(`${blockedText(check.policy, check.blocked)}\n${what}`, check);
}
