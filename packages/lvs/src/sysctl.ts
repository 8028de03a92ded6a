/**
 * `net.ipv4.vs.*` settings in the forms operators write them: `sysctl.conf` files and
 * `sysctl NAME[=VALUE]` arguments. The director itself validates names and values
 * ({@link Director.setSysctl}); this module only reads the text.
 * @module
 */
import type { Director, ExecResult } from './director.js';
import { LvsError } from './errors.js';

/** One `name = value` line of a sysctl.conf file that concerns IPVS. */
export interface SysctlLine {
  /** 1-based line number in the file. */
  readonly line: number;
  /** The key as written (`net.ipv4.vs.expire_nodest_conn`). */
  readonly name: string;
  /** The value, trimmed. */
  readonly value: string;
}

const IPVS_KEY = /^(net\.ipv4\.vs\.|net\/ipv4\/vs\/)/;

/**
 * Reads the IPVS lines of a sysctl.conf (sysctl.d) file: `#` and `;` comments, blank lines, a
 * leading `-` (ignore-failure marker), `name = value` or `name=value`. Keys of other subsystems
 * (`net.ipv4.ip_forward`) are for the kernel and are skipped.
 *
 * @throws {@link LvsError} `EINVAL` naming the line of a line that is not `name = value`.
 * @example
 * ```ts
 * parseSysctlConf('net.ipv4.vs.expire_nodest_conn = 1\nnet.ipv4.ip_forward = 1\n');
 * // [{ line: 1, name: 'net.ipv4.vs.expire_nodest_conn', value: '1' }]
 * ```
 */
export function parseSysctlConf(text: string, file = 'sysctl.conf'): SysctlLine[] {
  const out: SysctlLine[] = [];
  text.split('\n').forEach((raw, i) => {
    const body = raw.trim();
    if (body === '' || body.startsWith('#') || body.startsWith(';')) return;
    const eq = body.indexOf('=');
    if (eq <= 0) throw new LvsError('EINVAL', `${file}:${i + 1}: expected 'name = value': ${body}`);
    const name = body.slice(0, eq).trim().replace(/^-/, '');
    if (IPVS_KEY.test(name)) out.push({ line: i + 1, name, value: body.slice(eq + 1).trim() });
  });
  return out;
}

/**
 * Sets `name = value` pairs one at a time, so an error can name the pair, and puts every
 * setting back as it was when one fails.
 */
function setEach<T extends { readonly name: string; readonly value: string }>(
  director: Director,
  entries: readonly T[],
  where: (entry: T) => string,
): void {
  const saved = director.sysctl();
  for (const entry of entries) {
    try {
      director.setSysctl(entry.name, entry.value);
    } catch (err) {
      director.setSysctl(saved);
      const e = err as LvsError;
      throw new LvsError(e.code, `${where(entry)}${e.message}`, { cause: err });
    }
  }
}

/**
 * Applies the IPVS lines of a sysctl.conf file to a director, all or none; an error names the
 * file and line.
 *
 * @throws {@link LvsError} with the code {@link Director.setSysctl} gives, the message starting
 * with `FILE:LINE: `.
 * @example
 * ```ts
 * applySysctlConf(director, readFileSync('/etc/sysctl.d/90-lvs.conf', 'utf8'), '/etc/sysctl.d/90-lvs.conf');
 * ```
 */
export function applySysctlConf(director: Director, text: string, file = 'sysctl.conf'): void {
  setEach(director, parseSysctlConf(text, file), (l) => `${file}:${l.line}: `);
}

/**
 * `lvsadm --sysctl [NAME[=VALUE] …]`: what `sysctl net.ipv4.vs` / `sysctl -w NAME=VALUE` print,
 * against a director. Without arguments it lists every setting lvs acts on.
 * @internal Used by the control socket.
 */
export function sysctlCommand(director: Director, args: readonly string[]): ExecResult {
  const full = (n: string): string => `net.ipv4.vs.${n.trim().replace(IPVS_KEY, '')}`;
  try {
    if (args.length === 0) {
      // Each value as the director prints it by name, the /proc form (`sync_threshold`: `3\t50`).
      const lines = Object.keys(director.sysctl()).map((k) => `${full(k)} = ${director.sysctl(k)}\n`);
      return { stdout: lines.join(''), stderr: '', status: 0 };
    }
    const pairs = args.map((a) => {
      const eq = a.indexOf('=');
      return eq < 0 ? { name: a, value: undefined } : { name: a.slice(0, eq), value: a.slice(eq + 1).trim() };
    });
    const writes = pairs.flatMap((p) => (p.value === undefined ? [] : [{ name: p.name, value: p.value }]));
    setEach(director, writes, () => '');
    const stdout = pairs.map((p) => `${full(p.name)} = ${director.sysctl(p.name)}\n`).join('');
    return { stdout, stderr: '', status: 0 };
  } catch (err) {
    return { stdout: '', stderr: `sysctl: ${(err as Error).message}\n`, status: 255 };
  }
}
