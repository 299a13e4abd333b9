import type { Command } from 'commander';
import type { RunAction } from './images.js';
import { notImplemented } from './stub.js';

export function registerVerify(program: Command, run: RunAction): void {
  program
    .command('verify')
    .description('check the signature and every entry of BUNDLE in one streaming pass')
    .argument('<bundle>', 'bundle tarball')
    .option('--pub <file>', 'public key (SPKI PEM)')
    .option('--json', 'print a JSON report on stdout')
    .action(() => run('verify', async () => notImplemented('verify', 4)));
}
