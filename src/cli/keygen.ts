import type { Command } from 'commander';
import { keygen } from '../sign/keys.js';
import { CliError } from './errors.js';
import type { RunAction } from './images.js';

export function registerKeygen(program: Command, run: RunAction): void {
  program
    .command('keygen')
    .description('write an ECDSA P-256 signing key pair: PREFIX.key (PKCS#8 PEM, encrypted when AIRLOCK_KEY_PASSWORD is set) and PREFIX.pub')
    .option('--out <prefix>', 'file name prefix', 'airlock')
    .action((opts: { out: string }) =>
      run('keygen', async () => {
        try {
          const k = await keygen(opts.out, process.env.AIRLOCK_KEY_PASSWORD || undefined);
          process.stdout.write(`wrote ${k.keyFile} (private${process.env.AIRLOCK_KEY_PASSWORD ? ', encrypted' : ''}) and ${k.pubFile}\nfingerprint ${k.fingerprint}\n`);
        } catch (err) {
          throw new CliError((err as Error).message, 1);
        }
      }),
    );
}
