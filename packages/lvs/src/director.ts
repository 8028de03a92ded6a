/**
 * The {@link Director}: a virtual server table you configure the way ipvsadm configures the
 * kernel's, and (with interfaces, later) a load balancer that forwards real packets.
 * @module
 */
import type { ServiceBuilder } from './builder.js';
import { type ControlOptions, type ControlServer, serveControl } from './control.js';
import { callNative, LvsError } from './errors.js';
import { native } from './native.js';
import { type StartVrrpOptions, type VrrpInstanceOptions, VrrpSpeaker } from './vrrp.js';
import type {
  ConnectionInfo,
  FlowQuery,
  IpvsSysctls,
  IpvsSysctlSettings,
  MarkRule,
  OutFrame,
  RouteSpec,
  VirtualInterface,
  RouteResult,
  ServerOptions,
  ServiceInfo,
  ServiceOptions,
  ServiceRef,
  SyncDaemonInfo,
  SyncDaemonOptions,
  SyncState,
  Timeouts,
} from './types.js';

type NativeDirector = InstanceType<typeof native.NativeDirector>;
type NativeServiceSpec = Parameters<NativeDirector['addService']>[0];
type NativeServiceRef = Parameters<NativeDirector['deleteService']>[0];
type NativeServerSpec = Parameters<NativeDirector['addServer']>[1];

/** What an ipvsadm command printed and how it exited, as from `spawnSync('ipvsadm', …)`. */
export interface ExecResult {
  /** Standard output, byte for byte what ipvsadm prints. */
  readonly stdout: string;
  /** Standard error. */
  readonly stderr: string;
  /**
   * Exit status: 0 success, 2 usage error, 255 rejected by the table (for example "Service
   * already exists"), 1 listing failure.
   */
  readonly status: number;
}

/**
 * Splits an ipvsadm command line into words the way `ipvsadm -R` does: on whitespace, dropping a
 * word `ipvsadm`. Quotes have no meaning to ipvsadm, so none are interpreted.
 */
function ipvsadmWords(line: string): string[] {
  return line.split(/\s+/).filter((w) => w !== '' && w !== 'ipvsadm');
}

/** Options of {@link Director.open}. */
export interface DirectorOptions {
  /**
   * Where time comes from. `'system'` (default) follows the monotonic clock; `'manual'` stands
   * still until {@link Director.advanceTime} moves it, so timeouts and rates can be tested
   * deterministically (not with real interfaces).
   */
  readonly clock?: 'system' | 'manual';
  /**
   * Real interfaces to balance on (`['eth0']`: needs root or CAP_NET_RAW + CAP_NET_ADMIN), or
   * virtual ones for an offline director driven by {@link Director.inject}. The director owns
   * every VIP itself (answers ARP/ND for it); VIPs must not be configured on the host, and the
   * host must not forward (`net.ipv4.ip_forward=0`) on these interfaces.
   */
  readonly interfaces?: readonly string[] | readonly VirtualInterface[];
  /** Routes besides the on-link subnets (and the kernel's, for real interfaces). */
  readonly routes?: readonly RouteSpec[];
  /** Firewall-mark rules for fwmark services; more with {@link Director.addMarkRule}. */
  readonly markRules?: readonly MarkRule[];
  /** Packet worker threads on real interfaces; default 1. */
  readonly workers?: number;
  /**
   * Receive and send through AF_XDP sockets instead of AF_PACKET (real interfaces only): an XDP
   * program on each interface hands lvs the frames to VIPs and unicast transit (NAT replies)
   * before the kernel builds an skb, and passes everything else (ARP, multicast, the host's own
   * addresses) to the kernel. Native XDP where the driver has it (veth, most NICs), generic
   * otherwise. Opening fails when XDP is unavailable (`ENOTSUP`) or another XDP program holds an
   * interface (`EBUSY`); there is no silent fallback. Workers are capped at the interfaces' RX
   * queue count. Frames the engine hands to the host (LVS "local" real servers) are dropped.
   * Default `false`.
   */
  readonly xdp?: boolean;
  /**
   * `/proc/sys/net/ipv4/vs/*` settings to start with (see {@link Director.setSysctl}), e.g.
   * `{ expire_nodest_conn: 1 }`.
   */
  readonly sysctl?: IpvsSysctlSettings;
}

