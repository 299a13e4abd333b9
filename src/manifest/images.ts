// Image references in rendered Kubernetes YAML: every `image:` value at any
// depth of every document, like `yq '..|.image? | select(.)'`. A Helm-values
// style map (`image: {registry, repository, tag, digest}`) is composed into
// one reference instead of being printed as YAML. The `status` of an object
// (what `kubectl get -o yaml` adds) is skipped: the spec names the reference.
import { READ_BOUNDS, readRegular } from '../fsx/safe.js';
import { isMap, isScalar, isSeq, type Node } from 'yaml';
import type { Problem } from './problems.js';
import { YamlSource } from './source.js';

export interface FoundImage {
  /** As written (or composed from a values map). */
  readonly value: string;
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export function extractImagesFromText(display: string, text: string): { images: FoundImage[]; problems: Problem[] } {
  const { source, problems } = YamlSource.parse(display, text);
  const images: FoundImage[] = [];
  if (problems.length) return { images, problems };
  const add = (value: string, node: Node) => {
    const pos = source.positionOfOffset(node.range?.[0] ?? 0);
    images.push({ value, file: display, ...pos });
  };
  const visit = (node: unknown): void => {
    if (isMap(node)) {
      const object = isKubernetesObject(node);
      for (const pair of node.items) {
        const key = isScalar(pair.key) ? pair.key.value : undefined;
        // An object's status is what the cluster observed (`kubectl get -o yaml`): the runtime's
        // name for a running image is an image ID or any tag the node holds, and the spec beside it
        // names the reference.
        if (object && key === 'status') continue;
        if (key === 'image') {
          const v = pair.value;
          if (isScalar(v) && typeof v.value === 'string' && v.value.trim() !== '' && !IMAGE_ID.test(v.value.trim())) add(v.value.trim(), v);
          else if (isMap(v)) {
            const composed = composeValuesImage(v);
            if (composed) add(composed, v);
          }
        }
        visit(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) visit(item);
    }
  };
  for (const doc of source.docs) visit(doc.contents);
  return { images, problems };
}

export async function extractImagesFromFile(file: string, display = file): Promise<{ images: FoundImage[]; problems: Problem[] }> {
  let text: string;
  try {
    text = (await readRegular(file, { ...READ_BOUNDS.rendered, follow: true })).toString('utf8');
  } catch (err) {
    return { images: [], problems: [{ file: display, line: 1, col: 1, path: '', message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }] };
  }
  return extractImagesFromText(display, text);
}

/** A local image ID (a config digest), never a reference: `docker.io/library/sha256:…` would be nonsense. */
const IMAGE_ID = /^sha256:[a-f0-9]{64}$/;

/** A Kubernetes object: a map with apiVersion and kind. */
function isKubernetesObject(map: Node): boolean {
  if (!isMap(map)) return false;
  const has = (k: string) => map.items.some((p) => isScalar(p.key) && p.key.value === k);
  return has('apiVersion') && has('kind');
}

/** `{registry: quay.io, repository: org/app, tag: v1}` → `quay.io/org/app:v1`. */
function composeValuesImage(map: Node): string | undefined {
  if (!isMap(map)) return undefined;
  const field = (name: string): string | undefined => {
    const pair = map.items.find((p) => isScalar(p.key) && p.key.value === name);
    if (!pair || !isScalar(pair.value) || pair.value.value === null || pair.value.value === '') return undefined;
    // Keep the text as written: `tag: 1.10` is the tag "1.10", not the number 1.1.
    return pair.value.source ?? String(pair.value.value);
  };
  const repository = field('repository');
  if (!repository) return undefined;
  const registry = field('registry');
  const tag = field('tag');
  const digest = field('digest');
  return `${registry ? `${registry}/` : ''}${repository}${tag ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
}
