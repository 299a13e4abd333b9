// Kubespray's real tables (kubernetes-sigs/kubespray, copied unchanged) live
// outside this repository, next to the project's checkout (../shared/fixtures
// /kubespray, or a level higher for a worktree); AIRLOCK_KUBESPRAY_FIXTURES
// names them elsewhere. Tests that need them skip, saying so, when absent.
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runAirlock } from './cli.js';

const REPO = path.resolve(import.meta.dirname, '..', '..');

export const KUBESPRAY_FIXTURES: string | undefined = [
  process.env.AIRLOCK_KUBESPRAY_FIXTURES,
  path.join(REPO, '..', 'shared', 'fixtures', 'kubespray'),
  path.join(REPO, '..', '..', 'shared', 'fixtures', 'kubespray'),
].find((d): d is string => d !== undefined && existsSync(path.join(d, 'v2.31.0', 'roles', 'kubespray_defaults')));

export const KUBESPRAY_SKIP = KUBESPRAY_FIXTURES
  ? false
  : 'Kubespray fixtures not found (../shared/fixtures/kubespray; set AIRLOCK_KUBESPRAY_FIXTURES to a folder holding v2.31.0/ and v2.28.1/ with roles/kubespray_defaults of those tags)';

export function kubesprayTag(tag: string): string {
  if (!KUBESPRAY_FIXTURES) throw new Error('no Kubespray fixtures');
  return path.join(KUBESPRAY_FIXTURES, tag);
}

export interface ListedJson {
  kubespray?: { version: string; kubeVersion?: string; archs: string[] };
  items: Array<{ kind: string; ref?: string; url?: string; path?: string; checksum?: Record<string, string> | string; role?: string; written?: string[]; from: string[] }>;
}

/** Writes a manifest with spec.kubespray (plus `extra` YAML under spec) into `dir` and runs build --list --json. */
export async function kubesprayList(
  dir: string,
  name: string,
  ks: { version: string; source: string; archs?: string[]; kubeVersion?: string; vars?: string[] },
  extra = '',
): Promise<{ code: number | null; json?: ListedJson; stderr: string }> {
  const manifest = path.join(dir, `${name}.yaml`);
  const lines = [
    'apiVersion: airlock/v1',
    'kind: Bundle',
    `metadata: {name: ${name}}`,
    'spec:',
    '  kubespray:',
    `    version: ${ks.version}`,
    `    source: ${JSON.stringify(ks.source)}`,
    ...(ks.archs ? [`    archs: [${ks.archs.join(', ')}]`] : []),
    ...(ks.kubeVersion ? [`    kubeVersion: "${ks.kubeVersion}"`] : []),
    ...(ks.vars ? [`    vars: [${ks.vars.map((v) => JSON.stringify(v)).join(', ')}]`] : []),
    extra,
  ];
  await writeFile(manifest, lines.join('\n') + '\n');
  const r = await runAirlock(['build', manifest, '--list', '--json']);
  return { code: r.code, stderr: r.stderr, ...(r.code === 0 && { json: JSON.parse(r.stdout) as ListedJson }) };
}
