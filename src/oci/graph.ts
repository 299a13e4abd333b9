// One walk over a manifest graph (an image manifest, or an index and what it
// lists) with one set of shape rules, for both sides of the air gap: build
// walks what a registry serves; verify, unpack and serve walk what a bundle
// holds. What build accepts, unpack pushes; what build refuses never gets
// into a bundle.
//
// Each manifest is loaded and walked once, however often it is listed (a
// "diamond" index that lists the next level twice costs one load per level,
// not two to the power of the depth). The walk is bounded: MAX_DEPTH levels of
// nesting, MAX_CHILDREN entries per index, MAX_MANIFESTS manifests per graph.
// Children are walked in index order, so the result never depends on timing.
import { isIndexType, isManifestType, OCI_INDEX, OCI_MANIFEST } from './mediatypes.js';
import { jsonDepthProblem } from '../util/json.js';

/**
 * The root is at level 0 and nothing may sit deeper than level 4: at most four
 * indexes above an image manifest. Real content uses one (a multi-platform
 * index), rarely two (an index of indexes).
 */
export const MAX_DEPTH = 4;
/** Entries per index. The largest real indexes list a few dozen platforms plus their attestations. */
export const MAX_CHILDREN = 1000;
/** Distinct manifests and indexes per graph, the root included. */
export const MAX_MANIFESTS = 10_000;

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: { os?: string; architecture?: string; variant?: string };
  annotations?: Record<string, string>;
  [key: string]: unknown;
}

/** A graph airlock refuses: the message names the reference, the digest and what to do. */
export class GraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphError';
  }
}

export interface ParsedManifest {
  readonly kind: 'index' | 'manifest';
  /** The manifest's own mediaType, else the one it was listed or served as, else what its shape says. */
  readonly mediaType: string;
  readonly json: Record<string, unknown>;
  /** An index's entries, in order (empty for an image manifest). */
  readonly children: Descriptor[];
  /** An image manifest's config (none for an index). */
  readonly config?: Descriptor;
  /** An image manifest's layers, in order (empty for an index). */
  readonly layers: Descriptor[];
}

export interface GraphNode {
  readonly digest: string;
  readonly size: number;
  readonly mediaType: string;
  readonly kind: 'index' | 'manifest';
  readonly children: Descriptor[];
  readonly config?: Descriptor;
  readonly layers: Descriptor[];
}

export interface Graph {
  readonly root: GraphNode;
  /** Every manifest and index once: parents before children, children in index order. */
  readonly manifests: GraphNode[];
  /** The same, children before parents and the root last: the order to push them in. */
  readonly pushOrder: GraphNode[];
  readonly byDigest: ReadonlyMap<string, GraphNode>;
  /** Configs and layers, each once, in the order first met. */
  readonly blobs: Descriptor[];
  /** Index children `skip` said not to load (a delta's external manifests), each once. */
  readonly skipped: Descriptor[];
}

export interface GraphContext {
  /** Names the graph in errors (the reference). */
  readonly ref: string;
  /** Appended to every refusal: what the person should do about it. */
  readonly advice: string;
}

