// The attached manifests of a bundle (SPEC §9) against its images' graphs:
// what parseIndex cannot tell from bundle.json alone. Each attached entry must
// hang off a manifest of an image from its repository, its own graph must be
// one airlock walks with every blob in the bundle, a referrer's manifest must
// name that subject, and its size must be what its graph holds. verify makes
// these checks; unpack and serve rely on them.
import { BLOBS_PREFIX, imageRepository, type BundleAttached, type BundleIndex } from './format.js';
import { readGraph, type EntryReader, type ImageGraph } from './graph.js';
import { BundleError } from './tarread.js';
import { printable } from '../util/printable.js';

export interface AttachedGraph extends ImageGraph {
  readonly entry: BundleAttached;
  /** The ref of the image (bundle.json order: the first) whose graph holds the subject. */
  readonly image: string;
}

/**
 * Every attached entry of the bundle with its graph and the image it belongs
 * to; `graphs` are the images' (by ref), read already. With `entries` (a delta
 * served with its bases, as for readGraph) external manifests are read through
 * it and checked like the rest. Throws BundleError naming the entry at the
 * first problem.
 */
export async function readAttached(reader: { index: BundleIndex } & EntryReader, graphs: ReadonlyMap<string, ImageGraph>, entries?: EntryReader): Promise<AttachedGraph[]> {
  const external = new Set(entries ? [] : reader.index.blobs.filter((b) => b.external).map((b) => b.digest));
  const from: EntryReader = entries ?? reader;
  const sizes = new Map(reader.index.blobs.map((b) => [b.digest, b.size]));
  const owners = ownersBySubject(reader.index, graphs);
  const out: AttachedGraph[] = [];
  for (const a of reader.index.attached ?? []) {
    const name = `attached ${a.digest} (${a.kind}${a.tag ? ` ${a.tag}` : ', a referrer'} in ${a.repository})`;
    const fail = (problem: string): never => {
      throw new BundleError(printable(`${name}: ${problem}; airlock does not use this bundle: build it again with this version of airlock`));
    };
    // In a delta, an image's external manifests were not walked: an external subject may be a child of one.
    const image = a.upstream
      ? owners.upstream.get(`${a.repository}\0${a.subject}`)
      : (owners.held.get(`${a.repository}\0${a.subject}`) ?? (external.has(a.subject) ? owners.withExternal.get(a.repository) : undefined));
    if (image === undefined) return fail(`its subject ${a.subject} is not a manifest of any image from ${a.repository}`);
    const g = await readGraph(reader, { ref: `${a.repository}@${a.digest}`, digest: a.digest, mediaType: a.mediaType }, entries);
    if (!external.has(a.digest)) {
      const subject = subjectOf(await from.readEntry(BLOBS_PREFIX + a.digest.slice(7)));
      if (subject === null) fail('its manifest has a subject without a sha256 digest');
      if (subject !== undefined && subject !== a.subject) fail(`its manifest names the subject ${subject}, not ${a.subject}`);
      if (subject === undefined && a.tag === undefined) fail('it is listed as a referrer, but its manifest has no subject');
    }
    if (g.externalManifests.length === 0) {
      const size = [...new Set([...g.manifests.map((m) => m.digest), ...g.blobs])].reduce((n, d) => n + (sizes.get(d) ?? 0), 0);
      if (size !== a.size) fail(`bundle.json says it is ${a.size} bytes, but its manifest and blobs are ${size}`);
    }
    out.push({ ...g, entry: a, image });
  }
  return out;
}

/**
 * For each repository and manifest digest, the first image (bundle.json order)
 * from that repository whose graph holds it; and for each repository, the first
 * image with external manifests (a delta's, not walked).
 */
function ownersBySubject(index: BundleIndex, graphs: ReadonlyMap<string, ImageGraph>): { held: Map<string, string>; withExternal: Map<string, string>; upstream: Map<string, string> } {
  const held = new Map<string, string>();
  const withExternal = new Map<string, string>();
  // A platform filter rewrote these indexes: their signatures are carried to be checked, the index bytes as a blob.
  const upstream = new Map<string, string>();
  for (const i of index.images) if (i.upstreamDigest && !upstream.has(`${imageRepository(i.ref)}\0${i.upstreamDigest}`)) upstream.set(`${imageRepository(i.ref)}\0${i.upstreamDigest}`, i.ref);
  for (const i of index.images) {
    const g = graphs.get(i.ref);
    if (!g) continue;
    const repository = imageRepository(i.ref);
    for (const m of [...g.manifests, ...g.externalManifests]) if (!held.has(`${repository}\0${m.digest}`)) held.set(`${repository}\0${m.digest}`, i.ref);
    if (g.externalManifests.length > 0 && !withExternal.has(repository)) withExternal.set(repository, i.ref);
  }
  return { held, withExternal, upstream };
}

/** The `subject` digest a manifest names: undefined when it has none, null when it is not a sha256 digest (the graph walk parsed the JSON already). */
function subjectOf(bytes: Buffer): string | undefined | null {
  const doc = JSON.parse(bytes.toString('utf8')) as { subject?: unknown };
  if (doc.subject === undefined) return undefined;
  const d = (doc.subject as { digest?: unknown } | null)?.digest;
  return typeof d === 'string' && /^sha256:[a-f0-9]{64}$/.test(d) ? d : null;
}

/** Reads every image's graph, then the attached entries' (verify, the graph check of `--base`). */
export async function readAllGraphs(reader: { index: BundleIndex } & EntryReader): Promise<{ images: Map<string, ImageGraph>; attached: AttachedGraph[] }> {
  const images = new Map<string, ImageGraph>();
  for (const image of reader.index.images) images.set(image.ref, await readGraph(reader, image));
  return { images, attached: await readAttached(reader, images) };
}

/**
 * Which image each attached entry belongs to, from bundle.json alone (inspect,
 * diff): the image from its repository whose digest is the subject; else the
 * first one `holds` says has the subject in its graph (when the graphs were
 * read); else the only image from that repository. Undefined when that does
 * not decide it (a child's signature, several images from one repository, no graphs).
 */
export function placeAttached(
  index: Pick<BundleIndex, 'images' | 'attached'>,
  holds?: (ref: string, digest: string) => boolean,
): Array<{ entry: BundleAttached; image?: string }> {
  const byRepository = new Map<string, string[]>();
  for (const i of index.images) {
    const r = imageRepository(i.ref);
    byRepository.set(r, [...(byRepository.get(r) ?? []), i.ref]);
  }
  const digestOf = new Map(index.images.map((i) => [i.ref, i.digest]));
  return (index.attached ?? []).map((entry) => {
    const mine = byRepository.get(entry.repository) ?? [];
    const upstreamOf = new Map(index.images.map((i) => [i.ref, i.upstreamDigest]));
    const image =
      mine.find((ref) => digestOf.get(ref) === entry.subject || (entry.upstream && upstreamOf.get(ref) === entry.subject)) ??
      (holds && mine.find((ref) => holds(ref, entry.subject))) ??
      (mine.length === 1 ? mine[0] : undefined);
    return { entry, ...(image !== undefined && { image }) };
  });
}
