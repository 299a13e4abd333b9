import { access } from 'node:fs/promises';
import { readAllGraphs } from '../../bundle/attached.js';
import type { ImageGraph } from '../../bundle/graph.js';
import { loadPolicy } from '../../policy/load.js';
import type { InsideOptions } from '../../sign/publisher/carried.js';
import { checkSignatures, enforce, policyInside, type SignatureCheck, type SignatureSource } from '../../sign/publisher/recheck.js';
import type { VerifyFlags } from '../verify.js';
import { verdictLine } from '../verdicts.js';
import type { BundleIndex } from '../../bundle/format.js';
import { readBundleStream } from '../../bundle/stream.js';
import type { KeyObject } from 'node:crypto';
import { BundleError, BundleReader } from '../../bundle/reader.js';
import { createProgress, formatBytes, silentProgress, type Transfer } from '../../progress/reporter.js';
import { KeyError, loadPublicKey } from '../../sign/keys.js';
import { printable } from '../../util/printable.js';
import { failure, usageError } from '../errors.js';
import { jsonText } from '../json.js';
import { parseJobs } from '../options.js';

export async function verifyAction(bundle: string, opts: VerifyFlags): Promise<void> {
  if (!opts.pub) throw usageError('give the public key with --pub PUB');
  const jobs = parseJobs(opts.jobs);
  if (!opts.signatures && (opts.policy !== undefined || opts.trustedRoot !== undefined)) throw usageError('--policy and --trusted-root go with --signatures');
  const inside = opts.signatures ? await insideOptions(opts) : undefined;
  let reader: BundleReader | undefined;
  try {
    const pub = await loadPublicKey(opts.pub);
    if (bundle === '-') return await verifyStdin(pub, opts.json === true, inside);
    reader = await BundleReader.open(bundle, { pub, ...(jobs !== undefined && { jobs }) });
    const total = reader.plan().reduce((n, e) => n + e.size, 0);
    let graphs: Awaited<ReturnType<typeof readAllGraphs>>;
    const progress = opts.json ? silentProgress : createProgress('airlock verify');
    progress.addTotal(total);
    const t = progress.transfer(printable(bundle), total);
    const parts = reader.parts;
    if (parts.length > 1) reader.onPart((p, n) => progress.log(printable(`reading part ${n + 1} of ${parts.length}: ${p.name}`)));
    try {
      await reader.verify((n) => t.advance(n));
      reader.onPart(undefined);
      // The same graph walk unpack and serve make: a bundle verify passes is one they accept.
      graphs = await readAllGraphs(reader);
    } finally {
      t.done();
      progress.finish();
    }
    const i = reader.index;
    const external = i.blobs.filter((b) => b.external).length + i.files.filter((f) => f.external).length;
    const bases = (i.bases ?? []).map((b) => ({ kind: b.kind, name: b.name, version: b.version, sha256: b.sha256 }));
    const signatures = inside && (await publisherCheck(reader, bundle, inside, graphs.images));
    const report = { ok: !signatures?.blocked.length, bundle, name: i.name, version: i.version, signer: i.signer.fingerprint, images: i.images.length, files: i.files.length, blobs: i.blobs.length, attached: attachedCounts(i), external, bases, bytes: total, ...(signatures && { signatures: signatureReport(signatures) }) };
    if (opts.json) process.stdout.write(jsonText(report));
    else {
      const ext = i.bases?.length
        ? `; a delta: ${external} entries external (held by ${i.bases.map((b) => `${b.kind} ${b.name} ${b.version}`).join(', ')}; not in the tar, unpack checks them at the target)`
        : '';
      process.stdout.write(printable(`OK ${bundle}: signature valid (${i.signer.fingerprint}); ${i.images.length} images and artifacts${attachedText(i)}, ${i.blobs.length} blobs, ${i.files.length} files, ${formatBytes(total)} verified${ext}`) + '\n');
      if (signatures) printVerdicts(signatures);
    }
    if (signatures) enforce(signatures, 'the bundle is intact, but not what the policy requires');
  } catch (err) {
    if (err instanceof BundleError || err instanceof KeyError) {
      // BundleError messages already escape what came from the bundle; printable() is idempotent.
      if (opts.json) process.stdout.write(jsonText({ ok: false, bundle, error: err.message }));
      throw failure(`${printable(bundle)}: ${printable(err.message)}`);
    }
    throw err;
  } finally {
    await reader?.close();
  }
}

