import type { Command } from 'commander';
import type { RunAction } from './images.js';
import { notImplemented } from './stub.js';

export function registerKeygen(program: Command, run: RunAction): void {
  program
    .command('keygen')
    .description('write an ECDSA P-256 signing key pair: PREFIX.key (PKCS#8 PEM, encrypted when AIRLOCK_KEY_PASSWORD is set) and PREFIX.pub')
    .option('--out <prefix>', 'file name prefix', 'airlock')
    .action(() => run('keygen', async () => notImplemented('keygen', 3)));
}
