// Which tar holds each entry a served bundle names. A full bundle holds all of
// its own; a delta (SPEC §6) leaves out what its bases hold, and `serve --base`
// reads those from the base bundles. Every base is opened with the same strict
// reader and key as the delta and matched to the delta's `bases` by the sha256
// of its bundle.json (a base given may also be a base of a base given: a delta
// of a delta); every external blob and file must be in one of them with
// the same digest and size before anything is served. Each tar keeps its own
// EntryGuard, so an entry from a base is hashed and watched exactly like one
// from the delta.
import type { KeyObject } from 'node:crypto';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { BLOBS_PREFIX, FILES_PREFIX, type BundleBase } from '../bundle/format.js';
import type { EntryReader } from '../bundle/graph.js';
import { BundleError, BundleReader } from '../bundle/reader.js';
import { printable } from '../util/printable.js';
import { EntryGuard } from './guard.js';

/** Where one entry's bytes are: the tar that holds them, the name there, and that tar's guard. */
export interface EntrySource {
  readonly reader: BundleReader;
  readonly guard: EntryGuard;
  /** The entry's name in that tar (a base may hold a file under another path). */
  readonly name: string;
}

/** A serve that cannot start: a base missing, wrong or unreadable, or an external entry no base holds. */
export class BaseMismatchError extends BundleError {}

const describe = (b: Pick<BundleBase, 'kind' | 'name' | 'version'>) => printable(`${b.kind} ${b.name} ${b.version}`);

/**
 * Opens each FILE given with --base (checked with `pub`) and matches it to
 * the delta's bases. Throws naming the file or the base that does not fit;
 * closes what it opened when it throws.
 */
export async function openBases(delta: BundleReader, files: readonly string[], pub: KeyObject): Promise<BundleReader[]> {
  const listed = delta.index.bases ?? [];
  const what = printable(delta.path);
  if (files.length > 0 && listed.length === 0) throw new BaseMismatchError(`${what} is not a delta (its bundle.json lists no bases); serve it without --base`);
  const receipts = listed.filter((b) => b.kind === 'receipt');
  if (receipts.length > 0) {
    throw new BaseMismatchError(
      `${what} is a delta of ${receipts.map(describe).join(', ')}: a receipt holds no bytes, so what it leaves to that base cannot be served; unpack it into the target the receipt describes, or build the delta with --base against the bundle`,
    );
  }
  const opened: BundleReader[] = [];
  try {
    const given = new Map<string, BundleReader>();
    const shaOf = new Map<BundleReader, string>();
    for (const file of files) {
      const base = await openBase(file, pub);
      opened.push(base);
      const sha256 = createHash('sha256').update(base.bundleJson).digest('hex');
      const twice = given.get(sha256);
      if (twice !== undefined) throw new BaseMismatchError(`--base ${printable(file)} is given twice (also as ${printable(twice.path)})`);
      given.set(sha256, base);
      shaOf.set(base, sha256);
    }
    // The delta's bases, and (a delta of a delta) the bases of a base given: what the delta leaves out may be left out there too.
    const allowed = new Set(listed.map((b) => b.sha256));
    for (let grew = true; grew; ) {
      grew = false;
      for (const [sha256, base] of given) {
        if (!allowed.has(sha256)) continue;
        for (const b of base.index.bases ?? []) {
          if (allowed.has(b.sha256)) continue;
          allowed.add(b.sha256);
          grew = true;
        }
      }
    }
    for (const base of opened) {
      const sha256 = shaOf.get(base) ?? '';
      if (allowed.has(sha256)) continue;
      const which = `${printable(base.path)} (bundle ${printable(`${base.index.name} ${base.index.version}`)}, bundle.json sha256:${sha256})`;
      throw new BaseMismatchError(`--base ${which} is not a base of ${what}, which was built against ${listed.map((b) => `${describe(b)} (sha256:${b.sha256})`).join(', ')}`);
    }
    const missing = listed.filter((b) => !given.has(b.sha256));
    if (missing.length > 0) {
      throw new BaseMismatchError(
        `${what} is a delta: what ${missing.map(describe).join(', ')} holds is not in it; give ${missing.length === 1 ? 'that bundle' : 'those bundles'} with --base (${missing.map((b) => `bundle.json sha256:${b.sha256}`).join(', ')})`,
      );
    }
    return opened;
  } catch (err) {
    await Promise.all(opened.map((r) => r.close()));
    throw err;
  }
}

