// The one place a Kubespray table is evaluated: the Jinja subset that
// roles/kubespray_defaults uses to resolve versions, URLs and checksums
// (surveyed in v2.28.1 and v2.31.0), evaluated the way Ansible 2.14 does.
// It fails closed: a construct it does not know is an error naming the
// variable and the file, never a guess.

/** A value in the tables: YAML maps stay Maps so that key order is Kubespray's. */
export type Value = string | number | boolean | null | Value[] | Map<string, Value> | Undef;

/** Jinja's StrictUndefined: usable only by `default` and `is defined`. */
export class Undef {
  constructor(readonly name: string) {}
}

/** Where a template came from, for messages. */
export interface Where {
  readonly variable: string;
  readonly file: string;
  readonly line?: number;
}

export class TemplateError extends Error {
  constructor(
    readonly where: Where,
    readonly reason: string,
    /** An undefined variable or key was used (Kubespray has no value for it), as opposed to a construct unknown here. */
    readonly undefinedUse = false,
  ) {
    super(`${where.file}${where.line ? `:${where.line}` : ''}: ${where.variable}: ${reason}`);
    this.name = 'TemplateError';
  }
}

/** Raised inside evaluation, then given its Where by the template that ran. */
class EvalError extends Error {
  constructor(
    message: string,
    readonly undefinedUse = false,
  ) {
    super(message);
  }
}

export interface Resolver {
  /** The value of a variable, or Undef when nothing defines it. */
  lookup(name: string): Value;
  /** A string found inside a variable's value (a map entry), rendered with that variable's Where. */
  render(raw: Value, where: Where): Value;
}

// ---------------------------------------------------------------- lexer

type Tok = { t: 'name' | 'str' | 'num' | 'op'; v: string };

const OPS = ['==', '!=', '<=', '>=', '//', '**', '(', ')', '[', ']', '{', '}', '.', ',', ':', '|', '~', '+', '-', '*', '/', '%', '<', '>', '='];

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i] as string;
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    if (/[A-Za-z_]/.test(c)) {
      const m = /^[A-Za-z_][A-Za-z0-9_]*/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ t: 'name', v: m[0] });
      i += m[0].length;
      continue;
    }
    if (/[0-9]/.test(c)) {
      const m = /^[0-9]+(\.[0-9]+)?/.exec(src.slice(i)) as RegExpExecArray;
      out.push({ t: 'num', v: m[0] });
      i += m[0].length;
      continue;
    }
    if (c === "'" || c === '"') {
      let j = i + 1;
      let s = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\') {
          const e = src[j + 1];
          if (e === undefined) break;
          s += e === 'n' ? '\n' : e === 't' ? '\t' : e;
          j += 2;
        } else s += src[j++];
      }
      if (j >= src.length) throw new EvalError(`unterminated string in ${JSON.stringify(src)}`);
      out.push({ t: 'str', v: s });
      i = j + 1;
      continue;
    }
    const op = OPS.find((o) => src.startsWith(o, i));
    if (!op) throw new EvalError(`unexpected character ${JSON.stringify(c)} in ${JSON.stringify(src)}`);
    out.push({ t: 'op', v: op });
    i += op.length;
  }
  return out;
}

// ---------------------------------------------------------------- parser

type Expr =
  | { k: 'lit'; v: Value }
  | { k: 'name'; n: string }
  | { k: 'list'; items: Expr[] }
  | { k: 'attr'; o: Expr; n: string }
  | { k: 'item'; o: Expr; i: Expr }
  | { k: 'slice'; o: Expr; a?: Expr; b?: Expr }
  | { k: 'call'; f: Expr; args: Expr[] }
  | { k: 'filter'; o: Expr; n: string; args: Expr[] }
  | { k: 'test'; o: Expr; n: string; args: Expr[]; neg: boolean }
  | { k: 'bin'; op: string; a: Expr; b: Expr }
  | { k: 'not'; a: Expr }
  | { k: 'neg'; a: Expr }
  | { k: 'cond'; c: Expr; a: Expr; b?: Expr };

class Parser {
  private i = 0;
  constructor(
    private readonly toks: Tok[],
    private readonly src: string,
  ) {}

