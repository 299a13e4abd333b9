// The facts of a report (SPEC §10), from a bundle (whole or split), its bare
// bundle.json, a receipt, or what unpack and sync just put inside. Only
// bundle.json is read from a tar, never a blob: a report of a 50 GB bundle
// costs what inspect costs. The HTML page, the CycloneDX SBOM and --json are
// all drawn from this one model, so they cannot disagree.
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { placeAttached } from '../bundle/attached.js';
import { VERDICT_KINDS, type AttachedKind, type BundleBase, type BundleIndex, type SignatureVerdict, type VerdictKind } from '../bundle/format.js';
import { BundleError, BundleReader } from '../bundle/reader.js';
import { parseSidecar } from '../bundle/source.js';
import { trivyDbReports, type TrivyDbReport } from '../bundle/trivydb.js';
import { BaseError, fromIndex, fromReceipt, loadJson, startsLikeJson, type Base } from '../delta/base.js';
import { attachedVia, diffBases, type Diff } from '../delta/diff.js';
import type { Receipt } from '../delta/receipt.js';
import { READ_BOUNDS, readRegular, UnsafeFileError } from '../fsx/safe.js';
import { parseReference } from '../oci/reference.js';
import { fingerprint } from '../sign/keys.js';
import { printable } from '../util/printable.js';

export const REPORT_VERSION = 1;

/** What the report was made from. */
export type SourceForm = 'tar' | 'bundle.json' | 'receipt' | 'unpack' | 'sync';

export interface ReportPart {
  name: string;
  size: number;
  /** From BUNDLE.sha256 when it lists the part; never computed (that would read every byte). */
  sha256?: string;
}

export interface ReportSource {
  /** As given on the command line (or the bundle unpack read, or the manifest sync read). */
  file: string;
  form: SourceForm;
  /** A tar: the file, or the parts of a split bundle, with their sizes. */
  parts?: ReportPart[];
  /** A tar: its bytes in all. */
  size?: number;
  /** A whole tar: its sha256 as BUNDLE.sha256 lists it. */
  tarSha256?: string;
  /** Where the tar's (or parts') sha256 comes from, or why there is none. */
  tarSha256Note?: string;
}

export interface ReportSignature {
  /** verified: checked with --pub (or by unpack); not-checked: signed, no key given; unsigned: no bundle.json.sig; none: a bare bundle.json, a receipt or a sync (nothing beside it to check). */
  state: 'verified' | 'not-checked' | 'unsigned' | 'none';
  /** The signer's key fingerprint: as bundle.json claims it, or the key's that checked it. */
  fingerprint?: string;
  /** One sentence for the page. */
  text: string;
}

export interface ReportAttached {
  kind: AttachedKind;
  /** The tag-scheme suffix (sig, att, sbom), or "referrer". */
  via: string;
  digest: string;
  size?: number;
}

export interface ReportImage {
  ref: string;
  digest: string;
  kind: 'image' | 'artifact';
  role?: string;
  mediaType?: string;
  /** Unknown (absent) for a receipt. */
  platforms?: string[];
  /** Bytes of its blobs as bundle.json counts them (shared ones in each image); unknown for a receipt. */
  size?: number;
  upstreamDigest?: string;
  /** Upstream registry host of its reference. */
  registry: string;
  verdict?: SignatureVerdict;
  attached: ReportAttached[];
  /** Where it is inside (receipts, unpack, sync). */
  target?: string;
}

export interface ReportFile {
  path: string;
  sha256: string;
  size: number;
  /** Where build fetched it (unknown for a receipt). */
  source?: string;
  role?: string;
  /** A delta: a base holds it. */
  external?: boolean;
}

export interface Share {
  label: string;
  bytes: number;
}

