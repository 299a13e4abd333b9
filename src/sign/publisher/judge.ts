// From a policy and what is attached to an image to its verdict (SPEC §9):
// which rule applies, which attached manifests are signatures, each one
// verified (verify.ts), and whether the image may go on. The same judge runs
// at build (over the content store), inside (over the bundle) and in sync: the
// bytes come through a BlobSource, the verdict is the same wherever it is made.
import type { BundleAttached, SignatureVerdict } from '../../bundle/format.js';
import { COSIGN_SIMPLESIGNING, SIGSTORE_BUNDLE_PREFIX } from '../../oci/attached.js';
import { ruleFor } from '../../policy/match.js';
import type { Policy, PolicyRule } from '../../policy/types.js';
import { parseUntrustedJson } from '../../util/json.js';
import { printable } from '../../util/printable.js';
import { loadTrustedRoot, signerText, verifyAttachedSignature, type AttachedSignature, type Identity, type Trust, type Verdict } from './verify.js';

/** Small blobs by digest, verified against it by whoever reads them (the store, the bundle reader). */
export interface BlobSource {
  blob(digest: string): Promise<Buffer>;
}

export interface JudgedImage {
  /** Its top digest and the child manifests it carries (an index's), as the bundle holds them. */
  readonly ref: string;
  readonly digest: string;
  readonly children: readonly string[];
  /** Set when a platform filter rewrote the index: what hangs off the upstream one was not carried. */
  readonly upstreamDigest?: string;
}

/** Signatures tried per image at most: a bound on the work a hostile upstream (or bundle) can ask for. */
const MAX_TRIED = 32;
const MAX_REASONS = 16;

export class PolicyTrustError extends Error {
  readonly exitCode = 2;
}

/** A policy with its trusted root prepared once, for every image of a run. */
export class Judge {
  private readonly trust: Trust | undefined;

  constructor(readonly policy: Policy) {
    try {
      this.trust = policy.trustedRoot ? loadTrustedRoot(policy.trustedRoot.json) : undefined;
    } catch (err) {
      throw new PolicyTrustError(`the trusted root ${policy.trustedRoot?.source.written ?? policy.trustedRoot?.source.file} cannot be used: ${(err as Error).message}`);
    }
  }

  /** The verdict for one image; `attached` is every attached entry of the bundle (or build), from any repository. */
  async judge(image: JudgedImage, attached: readonly BundleAttached[], blobs: BlobSource): Promise<SignatureVerdict> {
    const match = ruleFor(this.policy, image.ref);
    const base = { ref: image.ref, digest: image.digest };
    if (match.index === 'default') {
      const reasons = [`no rule of the policy matches ${printable(repositoryText(image.ref))}; add a rule naming who signs it`];
      return { ...base, rule: 'default', mode: match.mode, verdict: 'skipped', ...(match.mode !== 'skip' && { reasons }) };
    }
    const rule = match.rule;
    const withRule = { ...base, rule: rule.index, mode: rule.mode };
    const identity = identityOf(rule);
    const top = await this.trySubject(image.digest, attached, blobs, identity);
    if (top.ok) return { ...withRule, verdict: 'verified', ...signed(top.ok) };
    const upstream = image.upstreamDigest ? await this.tryUpstream(image, image.upstreamDigest, attached, blobs, identity) : { tried: [] };
    if (upstream.ok) return { ...withRule, verdict: 'verified', ...signed(upstream.ok), upstreamIndex: image.upstreamDigest! };
    // An index whose every carried child is signed by the rule's identity is what the publisher released, platform by platform.
    const children = image.children.length > 0 ? await Promise.all(image.children.map((c) => this.trySubject(c, attached, blobs, identity))) : [];
    if (children.length > 0 && children.every((c) => c.ok)) return { ...withRule, verdict: 'verified', ...signed(children[0]!.ok!) };
    const tried = [...top.tried, ...upstream.tried, ...children.flatMap((c) => c.tried)];
    // Signed platform by platform but not every one: name those with nothing attached, else the
    // reason would read as if nothing were signed and not say which platform to sign.
    const bare = children.some((c) => c.ok || c.tried.length > 0) ? image.children.filter((_, i) => !children[i]!.ok && children[i]!.tried.length === 0) : [];
    const unsignedPlatforms = bare.map((d) => `no signature is attached to platform manifest ${d} (other platforms of the index are signed): have every platform signed, or the index`);
    const where = image.upstreamDigest ? `${image.digest}, to its upstream index ${image.upstreamDigest}` : image.digest;
    const reasons = tried.length + bare.length > 0 ? [...tried, ...unsignedPlatforms] : [`no signature is attached to ${where}${image.children.length ? ' or to every one of its platforms' : ''}`];
    return { ...withRule, verdict: tried.length > 0 ? 'failed' : 'unsigned', reasons: clipReasons(reasons) };
  }

