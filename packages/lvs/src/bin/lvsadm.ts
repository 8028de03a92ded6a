#!/usr/bin/env node
/**
 * `lvsadm`: ipvsadm's command line for a running lvs director. Same options, same output, same
 * exit codes; the director is reached over its control socket (`LVSADM_SOCKET`, or
 * `--control-socket PATH` as the first arguments, default /run/lvs/lvsadm.sock). `lvsadm --sysctl
 * [NAME[=VALUE] …]` reads and sets the director's net.ipv4.vs settings as `sysctl` does.
 * @internal
 * @module
 */
import { basename } from 'node:path';
import { DEFAULT_CONTROL_SOCKET, sendControl } from '../control.js';

let args = process.argv.slice(2);
let path = process.env['LVSADM_SOCKET'] ?? DEFAULT_CONTROL_SOCKET;
if (args[0] === '--control-socket' && args[1] !== undefined) {
  path = args[1];
  args = args.slice(2);
} else if (args[0]?.startsWith('--control-socket=')) {
  path = args[0].slice('--control-socket='.length);
  args = args.slice(1);
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// Only a restore reads standard input, as with ipvsadm.
const restoring = args.length > 0 && /^-(R|-restore$)/.test(args[0] ?? '');
const program = basename(process.argv[1] ?? 'lvsadm').replace(/\.js$/, '');
try {
  const result = await sendControl(path, args, restoring ? await readStdin() : undefined);
  process.stdout.write(result.stdout);
  process.stderr.write(result.stderr.replaceAll("`ipvsadm -h' or 'ipvsadm --help'", `\`${program} -h' or '${program} --help'`));
  process.exitCode = result.status;
} catch (err) {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'ENOENT' || code === 'ECONNREFUSED' ? 'no director is running' : (err as Error).message;
  process.stderr.write(
    `${program}: ${why} at ${path}\n` +
      `Start one (lvsd, or Director.serve() in your application), or point LVSADM_SOCKET at its socket.\n`,
  );
  process.exitCode = 2;
}
