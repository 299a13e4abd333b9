// The target side of the command line, shared by unpack and sync: the
// registry and file server flags as --help lists them. Checking them and what
// is written once the target holds everything is in actions/target.ts, loaded
// when a command runs.
import type { Command } from 'commander';

export interface TargetFlags {
  registry?: string;
  filesDir?: string;
  filesUrl?: string;
  layout: string;
  fileserverUrl?: string;
  emitConfig?: string;
  plainHttp?: boolean;
  insecure?: boolean;
  caFile?: string;
  username?: string;
  passwordStdin?: boolean;
  concurrency?: string;
  createProjects?: boolean;
  json?: boolean;
  maxDbAge?: string;
  receipt?: string;
  report?: string;
  referrersFallback?: string;
  policy?: string;
  trustedRoot?: string;
}

/** The target's flags, in the order `--help` lists them. */
export function targetOptions(cmd: Command, receiptHelp: string): Command {
  return cmd
    .option('--registry <host[:port][/prefix]>', 'private registry to push to (a prefix is e.g. a Harbor project)')
    .option('--files-dir <dir>', 'folder served by the file server')
    .option('--files-url <url>', 'file server URL taking HTTP PUT (e.g. nginx WebDAV)')
    .option('--layout <layout>', 'flat (REGISTRY/PATH) or host (REGISTRY/HOST/PATH)', 'flat')
    .option('--fileserver-url <url>', 'file server URL as the cluster sees it, for the emitted config (default --files-url)')
    .option('--emit-config <dir>', 'write Welkin, containerd and Kubespray config here')
    .option('--receipt <file>', receiptHelp)
    .option('--report <dir>', 'write report.html and sbom.cdx.json (CycloneDX) of what was put inside into this folder: the evidence for the change board')
    .option('--plain-http', 'speak plain HTTP to the registry')
    .option('--insecure', 'HTTPS without certificate verification')
    .option('--ca-file <file>', 'CA bundle (PEM) for the registry')
    .option('--username <user>', 'registry user name (with --password-stdin)')
    .option('--password-stdin', 'read the registry password from standard input')
    .option('--concurrency <n>', 'parallel uploads (default 8)')
    .option('--create-projects', 'on Harbor: create the projects the images land in when they are missing')
    .option('--referrers-fallback <when>', 'write the sha256-<digest> index of attached referrers: auto (when the registry has no referrers API), always, never', 'auto')
    .option('--policy <file>', 'check the publishers\' signatures against this signature policy instead of the one the bundle carries')
    .option('--trusted-root <file>', 'Sigstore trusted_root.json to check keyless signatures against, instead of the policy\'s')
    .option('--max-db-age <age>', 'warn when a Trivy DB is older than this: 7d, 36h; 0 turns the check off (default 7d)')
    .option('--json', 'print a JSON report on stdout');
}
