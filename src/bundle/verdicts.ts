// bundle.json's `policy` and `signatures[]` (SPEC §9) as far as bundle.json
// alone can tell: shapes, bounds, the policy's files among the blobs and in the
// tar, one verdict per image in images[] order. What the verdicts say is checked
// again inside against the carried bytes (src/sign/publisher/recheck.ts); here
// only that a hostile bundle.json cannot make inspect or a report print
// something unbounded, or point the policy at an entry that is not there.
import { VERDICT_KINDS, type BundlePolicy, type SignatureVerdict } from './format.js';

const DIGEST = /^sha256:[a-f0-9]{64}$/;
/** Far above any policy's key count; a bound on what is read inside. */
const MAX_POLICY_FILES = 64;
const MAX_TEXT = 4096;
const MAX_REASONS = 64;

type Bad = (what: string) => never;
const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const text = (x: unknown, max = MAX_TEXT): x is string => typeof x === 'string' && x.length > 0 && x.length <= max;

function onlyFields(x: Record<string, unknown>, fields: readonly string[], what: string, bad: Bad): void {
  for (const k of Object.keys(x)) if (!fields.includes(k)) bad(`${what} has an unknown field ${JSON.stringify(k).slice(0, 80)}`);
}

/** `policy`: its file and the files it names, each a blob held in the tar (an external one could not be checked offline). */
export function checkPolicyRecord(v: unknown, inTar: ReadonlyMap<string, number>, bad: Bad): void {
  if (!isObj(v)) return bad('policy is not an object');
  onlyFields(v, ['name', 'digest', 'size', 'files'], 'policy', bad);
  if (!text(v.name, 255) || /[/\\\p{Cc}]/u.test(v.name)) bad('policy.name is not a file name');
  const blob = (x: Record<string, unknown>, what: string) => {
    if (typeof x.digest !== 'string' || !DIGEST.test(x.digest)) bad(`${what}: digest is not a sha256 digest`);
    if (inTar.get(x.digest as string) !== x.size) bad(`${what}: ${String(x.digest)} of ${String(x.size)} bytes is not one of the blobs in the tar`);
  };
  blob(v, 'policy');
  if (!Array.isArray(v.files) || v.files.length > MAX_POLICY_FILES) return bad(`policy.files is not a list of at most ${MAX_POLICY_FILES}`);
  const paths = new Set<string>();
  let roots = 0;
  for (const [n, f] of (v.files as unknown[]).entries()) {
    const what = `policy.files[${n}]`;
    if (!isObj(f)) return bad(`${what} is not an object`);
    onlyFields(f, ['path', 'role', 'digest', 'size'], what, bad);
    if (!text(f.path, 1024) || /\p{Cc}/u.test(f.path)) bad(`${what}: path is not a path`);
    if (paths.has(f.path as string)) bad(`${what}: ${String(f.path)} is listed twice`);
    paths.add(f.path as string);
    if (f.role !== 'key' && f.role !== 'trusted-root') bad(`${what}: role is not key or trusted-root`);
    if (f.role === 'trusted-root' && ++roots > 1) bad('policy.files lists two trusted roots');
    blob(f, what);
  }
}

/** `signatures[]`: one verdict per image, in images[] order, naming that image and its digest. */
export function checkSignatures(v: unknown, images: ReadonlyArray<{ ref: string; digest: string }>, bad: Bad): void {
  if (!Array.isArray(v)) return bad('signatures is not a list');
  if (v.length !== images.length) bad(`signatures lists ${v.length} verdicts for ${images.length} images`);
  for (const [n, x] of (v as unknown[]).entries()) {
    const image = images[n]!;
    const what = `signatures[${n}] (${image.ref.slice(0, 300)})`;
    if (!isObj(x)) return bad(`${what} is not an object`);
    onlyFields(x, ['ref', 'digest', 'rule', 'mode', 'verdict', 'signer', 'format', 'signedAt', 'upstreamIndex', 'reasons'], what, bad);
    if (x.ref !== image.ref || x.digest !== image.digest) bad(`${what} names another image than images[${n}]`);
    if (!(x.rule === 'default' || (Number.isSafeInteger(x.rule) && (x.rule as number) >= 0))) bad(`${what}: rule is not a rule index or default`);
    if (!['enforce', 'warn', 'skip'].includes(x.mode as string)) bad(`${what}: mode is not enforce, warn or skip`);
    if (!VERDICT_KINDS.includes(x.verdict as SignatureVerdict['verdict'])) bad(`${what}: verdict is not one of ${VERDICT_KINDS.join(', ')}`);
    if (x.signer !== undefined && !text(x.signer)) bad(`${what}: signer is not a short text`);
    if (x.format !== undefined && x.format !== 'tag-scheme' && x.format !== 'sigstore-bundle') bad(`${what}: format is not tag-scheme or sigstore-bundle`);
    if (x.signedAt !== undefined && (!text(x.signedAt, 64) || Number.isNaN(Date.parse(x.signedAt)))) bad(`${what}: signedAt is not a time`);
    if ((x.verdict === 'verified') !== (x.signer !== undefined)) bad(`${what}: a signer goes with a verified verdict, and only with one`);
    if (x.upstreamIndex !== undefined && (x.verdict !== 'verified' || typeof x.upstreamIndex !== 'string' || !DIGEST.test(x.upstreamIndex))) bad(`${what}: upstreamIndex is not the digest of a verified image's upstream index`);
    if (x.reasons !== undefined) {
      if (!Array.isArray(x.reasons) || x.reasons.length > MAX_REASONS || !x.reasons.every((r) => text(r))) bad(`${what}: reasons is not a list of at most ${MAX_REASONS} short texts`);
    }
  }
}

/** The blobs the policy record names: kept in the tar by build, and by the stream reader for the check after the pass. */
export function policyBlobs(policy: BundlePolicy | undefined): string[] {
  return policy ? [policy.digest, ...policy.files.map((f) => f.digest)] : [];
}
