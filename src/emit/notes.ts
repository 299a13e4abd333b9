// What the config writers tell the operator in DIR/README.md: settings left
// out (and what to do instead), manual steps, warnings.

/** A setting that would break its consumer as the target is set up. */
export interface Omitted {
  /** The setting, as the operator would write it. */
  readonly setting: string;
  /** Why it was left out. */
  readonly why: string;
  /** What to do instead. */
  readonly todo: string;
}

export class Notes {
  readonly omitted: Omitted[] = [];
  /** Manual steps, in the order to take them. */
  readonly steps: string[] = [];
  /** Things that were written but will not work without the operator's help. */
  readonly warnings: string[] = [];
  /** Placeholders (`set-me`) written, as key paths, per file. */
  readonly placeholders = new Map<string, string[]>();
  /** Placeholders `ck8s validate` does not see (inside a string value): the operator must check them. */
  readonly unchecked: string[] = [];
  /** Warnings also worth a line on stderr while unpack runs (the README says the rest). */
  readonly console: string[] = [];

  omit(o: Omitted): void {
    this.omitted.push(o);
  }

  step(s: string): void {
    this.steps.push(s);
  }

  warn(w: string): void {
    this.warnings.push(w);
  }

  placeholder(file: string, key: string, opts: { unchecked?: boolean } = {}): void {
    this.placeholders.set(file, [...(this.placeholders.get(file) ?? []), key]);
    if (opts.unchecked) this.unchecked.push(`${key} in ${file}`);
  }

  /** A warning for the README, and a shorter line for stderr. */
  alert(readme: string, stderr: string): void {
    this.warnings.push(readme);
    this.console.push(stderr);
  }
}
