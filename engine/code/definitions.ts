// Top-level definitions of a file, and a shrunken view of a file that keeps the definitions another file uses.
// When an imported file does not fit the context budget, the model is better served by the full text of what the
// current file imports plus the signatures of the rest than by the file's first N lines (RepoBench-style snippets).
import type { Node } from 'web-tree-sitter';
import { lineComment, type CodeLanguage } from './languages';
import { withTree } from './parser';

export interface Definition {
  name: string;
  kind: 'function' | 'class' | 'interface' | 'type' | 'enum' | 'namespace' | 'variable';
  /** 0-based, inclusive; includes decorators and the doc comment right above. */
  startLine: number;
  /** 0-based, inclusive. */
  endLine: number;
  /** Last line of the signature (where the body opens); equals endLine for definitions without a body. */
  headerEndLine: number;
  exported: boolean;
  /** `export default ...` */
  isDefault: boolean;
  /** A class's methods and fields (line ranges as above), so its signature view can list its API. */
  members?: Member[];
}

export interface Member {
  startLine: number;
  headerEndLine: number;
  endLine: number;
}

/** Methods and fields of a class body; comments and punctuation skipped. */
function classMembers(body: Node, lang: CodeLanguage): Member[] {
  const out: Member[] = [];
  for (const m of body.namedChildren) {
    if (!m || m.type === 'comment') continue;
    const def = m.type === 'decorated_definition' ? m.childForFieldName('definition') : m;
    const inner = def?.childForFieldName('body');
    const start = m.startPosition.row;
    const end = m.endPosition.row;
    let headerEnd = end;
    if (inner && inner.startPosition.row <= end) {
      // Python blocks start on the line after the colon; a brace block opens on the signature's last line.
      headerEnd = lang === 'python' ? Math.max(def!.startPosition.row, inner.startPosition.row - 1) : inner.startPosition.row;
    }
    out.push({ startLine: start, headerEndLine: Math.min(headerEnd, end), endLine: end });
  }
  return out;
}

const jsKinds: Record<string, Definition['kind']> = {
  function_declaration: 'function', generator_function_declaration: 'function', function_signature: 'function',
  class_declaration: 'class', abstract_class_declaration: 'class',
  interface_declaration: 'interface', type_alias_declaration: 'type', enum_declaration: 'enum',
  internal_module: 'namespace', module: 'namespace',
  lexical_declaration: 'variable', variable_declaration: 'variable',
};
const functionValues = new Set(['arrow_function', 'function_expression', 'function', 'generator_function']);

function jsDefinition(node: Node, exported: boolean, isDefault: boolean): Omit<Definition, 'startLine'> | undefined {
  if (node.type === 'ambient_declaration') {
    const inner = node.namedChildren.find((c) => c && jsKinds[c.type]);
    return inner ? jsDefinition(inner, exported, isDefault) : undefined;
  }
  let kind = jsKinds[node.type];
  if (!kind) return undefined;
  let name = node.childForFieldName('name')?.text;
  let body = node.childForFieldName('body');
  if (kind === 'variable') {
    const decl = node.namedChildren.find((c) => c?.type === 'variable_declarator');
    name = decl?.childForFieldName('name')?.text;
    const value = decl?.childForFieldName('value');
    if (value && functionValues.has(value.type)) {
      kind = 'function';
      body = value.childForFieldName('body');
    } else if (value?.type === 'class') {
      kind = 'class';
      body = value.childForFieldName('body');
    }
  }
  if (!name) return undefined;
  const endLine = node.endPosition.row;
  // A type's body is its definition; only bodies of code get elided.
  const elidable = body && (kind === 'function' || kind === 'class' || kind === 'namespace');
  const members = kind === 'class' && body ? classMembers(body, 'typescript') : undefined;
  return { name, kind, endLine, headerEndLine: elidable ? body!.startPosition.row : endLine, exported, isDefault, members };
}

