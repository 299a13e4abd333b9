import type { Command } from 'commander';
import type { RunAction } from './images.js';

export interface ReportFlags {
  pub?: string;
  against?: string;
  output?: string;
  cyclonedx?: string;
  json?: boolean;
}

export function registerReport(program: Command, run: RunAction): void {
  program
    .command('report')
    .description('evidence for a change board: a self-contained HTML page and a CycloneDX SBOM of what a bundle, bundle.json or receipt holds')
    .argument('<source>', 'bundle tarball (BUNDLE or BUNDLE.001 of a split one), its bundle.json, or a receipt')
    .option('--pub <file>', 'check the bundle\'s signature with this public key (the page says whether it was checked)')
    .option('--against <old>', 'also show what changed against OLD (a bundle, bundle.json or receipt)')
    .option('-o, --output <file>', 'write the HTML page here')
    .option('--cyclonedx <file>', 'write a CycloneDX 1.6 SBOM (JSON) here')
    .option('--json', 'print the same facts as JSON on stdout')
    .action((source: string, opts: ReportFlags) =>
      run('report', async () => (await import('./actions/report.js')).reportAction(source, opts)),
    );
}
