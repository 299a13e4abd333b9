import { BundleError, BundleReader } from '../../bundle/reader.js';
import { readBundleStream } from '../../bundle/stream.js';
import { formatBytes } from '../../progress/reporter.js';
import { printable } from '../../util/printable.js';
import { describeDb, trivyDbReports } from '../../bundle/trivydb.js';
import { placeAttached } from '../../bundle/attached.js';
import { VERDICT_KINDS, type BundleAttached, type BundleImage, type SignatureVerdict } from '../../bundle/format.js';
import { failure } from '../errors.js';
import { jsonText } from '../json.js';

export async function inspectAction(bundle: string, opts: { json?: boolean }): Promise<void> {
  let reader: Pick<BundleReader, 'index' | 'signed' | 'parts'>;
  try {
    if (bundle === '-') {
      // Standard input: bundle.json and whether a signature follows it, read as they stream by.
      try {
        reader = { ...(await readBundleStream(process.stdin)), parts: [] };
      } finally {
        process.stdin.destroy();
      }
    } else {
      const r = await BundleReader.open(bundle);
      await r.close();
      reader = r;
    }
  } catch (err) {
    if (err instanceof BundleError) throw failure(`${printable(bundle)}: ${printable(err.message)}`);
    throw err;
  }
  const i = reader.index;
  const total = i.blobs.reduce((n, b) => n + b.size, 0) + i.files.reduce((n, f) => n + f.size, 0);
  const dbs = trivyDbReports(i.images);
  const placed = placeAttached(i);
  if (opts.json) {
    const external = { blobs: i.blobs.filter((b) => b.external).length, files: i.files.filter((f) => f.external).length };
    const parts = reader.parts.length > 1 ? { parts: reader.parts.map((p) => ({ name: p.name, size: p.size })) } : {};
    process.stdout.write(jsonText({ bundle, signed: reader.signed, signatureChecked: false, total, ...parts, ...i, ...(i.attached && { attached: placed.map((p) => ({ ...p.entry, ...(p.image !== undefined && { image: p.image }) })) }), ...(i.bases?.length && { external }), trivyDbs: dbs }));
    return;
  }
  const out: string[] = [];
  const extBlobs = i.blobs.filter((b) => b.external);
  const extFiles = i.files.filter((f) => f.external);
  out.push(`bundle   ${bundle}`);
  if (reader.parts.length > 1) {
    out.push(`parts    ${reader.parts.length}, ${formatBytes(reader.parts.reduce((n, p) => n + p.size, 0))} in all`);
    for (const p of reader.parts) out.push(`  ${p.name}  ${formatBytes(p.size)} (${p.size} bytes)`);
  }
  out.push(`name     ${i.name}${i.version ? ` ${i.version}` : ''}`);
  out.push(`created  ${i.created} by ${i.tool}`);
  out.push(
    reader.signed
      ? `signed   yes, by key ${i.signer.fingerprint} (as the bundle claims; airlock verify --pub checks it)`
      : 'signed   NO: there is no bundle.json.sig; unpack will refuse it',
  );
  const images = i.images.filter((x) => x.kind === 'image');
  const artifacts = i.images.filter((x) => x.kind === 'artifact');
  if (i.policy) {
    const counts = VERDICT_KINDS.map((k) => [k, (i.signatures ?? []).filter((v) => v.verdict === k).length] as const).filter(([, n]) => n > 0);
    out.push(`policy   ${i.policy.name} (${i.policy.digest.slice(0, 19)}, with ${i.policy.files.length} key/trusted-root files); verdicts at build: ${counts.map(([k, n]) => `${n} ${k}`).join(', ') || 'none'} (airlock verify --signatures checks them again)`);
  }
  if (i.kubespray) {
    const ks = i.kubespray;
    out.push(`kubespray ${ks.version}${ks.kubeVersion ? `, Kubernetes ${ks.kubeVersion}` : ''}, ${ks.archs.join(', ')}: ${i.files.filter((f) => f.role === 'kubespray').length} files (role kubespray) from its tables, its images among the images`);
  }
  out.push('', `images (${images.length})`);
  const verdicts = new Map((i.signatures ?? []).map((v) => [v.ref, v]));
  const attachedLines = (x: BundleImage) => [
    ...(verdicts.has(x.ref) ? [`    ${verdictText(verdicts.get(x.ref)!)}`] : []),
    ...placed.filter((p) => p.image === x.ref).map((p) => `    ${attachedLine(p.entry, x.digest)}`),
  ];
  for (const x of images) {
    out.push(`  ${x.ref}  ${x.digest}  ${formatBytes(x.size)}${x.platforms.length ? `  [${x.platforms.join(', ')}]` : ''}${x.upstreamDigest ? `  (upstream ${x.upstreamDigest})` : ''}`);
    out.push(...attachedLines(x));
  }
  out.push('', `artifacts (${artifacts.length})`);
  for (const x of artifacts) {
    out.push(`  ${x.ref}  ${x.role ?? 'artifact'}  ${x.digest}  ${formatBytes(x.size)}`);
    const db = dbs.find((d) => d.ref === x.ref);
    if (db) out.push(`    ${describeDb(db)}`);
    out.push(...attachedLines(x));
  }
  const unplaced = placed.filter((p) => p.image === undefined);
  if (unplaced.length) {
    out.push('', `attached to manifests inside images, the image not told by bundle.json alone (${unplaced.length})`);
    for (const p of unplaced) out.push(`  ${p.entry.repository}  ${attachedLine(p.entry)}`);
  }
  out.push('', `files (${i.files.length})`);
  for (const f of i.files) out.push(`  ${f.path}  ${f.role}  ${formatBytes(f.size)}  sha256:${f.sha256}`);
  out.push('', `total ${formatBytes(total)} in ${i.blobs.length} blobs and ${i.files.length} files${i.attached?.length ? `, ${i.attached.length} attached manifests among them` : ''}`);
  if (i.bases?.length) {
    const extBytes = extBlobs.reduce((n, b) => n + b.size, 0) + extFiles.reduce((n, f) => n + f.size, 0);
    out.push('', `a delta: ${extBlobs.length} blobs and ${extFiles.length} files (${formatBytes(extBytes)}) are external (held by a base, not in the tar)`, `bases (${i.bases.length})`);
    for (const b of i.bases) out.push(`  ${b.kind}  ${b.name}${b.version ? ` ${b.version}` : ''}  sha256:${b.sha256}`);
  }
  // Every line is one line: what bundle.json says (it may not even be signed)
  // cannot add lines, move the cursor or recolour the terminal.
  process.stdout.write(out.map(printable).join('\n') + '\n');
}

