/**
 * Immutable service builders: describe a virtual service and its real servers fluently, inspect
 * the result as data or as ipvsadm command lines, and apply any number of them atomically with
 * {@link Director.apply}. Every method returns a new builder; partial builders can be shared and
 * branched.
 *
 * @example
 * ```ts
 * import { Director, tcp } from 'lvs';
 *
 * const web = tcp('10.10.36.11:80').scheduler('rr');
 * const director = await Director.open();
 * director.apply(
 *   web.server('10.10.36.4', { method: 'route' }).server('10.10.36.7', { method: 'tunnel' }),
 *   tcp('10.10.36.11:443').scheduler('sh').persistent(600),
 * );
 * ```
 * @module
 */
import { LvsError } from './errors.js';
import type {
  AddressText,
  Family,
  ServerOptions,
  SchedulerFlag,
  SchedulerName,
  ServiceOptions,
  ServiceRef,
} from './types.js';

/** A service with its real servers, as plain frozen data. */
export interface ServiceDefinition {
  /** The service. */
  readonly service: ServiceOptions;
  /** Its real servers, in the order they are added. */
  readonly servers: readonly ServerOptions[];
}

/** A virtual service being described; see the module documentation. */
export interface ServiceBuilder {
  /** The description so far. */
  readonly definition: ServiceDefinition;
  /** The scheduler (`-s`). */
  scheduler(name: SchedulerName): ServiceBuilder;
  /** Persistence (`-p`): ipvsadm's default 360 s, or a timeout in seconds; `false` turns it off. */
  persistent(timeout?: number | boolean): ServiceBuilder;
  /** Persistence granularity (`-M`). */
  netmask(mask: string | number): ServiceBuilder;
  /** One-packet scheduling (`-o`, UDP and fwmark services). */
  onePacket(on?: boolean): ServiceBuilder;
  /** Scheduler flags (`-b`). */
  schedFlags(...flags: SchedulerFlag[]): ServiceBuilder;
  /** Persistence engine (`--pe`). */
  pe(engine: 'sip'): ServiceBuilder;
  /** Adds a real server (`-a`); options default as in ipvsadm (direct routing, weight 1). */
  server(address: AddressText, options?: Omit<ServerOptions, 'address'>): ServiceBuilder;
  /** The ipvsadm command lines (`-A …` then one `-a …` per server) that create this service. */
  toIpvsadm(): string[];
}

function serviceArg(ref: ServiceRef): string {
  if ('fwmark' in ref) return `-f ${ref.fwmark}${ref.family === 'inet6' ? ' -6' : ''}`;
  const flag = { tcp: '-t', udp: '-u', sctp: '--sctp-service' }[ref.protocol ?? 'tcp'];
  return `${flag} ${ref.address}`;
}

function methodFlag(method: ServerOptions['method']): string {
  switch (method) {
    case 'masq':
    case 'nat':
      return '-m';
    case 'tunnel':
    case 'tun':
      return '-i';
    case undefined:
    case 'route':
    case 'dr':
      return '-g';
    case 'local':
      // ipvsadm has no switch for it; the kernel decides locality by address.
      throw new LvsError('EINVAL', "'local' cannot be written as an ipvsadm command line");
  }
}

function noSpaces(what: string, value: string): string {
  if (/\s/.test(value) || value === '') throw new LvsError('EINVAL', `invalid ${what} \`${value}'`);
  return value;
}

