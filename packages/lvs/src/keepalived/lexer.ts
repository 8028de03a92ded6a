/**
 * keepalived.conf lexing: files → logical lines, the way keepalived's `read_line()` produces them.
 *
 * Per physical line: comments (`#`, `!`) are removed outside double quotes (`\#`, `\!` stay as
 * literal characters), `@ID` / `@^ID` conditional lines are kept or dropped, `$NAME=value`
 * parameters are defined and `$NAME` / `${NAME}` substituted, `include PATTERN` lines are replaced by
 * the matching files, and the line is split at the first `{` or `}` outside quotes, so every brace
 * becomes a line of its own. File access goes through {@link ConfigFiles} so this stays pure.
 * @module
 */
import type { KeepalivedDiagnostic, KeepalivedSource } from './types.js';

/** File access the lexer needs; the real one lives in `files.ts`, tests may pass an in-memory one. */
export interface ConfigFiles {
  /** The file's text, or undefined when it cannot be read. */
  read(path: string): string | undefined;
  /** Paths matching a glob pattern (csh braces allowed), sorted; relative patterns resolve against `dir`. */
  glob(pattern: string, dir: string): string[];
  /** The directory part of a path. */
  dirname(path: string): string;
}

/** One logical line: a keyword with its arguments, or a lone brace. */
export interface LogicalLine {
  /** The text after comment removal, substitution and brace splitting. */
  readonly text: string;
  /** Where the physical line is. */
  readonly source: KeepalivedSource;
}

/** Lexer settings. */
export interface LexOptions {
  /** The config id `@ID` lines are compared with. */
  readonly configId: string;
  /** Value of `${_PWD}`. */
  readonly cwd: string;
}

/** What lexing produced: the lines and the problems met on the way. */
export interface LexResult {
  /** All logical lines, in order. */
  readonly lines: LogicalLine[];
  /** Diagnostics (extra/missing braces, unterminated quotes, missing includes...). */
  readonly diagnostics: KeepalivedDiagnostic[];
}

const INCLUDE_KEYWORDS = new Set(['include', 'includer', 'includem', 'includew', 'includeb', 'includea']);
const MAX_INCLUDE_DEPTH = 32;

/** Formats a diagnostic the way `keepalived -t` prints it. */
export function diagnostic(
  severity: KeepalivedDiagnostic['severity'],
  message: string,
  source?: KeepalivedSource,
): KeepalivedDiagnostic {
  const text = source ? `(${source.file}: Line ${source.line}) ${message}` : message;
  return source ? { severity, message, source, text } : { severity, message, text };
}

/**
 * keepalived's `decomment()`: strips leading/trailing blanks and the comment, unescapes `\#`/`\!`
 * outside quotes. Returns the text and whether a double quote was left open.
 */
export function decomment(raw: string): { text: string; unterminated: boolean } {
  let s = raw.replace(/^[ \t]+/, '');
  let quote = false;
  let skip = -1;
  let cont = false;
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c === '"') {
      if (skip < 0) quote = !quote;
    } else if (c === '\\') {
      if (i + 1 < s.length) {
        if (!quote && (s[i + 1] === '#' || s[i + 1] === '!')) s = s.slice(0, i) + s.slice(i + 1);
        else i++;
        continue;
      }
      s = s.slice(0, i);
      cont = true;
      break;
    } else if (!quote && skip < 0 && (c === '!' || c === '#')) {
      skip = i;
    }
  }
  if (skip >= 0) s = s.slice(0, skip);
  s = s.replace(/[ \t\f\v]+$/, '');
  return { text: cont ? `${s}\\` : s, unterminated: quote };
}

/**
 * keepalived's `alloc_strvec()` for ordinary keywords: tokens split at white space; a token starting
 * with `"` runs to the next `"` and loses its quotes. Returns undefined tokens' tail on an unmatched quote.
 */
export function tokenize(line: string): { tokens: string[]; unmatched: boolean } {
  const tokens: string[] = [];
  let i = 0;
  const ws = /[ \t\f\n\r\v]/;
  while (i < line.length) {
    while (i < line.length && ws.test(line[i] ?? '')) i++;
    if (i >= line.length) break;
    if (line[i] === '"') {
      const end = line.indexOf('"', i + 1);
      if (end < 0) return { tokens, unmatched: true };
      tokens.push(line.slice(i + 1, end));
      i = end + 1;
    } else {
      const start = i;
      while (i < line.length && !ws.test(line[i] ?? '') && line[i] !== '"') i++;
      tokens.push(line.slice(start, i));
    }
  }
  return { tokens, unmatched: false };
}

/** Splits a line at its first `{` or `}` outside double quotes: [line, residue?]. */
function splitBrace(buf: string): [string, string | undefined] {
  if (buf.startsWith('{') || buf.startsWith('}')) {
    const rest = buf.slice(1).replace(/^[ \t]+/, '').replace(/[ \t]+$/, '');
    return [buf[0] ?? '', rest.length ? rest : undefined];
  }
  for (let i = 0; i < buf.length; i++) {
    const c = buf[i];
    if (c === '"') {
      const end = buf.indexOf('"', i + 1);
      if (end < 0) break;
      i = end;
    } else if (c === '{' || c === '}') {
      return [buf.slice(0, i).replace(/[ \t]+$/, ''), buf.slice(i).replace(/[ \t]+$/, '')];
    }
  }
  return [buf.replace(/[ \t]+$/, ''), undefined];
}

