/**
 * The control socket: how `lvsadm` reaches a running director. One JSON request per connection
 * (`{"args": [...], "stdin": "..."}` and a newline), answered with one JSON {@link ExecResult}.
 * @module
 */
import { chmodSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Director, ExecResult } from './director.js';
import { LvsError } from './errors.js';
import { sysctlCommand } from './sysctl.js';

/** Where `lvsadm` looks for a director unless `LVSADM_SOCKET` or `--control-socket` says otherwise. */
export const DEFAULT_CONTROL_SOCKET = '/run/lvs/lvsadm.sock';

/** The largest request accepted (a restore of ~100,000 rules fits). */
const MAX_REQUEST_BYTES = 64 * 1024 * 1024;

/** Options of {@link Director.serve}. */
export interface ControlOptions {
  /** Socket path; default {@link DEFAULT_CONTROL_SOCKET}. */
  readonly path?: string;
}

/** A listening control socket. */
export interface ControlServer extends AsyncDisposable {
  /** The socket path. */
  readonly path: string;
  /** Stops listening and removes the socket file. */
  close(): Promise<void>;
}

interface Request {
  readonly args: string[];
  readonly stdin?: string;
}

function parseRequest(line: string): Request {
  const value: unknown = JSON.parse(line);
  if (typeof value !== 'object' || value === null) throw new Error('request is not an object');
  const { args, stdin } = value as { args?: unknown; stdin?: unknown };
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) throw new Error('args must be strings');
  if (stdin !== undefined && typeof stdin !== 'string') throw new Error('stdin must be a string');
  return stdin === undefined ? { args } : { args, stdin };
}

function handle(director: Director, socket: Socket): void {
  let buffer = '';
  socket.setEncoding('utf8');
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk: string) => {
    buffer += chunk;
    if (buffer.length > MAX_REQUEST_BYTES) {
      socket.end(`${JSON.stringify({ stdout: '', stderr: 'request too large\n', status: 2 })}\n`);
      return;
    }
    const nl = buffer.indexOf('\n');
    if (nl < 0) return;
    let result: ExecResult;
    try {
      const req = parseRequest(buffer.slice(0, nl));
      result = req.args[0] === '--sysctl' ? sysctlCommand(director, req.args.slice(1)) : director.exec(req.args, req.stdin);
    } catch (err) {
      result = { stdout: '', stderr: `bad control request: ${(err as Error).message}\n`, status: 2 };
    }
    socket.end(`${JSON.stringify(result)}\n`);
  });
}

/**
 * Serves a director on a Unix socket readable and writable by its owner only, so `lvsadm` can
 * manage it like ipvsadm manages the kernel.
 * @internal Use {@link Director.serve}.
 */
export async function serveControl(director: Director, options: ControlOptions = {}): Promise<ControlServer> {
  const path = options.path ?? DEFAULT_CONTROL_SOCKET;
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  try {
    if (statSync(path).isSocket()) {
      // A socket nobody answers on is left over from a director that died: take its place.
      if (await answers(path)) throw new LvsError('EEXIST', `a director is already serving ${path}`);
      rmSync(path);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const server: Server = createServer((socket) => handle(director, socket));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(path, () => resolve());
  });
  chmodSync(path, 0o600);
  let closed = false;
  const close = async (): Promise<void> => {
    if (closed) return;
    closed = true;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(path, { force: true });
  };
  return { path, close, [Symbol.asyncDispose]: close };
}

function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.on('error', () => resolve(false));
  });
}

/**
 * Sends one command to the director serving `path`.
 * @internal Used by the `lvsadm` command.
 */
export function sendControl(path: string, args: readonly string[], stdin?: string): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    let reply = '';
    socket.setEncoding('utf8');
    socket.once('connect', () => {
      socket.write(`${JSON.stringify(stdin === undefined ? { args } : { args, stdin })}\n`);
    });
    socket.on('data', (chunk: string) => {
      reply += chunk;
    });
    socket.on('error', reject);
    socket.once('end', () => {
      try {
        resolve(JSON.parse(reply) as ExecResult);
      } catch {
        reject(new Error('the director sent a malformed reply'));
      }
    });
  });
}
