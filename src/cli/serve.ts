import type { Command } from 'commander';
import { isRegistryHost } from '../oci/reference.js';
import { LIMITS_HELP } from '../serve/limits.js';
import { usageError } from './errors.js';
import type { RunAction } from './images.js';

/** `127.0.0.1:5000`, `[::1]:5000`, `:5000` (all addresses is not the default: say 0.0.0.0). */
export function parseListen(flag: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw usageError(`${flag} ${value}: write ADDR:PORT, e.g. 127.0.0.1:5000 or [::1]:5000`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

/** `registry.internal`, `registry.internal:5000`, `10.0.0.5:5000`, `[fd00::5]:5000`: a registry host as a reference names it. */
export function parseRegistryHost(flag: string, value: string): string {
  const port = /:(\d+)$/.exec(value)?.[1];
  if (!isRegistryHost(value) || (port !== undefined && !(Number(port) >= 1 && Number(port) <= 65535))) {
    throw usageError(`${flag} ${value}: write HOST[:PORT] as clients reach the registry, e.g. registry.airgap.internal:5000 or 10.0.0.5:5000 (no scheme, no path)`);
  }
  return value;
}

export interface ServeFlags {
  pub?: string;
  base?: string[];
  listen: string;
  filesListen: string;
  registryHost?: string;
  tlsCert?: string;
  tlsKey?: string;
}

export function registerServe(program: Command, run: RunAction): void {
  program
    .command('serve')
    .description('serve BUNDLE read-only as an OCI registry and a file server, straight from the tarball')
    .argument('<bundle>', 'bundle tarball, or BUNDLE or BUNDLE.001 of a split one')
    .option('--pub <file>', 'public key (SPKI PEM)')
    .option('--base <file...>', 'a delta: bundles that hold what it leaves out, matched by digest (for a delta built against a receipt, the bundle that receipt was written from)')
    .option('--listen <addr:port>', 'registry address', '127.0.0.1:5000')
    .option('--files-listen <addr:port>', 'file server address', '127.0.0.1:8080')
    .option('--registry-host <host[:port]>', 'the registry as clients reach it, named in falco/index.yaml (default: the --listen address; on 0.0.0.0 or [::], this machine\'s host name)')
    .option('--tls-cert <file>', 'TLS certificate (PEM) for both servers')
    .option('--tls-key <file>', 'TLS key (PEM)')
    .addHelpText('after', LIMITS_HELP)
    .action((bundle: string, opts: ServeFlags) =>
      run('serve', async () => (await import('./actions/serve.js')).serveAction(bundle, opts)),
    );
}
