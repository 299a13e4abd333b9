import type { Command } from 'commander';
import { lstat } from 'node:fs/promises';
import path from 'node:path';
import { CliError } from './errors.js';
import type { RunAction } from './images.js';

export function registerKeygen(program: Command, run: RunAction): void {
  program
    .command('keygen')
    .description('write an ECDSA P-256 signing key pair: PREFIX.key (PKCS#8 PEM, mode 0600, encrypted when AIRLOCK_KEY_PASSWORD is set) and PREFIX.pub')
    .option('--out <prefix>', 'file name prefix', 'airlock')
    .action((opts: { out: string }) =>
      run('keygen', async () => {
        const { keygen } = await import('../sign/keys.js');
        let k: Awaited<ReturnType<typeof keygen>>;
        try {
          k = await keygen(opts.out, process.env.AIRLOCK_KEY_PASSWORD || undefined);
        } catch (err) {
          throw new CliError((err as Error).message, 1);
        }
        process.stdout.write(`wrote ${k.keyFile} (private${process.env.AIRLOCK_KEY_PASSWORD ? ', encrypted' : ''}) and ${k.pubFile}\nfingerprint ${k.fingerprint}\n`);
        const tree = await gitWorkTree(path.dirname(path.resolve(k.keyFile)));
        if (tree !== undefined) {
          process.stderr.write(
            `airlock keygen: warning: the private key ${k.keyFile} is inside the git work tree ${tree}; ` +
              'do not commit it (add *.key to .gitignore) and keep it somewhere safer\n',
          );
        }
      }),
    );
}

/** The nearest folder at or above `dir` holding a `.git` (a folder, or the file a linked work tree or submodule has). */
async function gitWorkTree(dir: string): Promise<string | undefined> {
  for (let d = dir; ; d = path.dirname(d)) {
    try {
      await lstat(path.join(d, '.git'));
      return d;
    } catch {
      // not here; look further up
    }
    if (path.dirname(d) === d) return undefined;
  }
}
