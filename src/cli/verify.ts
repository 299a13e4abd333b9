import type { Command } from 'commander';
import type { RunAction } from './images.js';
import { parseJobs } from './options.js';

export interface VerifyFlags {
  pub?: string;
  json?: boolean;
  signatures?: boolean;
  policy?: string;
  trustedRoot?: string;
  jobs?: string;
}

export function registerVerify(program: Command, run: RunAction): void {
  program
    .command('verify')
    .description('check the signature and every entry of BUNDLE in one streaming pass')
    .argument('<bundle>', 'bundle tarball, BUNDLE or BUNDLE.001 of a split one, or - for standard input')
    .option('--pub <file>', 'public key (SPKI PEM from airlock keygen)')
    .option('--signatures', 'also check the publishers\' signatures carried inside against the carried signature policy (or --policy)')
    .option('--policy <file>', 'with --signatures: check against this signature policy instead of the carried one')
    .option('--trusted-root <file>', 'with --signatures: Sigstore trusted_root.json to check keyless signatures against, instead of the policy\'s')
    .option('--jobs <n>', 'threads that hash entries (default: the cores, at most 8); 1 hashes on one core')
    .option('--json', 'print a JSON report on stdout')
    .action((bundle: string, opts: VerifyFlags) =>
      run('verify', async () => {
        // The hashing threads start while the action's modules load (src/bundle/hashpool.ts startEarly says why).
        const jobs = validJobs(opts.jobs);
        const pool = jobs === false ? undefined : await (await import('../bundle/hashpool.js')).startEarly(bundle, jobs);
        return (await import('./actions/verify.js')).verifyAction(bundle, opts, pool);
      }),
    );
}

/** --jobs when it is valid (the action reports it when not: false here). */
function validJobs(value: string | undefined): number | undefined | false {
  try {
    return parseJobs(value);
  } catch {
    return false;
  }
}
