// How long the main thread of `airlock verify --jobs 1` waits during the
// hashing pass: a CPU profile (node --cpu-prof) of the verify, and of its
// samples between the first and the last one inside the pass (BundleReader's
// hashHere on the stack), the share that is `(idle)`: the thread waiting for a
// read. Issue 25 asks for under 5%.
//
//   node --import tsx scripts/verify-idle.ts BUNDLE PUB [more verify args]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AIRLOCK } from '../test/support/cli.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string };
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export function idleInPass(profile: Profile, marker = 'hashHere'): { passMs: number; idleMs: number } {
  const parent = new Map<number, number>();
  const byId = new Map<number, ProfileNode>();
  for (const n of profile.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const inPass = new Map<number, boolean>();
  const under = (id: number): boolean => {
    const known = inPass.get(id);
    if (known !== undefined) return known;
    const p = parent.get(id);
    const v = byId.get(id)?.callFrame.functionName === marker || (p !== undefined && under(p));
    inPass.set(id, v);
    return v;
  };
  const times: number[] = [];
  let t = 0;
  for (const d of profile.timeDeltas) times.push((t += d));
  const first = profile.samples.findIndex((s) => under(s));
  let last = -1;
  for (let i = profile.samples.length - 1; i >= 0; i--) {
    if (under(profile.samples[i] as number)) {
      last = i;
      break;
    }
  }
  if (first < 0) return { passMs: 0, idleMs: 0 };
  let idle = 0;
  for (let i = first + 1; i <= last; i++) {
    if (byId.get(profile.samples[i] as number)?.callFrame.functionName === '(idle)') idle += (times[i] as number) - (times[i - 1] as number);
  }
  return { passMs: ((times[last] as number) - (times[first] as number)) / 1000, idleMs: idle / 1000 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [bundle, pub, ...rest] = process.argv.slice(2);
  if (!bundle || !pub) throw new Error('usage: verify-idle.ts BUNDLE PUB [verify args]');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'airlock-prof-'));
  try {
    execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, '--cpu-prof-interval=200', AIRLOCK, 'verify', bundle, '--pub', pub, '--jobs', '1', ...rest], { stdio: ['ignore', 'ignore', 'inherit'] });
    const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('no profile written');
    const { passMs, idleMs } = idleInPass(JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as Profile);
    console.log(`${path.basename(bundle)}: pass ${passMs.toFixed(0)} ms, main thread idle ${idleMs.toFixed(1)} ms (${((100 * idleMs) / Math.max(passMs, 1e-9)).toFixed(1)}%)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
