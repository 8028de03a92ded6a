/**
 * Resolves health specs into what the monitor runs: keepalived's inheritance (checker → real
 * server → virtual server → checker default), times in milliseconds, addresses split, commands
 * split into argv, and every value validated with an error naming where it is.
 * @module
 */
import * as net from 'node:net';
import { LvsError } from '../errors.js';
import type { ForwardingAlias, ForwardingMethod, ServerOptions, ServiceOptions, ServiceRef } from '../types.js';
import { splitCommand } from '../command.js';
import { type HttpProbe, httpRequest, statusMatcher } from './http.js';
import type { CheckerSpec, CheckTiming, NotifyCommand, RealServerHealth, VirtualServerHealth } from './types.js';

/** A checker with everything resolved. */
export interface ResolvedChecker {
  /** The spec as given. */
  readonly spec: CheckerSpec;
  /** Position among the real server's checkers. */
  readonly index: number;
  /** Starts failed. */
  readonly alpha: boolean;
  /** Retry count and delays in ms. */
  readonly timing: { readonly retry: number; readonly delayLoop: number; readonly delayBeforeRetry: number };
  /** Upper bound of the random first-check delay, ms. */
  readonly warmup: number;
  /** connect_timeout, ms. */
  readonly connectTimeout: number;
  /** Where network checks connect. */
  readonly host: string;
  /** Port to check (0 when none applies). */
  readonly port: number;
  /** Local address. */
  readonly bindto?: string;
  /** Local port. */
  readonly bindPort?: number;
  /** HTTP/SSL URLs, in rotation order. */
  readonly probes: readonly HttpProbe[];
  /** MISC_CHECK command. */
  readonly argv: readonly string[];
  /** MISC_CHECK timeout, ms. */
  readonly miscTimeout: number;
}

/** A real server with everything resolved. */
export interface ResolvedServer {
  /** The spec as given. */
  readonly spec: RealServerHealth;
  /** The address as configured, for events. */
  readonly name: string;
  /** Address without port. */
  readonly host: string;
  /** Port, when given. */
  readonly port: number | undefined;
  /** Forwarding method. */
  readonly method: ForwardingMethod | ForwardingAlias;
  /** Configured weight (keepalived's `iweight`). */
  readonly weight: number;
  /** inhibit_on_failure. */
  readonly inhibit: boolean;
  /** notify_up argv. */
  readonly notifyUp: readonly string[] | undefined;
  /** notify_down argv. */
  readonly notifyDown: readonly string[] | undefined;
  /** Checkers. */
  readonly checkers: readonly ResolvedChecker[];
}

/** The sorry server, resolved. */
export interface ResolvedSorry {
  /** Address without port. */
  readonly host: string;
  /** Port, when given. */
  readonly port: number | undefined;
  /** Forwarding method. */
  readonly method: ForwardingMethod | ForwardingAlias;
  /** Weight when in use. */
  readonly weight: number;
  /** sorry_server_inhibit. */
  readonly inhibit: boolean;
}

/** A virtual server with everything resolved. */
export interface ResolvedVirtual {
  /** The spec as given. */
  readonly spec: VirtualServerHealth;
  /** Name for events. */
  readonly name: string;
  /** The IPVS services (several for a group). */
  readonly services: readonly ServiceOptions[];
  /** quorum, after keepalived's cap at the weight sum. */
  readonly quorum: number;
  /** hysteresis, forced below quorum. */
  readonly hysteresis: number;
  /** omega. */
  readonly omega: boolean;
  /** quorum_up argv. */
  readonly quorumUpScript: readonly string[] | undefined;
  /** quorum_down argv. */
  readonly quorumDownScript: readonly string[] | undefined;
  /** Sorry server. */
  readonly sorry: ResolvedSorry | undefined;
  /** Real servers. */
  readonly servers: readonly ResolvedServer[];
}

function fail(where: string, message: string): never {
  throw new LvsError('EINVAL', `${where}: ${message}`);
}

