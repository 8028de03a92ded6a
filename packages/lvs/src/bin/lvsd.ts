#!/usr/bin/env node
/**
 * `lvsd`: runs an lvs director on real interfaces and serves `lvsadm` on a control socket.
 *
 *   lvsd -I eth0 [-I eth1] [--workers N] [--control-socket PATH] [--rules FILE]
 *   lvsd -t [-f FILE] [-i CONFIG_ID]            check a keepalived.conf like `keepalived -t`
 *   lvsd --dump-rules [-f FILE] [-i CONFIG_ID]  print the `ipvsadm -S -n` rules the file produces
 *
 * Rules (ipvsadm -S format) are applied at start; afterwards `lvsadm` changes them. Stops
 * cleanly on SIGINT/SIGTERM. The command line follows keepalived's where they overlap (`-f`,
 * `-t`, `-i` is the config id), so interfaces are `-I`.
 * @internal
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_CONTROL_SOCKET } from '../control.js';
import { Director } from '../director.js';
import { LvsError } from '../errors.js';
import { checkKeepalivedConfig, keepalivedToIpvsadm, parseKeepalivedConfig } from '../keepalived/index.js';

const DEFAULT_CONFIG = '/etc/keepalived/keepalived.conf';
const usage = `Usage: lvsd -I IFACE [-I IFACE …] [--workers N] [--control-socket PATH] [--rules FILE]
       lvsd -t [-f FILE] [-i ID] | --dump-rules [-f FILE] [-i ID]
  -I, --interface IFACE    interface to balance on (repeatable)
  -f, --use-file FILE      keepalived configuration (default ${DEFAULT_CONFIG})
  -t, --config-test[=FILE] check the configuration like keepalived -t (exit 0 ok, 4, 5, 6)
      --dump-rules         print the ipvsadm -S -n rules the configuration produces at startup
  -i, --config-id ID       config id for @ID lines (default: the host name up to the first dot)
  -w, --workers N          packet worker threads (default 1)
  -s, --control-socket P   lvsadm control socket (default ${DEFAULT_CONTROL_SOCKET})
  -r, --rules FILE         rules to restore at start (ipvsadm -S format)
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
      workers: { type: 'string', short: 'w' },
      'control-socket': { type: 'string', short: 's' },
      rules: { type: 'string', short: 'r' },
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
if (args['use-file'] !== undefined) fail('running from a keepalived configuration (-f without -t or --dump-rules) is not built yet', 1);
const interfaces = args.interface ?? [];
if (interfaces.length === 0) fail(`at least one --interface is needed\n${usage}`);
const workers = args.workers === undefined ? 1 : Number(args.workers);
if (!Number.isInteger(workers) || workers < 1 || workers > 64) fail('--workers takes 1..64');
const socketPath = args['control-socket'] ?? process.env['LVSADM_SOCKET'] ?? DEFAULT_CONTROL_SOCKET;

let director: Director;
try {
  director = await Director.open({ interfaces, workers });
  if (args.rules !== undefined) director.restore(readFileSync(args.rules, 'utf8'));
} catch (err) {
  const e = err as LvsError;
  fail(`${e.code ? `${e.code}: ` : ''}${e.message}`, 1);
}
const control = await director.serve({ path: socketPath });
process.stdout.write(`lvsd: balancing on ${interfaces.join(', ')} with ${workers} worker(s); lvsadm socket ${control.path}\n`);

let stopping = false;
const stop = (signal: string): void => {
  if (stopping) return;
  stopping = true;
  process.stdout.write(`lvsd: ${signal}, stopping\n`);
  director.close();
  void control.close().finally(() => process.exit(0));
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
