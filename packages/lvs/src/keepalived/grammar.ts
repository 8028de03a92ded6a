/**
 * The block engine of keepalived's `process_stream()`, driven by keyword tables.
 *
 * A table maps keywords to handlers. A keyword with a `block` table opens a `{ ... }` block of
 * further keywords; one with `entry` reads a value block (`{ one entry per line }`). Unknown
 * keywords, missing or unexpected braces are reported with keepalived's texts.
 * @module
 */
import { splitCommand } from '../command.js';
import { diagnostic, type LogicalLine, tokenize } from './lexer.js';
import type { KeepalivedDiagnostic, KeepalivedSource } from './types.js';

/** What a handler gets: the arguments after the keyword and where the line is. */

/**
 * keepalived's `alloc_strvec_quoted_escaped()` for script keywords (the same splitting it applies
 * to the command itself); undefined on an unmatched quote, which then falls back to plain tokens.
 */
function scriptTokens(text: string): string[] | undefined {
  try {
    return splitCommand(text);
  } catch {
    return undefined;
  }
}

export interface KeywordCall {
  /** Arguments (ordinary tokenization, or script tokenization for `script` keywords). */
  readonly args: string[];
  /** Where the keyword is. */
  readonly source: KeepalivedSource;
}

/** One keyword of a table. */
export interface Keyword {
  /** Called with the keyword line. */
  readonly handler?: (call: KeywordCall) => void;
  /** Sub-keywords of a `{ ... }` block. */
  readonly block?: () => KeywordTable;
  /** Called after the block's closing brace, with the brace's location. */
  readonly close?: (source: KeepalivedSource) => void;
  /** Value block: called once per entry line. */
  readonly entry?: (tokens: string[], source: KeepalivedSource) => void;
  /** Tokenize the line with script quoting (`'` and `"` quote, escapes decoded). */
  readonly script?: boolean;
  /** A block whose contents lvs does not interpret: skipped up to its matching `}`. */
  readonly opaque?: boolean;
}

/** Keywords by name (case-sensitive, as in keepalived). */
export type KeywordTable = Readonly<Record<string, Keyword>>;

/** Runs the tables over the lines. */
export class BlockParser {
  private pos = 0;

  constructor(
    private readonly lines: readonly LogicalLine[],
    private readonly diagnostics: KeepalivedDiagnostic[],
  ) {}

  /** Reports a configuration error (counted by `-t`). */
  error(message: string, source?: KeepalivedSource): void {
    this.diagnostics.push(diagnostic('error', message, source));
  }

  /** Parses everything with the root table. */
  run(root: KeywordTable): void {
    this.stream(root, 0, false);
  }

  private tokens(line: LogicalLine): string[] {
    const { tokens, unmatched } = tokenize(line.text);
    if (unmatched) this.error(`Unmatched quote: '${line.text}'`, line.source);
    return tokens;
  }

  private stream(table: KeywordTable, level: number, needBob: boolean): void {
    let bob = needBob;
    while (this.pos < this.lines.length) {
      const line = this.lines[this.pos++];
      if (!line) break;
      const tokens = this.tokens(line);
      const word = tokens[0];
      if (word === undefined) continue;
      if (bob) {
        bob = false;
        if (word === '{' && level > 0) continue;
        this.error("Missing '{' at beginning of configuration block", line.source);
      } else if (word === '{') {
        this.error("Unexpected '{' - ignoring", line.source);
        continue;
      }
      if (word === '}' && level > 0) return;
      const keyword = Object.hasOwn(table, word) ? table[word] : undefined;
      if (!keyword) {
        this.error(`Unknown keyword '${word}'`, line.source);
        continue;
      }
      const args = keyword.script ? (scriptTokens(line.text) ?? tokens).slice(1) : tokens.slice(1);
      if (keyword.entry) {
        // A value block with a handler takes a name (virtual_server_group NAME); others take nothing.
        if (keyword.handler) keyword.handler({ args, source: line.source });
        else if (args.length > 0) this.error(`Block ${word} has extra parameters ${args[0]} ...`, line.source);
        this.valueBlock(keyword.entry);
        continue;
      }
      keyword.handler?.({ args, source: line.source });
      if (keyword.opaque) {
        this.skipBlock();
        continue;
      }
      if (keyword.block) {
        this.stream(keyword.block(), level + 1, true);
        const closing = this.lines[this.pos - 1];
        keyword.close?.(closing?.source ?? line.source);
      }
    }
  }

  private skipBlock(): void {
    let depth = 0;
    while (this.pos < this.lines.length) {
      const text = this.lines[this.pos]?.text;
      if (depth === 0 && text !== '{') return;
      this.pos++;
      if (text === '{') depth++;
      else if (text === '}' && --depth === 0) return;
    }
  }

  private valueBlock(entry: (tokens: string[], source: KeepalivedSource) => void): void {
    let needBob = true;
    while (this.pos < this.lines.length) {
      const line = this.lines[this.pos++];
      if (!line) break;
      const tokens = this.tokens(line);
      if (tokens.length === 0) continue;
      if (needBob) {
        needBob = false;
        if (tokens[0] === '{') continue;
      }
      if (tokens[0] === '}') return;
      entry(tokens, line.source);
    }
  }
}
