// Commands of SPEC §1 that are not built yet say so and exit 1.
import { failure } from './errors.js';

export function notImplemented(command: string, issue: number): never {
  throw failure(`not implemented yet (tracked in issue #${issue})`);
}
