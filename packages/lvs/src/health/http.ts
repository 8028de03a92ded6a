/**
 * HTTP_GET and SSL_GET: keepalived's request bytes, the response read to EOF, the status code
 * checked against the allowed set and the MD5 of the body (truncated to Content-Length, chunked
 * bodies hashed raw) compared with the configured digest.
 * @module
 */
import { createHash, type Hash } from 'node:crypto';
import * as net from 'node:net';
import type { HttpProtocol } from './types.js';
import { CheckFailure, connect, type ConnectParams, readToEnd } from './tcp.js';

/**
 * The request keepalived sends, byte for byte: `GET path HTTP/1.x`, `User-Agent:
 * KeepAliveClient`, `Connection: close` for 1.0C and 1.1, and `Host:` the virtual host or
 * `ip:port` (`[ipv6]:port`).
 *
 * @example
 * ```ts
 * httpRequest('/health', '127.0.0.1', 18081, '1.0');
 * // 'GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:18081\r\n\r\n'
 * ```
 */
export function httpRequest(
  path: string,
  host: string,
  port: number,
  protocol: HttpProtocol = '1.0',
  virtualhost?: string,
): string {
  const minor = protocol === '1.1' ? 1 : 0;
  const connection = protocol === '1.0' ? '' : 'Connection: close\r\n';
  const hostHeader = virtualhost ?? (net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`);
  return `GET ${path} HTTP/1.${minor}\r\nUser-Agent: KeepAliveClient\r\n${connection}Host: ${hostHeader}\r\n\r\n`;
}

/**
 * Parses `status_code` values (`200`, `'200-299'`) into a predicate; the default is 200-299.
 *
 * @throws `RangeError` for a value outside 100..599 or a malformed range.
 * @example
 * ```ts
 * const ok = statusMatcher([200, '300-399']);
 * ok(302); // true
 * ```
 */
export function statusMatcher(codes: readonly (number | string)[] | undefined): (status: number) => boolean {
  if (codes === undefined || codes.length === 0) return (s) => s >= 200 && s <= 299;
  const ranges: [number, number][] = codes.map((c) => {
    const m = /^(\d+)(?:-(\d+))?$/.exec(String(c).trim());
    const lo = m ? Number(m[1]) : NaN;
    const hi = m ? Number(m[2] ?? m[1]) : NaN;
    if (!(lo >= 100 && hi <= 599 && lo <= hi)) throw new RangeError(`Invalid HTTP_GET status code '${String(c)}'`);
    return [lo, hi];
  });
  return (s) => ranges.some(([lo, hi]) => s >= lo && s <= hi);
}

/** What was read from the server. */
export interface HttpResponse {
  /** Status code from the status line; null when there was none. */
  readonly status: number | null;
  /** MD5 of the body as lower-case hex. */
  readonly digest: string;
  /** Bytes received in total. */
  readonly bytes: number;
}

const MAX_HEADER = 64 * 1024;
const HEADER_END = Buffer.from('\r\n\r\n');

/**
 * Incremental response reader: keeps the header (bounded), then hashes body bytes as they come,
 * stopping at Content-Length when the header has one. Memory stays bounded for any body size.
 */
export class ResponseReader {
  #head: Buffer[] = [];
  #inBody = false;
  #remaining = Infinity;
  #status: number | null = null;
  #hash: Hash = createHash('md5');
  #bytes = 0;

  /** Feeds received bytes. */
  push(chunk: Buffer): void {
    this.#bytes += chunk.length;
    if (this.#inBody) {
      this.#body(chunk);
      return;
    }
    this.#head.push(chunk);
    const all = Buffer.concat(this.#head);
    const end = all.indexOf(HEADER_END);
    if (end < 0) {
      // Keep only a bounded tail: a header this long is not one keepalived would accept either.
      if (all.length > MAX_HEADER) this.#head = [all.subarray(all.length - 3)];
      else this.#head = [all];
      if (this.#status === null) this.#parseStatus(all);
      return;
    }
    const header = all.subarray(0, end).toString('latin1');
    this.#parseStatus(all);
    const cl = /^content-length:[ \t]*(\d+)[ \t]*$/im.exec(header);
    if (cl) this.#remaining = Number(cl[1]);
    this.#inBody = true;
    this.#head = [];
    this.#body(all.subarray(end + HEADER_END.length));
  }

  #parseStatus(buf: Buffer): void {
    const m = /^HTTP\/\d+\.\d+[ \t]+(\d{3})/.exec(buf.subarray(0, 64).toString('latin1'));
    if (m) this.#status = Number(m[1]);
  }

  #body(chunk: Buffer): void {
    if (this.#remaining <= 0) return;
    const take = chunk.length > this.#remaining ? chunk.subarray(0, this.#remaining) : chunk;
    this.#hash.update(take);
    this.#remaining -= take.length;
  }

  /** The response so far. */
  result(): HttpResponse {
    return { status: this.#status, digest: this.#hash.copy().digest('hex'), bytes: this.#bytes };
  }
}

/** One URL to fetch and what it must return. */
export interface HttpProbe {
  /** The request text ({@link httpRequest}). */
  readonly request: string;
  /** Allowed status codes. */
  readonly status: (code: number) => boolean;
  /** Expected MD5 hex digest of the body, if any. */
  readonly digest?: string;
  /** Use TLS (SSL_GET). */
  readonly tls: boolean;
  /** SNI name, when enabled. */
  readonly servername?: string;
}

/**
 * One HTTP_GET / SSL_GET attempt on one URL.
 *
 * @throws {@link CheckFailure} naming what was wrong (connect, no data, status, digest).
 */
export async function httpCheck(p: ConnectParams, probe: HttpProbe): Promise<HttpResponse> {
  const sock = await connect(p, probe.tls ? (probe.servername !== undefined ? { servername: probe.servername } : {}) : undefined);
  const reader = new ResponseReader();
  sock.write(probe.request);
  await readToEnd(sock, p, (chunk) => reader.push(chunk));
  const res = reader.result();
  if (res.bytes === 0) throw new CheckFailure('no data received');
  if (res.status === null || !probe.status(res.status)) {
    throw new CheckFailure(`HTTP status code ${res.status ?? 'missing'}`);
  }
  if (probe.digest !== undefined && probe.digest.toLowerCase() !== res.digest) {
    throw new CheckFailure(`MD5 digest ${res.digest} differs from ${probe.digest}`);
  }
  return res;
}
