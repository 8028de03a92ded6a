/**
 * keepalived.conf support: parse a configuration into typed objects, check it like
 * `keepalived -t`, and compute the IPVS rules it produces at startup.
 * @module
 */
import { accessSync, constants, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { delimiter, join } from 'node:path';
import { Director } from '../director.js';
import { ManualClock } from '../health/clock.js';
import { fromKeepalived } from '../health/keepalived.js';
import { HealthMonitor } from '../health/monitor.js';
import { nodeConfigFiles } from './files.js';
import { type ConfigFiles, diagnostic, lex } from './lexer.js';
import { parseLines } from './parser.js';
import type { KeepalivedConfig, KeepalivedDiagnostic } from './types.js';

export type * from './types.js';
export {
  checkerAlertBody,
  formatKeepalivedAlert,
  type KeepalivedAlertEvent,
  KeepalivedAlerts,
  type KeepalivedAlertsEvents,
  type KeepalivedAlertsOptions,
  quorumAlertBody,
} from './alerts.js';
export {
  rfc822Date,
  type SmtpAlert,
  SmtpAlerter,
  type SmtpAlerterEvents,
  type SmtpAlerterOptions,
  smtpMessage,
} from './smtp.js';
export {
  KeepalivedRun,
  type KeepalivedPlan,
  type KeepalivedRunEvents,
  type KeepalivedRunOptions,
  planKeepalived,
  runKeepalived,
} from './daemon.js';

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
  // The health monitor's start is exactly keepalived's startup; on a clock that never moves, no
  // check runs before the rules are read.
  const monitor = new HealthMonitor(director, fromKeepalived(config).virtualServers, { clock: new ManualClock() });
  try {
    await monitor.start();
    return director.save();
  } finally {
    await monitor.stop();
    director.close();
  }
}
