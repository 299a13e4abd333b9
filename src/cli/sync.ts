import type { Command } from 'commander';
import type { RunAction } from './images.js';
import { targetOptions, type TargetFlags } from './target.js';

const collect = (value: string, previous: string[]) => [...previous, value];

export interface SyncFlags extends TargetFlags {
  cache?: string;
  set: string[];
  platform?: string;
  /** commander's --no-attached: false when given. */
  attached: boolean;
}

export function registerSync(program: Command, run: RunAction): void {
  const cmd = program
    .command('sync')
    .description('what build then unpack would do, with no bundle: fetch from upstream only what the registry and file server lack, and push it')
    .argument('<manifest>', 'airlock manifest (YAML)');
  targetOptions(cmd, 'after a successful sync, write a JSON receipt of what the target holds (for diff and as --base of a delta build)')
    .option('--cache <dir>', 'content cache folder (default $XDG_CACHE_HOME/airlock)')
    .option('--set <name=value>', 'override a manifest variable (repeatable)', collect, [])
    .option('--platform <list>', 'platforms to keep for images, comma separated (overrides the manifest)')
    .option('--no-attached', 'carry no signatures, attestations or SBOMs: none are looked for upstream')
    .action((manifest: string, opts: SyncFlags) => run('sync', async () => (await import('./actions/sync.js')).syncAction(manifest, opts)));
}
