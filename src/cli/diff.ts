import type { Command } from 'commander';
import type { RunAction } from './images.js';

export function registerDiff(program: Command, run: RunAction): void {
  program
    .command('diff')
    .description('what NEW adds, removes and changes against OLD (each a bundle, its bundle.json or a receipt), and the bytes NEW carries that OLD does not hold')
    .argument('<old>', 'bundle tarball, bundle.json or receipt')
    .argument('<new>', 'bundle tarball, bundle.json or receipt')
    .option('--json', 'print JSON on stdout')
    .action((oldFile: string, newFile: string, opts: { json?: boolean }) =>
      run('diff', async () => (await import('./actions/diff.js')).diffAction(oldFile, newFile, opts)),
    );
}
