import type { Command } from 'commander';
import { CliError } from './errors.js';

export function registerImages(program: Command, run: RunAction): void {
  const images = program.command('images').description('work with image references in Kubernetes YAML');
  images
    .command('extract')
    .description('print the sorted, unique image references in rendered Kubernetes YAML (every image: value, any depth, multi-document)')
    .argument('<file...>', 'rendered YAML files (- for standard input)')
    .option('--as-written', 'print references as written instead of normalized (docker.io/library/…:latest)')
    .action((files: string[], opts: { asWritten?: boolean }) =>
      run('images extract', async () => {
        const [{ extractImages }, { formatProblem }] = await Promise.all([import('../manifest/extract.js'), import('../manifest/problems.js')]);
        const { refs, problems } = await extractImages(files, { normalize: !opts.asWritten });
        for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
        process.stdout.write(refs.map((r) => `${r}\n`).join(''));
        if (problems.length) throw new CliError(`${problems.length} problem${problems.length === 1 ? '' : 's'} above; fix the YAML or the references and run again`, 2);
      }),
    );
}

export type RunAction = (command: string, fn: () => Promise<void>) => Promise<void>;