  static parse(src: string): Expr {
    const p = new Parser(lex(src), src);
    const e = p.expr();
    if (p.i < p.toks.length) throw new EvalError(`unexpected ${JSON.stringify(p.toks[p.i]?.v)} in ${JSON.stringify(src.trim())}`);
    return e;
  }

  private peek(v: string, t?: Tok['t']): boolean {
    const tok = this.toks[this.i];
    return tok !== undefined && tok.v === v && (t === undefined ? tok.t === 'op' || tok.t === 'name' : tok.t === t);
  }
  private eat(v: string): boolean {
    if (this.peek(v)) {
      this.i++;
      return true;
    }
    return false;
  }
  private expect(v: string): void {
    if (!this.eat(v)) throw new EvalError(`expected ${JSON.stringify(v)} in ${JSON.stringify(this.src.trim())}`);
  }

  expr(): Expr {
    const a = this.or();
    if (this.eat('if')) {
      const c = this.or();
      if (this.eat('else')) return { k: 'cond', c, a, b: this.expr() };
      return { k: 'cond', c, a };
    }
    return a;
  }
  private or(): Expr {
    let a = this.and();
    while (this.eat('or')) a = { k: 'bin', op: 'or', a, b: this.and() };
    return a;
  }
  private and(): Expr {
    let a = this.not();
    while (this.eat('and')) a = { k: 'bin', op: 'and', a, b: this.not() };
    return a;
  }
  private not(): Expr {
    if (this.eat('not')) return { k: 'not', a: this.not() };
    return this.compare();
  }
  private compare(): Expr {
    let a = this.math1();
    for (;;) {
      const tok = this.toks[this.i];
      if (tok?.t === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(tok.v)) {
        this.i++;
        a = { k: 'bin', op: tok.v, a, b: this.math1() };
      } else if (this.peek('in', 'name')) {
        this.i++;
        a = { k: 'bin', op: 'in', a, b: this.math1() };
      } else if (this.peek('not', 'name') && this.toks[this.i + 1]?.v === 'in') {
        this.i += 2;
        a = { k: 'not', a: { k: 'bin', op: 'in', a, b: this.math1() } };
      } else return a;
    }
  }
  private math1(): Expr {
    let a = this.concat();
    while (this.peek('+', 'op') || this.peek('-', 'op')) {
      const op = (this.toks[this.i++] as Tok).v;
      a = { k: 'bin', op, a, b: this.concat() };
    }
    return a;
  }
  private concat(): Expr {
    let a = this.unary();
    while (this.eat('~')) a = { k: 'bin', op: '~', a, b: this.unary() };
    const tok = this.toks[this.i];
    if (tok?.t === 'op' && ['*', '/', '//', '%', '**'].includes(tok.v)) throw new EvalError(`operator ${tok.v} is not supported`);
    return a;
  }
  private unary(): Expr {
    const tok = this.toks[this.i];
    if (tok?.t === 'op' && ['*', '/', '//', '%', '**'].includes(tok.v)) throw new EvalError(`operator ${tok.v} is not supported`);
    if (this.eat('-')) return this.filters({ k: 'neg', a: this.unary() });
    return this.filters(this.postfix(this.primary()));
  }
  private primary(): Expr {
    const tok = this.toks[this.i++];
    if (!tok) throw new EvalError(`unexpected end of ${JSON.stringify(this.src.trim())}`);
    if (tok.t === 'str') return { k: 'lit', v: tok.v };
    if (tok.t === 'num') return { k: 'lit', v: Number(tok.v) };
    if (tok.t === 'name') {
      if (tok.v === 'true' || tok.v === 'True') return { k: 'lit', v: true };
      if (tok.v === 'false' || tok.v === 'False') return { k: 'lit', v: false };
      if (tok.v === 'none' || tok.v === 'None') return { k: 'lit', v: null };
      return { k: 'name', n: tok.v };
    }
    if (tok.v === '(') {
      const e = this.expr();
      this.expect(')');
      return e;
    }
    if (tok.v === '[') {
      const items: Expr[] = [];
      while (!this.eat(']')) {
        items.push(this.expr());
        if (!this.eat(',')) {
          this.expect(']');
          break;
        }
      }
      return { k: 'list', items };
    }
    throw new EvalError(`${JSON.stringify(tok.v)} is not supported in ${JSON.stringify(this.src.trim())}`);
  }
  private postfix(e: Expr): Expr {
    for (;;) {
      if (this.eat('.')) {
        const tok = this.toks[this.i++];
        if (tok?.t !== 'name') throw new EvalError(`expected a name after "." in ${JSON.stringify(this.src.trim())}`);
        e = { k: 'attr', o: e, n: tok.v };
      } else if (this.eat('[')) {
        if (this.eat(':')) {
          const b = this.peek(']') ? undefined : this.expr();
          this.expect(']');
          e = { k: 'slice', o: e, ...(b && { b }) };
          continue;
        }
        const a = this.expr();
        if (this.eat(':')) {
          const b = this.peek(']') ? undefined : this.expr();
          this.expect(']');
          e = { k: 'slice', o: e, a, ...(b && { b }) };
          continue;
        }
        this.expect(']');
        e = { k: 'item', o: e, i: a };
      } else if (this.peek('(', 'op')) {
        e = { k: 'call', f: e, args: this.args() };
      } else return e;
    }
  }
  private args(): Expr[] {
    const args: Expr[] = [];
    if (!this.eat('(')) return args;
    while (!this.eat(')')) {
      const tok = this.toks[this.i];
      if (tok?.t === 'name' && this.toks[this.i + 1]?.v === '=') throw new EvalError(`keyword arguments (${tok.v}=) are not supported`);
      args.push(this.expr());
      if (!this.eat(',')) {
        this.expect(')');
        break;
      }
    }
    return args;
  }
  private filters(e: Expr): Expr {
    for (;;) {
      if (this.eat('|')) {
        const n = this.dottedName();
        e = { k: 'filter', o: e, n, args: this.args() };
      } else if (this.peek('is', 'name')) {
        this.i++;
        const neg = this.eat('not');
        const n = this.dottedName();
        e = { k: 'test', o: e, n, neg, args: this.args() };
      } else return e;
    }
  }
  private dottedName(): string {
    const tok = this.toks[this.i++];
    if (tok?.t !== 'name') throw new EvalError(`expected a filter or test name in ${JSON.stringify(this.src.trim())}`);
    let n = tok.v;
    while (this.peek('.', 'op') && this.toks[this.i + 1]?.t === 'name') {
      n += `.${(this.toks[this.i + 1] as Tok).v}`;
      this.i += 2;
    }
    return n;
  }
}

