import type { Command } from 'commander';
import type { RunAction } from './images.js';
import type { TargetFlags } from './target.js';

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** The target flags prune shares with unpack (same meaning, same checks), and its own. */
export interface PruneFlags extends Pick<TargetFlags, 'registry' | 'filesDir' | 'filesUrl' | 'plainHttp' | 'insecure' | 'caFile' | 'username' | 'passwordStdin' | 'concurrency' | 'receipt' | 'json'> {
  from?: string[];
  keep?: string[];
  apply?: boolean;
}

export function registerPrune(program: Command, run: RunAction): void {
  program
    .command('prune')
    .description('remove from the registry and file server what the --from receipts list and no --keep receipt lists; a dry run unless --apply')
    .option('--registry <host[:port][/prefix]>', 'the private registry the receipts were unpacked into')
    .option('--from <receipt...>', 'receipts of releases to remove (one or more; repeatable)', (v: string, p?: string[]) => collect(v, p))
    .option('--keep <receipt...>', 'receipts of releases to keep: nothing they list is touched (one or more; repeatable)', (v: string, p?: string[]) => collect(v, p))
    .option('--files-dir <dir>', 'folder served by the file server: delete files there too')
    .option('--files-url <url>', 'file server URL taking HTTP DELETE (e.g. nginx WebDAV): delete files there too')
    .option('--plain-http', 'speak plain HTTP to the registry')
    .option('--insecure', 'HTTPS without certificate verification')
    .option('--ca-file <file>', 'CA bundle (PEM) for the registry')
    .option('--username <user>', 'registry user name (with --password-stdin)')
    .option('--password-stdin', 'read the registry password from standard input')
    .option('--concurrency <n>', 'parallel lookups (default 8)')
    .option('--apply', 'delete (without it: print the plan only)')
    .option('--receipt <file>', 'with --apply: write the prune receipt here (default prune-TIME.json beside the first --from receipt)')
    .option('--json', 'print a JSON report on stdout')
    .action((opts: PruneFlags) => run('prune', async () => (await import('./actions/prune.js')).pruneAction(opts)));
}