/** An image's verdict at build (SPEC §9): `signature  verified  ISSUER SUBJECT (tag-scheme, rule 0)`. */
function verdictText(v: SignatureVerdict): string {
  const rule = v.rule === 'default' ? 'default' : `rule ${v.rule}`;
  if (v.verdict === 'verified') return `${'signature'.padEnd(11)}  verified  ${v.signer ?? ''}  (${v.format ?? ''}${v.signedAt ? `, signed ${v.signedAt}` : ''}; ${rule})`;
  return `${'signature'.padEnd(11)}  ${v.verdict.toUpperCase()}  (${rule}, ${v.mode})${v.reasons?.length ? `: ${v.reasons[0]}` : ''}`;
}

/**
 * One attached manifest: `signature  tag sha256-0123456789ab….sig  sha256:0123456789ab  4.1 KiB`,
 * or `sbom  referrer application/spdx+json  sha256:…`, and ` on sha256:…` when its subject is not the image's top digest.
 */
function attachedLine(a: BundleAttached, top?: string): string {
  const how = a.tag !== undefined ? `tag ${a.tag.replace(/^(sha256-[a-f0-9]{12})[a-f0-9]{52}/, '$1…')}` : 'referrer';
  const type = a.artifactType !== undefined ? `  ${a.artifactType}` : '';
  const on = a.subject !== top ? `  on ${a.subject.slice(0, 19)}` : '';
  return `${a.kind.padEnd(11)}  ${how}  ${a.digest.slice(0, 19)}  ${formatBytes(a.size)}${type}${on}`;
}
