// Which tar holds each entry a served bundle names. A full bundle holds all of
// its own; a delta (SPEC §6) leaves out what its bases hold, and `serve --base`
// reads those from the bundles given. Every bundle given is opened with the same
// strict reader and key as the delta, and each external blob and file is looked
// up by digest and size in all of them together: a base is whatever holds the
// bytes, not the file the delta was built against (that may have been a
// receipt, which holds none, or a bundle since replaced by another holding the
// same blobs). What no bundle given holds is named before anything is served.
// Each tar keeps its own EntryGuard, so an entry from a base is hashed and
// watched exactly like one from the delta, against the digest both sign.
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { BLOBS_PREFIX, FILES_PREFIX, type BundleBase } from '../bundle/format.js';
import type { EntryReader } from '../bundle/graph.js';
import { BundleError, BundleReader } from '../bundle/reader.js';
import { BaseError, startsLikeJson } from '../delta/base.js';
import { printable } from '../util/printable.js';
import { EntryGuard } from './guard.js';

/** Where one entry's bytes are: the tar that holds them, the name there, and that tar's guard. */
export interface EntrySource {
  readonly reader: BundleReader;
  readonly guard: EntryGuard;
  /** The entry's name in that tar (a base may hold a file under another path). */
  readonly name: string;
}

/** A serve that cannot start: a base unreadable or not a bundle, or an external entry no base given holds. */
export class BaseMismatchError extends BundleError {}

const describe = (b: Pick<BundleBase, 'kind' | 'name' | 'version'>) => `${b.kind} ${b.name} ${b.version}`;

/** At most this many missing items are named one by one; a count says the rest. */
const MAX_NAMED = 20;

/**
 * Opens each FILE given with --base as a bundle checked with `pub`. Which of
 * them serves what is decided by digest (EntrySources.open), not here. Throws
 * naming the file that is not a bundle, does not verify or is given twice;
 * closes what it opened when it throws.
 */
export async function openBases(delta: BundleReader, files: readonly string[], pub: KeyObject): Promise<BundleReader[]> {
  if (files.length > 0 && (delta.index.bases ?? []).length === 0) {
    throw new BaseMismatchError(`${printable(delta.path)} is not a delta (its bundle.json lists no bases); serve it without --base`);
  }
  const opened: BundleReader[] = [];
  try {
    const given = new Map<string, BundleReader>();
    for (const file of files) {
      const base = await openBase(file, pub);
      opened.push(base);
      const sha256 = createHash('sha256').update(base.bundleJson).digest('hex');
      const twice = given.get(sha256);
      if (twice !== undefined) throw new BaseMismatchError(`--base ${printable(file)} is given twice (also as ${printable(twice.path)})`);
      given.set(sha256, base);
    }
    return opened;
  } catch (err) {
    await Promise.all(opened.map((r) => r.close()));
    throw err;
  }
}

async function openBase(file: string, pub: KeyObject): Promise<BundleReader> {
  // A file that cannot be opened or read is left to BundleReader.open, which says why in a bundle's terms.
  const json = await startsLikeJson(file).catch((err: unknown) => {
    if (err instanceof BaseError) return false;
    throw err;
  });
  try {
    if (json) {
      throw new BaseMismatchError(`--base ${printable(file)} is JSON (a receipt or a bare bundle.json): it holds no bytes to serve; give a bundle that holds what the delta leaves out (for a receipt, the bundle it was written from)`);
    }
    return await BundleReader.open(file, { pub });
  } catch (err) {
    if (err instanceof BaseMismatchError) throw err;
    if (err instanceof BundleError) throw new BaseMismatchError(`--base ${printable(file)}: ${err.message}`);
    throw err;
  }
}

/** Every entry the served bundle names, resolved to the tar that holds it. */
export class EntrySources implements EntryReader {
  private constructor(
    private readonly own: EntrySource['reader'],
    private readonly guards: Map<BundleReader, EntryGuard>,
    /** External entries (by the served bundle's name) → where a base holds them. */
    private readonly external: Map<string, EntrySource>,
    /** Bases given that hold nothing the served bundle leaves out (a base that holds the same is found first). */
    readonly unused: readonly BundleReader[],
  ) {}

