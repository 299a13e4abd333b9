// ${NAME} substitution in every string value of the manifest (keys stay as
// written). `$${NAME}` is a literal `${NAME}`.
import type { PathSegment } from './problems.js';

export const VAR_NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;
const REF_RE = /\$(\$?)\{([^}]*)\}/g;

export interface VarProblem {
  readonly path: PathSegment[];
  readonly message: string;
}

/** Parses `--set NAME=VALUE` arguments. Throws with a usage message. */
export function parseSetArgs(sets: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const s of sets) {
    const eq = s.indexOf('=');
    const name = eq === -1 ? s : s.slice(0, eq);
    if (eq === -1 || !VAR_NAME_RE.test(name)) {
      throw new Error(`--set ${s}: write --set NAME=VALUE, NAME made of letters, digits and "_"`);
    }
    out[name] = s.slice(eq + 1);
  }
  return out;
}

/** Returns a copy of `value` with variables replaced, and every unknown or malformed reference. */
export function substitute(value: unknown, vars: Readonly<Record<string, string>>, path: PathSegment[] = []): { value: unknown; problems: VarProblem[] } {
  const problems: VarProblem[] = [];
  const walk = (v: unknown, p: PathSegment[]): unknown => {
    if (typeof v === 'string') {
      return v.replace(REF_RE, (whole, escaped: string, name: string) => {
        if (escaped) return whole.slice(1);
        if (!VAR_NAME_RE.test(name)) {
          problems.push({ path: p, message: `"${whole}" is not a variable reference; write \${NAME} with letters, digits and "_"` });
          return whole;
        }
        const val = vars[name];
        if (val === undefined) {
          const known = Object.keys(vars);
          problems.push({
            path: p,
            message: `variable ${name} is not defined; add it under vars: or pass --set ${name}=VALUE${known.length ? ` (defined: ${known.join(', ')})` : ''}`,
          });
          return whole;
        }
        return val;
      });
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...p, i]));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) out[k] = walk(x, [...p, k]);
      return out;
    }
    return v;
  };
  return { value: walk(value, path), problems };
}
