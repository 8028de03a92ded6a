/**
 * The file-system side of configuration reading: reading files and expanding include globs
 * (`*`, `?`, `[...]` and csh-style `{a,b}`), relative to the including file's directory.
 * @module
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import type { ConfigFiles } from './lexer.js';

const MAX_BRACE_EXPANSIONS = 1024;

/** Expands csh braces: `a{b,c}d` → `abd`, `acd` (bounded). */
export function expandBraces(pattern: string): string[] {
  const open = pattern.indexOf('{');
  if (open < 0) return [pattern];
  let depth = 0;
  const commas: number[] = [];
  let close = -1;
  for (let i = open; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === '{') depth++;
    else if (c === '}' && --depth === 0) {
      close = i;
      break;
    } else if (c === ',' && depth === 1) commas.push(i);
  }
  if (close < 0) return [pattern];
  const bounds = [open, ...commas, close];
  const out: string[] = [];
  for (let k = 0; k + 1 < bounds.length && out.length < MAX_BRACE_EXPANSIONS; k++) {
    const alt = pattern.slice((bounds[k] ?? 0) + 1, bounds[k + 1]);
    for (const tail of expandBraces(pattern.slice(0, open) + alt + pattern.slice(close + 1))) out.push(tail);
  }
  return out.slice(0, MAX_BRACE_EXPANSIONS);
}

function segmentRegex(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i] ?? '';
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const end = segment.indexOf(']', i + 2);
      if (end < 0) re += '\\[';
      else {
        const body = segment.slice(i + 1, end).replace(/^!/, '^').replace(/\\/g, '\\\\');
        re += `[${body}]`;
        i = end;
      }
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function globOne(pattern: string): string[] {
  const parts = pattern.split('/');
  let paths = [parts[0] === '' ? '/' : '.'];
  for (const [i, part] of parts.entries()) {
    if (part === '' || (i === 0 && part === '.')) continue;
    const next: string[] = [];
    for (const base of paths) {
      if (!/[*?[]/.test(part)) {
        next.push(join(base, part));
        continue;
      }
      let names: string[] = [];
      try {
        names = readdirSync(base);
      } catch {
        continue;
      }
      const re = segmentRegex(part);
      for (const name of names.sort()) if (re.test(name) && (part.startsWith('.') || !name.startsWith('.'))) next.push(join(base, name));
    }
    paths = next;
  }
  return paths.filter(isFile);
}

/** The real file system. */
export const nodeConfigFiles: ConfigFiles = {
  read(path) {
    try {
      return isFile(path) ? readFileSync(path, 'utf8') : undefined;
    } catch {
      return undefined;
    }
  },
  glob(pattern, dir) {
    const absolute = isAbsolute(pattern) ? pattern : resolve(dir, pattern);
    const seen = new Set<string>();
    for (const p of expandBraces(absolute)) for (const m of globOne(p)) seen.add(m);
    return [...seen];
  },
  dirname,
};