export interface ReportModel {
  reportVersion: typeof REPORT_VERSION;
  /** The airlock that wrote the report. */
  tool: string;
  /** When the report was made: Trivy DB ages are counted to this time. */
  asOf: string;
  source: ReportSource;
  bundle: {
    name: string;
    version: string;
    created: string;
    /** The airlock that built the bundle (bundle.json's `tool`). */
    builtBy?: string;
    /** Hex sha256 of bundle.json's bytes: what receipts and delta bases name. Absent for a sync (no bundle). */
    bundleJsonSha256?: string;
    /** A receipt: the receipt file's own sha256. */
    receiptSha256?: string;
  };
  signature: ReportSignature;
  /** Receipts, unpack, sync: the registry and layout inside. */
  target?: { registry: string; layout: string };
  totals: { images: number; artifacts: number; files: number; attached: number; blobs: number; bytes: number; externalBytes: number };
  /** The signature policy the build checked against (SPEC §9), and how many images got each verdict. */
  policy?: { name: string; digest: string; files: number };
  verdicts?: Record<VerdictKind, number>;
  trivyDbs: TrivyDbReport[];
  images: ReportImage[];
  files: ReportFile[];
  /** A delta's bases. */
  bases: BundleBase[];
  /** What this source cannot tell (a receipt holds no sizes per image, no signatures). */
  unknown: string[];
  bytes: { byRegistry: Share[]; byKind: Share[]; note: string };
  against?: { old: { file: string; form: Base['form']; name: string; version: string; created: string; sha256: string }; diff: Diff };
}

/** A report that cannot be made: `exitCode` per SPEC §1. */
export class ReportError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = 'ReportError';
  }
}

type Loaded =
  | { form: 'tar'; index: BundleIndex; sha256: string; signed: boolean; verified: boolean; source: ReportSource }
  | { form: 'bundle.json'; index: BundleIndex; sha256: string }
  | { form: 'receipt'; receipt: Receipt; sha256: string };

export interface ReportOptions {
  /** Checks bundle.json's signature with this key (a tar only). */
  pub?: KeyObject;
  /** OLD: what the change is counted against. */
  against?: string;
  /** The airlock writing the report. */
  tool: string;
  now?: number;
}

/** The report of SOURCE (a bundle, split or whole, its bundle.json or a receipt). */
export async function reportOf(file: string, opts: ReportOptions): Promise<ReportModel> {
  const loaded = await load(file, opts.pub);
  const against = opts.against !== undefined ? await againstOf(opts.against, baseOf(file, loaded)) : undefined;
  const now = opts.now ?? Date.now();
  let model: ReportModel;
  if (loaded.form === 'receipt') model = receiptModel(file, loaded.receipt, loaded.sha256, 'receipt', opts.tool, now);
  else {
    const source: ReportSource = loaded.form === 'tar' ? loaded.source : { file, form: 'bundle.json' };
    const signature: ReportSignature =
      loaded.form === 'bundle.json'
        ? { state: 'none', fingerprint: loaded.index.signer.fingerprint, text: 'NOT checked: a bare bundle.json has no signature beside it (give the bundle and --pub to check it). The signer fingerprint is what bundle.json claims.' }
        : loaded.verified
          ? { state: 'verified', fingerprint: fingerprint(opts.pub!), text: `checked: bundle.json's signature verifies with the key given (--pub, ${fingerprint(opts.pub!)}).` }
          : loaded.signed
            ? { state: 'not-checked', fingerprint: loaded.index.signer.fingerprint, text: 'NOT checked (no --pub given): the signer fingerprint is what bundle.json claims. airlock report --pub PUB or airlock verify --pub PUB checks it.' }
            : { state: 'unsigned', fingerprint: loaded.index.signer.fingerprint, text: 'NOT signed: the bundle has no bundle.json.sig; unpack refuses it.' };
    model = indexModel(loaded.index, loaded.sha256, source, signature, opts.tool, now);
  }
  return against ? { ...model, against } : model;
}

