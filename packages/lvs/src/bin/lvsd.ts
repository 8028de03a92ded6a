#!/usr/bin/env node
/**
 * `lvsd`: runs an lvs director on real interfaces and serves `lvsadm` on a control socket.
 *
 *   lvsd -i eth0 [-i eth1] [--workers N] [--control-socket PATH] [--rules FILE]
 *
 * Rules (ipvsadm -S format) are applied at start; afterwards `lvsadm` changes them. Stops
 * cleanly on SIGINT/SIGTERM. (keepalived.conf support, `-f`, is not built yet.)
 * @internal
 * @module
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { DEFAULT_CONTROL_SOCKET } from '../control.js';
import { Director } from '../director.js';
import { LvsError } from '../errors.js';

const usage = `Usage: lvsd -i IFACE [-i IFACE …] [--workers N] [--control-socket PATH] [--rules FILE]
  -i, --interface IFACE    interface to balance on (repeatable)
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
      interface: { type: 'string', short: 'i', multiple: true },
      workers: { type: 'string', short: 'w' },
      'control-socket': { type: 'string', short: 's' },
      rules: { type: 'string', short: 'r' },
      help: { type: 'boolean', short: 'h' },
    },
    allowPositionals: false,
  }).values;
} catch (err) {
  fail(`${(err as Error).message}\n${usage}`);
}
if (args.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
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
