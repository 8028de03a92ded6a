/**
 * keepalived.conf support: parse a configuration into typed objects, check it like
 * `keepalived -t`, and compute the IPVS rules it produces at startup.
 * @module
 */
import { accessSync, constants, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { delimiter, join } from 'node:path';
import { Director } from '../director.js';
import { LvsError } from '../errors.js';
import type { ServerOptions, ServiceRef } from '../types.js';
import { nodeConfigFiles } from './files.js';
import { type ConfigFiles, diagnostic, lex } from './lexer.js';
import { parseLines } from './parser.js';
import type { KeepalivedConfig, KeepalivedDiagnostic, LvsMethod, VirtualServer } from './types.js';

export type * from './types.js';

/** Options of {@link parseKeepalivedConfig} and {@link checkKeepalivedConfig}. */
export interface KeepalivedParseOptions {
  /** The config id `@ID` lines are matched against (`-i`); default: the host name up to the first dot. */
  readonly configId?: string;
  /** Check that interfaces named by instances exist (default: for checks, the host's interfaces). */
  readonly interfaceExists?: (name: string) => boolean;
  /** Check that a script's program exists and is executable (default: for checks, the file system). */
  readonly scriptRunnable?: (argv0: string) => boolean;
}

/** What {@link parseKeepalivedConfig} returns. */
export interface KeepalivedParseResult {
  /** The typed configuration (keepalived's defaults applied, invalid parts dropped as keepalived does). */
  readonly config: KeepalivedConfig;
  /** Every problem found, in order, each with keepalived's text. */
  readonly diagnostics: readonly KeepalivedDiagnostic[];
}

/** What {@link checkKeepalivedConfig} returns: `keepalived -t` semantics. */
export interface KeepalivedCheckResult {
  /** 0 ok, 4 fatal (unreadable file), 5 configuration error, 6 script security problem. */
  readonly exitCode: 0 | 4 | 5 | 6;
  /** The messages `-t` prints, one per problem, `(<file>: Line <n>) <text>` where a line applies. */
  readonly messages: readonly string[];
}

function shortHostname(): string {
  return hostname().split('.')[0] ?? '';
}

/**
 * Parses a keepalived.conf (with its includes) into typed configuration objects.
 *
 * @example
 * ```ts
 * import { parseKeepalivedConfig } from 'lvs';
 *
 * const { config, diagnostics } = parseKeepalivedConfig({ text: 'virtual_server 10.0.0.1 80 {\n protocol TCP\n}\n' });
 * for (const d of diagnostics) console.log(d.text);
 * console.log(config.virtualServers.length);
 * ```
 */
export function parseKeepalivedConfig(
  input: string | { readonly text: string; readonly path?: string },
  options: KeepalivedParseOptions = {},
): KeepalivedParseResult {
  const configId = options.configId ?? shortHostname();
  let files: ConfigFiles = nodeConfigFiles;
  let path: string;
  if (typeof input === 'string') path = input;
  else {
    path = input.path ?? 'keepalived.conf';
    const text = input.text;
    const main = path;
    files = { ...nodeConfigFiles, read: (p) => (p === main ? text : nodeConfigFiles.read(p)) };
  }
  const diagnostics: KeepalivedDiagnostic[] = [];
  const present = files.read(path) !== undefined;
  if (!present) diagnostics.push(diagnostic('warning', `Config files missing '${path}'.`));
  const lexed = present ? lex(path, files, { configId, cwd: process.cwd() }) : { lines: [], diagnostics: [] };
  diagnostics.push(...lexed.diagnostics);
  const config = parseLines(lexed.lines, diagnostics, {
    hostname: hostname(),
    ...(options.interfaceExists ? { interfaceExists: options.interfaceExists } : {}),
  });
  scriptChecks(config, diagnostics, options.scriptRunnable);
  return { config, diagnostics };
}

/** Script availability and security, as keepalived checks them after parsing. */
function scriptChecks(
  config: KeepalivedConfig,
  diagnostics: KeepalivedDiagnostic[],
  runnable: ((argv0: string) => boolean) | undefined,
): void {
  if (!runnable || config.unsupported.some((u) => u.keyword === 'net_namespace')) return;
  const ok = (argv: readonly string[], shell: boolean): boolean => shell || (argv[0] !== undefined && runnable(argv[0]));
  let executing = false;
  const tracked = new Set(
    [...config.vrrpInstances, ...config.vrrpSyncGroups].flatMap((i) => i.trackScripts.map((t) => t.name)),
  );
  for (const s of config.vrrpScripts) {
    if (!tracked.has(s.name)) continue;
    if (ok(s.script.argv, s.script.shell)) executing = true;
    else diagnostics.push(diagnostic('error', `Disabling track script ${s.name} since not found/accessible`));
  }
  const notifies = [
    ...config.vrrpInstances.flatMap((i) => [i.notifyMaster, i.notifyBackup, i.notifyFault, i.notifyStop, i.notify]),
    ...config.vrrpSyncGroups.flatMap((i) => [i.notifyMaster, i.notifyBackup, i.notifyFault, i.notifyStop, i.notify]),
    ...config.virtualServers.flatMap((v) => [
      v.quorumUp,
      v.quorumDown,
      ...v.realServers.flatMap((r) => [
        r.notifyUp,
        r.notifyDown,
        ...r.checkers.map((c) => (c.type === 'MISC_CHECK' ? c.miscPath : undefined)),
      ]),
    ]),
  ];
  for (const n of notifies) if (n && ok(n.argv, n.shell)) executing = true;
  if (executing && !config.globalDefs.enableScriptSecurity)
    diagnostics.push(diagnostic('security', 'SECURITY VIOLATION - scripts are being executed but script_security not enabled.'));
}

function sysInterfaceExists(name: string): boolean {
  try {
    return readdirSync('/sys/class/net').includes(name);
  } catch {
    return true;
  }
}

function pathRunnable(argv0: string): boolean {
  const candidates = argv0.includes('/') ? [argv0] : (process.env['PATH'] ?? '').split(delimiter).map((d) => join(d, argv0));
  return candidates.some((c) => {
    try {
      accessSync(c, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/**
 * Checks a configuration file like `keepalived -t -f FILE`: the exit code keepalived would give and
 * the messages it would print. A missing file is reported and exits 0, as keepalived does.
 *
 * @example
 * ```ts
 * import { checkKeepalivedConfig } from 'lvs';
 *
 * const { exitCode, messages } = checkKeepalivedConfig('/etc/keepalived/keepalived.conf');
 * for (const m of messages) console.error(m);
 * process.exitCode = exitCode;
 * ```
 */
export function checkKeepalivedConfig(path: string, options: KeepalivedParseOptions = {}): KeepalivedCheckResult {
  const { diagnostics } = parseKeepalivedConfig(path, {
    interfaceExists: sysInterfaceExists,
    scriptRunnable: pathRunnable,
    ...options,
  });
  const messages: string[] = [];
  let exitCode: KeepalivedCheckResult['exitCode'] = 0;
  for (const d of diagnostics) {
    if (!messages.includes(d.text)) messages.push(d.text);
    const code = d.severity === 'fatal' ? 4 : d.severity === 'security' ? 6 : d.severity === 'error' ? 5 : 0;
    if (code > exitCode) exitCode = code;
  }
  return { exitCode, messages };
}

function methodOptions(m: LvsMethod): Pick<ServerOptions, 'method' | 'tunnel'> {
  if (m.kind === 'NAT') return { method: 'masq' };
  if (m.kind === 'DR') return { method: 'route' };
  if (!m.tunnelType || m.tunnelType === 'ipip') return { method: 'tunnel' };
  const checksum = m.tunnelChecksum === 'csum' ? 'csum' : m.tunnelChecksum === 'remcsum' ? 'remcsum' : 'none';
  return {
    method: 'tunnel',
    tunnel: { type: m.tunnelType, ...(m.tunnelPort !== undefined ? { port: m.tunnelPort } : {}), checksum },
  };
}

/** keepalived treats EEXIST on add as success (two blocks may name one service). */
function ignoreExists(add: () => unknown): void {
  try {
    add();
  } catch (err) {
    if (!(err instanceof LvsError && err.code === 'EEXIST')) throw err;
  }
}

function hostPort(address: string, port: number): string {
  return address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`;
}

/** The IPVS services one virtual_server block stands for (a group expands to many). */
function serviceRefs(config: KeepalivedConfig, vs: VirtualServer): ServiceRef[] {
  const protocol = vs.protocol === 'TCP' ? 'tcp' : vs.protocol === 'UDP' ? 'udp' : 'sctp';
  const key = vs.key;
  if (key.kind === 'address') return [{ protocol, address: hostPort(key.address, key.port) }];
  if (key.kind === 'fwmark') return [{ fwmark: key.fwmark, family: vs.ipFamily }];
  const group = config.virtualServerGroups.find((g) => g.name === key.group);
  const refs: ServiceRef[] = [];
  for (const e of group?.entries ?? []) {
    if (e.kind === 'fwmark') {
      refs.push({ fwmark: e.fwmark, family: e.family });
      continue;
    }
    if (e.first.includes(':')) {
      refs.push({ protocol, address: hostPort(e.first, e.port) });
      continue;
    }
    const toInt = (a: string): number => a.split('.').reduce((n, o) => n * 256 + Number(o), 0);
    for (let n = toInt(e.first); n <= toInt(e.last); n++) {
      const a = [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
      refs.push({ protocol, address: hostPort(a, e.port) });
    }
  }
  return refs;
}

/**
 * The `ipvsadm -S -n` rule set a configuration produces when keepalived starts: every virtual
 * service (groups expanded), with the real servers that start alive (no `alpha`), alpha servers
 * with `inhibit_on_failure` at weight 0, and the sorry server when quorum starts down.
 *
 * @example
 * ```ts
 * import { keepalivedToIpvsadm, parseKeepalivedConfig } from 'lvs';
 *
 * const { config } = parseKeepalivedConfig('/etc/keepalived/keepalived.conf');
 * process.stdout.write(await keepalivedToIpvsadm(config));
 * ```
 */
export async function keepalivedToIpvsadm(config: KeepalivedConfig): Promise<string> {
  const director = await Director.open();
  try {
    for (const vs of config.virtualServers) {
      const settings = {
        scheduler: vs.lvsSched,
        ...(vs.persistenceTimeout !== undefined ? { persistent: vs.persistenceTimeout } : {}),
        ...(vs.persistenceGranularity !== undefined ? { netmask: vs.persistenceGranularity } : {}),
        ...(vs.persistenceEngine === 'sip' ? { pe: 'sip' as const } : {}),
        ...(vs.ops ? { onePacket: true } : {}),
        ...(vs.schedFlags.length ? { schedFlags: vs.schedFlags } : {}),
      };
      const alive = vs.realServers.filter((r) => !r.alpha && !r.checkers.some((c) => c.alpha));
      const weightSum = alive.reduce((s, r) => s + r.weight, 0);
      const quorumUp = weightSum >= vs.quorum + vs.hysteresis;
      for (const ref of serviceRefs(config, vs)) {
        ignoreExists(() => director.addService({ ...ref, ...settings }));
        const fwmark = 'fwmark' in ref;
        const add = (address: string, port: number, method: LvsMethod, weight: number, r?: { uthreshold: number; lthreshold: number }): void => {
          ignoreExists(() => director.addServer(ref, {
            address: fwmark && port === 0 ? address : hostPort(address, port),
            ...methodOptions(method),
            weight,
            ...(r?.uthreshold ? { upperThreshold: r.uthreshold } : {}),
            ...(r?.lthreshold ? { lowerThreshold: r.lthreshold } : {}),
          }));
        };
        const sorry = vs.sorryServer;
        if (!quorumUp && sorry) {
          add(sorry.address, sorry.port, sorry.lvsMethod, 1);
        } else {
          for (const r of vs.realServers) {
            const up = alive.includes(r);
            if (up) add(r.address, r.port, r.lvsMethod, r.weight, r);
            else if (r.inhibitOnFailure) add(r.address, r.port, r.lvsMethod, 0, r);
          }
          if (sorry?.inhibit) add(sorry.address, sorry.port, sorry.lvsMethod, 0);
        }
      }
    }
    return director.save();
  } finally {
    director.close();
  }
}
