// verify --signatures: the publishers' signatures judged again, offline (SPEC §9).
// A module of its own so that a plain verify does not load @sigstore.
import { access } from 'node:fs/promises';
import type { ImageGraph } from '../../bundle/graph.js';
import { loadPolicy } from '../../policy/load.js';
import type { InsideOptions } from '../../sign/publisher/carried.js';
import { checkSignatures, policyInside, type SignatureCheck, type SignatureSource } from '../../sign/publisher/recheck.js';
import { printable } from '../../util/printable.js';
import { usageError } from '../errors.js';
import type { VerifyFlags } from '../verify.js';
import { verdictLine } from '../verdicts.js';

export { enforce } from '../../sign/publisher/recheck.js';

/** --policy loaded whole (exit 2 listing every problem) before the bundle is read. */
export async function insideOptions(opts: VerifyFlags): Promise<InsideOptions> {
  const trustedRoot = opts.trustedRoot !== undefined ? { trustedRoot: opts.trustedRoot } : {};
  if (opts.trustedRoot !== undefined) await access(opts.trustedRoot).catch(() => Promise.reject(usageError(`--trusted-root ${opts.trustedRoot}: no such file`)));
  return opts.policy !== undefined ? { policy: await loadPolicy(opts.policy, trustedRoot), ...trustedRoot } : trustedRoot;
}

/** SPEC §9: the carried signatures judged again, offline, after every byte checked out. */
export async function publisherCheck(source: SignatureSource, bundle: string, inside: InsideOptions, graphs: ReadonlyMap<string, ImageGraph>): Promise<SignatureCheck> {
  const chosen = await policyInside(source, bundle, inside);
  if (!chosen) throw usageError(`${printable(bundle)} carries no signature policy (it was built without --policy); give --policy FILE to check the publishers' signatures against`);
  return checkSignatures(source, chosen, graphs);
}

export function signatureReport(c: SignatureCheck): Record<string, unknown> {
  return { policy: c.from, verified: c.verdicts.filter((v) => v.verdict === 'verified').length, blocked: c.blocked.length, verdicts: c.verdicts };
}

export function printVerdicts(c: SignatureCheck): void {
  const head = `publisher signatures, checked against the ${c.from === 'given' ? 'policy given with --policy' : 'policy the bundle carries'}:`;
  process.stdout.write([head, ...c.verdicts.map(verdictLine)].map(printable).join('\n') + '\n');
}
