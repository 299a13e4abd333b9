import { readAllGraphs } from '../../bundle/attached.js';
import type { InsideOptions } from '../../sign/publisher/carried.js';
import type { VerifyFlags } from '../verify.js';
import type { BundleIndex } from '../../bundle/format.js';
import { readBundleStream } from '../../bundle/stream.js';
import type { KeyObject } from 'node:crypto';
import { BundleError, BundleReader } from '../../bundle/reader.js';
import type { HashPool } from '../../bundle/hashpool.js';
import { createProgress, formatBytes, silentProgress, type Transfer } from '../../progress/reporter.js';
import { KeyError, loadPublicKey } from '../../sign/keys.js';
import { printable } from '../../util/printable.js';
import { failure, usageError } from '../errors.js';
import { jsonText } from '../json.js';
import { parseJobs } from '../options.js';

// The publishers' signature check (and @sigstore with it) is loaded only for --signatures:
// it took 120 of the 190 ms before a plain verify read its first byte (measured, 2 cores).
const loadSignatures = () => import('./verify-signatures.js');
type Signatures = Awaited<ReturnType<typeof loadSignatures>>;

export async function verifyAction(bundle: string, opts: VerifyFlags, early?: HashPool): Promise<void> {
  try {
    await verifyWith(bundle, opts, early);
  } finally {
    // The reader closes them too once it has them; closing twice is nothing. Before that (a bad key, a usage error) only this does.
    await early?.close();
  }
}

async function verifyWith(bundle: string, opts: VerifyFlags, pool: HashPool | undefined): Promise<void> {
  if (!opts.pub) throw usageError('give the public key with --pub PUB');
  const jobs = parseJobs(opts.jobs);
  if (!opts.signatures && (opts.policy !== undefined || opts.trustedRoot !== undefined)) throw usageError('--policy and --trusted-root go with --signatures');
  const sig = opts.signatures ? await loadSignatures() : undefined;
  const inside = sig && (await sig.insideOptions(opts));
  let reader: BundleReader | undefined;
  try {
    const pub = await loadPublicKey(opts.pub);
    if (bundle === '-') return await verifyStdin(pub, opts.json === true, sig && inside && { sig, inside });
    reader = await BundleReader.open(bundle, { pub, ...(jobs !== undefined && { jobs }), ...(pool && { pool }) });
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
    const signatures = sig && inside && (await sig.publisherCheck(reader, bundle, inside, graphs.images));
    const report = { ok: !signatures?.blocked.length, bundle, name: i.name, version: i.version, signer: i.signer.fingerprint, images: i.images.length, files: i.files.length, blobs: i.blobs.length, attached: attachedCounts(i), external, bases, bytes: total, ...(signatures && sig && { signatures: sig.signatureReport(signatures) }) };
    if (opts.json) process.stdout.write(jsonText(report));
    else {
      const ext = i.bases?.length
        ? `; a delta: ${external} entries external (held by ${i.bases.map((b) => `${b.kind} ${b.name} ${b.version}`).join(', ')}; not in the tar, unpack checks them at the target)`
        : '';
      process.stdout.write(printable(`OK ${bundle}: signature valid (${i.signer.fingerprint}); ${i.images.length} images and artifacts${attachedText(i)}, ${i.blobs.length} blobs, ${i.files.length} files, ${formatBytes(total)} verified${ext}`) + '\n');
      if (signatures && sig) sig.printVerdicts(signatures);
    }
    if (signatures && sig) sig.enforce(signatures, 'the bundle is intact, but not what the policy requires');
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
async function verifyStdin(pub: KeyObject, json: boolean, check: { sig: Signatures; inside: InsideOptions } | undefined): Promise<void> {
  const sig = check?.sig;
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
  const signatures = check && (await check.sig.publisherCheck(r, '-', check.inside, graphs.images));
  if (json) process.stdout.write(jsonText({ ok: !signatures?.blocked.length, bundle: '-', name: i.name, version: i.version, signer: i.signer.fingerprint, images: i.images.length, files: i.files.length, blobs: i.blobs.length, attached: attachedCounts(i), external, bases, bytes: total, streamed: r.bytes, ...(signatures && sig && { signatures: sig.signatureReport(signatures) }) }));
  else {
    const ext = i.bases?.length ? `; a delta: ${external} entries external` : '';
    process.stdout.write(printable(`OK -: signature valid (${i.signer.fingerprint}); ${i.images.length} images and artifacts${attachedText(i)}, ${i.blobs.length} blobs, ${i.files.length} files, ${formatBytes(total)} verified from standard input${ext}`) + '\n');
    if (signatures && sig) sig.printVerdicts(signatures);
  }
  if (signatures && sig) sig.enforce(signatures, 'the bundle is intact, but not what the policy requires');
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
