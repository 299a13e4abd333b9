// Exit status per SPEC §1: 0 success, 1 failure, 2 usage or manifest error.
import { printableLines } from '../util/printable.js';

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

/**
 * Prints an error the way a person wants to read it and returns the exit
 * status. The one place exit codes are decided: an expected failure carries
 * its `exitCode` (1 or 2) and is printed as its message; anything else is a
 * bug and keeps its stack.
 */
export function reportError(err: unknown, command: string): number {
  const code = (err as { exitCode?: unknown } | undefined)?.exitCode;
  // Messages quote registries, file servers and bundles: escaped, whatever they hold.
  if (err instanceof Error && (code === 1 || code === 2)) {
    process.stderr.write(`airlock ${command}: ${printableLines(err.message)}\n`);
    return code;
  }
  process.stderr.write(`airlock ${command}: ${printableLines(err instanceof Error ? (err.stack ?? err.message) : String(err))}\n`);
  return 1;
}
