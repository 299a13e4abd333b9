import type { Command } from 'commander';
import type { RunAction } from './images.js';
import { targetOptions, type TargetFlags } from './target.js';

export interface UnpackFlags extends TargetFlags {
  pub?: string;
  countersign?: string;
  jobs?: string;
}

export function registerUnpack(program: Command, run: RunAction): void {
  const cmd = program
    .command('unpack')
    .description('verify BUNDLE while reading, push images and artifacts to the registry, put the files, write the config')
    .argument('<bundle>', 'bundle tarball, or BUNDLE or BUNDLE.001 of a split one')
    .option('--pub <file>', 'public key (SPKI PEM)')
    .option('--countersign <key>', 'sign every image whose publisher signatures counted with this inside key (PKCS#8 PEM from airlock keygen; AIRLOCK_KEY_PASSWORD if encrypted), as cosign does: a layer added to its sha256-<digest>.sig')
    .option('--jobs <n>', 'threads that hash entries while verifying (default: the cores, at most 8); 1 hashes on one core');
  targetOptions(cmd, 'after a successful unpack, write a JSON receipt of what the target holds from this bundle (for diff and deltas)').action((bundle: string, opts: UnpackFlags) =>
    run('unpack', async () => (await import('./actions/unpack.js')).unpackAction(bundle, opts)),
  );
}