/** The report of what unpack (or sync, with no bundle) just put inside: its bundle.json and the receipt of it. */
export function insideReport(input: { file: string; via: 'unpack' | 'sync'; index: BundleIndex; receipt: Receipt; verifiedBy?: KeyObject; upToDate?: boolean; tool: string; now?: number }): ReportModel {
  const { index, receipt } = input;
  const now = input.now ?? Date.now();
  const sha256 = 'sha256' in receipt.bundle ? receipt.bundle.sha256 : undefined;
  const signature: ReportSignature =
    input.via === 'sync'
      ? { state: 'none', text: 'no bundle: sync fetched from upstream and pushed directly, so nothing was signed. The images\' publisher signatures are checked by the policy, if one was given.' }
      : {
          state: 'verified',
          ...(input.verifiedBy && { fingerprint: fingerprint(input.verifiedBy) }),
          text: `checked by unpack: bundle.json's signature verified with the key given (--pub${input.verifiedBy ? `, ${fingerprint(input.verifiedBy)}` : ''}) before anything was pushed, ${input.upToDate ? 'and the target already held every image and file it names (found by digest; the tar was not read past bundle.json).' : 'and every byte was checked against it.'}`,
        };
  const model = indexModel(index, sha256, { file: input.file, form: input.via }, signature, input.tool, now);
  const targets = new Map(receipt.images.map((i) => [i.ref, i.target]));
  return {
    ...model,
    target: { registry: receipt.registry, layout: receipt.layout },
    images: model.images.map((i) => (targets.has(i.ref) ? { ...i, target: targets.get(i.ref)! } : i)),
  };
}

async function load(file: string, pub: KeyObject | undefined): Promise<Loaded> {
  let json: boolean;
  try {
    json = await startsLikeJson(file);
  } catch (err) {
    if (err instanceof BaseError) throw new ReportError(err.message, 1);
    throw err;
  }
  if (json) {
    const j = await loadJson(file).catch((err: unknown) => Promise.reject(err instanceof BaseError ? new ReportError(err.message, 1) : err));
    if (pub) throw new ReportError(`--pub checks a bundle's signature, but ${printable(file)} is a ${j.form === 'receipt' ? 'receipt (receipts are not signed)' : 'bare bundle.json (its signature is in the bundle, beside it)'}; give the bundle, or leave out --pub`, 2);
    return j;
  }
  let reader: BundleReader;
  try {
    reader = await BundleReader.open(file, pub ? { pub } : {});
  } catch (err) {
    if (err instanceof BundleError) throw new ReportError(`${printable(file)}: ${err.message}`, 1);
    throw err;
  }
  await reader.close();
  const sha256 = createHash('sha256').update(reader.bundleJson).digest('hex');
  return { form: 'tar', index: reader.index, sha256, signed: reader.signed, verified: reader.verified, source: await tarSource(file, reader.parts) };
}

/** The tar's parts and sizes, and its sha256 as BUNDLE.sha256 lists it: read, never recomputed (a report must not read 50 GB). */
async function tarSource(file: string, parts: ReadonlyArray<{ name: string; path: string; size: number }>): Promise<ReportSource> {
  const whole = parts.length === 1 && parts[0]!.path === file;
  const base = whole ? file : parts[0]!.path.replace(/\.\d{3,}$/, '');
  const sidecarFile = `${base}.sha256`;
  let listed: Map<string, string> | undefined;
  try {
    listed = parseSidecar((await readRegular(sidecarFile, { ...READ_BOUNDS.sidecar, follow: true })).toString('utf8'), sidecarFile);
  } catch (err) {
    if (err instanceof BundleError) throw new ReportError(err.message, 1);
    if (!(err instanceof UnsafeFileError)) throw err;
    if (err.code !== 'ENOENT') throw new ReportError(err.code === undefined ? err.message : `cannot read ${printable(sidecarFile)}: ${err.code}`, 1);
  }
  const size = parts.reduce((n, p) => n + p.size, 0);
  const out = parts.map((p) => ({ name: p.name, size: p.size, ...(listed?.has(p.name) && { sha256: listed.get(p.name)! }) }));
  const sidecarName = path.basename(sidecarFile);
  const note = !listed
    ? `no ${sidecarName} beside it: not computed (that would read every byte; sha256sum computes it)`
    : out.every((p) => p.sha256 !== undefined)
      ? `from ${sidecarName}, not recomputed (airlock verify or sha256sum -c checks it)`
      : `${sidecarName} does not list ${out.filter((p) => p.sha256 === undefined).map((p) => p.name).join(', ')}: not computed`;
  return { file, form: 'tar', parts: out, size, ...(whole && out[0]!.sha256 !== undefined && { tarSha256: out[0]!.sha256 }), tarSha256Note: note };
}

