// `airlock report` (SPEC §10): the model read from SOURCE (bundle.json only),
// then each output asked for.
import { reportOf } from '../../report/model.js';
import { writeHtml, writeSbom } from '../../report/write.js';
import { KeyError, loadPublicKey } from '../../sign/keys.js';
import { printable } from '../../util/printable.js';
import { failure, usageError } from '../errors.js';
import { jsonText } from '../json.js';
import { sourceDateEpoch } from '../options.js';
import type { ReportFlags } from '../report.js';
import { TOOL } from '../version.js';

export async function reportAction(source: string, opts: ReportFlags): Promise<void> {
  if (opts.output === undefined && opts.cyclonedx === undefined && !opts.json) throw usageError('say what to write: -o FILE.html, --cyclonedx FILE.json and/or --json');
  if (opts.output !== undefined && opts.output === opts.cyclonedx) throw usageError(`-o and --cyclonedx both name ${opts.output}; give two files`);
  // SOURCE_DATE_EPOCH stands for "now" (the report's time, Trivy DB ages): the same bundle then gives the same bytes.
  const epoch = sourceDateEpoch();
  const pub = opts.pub === undefined ? undefined : await loadPublicKey(opts.pub).catch((err: unknown) => Promise.reject(err instanceof KeyError ? failure(err.message) : err));
  const model = await reportOf(source, { tool: TOOL, ...(epoch !== undefined && { now: epoch * 1000 }), ...(pub && { pub }), ...(opts.against !== undefined && { against: opts.against }) });
  const wrote: string[] = [];
  const write = async (flag: string, file: string, fn: (f: string) => Promise<void>) => {
    await fn(file).catch((err: Error) => Promise.reject(failure(`${flag} ${printable(file)}: ${err.message}`)));
    wrote.push(file);
  };
  if (opts.output !== undefined) await write('-o', opts.output, (f) => writeHtml(f, model));
  if (opts.cyclonedx !== undefined) await write('--cyclonedx', opts.cyclonedx, (f) => writeSbom(f, model));
  if (opts.json) process.stdout.write(jsonText(model));
  // With --json, stdout is the one JSON document; what was written goes to stderr.
  for (const f of wrote) (opts.json ? process.stderr : process.stdout).write(`wrote ${printable(f)}\n`);
}