function pythonDefinition(node: Node): Omit<Definition, 'startLine'> | undefined {
  const def = node.type === 'decorated_definition' ? node.childForFieldName('definition') : node;
  if (!def) return undefined;
  const endLine = node.endPosition.row;
  if (def.type === 'function_definition' || def.type === 'class_definition') {
    const body = def.childForFieldName('body');
    const name = def.childForFieldName('name')?.text ?? '';
    // The header ends on the line of the colon: the line before the body, unless the body shares the line.
    const headerEndLine = body ? Math.max(def.startPosition.row, body.startPosition.row - 1) : endLine;
    const isClass = def.type === 'class_definition';
    const members = isClass && body ? classMembers(body, 'python') : undefined;
    return { name, kind: isClass ? 'class' : 'function', endLine, headerEndLine, exported: !name.startsWith('_'), isDefault: false, members };
  }
  if (def.type === 'expression_statement') {
    const assign = def.namedChildren[0];
    const left = assign?.type === 'assignment' ? assign.childForFieldName('left') : null;
    if (left?.type === 'identifier') {
      return { name: left.text, kind: 'variable', endLine, headerEndLine: endLine, exported: !left.text.startsWith('_'), isDefault: false };
    }
  }
  return undefined;
}

function collect(root: Node, lang: CodeLanguage): Definition[] {
  const out: Definition[] = [];
  const children = root.namedChildren.filter((c): c is Node => !!c);
  children.forEach((node, i) => {
    let d: Omit<Definition, 'startLine'> | undefined;
    if (lang === 'python') d = pythonDefinition(node);
    else if (node.type === 'export_statement') {
      const isDefault = node.children.some((c) => c?.type === 'default');
      const decl = node.childForFieldName('declaration') ?? node.namedChildren.find((c) => c && (jsKinds[c.type] || c.type === 'class' || functionValues.has(c.type))) ?? null;
      if (decl) {
        d = jsDefinition(decl, true, isDefault);
        // `export default class {}` / `export default function () {}`: anonymous, named by its export.
        if (!d && isDefault && (decl.type === 'class' || functionValues.has(decl.type))) {
          const body = decl.childForFieldName('body');
          d = { name: 'default', kind: decl.type === 'class' ? 'class' : 'function', endLine: node.endPosition.row,
            headerEndLine: body ? body.startPosition.row : node.endPosition.row, exported: true, isDefault: true };
        }
        if (d) d.endLine = node.endPosition.row;
      }
    } else d = jsDefinition(node, false, false);
    if (!d) return;
    // Pull in the comment block right above (JSDoc, # comments) so a definition travels with its documentation.
    let startLine = node.startPosition.row;
    for (let j = i - 1; j >= 0 && children[j].type === 'comment' && children[j].endPosition.row >= startLine - 1; j--) {
      startLine = children[j].startPosition.row;
    }
    out.push({ ...d, startLine });
  });
  return out;
}

/** Top-level functions, classes, types and variables of a file, in file order. */
export function topLevelDefinitions(text: string, lang: CodeLanguage): Promise<Definition[]> {
  return withTree(text, lang, (tree) => collect(tree.rootNode, lang));
}

const indentOf = (line: string) => /^\s*/.exec(line)![0];
const closesBlock = (line: string) => /^\s*[)\]}]+[;,]?\s*$/.test(line);

/** Signature lines of a range, an elision line at body depth, and the closing bracket line if there is one. */
function signature(lines: string[], start: number, headerEnd: number, end: number, lang: CodeLanguage): string[] {
  if (headerEnd >= end) return lines.slice(start, end + 1);
  const head = lines.slice(start, headerEnd + 1);
  const bodyIndent = indentOf(lines[headerEnd + 1] ?? '') || indentOf(lines[headerEnd]) + '    ';
  const elision = lang === 'python' ? `${bodyIndent}...` : `${bodyIndent}${lineComment(lang)} ...`;
  const last = lines[end];
  return closesBlock(last) && end > headerEnd + 1 ? [...head, elision, last] : [...head, elision];
}

/**
 * A definition reduced to its signature. A class keeps its members' signatures (and short fields), so the model
 * still sees the API it can call.
 */
