// falcoctl's index file (a YAML list of entries) pointing at the private
// registry: one entry per Falco rules or plugin artifact, without the cosign
// `signature` block (verifying it needs the internet).
import { parseReference } from '../oci/reference.js';
import type { BundleIndex } from '../bundle/format.js';
import { targetRepository, type Layout, type TargetRegistry } from '../bundle/targets.js';

export interface FalcoIndexEntry {
  name: string;
  type: 'rulesfile' | 'plugin';
  registry: string;
  repository: string;
  description: string;
  home: string;
  keywords: string[];
  license: string;
  maintainers: Array<{ email: string; name: string }>;
  sources: string[];
}

export function falcoIndexEntries(index: BundleIndex, target: TargetRegistry, layout: Layout): FalcoIndexEntry[] {
  const entries: FalcoIndexEntry[] = [];
  const names = new Set<string>();
  for (const img of index.images) {
    if (img.role !== 'falco-rules' && img.role !== 'falco-plugin') continue;
    const ref = parseReference(img.ref);
    const parts = ref.repository.split('/');
    let name = parts.at(-1) ?? ref.repository;
    // Upstream keeps plugin rules under .../ruleset/<name>: those are "<name>-rules".
    if (img.role === 'falco-rules' && parts.at(-2) === 'ruleset') name = `${name}-rules`;
    if (names.has(name)) name = parts.slice(-2).join('-');
    names.add(name);
    entries.push({
      name,
      type: img.role === 'falco-rules' ? 'rulesfile' : 'plugin',
      registry: target.host,
      repository: targetRepository(ref, target, layout),
      description: `${img.ref}, carried into the air gap by airlock`,
      home: `https://${ref.registry}/${ref.repository}`,
      keywords: ['airlock'],
      license: '',
      maintainers: [],
      sources: [img.ref],
    });
  }
  return entries;
}

export async function falcoIndexYaml(entries: FalcoIndexEntry[]): Promise<Buffer> {
  // yaml is loaded here, not at start: unpack and serve need it only when the bundle has Falco artifacts.
  const { stringify } = await import('yaml');
  return Buffer.from(`# falcoctl index written by airlock unpack: artifacts in the private registry.\n${stringify(entries)}`);
}