/** `verify -`: the bundle from standard input, in one streaming pass (SPEC §7); the same checks and report. */
async function verifyStdin(pub: KeyObject, json: boolean, inside: InsideOptions | undefined): Promise<void> {
  const progress = json ? silentProgress : createProgress('airlock verify');
  let t: Transfer | undefined;
  let r;
  let graphs: Awaited<ReturnType<typeof readAllGraphs>>;
  try {
    r = await readBundleStream(process.stdin, {
      pub,
      onPlan: (total) => {
        progress.addTotal(total);
        t = progress.transfer('standard input', total);
      },
      onBytes: (n) => t?.advance(n),
    });
    graphs = await readAllGraphs(r);
  } finally {
    t?.done();
    progress.finish();
    process.stdin.destroy();
  }
  const i = r.index;
  const total = i.blobs.filter((b) => !b.external).reduce((n, b) => n + b.size, 0) + i.files.filter((f) => !f.external).reduce((n, f) => n + f.size, 0);
  const external = i.blobs.filter((b) => b.external).length + i.files.filter((f) => f.external).length;
  const bases = (i.bases ?? []).map((b) => ({ kind: b.kind, name: b.name, version: b.version, sha256: b.sha256 }));
  const signatures = inside && (await publisherCheck(r, '-', inside, graphs.images));
  if (json) process.stdout.write(jsonText({ ok: !signatures?.blocked.length, bundle: '-', name: i.name, version: i.version, signer: i.signer.fingerprint, images: i.images.length, files: i.files.length, blobs: i.blobs.length, attached: attachedCounts(i), external, bases, bytes: total, streamed: r.bytes, ...(signatures && { signatures: signatureReport(signatures) }) }));
  else {
    const ext = i.bases?.length ? `; a delta: ${external} entries external` : '';
    process.stdout.write(printable(`OK -: signature valid (${i.signer.fingerprint}); ${i.images.length} images and artifacts${attachedText(i)}, ${i.blobs.length} blobs, ${i.files.length} files, ${formatBytes(total)} verified from standard input${ext}`) + '\n');
    if (signatures) printVerdicts(signatures);
  }
  if (signatures) enforce(signatures, 'the bundle is intact, but not what the policy requires');
}

/** --policy loaded whole (exit 2 listing every problem) before the bundle is read. */
async function insideOptions(opts: VerifyFlags): Promise<InsideOptions> {
  const trustedRoot = opts.trustedRoot !== undefined ? { trustedRoot: opts.trustedRoot } : {};
  if (opts.trustedRoot !== undefined) await access(opts.trustedRoot).catch(() => Promise.reject(usageError(`--trusted-root ${opts.trustedRoot}: no such file`)));
  return opts.policy !== undefined ? { policy: await loadPolicy(opts.policy, trustedRoot), ...trustedRoot } : trustedRoot;
}

/** SPEC §9: the carried signatures judged again, offline, after every byte checked out. */
async function publisherCheck(source: SignatureSource, bundle: string, inside: InsideOptions, graphs: ReadonlyMap<string, ImageGraph>): Promise<SignatureCheck> {
  const chosen = await policyInside(source, bundle, inside);
  if (!chosen) throw usageError(`${printable(bundle)} carries no signature policy (it was built without --policy); give --policy FILE to check the publishers' signatures against`);
  return checkSignatures(source, chosen, graphs);
}

function signatureReport(c: SignatureCheck): Record<string, unknown> {
  return { policy: c.from, verified: c.verdicts.filter((v) => v.verdict === 'verified').length, blocked: c.blocked.length, verdicts: c.verdicts };
}

function printVerdicts(c: SignatureCheck): void {
  const head = `publisher signatures, checked against the ${c.from === 'given' ? 'policy given with --policy' : 'policy the bundle carries'}:`;
  process.stdout.write([head, ...c.verdicts.map(verdictLine)].map(printable).join('\n') + '\n');
}

/** Attached manifests (SPEC §9) by kind, for --json: `{total, signature, attestation, sbom, other}`. */
function attachedCounts(i: Pick<BundleIndex, 'attached'>): Record<'total' | 'signature' | 'attestation' | 'sbom' | 'other', number> {
  const c = { total: 0, signature: 0, attestation: 0, sbom: 0, other: 0 };
  for (const a of i.attached ?? []) {
    c.total++;
    c[a.kind]++;
  }
  return c;
}

/** `, 3 attached (2 signatures, 1 SBOM)`, or nothing when none. */
function attachedText(i: Pick<BundleIndex, 'attached'>): string {
  const c = attachedCounts(i);
  if (c.total === 0) return '';
  const names = { signature: ['signature', 'signatures'], attestation: ['attestation', 'attestations'], sbom: ['SBOM', 'SBOMs'], other: ['other', 'other'] } as const;
  const parts = (['signature', 'attestation', 'sbom', 'other'] as const).filter((k) => c[k] > 0).map((k) => `${c[k]} ${names[k][c[k] === 1 ? 0 : 1]}`);
  return ` with ${c.total} attached (${parts.join(', ')})`;
}