function seconds(where: string, name: string, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) fail(where, `${name} must be a non-negative number of seconds`);
  return Math.round(v * 1000);
}

function int(where: string, name: string, v: number | undefined, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  if (!Number.isInteger(v) || v < min || v > max) fail(where, `${name} must be an integer from ${min} to ${max}`);
  return v;
}

/** Splits `'ip:port'`, `'[v6]:port'`, `'v6'` or `'ip'`. */
export function splitAddress(where: string, text: string): { host: string; port: number | undefined } {
  let host = text;
  let port: string | undefined;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) {
    host = v6[1] as string;
    port = v6[2];
  } else if (net.isIPv6(text)) host = text;
  else {
    const m = /^([^:]+):(\d+)$/.exec(text);
    if (m) {
      host = m[1] as string;
      port = m[2];
    }
  }
  if (net.isIP(host) === 0) fail(where, `'${text}' is not an IP address`);
  const p = port === undefined ? undefined : Number(port);
  if (p !== undefined && p > 65535) fail(where, `port of '${text}' is out of range`);
  return { host, port: p };
}

/** `ip:port` with brackets for IPv6. */
export function joinAddress(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The reference the director uses for a service. */
export function serviceRef(s: ServiceOptions): ServiceRef {
  if ('fwmark' in s) return s.family === undefined ? { fwmark: s.fwmark } : { fwmark: s.fwmark, family: s.family };
  return s.protocol === undefined ? { address: s.address } : { protocol: s.protocol, address: s.address };
}

/** The port of an address service, 0 for fwmark services. */
export function servicePort(s: ServiceOptions): number {
  if ('fwmark' in s) return 0;
  return splitAddress('service', s.address).port ?? 0;
}

function isMasq(m: ForwardingMethod | ForwardingAlias): boolean {
  return m === 'masq' || m === 'nat';
}

/**
 * The destination address keepalived programs: NAT servers keep their port (or take the
 * service's), DR/TUN servers take the service port, and on fwmark services no port.
 */
export function destAddress(
  s: ServiceOptions,
  host: string,
  port: number | undefined,
  method: ForwardingMethod | ForwardingAlias,
): string {
  if ('fwmark' in s) return isMasq(method) && port ? joinAddress(host, port) : host;
  const sp = servicePort(s);
  return joinAddress(host, isMasq(method) ? (port ?? sp) : sp);
}

/** ServerOptions for a real server on one service. */
export function serverOptions(s: ServiceOptions, rs: ResolvedServer, weight: number): ServerOptions {
  const o: { -readonly [K in keyof ServerOptions]: ServerOptions[K] } = {
    address: destAddress(s, rs.host, rs.port, rs.method),
    method: rs.method,
    weight,
  };
  if (rs.spec.upperThreshold !== undefined) o.upperThreshold = rs.spec.upperThreshold;
  if (rs.spec.lowerThreshold !== undefined) o.lowerThreshold = rs.spec.lowerThreshold;
  if (rs.spec.tunnel !== undefined) o.tunnel = rs.spec.tunnel;
  return o;
}

function command(where: string, name: string, c: NotifyCommand | undefined): readonly string[] | undefined {
  if (c === undefined) return undefined;
  let argv: readonly string[];
  try {
    argv = typeof c === 'string' ? splitCommand(c) : c;
  } catch (err) {
    fail(where, `${name}: ${(err as Error).message}`);
  }
  if (argv.length === 0 || argv[0] === '') fail(where, `${name} is empty`);
  return argv;
}

function vsName(vs: VirtualServerHealth, services: readonly ServiceOptions[]): string {
  if (vs.name !== undefined) return vs.name;
  const first = services[0];
  if (first === undefined) return 'virtual server';
  return 'fwmark' in first ? `FWM ${first.fwmark}` : first.address;
}

function resolveChecker(
  where: string,
  spec: CheckerSpec,
  index: number,
  vs: VirtualServerHealth,
  rs: RealServerHealth,
  host: string,
  port: number | undefined,
): ResolvedChecker {
  const at = `${where} checker ${index + 1} (${spec.type})`;
  const pick = <K extends 'delayLoop' | 'connectTimeout' | 'retry' | 'delayBeforeRetry' | 'warmup' | 'alpha'>(
    k: K,
  ): CheckTiming[K] | undefined => spec[k] ?? rs[k] ?? vs[k];
  const delayLoop = seconds(at, 'delayLoop', pick('delayLoop')) ?? 60_000;
  const retry = int(at, 'retry', pick('retry'), 0, 2 ** 31 - 1) ?? (spec.type === 'MISC_CHECK' ? 0 : 1);
  const http = spec.type === 'HTTP_GET' || spec.type === 'SSL_GET';
  const delayBeforeRetry = seconds(at, 'delayBeforeRetry', pick('delayBeforeRetry')) ?? (http ? 3_000 : 1_000);
  const warmup = seconds(at, 'warmup', pick('warmup')) ?? delayLoop;
  const connectTimeout = seconds(at, 'connectTimeout', pick('connectTimeout')) ?? 5_000;
  const alpha = pick('alpha') ?? false;

  let checkHost = host;
  let checkPort = port ?? 0;
  let bindto: string | undefined;
  let bindPort: number | undefined;
  if (spec.type !== 'MISC_CHECK') {
    if (spec.connectIp !== undefined) {
      if (net.isIP(spec.connectIp) === 0) fail(at, `connectIp '${spec.connectIp}' is not an IP address`);
      checkHost = spec.connectIp;
    }
    if (spec.connectPort !== undefined) checkPort = int(at, 'connectPort', spec.connectPort, 1, 65535) as number;
  }
  if (spec.type === 'TCP_CHECK' || spec.type === 'HTTP_GET' || spec.type === 'SSL_GET' || spec.type === 'SMTP_CHECK') {
    if (spec.bindto !== undefined) {
      if (net.isIP(spec.bindto) === 0) fail(at, `bindto '${spec.bindto}' is not an IP address`);
      bindto = spec.bindto;
    }
    bindPort = int(at, 'bindPort', spec.bindPort, 1, 65535);
    if (checkPort === 0) fail(at, 'no port to check: give the real server a port or set connectPort');
  }

  const probes: HttpProbe[] = [];
  if (http) {
    if (spec.urls.length === 0) fail(at, 'at least one url is required');
    spec.urls.forEach((u, i) => {
      const uat = `${at} url ${i + 1}`;
      if (typeof u.path !== 'string' || u.path === '' || /[\r\n]/.test(u.path)) fail(uat, 'path must be a non-empty line');
      if (u.digest !== undefined && !/^[0-9a-fA-F]{32}$/.test(u.digest)) fail(uat, `digest '${u.digest}' is not 32 hex characters`);
      let status: (code: number) => boolean;
      try {
        status = statusMatcher(u.statusCode);
      } catch (err) {
        fail(uat, (err as Error).message);
      }
      const vhost = u.virtualhost ?? spec.virtualhost ?? rs.virtualhost ?? vs.virtualhost;
      if (vhost !== undefined && /[\r\n]/.test(vhost)) fail(uat, 'virtualhost must be one line');
      const probe: { -readonly [K in keyof HttpProbe]: HttpProbe[K] } = {
        request: httpRequest(u.path, checkHost, checkPort, spec.httpProtocol ?? '1.0', vhost),
        status,
        tls: spec.type === 'SSL_GET',
      };
      if (u.digest !== undefined) probe.digest = u.digest.toLowerCase();
      if (spec.enableSni && vhost !== undefined) probe.servername = vhost;
      probes.push(probe);
    });
  }

  let argv: readonly string[] = [];
  let miscTimeout = 0;
  if (spec.type === 'MISC_CHECK') {
    argv = command(at, 'path', spec.path) as readonly string[];
    // keepalived's default misc_timeout is the virtual server's delay_loop, not the checker's.
    miscTimeout = seconds(at, 'timeout', spec.timeout) ?? seconds(at, 'delayLoop', vs.delayLoop) ?? 60_000;
  }
  if (spec.type === 'JS' && typeof spec.check !== 'function') fail(at, 'check must be a function');

  const r: { -readonly [K in keyof ResolvedChecker]: ResolvedChecker[K] } = {
    spec,
    index,
    alpha,
    timing: { retry, delayLoop, delayBeforeRetry },
    warmup,
    connectTimeout,
    host: checkHost,
    port: checkPort,
    probes,
    argv,
    miscTimeout,
  };
  if (bindto !== undefined) r.bindto = bindto;
  if (bindPort !== undefined) r.bindPort = bindPort;
  return r;
}

/**
 * Resolves and validates one virtual server.
 *
 * @throws {@link LvsError} `EINVAL` naming the virtual server, real server, checker and problem.
 */
export function resolveVirtual(vs: VirtualServerHealth): ResolvedVirtual {
  const services: readonly ServiceOptions[] = Array.isArray(vs.service)
    ? (vs.service as readonly ServiceOptions[])
    : [vs.service as ServiceOptions];
  const name = vsName(vs, services);
  const where = `virtual server ${name}`;
  if (services.length === 0) fail(where, 'no service');
  for (const s of services) if (!('fwmark' in s)) splitAddress(where, s.address);
  const firstPort = services.map(servicePort).find((p) => p > 0);
  const defaultWeight = int(where, 'weight', vs.weight, 0, 65535) ?? 1;

  const seen = new Set<string>();
  const servers = vs.realServers.map((rs): ResolvedServer => {
    const rwhere = `${where} real server ${rs.address}`;
    const { host, port } = splitAddress(rwhere, rs.address);
    if (seen.has(joinAddress(host, port ?? 0))) fail(rwhere, 'duplicate real server');
    seen.add(joinAddress(host, port ?? 0));
    const method = rs.method ?? vs.method ?? 'masq';
    // DR/TUN servers are checked on the service port, as keepalived rewrites their port.
    const checkPort = isMasq(method) ? (port ?? firstPort) : (firstPort ?? port);
    return {
      spec: rs,
      name: rs.address,
      host,
      port,
      method,
      weight: int(rwhere, 'weight', rs.weight, 0, 65535) ?? defaultWeight,
      inhibit: rs.inhibitOnFailure ?? vs.inhibitOnFailure ?? false,
      notifyUp: command(rwhere, 'notifyUp', rs.notifyUp),
      notifyDown: command(rwhere, 'notifyDown', rs.notifyDown),
      checkers: (rs.checkers ?? []).map((c, i) => resolveChecker(rwhere, c, i, vs, rs, host, checkPort)),
    };
  });
  if (servers.length === 0) fail(where, 'has no real servers');

  // keepalived caps quorum at the total weight and keeps hysteresis below quorum.
  const total = servers.reduce((sum, s) => sum + s.weight, 0);
  let quorum = int(where, 'quorum', vs.quorum, 1, 2 ** 31 - 1) ?? 1;
  if (quorum > total && total > 0) quorum = total;
  let hysteresis = int(where, 'hysteresis', vs.hysteresis, 0, 2 ** 31 - 1) ?? 0;
  if (hysteresis >= quorum) hysteresis = quorum - 1;

  let sorry: ResolvedSorry | undefined;
  if (vs.sorryServer !== undefined) {
    const swhere = `${where} sorry server`;
    const { host, port } = splitAddress(swhere, vs.sorryServer.address);
    sorry = {
      host,
      port,
      method: vs.sorryServer.method ?? vs.method ?? 'masq',
      weight: int(swhere, 'weight', vs.sorryServer.weight, 0, 65535) ?? 1,
      inhibit: vs.sorryServer.inhibit ?? false,
    };
  }

  return {
    spec: vs,
    name,
    services,
    quorum,
    hysteresis,
    omega: vs.omega ?? false,
    quorumUpScript: command(where, 'quorumUp', vs.quorumUp),
    quorumDownScript: command(where, 'quorumDown', vs.quorumDown),
    sorry,
    servers,
  };
}