// ---------------------------------------------------------------- templates

type Node = { k: 'text'; s: string } | { k: 'out'; e: Expr } | { k: 'if'; branches: { c: Expr; body: Node[] }[]; other: Node[] };

type Piece = { k: 'text'; s: string } | { k: 'out'; src: string } | { k: 'tag'; src: string };

/** Splits a template into text, {{ }} and {% %} pieces, applying `-` whitespace control and Ansible's trim_blocks. */
function pieces(src: string): Piece[] {
  const out: Piece[] = [];
  let i = 0;
  let stripNext = false;
  const pushText = (s: string) => {
    if (stripNext) s = s.replace(/^\s+/, '');
    stripNext = false;
    out.push({ k: 'text', s });
  };
  while (i < src.length) {
    const open = src.slice(i).search(/\{\{|\{%|\{#/);
    if (open === -1) {
      pushText(src.slice(i));
      break;
    }
    let text = src.slice(i, i + open);
    const start = i + open;
    const kind = src.slice(start, start + 2);
    const close = kind === '{{' ? '}}' : kind === '{%' ? '%}' : '#}';
    const end = src.indexOf(close, start + 2);
    if (end === -1) throw new EvalError(`unclosed ${kind} in ${JSON.stringify(src)}`);
    let inner = src.slice(start + 2, end);
    if (inner.startsWith('-')) {
      text = text.replace(/\s+$/, '');
      inner = inner.slice(1);
    }
    pushText(text);
    let rstrip = false;
    if (inner.endsWith('-')) {
      rstrip = true;
      inner = inner.slice(0, -1);
    }
    i = end + 2;
    if (kind === '{%' && /^\s*raw\s*$/.test(inner)) {
      const m = /\{%-?\s*endraw\s*-?%\}/.exec(src.slice(i));
      if (!m) throw new EvalError('{% raw %} without {% endraw %}');
      out.push({ k: 'text', s: src.slice(i, i + m.index) });
      i += m.index + m[0].length;
      continue;
    }
    if (kind === '{{') out.push({ k: 'out', src: inner });
    else if (kind === '{%') {
      out.push({ k: 'tag', src: inner });
      // trim_blocks: the first newline after a block tag goes.
      if (!rstrip && src[i] === '\n') i++;
    }
    stripNext = rstrip;
  }
  return out.filter((p) => p.k !== 'text' || p.s !== '');
}

function parseTemplate(src: string): Node[] {
  const ps = pieces(src);
  let i = 0;
  const block = (ends: string[]): { nodes: Node[]; end: string } => {
    const nodes: Node[] = [];
    while (i < ps.length) {
      const p = ps[i++] as Piece;
      if (p.k === 'text') nodes.push({ k: 'text', s: p.s });
      else if (p.k === 'out') nodes.push({ k: 'out', e: Parser.parse(p.src) });
      else {
        const m = /^\s*([a-z_]+)\s*([\s\S]*?)\s*$/.exec(p.src);
        const word = m?.[1] ?? '';
        const rest = m?.[2] ?? '';
        if (ends.includes(word)) {
          i--;
          return { nodes, end: word };
        }
        if (word !== 'if') throw new EvalError(`{% ${word} %} is not supported`);
        const branches = [{ c: Parser.parse(rest), body: [] as Node[] }];
        let other: Node[] = [];
        for (;;) {
          const b = block(['elif', 'else', 'endif']);
          const tag = ps[i++] as Extract<Piece, { k: 'tag' }> | undefined;
          if (!tag) throw new EvalError('{% if %} without {% endif %}');
          (branches[branches.length - 1] as { body: Node[] }).body = b.nodes;
          if (b.end === 'elif') {
            branches.push({ c: Parser.parse(tag.src.replace(/^\s*elif\s+/, '')), body: [] });
            continue;
          }
          if (b.end === 'else') {
            const e = block(['endif']);
            if (!ps[i++]) throw new EvalError('{% if %} without {% endif %}');
            other = e.nodes;
          }
          break;
        }
        nodes.push({ k: 'if', branches, other });
      }
    }
    if (ends.length) throw new EvalError(`missing {% ${ends[ends.length - 1]} %}`);
    return { nodes, end: '' };
  };
  const { nodes } = block([]);
  return nodes;
}

export function isTemplate(s: string): boolean {
  return s.includes('{{') || s.includes('{%') || s.includes('{#');
}

/**
 * Renders one string of a table as Ansible would: a string that is a single
 * expression keeps a boolean, list or map; anything else becomes text
 * (None as ""), and text "True"/"False" becomes a boolean.
 */
export function renderTemplate(src: string, where: Where, r: Resolver): Value {
  try {
    if (!isTemplate(src)) return src;
    const nodes = parseTemplate(src);
    const ev = new Evaluator(r, where);
    if (nodes.length === 1 && nodes[0]?.k === 'out') {
      const v = ev.eval(nodes[0].e);
      if (v instanceof Undef) throw new EvalError(`${v.name} is undefined`, true);
      if (typeof v === 'boolean' || Array.isArray(v) || v instanceof Map) return v;
      return toText(v);
    }
    const text = ev.run(nodes);
    if (text === 'True' || text === 'False') return text === 'True';
    if (/^\s*[[{]/.test(text)) throw new EvalError('a template that writes a list or map as text is not supported');
    return text;
  } catch (err) {
    if (err instanceof EvalError) throw new TemplateError(where, err.message, err.undefinedUse);
    throw err;
  }
}

// ---------------------------------------------------------------- evaluation

class Evaluator {
  constructor(
    private readonly r: Resolver,
    private readonly where: Where,
  ) {}

  run(nodes: Node[]): string {
    let out = '';
    for (const n of nodes) {
      if (n.k === 'text') out += n.s;
      else if (n.k === 'out') out += toText(this.eval(n.e));
      else {
        const b = n.branches.find((br) => truthy(this.eval(br.c)));
        out += this.run(b ? b.body : n.other);
      }
    }
    return out;
  }

  /** Renders a raw value found inside a map or list of a variable. */
  private inner(v: Value): Value {
    return this.r.render(v, this.where);
  }

  eval(e: Expr): Value {
    switch (e.k) {
      case 'lit':
        return e.v;
      case 'name':
        return this.r.lookup(e.n);
      case 'list':
        return e.items.map((x) => this.eval(x));
      case 'attr':
        return this.getItem(this.eval(e.o), e.n, true, describe(e.o));
      case 'item':
        return this.getItem(this.eval(e.o), this.eval(e.i), false, describe(e.o));
      case 'slice': {
        const o = defined(this.eval(e.o));
        const a = e.a ? num(this.eval(e.a)) : undefined;
        const b = e.b ? num(this.eval(e.b)) : undefined;
        if (typeof o === 'string') return o.slice(a, b);
        if (Array.isArray(o)) return o.slice(a, b);
        throw new EvalError(`cannot slice ${typeName(o)}`);
      }
      case 'call':
        return this.call(e);
      case 'filter':
        return this.filter(e.n, e.o, e.args);
      case 'test': {
        const v = this.test(e.n, this.eval(e.o), e.args.map((a) => this.eval(a)));
        return e.neg ? !v : v;
      }
      case 'not':
        return !truthy(this.eval(e.a));
      case 'neg':
        return -num(this.eval(e.a));
      case 'cond':
        if (truthy(this.eval(e.c))) return this.eval(e.a);
        // `a if b` with no else: Jinja yields an undefined that renders as "".
        return e.b ? this.eval(e.b) : '';
      case 'bin':
        return this.binary(e.op, e.a, e.b);
    }
  }

  private binary(op: string, ea: Expr, eb: Expr): Value {
    if (op === 'and') {
      const a = this.eval(ea);
      return truthy(a) ? this.eval(eb) : a;
    }
    if (op === 'or') {
      const a = this.eval(ea);
      return truthy(a) ? a : this.eval(eb);
    }
    const a = defined(this.eval(ea));
    const b = defined(this.eval(eb));
    switch (op) {
      case '==':
        return equal(a, b);
      case '!=':
        return !equal(a, b);
      case '<':
      case '>':
      case '<=':
      case '>=': {
        if (!((typeof a === 'number' && typeof b === 'number') || (typeof a === 'string' && typeof b === 'string'))) {
          throw new EvalError(`cannot compare ${typeName(a)} with ${typeName(b)} using ${op}`);
        }
        return op === '<' ? a < b : op === '>' ? a > b : op === '<=' ? a <= b : a >= b;
      }
      case 'in':
        if (typeof b === 'string') return b.includes(str(a));
        if (Array.isArray(b)) return b.some((x) => equal(this.inner(x), a));
        if (b instanceof Map) return typeof a === 'string' && b.has(a);
        throw new EvalError(`"in" needs a string, list or map, not ${typeName(b)}`);
      case '~':
        return toText(a) + toText(b);
      case '+':
        if (typeof a === 'number' && typeof b === 'number') return a + b;
        if (typeof a === 'string' && typeof b === 'string') return a + b;
        if (Array.isArray(a) && Array.isArray(b)) return [...a, ...b];
        throw new EvalError(`cannot add ${typeName(a)} and ${typeName(b)}`);
      case '-':
        return num(a) - num(b);
    }
    throw new EvalError(`operator ${op} is not supported`);
  }

  private getItem(o: Value, key: Value, attr: boolean, of: string): Value {
    const shown = `${of}${attr ? `.${String(key)}` : `[${repr(key)}]`}`;
    if (o instanceof Undef) return new Undef(shown);
    if (o instanceof Map) {
      if (typeof key !== 'string') throw new EvalError(`a map's keys are strings here, not ${typeName(key)}`);
      return o.has(key) ? this.inner(o.get(key) as Value) : new Undef(`${shown}`);
    }
    if (Array.isArray(o) && typeof key === 'number' && Number.isInteger(key)) {
      const i = key < 0 ? o.length + key : key;
      return i >= 0 && i < o.length ? this.inner(o[i] as Value) : new Undef(`${shown}`);
    }
    throw new EvalError(`cannot take ${shown}: ${of} is ${typeName(o)}`);
  }

  private call(e: Extract<Expr, { k: 'call' }>): Value {
    const args = e.args.map((a) => this.eval(a));
    if (e.f.k === 'name' && e.f.n === 'lookup') {
      const [plugin, name, ...rest] = args;
      if (plugin === 'vars' && typeof name === 'string' && rest.length === 0) {
        const v = this.r.lookup(name);
        if (v instanceof Undef) throw new EvalError(`lookup('vars', '${name}'): ${name} is undefined`, true);
        return v;
      }
      throw new EvalError(`lookup(${args.map(repr).join(', ')}) is not supported (only lookup('vars', NAME))`);
    }
    if (e.f.k === 'attr') {
      const o = defined(this.eval(e.f.o));
      if (e.f.n === 'keys' && o instanceof Map && args.length === 0) return [...o.keys()];
      if (e.f.n === 'split' && typeof o === 'string' && args.length === 1 && typeof args[0] === 'string') return o.split(args[0]);
      throw new EvalError(`method .${e.f.n}() on ${typeName(o)} is not supported`);
    }
    throw new EvalError('calling a function is not supported (only lookup and the methods keys() and split())');
  }

  private filter(name: string, oe: Expr, argExprs: Expr[]): Value {
    const o = this.eval(oe);
    const args = argExprs.map((a) => this.eval(a));
    if (name === 'default' || name === 'd') {
      if (args.length > 1) throw new EvalError(`${name}(…, true) is not supported`);
      return o instanceof Undef ? (args[0] ?? '') : o;
    }
    const v = defined(o);
    switch (name) {
      case 'dict2items':
        if (!(v instanceof Map)) throw new EvalError(`dict2items needs a map, not ${typeName(v)}`);
        return [...v.entries()].map(([key, value]) => new Map<string, Value>([['key', key], ['value', this.inner(value)]]));
      case 'split':
        if (typeof v !== 'string') throw new EvalError(`split needs a string, not ${typeName(v)}`);
        return v.split(args.length ? str(args[0] as Value) : ' ');
      case 'join':
        if (!Array.isArray(v)) throw new EvalError(`join needs a list, not ${typeName(v)}`);
        return v.map((x) => toText(this.inner(x))).join(args.length ? str(args[0] as Value) : '');
      case 'int': {
        if (typeof v === 'number') return Math.trunc(v);
        if (typeof v === 'boolean') return v ? 1 : 0;
        const n = Number(str(v).trim());
        return Number.isFinite(n) ? Math.trunc(n) : 0;
      }
      case 'lower':
        return str(v).toLowerCase();
      case 'string':
        return toText(v);
      case 'bool':
        if (typeof v === 'boolean') return v;
        return ['yes', 'on', '1', 'true'].includes(toText(v).toLowerCase());
      case 'first':
      case 'last': {
        if (!Array.isArray(v) && typeof v !== 'string') throw new EvalError(`${name} needs a list, not ${typeName(v)}`);
        const x = name === 'first' ? v[0] : v[v.length - 1];
        return x === undefined ? new Undef(`(${name} of an empty list)`) : this.inner(x);
      }
      case 'length':
        if (Array.isArray(v) || typeof v === 'string') return v.length;
        if (v instanceof Map) return v.size;
        throw new EvalError(`length of ${typeName(v)}`);
      case 'list':
        if (Array.isArray(v)) return v;
        if (v instanceof Map) return [...v.keys()];
        throw new EvalError(`list of ${typeName(v)}`);
      case 'select': {
        if (!Array.isArray(v)) throw new EvalError(`select needs a list, not ${typeName(v)}`);
        const [test, ...targs] = args;
        if (typeof test !== 'string') throw new EvalError('select needs a test name');
        return v.filter((x) => this.test(test, this.inner(x), targs));
      }
    }
    throw new EvalError(`filter "${name}" is not supported`);
  }

  private test(name: string, v: Value, args: Value[]): boolean {
    switch (name) {
      case 'defined':
        return !(v instanceof Undef);
      case 'undefined':
        return v instanceof Undef;
      case 'version':
      case 'version_compare': {
        const [other, op = 'eq', ...rest] = args;
        if (rest.length) throw new EvalError(`version test with ${args.length} arguments is not supported`);
        return compareVersions(str(defined(v)), str(defined(other as Value)), str(op));
      }
    }
    throw new EvalError(`test "${name}" is not supported`);
  }
}

// ---------------------------------------------------------------- helpers

/** An expression as a person would recognise it in a message. */
function describe(e: Expr): string {
  switch (e.k) {
    case 'name':
      return e.n;
    case 'lit':
      return repr(e.v);
    case 'attr':
      return `${describe(e.o)}.${e.n}`;
    case 'item':
      return `${describe(e.o)}[${describe(e.i)}]`;
    default:
      return '(…)';
  }
}

function defined(v: Value): Exclude<Value, Undef> {
  if (v instanceof Undef) throw new EvalError(`${v.name} is undefined`, true);
  return v;
}

function typeName(v: Value): string {
  if (v === null) return 'None';
  if (v instanceof Undef) return `undefined ${v.name}`;
  if (Array.isArray(v)) return 'a list';
  if (v instanceof Map) return 'a map';
  return `a ${typeof v}`;
}

function str(v: Value): string {
  if (typeof v !== 'string') throw new EvalError(`expected a string, found ${typeName(v)}`);
  return v;
}

function num(v: Value): number {
  if (typeof v !== 'number') throw new EvalError(`expected a number, found ${typeName(v)}`);
  return v;
}

export function truthy(v: Value): boolean {
  v = defined(v);
  if (v === null) return false;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return v !== 0;
  if (typeof v === 'boolean') return v;
  if (Array.isArray(v)) return v.length > 0;
  return v.size > 0;
}

function equal(a: Value, b: Value): boolean {
  if (a instanceof Map || b instanceof Map || Array.isArray(a) || Array.isArray(b)) return repr(a) === repr(b);
  return a === b;
}

/** Python's repr, for lists and maps written as text. */
function repr(v: Value): string {
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  if (Array.isArray(v)) return `[${v.map(repr).join(', ')}]`;
  if (v instanceof Map) return `{${[...v.entries()].map(([k, x]) => `${repr(k)}: ${repr(x)}`).join(', ')}}`;
  return toText(v);
}

/** Python's str with Ansible's finalize (None → ""). */
export function toText(v: Value): string {
  if (v instanceof Undef) throw new EvalError(`${v.name} is undefined`, true);
  if (v === null) return '';
  if (typeof v === 'boolean') return v ? 'True' : 'False';
  if (typeof v === 'number') return String(v);
  if (typeof v === 'string') return v;
  return repr(v);
}

/** Ansible's `version` test with its default LooseVersion. */
export function compareVersions(a: string, b: string, op: string): boolean {
  const parts = (s: string) => (s.match(/\d+|[a-z]+|\./gi) ?? []).filter((p) => p !== '.').map((p) => (/^\d+$/.test(p) ? Number(p) : p));
  const pa = parts(a);
  const pb = parts(b);
  let c = 0;
  for (let i = 0; i < Math.max(pa.length, pb.length) && c === 0; i++) {
    const x = pa[i];
    const y = pb[i];
    if (x === undefined) c = -1;
    else if (y === undefined) c = 1;
    else if (typeof x === typeof y) c = x < y ? -1 : x > y ? 1 : 0;
    else throw new EvalError(`cannot compare versions "${a}" and "${b}" (LooseVersion compares ${typeof x === 'number' ? 'a number with a word' : 'a word with a number'})`);
  }
  switch (op) {
    case '<':
    case 'lt':
      return c < 0;
    case '<=':
    case 'le':
      return c <= 0;
    case '>':
    case 'gt':
      return c > 0;
    case '>=':
    case 'ge':
      return c >= 0;
    case '==':
    case '=':
    case 'eq':
      return c === 0;
    case '!=':
    case '<>':
    case 'ne':
      return c !== 0;
  }
  throw new EvalError(`version operator "${op}" is not supported`);
}
