import type { Command } from 'commander';
import type { RunAction } from './images.js';

const collect = (value: string, previous: string[]) => [...previous, value];

export interface BuildFlags {
  output?: string;
  key?: string;
  cache?: string;
  concurrency?: string;
  set: string[];
  platform?: string;
  username?: string;
  passwordStdin?: boolean;
  authHost: string[];
  dryRun?: boolean;
  json?: boolean;
  maxDbAge?: string;
  base: string[];
  splitSize?: string;
  /** commander's --no-attached: false when given. */
  attached: boolean;
  policy?: string;
  list?: boolean;
}

export function registerBuild(program: Command, run: RunAction): void {
  program
    .command('build')
    .description('resolve and download everything in MANIFEST and write the signed bundle (and BUNDLE.sha256)')
    .argument('<manifest>', 'airlock manifest (YAML)')
    .option('-o, --output <bundle>', 'bundle file to write')
    .option('--key <file>', 'signing key (PKCS#8 PEM from airlock keygen; AIRLOCK_KEY_PASSWORD if encrypted)')
    .option('--cache <dir>', 'content cache folder (default $XDG_CACHE_HOME/airlock)')
    .option('--concurrency <n>', 'parallel downloads (default 8)')
    .option('--set <name=value>', 'override a manifest variable (repeatable)', collect, [])
    .option('--platform <list>', 'platforms to keep for images, comma separated (overrides the manifest)')
    .option('--username <user>', 'registry user name (with --password-stdin)')
    .option('--password-stdin', 'read the registry password from standard input')
    .option('--auth-host <host>', 'a registry host that --username/--password-stdin are for (repeatable; required with --username)', collect, [])
    .option('--max-db-age <age>', 'warn when a Trivy DB is older than this: 7d, 36h; 0 turns the check off (default 7d)')
    .option('--base <file>', 'a delta: leave out what this earlier bundle, its bundle.json or a receipt holds (repeatable)', collect, [])
    .option('--split-size <size>', 'write the bundle as parts BUNDLE.001, BUNDLE.002, … of this size (700M, 4G; K/M/G are powers of 1024) and no BUNDLE')
    .option('--no-attached', 'carry no signatures, attestations or SBOMs: none are looked for upstream (default: every image carries what is attached to it)')
    .option('--policy <file>', 'signature policy: check every image\'s publisher signatures, record the verdicts in the bundle, stop on an enforce rule with no signature that counts (default: spec.policy)')
    .option('--dry-run', 'resolve every reference and print items and sizes without downloading blobs')
    .option('--list', 'print every item the manifest expands to (files with URL, checksum and landing path; presets and Kubespray included) and exit; no network access')
    .option('--json', 'print a JSON summary on stdout')
    .action((manifest: string, opts: BuildFlags) =>
      run('build', async () => (await import('./actions/build.js')).buildAction(manifest, opts)),
    );
}