async function openBase(file: string, pub: KeyObject): Promise<BundleReader> {
  if (await startsLikeJson(file)) {
    throw new BaseMismatchError(`--base ${printable(file)} is JSON (a receipt or a bare bundle.json): it holds no bytes to serve; give the base bundle itself`);
  }
  try {
    return await BundleReader.open(file, { pub });
  } catch (err) {
    if (err instanceof BundleError) throw new BaseMismatchError(`--base ${printable(file)}: ${err.message}`);
    throw err;
  }
}

async function startsLikeJson(file: string): Promise<boolean> {
  let fh;
  try {
    // Non-blocking: a FIFO opens at once; BundleReader.open then refuses it, naming it.
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return false; // BundleReader.open names the file and why it cannot be opened.
  }
  try {
    const head = Buffer.alloc(64);
    const { bytesRead } = await fh.read(head, 0, head.length, 0);
    return /^\s*\{/.test(head.subarray(0, bytesRead).toString('latin1'));
  } finally {
    await fh.close();
  }
}

/** ", which BASE (a delta itself) leaves to its own bases X; give X with --base too", for the first base that does. */
function leftOut(bases: readonly BundleReader[], leaves: (r: BundleReader) => boolean): string {
  const r = bases.find(leaves);
  if (!r) return '';
  return `, which ${r.path} (itself a delta) leaves to ${(r.index.bases ?? []).map(describe).join(', ')}; give that with --base too`;
}

/** Every entry the served bundle names, resolved to the tar that holds it. */
export class EntrySources implements EntryReader {
  private constructor(
    private readonly own: EntrySource['reader'],
    private readonly guards: Map<BundleReader, EntryGuard>,
    /** External entries (by the served bundle's name) → where a base holds them. */
    private readonly external: Map<string, EntrySource>,
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
    const listed = reader.index.bases ?? [];
    const heldBy = (from: number | undefined) => {
      const b = from === undefined ? undefined : listed[from];
      return b ? `; bundle.json says ${describe(b)} holds it` : '';
    };
    const at = (r: BundleReader, name: string): EntrySource => ({ reader: r, guard: guards.get(r) as EntryGuard, name });
    for (const b of reader.index.blobs) {
      if (!b.external) continue;
      const name = BLOBS_PREFIX + b.digest.slice(7);
      const base = bases.find((r) => r.has(name) && r.entry(name).size === b.size);
      if (base) external.set(name, at(base, name));
      else missing.push(`blob ${b.digest} (${b.size} bytes)${heldBy(b.from?.base)}${leftOut(bases, (r) => r.index.blobs.some((x) => x.external && x.digest === b.digest))}`);
    }
    for (const f of reader.index.files) {
      if (!f.external) continue;
      // The same bytes, at the same path where a base has them there, else at any path.
      const candidates = bases.flatMap((r) => r.index.files.filter((g) => !g.external && g.sha256 === f.sha256 && g.size === f.size).map((g) => ({ r, path: g.path })));
      const found = candidates.find((c) => c.path === f.path) ?? candidates[0];
      if (found && found.r.has(FILES_PREFIX + found.path)) external.set(FILES_PREFIX + f.path, at(found.r, FILES_PREFIX + found.path));
      else missing.push(`file ${f.path} (sha256:${f.sha256}, ${f.size} bytes)${leftOut(bases, (r) => r.index.files.some((g) => g.external && g.sha256 === f.sha256 && g.size === f.size))}`);
    }
    if (missing.length > 0) {
      throw new BaseMismatchError(
        printable(`${reader.path} leaves ${missing.length} item(s) to its bases that no --base holds (with that digest and size): ${missing.join(', ')}; give the bundle(s) that hold them`),
      );
    }
    return new EntrySources(reader, guards, external);
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
