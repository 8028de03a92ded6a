/**
 * The vocabulary of the API: protocols, schedulers, forwarding methods, and the shapes of
 * services and real servers, named as ipvsadm names them.
 * @module
 */

/** Transport protocol of a virtual service: ipvsadm's `-t`, `-u` and `--sctp-service`. */
export type Protocol = 'tcp' | 'udp' | 'sctp';

/** Address family; `'inet6'` is ipvsadm's `-6`. */
export type Family = 'inet' | 'inet6';

/**
 * Scheduling algorithms, with the names ipvsadm's `-s` takes. Each makes the same choices Linux
 * IPVS makes for the same configuration and connection counts.
 *
 * - `rr` round robin, `wrr` weighted round robin
 * - `lc` least-connection, `wlc` weighted least-connection (the default)
 * - `lblc` locality-based least-connection, `lblcr` … with replication
 * - `dh` destination hashing, `sh` source hashing, `mh` Maglev hashing
 * - `sed` shortest expected delay, `nq` never queue
 * - `fo` weighted failover, `ovf` weighted overflow, `twos` weighted random twos choice
 * - `none` binds no scheduler: no new connection is ever scheduled
 */
export type SchedulerName =
  | 'rr'
  | 'wrr'
  | 'lc'
  | 'wlc'
  | 'lblc'
  | 'lblcr'
  | 'dh'
  | 'sh'
  | 'sed'
  | 'nq'
  | 'fo'
  | 'ovf'
  | 'mh'
  | 'twos'
  | 'none';

/**
 * Scheduler flags (ipvsadm's `-b`). `sh-*` need scheduler `sh`, `mh-*` need `mh`.
 */
export type SchedulerFlag = 'sh-fallback' | 'sh-port' | 'mh-fallback' | 'mh-port' | 'flag-1' | 'flag-2' | 'flag-3';

/**
 * How packets reach a real server.
 *
 * - `'route'`: direct routing, LVS/DR (ipvsadm `-g`, the default): only the MAC address changes.
 * - `'tunnel'`: IP-in-IP, LVS/TUN (`-i`).
 * - `'masq'`: masquerading, LVS/NAT (`-m`): replies come back through the director.
 * - `'local'`: the director serves the connection itself.
 */
export type ForwardingMethod = 'masq' | 'route' | 'tunnel' | 'local';

/** The names LVS operators use for the forwarding methods: NAT, DR and TUN. */
export type ForwardingAlias = 'nat' | 'dr' | 'tun';

/**
 * An address with an optional port: `'10.0.0.1:80'`, `'10.0.0.1'`, `'[2001:db8::1]:80'` or
 * `'2001:db8::1'`, as ipvsadm writes them.
 */
export type AddressText = string;

/** A virtual service identified by protocol and address (`-t 10.0.0.1:80`). */
export interface VirtualServiceRef {
  /** Protocol; default `'tcp'`. */
  readonly protocol?: Protocol;
  /** Virtual IP and port. Port 0 (or none) means "all ports" and needs persistence. */
  readonly address: AddressText;
}

/** A virtual service identified by firewall mark (`-f 10`, `-f 10 -6`). */
export interface FwmarkServiceRef {
  /** The firewall mark, greater than zero. */
  readonly fwmark: number;
  /** Address family of the marked packets; default `'inet'`. */
  readonly family?: Family;
}

/** Names an existing virtual service. */
export type ServiceRef = VirtualServiceRef | FwmarkServiceRef;

/** Settings shared by both kinds of service (ipvsadm `-A`/`-E` options). */
export interface ServiceSettings {
  /** Scheduler (`-s`); default `'wlc'`. */
  readonly scheduler?: SchedulerName;
  /**
   * Persistence (`-p`): `true` for ipvsadm's default of 360 s, or a timeout in seconds
   * (1 to 2678400). Connections from one client (network) keep going to one real server.
   */
  readonly persistent?: boolean | number;
  /**
   * Persistence granularity (`-M`): an IPv4 netmask such as `'255.255.255.0'`, or an IPv6
   * prefix length. Default: the whole address.
   */
  readonly netmask?: string | number;
  /**
   * Persistence engine (`--pe`); only `'sip'` exists. With `persistent`, a UDP service then keeps
   * calls rather than clients together: the SIP `Call-ID` of the first datagram joins the
   * persistence key, so phones behind one address can reach different servers and every message
   * of a call reaches the same one. As in Linux, a new datagram without a Call-ID (or a TCP
   * connection) is dropped (counter `drop_pe_no_data`); {@link Director.routeFlow} carries no
   * payload, so it answers `null` for new flows of such a service. A NAT real server may also
   * start a call itself: its request creates the connection and the call's template.
   */
  readonly pe?: 'sip';
  /** One-packet scheduling (`-o`): schedule every UDP datagram independently. */
  readonly onePacket?: boolean;
  /** Scheduler flags (`-b`). */
  readonly schedFlags?: readonly SchedulerFlag[];
}

