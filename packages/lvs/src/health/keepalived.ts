/**
 * From a parsed keepalived.conf to health specs: every `virtual_server` (groups expanded to one
 * service per address and fwmark) with its real servers and checkers, times converted from the
 * parser's milliseconds to seconds.
 * @module
 */
import * as net from 'node:net';
import type {
  Checker,
  KeepalivedConfig,
  LvsMethod,
  RealServer,
  ScriptCommand,
  VirtualServer,
} from '../keepalived/types.js';
import type { ServiceOptions, ServiceSettings, TunnelOptions } from '../types.js';
import type { CheckerSpec, RealServerHealth, SorryServerSpec, VirtualServerHealth } from './types.js';

/** What {@link fromKeepalived} produced. */
export interface KeepalivedHealth {
  /** One entry per `virtual_server` block, ready for {@link HealthMonitor}. */
  readonly virtualServers: VirtualServerHealth[];
  /**
   * Checkers lvs does not run (DNS_CHECK, UDP_CHECK, PING_CHECK, FILE_CHECK, BFD_CHECK, HTTP
   * `regex`), each as `where: what`. Those checkers are left out; their servers rely on the others.
   */
  readonly unsupported: string[];
}

/** Largest number of services one group range may expand to. */
const MAX_RANGE = 65_536;