function stubLines(lines: string[], d: Definition, lang: CodeLanguage): string[] {
  if (!d.members?.length || d.headerEndLine >= d.endLine) return signature(lines, d.startLine, d.headerEndLine, d.endLine, lang);
  const out = lines.slice(d.startLine, d.headerEndLine + 1);
  for (const m of d.members) {
    if (m.startLine <= d.headerEndLine) continue; // a member on the class's own line (one-line classes)
    if (m.headerEndLine >= m.endLine) {
      // Fields and docstrings: short ones as they are, long ones by their first line.
      out.push(...(m.endLine - m.startLine < 2 ? lines.slice(m.startLine, m.endLine + 1) : [lines[m.startLine]]));
    } else out.push(...signature(lines, m.startLine, m.headerEndLine, m.endLine, lang));
  }
  const last = lines[d.endLine];
  if (closesBlock(last)) out.push(last);
  return out;
}

/**
 * The file shrunk to at most `budgetChars`. What is kept, in priority order while it fits: signatures of the
 * definitions named in `wanted`, those definitions whole (in file order), the lines outside definitions (imports,
 * constants), then signatures of the other definitions. An empty `wanted` or '*' wants every definition; 'default'
 * matches the `export default` one. The kept pieces appear in file order. Pure: pass the definitions of this text.
 */
export function shrinkToDefinitions(text: string, lang: CodeLanguage, defs: Definition[], wanted: string[], budgetChars: number): string {
  if (text.length <= budgetChars) return text;
  const lines = text.split('\n');
  const all = wanted.length === 0 || wanted.includes('*');
  const isWanted = (d: Definition) => all || wanted.includes(d.name) || (d.isDefault && wanted.includes('default'));
  type Piece = { full: string[]; stub: string[]; def: boolean; wanted: boolean; level: 'full' | 'stub' | 'none' };
  const pieces: Piece[] = [];
  let cursor = 0;
  const loose = (to: number) => {
    for (; cursor < to; cursor++) {
      if (lines[cursor].trim() !== '') pieces.push({ full: [lines[cursor]], stub: [lines[cursor]], def: false, wanted: false, level: 'none' });
    }
  };
  for (const d of defs) {
    if (d.startLine < cursor) continue; // overlapping ranges (should not happen at top level)
    loose(d.startLine);
    pieces.push({ full: lines.slice(d.startLine, d.endLine + 1), stub: stubLines(lines, d, lang), def: true, wanted: isWanted(d), level: 'none' });
    cursor = d.endLine + 1;
  }
  loose(lines.length);

  // A definition is preceded by a blank line in the output, hence the +1.
  const cost = (ls: string[], def: boolean) => ls.reduce((s, l) => s + l.length + 1, 0) + (def ? 1 : 0);
  let total = 1;
  const take = (p: Piece, level: 'full' | 'stub') => {
    const before = p.level === 'none' ? 0 : cost(p.level === 'full' ? p.full : p.stub, p.def);
    const after = cost(level === 'full' ? p.full : p.stub, p.def);
    if (total - before + after > budgetChars) return;
    total += after - before;
    p.level = level;
  };
  for (const p of pieces) if (p.wanted) take(p, 'stub');
  for (const p of pieces) if (p.wanted && p.level === 'stub') take(p, 'full');
  for (const p of pieces) if (!p.def) take(p, 'full');
  for (const p of pieces) if (p.def && !p.wanted) take(p, 'stub');
  return pieces.filter((p) => p.level !== 'none')
    .map((p) => (p.def ? '\n' : '') + (p.level === 'full' ? p.full : p.stub).join('\n')).join('\n').replace(/^\n/, '') + '\n';
}

/** Parses `text` and shrinks it to `budgetChars` keeping `wanted` (see shrinkToDefinitions). */
export async function relevantDefinitions(text: string, lang: CodeLanguage, wanted: string[], budgetChars: number): Promise<string> {
  if (text.length <= budgetChars) return text;
  return shrinkToDefinitions(text, lang, await topLevelDefinitions(text, lang), wanted, budgetChars);
}