/** A virtual service to add or edit. */
export type ServiceOptions = ServiceRef & ServiceSettings;

/** Tunnel encapsulation of a tunnel real server (`--tun-type`, `--tun-port`, checksum options). */
export interface TunnelOptions {
  /** Encapsulation; IP-in-IP by default. */
  readonly type: 'ipip' | 'gue' | 'gre';
  /** UDP port for GUE (`--tun-port`). */
  readonly port?: number;
  /** `--tun-nocsum` (default), `--tun-csum`, or `--tun-remcsum` (GUE). */
  readonly checksum?: 'none' | 'csum' | 'remcsum';
}

/** A real server to add or edit (ipvsadm `-a`/`-e` options). */
export interface ServerOptions {
  /**
   * Address (`-r`). Without a port, the service's port; with direct routing or tunnelling the
   * service port is always used, as ipvsadm does.
   */
  readonly address: AddressText;
  /** Forwarding method; default `'route'` (direct routing), as in ipvsadm. */
  readonly method?: ForwardingMethod | ForwardingAlias;
  /** Weight 0..65535 (`-w`); default 1. Weight 0 quiesces the server. */
  readonly weight?: number;
  /** Upper connection threshold (`-x`); 0 means none. */
  readonly upperThreshold?: number;
  /** Lower connection threshold (`-y`); 0 means three quarters of the upper one. */
  readonly lowerThreshold?: number;
  /** Tunnel encapsulation, for `method: 'tunnel'`. */
  readonly tunnel?: TunnelOptions;
}

/** Traffic counters since creation or the last {@link Director.zero}. */
export interface Stats {
  /** Connections scheduled. */
  readonly conns: bigint;
  /** Packets from clients. */
  readonly inPackets: bigint;
  /** Packets to clients (only NAT replies pass the director). */
  readonly outPackets: bigint;
  /** Bytes from clients. */
  readonly inBytes: bigint;
  /** Bytes to clients. */
  readonly outBytes: bigint;
}

/** Rates estimated every 2 seconds the way IPVS estimates them. */
export interface Rates {
  /** Connections per second. */
  readonly cps: number;
  /** Incoming packets per second. */
  readonly inPps: number;
  /** Outgoing packets per second. */
  readonly outPps: number;
  /** Incoming bytes per second. */
  readonly inBps: number;
  /** Outgoing bytes per second. */
  readonly outBps: number;
}

/** A real server as listed. */
export interface ServerInfo {
  /** `'ip:port'` or `'[ipv6]:port'`. */
  readonly address: string;
  /** Forwarding method. */
  readonly method: ForwardingMethod | 'bypass';
  /** Weight. */
  readonly weight: number;
  /** Upper connection threshold (0: none). */
  readonly upperThreshold: number;
  /** Lower connection threshold (0: none). */
  readonly lowerThreshold: number;
  /** Tunnel encapsulation of tunnel servers. */
  readonly tunnel?: Required<TunnelOptions>;
  /** ActiveConn. */
  readonly activeConns: number;
  /** InActConn. */
  readonly inactiveConns: number;
  /** PersistConn: persistence templates pointing here. */
  readonly persistentConns: number;
  /** True while the upper threshold is exceeded (no new connections). */
  readonly overloaded: boolean;
  /** Counters. */
  readonly stats: Stats;
  /** Rates. */
  readonly rates: Rates;
}

/** What every listed virtual service has. */
export interface ServiceInfoBase {
  /** Address family. */
  readonly family: Family;
  /** Scheduler. */
  readonly scheduler: SchedulerName;
  /** Persistence timeout in seconds, when persistent. */
  readonly persistent?: number;
  /** Persistence netmask: dotted IPv4 mask or IPv6 prefix length. */
  readonly netmask: string;
  /** Persistence engine. */
  readonly pe?: 'sip';
  /** One-packet scheduling. */
  readonly onePacket: boolean;
  /** Scheduler flags. */
  readonly schedFlags: readonly SchedulerFlag[];
  /** Counters. */
  readonly stats: Stats;
  /** Rates. */
  readonly rates: Rates;
  /** Real servers, in ipvsadm's order (by address, then port). */
  readonly servers: readonly ServerInfo[];
}

