/**
 * The {@link Director}: a virtual server table you configure the way ipvsadm configures the
 * kernel's, and (with interfaces, later) a load balancer that forwards real packets.
 * @module
 */
import { callNative, LvsError } from './errors.js';
import { native } from './native.js';
import type { ServerOptions, ServiceInfo, ServiceOptions, ServiceRef } from './types.js';

type NativeDirector = InstanceType<typeof native.NativeDirector>;
type NativeServiceSpec = Parameters<NativeDirector['addService']>[0];
type NativeServiceRef = Parameters<NativeDirector['deleteService']>[0];
type NativeServerSpec = Parameters<NativeDirector['addServer']>[1];

/** Options of {@link Director.open}. */
export interface DirectorOptions {
  /**
   * Where time comes from. `'system'` (default) follows the monotonic clock; `'manual'` stands
   * still until {@link Director.advanceTime} moves it, so timeouts and rates can be tested
   * deterministically.
   */
  readonly clock?: 'system' | 'manual';
}

function serviceRef(ref: ServiceRef): NativeServiceRef {
  if ('fwmark' in ref) return { fwmark: ref.fwmark, family: ref.family ?? 'inet' };
  return { protocol: ref.protocol ?? 'tcp', address: ref.address };
}

function serviceSpec(opts: ServiceOptions): NativeServiceSpec {
  const spec: NativeServiceSpec = { ...serviceRef(opts) };
  if (opts.scheduler !== undefined) spec.scheduler = opts.scheduler;
  if (opts.persistent !== undefined) spec.persistent = opts.persistent;
  if (opts.netmask !== undefined) spec.netmask = opts.netmask;
  if (opts.pe !== undefined) spec.pe = opts.pe;
  if (opts.onePacket !== undefined) spec.onePacket = opts.onePacket;
  if (opts.schedFlags !== undefined) spec.schedFlags = [...opts.schedFlags];
  return spec;
}

function serverSpec(opts: ServerOptions): NativeServerSpec {
  const spec: NativeServerSpec = { address: opts.address };
  if (opts.method !== undefined) spec.method = opts.method;
  if (opts.weight !== undefined) spec.weight = opts.weight;
  if (opts.upperThreshold !== undefined) spec.upperThreshold = opts.upperThreshold;
  if (opts.lowerThreshold !== undefined) spec.lowerThreshold = opts.lowerThreshold;
  if (opts.tunnel !== undefined) {
    spec.tunnel = { type: opts.tunnel.type };
    if (opts.tunnel.port !== undefined) spec.tunnel.port = opts.tunnel.port;
    if (opts.tunnel.checksum !== undefined) spec.tunnel.checksum = opts.tunnel.checksum;
  }
  return spec;
}

/**
 * A Linux Virtual Server director. Methods mirror ipvsadm's commands and return the director,
 * so a configuration reads like a script:
 *
 * @example
 * ```ts
 * import { Director } from 'lvs';
 *
 * const director = await Director.open();
 * director
 *   .addService({ protocol: 'tcp', address: '10.10.36.11:80', scheduler: 'rr' }) // -A -t … -s rr
 *   .addServer({ address: '10.10.36.11:80' }, { address: '10.10.36.4', method: 'route' }) // -a … -g
 *   .addServer({ address: '10.10.36.11:80' }, { address: '10.10.36.7', method: 'tunnel' }); // -a … -i
 * console.log(director.list());
 * ```
 */
export class Director implements Disposable {
  readonly #native: NativeDirector;
  #closed = false;

  private constructor(nativeDirector: NativeDirector) {
    this.#native = nativeDirector;
  }

  /**
   * Opens a director. Without interfaces it is an in-memory director: the full virtual server
   * table with scheduling, persistence and statistics, but no packet I/O.
   *
   * @example
   * ```ts
   * const director = await Director.open({ clock: 'manual' });
   * ```
   */
  static async open(options: DirectorOptions = {}): Promise<Director> {
    const opts = options.clock === undefined ? {} : { clock: options.clock };
    return new Director(callNative(() => new native.NativeDirector(opts)));
  }

  #live(): NativeDirector {
    if (this.#closed) throw new LvsError('EINVAL', 'the director is closed');
    return this.#native;
  }