/** Lexes a configuration, starting at `path`. */
export function lex(path: string, files: ConfigFiles, options: LexOptions): LexResult {
  const lines: LogicalLine[] = [];
  const diagnostics: KeepalivedDiagnostic[] = [];
  const defs = new Map<string, string>();
  let depth = 0;

  const builtin = (name: string): string | undefined => {
    switch (name) {
      case '_PWD':
        return options.cwd;
      case '_INSTANCE':
        return options.configId;
      case '_HASH':
        return '#';
      case '_BANG':
        return '!';
      default:
        return undefined;
    }
  };

  // `$NAME` (followed by blank, `,`, `)` or end) or `${NAME}`; recursive, bounded.
  const substitute = (text: string, source: KeepalivedSource): string => {
    let out = text;
    for (let round = 0; round < 32 && out.includes('$'); round++) {
      let changed = false;
      out = out.replace(/\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)(?=[ \t,)]|$)/g, (m, b, params, p) => {
        const name = (b ?? p) as string;
        const value = defs.get(name) ?? builtin(name);
        if (value === undefined) {
          if (name === '_RANDOM' || name === '_ENV')
            diagnostics.push(diagnostic('error', `\${${name}} is not supported by lvs`, source));
          return m;
        }
        if (typeof params === 'string' && params.trim()) return m;
        changed = true;
        return value;
      });
      if (!changed) break;
    }
    return out;
  };

  const handle = (raw: string, source: KeepalivedSource, includeDepth: number): void => {
    let buf = raw;
    for (;;) {
      if (buf.startsWith('@')) {
        const rev = buf[1] === '^';
        const ofs = rev ? 2 : 1;
        const m = /[ \t]/.exec(buf.slice(ofs));
        if (!m) return;
        const id = buf.slice(ofs, ofs + m.index);
        if ((id === options.configId) === rev) return;
        buf = buf.slice(ofs + m.index).replace(/^[ \t]+/, '');
      }
      const def = /^\$([A-Za-z_][A-Za-z0-9_]*)[ \t]*=[ \t]*(.*)$/.exec(buf);
      if (def) {
        const value = def[2] ?? '';
        if (value.endsWith('\\'))
          diagnostics.push(diagnostic('error', `multi-line parameter $${def[1]} is not supported by lvs`, source));
        defs.set(def[1] ?? '', value);
        return;
      }
      if (buf.startsWith('~')) {
        diagnostics.push(diagnostic('error', `'${buf.split(/[ \t(]/)[0]}' line repetition is not supported by lvs`, source));
        return;
      }
      if (buf.includes('$')) {
        const replaced = substitute(buf, source);
        if (replaced !== buf) {
          buf = replaced;
          if (buf.startsWith('@')) continue;
        }
      }
      break;
    }
    if (!buf) return;
    const { tokens } = tokenize(buf);
    if (tokens.length === 2 && INCLUDE_KEYWORDS.has(tokens[0] ?? '')) {
      const pattern = tokens[1] ?? '';
      const matches = files.glob(pattern, files.dirname(source.file));
      if (matches.length === 0) diagnostics.push(diagnostic('warning', `Config files missing '${pattern}'.`, source));
      if (includeDepth >= MAX_INCLUDE_DEPTH) {
        diagnostics.push(diagnostic('error', `include nesting deeper than ${MAX_INCLUDE_DEPTH} - ignoring '${pattern}'`, source));
        return;
      }
      for (const file of matches) readFile(file, includeDepth + 1);
      return;
    }
    const [line, residue] = splitBrace(buf);
    if (line === '{') depth++;
    else if (line === '}') {
      if (depth-- < 1) {
        diagnostics.push(diagnostic('error', "Extra '}' found", source));
        depth = 0;
      }
    }
    if (line) lines.push({ text: line, source });
    if (residue !== undefined) handle(residue, source, includeDepth);
  };

  const readFile = (file: string, includeDepth: number): void => {
    const text = files.read(file);
    if (text === undefined) {
      diagnostics.push(diagnostic('warning', `Configuration file '${file}' open problem - skipping`));
      return;
    }
    const physical = text.split('\n');
    if (physical[physical.length - 1] === '') physical.pop();
    physical.forEach((rawLine, index) => {
      const source = { file, line: index + 1 };
      const stripped = rawLine.replace(/[\r\n]+$/, '');
      if (!stripped) return;
      const { text: clean, unterminated } = decomment(stripped);
      if (unterminated) diagnostics.push(diagnostic('error', `Unterminated quote '${clean}'`, source));
      if (clean) handle(clean, source, includeDepth);
    });
  };

  readFile(path, 0);
  if (depth > 0) diagnostics.push(diagnostic('error', `There are ${depth} missing '}'s or extra '{'s`));
  return { lines, diagnostics };
}
