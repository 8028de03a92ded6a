/**
 * TCP_CHECK, and the connect step every socket checker shares: a TCP (optionally TLS) connection
 * from an optional local address, bounded by connect_timeout.
 * @module
 */
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { HealthClock } from './clock.js';

/** Where and how one attempt connects. */
export interface ConnectParams {
  /** Address to connect to. */
  readonly host: string;
  /** Port to connect to. */
  readonly port: number;
  /** Local address (`bindto`). */
  readonly bindto?: string;
  /** Local port (`bind_port`). */
  readonly bindPort?: number;
  /** connect_timeout in milliseconds; also bounds every later read. */
  readonly timeoutMs: number;
  /** Time source for the timeout. */
  readonly clock: HealthClock;
  /** Aborts the attempt (monitor stopping). */
  readonly signal: AbortSignal;
}

/** TLS settings for SSL_GET. */
export interface TlsParams {
  /** SNI server name, when enabled. */
  readonly servername?: string;
}

/** Why an attempt failed, for the 'check' event. */
export class CheckFailure extends Error {
  /**
   * @param message - what went wrong
   */
  constructor(message: string) {
    super(message);
    this.name = 'CheckFailure';
  }
}

/**
 * Connects, resolving with the socket once connected (and, with TLS, once the handshake is done).
 * keepalived does not verify the server certificate unless told to, so neither does this.
 */
export function connect(p: ConnectParams, tlsParams?: TlsParams): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    if (p.signal.aborted) {
      reject(new CheckFailure('aborted'));
      return;
    }
    const base: net.TcpNetConnectOpts = { host: p.host, port: p.port, noDelay: true };
    if (p.bindto !== undefined) base.localAddress = p.bindto;
    if (p.bindPort !== undefined) base.localPort = p.bindPort;
    const sock: net.Socket =
      tlsParams === undefined
        ? net.connect(base)
        : tls.connect({
            ...base,
            rejectUnauthorized: false,
            ...(tlsParams.servername !== undefined && net.isIP(tlsParams.servername) === 0
              ? { servername: tlsParams.servername }
              : {}),
          });
    // Errors after the outcome is settled (a late reset, a second TLS error) must not go unhandled.
    sock.on('error', () => undefined);
    const done = (err?: Error): void => {
      p.clock.clearTimer(timer);
      p.signal.removeEventListener('abort', onAbort);
      sock.removeListener('error', done);
      if (err) {
        sock.destroy();
        reject(err instanceof CheckFailure ? err : new CheckFailure(`connect: ${err.message}`));
      } else resolve(sock);
    };
    const onAbort = (): void => done(new CheckFailure('aborted'));
    const timer = p.clock.setTimer(() => done(new CheckFailure('connect timeout')), p.timeoutMs);
    p.signal.addEventListener('abort', onAbort, { once: true });
    sock.once('error', done);
    sock.once(tlsParams === undefined ? 'connect' : 'secureConnect', () => done());
  });
}

/**
 * One TCP_CHECK attempt: success when the connection is established in time.
 *
 * @throws {@link CheckFailure} when it is not.
 */
export async function tcpCheck(p: ConnectParams): Promise<void> {
  const sock = await connect(p);
  sock.destroy();
}

/**
 * Reads from a connected socket until EOF, handing each chunk to `onData`, failing when no data
 * arrives for timeoutMs (keepalived bounds each read by connect_timeout).
 */
export function readToEnd(sock: net.Socket, p: ConnectParams, onData: (chunk: Buffer) => boolean | void): Promise<void> {
  return new Promise((resolve, reject) => {
    let timer = p.clock.setTimer(() => finish(new CheckFailure('read timeout')), p.timeoutMs);
    let finished = false;
    const finish = (err?: Error): void => {
      if (finished) return;
      finished = true;
      p.clock.clearTimer(timer);
      p.signal.removeEventListener('abort', onAbort);
      sock.removeAllListeners('data');
      sock.destroy();
      if (err) reject(err instanceof CheckFailure ? err : new CheckFailure(`read: ${err.message}`));
      else resolve();
    };
    const onAbort = (): void => finish(new CheckFailure('aborted'));
    p.signal.addEventListener('abort', onAbort, { once: true });
    sock.on('data', (chunk: Buffer) => {
      if (finished) return;
      p.clock.clearTimer(timer);
      // A true return means "enough": stop reading early (e.g. SMTP dialogue done).
      if (onData(chunk) === true) finish();
      else timer = p.clock.setTimer(() => finish(new CheckFailure('read timeout')), p.timeoutMs);
    });
    sock.once('end', () => finish());
    sock.once('close', () => finish());
    sock.once('error', (err) => finish(err));
  });
}
