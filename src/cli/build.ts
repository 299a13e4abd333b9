import type { Command } from 'commander';
import { loadManifest } from '../manifest/load.js';
import { parseSetArgs } from '../manifest/vars.js';
import { failure, usageError } from './errors.js';
import type { RunAction } from './images.js';

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerBuild(program: Command, run: RunAction): void {
  program
    .command('build')
    .description('resolve and download everything in MANIFEST and write the signed bundle (and BUNDLE.sha256)')
    .argument('<manifest>', 'airlock manifest (YAML)')
    .option('-o, --output <bundle>', 'bundle file to write')
    .option('--key <file>', 'signing key (PKCS#8 PEM from airlock keygen)')
    .option('--cache <dir>', 'content cache folder (default $XDG_CACHE_HOME/airlock)')
    .option('--concurrency <n>', 'parallel downloads')
    .option('--set <name=value>', 'override a manifest variable (repeatable)', collect, [])
    .option('--platform <list>', 'platforms to keep, comma separated (overrides spec.platforms)')
    .option('--username <user>', 'registry user name')
    .option('--password-stdin', 'read the registry password from standard input')
    .option('--dry-run', 'resolve every reference and print items and sizes without downloading')
    .option('--json', 'print a JSON summary on stdout')
    .action((manifest: string, opts: { set: string[] }) =>
      run('build', async () => {
        let set: Record<string, string>;
        try {
          set = parseSetArgs(opts.set);
        } catch (err) {
          throw usageError((err as Error).message);
        }
        const plan = await loadManifest(manifest, { set });
        const count = (kind: string) => plan.items.filter((i) => i.kind === kind).length;
        throw failure(
          `${manifest} is valid (${count('image')} images, ${count('artifact')} artifacts, ${count('file')} files), ` +
            'but downloading and writing the bundle is not implemented yet (tracked in issue #3)',
        );
      }),
    );
}
