import type { Command } from 'commander';
import { printable } from '../util/printable.js';
import { BundleError, BundleReader } from '../bundle/reader.js';
import { formatBytes } from '../progress/reporter.js';
import { LIMITS_HELP, limitsFromEnv } from '../serve/limits.js';
import { serve } from '../serve/server.js';
import { openBases } from '../serve/sources.js';
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

/** Which parts of a split bundle serve reads (each is opened when a request needs it). */
function partsLine(r: BundleReader): string {
  const names = r.parts.map((p) => p.name);
  const shown = names.length <= 8 ? names.join(', ') : `${names.slice(0, 3).join(', ')}, … ${names.slice(-2).join(', ')}`;
  const bytes = r.parts.reduce((n, p) => n + p.size, 0);
  return `${r.path}: a split bundle, ${names.length} parts read in order as one (${formatBytes(bytes)}): ${shown}`;
}

export function registerServe(program: Command, run: RunAction): void {
  program
    .command('serve')
    .description('serve BUNDLE read-only as an OCI registry and a file server, straight from the tarball')
    .argument('<bundle>', 'bundle tarball, or BUNDLE or BUNDLE.001 of a split one')
    .option('--pub <file>', 'public key (SPKI PEM)')
    .option('--base <file...>', 'a delta: the base bundles it was built against (what it leaves out is served from them)')
    .option('--listen <addr:port>', 'registry address', '127.0.0.1:5000')
    .option('--files-listen <addr:port>', 'file server address', '127.0.0.1:8080')
    .option('--tls-cert <file>', 'TLS certificate (PEM) for both servers')
    .option('--tls-key <file>', 'TLS key (PEM)')
    .addHelpText('after', LIMITS_HELP)
    .action((bundle: string, opts: { pub?: string; base?: string[]; listen: string; filesListen: string; tlsCert?: string; tlsKey?: string }) =>
      run('serve', async () => {
        if (!opts.pub) throw usageError('give the public key with --pub PUB');
        if (!opts.tlsCert !== !opts.tlsKey) throw usageError('give both --tls-cert and --tls-key, or neither');
        const listen = parseListen('--listen', opts.listen);
        const filesListen = parseListen('--files-listen', opts.filesListen);
        const limits = limitsFromEnv(process.env, usageError);
        let reader: BundleReader;
        let bases: BundleReader[] = [];
        try {
          const key = await loadPublicKey(opts.pub);
          reader = await BundleReader.open(bundle, { pub: key });
          try {
            // A delta leaves what its bases hold out of the tar: it is served only together with them.
            bases = await openBases(reader, opts.base ?? [], key);
          } catch (err) {
            await reader.close();
            throw err;
          }
        } catch (err) {
          if (err instanceof BundleError || err instanceof KeyError) throw failure(printable(`${bundle}: ${err.message}`));
          throw err;
        }
        const closeAll = () => Promise.all([reader, ...bases].map((r) => r.close()));
        const log = (line: string) => process.stderr.write(`${line}\n`);
        for (const r of [reader, ...bases]) if (r.parts.length > 1) log(printable(partsLine(r)));
        let serving;
        try {
          serving = await serve({ reader, bases, listen, filesListen, log, limits, ...(opts.tlsCert && opts.tlsKey && { tls: { cert: opts.tlsCert, key: opts.tlsKey } }) });
        } catch (err) {
          await closeAll();
          if (err instanceof BundleError) throw failure(printable(`${bundle}: ${err.message}`));
          const code = (err as NodeJS.ErrnoException).code;
          if (code === 'EADDRINUSE' || code === 'EACCES') throw failure(`cannot listen: ${(err as Error).message}; choose another --listen/--files-listen`);
          throw err;
        }
        const i = reader.index;
        process.stdout.write(`registry ${serving.registryUrl}\nfiles ${serving.filesUrl}\n`);
        const withBases = bases.length > 0 ? ` with its base${bases.length > 1 ? 's' : ''} ${bases.map((b) => b.path).join(', ')}` : '';
        log(printable(`serving ${bundle} (${i.name} ${i.version}, ${i.images.length} images and artifacts, ${i.files.length} files)${withBases} read-only; Ctrl-C stops`));
        await new Promise<void>((resolve) => {
          const stop = (sig: string) => {
            log(`${sig}: finishing open requests and stopping`);
            void serving.close().then(closeAll).then(() => resolve());
          };
          process.once('SIGINT', () => stop('SIGINT'));
          process.once('SIGTERM', () => stop('SIGTERM'));
        });
      }),
    );
}