function baseOf(file: string, l: Loaded): Base {
  return l.form === 'receipt' ? fromReceipt(file, l.receipt, l.sha256) : fromIndex(file, l.form, l.index, l.sha256);
}

async function againstOf(oldFile: string, newBase: Base): Promise<ReportModel['against']> {
  const old = baseOf(oldFile, await load(oldFile, undefined));
  return { old: { file: oldFile, form: old.form, name: old.name, version: old.version, created: old.created, sha256: old.sha256 }, diff: diffBases(old, newBase) };
}

function registryOf(ref: string): string {
  try {
    return parseReference(ref).registry;
  } catch {
    return '(unparsable reference)';
  }
}

function hostOf(url: string): string {
  try {
    return new URL(url).host || url;
  } catch {
    return '(unparsable URL)';
  }
}

/** Adds `bytes` to `label`, keeping first-seen order; sorted largest first at the end. */
function tally(list: Share[], label: string, bytes: number): void {
  const s = list.find((x) => x.label === label);
  if (s) s.bytes += bytes;
  else list.push({ label, bytes });
}

const bySize = (xs: Share[]) => xs.filter((x) => x.bytes > 0).sort((a, b) => b.bytes - a.bytes || (a.label < b.label ? -1 : 1));

const ATTACHED_LABEL = 'signatures, attestations, SBOMs';

function indexModel(index: BundleIndex, sha256: string | undefined, source: ReportSource, signature: ReportSignature, tool: string, now: number): ReportModel {
  const verdicts = new Map((index.signatures ?? []).map((v) => [v.ref, v]));
  const placed = placeAttached(index);
  const images: ReportImage[] = index.images.map((x) => ({
    ref: x.ref,
    digest: x.digest,
    kind: x.kind,
    ...(x.role !== undefined && { role: x.role }),
    mediaType: x.mediaType,
    platforms: x.platforms,
    size: x.size,
    ...(x.upstreamDigest !== undefined && { upstreamDigest: x.upstreamDigest }),
    registry: registryOf(x.ref),
    ...(verdicts.has(x.ref) && { verdict: verdicts.get(x.ref)! }),
    attached: placed.filter((p) => p.image === x.ref).map(({ entry: a }) => ({ kind: a.kind, via: attachedVia(a), digest: a.digest, size: a.size })),
  }));
  const byRegistry: Share[] = [];
  const byKind: Share[] = [];
  for (const x of index.images) {
    tally(byRegistry, registryOf(x.ref), x.size);
    tally(byKind, x.kind === 'image' ? 'container images' : `artifacts (${x.role ?? 'other'})`, x.size);
  }
  for (const a of index.attached ?? []) {
    tally(byRegistry, a.repository.split('/')[0] ?? a.repository, a.size);
    tally(byKind, ATTACHED_LABEL, a.size);
  }
  for (const f of index.files) {
    tally(byRegistry, `${hostOf(f.source)} (files)`, f.size);
    tally(byKind, `files (${f.role})`, f.size);
  }
  const sum = <T extends { size: number }>(xs: readonly T[]) => xs.reduce((n, x) => n + x.size, 0);
  const bytes = sum(index.blobs) + sum(index.files);
  const externalBytes = sum(index.blobs.filter((b) => b.external)) + sum(index.files.filter((f) => f.external));
  return {
    reportVersion: REPORT_VERSION,
    tool,
    asOf: new Date(now).toISOString(),
    source,
    bundle: { name: index.name, version: index.version, created: index.created, builtBy: index.tool, ...(sha256 !== undefined && { bundleJsonSha256: sha256 }) },
    signature,
    totals: {
      images: index.images.filter((x) => x.kind === 'image').length,
      artifacts: index.images.filter((x) => x.kind === 'artifact').length,
      files: index.files.length,
      attached: index.attached?.length ?? 0,
      blobs: index.blobs.length,
      bytes,
      externalBytes,
    },
    ...(index.policy && { policy: { name: index.policy.name, digest: index.policy.digest, files: index.policy.files.length } }),
    ...(index.signatures && { verdicts: countVerdicts(index.signatures) }),
    trivyDbs: trivyDbReports(index.images, undefined, now),
    images,
    files: index.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size, source: f.source, role: f.role, ...(f.external && { external: true }) })),
    bases: index.bases ?? [],
    unknown: [],
    bytes: {
      byRegistry: bySize(byRegistry),
      byKind: bySize(byKind),
      note: `Each image and artifact counts every blob it uses, as bundle.json records it: a layer several images share counts in each, so these add up to more than the ${bytes} bytes the bundle holds once.`,
    },
  };
}