/** A listed service identified by protocol and address. */
export interface VirtualServiceInfo extends ServiceInfoBase {
  /** Protocol. */
  readonly protocol: Protocol;
  /** Virtual address `'ip:port'` or `'[ipv6]:port'`. */
  readonly address: string;
  /** Absent: this is not a fwmark service. */
  readonly fwmark?: undefined;
}

/** A listed firewall-mark service. */
export interface FwmarkServiceInfo extends ServiceInfoBase {
  /** The firewall mark. */
  readonly fwmark: number;
  /** Absent for fwmark services. */
  readonly protocol?: undefined;
  /** Absent for fwmark services. */
  readonly address?: undefined;
}

/** A virtual service as listed: narrow on `fwmark` (or `address`) to tell the kinds apart. */
export type ServiceInfo = VirtualServiceInfo | FwmarkServiceInfo;

/** A flow to route with {@link Director.routeFlow}: a client connecting to a virtual service. */
export type FlowQuery =
  | {
      /** Protocol; default `'tcp'`. */
      readonly protocol?: Protocol;
      /** Client `'ip:port'`. */
      readonly client: AddressText;
      /** Virtual `'ip:port'` the client connects to. */
      readonly virtual: AddressText;
      /** Firewall mark the packet carries (for fwmark services). */
      readonly fwmark?: number;
    }
  | {
      /** Protocol; default `'tcp'`. */
      readonly protocol?: Protocol;
      /** Client `'ip:port'`. */
      readonly client: AddressText;
      /** Where the marked packet goes; its port is the port a fwmark service keeps. */
      readonly virtual?: AddressText;
      /** Firewall mark the packet carries. */
      readonly fwmark: number;
    };

/** Where {@link Director.routeFlow} sent a flow. */
export interface RouteResult {
  /** The real server, `'ip:port'`. */
  readonly server: string;
  /** How packets reach it. */
  readonly method: ForwardingMethod | 'bypass';
  /** True when this call created the connection; false when it already existed. */
  readonly created: boolean;
}

/** A connection or persistence template, as `ipvsadm -Lc` lists it. */
export interface ConnectionInfo {
  /** Protocol; `'ip'` for firewall-mark persistence templates. */
  readonly protocol: Protocol | 'ip';
  /** True for persistence templates. */
  readonly template: boolean;
  /** IPVS state name: `SYN_RECV`, `ESTABLISHED`, `FIN_WAIT`, `UDP`, `NONE`, `ASSURED`, … */
  readonly state: string;
  /** Milliseconds until the entry expires. */
  readonly expiresMs: number;
  /** Client `'ip:port'`; for templates the masked client network with port 0. */
  readonly client: string;
  /** Virtual `'ip:port'`; for fwmark templates the mark written as an address (`0.0.0.10:0`). */
  readonly virtual: string;
  /** Real server `'ip:port'`. */
  readonly server: string;
  /** Forwarding method. */
  readonly method: ForwardingMethod | 'bypass';
  /** Persistence engine of a template keyed by one (`--pe sip`); absent otherwise. */
  readonly pe?: 'sip';
  /** The engine's data: the SIP Call-ID the template is keyed by (`ipvsadm -Lc --persistent-conn`). */
  readonly peData?: string;
}

/** Connection timeouts in seconds, as `ipvsadm --set tcp tcpfin udp` sets them. */
export interface Timeouts {
  /** TCP ESTABLISHED (default 900). */
  readonly tcp: number;
  /** TCP FIN_WAIT (default 120). */
  readonly tcpfin: number;
  /** UDP (default 300). */
  readonly udp: number;
}

/**
 * The `/proc/sys/net/ipv4/vs/*` settings lvs acts on, under their kernel names and with the values
 * `cat /proc/sys/net/ipv4/vs/NAME` shows (flags are 0 or 1).
 */
export interface IpvsSysctls {
  /** Expire connections whose real server was deleted instead of dropping their packets (0). */
  readonly expire_nodest_conn: number;
  /** Invalidate persistence templates whose real server has weight 0 (0). */
  readonly expire_quiescent_template: number;
  /** Start TCP connections on any packet but RST, not only SYN (0). */
  readonly sloppy_tcp: number;
  /** Start SCTP associations on any chunk but ABORT, not only INIT (0). */
  readonly sloppy_sctp: number;
  /**
   * Bit 0: a SYN hitting a connection in TIME_WAIT/CLOSE starts a new one; bit 1: also one in
   * FIN_WAIT whose replies bypass the director (DR/TUN) (1).
   */
  readonly conn_reuse_mode: number;
  /**
   * 3: TCP states follow the kernel's `tcp_states_dos` table (SYN floods age out sooner); 1 and 2
   * switch only under memory pressure, which lvs never has, so they act as 0 (0).
   */
  readonly secure_tcp: number;
  /** Seconds before an idle lblc entry is dropped (86400). */
  readonly lblc_expiration: number;
  /** Seconds before an idle lblcr entry is dropped (86400). */
  readonly lblcr_expiration: number;
  /** Sync message format: 1, or 0 for the old IPv4-only one (1). */
  readonly sync_version: number;
  /** A connection is synced at `threshold` packets, then every `period` packets (3, 50). */
  readonly sync_threshold: readonly [threshold: number, period: number];
  /** For persistent services sync only templates, not the connections they control (0). */
  readonly sync_persist_mode: number;
  /** Sync messages the master may queue (1024). */
  readonly sync_qlen_max: number;
}

