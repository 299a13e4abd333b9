import type { Command } from 'commander';
import type { RunAction } from './images.js';

export function registerVerify(program: Command, run: RunAction): void {
  program
    .command('verify')
    .description('check the signature and every entry of BUNDLE in one streaming pass')
    .argument('<bundle>', 'bundle tarball, BUNDLE or BUNDLE.001 of a split one, or - for standard input')
    .option('--pub <file>', 'public key (SPKI PEM from airlock keygen)')
    .option('--json', 'print a JSON report on stdout')
    .action((bundle: string, opts: { pub?: string; json?: boolean }) =>
      run('verify', async () => (await import('./actions/verify.js')).verifyAction(bundle, opts)),
    );
}