export interface WalkOptions extends GraphContext {
  /** The bytes of the manifest `d` names, checked against its digest (the walker checks the size). */
  load(d: Descriptor): Promise<Buffer>;
  /** True for a child manifest not to load or walk (a delta's external manifest: the target holds it and what it lists). */
  skip?(d: Descriptor): boolean;
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

/**
 * Checks one manifest's shape and says what it is. `declared` is the media
 * type it was listed or served as (the parent's descriptor, the registry's
 * Content-Type, bundle.json); when the manifest names its own, both must agree.
 */
export function parseManifest(bytes: Buffer, digest: string, declared: string | undefined, ctx: GraphContext): ParsedManifest {
  const fail = (problem: string): never => {
    throw new GraphError(`${ctx.ref}: manifest ${digest} ${problem}; ${ctx.advice}`);
  };
  const deep = jsonDepthProblem(bytes);
  if (deep) fail(deep);
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch {
    // handled below
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) return fail('is not a JSON object');
  const doc = json as Record<string, unknown>;
  if (doc.schemaVersion === 1) fail('is a Docker schema 1 manifest, not supported (deprecated since 2017); use a newer tag');
  if (doc.schemaVersion !== 2) fail(`has schemaVersion ${JSON.stringify(doc.schemaVersion)}; OCI and Docker manifests are schemaVersion 2`);
  if (doc.mediaType !== undefined && typeof doc.mediaType !== 'string') fail('has a mediaType that is not a string');
  const own = doc.mediaType as string | undefined;
  if (own !== undefined && declared !== undefined && own !== declared) fail(`was listed or served as ${declared} but its own mediaType is ${own}`);
  const mediaType = own ?? declared ?? (Array.isArray(doc.manifests) ? OCI_INDEX : OCI_MANIFEST);
  const descriptor = (d: unknown, what: string): Descriptor => {
    const x = d as Partial<Descriptor> | null;
    if (!x || typeof x !== 'object' || Array.isArray(x) || typeof x.digest !== 'string' || !DIGEST_RE.test(x.digest) || !Number.isSafeInteger(x.size) || (x.size as number) < 0 || typeof x.mediaType !== 'string' || x.mediaType === '') {
      return fail(`has ${what} with a bad digest, size or mediaType (${JSON.stringify(d)?.slice(0, 200)}); only sha256 content with a media type is supported`);
    }
    return x as Descriptor;
  };

  if (isIndexType(mediaType)) {
    if ('config' in doc || 'layers' in doc) fail(`is an index (${mediaType}) but carries ${'config' in doc ? '"config"' : '"layers"'}; an index lists manifests only`);
    if (!Array.isArray(doc.manifests)) fail(`is an index (${mediaType}) without a "manifests" list`);
    const list = doc.manifests as unknown[];
    if (list.length > MAX_CHILDREN) fail(`is an index listing ${list.length} manifests, more than the ${MAX_CHILDREN} airlock follows`);
    const children = list.map((c, i) => descriptor(c, `entry ${i} of "manifests"`));
    for (const [i, c] of children.entries()) {
      if (!isIndexType(c.mediaType) && !isManifestType(c.mediaType)) {
        fail(`lists ${c.digest} (entry ${i}) as ${c.mediaType}, which is neither an image manifest nor an index; airlock carries OCI and Docker schema 2 manifests and indexes`);
      }
    }
    return { kind: 'index', mediaType, json: doc, children, layers: [] };
  }
  if (isManifestType(mediaType)) {
    if ('manifests' in doc) fail(`is an image manifest (${mediaType}) but carries a "manifests" list; only an index lists manifests`);
    if (doc.config === undefined) fail(`is an image manifest (${mediaType}) without a "config"`);
    if (doc.layers !== undefined && !Array.isArray(doc.layers)) fail(`is an image manifest (${mediaType}) whose "layers" is not a list`);
    const config = descriptor(doc.config, '"config"');
    const layers = ((doc.layers ?? []) as unknown[]).map((l, i) => descriptor(l, `layer ${i}`));
    return { kind: 'manifest', mediaType, json: doc, children: [], config, layers };
  }
  return fail(`has media type ${mediaType}, which is neither an image manifest nor an index; airlock carries OCI and Docker schema 2 manifests and indexes`);
}

/**
 * Walks the graph under `root` depth first, children in index order, loading
 * each manifest once (an index's new children are loaded together, then
 * walked in order). Throws GraphError at the first rule broken.
 */
export async function walkGraph(root: { digest: string; bytes: Buffer; mediaType?: string }, opts: WalkOptions): Promise<Graph> {
  const ctx: GraphContext = { ref: opts.ref, advice: opts.advice };
  const fail = (problem: string): never => {
    throw new GraphError(`${opts.ref}: ${problem}; ${opts.advice}`);
  };
  /** Loads started and not yet walked. */
  const pending = new Map<string, Promise<Buffer>>([[root.digest, Promise.resolve(root.bytes)]]);
  /** Every digest ever loaded (the MAX_MANIFESTS count). */
  const known = new Set<string>([root.digest]);
  /** Walked manifests and how many levels of nesting they hold below them. */
  const done = new Map<string, { node: GraphNode; height: number }>();
  const onPath = new Set<string>();
  const manifests: GraphNode[] = [];
  const pushOrder: GraphNode[] = [];
  const blobs = new Map<string, Descriptor>();
  const skipped = new Map<string, Descriptor>();

  const visit = async (digest: string, bytes: Buffer, declared: string | undefined, depth: number): Promise<number> => {
    const m = parseManifest(bytes, digest, declared, ctx);
    const node: GraphNode = { digest, size: bytes.length, mediaType: m.mediaType, kind: m.kind, children: m.children, ...(m.config && { config: m.config }), layers: m.layers };
    manifests.push(node);
    onPath.add(digest);
    let height = 0;
    if (m.kind === 'index' && m.children.length > 0) {
      if (depth >= MAX_DEPTH) fail(`index ${digest}, ${depth} levels below the root, lists further manifests; airlock follows manifests at most ${MAX_DEPTH} levels below the root`);
      for (const c of m.children) {
        if (opts.skip?.(c)) {
          if (!skipped.has(c.digest)) skipped.set(c.digest, c);
          continue;
        }
        if (known.has(c.digest)) continue;
        if (known.size >= MAX_MANIFESTS) fail(`index ${digest} takes the graph past ${MAX_MANIFESTS} manifests, more than airlock follows`);
        known.add(c.digest);
        const p = opts.load(c);
        p.catch(() => undefined); // awaited below, unless an earlier child fails first
        pending.set(c.digest, p);
      }
      for (const c of m.children) {
        if (skipped.has(c.digest)) continue;
        if (onPath.has(c.digest)) fail(`index ${digest} lists ${c.digest}, which contains it: the graph has a cycle`);
        let seen = done.get(c.digest);
        if (!seen) {
          const p = pending.get(c.digest);
          if (!p) throw new Error(`graph walk: no load for ${c.digest}`); // cannot happen: every child was started above
          const b = await p;
          pending.delete(c.digest);
          if (b.length !== c.size) fail(`index ${digest} says ${c.digest} is ${c.size} bytes, but it is ${b.length}`);
          await visit(c.digest, b, c.mediaType, depth + 1);
          seen = done.get(c.digest);
        }
        if (!seen) throw new Error(`graph walk: ${c.digest} was not recorded`);
        if (seen.node.size !== c.size) fail(`index ${digest} says ${c.digest} is ${c.size} bytes, but it is ${seen.node.size}`);
        if (seen.node.mediaType !== c.mediaType) fail(`index ${digest} lists ${c.digest} as ${c.mediaType}, but it is ${seen.node.mediaType}`);
        if (depth + 1 + seen.height > MAX_DEPTH) fail(`index ${digest}, ${depth} levels below the root, lists ${c.digest}, which holds manifests ${seen.height} levels further down; airlock follows manifests at most ${MAX_DEPTH} levels below the root`);
        height = Math.max(height, seen.height + 1);
      }
    } else {
      for (const d of m.config ? [m.config, ...m.layers] : m.layers) if (!blobs.has(d.digest)) blobs.set(d.digest, d);
    }
    onPath.delete(digest);
    pushOrder.push(node);
    done.set(digest, { node, height });
    return height;
  };

  await visit(root.digest, root.bytes, root.mediaType, 0);
  const rootNode = done.get(root.digest)?.node;
  if (!rootNode) throw new Error('graph walk: the root was not recorded');
  return { root: rootNode, manifests, pushOrder, byDigest: new Map([...done].map(([d, v]) => [d, v.node])), blobs: [...blobs.values()], skipped: [...skipped.values()] };
}
