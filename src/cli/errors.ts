// Exit status per SPEC §1: 0 success, 1 failure, 2 usage or manifest error.
import { ManifestError } from '../manifest/problems.js';

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(message, 2);
export const failure = (message: string) => new CliError(message, 1);

/** Prints an error the way a person wants to read it and returns the exit status. */
export function reportError(err: unknown, command: string): number {
  if (err instanceof ManifestError) {
    process.stderr.write(`airlock ${command}: ${err.message}\n`);
    return 2;
  }
  if (err instanceof CliError) {
    process.stderr.write(`airlock ${command}: ${err.message}\n`);
    return err.exitCode;
  }
  process.stderr.write(`airlock ${command}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
}