  /**
   * Adds a virtual service (`ipvsadm -A`).
   *
   * @throws {@link LvsError} `EEXIST` "Service already exists", `ENOENT` for an unknown
   * scheduler, `EINVAL` for a bad address or option combination.
   * @example
   * ```ts
   * director.addService({ protocol: 'tcp', address: '192.168.10.101:0', scheduler: 'rr', persistent: 1800 });
   * director.addService({ fwmark: 10, scheduler: 'rr', persistent: 1800 });
   * ```
   */
  addService(service: ServiceOptions): this {
    const spec = serviceSpec(service);
    callNative(() => this.#live().addService(spec));
    return this;
  }

  /**
   * Replaces a virtual service's settings (`ipvsadm -E`). Like ipvsadm, every setting not given
   * returns to its default: the scheduler to `wlc`, persistence off.
   *
   * @throws {@link LvsError} `ESRCH` "No such service".
   * @example
   * ```ts
   * director.editService({ protocol: 'tcp', address: '10.0.0.1:80', scheduler: 'wlc', persistent: 600 });
   * ```
   */
  editService(service: ServiceOptions): this {
    const spec = serviceSpec(service);
    callNative(() => this.#live().editService(spec));
    return this;
  }

  /**
   * Deletes a virtual service and its real servers (`ipvsadm -D`).
   *
   * @throws {@link LvsError} `ESRCH` "No such service".
   * @example
   * ```ts
   * director.deleteService({ protocol: 'tcp', address: '10.0.0.1:80' });
   * ```
   */
  deleteService(service: ServiceRef): this {
    const ref = serviceRef(service);
    callNative(() => this.#live().deleteService(ref));
    return this;
  }

  /**
   * Deletes every virtual service (`ipvsadm -C`).
   *
   * @example
   * ```ts
   * director.clear();
   * ```
   */
  clear(): this {
    callNative(() => this.#live().clear());
    return this;
  }

  /**
   * Adds a real server to a virtual service (`ipvsadm -a`).
   *
   * @throws {@link LvsError} `ESRCH` "Service not defined", `EEXIST` "Destination already
   * exists", `ERANGE` for a weight outside 0..65535.
   * @example
   * ```ts
   * director.addServer({ address: '10.0.0.1:80' }, { address: '192.168.0.2:8080', method: 'masq', weight: 2 });
   * ```
   */
  addServer(service: ServiceRef, server: ServerOptions): this {
    const ref = serviceRef(service);
    const spec = serverSpec(server);
    callNative(() => this.#live().addServer(ref, spec));
    return this;
  }

  /**
   * Replaces a real server's settings (`ipvsadm -e`); settings not given return to their
   * defaults (weight 1, direct routing), as with ipvsadm.
   *
   * @throws {@link LvsError} `ESRCH` "Service not defined", `ENOENT` "No such destination".
   * @example
   * ```ts
   * director.editServer({ address: '10.0.0.1:80' }, { address: '192.168.0.2:8080', method: 'masq', weight: 0 });
   * ```
   */
  editServer(service: ServiceRef, server: ServerOptions): this {
    const ref = serviceRef(service);
    const spec = serverSpec(server);
    callNative(() => this.#live().editServer(ref, spec));
    return this;
  }

  /**
   * Removes a real server from a virtual service (`ipvsadm -d`).
   *
   * @throws {@link LvsError} `ESRCH` "Service not defined", `ENOENT` "No such destination".
   * @example
   * ```ts
   * director.deleteServer({ address: '10.0.0.1:80' }, '192.168.0.2:8080');
   * ```
   */
  deleteServer(service: ServiceRef, address: string): this {
    const ref = serviceRef(service);
    callNative(() => this.#live().deleteServer(ref, address));
    return this;
  }

  /**
   * Zeroes counters and rates (`ipvsadm -Z`) of one service and its real servers, or of all.
   *
   * @throws {@link LvsError} `ESRCH` "No such service".
   * @example
   * ```ts
   * director.zero(); // everything
   * director.zero({ fwmark: 10 });
   * ```
   */
  zero(service?: ServiceRef): this {
    const ref = service === undefined ? undefined : serviceRef(service);
    callNative(() => this.#live().zero(ref));
    return this;
  }

  /**
   * Lists the virtual services with their real servers, counters and rates (`ipvsadm -L`), in
   * ipvsadm's order.
   *
   * @example
   * ```ts
   * for (const svc of director.list()) {
   *   console.log(svc.address ?? `FWM ${svc.fwmark}`, svc.scheduler, svc.servers.map((s) => s.address));
   * }
   * ```
   */
  list(): ServiceInfo[] {
    return callNative(() => this.#live().list()) as unknown as ServiceInfo[];
  }

  /**
   * The director's clock, in milliseconds since it was opened.
   *
   * @example
   * ```ts
   * const t = director.now();
   * ```
   */
  now(): number {
    return callNative(() => this.#live().now());
  }

  /**
   * Moves a manual clock forward and runs every timer that falls due (connection expiry, rate
   * estimation, deleted-server cleanup).
   *
   * @param ms - milliseconds to advance, finite and not negative
   * @throws {@link LvsError} `ENOTSUP` unless opened with `{ clock: 'manual' }`.
   * @example
   * ```ts
   * const director = await Director.open({ clock: 'manual' });
   * director.advanceTime(2_000); // one estimator period
   * ```
   */
  advanceTime(ms: number): this {
    callNative(() => this.#live().advanceTime(ms));
    return this;
  }

  /**
   * Closes the director. Further calls throw `EINVAL`. Also runs on `using` scope exit.
   *
   * @example
   * ```ts
   * director.close();
   * ```
   */
  close(): void {
    this.#closed = true;
  }

  /** Same as {@link Director.close}, for `using director = await Director.open()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