function hostPort(address: string, port: number): string {
  return net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

function method(m: LvsMethod): { method: 'masq' | 'route' | 'tunnel'; tunnel?: TunnelOptions } {
  if (m.kind === 'NAT') return { method: 'masq' };
  if (m.kind === 'DR') return { method: 'route' };
  if (m.tunnelType === undefined || m.tunnelType === 'ipip') return { method: 'tunnel' };
  const checksum = m.tunnelChecksum === 'csum' ? 'csum' : m.tunnelChecksum === 'remcsum' ? 'remcsum' : 'none';
  return {
    method: 'tunnel',
    tunnel: { type: m.tunnelType, ...(m.tunnelPort !== undefined ? { port: m.tunnelPort } : {}), checksum },
  };
}

function argv(c: ScriptCommand | undefined): readonly string[] | undefined {
  if (c === undefined) return undefined;
  // keepalived runs commands starting with '<' through the shell.
  return c.shell ? ['/bin/sh', '-c', c.command.replace(/^<\s*/, '')] : c.argv;
}

function toBig(a: string): bigint {
  if (net.isIPv4(a)) return a.split('.').reduce((n, o) => (n << 8n) | BigInt(Number(o)), 0n);
  // Expand '::' and any embedded IPv4 tail, then read eight 16-bit groups.
  let text = a;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (v4) {
    const n = toBig(v4[1] as string);
    text = text.slice(0, -(v4[1] as string).length) + `${(n >> 16n).toString(16)}:${(n & 0xffffn).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail !== undefined && tail !== '' ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((n, g) => (n << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function fromBig(n: bigint, v6: boolean): string {
  if (!v6) return [24n, 16n, 8n, 0n].map((s) => ((n >> s) & 0xffn).toString()).join('.');
  const groups: string[] = [];
  for (let s = 112n; s >= 0n; s -= 16n) groups.push(((n >> s) & 0xffffn).toString(16));
  return groups.join(':');
}

function services(config: KeepalivedConfig, vs: VirtualServer, settings: ServiceSettings): ServiceOptions[] {
  const protocol = vs.protocol === 'TCP' ? 'tcp' : vs.protocol === 'UDP' ? 'udp' : 'sctp';
  const key = vs.key;
  if (key.kind === 'address') return [{ protocol, address: hostPort(key.address, key.port), ...settings }];
  if (key.kind === 'fwmark') return [{ fwmark: key.fwmark, family: vs.ipFamily, ...settings }];
  const group = config.virtualServerGroups.find((g) => g.name === key.group);
  const out: ServiceOptions[] = [];
  for (const e of group?.entries ?? []) {
    if (e.kind === 'fwmark') {
      out.push({ fwmark: e.fwmark, family: e.family, ...settings });
      continue;
    }
    const v6 = net.isIPv6(e.first);
    const first = toBig(e.first);
    const last = toBig(e.last);
    if (last - first >= BigInt(MAX_RANGE)) {
      throw new RangeError(`virtual_server_group ${key.group}: range ${e.first}-${e.last} is too large`);
    }
    for (let n = first; n <= last; n++) out.push({ protocol, address: hostPort(fromBig(n, v6), e.port), ...settings });
  }
  return out;
}

function checker(c: Checker, where: string, unsupported: string[]): CheckerSpec | undefined {
  const timing = {
    delayLoop: c.delayLoop / 1000,
    connectTimeout: c.connectTimeout / 1000,
    retry: c.retry,
    delayBeforeRetry: c.delayBeforeRetry / 1000,
    warmup: c.warmup / 1000,
    alpha: c.alpha,
  };
  switch (c.type) {
    case 'TCP_CHECK':
    case 'SMTP_CHECK':
    case 'HTTP_GET':
    case 'SSL_GET': {
      const connect = {
        connectIp: c.connectIp,
        ...(c.connectPort ? { connectPort: c.connectPort } : {}),
        ...(c.bindto !== undefined ? { bindto: c.bindto } : {}),
        ...(c.bindPort !== undefined ? { bindPort: c.bindPort } : {}),
      };
      if (c.type === 'TCP_CHECK') return { type: c.type, ...timing, ...connect };
      if (c.type === 'SMTP_CHECK') return { type: c.type, ...timing, ...connect, heloName: c.heloName };
      if (c.urls.some((u) => u.regex !== undefined)) unsupported.push(`${where}: ${c.type} url regex (not checked)`);
      return {
        type: c.type,
        ...timing,
        ...connect,
        httpProtocol: c.httpProtocol,
        fastRecovery: c.fastRecovery,
        enableSni: c.enableSni,
        ...(c.virtualhost !== undefined ? { virtualhost: c.virtualhost } : {}),
        urls: c.urls.map((u) => ({
          path: u.path,
          statusCode: u.statusCodes.map(([lo, hi]) => (lo === hi ? lo : `${lo}-${hi}`)),
          ...(u.digest !== undefined ? { digest: u.digest } : {}),
          ...(u.virtualhost !== undefined ? { virtualhost: u.virtualhost } : {}),
        })),
      };
    }
    case 'MISC_CHECK':
      return {
        type: c.type,
        ...timing,
        path: argv(c.miscPath) as readonly string[],
        timeout: c.miscTimeout / 1000,
        dynamic: c.miscDynamic,
      };
    default:
      unsupported.push(`${where}: ${c.type} (not run by lvs)`);
      return undefined;
  }
}

function realServer(vs: VirtualServer, rs: RealServer, unsupported: string[]): RealServerHealth {
  const fwmarkDr = vs.key.kind !== 'address' && rs.port === 0;
  const address = fwmarkDr ? rs.address : hostPort(rs.address, rs.port);
  const where = `real_server ${address} (line ${rs.source.line})`;
  const notifyUp = argv(rs.notifyUp);
  const notifyDown = argv(rs.notifyDown);
  return {
    address,
    weight: rs.weight,
    ...method(rs.lvsMethod),
    inhibitOnFailure: rs.inhibitOnFailure,
    alpha: rs.alpha,
    ...(rs.uthreshold ? { upperThreshold: rs.uthreshold } : {}),
    ...(rs.lthreshold ? { lowerThreshold: rs.lthreshold } : {}),
    ...(notifyUp ? { notifyUp } : {}),
    ...(notifyDown ? { notifyDown } : {}),
    ...(rs.virtualhost !== undefined ? { virtualhost: rs.virtualhost } : {}),
    checkers: rs.checkers.flatMap((c) => checker(c, where, unsupported) ?? []),
  };
}

/**
 * Turns a parsed keepalived.conf into health specs for a {@link HealthMonitor}: each
 * `virtual_server` becomes one {@link VirtualServerHealth} (a `virtual_server_group` becomes one
 * with a service per address and fwmark, so each real server is checked once).
 *
 * @throws `RangeError` for a group range of more than 65536 addresses.
 * @example
 * ```ts
 * import { Director, HealthMonitor, fromKeepalived, parseKeepalivedConfig } from 'lvs';
 *
 * const { config } = parseKeepalivedConfig('/etc/keepalived/keepalived.conf');
 * const { virtualServers, unsupported } = fromKeepalived(config);
 * for (const u of unsupported) console.warn(u);
 * const monitor = new HealthMonitor(await Director.open(), virtualServers);
 * await monitor.start();
 * ```
 */
export function fromKeepalived(config: KeepalivedConfig): KeepalivedHealth {
  const unsupported: string[] = [];
  const virtualServers = config.virtualServers.map((vs): VirtualServerHealth => {
    const settings: { -readonly [K in keyof ServiceSettings]: ServiceSettings[K] } = { scheduler: vs.lvsSched };
    if (vs.persistenceTimeout !== undefined) settings.persistent = vs.persistenceTimeout;
    if (vs.persistenceGranularity !== undefined) settings.netmask = vs.persistenceGranularity;
    if (vs.persistenceEngine === 'sip') settings.pe = 'sip';
    if (vs.ops) settings.onePacket = true;
    if (vs.schedFlags.length > 0) settings.schedFlags = vs.schedFlags;
    const sorry = vs.sorryServer;
    let sorryServer: SorryServerSpec | undefined;
    if (sorry !== undefined) {
      sorryServer = {
        address: vs.key.kind !== 'address' && sorry.port === 0 ? sorry.address : hostPort(sorry.address, sorry.port),
        method: method(sorry.lvsMethod).method,
        inhibit: sorry.inhibit,
      };
    }
    const quorumUp = argv(vs.quorumUp);
    const quorumDown = argv(vs.quorumDown);
    return {
      ...(vs.key.kind === 'group' ? { name: vs.key.group } : {}),
      service: services(config, vs, settings),
      delayLoop: vs.delayLoop / 1000,
      method: method(vs.lvsMethod).method,
      inhibitOnFailure: vs.inhibitOnFailure,
      alpha: vs.alpha,
      omega: vs.omega,
      quorum: vs.quorum,
      hysteresis: vs.hysteresis,
      ...(vs.virtualhost !== undefined ? { virtualhost: vs.virtualhost } : {}),
      ...(quorumUp ? { quorumUp } : {}),
      ...(quorumDown ? { quorumDown } : {}),
      ...(sorryServer ? { sorryServer } : {}),
      realServers: vs.realServers.map((rs) => realServer(vs, rs, unsupported)),
    };
  });
  return { virtualServers, unsupported };
}
