/**
 * Splits a script command line into argv the way keepalived splits `misc_path` and `notify_*`
 * commands: at unquoted blanks, with `"` and `'` quoting (quotes removed, adjacent text joined)
 * and C-style backslash escapes. No shell is involved.
 * @module
 */

/** What separates words (keepalived splits at any C `isspace` character). */
const BLANKS = ' \t\f\n\r\v';

const SIMPLE: Readonly<Record<string, string>> = {
  a: '\x07',
  b: '\b',
  E: '\x1b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
};

/** Reads one escape after a backslash at `i`; returns the text and the index after it. */
function escape(s: string, i: number): [string, number] {
  const c = s[i];
  if (c === undefined) return ['\\', i];
  const simple = SIMPLE[c];
  if (simple !== undefined) return [simple, i + 1];
  if (c === 'x') {
    const m = /^[0-9a-fA-F]{1,2}/.exec(s.slice(i + 1));
    if (m) return [String.fromCharCode(parseInt(m[0], 16)), i + 1 + m[0].length];
    return ['x', i + 1];
  }
  if (c >= '0' && c <= '7') {
    const m = /^[0-7]{1,3}/.exec(s.slice(i)) as RegExpExecArray;
    return [String.fromCharCode(parseInt(m[0], 8) & 0xff), i + m[0].length];
  }
  if (c === 'c' && i + 1 < s.length) {
    return [String.fromCharCode((s.charCodeAt(i + 1) & 0x1f) >>> 0), i + 2];
  }
  return [c, i + 1];
}

/**
 * Splits a keepalived script command line into arguments.
 *
 * @throws `RangeError` on an unterminated quote.
 * @example
 * ```ts
 * splitCommand(`/usr/bin/check "a b" 'c d'e \\t`); // ['/usr/bin/check', 'a b', 'c de', '\t']
 * ```
 */
export function splitCommand(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let i = 0;
  while (i < line.length) {
    const c = line[i] as string;
    if (BLANKS.includes(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
      i++;
    } else if (c === '"' || c === "'") {
      const end = line.indexOf(c, i + 1);
      if (end < 0) throw new RangeError(`unterminated ${c} quote in command: ${line}`);
      // Escapes still apply inside quotes, as in keepalived's alloc_strvec_quoted_escaped.
      let j = i + 1;
      while (j < end) {
        if (line[j] === '\\') {
          const [text, next] = escape(line, j + 1);
          cur += text;
          j = Math.min(next, end);
        } else cur += line[j++];
      }
      inWord = true;
      i = end + 1;
    } else if (c === '\\') {
      const [text, next] = escape(line, i + 1);
      cur += text;
      inWord = true;
      i = next;
    } else {
      cur += c;
      inWord = true;
      i++;
    }
  }
  if (inWord) out.push(cur);
  return out;
}
