import type { Command } from 'commander';
import type { RunAction } from './images.js';

export function registerInspect(program: Command, run: RunAction): void {
  program
    .command('inspect')
    .description('list what BUNDLE holds (needs no key; says whether it is signed)')
    .argument('<bundle>', 'bundle tarball, BUNDLE or BUNDLE.001 of a split one, or - for standard input')
    .option('--json', 'print JSON on stdout')
    .action((bundle: string, opts: { json?: boolean }) =>
      run('inspect', async () => (await import('./actions/inspect.js')).inspectAction(bundle, opts)),
    );
}
