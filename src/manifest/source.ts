// YAML text with positions: every problem found later (schema, references,
// conflicts) is reported at the line and column where the person wrote it.
import { isMap, isPair, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from 'yaml';
import type { PathSegment, Problem } from './problems.js';
import { formatPath } from './problems.js';

export interface Position {
  readonly line: number;
  readonly col: number;
}

export class YamlSource {
  private constructor(
    /** Path as shown in messages. */
    readonly display: string,
    readonly docs: Document.Parsed[],
    private readonly lines: LineCounter,
  ) {}

  /**
   * Parses every document in `text`. Syntax errors (and duplicate keys) come
   * back as problems; the caller decides whether to go on.
   */
  static parse(display: string, text: string): { source: YamlSource; problems: Problem[] } {
    const lines = new LineCounter();
    const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
    const source = new YamlSource(display, Array.isArray(docs) ? docs : [], lines);
    const problems: Problem[] = [];
    if (!Array.isArray(docs)) {
      // An empty stream: parseAllDocuments returns an EmptyStream object.
      return { source, problems };
    }
    for (const doc of docs) {
      for (const err of [...doc.errors]) {
        const pos = lines.linePos(err.pos[0]);
        problems.push({ file: display, line: pos.line, col: pos.col, path: '', message: `invalid YAML: ${firstLine(err.message)}` });
      }
    }
    return { source, problems };
  }

  positionOfOffset(offset: number): Position {
    const { line, col } = this.lines.linePos(offset);
    return { line, col };
  }

  /** Position of the value at `path` in document `docIndex`, or of the nearest existing ancestor. */
  positionOf(path: readonly PathSegment[], docIndex = 0): Position {
    const node = this.nearestNode(path, docIndex);
    return this.positionOfOffset(node?.range?.[0] ?? 0);
  }

  /** Position of the key `key` inside the map at `path` (for unknown keys). */
  positionOfKey(path: readonly PathSegment[], key: string, docIndex = 0): Position {
    const parent = this.nodeAt(path, docIndex);
    if (isMap(parent)) {
      for (const pair of parent.items) {
        if (isScalar(pair.key) && String(pair.key.value) === key && pair.key.range) return this.positionOfOffset(pair.key.range[0]);
      }
    }
    return this.positionOf(path, docIndex);
  }

  problemAt(path: readonly PathSegment[], message: string, docIndex = 0): Problem {
    const pos = this.positionOf(path, docIndex);
    return { file: this.display, line: pos.line, col: pos.col, path: formatPath(path), message };
  }

  private nodeAt(path: readonly PathSegment[], docIndex: number): Node | undefined {
    const doc = this.docs[docIndex];
    if (!doc) return undefined;
    const node = doc.getIn(path, true);
    return isNodeLike(node) ? node : undefined;
  }

  private nearestNode(path: readonly PathSegment[], docIndex: number): Node | undefined {
    for (let n = path.length; n >= 0; n--) {
      const node = this.nodeAt(path.slice(0, n), docIndex);
      if (node) return node;
    }
    return this.docs[docIndex]?.contents ?? undefined;
  }
}

function isNodeLike(value: unknown): value is Node {
  return isScalar(value) || isMap(value) || isSeq(value) || (isPair(value) === false && typeof value === 'object' && value !== null && 'range' in value);
}

function firstLine(message: string): string {
  return message.split('\n')[0] ?? message;
}