  /**
   * A platform filter rewrote the index: a signature of the upstream index
   * counts for the one carried when that index (carried as a blob, hashed as
   * read) lists every platform manifest carried, by digest.
   */
  private async tryUpstream(image: JudgedImage, upstreamDigest: string, attached: readonly BundleAttached[], blobs: BlobSource, identity: Identity): Promise<{ ok?: Extract<Verdict, { ok: true }>; tried: string[] }> {
    const r = await this.trySubject(upstreamDigest, attached, blobs, identity);
    if (!r.ok) return r;
    let listed: Set<string>;
    try {
      const doc = parseUntrustedJson(await blobs.blob(upstreamDigest), (p) => new Error(`it ${p}`)) as { manifests?: unknown };
      listed = new Set((Array.isArray(doc.manifests) ? doc.manifests : []).map((m) => (m as { digest?: unknown } | null)?.digest).filter((d): d is string => typeof d === 'string'));
    } catch (err) {
      return { tried: [...r.tried, `the upstream index ${upstreamDigest} cannot be read: ${(err as Error).message}`] };
    }
    const missing = image.children.filter((c) => !listed.has(c));
    if (missing.length > 0) return { tried: [...r.tried, `the signed upstream index ${upstreamDigest} does not list the platform manifest(s) carried ${missing.join(', ')}`] };
    return r;
  }

  /** The signatures attached to one digest, tried in order until one counts. */
  private async trySubject(subject: string, attached: readonly BundleAttached[], blobs: BlobSource, identity: Identity): Promise<{ ok?: Extract<Verdict, { ok: true }>; tried: string[] }> {
    const tried: string[] = [];
    let n = 0;
    for (const a of attached) {
      if (a.subject !== subject || a.kind !== 'signature') continue;
      const name = a.tag ?? `referrer ${a.digest}`;
      let signatures: AttachedSignature[];
      try {
        signatures = await signaturesIn(a, subject, blobs);
      } catch (err) {
        tried.push(`${name}: cannot be read: ${(err as Error).message}`);
        continue;
      }
      for (const [i, s] of signatures.entries()) {
        if (++n > MAX_TRIED) {
          // First, so that clipping the list for bundle.json keeps it.
          return { tried: [`more than ${MAX_TRIED} signatures are attached to ${subject}; the first ${MAX_TRIED} were tried, the rest were not`, ...tried] };
        }
        const v = verifyAttachedSignature(s, { digest: subject, identity }, this.trust);
        if (v.ok) return { ok: v, tried };
        tried.push(`${name}${signatures.length > 1 ? ` (signature ${i + 1})` : ''}: ${v.reason.message}`);
      }
    }
    return { tried };
  }
}

