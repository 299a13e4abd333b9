// skopeo as a hermetic, independent client: its own policy, no system registries.conf or auth file.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { makeTempDir } from './proc.js';
import { requireBinary, run, type RunResult } from './tools.js';

let state: { policy: string; env: NodeJS.ProcessEnv } | undefined;

async function setup(): Promise<{ policy: string; env: NodeJS.ProcessEnv }> {
  if (!state) {
    const dir = await makeTempDir('airlock-skopeo-');
    const policy = path.join(dir, 'policy.json');
    writeFileSync(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    writeFileSync(path.join(dir, 'registries.conf'), '');
    state = { policy, env: { CONTAINERS_REGISTRIES_CONF: path.join(dir, 'registries.conf'), REGISTRY_AUTH_FILE: path.join(dir, 'auth.json'), TMPDIR: dir } };
  }
  return state;
}

export async function skopeo(args: string[]): Promise<RunResult> {
  const s = await setup();
  return run(requireBinary('skopeo'), ['--policy', s.policy, ...args], { env: s.env });
}

export async function skopeoOk(args: string[]): Promise<Buffer> {
  const r = await skopeo(args);
  if (r.code !== 0) throw new Error(`skopeo ${args.join(' ')} failed (${r.code}):\n${r.stderr}`);
  return r.stdout;
}
