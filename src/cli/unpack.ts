import type { Command } from 'commander';
import type { RunAction } from './images.js';
import { notImplemented } from './stub.js';

export function registerUnpack(program: Command, run: RunAction): void {
  program
    .command('unpack')
    .description('verify BUNDLE while reading, push images and artifacts to the registry, put the files, write the config')
    .argument('<bundle>', 'bundle tarball')
    .option('--pub <file>', 'public key (SPKI PEM)')
    .option('--registry <host[:port][/prefix]>', 'private registry to push to')
    .option('--files-dir <dir>', 'folder served by the file server')
    .option('--files-url <url>', 'file server URL taking HTTP PUT (e.g. nginx WebDAV)')
    .option('--layout <layout>', 'flat (REGISTRY/PATH) or host (REGISTRY/HOST/PATH)', 'flat')
    .option('--fileserver-url <url>', 'file server URL as the cluster sees it (default --files-url)')
    .option('--emit-config <dir>', 'write Welkin, containerd and Kubespray config here')
    .option('--plain-http', 'speak plain HTTP to the registry')
    .option('--insecure', 'HTTPS without certificate verification')
    .option('--ca-file <file>', 'CA bundle (PEM) for the registry')
    .option('--username <user>', 'registry user name')
    .option('--password-stdin', 'read the registry password from standard input')
    .option('--concurrency <n>', 'parallel uploads')
    .option('--json', 'print a JSON report on stdout')
    .action(() => run('unpack', async () => notImplemented('unpack', 4)));
}