type NativeVirtualInterface = Exclude<
  NonNullable<NonNullable<ConstructorParameters<typeof native.NativeDirector>[0]>['interfaces']>,
  string[]
>[number];

function isNames(ifs: readonly string[] | readonly VirtualInterface[]): ifs is readonly string[] {
  return ifs.every((i) => typeof i === 'string');
}

function markRuleSpec(rule: MarkRule): Parameters<NativeDirector['addMarkRule']>[0] {
  const spec: Parameters<NativeDirector['addMarkRule']>[0] = {
    destination: rule.destination,
    mark: integer('mark', rule.mark, 1, 0xffff_ffff),
  };
  if (rule.protocol !== undefined) spec.protocol = rule.protocol;
  if (rule.ports !== undefined) spec.ports = [...rule.ports];
  return spec;
}

/**
 * Checks that a JS number is an integer in range before it crosses into Rust, where napi would
 * silently truncate it.
 */
function integer(name: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value)) throw new LvsError('EINVAL', `${name} must be an integer, got ${String(value)}`);
  if (value < min || value > max) throw new LvsError('ERANGE', `${name} must be from ${min} to ${max}, got ${value}`);
  return value;
}

function serviceRef(ref: ServiceRef): NativeServiceRef {
  if ('fwmark' in ref) return { fwmark: integer('fwmark', ref.fwmark, 1, 0xffff_ffff), family: ref.family ?? 'inet' };
  return { protocol: ref.protocol ?? 'tcp', address: ref.address };
}

function serviceSpec(opts: ServiceOptions): NativeServiceSpec {
  const spec: NativeServiceSpec = { ...serviceRef(opts) };
  if (opts.scheduler !== undefined) spec.scheduler = opts.scheduler;
  if (opts.persistent !== undefined) {
    spec.persistent =
      typeof opts.persistent === 'number' ? integer('persistent', opts.persistent, 1, 2_678_400) : opts.persistent;
  }
  if (opts.netmask !== undefined) {
    spec.netmask = typeof opts.netmask === 'number' ? integer('netmask', opts.netmask, 1, 128) : opts.netmask;
  }
  if (opts.pe !== undefined) spec.pe = opts.pe;
  if (opts.onePacket !== undefined) spec.onePacket = opts.onePacket;
  if (opts.schedFlags !== undefined) spec.schedFlags = [...opts.schedFlags];
  return spec;
}