/** Values for {@link Director.setSysctl}: any subset; flags also as booleans. */
export type IpvsSysctlSettings = {
  readonly [K in keyof IpvsSysctls]?: IpvsSysctls[K] extends number ? number | boolean : IpvsSysctls[K];
};

/**
 * A virtual network interface of an offline director: frames enter with
 * {@link Director.inject} and the frames the director would send are returned.
 */
export interface VirtualInterface {
  /** Name, used in {@link Director.inject} and in returned frames. */
  readonly name: string;
  /** Interface index; default its position in the list plus one. */
  readonly index?: number;
  /** MAC address, `'02:00:00:00:00:01'`. */
  readonly mac: string;
  /** MTU; default 1500. */
  readonly mtu?: number;
  /** Addresses with prefix length (the director's own, not VIPs): `'10.0.0.1/24'`. */
  readonly addresses?: readonly string[];
}

/** A route the director uses besides its on-link subnets (and, on real interfaces, the kernel's). */
export interface RouteSpec {
  /** Destination prefix: `'0.0.0.0/0'`, `'10.1.0.0/16'`. */
  readonly destination: string;
  /** Next hop. */
  readonly gateway?: string;
  /** Interface name. */
  readonly interface: string;
}

/**
 * A firewall-mark rule: packets to `destination` (and `protocol`, `ports`) get `mark`, which
 * fwmark services (`-f`) match. The director's answer to
 * `iptables -t mangle -A PREROUTING -d VIP -p tcp -m multiport --dports 80,443 -j MARK --set-mark 10`,
 * which cannot work here because the director sees packets before iptables.
 */
export interface MarkRule {
  /** Destination address or prefix. */
  readonly destination: string;
  /** Protocol; any when absent. */
  readonly protocol?: Protocol;
  /** Destination ports: numbers or `'8000-8080'` ranges; any when absent. */
  readonly ports?: readonly (number | string)[];
  /** The mark, greater than zero. */
  readonly mark: number;
}

/** A frame the packet path produced. */
export interface OutFrame {
  /** Interface it leaves on. */
  readonly interface: string;
  /** True when handed to the host stack instead of the wire. */
  readonly toHost: boolean;
  /** The Ethernet frame. */
  readonly data: Buffer;
}

/** The role of a connection-sync daemon: a master sends its connections, a backup receives them. */
export type SyncState = 'master' | 'backup';

/**
 * Options of {@link Director.startDaemon}, as `ipvsadm --start-daemon` takes them.
 *
 * @example
 * ```ts
 * const opts: SyncDaemonOptions = { state: 'master', mcastInterface: 'eth0', syncId: 1 };
 * ```
 */
export interface SyncDaemonOptions {
  /** Master or backup. */
  readonly state: SyncState;
  /** Multicast interface (default `eth0`). */
  readonly mcastInterface?: string;
  /** Sync id 0..255 (default 0): written into a master's messages; a backup with a non-zero id ignores other ids. */
  readonly syncId?: number;
  /** Largest message in bytes, 1..65507 (default from the MTU: 1472 for IPv4). */
  readonly syncMaxlen?: number;
  /** Multicast group (default `224.0.0.81`). */
  readonly mcastGroup?: string;
  /** UDP port (default 8848). */
  readonly mcastPort?: number;
  /** Multicast TTL 1..255 (default 1). */
  readonly mcastTtl?: number;
}

/** A running connection-sync daemon, defaults resolved (`ipvsadm -L --daemon`). */
export interface SyncDaemonInfo {
  /** Master or backup. */
  readonly state: SyncState;
  /** Multicast interface. */
  readonly mcastInterface: string;
  /** Sync id. */
  readonly syncId: number;
  /** Largest message in bytes. */
  readonly syncMaxlen: number;
  /** Multicast group. */
  readonly mcastGroup: string;
  /** UDP port. */
  readonly mcastPort: number;
  /** Multicast TTL. */
  readonly mcastTtl: number;
}
