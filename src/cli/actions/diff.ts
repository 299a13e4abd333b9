import { loadBase, type Base } from '../../delta/base.js';
import { attachedVia, diffBases } from '../../delta/diff.js';
import type { BaseAttached } from '../../delta/base.js';
import { formatBytes } from '../../progress/reporter.js';
import { printable } from '../../util/printable.js';
import { jsonText } from '../json.js';

export async function diffAction(oldFile: string, newFile: string, opts: { json?: boolean }): Promise<void> {
  const [oldBase, newBase] = [await loadBase(oldFile), await loadBase(newFile)];
  const d = diffBases(oldBase, newBase);
  if (opts.json) {
    process.stdout.write(jsonText({ old: side(oldBase), new: side(newBase), ...d }));
    return;
  }
  const out: string[] = [`OLD  ${describe(oldBase)}`, `NEW  ${describe(newBase)}`];
  const counts = (x: { added: unknown[]; removed: unknown[]; changed: unknown[]; unchanged: number }) =>
    `${x.added.length} added, ${x.removed.length} removed, ${x.changed.length} changed, ${x.unchanged} unchanged`;
  out.push('', `images: ${counts(d.images)}`);
  for (const i of d.images.added) out.push(`  added    ${i.ref}  ${i.digest}`);
  for (const i of d.images.removed) out.push(`  removed  ${i.ref}  ${i.digest}`);
  for (const i of d.images.changed) out.push(`  changed  ${i.ref}  ${i.oldDigest} → ${i.newDigest}`);
  out.push('', `files: ${counts(d.files)}`);
  for (const f of d.files.added) out.push(`  added    ${f.path}  sha256:${f.sha256}  ${formatBytes(f.size)}`);
  for (const f of d.files.removed) out.push(`  removed  ${f.path}  sha256:${f.sha256}  ${formatBytes(f.size)}`);
  for (const f of d.files.changed) out.push(`  changed  ${f.path}  sha256:${f.oldSha256} → sha256:${f.newSha256}  (${formatBytes(f.oldSize)} → ${formatBytes(f.newSize)})`);
  out.push('', `attached (signatures, attestations, SBOMs): ${counts(d.attached)}`);
  for (const a of d.attached.added) out.push(`  added    ${attachedText(a)}  ${a.digest}`);
  for (const a of d.attached.removed) out.push(`  removed  ${attachedText(a)}  ${a.digest}`);
  for (const a of d.attached.changed) out.push(`  changed  ${attachedText(a)}  ${a.oldDigest} → ${a.newDigest}`);
  const c = d.carries;
  out.push(
    '',
    `NEW carries ${formatBytes(c.bytes)} (${c.bytes} bytes) that OLD does not hold: ` +
      `${c.blobs.count} blob${c.blobs.count === 1 ? '' : 's'} (${formatBytes(c.blobs.bytes)}), ${c.files.count} file${c.files.count === 1 ? '' : 's'} (${formatBytes(c.files.bytes)})`,
  );
  // Every name comes from a file that may not even be signed: one line each, escaped.
  process.stdout.write(out.map(printable).join('\n') + '\n');
}

/** `docker.io/x/y:1  signature (sig)`: the image (else its repository), kind and way. */
function attachedText(a: Pick<BaseAttached, 'image' | 'repository' | 'kind'> & { tag?: string; via?: string }): string {
  return `${a.image ?? `(an image from ${a.repository})`}  ${a.kind} (${a.via ?? attachedVia(a)})`;
}

/** One side, for --json: what it is, without its lists. */
function side(b: Base) {
  const { images: _i, blobs: _b, files: _f, attached: _a, ...rest } = b;
  return { ...rest, signatureChecked: false };
}

function describe(b: Base): string {
  const what = `${b.name}${b.version ? ` ${b.version}` : ''}, created ${b.created}`;
  switch (b.form) {
    case 'tar':
      return `bundle ${b.file}: ${what}, bundle.json sha256 ${b.sha256}; ${b.signed ? 'signed, signature not checked (diff takes no key; airlock verify --pub checks it)' : 'NOT signed'}`;
    case 'bundle.json':
      return `bundle.json ${b.file}: ${what}, sha256 ${b.sha256}; signature not checked (a bare bundle.json has none beside it)`;
    case 'receipt':
      return `receipt ${b.file}: of ${what}, at ${b.registry ?? ''} (${b.layout ?? ''} layout), receipt sha256 ${b.sha256}; receipts are not signed`;
  }
}
