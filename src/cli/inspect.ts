import type { Command } from 'commander';
import type { RunAction } from './images.js';
import { notImplemented } from './stub.js';

export function registerInspect(program: Command, run: RunAction): void {
  program
    .command('inspect')
    .description('list what BUNDLE holds (needs no key; says whether it is signed)')
    .argument('<bundle>', 'bundle tarball')
    .option('--json', 'print JSON on stdout')
    .action(() => run('inspect', async () => notImplemented('inspect', 4)));
}
