// The command line: commander wiring only; each command lives in its own file.
// What a command does (src/cli/actions/, and the libraries behind it) is loaded
// with `await import()` when that command runs: --version and --help load only
// commander and these small files (issue #13; timed by scripts/bench.ts).
import { Command, CommanderError } from 'commander';
import { registerBuild } from './build.js';
import { registerDiff } from './diff.js';
import { reportError } from './errors.js';
import { registerImages, type RunAction } from './images.js';
import { registerInspect } from './inspect.js';
import { registerKeygen } from './keygen.js';
import { registerReport } from './report.js';
import { registerPrune } from './prune.js';
import { registerServe } from './serve.js';
import { registerSync } from './sync.js';
import { registerUnpack } from './unpack.js';
import { registerVerify } from './verify.js';
import { VERSION } from './version.js';


export function buildProgram(): Command {
  const program = new Command('airlock')
    .description('carry images, OCI artifacts and files into an air-gapped Kubernetes platform as one signed bundle')
    .version(VERSION)
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  const run: RunAction = async (command, fn) => {
    try {
      await fn();
    } catch (err) {
      process.exitCode = reportError(err, command);
    }
  };
  registerKeygen(program, run);
  registerBuild(program, run);
  registerDiff(program, run);
  registerVerify(program, run);
  registerInspect(program, run);
  registerUnpack(program, run);
  registerSync(program, run);
  registerServe(program, run);
  registerPrune(program, run);
  registerImages(program, run);
  registerReport(program, run);
  for (const cmd of program.commands) cmd.exitOverride();
  for (const cmd of program.commands.flatMap((c) => c.commands)) cmd.exitOverride();
  return program;
}

export async function main(argv: string[]): Promise<void> {
  try {
    await buildProgram().parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version exit 0; every other parse error is a usage error.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    process.exitCode = reportError(err, 'airlock');
  }
}
