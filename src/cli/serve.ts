import type { Command } from 'commander';
import { printable } from '../util/printable.js';
import { BundleError, BundleReader } from '../bundle/reader.js';
import { LIMITS_HELP, limitsFromEnv } from '../serve/limits.js';
import { serve } from '../serve/server.js';
import { KeyError, loadPublicKey } from '../sign/keys.js';
import { failure, usageError } from './errors.js';
import type { RunAction } from './images.js';

/** `127.0.0.1:5000`, `[::1]:5000`, `:5000` (all addresses is not the default: say 0.0.0.0). */
export function parseListen(flag: string, value: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw usageError(`${flag} ${value}: write ADDR:PORT, e.g. 127.0.0.1:5000 or [::1]:5000`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

export function registerServe(program: Command, run: RunAction): void {
  program
    .command('serve')
    .description('serve BUNDLE read-only as an OCI registry and a file server, straight from the tarball')
    .argument('<bundle>', 'bundle tarball')
    .option('--pub <file>', 'public key (SPKI PEM)')
    .option('--listen <addr:port>', 'registry address', '127.0.0.1:5000')
    .option('--files-listen <addr:port>', 'file server address', '127.0.0.1:8080')
    .option('--tls-cert <file>', 'TLS certificate (PEM) for both servers')
    .option('--tls-key <file>', 'TLS key (PEM)')
    .addHelpText('after', LIMITS_HELP)
    .action((bundle: string, opts: { pub?: string; listen: string; filesListen: string; tlsCert?: string; tlsKey?: string }) =>
      run('serve', async () => {
        if (!opts.pub) throw usageError('give the public key with --pub PUB');
        if (!opts.tlsCert !== !opts.tlsKey) throw usageError('give both --tls-cert and --tls-key, or neither');
        const listen = parseListen('--listen', opts.listen);
        const filesListen = parseListen('--files-listen', opts.filesListen);
        const limits = limitsFromEnv(process.env, usageError);
        let reader: BundleReader;
        try {
          reader = await BundleReader.open(bundle, { pub: await loadPublicKey(opts.pub) });
        } catch (err) {
          if (err instanceof BundleError || err instanceof KeyError) throw failure(`${bundle}: ${err.message}`);
          throw err;
        }
        if (reader.index.bases?.length) {
          // A delta leaves what its bases hold out of the tar: serving it alone would offer images it cannot complete.
          const bases = reader.index.bases.map((b) => `${b.kind} ${b.name} ${b.version}`).join(', ');
          await reader.close();
          throw failure(printable(`${bundle} is a delta: what ${bases} holds is not in it, and serve --base (serving it with its bases) is not available yet; unpack it into the registry and file server that hold its bases, or serve a full bundle`));
        }
        const log = (line: string) => process.stderr.write(`${line}\n`);
        let serving;
        try {
          serving = await serve({ reader, listen, filesListen, log, limits, ...(opts.tlsCert && opts.tlsKey && { tls: { cert: opts.tlsCert, key: opts.tlsKey } }) });
        } catch (err) {
          await reader.close();
          if (err instanceof BundleError) throw failure(`${bundle}: ${err.message}`);
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EADDRINUSE' || code === 'EACCES') throw failure(`cannot listen: ${(err as Error).message}; choose another --listen/--files-listen`);
          throw err;
        }
        const i = reader.index;
        process.stdout.write(`registry ${serving.registryUrl}\nfiles ${serving.filesUrl}\n`);
        log(`serving ${bundle} (${i.name} ${i.version}, ${i.images.length} images and artifacts, ${i.files.length} files) read-only; Ctrl-C stops`);
        await new Promise<void>((resolve) => {
          const stop = (sig: string) => {
            log(`${sig}: finishing open requests and stopping`);
            void serving.close().then(() => reader.close()).then(resolve);
          };
          process.once('SIGINT', () => stop('SIGINT'));
          process.once('SIGTERM', () => stop('SIGTERM'));
        });
      }),
    );
}