function serverSpec(opts: ServerOptions): NativeServerSpec {
  const spec: NativeServerSpec = { address: opts.address };
  if (opts.method !== undefined) spec.method = opts.method;
  if (opts.weight !== undefined) spec.weight = integer('weight', opts.weight, 0, 65535);
  if (opts.upperThreshold !== undefined) {
    spec.upperThreshold = integer('upperThreshold', opts.upperThreshold, 0, 2_147_483_647);
  }
  if (opts.lowerThreshold !== undefined) {
    spec.lowerThreshold = integer('lowerThreshold', opts.lowerThreshold, 0, 2_147_483_647);
  }
  if (opts.tunnel !== undefined) {
    spec.tunnel = { type: opts.tunnel.type };
    if (opts.tunnel.port !== undefined) spec.tunnel.port = integer('tunnel port', opts.tunnel.port, 1, 65535);
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
  readonly #servers = new Set<ControlServer>();
  readonly #speakers = new Set<VrrpSpeaker>();

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
   * const onEth0 = await Director.open({ interfaces: ['eth0'], xdp: true }); // AF_XDP packet path
   * ```
   */
  static async open(options: DirectorOptions = {}): Promise<Director> {
    const opts: NonNullable<ConstructorParameters<typeof native.NativeDirector>[0]> = {};
    if (options.clock !== undefined) opts.clock = options.clock;
    if (options.interfaces !== undefined) {
      const ifs = options.interfaces;
      opts.interfaces = isNames(ifs)
        ? [...ifs]
        : ifs.map((i) => {
            const v: NativeVirtualInterface = { name: i.name, mac: i.mac, addresses: [...(i.addresses ?? [])] };
            if (i.index !== undefined) v.index = integer('interface index', i.index, 1, 0x7fff_ffff);
            if (i.mtu !== undefined) v.mtu = integer('mtu', i.mtu, 68, 65535);
            return v;
          });
    }
    if (options.routes !== undefined) opts.routes = options.routes.map((r) => ({ ...r }));
    if (options.markRules !== undefined) opts.markRules = options.markRules.map(markRuleSpec);
    if (options.workers !== undefined) opts.workers = integer('workers', options.workers, 1, 64);
    if (options.xdp !== undefined) {
      if (typeof options.xdp !== 'boolean') throw new LvsError('EINVAL', 'xdp must be a boolean');
      opts.xdp = options.xdp;
    }
    const director = new Director(callNative(() => new native.NativeDirector(opts)));
    if (options.sysctl !== undefined) {
      try {
        director.setSysctl(options.sysctl);
      } catch (err) {
        director.close();
        throw err;
      }
    }
    return director;
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
   * Creates services described with the builders ({@link tcp}, {@link udp}, {@link sctp},
   * {@link fwmark}), all or nothing: if any service or server is refused, none is added.
   *
   * @throws {@link LvsError} `EINVAL` naming the refused command, e.g.
   *   `line 1: Service already exists`.
   * @example
   * ```ts
   * director.apply(
   *   tcp('10.10.36.11:80').scheduler('rr').server('10.10.36.4', { method: 'dr' }),
   *   fwmark(10).persistent(1800).server('192.168.10.200'),
   * );
   * ```
   */
  apply(...services: ServiceBuilder[]): this {
    return this.restore(services.flatMap((s) => s.toIpvsadm()).join('\n'));
  }

  /**
   * Where does this client go? Takes the path a first packet (TCP SYN, UDP datagram, SCTP INIT)
   * would take, creating the connection and persistence template exactly as that packet would,
   * so later calls for the same flow, and real packets, find them.
   *
   * @returns the real server, or `null` when the packet would not be forwarded (no service, no
   *   server available).
   * @example
   * ```ts
   * director.routeFlow({ protocol: 'tcp', client: '203.0.113.7:40000', virtual: '10.10.36.11:80' });
   * // { server: '10.10.36.4:80', method: 'route', created: true }
   * director.routeFlow({ fwmark: 10, client: '203.0.113.7:40001', virtual: '192.168.10.101:443' });
   * ```
   */
  routeFlow(flow: FlowQuery): RouteResult | null {
    const query: Parameters<NativeDirector['routeFlow']>[0] = { client: flow.client };
    if (flow.protocol !== undefined) query.protocol = flow.protocol;
    if (flow.virtual !== undefined) query.virtual = flow.virtual;
    if (flow.fwmark !== undefined) query.fwmark = integer('fwmark', flow.fwmark, 1, 0xffff_ffff);
    return (callNative(() => this.#live().routeFlow(query)) ?? null) as RouteResult | null;
  }

  /**
   * Connections and persistence templates (`ipvsadm -Lc`).
   *
   * @example
   * ```ts
   * for (const c of director.connections()) console.log(c.protocol, c.state, c.client, '->', c.server);
   * ```
   */
  connections(): ConnectionInfo[] {
    return callNative(() => this.#live().connections()) as ConnectionInfo[];
  }

  /**
   * Sets connection timeouts in seconds (`ipvsadm --set tcp tcpfin udp`); 0 leaves one unchanged.
   * Existing connections take the new value at their next packet.
   *
   * @example
   * ```ts
   * director.setTimeouts({ tcp: 1, tcpfin: 2, udp: 1 }); // ipvsadm --set 1 2 1
   * ```
   */
  setTimeouts(timeouts: Timeouts): this {
    const t = {
      tcp: integer('tcp timeout', timeouts.tcp, 0, 2_678_400),
      tcpfin: integer('tcpfin timeout', timeouts.tcpfin, 0, 2_678_400),
      udp: integer('udp timeout', timeouts.udp, 0, 2_678_400),
    };
    callNative(() => this.#live().setTimeouts(t));
    return this;
  }

  /**
   * The connection timeouts (`ipvsadm -L --timeout`).
   *
   * @example
   * ```ts
   * director.timeouts(); // { tcp: 900, tcpfin: 120, udp: 300 }
   * ```
   */
  timeouts(): Timeouts {
    return callNative(() => this.#live().timeouts());
  }

  /**
   * The `/proc/sys/net/ipv4/vs/*` settings lvs acts on, as `sysctl net.ipv4.vs` shows them.
   *
   * @example
   * ```ts
   * director.sysctl().expire_nodest_conn; // 0
   * director.sysctl().sync_threshold; // [3, 50]
   * director.sysctl('net.ipv4.vs.conntrack'); // '0': by name, as /proc shows it
   * ```
   * @throws {@link LvsError} `ENOENT` for a name the kernel does not have.
   */
  sysctl(): IpvsSysctls;
  sysctl(name: string): string;
  sysctl(name?: string): IpvsSysctls | string {
    if (name !== undefined) return callNative(() => this.#live().sysctlValue(name));
    const entries = callNative(() => this.#live().sysctl());
    const values = new Map(entries.map((e) => [e.name, e.value]));
    const num = (name: string): number => Number(values.get(name));
    const [threshold = 3, period = 50] = (values.get('sync_threshold') ?? '').split(/\s+/).map(Number);
    return {
      expire_nodest_conn: num('expire_nodest_conn'),
      expire_quiescent_template: num('expire_quiescent_template'),
      sloppy_tcp: num('sloppy_tcp'),
      sloppy_sctp: num('sloppy_sctp'),
      conn_reuse_mode: num('conn_reuse_mode'),
      secure_tcp: num('secure_tcp'),
      lblc_expiration: num('lblc_expiration'),
      lblcr_expiration: num('lblcr_expiration'),
      sync_version: num('sync_version'),
      sync_threshold: [threshold, period],
      sync_persist_mode: num('sync_persist_mode'),
      sync_qlen_max: num('sync_qlen_max'),
    };
  }

  /**
   * Changes `/proc/sys/net/ipv4/vs/*` settings, as `sysctl -w net.ipv4.vs.NAME=VALUE` changes the
   * kernel's: either every setting given takes effect or none does. By name, any spelling
   * `sysctl` accepts works (`net.ipv4.vs.expire_nodest_conn`), and so do the kernel settings lvs
   * does not act on when the value is what lvs does anyway (`conntrack = 0`, `pmtu_disc = 1`).
   *
   * @throws {@link LvsError} naming the setting: `ENOENT` no such sysctl, `EINVAL` not an
   * integer, `ERANGE` out of the kernel's range (or a `sync_threshold` not below its period),
   * `ENOTSUP` a setting lvs does not act on.
   * @example
   * ```ts
   * director.setSysctl({ expire_nodest_conn: 1, expire_quiescent_template: true, sync_threshold: [3, 50] });
   * director.setSysctl('net.ipv4.vs.sloppy_tcp', 1); // as in /etc/sysctl.conf
   * ```
   */
  setSysctl(settings: IpvsSysctlSettings): this;
  setSysctl(name: string, value: string | number): this;
  setSysctl(settings: IpvsSysctlSettings | string, value?: string | number): this {
    const text = (v: unknown): string =>
      typeof v === 'boolean' ? (v ? '1' : '0') : Array.isArray(v) ? v.map(String).join(' ') : String(v);
    const entries =
      typeof settings === 'string'
        ? [{ name: settings, value: text(value) }]
        : Object.entries(settings)
            .filter(([, v]) => v !== undefined)
            .map(([name, v]) => ({ name, value: text(v) }));
    callNative(() => this.#live().setSysctl(entries));
    return this;
  }

  /**
   * Runs an ipvsadm command against this director and returns what ipvsadm would print. Every
   * ipvsadm command and option works, short and long, with ipvsadm's defaults and messages.
   * Failures are reported in `status`/`stderr`, as ipvsadm reports them, not thrown.
   *
   * @param command - a command line (`'-A -t 10.0.0.1:80 -s rr'`, a leading `ipvsadm` is
   *   ignored) or an argument vector (`['-A', '-t', '10.0.0.1:80']`)
   * @param stdin - input for `-R`
   * @example
   * ```ts
   * director.exec('ipvsadm -A -t 10.10.36.11:80 -s rr');
   * director.exec(['-a', '-t', '10.10.36.11:80', '-r', '10.10.36.4', '-g', '-w', '1']);
   * console.log(director.exec('-Ln').stdout);
   * const { status, stderr } = director.exec('-A -t 10.10.36.11:80');
   * // status 255, stderr "Service already exists\n"
   * ```
   */
  exec(command: string | readonly string[], stdin?: string): ExecResult {
    const args = typeof command === 'string' ? ipvsadmWords(command) : [...command];
    return callNative(() => this.#live().exec('ipvsadm', args, stdin));
  }

  /**
   * The rules as `ipvsadm -S -n` prints them, ready for {@link Director.restore} or `ipvsadm -R`.
   *
   * @example
   * ```ts
   * writeFileSync('/etc/lvs.rules', director.save());
   * ```
   */
  save(): string {
    return callNative(() => this.#live().save());
  }

  /**
   * Applies rules in `ipvsadm -R` format (what {@link Director.save} or `ipvsadm -S` write).
   * Unlike ipvsadm it is atomic: if any line is bad, nothing is applied.
   *
   * @throws {@link LvsError} `EINVAL` with a message naming the line, e.g.
   *   `line 3: Destination already exists`.
   * @example
   * ```ts
   * director.restore(readFileSync('/etc/lvs.rules', 'utf8'));
   * ```
   */
  restore(rules: string): this {
    callNative(() => this.#live().restore(rules));
    return this;
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
    if (!Number.isFinite(ms) || ms < 0) {
      throw new LvsError('EINVAL', 'advanceTime needs a finite, non-negative number of milliseconds');
    }
    callNative(() => this.#live().advanceTime(ms));
    return this;
  }

  /**
   * Serves this director on a Unix control socket (owner-only permissions) so the `lvsadm`
   * command can manage it exactly as ipvsadm manages the kernel.
   *
   * @example
   * ```ts
   * const control = await director.serve({ path: '/run/lvs/lvsadm.sock' });
   * // shell: LVSADM_SOCKET=/run/lvs/lvsadm.sock lvsadm -Ln
   * await control.close();
   * ```
   */
  async serve(options: ControlOptions = {}): Promise<ControlServer> {
    this.#live();
    const server = await serveControl(this, options);
    this.#servers.add(server);
    return server;
  }

  /**
   * Pushes one Ethernet frame, as if received on `iface`, through the packet path and returns
   * the frames the director would send: rewritten (NAT), re-addressed (DR), encapsulated (TUN),
   * ARP/ND answers, ICMP errors. Nothing is sent; use it to test configurations offline.
   *
   * @example
   * ```ts
   * const d = await Director.open({ interfaces: [{ name: 'eth0', mac: '02:00:00:00:00:01', addresses: ['10.0.0.1/24'] }] });
   * const [reply] = d.inject(arpRequestForVip, 'eth0');
   * ```
   */
  inject(frame: Uint8Array, iface: string): OutFrame[] {
    const buf = Buffer.isBuffer(frame) ? frame : Buffer.from(frame.buffer, frame.byteOffset, frame.byteLength);
    return callNative(() => this.#live().inject(iface, buf));
  }

  /**
   * Adds a firewall-mark rule after the existing ones (first match wins).
   *
   * @example
   * ```ts
   * // iptables -t mangle -A PREROUTING -d 192.168.10.101 -p tcp -m multiport --dports 80,443 -j MARK --set-mark 10
   * director.addMarkRule({ destination: '192.168.10.101', protocol: 'tcp', ports: [80, 443], mark: 10 });
   * ```
   */
  addMarkRule(rule: MarkRule): this {
    const spec = markRuleSpec(rule);
    callNative(() => this.#live().addMarkRule(spec));
    return this;
  }

  /**
   * Starts a connection-sync daemon (`ipvsadm --start-daemon`): a master multicasts its
   * connections and persistence templates (IPVS sync protocol v1, 224.0.0.81:8848 by default),
   * a backup applies what it receives, so it can take over established connections. On a
   * director with interfaces the multicast interface must exist (`ENODEV`); a second daemon of
   * the same state fails with `EEXIST`.
   *
   * @example
   * ```ts
   * director.startDaemon({ state: 'master', mcastInterface: 'eth0', syncId: 1 });
   * ```
   */
  startDaemon(options: SyncDaemonOptions): SyncDaemonInfo {
    const spec: Parameters<NativeDirector['startDaemon']>[0] = { state: options.state };
    if (options.mcastInterface !== undefined) spec.mcastInterface = options.mcastInterface;
    if (options.syncId !== undefined) spec.syncId = integer('syncId', options.syncId, 0, 255);
    if (options.syncMaxlen !== undefined) spec.syncMaxlen = integer('syncMaxlen', options.syncMaxlen, 1, 65507);
    if (options.mcastGroup !== undefined) spec.mcastGroup = options.mcastGroup;
    if (options.mcastPort !== undefined) spec.mcastPort = integer('mcastPort', options.mcastPort, 1, 65535);
    if (options.mcastTtl !== undefined) spec.mcastTtl = integer('mcastTtl', options.mcastTtl, 1, 255);
    return callNative(() => this.#live().startDaemon(spec)) as SyncDaemonInfo;
  }

  /**
   * Stops a connection-sync daemon (`ipvsadm --stop-daemon`); `ESRCH` when none of that state runs.
   *
   * @example
   * ```ts
   * director.stopDaemon('master');
   * ```
   */
  stopDaemon(state: SyncState): this {
    callNative(() => this.#live().stopDaemon(state));
    return this;
  }

  /**
   * The running connection-sync daemons, master first (`ipvsadm -L --daemon`).
   *
   * @example
   * ```ts
   * for (const d of director.daemons()) console.log(d.state, d.mcastInterface, d.syncId);
   * ```
   */
  daemons(): SyncDaemonInfo[] {
    return callNative(() => this.#live().daemons()) as SyncDaemonInfo[];
  }

  /**
   * Connection-sync counters: records queued and messages completed by the master, messages
   * received, entries created and updated, malformed messages, records for unknown services,
   * and (with interfaces) datagrams sent and received.
   *
   * @example
   * ```ts
   * const s = director.syncStats();
   * console.log(s['connsCreated'], s['malformed']);
   * ```
   */
  syncStats(): Record<string, bigint> {
    return callNative(() => this.#live().syncStats());
  }

  /**
   * Packet-path counters: frames and bytes in and out, every verdict and every drop reason.
   *
   * @example
   * ```ts
   * const c = director.counters();
   * console.log(c['rx_frames'], c['drop_malformed']);
   * ```
   */
  counters(): Record<string, bigint> {
    return callNative(() => this.#live().counters());
  }

  /**
   * Why packet forwarding stopped on an interface, if it did: the first error a packet worker
   * ended with (for example, its interface was deleted). `undefined` while every worker runs, and
   * always for an in-memory director. `lvsd` checks it every second and exits with status 1.
   *
   * @example
   * ```ts
   * const failure = director.workerFailure();
   * if (failure !== undefined) console.error(`forwarding stopped: ${failure}`);
   * ```
   */
  workerFailure(): string | undefined {
    return callNative(() => this.#live().workerFailure()) ?? undefined;
  }

  /**
   * Starts VRRP for `instances` (keepalived's `vrrp_instance` blocks) on interfaces the director
   * runs on. From then on each instance's VIPs are answered (ARP/ND) and balanced only while the
   * instance is MASTER, whether or not a service uses them. One speaker per director; closing
   * the director stops it.
   *
   * @throws {@link LvsError} `ENOTSUP` for a director without real interfaces, `EBUSY` for a
   * second speaker, `EINVAL` for a bad instance, `EPERM` without privileges.
   * @example
   * ```ts
   * const director = await Director.open({ interfaces: ['eth0'] });
   * const vrrp = director.startVrrp(
   *   [{ name: 'VI_1', interface: 'eth0', virtualRouterId: 51, priority: 150,
   *      virtualIpaddress: ['10.200.0.100'], trackScript: ['chk_web'] }],
   *   { scripts: { chk_web: { script: ['/usr/bin/curl', '-sf', 'http://127.0.0.1/'], weight: -60 } } },
   * );
   * vrrp.on('state', (c) => console.log(c.instance, c.from, '->', c.to));
   * ```
   */
  startVrrp(instances: readonly VrrpInstanceOptions[], options: StartVrrpOptions = {}): VrrpSpeaker {
    const director = this.#live();
    const speaker = new VrrpSpeaker(
      (specs, groups, cb) => director.startVrrp(specs, groups, (e) => cb(e)),
      instances,
      options,
    );
    this.#speakers.add(speaker);
    return speaker;
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
    if (this.#closed) return;
    for (const speaker of this.#speakers) speaker.stop();
    this.#speakers.clear();
    this.#closed = true;
    callNative(() => this.#native.close());
    for (const server of this.#servers) void server.close();
    this.#servers.clear();
  }

  /** Same as {@link Director.close}, for `using director = await Director.open()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