function toIpvsadm(def: ServiceDefinition): string[] {
  const s = def.service;
  const svc = 'fwmark' in s ? serviceArg(s) : serviceArg({ protocol: s.protocol ?? 'tcp', address: noSpaces('address', s.address) });
  let add = `-A ${svc} -s ${noSpaces('scheduler', s.scheduler ?? 'wlc')}`;
  if (s.persistent !== undefined && s.persistent !== false) {
    add += s.persistent === true ? ' -p' : ` -p ${s.persistent}`;
  }
  if (s.netmask !== undefined) add += ` -M ${noSpaces('netmask', String(s.netmask))}`;
  if (s.pe !== undefined) add += ` --pe ${s.pe}`;
  if (s.onePacket) add += ' -o';
  if (s.schedFlags !== undefined && s.schedFlags.length > 0) add += ` -b ${s.schedFlags.join(',')}`;
  const lines = [add];
  for (const r of def.servers) {
    let line = `-a ${svc} -r ${noSpaces('address', r.address)} ${methodFlag(r.method)}`;
    if (r.weight !== undefined) line += ` -w ${r.weight}`;
    if (r.upperThreshold !== undefined) line += ` -x ${r.upperThreshold}`;
    if (r.lowerThreshold !== undefined) line += ` -y ${r.lowerThreshold}`;
    if (r.tunnel !== undefined) {
      line += ` --tun-type ${r.tunnel.type}`;
      if (r.tunnel.port !== undefined) line += ` --tun-port ${r.tunnel.port}`;
      if (r.tunnel.checksum !== undefined) {
        line += { none: ' --tun-nocsum', csum: ' --tun-csum', remcsum: ' --tun-remcsum' }[r.tunnel.checksum];
      }
    }
    lines.push(line);
  }
  return lines;
}

class ServiceBuilderImpl implements ServiceBuilder {
  readonly definition: ServiceDefinition;

  constructor(definition: ServiceDefinition) {
    this.definition = Object.freeze({
      service: Object.freeze({ ...definition.service }),
      servers: Object.freeze(definition.servers.map((r) => Object.freeze({ ...r }))),
    });
  }

  #with(service: Partial<ServiceOptions>): ServiceBuilder {
    return new ServiceBuilderImpl({
      service: { ...this.definition.service, ...service } as ServiceOptions,
      servers: this.definition.servers,
    });
  }

  scheduler(name: SchedulerName): ServiceBuilder {
    return this.#with({ scheduler: name });
  }
  persistent(timeout: number | boolean = true): ServiceBuilder {
    return this.#with({ persistent: timeout });
  }
  netmask(mask: string | number): ServiceBuilder {
    return this.#with({ netmask: mask });
  }
  onePacket(on = true): ServiceBuilder {
    return this.#with({ onePacket: on });
  }
  schedFlags(...flags: SchedulerFlag[]): ServiceBuilder {
    return this.#with({ schedFlags: flags });
  }
  pe(engine: 'sip'): ServiceBuilder {
    return this.#with({ pe: engine });
  }
  server(address: AddressText, options: Omit<ServerOptions, 'address'> = {}): ServiceBuilder {
    return new ServiceBuilderImpl({
      service: this.definition.service,
      servers: [...this.definition.servers, { ...options, address }],
    });
  }
  toIpvsadm(): string[] {
    return toIpvsadm(this.definition);
  }
}

/**
 * A TCP virtual service (`-t`).
 * @example
 * ```ts
 * tcp('10.10.36.11:80').scheduler('rr').server('10.10.36.4', { method: 'dr' });
 * ```
 */
export function tcp(address: AddressText): ServiceBuilder {
  return new ServiceBuilderImpl({ service: { protocol: 'tcp', address }, servers: [] });
}

/**
 * A UDP virtual service (`-u`).
 * @example
 * ```ts
 * udp('10.0.0.1:53').scheduler('sh').schedFlags('sh-port').onePacket();
 * ```
 */
export function udp(address: AddressText): ServiceBuilder {
  return new ServiceBuilderImpl({ service: { protocol: 'udp', address }, servers: [] });
}

/**
 * An SCTP virtual service (`--sctp-service`).
 * @example
 * ```ts
 * sctp('10.0.0.1:3868').scheduler('rr');
 * ```
 */
export function sctp(address: AddressText): ServiceBuilder {
  return new ServiceBuilderImpl({ service: { protocol: 'sctp', address }, servers: [] });
}

/**
 * A firewall-mark virtual service (`-f`, with `-6` for `'inet6'`).
 * @example
 * ```ts
 * fwmark(10).scheduler('rr').persistent(1800).server('192.168.10.200').server('192.168.10.201');
 * ```
 */
export function fwmark(mark: number, family: Family = 'inet'): ServiceBuilder {
  return new ServiceBuilderImpl({ service: { fwmark: mark, family }, servers: [] });
}