  /** Scans every tar (headers only) and finds each external entry in a base; throws naming what no base holds. */
  static async open(reader: BundleReader, bases: readonly BundleReader[] = []): Promise<EntrySources> {
    const guards = new Map<BundleReader, EntryGuard>();
    for (const r of [reader, ...bases]) {
      try {
        await r.scan();
      } catch (err) {
        if (r === reader || !(err instanceof BundleError)) throw err;
        throw new BaseMismatchError(`--base ${printable(r.path)}: ${err.message}`);
      }
      guards.set(r, new EntryGuard(r));
    }
    const external = new Map<string, EntrySource>();
    const missing: string[] = [];
    /** The bases (of the served bundle, and of the bases given) said to hold a missing item: a receipt among them needs a word on what to give instead. */
    const named = new Set<BundleBase>();
    const listed = reader.index.bases ?? [];
    /** Which of the delta's bases held the item: a blob's `from` says; otherwise (files, a bare bundle.json base) any of them. */
    const heldBy = (from: number | undefined) => {
      const one = from === undefined ? undefined : listed[from];
      const which = one ? [one] : listed;
      for (const b of which) named.add(b);
      return `held by ${which.length === 1 ? '' : 'one of '}${which.map(describe).join(', ')}`;
    };
    /** ", which BASE (a delta itself) leaves to its own bases X", for the first base given that does. */
    const leftOut = (leaves: (r: BundleReader) => boolean) => {
      const r = bases.find(leaves);
      if (!r) return '';
      for (const b of r.index.bases ?? []) named.add(b);
      return `, which ${r.path} (itself a delta) leaves to ${(r.index.bases ?? []).map(describe).join(', ')}`;
    };
    const at = (r: BundleReader, name: string): EntrySource => ({ reader: r, guard: guards.get(r) as EntryGuard, name });
    for (const b of reader.index.blobs) {
      if (!b.external) continue;
      const name = BLOBS_PREFIX + b.digest.slice(7);
      const base = bases.find((r) => r.has(name) && r.entry(name).size === b.size);
      if (base) external.set(name, at(base, name));
      else missing.push(`blob ${b.digest} (${b.size} bytes, ${heldBy(b.from?.base)})${leftOut((r) => r.index.blobs.some((x) => x.external && x.digest === b.digest))}`);
    }
    for (const f of reader.index.files) {
      if (!f.external) continue;
      // The same bytes, at the same path where a base has them there, else at any path.
      const candidates = bases.flatMap((r) =>
        r.index.files.filter((g) => !g.external && g.sha256 === f.sha256 && g.size === f.size && r.has(FILES_PREFIX + g.path)).map((g) => ({ r, path: g.path })),
      );
      const found = candidates.find((c) => c.path === f.path) ?? candidates[0];
      if (found) external.set(FILES_PREFIX + f.path, at(found.r, FILES_PREFIX + found.path));
      else missing.push(`file ${f.path} (sha256:${f.sha256}, ${f.size} bytes, ${heldBy(undefined)})${leftOut((r) => r.index.files.some((g) => g.external && g.sha256 === f.sha256 && g.size === f.size))}`);
    }
    if (missing.length > 0) {
      const n = missing.length;
      const where = `${n === 1 ? 'is' : 'are'} in no --base ${bases.length === 0 ? '(none given; matched by digest and size)' : 'given (matched by digest and size)'}`;
      const shown = n > MAX_NAMED ? [...missing.slice(0, MAX_NAMED), `and ${n - MAX_NAMED} more`] : missing;
      const receipts = [...named].filter((b) => b.kind === 'receipt');
      const written = receipts.length === 1 ? 'the bundle that receipt was written from' : 'the bundles those receipts were written from';
      const forReceipts = receipts.length === 0 ? '' : ` (for ${receipts.map(describe).join(', ')}: ${written})`;
      throw new BaseMismatchError(
        printable(`${reader.path} is a delta: ${n} item${n === 1 ? '' : 's'} it leaves to its bases ${where}: ${shown.join(', ')}; give with --base a bundle that holds them${forReceipts}`),
      );
    }
    const used = new Set([...external.values()].map((s) => s.reader));
    const unused = bases.filter((r) => !used.has(r));
    return new EntrySources(reader, guards, external, unused);
  }

  /** Where an entry of the served bundle is; undefined when neither it nor a base holds it. */
  find(name: string): EntrySource | undefined {
    if (this.own.has(name)) return { reader: this.own, guard: this.guards.get(this.own) as EntryGuard, name };
    return this.external.get(name);
  }

  resolve(name: string): EntrySource {
    const s = this.find(name);
    if (!s) throw new BundleError(`entry "${printable(name)}" is not in the bundle or its bases`);
    return s;
  }

  has(name: string): boolean {
    return this.find(name) !== undefined;
  }

  /** A small entry (a manifest) read whole and re-hashed, from whichever tar holds it. */
  readEntry(name: string): Promise<Buffer> {
    const s = this.resolve(name);
    return s.reader.readEntry(s.name);
  }

  /** Each tar's current stamp, taken before entries are read (see markVerified). */
  async stamps(): Promise<Map<EntryGuard, string>> {
    return new Map(await Promise.all([...this.guards.values()].map(async (g) => [g, await g.stamp()] as const)));
  }

  /** Records an entry read and hashed whole (readEntry) since `stamps` were taken. */
  markVerified(name: string, stamps: Map<EntryGuard, string>): void {
    const s = this.resolve(name);
    const stamp = stamps.get(s.guard);
    if (stamp !== undefined) s.guard.markVerified(s.name, stamp);
  }
}