function countVerdicts(list: readonly SignatureVerdict[]): Record<VerdictKind, number> {
  const out = Object.fromEntries(VERDICT_KINDS.map((k) => [k, 0])) as Record<VerdictKind, number>;
  for (const v of list) out[v.verdict]++;
  return out;
}

function receiptModel(file: string, r: Receipt, sha256: string, form: 'receipt', tool: string, now: number): ReportModel {
  const base = fromReceipt(file, r, sha256);
  const host = r.registry.split('/')[0] ?? '';
  const repositoryOf = (target: string) => target.slice(host.length + 1).split(/[:@]/)[0] ?? '';
  // Each blob once, to the upstream registry of the first image in the target repository it was pushed to.
  const upstream = new Map<string, string>();
  for (const i of r.images) if (!upstream.has(repositoryOf(i.target))) upstream.set(repositoryOf(i.target), registryOf(i.ref));
  const byRegistry: Share[] = [];
  for (const b of r.blobs) tally(byRegistry, upstream.get(b.repository) ?? '(repository of no image)', b.size);
  const fileBytes = r.files.reduce((n, f) => n + f.size, 0);
  if (fileBytes) tally(byRegistry, 'files (sources not in a receipt)', fileBytes);
  const blobBytes = r.blobs.reduce((n, b) => n + b.size, 0);
  return {
    reportVersion: REPORT_VERSION,
    tool,
    asOf: new Date(now).toISOString(),
    source: { file, form },
    bundle: { name: r.bundle.name, version: r.bundle.version, created: r.bundle.created, ...('sha256' in r.bundle && { bundleJsonSha256: r.bundle.sha256 }), receiptSha256: sha256 },
    signature: { state: 'none', text: 'a receipt is not signed and does not say who signed the bundle; the bundle.json sha256 it names ties it to the bundle (airlock verify --pub checks that one).' },
    target: { registry: r.registry, layout: r.layout },
    totals: { images: r.images.length, artifacts: 0, files: r.files.length, attached: r.attached?.length ?? 0, blobs: r.blobs.length, bytes: blobBytes + fileBytes, externalBytes: 0 },
    trivyDbs: [],
    images: r.images.map((i) => ({
      ref: i.ref,
      digest: i.digest,
      kind: 'image',
      registry: registryOf(i.ref),
      target: i.target,
      attached: base.attached.filter((a) => a.image === i.ref).map((a) => ({ kind: a.kind, via: attachedVia(a), digest: a.digest })),
    })),
    files: r.files.map((f) => ({ path: f.path, sha256: f.sha256, size: f.size })),
    bases: [],
    unknown: [
      'which entries are container images and which are OCI artifacts (all are listed as images)',
      'each image\'s size and platforms',
      'the publishers\' signature verdicts and the signer of the bundle',
      'the Trivy DB dates',
      'where each file came from',
      'whether the bundle was a delta, and its bases',
    ],
    bytes: {
      byRegistry: bySize(byRegistry),
      byKind: bySize([{ label: 'images and their attached manifests (blobs)', bytes: blobBytes }, { label: 'files', bytes: fileBytes }]),
      note: 'Each blob counts once, for the upstream registry of the first image in the target repository it was pushed to.',
    },
  };
}
