// `airlock build MANIFEST --list`: every item the manifest expands to, with no
// network access at all — for review, and to compare against Kubespray's own
// lists (SPEC §12).
import type { Checksum, Item, Plan } from '../../manifest/types.js';
import { printable } from '../../util/printable.js';
import { jsonText } from '../json.js';

export interface ListedItem {
  kind: Item['kind'];
  /** Images and artifacts: the normalized reference, and each other form it was written in. */
  ref?: string;
  written?: string[];
  platforms?: string[];
  /** Files: where they come from and where they land below the file server. */
  url?: string;
  path?: string;
  checksum?: { sha256: string } | { sha512: string } | { checksumUrl: string } | 'pinned-at-build';
  role?: string;
  /** Where each was declared: file:line:col and the key path (spec.kubespray: downloads.NAME (ARCH) for Kubespray's). */
  from: string[];
}

function checksumOf(c: Checksum): NonNullable<ListedItem['checksum']> {
  if (c.type === 'digest') return c.algorithm === 'sha256' ? { sha256: c.hex } : { sha512: c.hex };
  if (c.type === 'url') return { checksumUrl: c.url };
  return 'pinned-at-build';
}

export function listItems(plan: Plan): ListedItem[] {
  return plan.items.map((item): ListedItem => {
    const from = item.origins.map((o) => `${o.file}:${o.line}:${o.col} ${o.path}`);
    if (item.kind === 'file') return { kind: 'file', url: item.url, path: item.path, checksum: checksumOf(item.checksum), role: item.role, from };
    const forms = [...new Set(item.origins.flatMap((o) => (o.written !== undefined ? [o.written] : [])))];
    const written = forms.length ? { written: forms } : {};
    if (item.kind === 'artifact') return { kind: 'artifact', ref: item.ref, ...written, ...(item.role && { role: item.role }), from };
    return { kind: 'image', ref: item.ref, ...written, ...(item.platforms && { platforms: item.platforms }), from };
  });
}

export function printList(plan: Plan, json: boolean): void {
  const items = listItems(plan);
  if (json) {
    process.stdout.write(jsonText({ name: plan.name, version: plan.version ?? '', ...(plan.kubespray && { kubespray: plan.kubespray }), items }));
    return;
  }
  const lines = items.map((i) => {
    if (i.kind === 'file') {
      const c = i.checksum ?? 'pinned-at-build';
      const sum = typeof c === 'string' ? c : 'sha256' in c ? `sha256:${c.sha256}` : 'sha512' in c ? `sha512:${c.sha512}` : `checksum from ${c.checksumUrl}`;
      return `file      ${i.url} -> files/${i.path} ${sum}${i.role && i.role !== 'file' ? ` (${i.role})` : ''}`;
    }
    return `${i.kind.padEnd(9)} ${i.ref}${i.written ? ` (written ${i.written.join(', ')})` : ''}${i.platforms ? ` [${i.platforms.join(',')}]` : ''}${i.role ? ` (${i.role})` : ''}`;
  });
  process.stdout.write(lines.map((l) => printable(l)).join('\n') + (lines.length ? '\n' : ''));
}