/** The signatures an attached manifest holds: cosign's simplesigning layers, or Sigstore bundle layers. */
async function signaturesIn(a: BundleAttached, subject: string, blobs: BlobSource): Promise<AttachedSignature[]> {
  const manifest = parseUntrustedJson(await blobs.blob(a.digest), (p) => new Error(`its manifest ${p}`)) as { layers?: unknown };
  const layers = Array.isArray(manifest.layers) ? (manifest.layers as unknown[]).slice(0, MAX_TRIED + 1) : [];
  const out: AttachedSignature[] = [];
  let subjectBytes: Promise<Buffer> | undefined;
  for (const l of layers) {
    if (typeof l !== 'object' || l === null) continue;
    const layer = l as { mediaType?: unknown; digest?: unknown; annotations?: unknown };
    if (typeof layer.digest !== 'string' || typeof layer.mediaType !== 'string') continue;
    if (layer.mediaType === COSIGN_SIMPLESIGNING) {
      out.push({ format: 'tag-scheme', payload: await blobs.blob(layer.digest), annotations: stringAnnotations(layer.annotations) });
    } else if (layer.mediaType.startsWith(SIGSTORE_BUNDLE_PREFIX)) {
      const json: unknown = parseUntrustedJson(await blobs.blob(layer.digest), (p) => new Error(`its Sigstore bundle ${p}`));
      // A message-signature bundle signs the subject manifest's bytes: read (and hashed) once for all its layers.
      out.push({ format: 'sigstore-bundle', json, artifact: await (subjectBytes ??= blobs.blob(subject)) });
    }
  }
  if (out.length === 0) throw new Error('it holds no cosign signature layer and no Sigstore bundle');
  return out;
}

function stringAnnotations(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (typeof v !== 'object' || v === null) return out;
  for (const [k, x] of Object.entries(v)) if (typeof x === 'string') out[k] = x;
  return out;
}

function identityOf(rule: PolicyRule): Identity {
  const id = rule.identity;
  if (id.kind === 'key') return { kind: 'key', key: id.key, name: id.name, fingerprint: id.fingerprint };
  return { kind: 'keyless', issuer: id.issuer, ...(id.subject !== undefined && { subject: id.subject }), ...(id.subjectRegExp && { subjectRegExp: id.subjectRegExp }) };
}

function signed(v: Extract<Verdict, { ok: true }>): Pick<SignatureVerdict, 'signer' | 'format' | 'signedAt'> {
  return { signer: signerText(v.signer), format: v.format, ...(v.signedAt !== undefined && { signedAt: v.signedAt }) };
}

function clipReasons(reasons: string[]): string[] {
  const out = reasons.slice(0, MAX_REASONS).map((r) => printable(r.length > 1000 ? `${r.slice(0, 1000)}…` : r));
  if (reasons.length > MAX_REASONS) out.push(`and ${reasons.length - MAX_REASONS} more`);
  return out;
}

function repositoryText(ref: string): string {
  return ref.replace(/[@:][^/]*$/, '');
}

/** How a rule is named in messages: its index and what it requires. */
export function ruleText(policy: Policy, rule: number | 'default'): string {
  if (rule === 'default') return `the policy's default (${policy.default}: no rule matches)`;
  const r = policy.rules[rule];
  if (!r) return `rule ${rule}`;
  const id = r.identity;
  const who = id.kind === 'key' ? `key ${id.name} (${id.fingerprint})` : `keyless, issuer ${id.issuer}, ${id.subject !== undefined ? `subject ${id.subject}` : `subjectRegExp ${id.subjectRegExpSource ?? ''}`}`;
  return `rule ${rule} (images ${r.images.join(', ')}; ${who}; ${r.mode})`;
}

/** True when the verdict stops the build or unpack: an enforce rule (or default) and no signature that counts. */
export const blocks = (v: SignatureVerdict): boolean => v.mode === 'enforce' && v.verdict !== 'verified';
/** True when the verdict is worth a warning: a warn rule (or default) and no signature that counts. */
export const warns = (v: SignatureVerdict): boolean => v.mode === 'warn' && v.verdict !== 'verified';

/** The message naming each blocked image, the rule and each signature tried with why it did not count. */
export function blockedText(policy: Policy, verdicts: readonly SignatureVerdict[]): string {
  const lines = verdicts.map((v) => `  ${printable(v.ref)} (${v.digest}): ${v.verdict} under ${ruleText(policy, v.rule)}${(v.reasons ?? []).map((r) => `\n    - ${r}`).join('')}`);
  return `signature policy ${policy.source.written ?? policy.source.file}: ${verdicts.length} image(s) have no signature that counts under an enforce rule:\n${lines.join('\n')}`;
}

/** One line for a warn verdict. */
export function warnText(policy: Policy, v: SignatureVerdict): string {
  return `${printable(v.ref)}: ${v.verdict} under ${ruleText(policy, v.rule)}; carried as the rule's mode (warn) allows${v.reasons?.length ? `: ${v.reasons[0]}` : ''}`;
}
