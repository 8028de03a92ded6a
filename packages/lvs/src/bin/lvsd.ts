#!/usr/bin/env node
/**
 * `lvsd`: runs an lvs director on real interfaces and serves `lvsadm` on a control socket.
 *
 *   lvsd -I eth0 [-I eth1] [--workers N] [--xdp] [--control-socket PATH] [--rules FILE]
 *        [--sysctl NAME=VALUE …] [--sysctl-file FILE …]
 *   lvsd -f keepalived.conf [-i CONFIG_ID] [-I IFACE …] [-X]   run a keepalived configuration
 *   lvsd -t [-f FILE] [-i CONFIG_ID]            check a keepalived.conf like `keepalived -t`
 *   lvsd --dump-rules [-f FILE] [-i CONFIG_ID]  print the `ipvsadm -S -n` rules the file produces
 *
 * Rules (ipvsadm -S format) are applied at start; afterwards `lvsadm` changes them. With `-f`,
 * the keepalived configuration's virtual servers, health checks, VRRP instances and sync daemon
 * run on the interfaces it names (plus any `-I`); SIGHUP reloads the file. Stops cleanly on
 * SIGINT/SIGTERM (a VRRP MASTER resigns with priority 0, and the configuration's rules are
 * removed unless `-X`). The command line follows keepalived's where they overlap (`-f`,
 * `-t`, `-i` is the config id), so interfaces are `-I`.
 * @internal
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_CONTROL_SOCKET } from '../control.js';
import { Director } from '../director.js';
import { LvsError } from '../errors.js';
import { applySysctlConf } from '../sysctl.js';
import { type KeepalivedPlan, type KeepalivedRun, planKeepalived, runKeepalived } from '../keepalived/daemon.js';
import { checkKeepalivedConfig, keepalivedToIpvsadm, parseKeepalivedConfig } from '../keepalived/index.js';
import type { KeepalivedConfig } from '../keepalived/types.js';

const DEFAULT_CONFIG = '/etc/keepalived/keepalived.conf';
const usage = `Usage: lvsd -I IFACE [-I IFACE …] [--workers N] [--xdp] [--control-socket PATH] [--rules FILE]
       lvsd -f FILE [-i ID] [-I IFACE …] [-X]
       lvsd -t [-f FILE] [-i ID] | --dump-rules [-f FILE] [-i ID]
  -I, --interface IFACE    interface to balance on (repeatable; with -f, added to the config's)
  -f, --use-file FILE      run a keepalived configuration (default ${DEFAULT_CONFIG} for -t/--dump-rules)
  -X, --dont-release-ipvs  with -f: leave the rules in place when stopping
  -t, --config-test[=FILE] check the configuration like keepalived -t (exit 0 ok, 4, 5, 6)
      --dump-rules         print the ipvsadm -S -n rules the configuration produces at startup
  -i, --config-id ID       config id for @ID lines (default: the host name up to the first dot)
  -w, --workers N          packet worker threads (default 1)
      --xdp                receive and send through AF_XDP (an XDP program per interface)
                           instead of AF_PACKET; fails if XDP is unavailable
  -s, --control-socket P   lvsadm control socket (default ${DEFAULT_CONTROL_SOCKET})
  -r, --rules FILE         rules to restore at start (ipvsadm -S format)
      --sysctl NAME=VALUE  a net.ipv4.vs setting, as sysctl -w takes it (repeatable)
      --sysctl-file FILE   the net.ipv4.vs lines of a sysctl.conf file (repeatable)
  -h, --help               this help`;

function fail(message: string, status = 2): never {
  process.stderr.write(`lvsd: ${message}\n`);
  process.exit(status);
}

let args;
try {
  args = parseArgs({
    options: {
      interface: { type: 'string', short: 'I', multiple: true },
      'use-file': { type: 'string', short: 'f' },
      'config-test': { type: 'boolean', short: 't' },
      'dump-rules': { type: 'boolean' },
      'config-id': { type: 'string', short: 'i' },
      'dont-release-ipvs': { type: 'boolean', short: 'X' },
      workers: { type: 'string', short: 'w' },
      xdp: { type: 'boolean' },
      'control-socket': { type: 'string', short: 's' },
      rules: { type: 'string', short: 'r' },
      sysctl: { type: 'string', multiple: true },
      'sysctl-file': { type: 'string', multiple: true },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
    // keepalived's `--config-test=FILE` form: an optional value on a boolean option.
    args: process.argv.slice(2).flatMap((a) => {
      const m = /^--config-test=(.*)$/.exec(a);
      return m ? ['--config-test', '--use-file', m[1] ?? ''] : [a];
    }),
  }).values;
} catch (err) {
  fail(`${(err as Error).message}\n${usage}`);
}
if (args.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
const configFile = args['use-file'] ?? DEFAULT_CONFIG;
const configOptions = args['config-id'] === undefined ? {} : { configId: args['config-id'] };
if (args['config-test']) {
  const { exitCode, messages } = checkKeepalivedConfig(configFile, configOptions);
  for (const m of messages) process.stderr.write(`${m}\n`);
  process.exit(exitCode);
}
if (args['dump-rules']) {
  const { config, diagnostics } = parseKeepalivedConfig(configFile, configOptions);
  for (const d of diagnostics) if (d.severity !== 'warning') process.stderr.write(`${d.text}\n`);
  try {
    process.stdout.write(await keepalivedToIpvsadm(config));
  } catch (err) {
    const e = err as LvsError;
    fail(`${e.code ? `${e.code}: ` : ''}${e.message}`, 1);
  }
  process.exit(0);
}
const workers = args.workers === undefined ? 1 : Number(args.workers);
if (!Number.isInteger(workers) || workers < 1 || workers > 64) fail('--workers takes 1..64');
const socketPath = args['control-socket'] ?? process.env['LVSADM_SOCKET'] ?? DEFAULT_CONTROL_SOCKET;
const log = (line: string): void => {
  process.stdout.write(`lvsd: ${line}\n`);
};

// With -f, the keepalived configuration says what to run; -I adds interfaces to the ones it uses.
let plan: KeepalivedPlan | undefined;
let config: KeepalivedConfig | undefined;
if (args['use-file'] !== undefined) {
  const parsed = parseKeepalivedConfig(configFile, configOptions);
  // Like keepalived, configuration errors are reported and the rest runs; only an unreadable
  // file stops the start.
  for (const d of parsed.diagnostics) process.stderr.write(`${d.text}\n`);
  if (parsed.diagnostics.some((d) => d.severity === 'fatal' || d.message.startsWith('Config files missing'))) {
    fail(`cannot run ${configFile}`, 1);
  }
  config = parsed.config;
  plan = planKeepalived(config);
  for (const u of plan.unsupported) log(u);
}
const interfaces = [...new Set([...(plan?.interfaces ?? []), ...(args.interface ?? [])])];
if (interfaces.length === 0) {
  fail(plan ? 'the configuration uses no interface (no vrrp_instance): give -I IFACE' : `at least one --interface is needed\n${usage}`);
}

let director: Director;
let run: KeepalivedRun | undefined;
try {
  director = await Director.open({ interfaces, workers, xdp: args.xdp ?? false });
  for (const file of args['sysctl-file'] ?? []) applySysctlConf(director, readFileSync(file, 'utf8'), file);
  for (const setting of args.sysctl ?? []) {
    const eq = setting.indexOf('=');
    if (eq < 0) throw new LvsError('EINVAL', `--sysctl ${setting}: expected NAME=VALUE`);
    director.setSysctl(setting.slice(0, eq), setting.slice(eq + 1).trim());
  }
  if (args.rules !== undefined) director.restore(readFileSync(args.rules, 'utf8'));
  if (config !== undefined) {
    run = await runKeepalived(director, config, { releaseOnStop: !args['dont-release-ipvs'] });
    run.on('log', log);
    run.on('error', (err) => log(`error: ${err.message}`));
  }
} catch (err) {
  const e = err as LvsError;
  fail(`${e.code ? `${e.code}: ` : ''}${e.message}`, 1);
}
const control = await director.serve({ path: socketPath });
log(`balancing on ${interfaces.join(', ')} with ${workers} worker(s)${args.xdp ? ' over AF_XDP' : ''}; lvsadm socket ${control.path}`);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  log(`${signal}, stopping`);
  void (async () => {
    try {
      await run?.stop();
    } catch (err) {
      log(`error while stopping: ${(err as Error).message}`);
    }
    clearInterval(watchdog);
    try {
      director.close();
    } catch (err) {
      log(`error while stopping: ${(err as Error).message}`);
    }
    await control.close();
    process.exit(process.exitCode ?? 0);
  })();
};
// SIGHUP reloads the keepalived configuration, as it does keepalived; a file with fatal errors
// leaves the running configuration as it is.
process.on('SIGHUP', () => {
  if (run === undefined || stopping) return;
  log('SIGHUP, reloading the configuration');
  const parsed = parseKeepalivedConfig(configFile, configOptions);
  for (const d of parsed.diagnostics) process.stderr.write(`${d.text}\n`);
  if (parsed.diagnostics.some((d) => d.severity === 'fatal' || d.message.startsWith('Config files missing'))) {
    log(`cannot read ${configFile}: keeping the running configuration`);
    return;
  }
  const next = parsed.config;
  for (const u of planKeepalived(next).unsupported) log(u);
  run.reload(next).then(
    () => log('configuration reloaded'),
    (err: Error) => log(`reload failed: ${err.message}`),
  );
});
// A packet worker that ended (its interface was deleted) does not come back: say so and exit, so
// a supervisor restarts lvsd on the interfaces as they are now.
const watchdog = setInterval(() => {
  const failure = director.workerFailure();
  if (failure === undefined || stopping) return;
  clearInterval(watchdog);
  log(`packet worker failed: ${failure}`);
  process.exitCode = 1;
  stop('worker failure');
}, 1000);
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
