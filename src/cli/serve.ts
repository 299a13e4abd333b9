import type { Command } from 'commander';
import type { RunAction } from './images.js';
import { notImplemented } from './stub.js';

export function registerServe(program: Command, run: RunAction): void {
  program
    .command('serve')
    .description('serve BUNDLE read-only as an OCI registry and a file server, straight from the tarball')
    .argument('<bundle>', 'bundle tarball')
    .option('--pub <file>', 'public key (SPKI PEM)')
    .option('--listen <addr:port>', 'registry address', '127.0.0.1:5000')
    .option('--files-listen <addr:port>', 'file server address', '127.0.0.1:8080')
    .option('--tls-cert <file>', 'TLS certificate (PEM)')
    .option('--tls-key <file>', 'TLS key (PEM)')
    .action(() => run('serve', async () => notImplemented('serve', 5)));
}
