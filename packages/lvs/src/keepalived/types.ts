/**
 * The typed form of a keepalived.conf, as {@link parseKeepalivedConfig} produces it.
 *
 * Names are the camelCase forms of keepalived's keywords. Durations are milliseconds, addresses are
 * strings as written (IPv4 dotted quad or IPv6 text, without brackets). Every default keepalived
 * applies, and every value inherited from an enclosing block (virtual server → real server →
 * checker), is already filled in, so consumers read values, not rules.
 * @module
 */
import type { SchedulerFlag, SchedulerName } from '../types.js';

/** Where a configuration element came from: file path and 1-based line number. */
export interface KeepalivedSource {
  /** The file (after `include` expansion, the included file). */
  readonly file: string;
  /** 1-based line number in that file. */
  readonly line: number;
}

/**
 * A command a keepalived keyword runs (`script`, `misc_path`, `notify*`, `quorum_up/down`), with
 * keepalived's script quoting applied.
 */
export interface ScriptCommand {
  /** The command line as written, after quote removal (what keepalived logs). */
  readonly command: string;
  /** The command split into argv at unquoted spaces; `argv[0]` is the program. */
  readonly argv: readonly string[];
  /** True when the command starts with `<`: keepalived runs it through `/bin/sh -c`. */
  readonly shell: boolean;
  /** The user to run as (`... USER [GROUP]` after the command); default: global `script_user`. */
  readonly user?: string;
  /** The group to run as. */
  readonly group?: string;
}

/** `global_defs { ... }`. Only the keywords lvs acts on are typed; see {@link KeepalivedConfig.unsupported}. */
export interface GlobalDefs {
  /** `router_id`; default: the host name. */
  readonly routerId: string;
  /** `notification_email { ... }`, one address per entry; default none. */
  readonly notificationEmail: readonly string[];
  /** `notification_email_from`; default `keepalived@<hostname>`. */
  readonly notificationEmailFrom: string;
  /** `smtp_server IP|NAME [PORT]`; default none. */
  readonly smtpServer?: SmtpServer;
  /** `smtp_helo_name`; default: the host name. */
  readonly smtpHeloName: string;
  /** `smtp_connect_timeout` in ms; default 30000. */
  readonly smtpConnectTimeout: number;
  /** `smtp_alert`; default false. */
  readonly smtpAlert: boolean;
  /** `smtp_alert_vrrp`: default of `smtp_alert` for VRRP instances and sync groups; unset = the global `smtp_alert`. */
  readonly smtpAlertVrrp?: boolean;
  /** `smtp_alert_checker`: default of `smtp_alert` for virtual and real servers; unset = the global `smtp_alert`. */
  readonly smtpAlertChecker?: boolean;
  /** `no_email_faults`: no mail when an instance enters or leaves FAULT; default false. */
  readonly noEmailFaults: boolean;
  /** `no_checker_emails`: no mail for checker results (only for real-server state changes); default false. */
  readonly noCheckerEmails: boolean;
  /** `vrrp_mcast_group4`; default `224.0.0.18`. */
  readonly vrrpMcastGroup4: string;
  /** `vrrp_mcast_group6`; default `ff02::12`. */
  readonly vrrpMcastGroup6: string;
  /** `default_interface`; default `eth0`. */
  readonly defaultInterface: string;
  /** `vrrp_version` 2|3; default 2. */
  readonly vrrpVersion: 2 | 3;
  /** `vrrp_strict`; default false. */
  readonly vrrpStrict: boolean;
  /** `vrrp_garp_master_delay` in ms; default 5000 (0 = no second burst). */
  readonly vrrpGarpMasterDelay: number;
  /** `vrrp_garp_master_repeat`; default 5. */
  readonly vrrpGarpMasterRepeat: number;
  /** `vrrp_garp_master_refresh` in ms; default 0 (off). */
  readonly vrrpGarpMasterRefresh: number;
  /** `vrrp_garp_master_refresh_repeat`; default 1. */
  readonly vrrpGarpMasterRefreshRepeat: number;
  /** `vrrp_garp_lower_prio_delay` in ms; default = `vrrpGarpMasterDelay`. */
  readonly vrrpGarpLowerPrioDelay: number;
  /** `vrrp_garp_lower_prio_repeat`; default = `vrrpGarpMasterRepeat`. */
  readonly vrrpGarpLowerPrioRepeat: number;
  /** `vrrp_garp_interval` in ms between GARPs; default 0. */
  readonly vrrpGarpInterval: number;
  /** `vrrp_gna_interval` in ms between unsolicited NAs; default 0. */
  readonly vrrpGnaInterval: number;
  /** `vrrp_lower_prio_no_advert`; default false (true with `vrrp_strict`). */
  readonly vrrpLowerPrioNoAdvert: boolean;
  /** `vrrp_higher_prio_send_advert`; default false. */
  readonly vrrpHigherPrioSendAdvert: boolean;
  /** `vrrp_down_timer_adverts` 1..100; default 3. */
  readonly vrrpDownTimerAdverts: number;
  /** `vrrp_check_unicast_src`; default false. */
  readonly vrrpCheckUnicastSrc: boolean;
  /** `vrrp_skip_check_adv_addr`; default false. */
  readonly vrrpSkipCheckAdvAddr: boolean;
  /** `vrrp_startup_delay` in ms; default 0. */
  readonly vrrpStartupDelay: number;
  /** `dynamic_interfaces`; default false (missing interfaces are config errors). */
  readonly dynamicInterfaces: boolean;
  /** `lvs_sync_daemon IF [[inst] VRRP_INSTANCE] [id N] [maxlen N] [port N] [ttl N] [group IP]`. */
  readonly lvsSyncDaemon?: LvsSyncDaemon;
  /** `lvs_timeouts [tcp S] [tcpfin S] [udp S]` in seconds (`ipvsadm --set`); unset fields keep the current value. */
  readonly lvsTimeouts?: LvsTimeouts;
  /** `lvs_flush`: flush IPVS at startup; default false. */
  readonly lvsFlush: boolean;
  /** `lvs_flush_on_stop [VS]` (old `lvs_flush_onstop`): `'all'`, `'vs'` or `'none'` (default). */
  readonly lvsFlushOnStop: 'none' | 'all' | 'vs';
  /** `script_user USER [GROUP]`; default: `keepalived_script` if it exists, else root. */
  readonly scriptUser?: ScriptUser;
  /** `enable_script_security`; default false. */
  readonly enableScriptSecurity: boolean;
}

/** `smtp_server IP|NAME [PORT]`. */
export interface SmtpServer {
  /** Address or host name. */
  readonly host: string;
  /** Port; default 25. */
  readonly port: number;
}

/** `lvs_timeouts [tcp S] [tcpfin S] [udp S]`, seconds; unset fields keep the current value. */
export interface LvsTimeouts {
  /** `tcp S`. */
  readonly tcp?: number;
  /** `tcpfin S`. */
  readonly tcpfin?: number;
  /** `udp S`. */
  readonly udp?: number;
}

/** `script_user USER [GROUP]`. */
export interface ScriptUser {
  /** User name. */
  readonly user: string;
  /** Group name; default: the user's group. */
  readonly group?: string;
}

/** `authentication { auth_type PASS|AH; auth_pass STR }` (VRRPv2 only). */
export interface KeepalivedAuthentication {
  /** `auth_type`. */
  readonly authType: 'PASS' | 'AH';
  /** `auth_pass`: at most 8 bytes (longer ones are truncated with an error). */
  readonly authPass: string;
}

/** `lvs_sync_daemon` in `global_defs`. */
export interface LvsSyncDaemon {
  /** The multicast interface. */
  readonly interface: string;
  /** `[inst] NAME`: the VRRP instance whose state selects master/backup; none = both always run. */
  readonly vrrpInstance?: string;
  /** `id N` 0..255; default 0. */
  readonly syncId: number;
  /** `maxlen N`. */
  readonly maxlen?: number;
  /** `port N`. */
  readonly port?: number;
  /** `ttl N`. */
  readonly ttl?: number;
  /** `group IP`. */
  readonly group?: string;
}

/** `vrrp_script NAME { ... }`. */
export interface VrrpScript {
  /** The block name. */
  readonly name: string;
  /** `script "cmd args"` (required). */
  readonly script: ScriptCommand;
  /** `interval N` in ms (integer seconds in 2.2.7); default 1000. */
  readonly interval: number;
  /** `timeout N` in ms; default = interval. */
  readonly timeout: number;
  /** `weight W` -253..253; default 0 (failure means FAULT). */
  readonly weight: number;
  /** `weight W reverse`; default false. */
  readonly weightReverse: boolean;
  /** `rise N`; default 1. */
  readonly rise: number;
  /** `fall N`; default 1. */
  readonly fall: number;
  /** `init_fail`: start in the failed state; default false. */
  readonly initFail: boolean;
  /** Where the block starts. */
  readonly source: KeepalivedSource;
}

/** `track_interface` entry: `IF [weight W [reverse]]`. */
export interface TrackInterface {
  /** Interface name. */
  readonly interface: string;
  /** Weight; 0 (default) means "down ⇒ FAULT". */
  readonly weight: number;
  /** `reverse`; default false. */
  readonly reverse: boolean;
}

/** `track_script` entry: `NAME [weight W [reverse|noreverse]]`. */
export interface TrackScript {
  /** The vrrp_script name. */
  readonly name: string;
  /** Weight override; default: the script's `weight`. */
  readonly weight: number;
  /** `reverse`; default: the script's. */
  readonly reverse: boolean;
}

/** Notification scripts shared by instances and sync groups. */
export interface VrrpNotify {
  /** `notify_master`. */
  readonly notifyMaster?: ScriptCommand;
  /** `notify_backup`. */
  readonly notifyBackup?: ScriptCommand;
  /** `notify_fault`. */
  readonly notifyFault?: ScriptCommand;
  /** `notify_stop`. */
  readonly notifyStop?: ScriptCommand;
  /** `notify`: run with `INSTANCE|GROUP name STATE priority` appended. */
  readonly notify?: ScriptCommand;
}

/** `vrrp_sync_group NAME { group { ... } ... }`. */
export interface VrrpSyncGroup extends VrrpNotify {
  /** The block name. */
  readonly name: string;
  /** `group { VI_1 VI_2 }`: member instance names (one per line). */
  readonly group: readonly string[];
  /** `track_interface { ... }`. */
  readonly trackInterfaces: readonly TrackInterface[];
  /** `track_script { ... }`. */
  readonly trackScripts: readonly TrackScript[];
  /** `smtp_alert`; default: global `smtp_alert`. */
  readonly smtpAlert: boolean;
  /** `notify_priority_changes`; default false. */
  readonly notifyPriorityChanges: boolean;
  /** `sync_group_tracking_weight`; default false. */
  readonly syncGroupTrackingWeight: boolean;
  /** Where the block starts. */
  readonly source: KeepalivedSource;
}

/** A `virtual_ipaddress` entry: `IP[/MASK] [brd IP] [dev IF] [scope S] [label L] [peer IP] ...`. */
export interface VirtualIpAddress {
  /** The address, without mask. */
  readonly address: string;
  /** Address family. */
  readonly family: 'inet' | 'inet6';
  /** Prefix length; default 32 (128 for IPv6). */
  readonly prefixLength: number;
  /** `dev IF`; default: the instance `interface`. */
  readonly dev: string;
  /** `brd IP|+|-` (alias `broadcast`). */
  readonly broadcast?: string;
  /** `scope site|link|host|nowhere|global`. */
  readonly scope?: string;
  /** `label L`. */
  readonly label?: string;
  /** `peer IP`. */
  readonly peer?: string;
  /** `no_track`. */
  readonly noTrack: boolean;
}

/** `unicast_peer` entry: `IP [min_ttl N] [max_ttl N]`. */
export interface UnicastPeer {
  /** Peer address. */
  readonly address: string;
  /** `min_ttl N`; default 0. */
  readonly minTtl: number;
  /** `max_ttl N`; default 255. */
  readonly maxTtl: number;
}

/** `vrrp_instance NAME { ... }`. */
export interface VrrpInstance extends VrrpNotify {
  /** The block name. */
  readonly name: string;
  /** `state MASTER|BACKUP`; default MASTER when priority is 255, else BACKUP. */
  readonly state: 'MASTER' | 'BACKUP';
  /** `interface IF` (required). */
  readonly interface: string;
  /** `virtual_router_id` 1..255 (required). */
  readonly virtualRouterId: number;
  /** `priority` 1..255; default 100 (255 with `state MASTER` and no priority). */
  readonly priority: number;
  /** `advert_int` in ms; default 1000 (v2: whole seconds, v3: 10 ms steps). */
  readonly advertInt: number;
  /** `version 2|3`; default: global `vrrp_version`, 3 for IPv6. */
  readonly version: 2 | 3;
  /** `nopreempt`; default false. */
  readonly nopreempt: boolean;
  /** `preempt_delay` in ms; default 0. */
  readonly preemptDelay: number;
  /** `authentication { auth_type PASS|AH; auth_pass STR }` (v2 only). */
  readonly authentication?: KeepalivedAuthentication;
  /** `virtual_ipaddress { ... }`. */
  readonly virtualIpaddress: readonly VirtualIpAddress[];
  /** `virtual_ipaddress_excluded { ... }`. */
  readonly virtualIpaddressExcluded: readonly VirtualIpAddress[];
  /** `virtual_routes { ... }`: each entry's tokens, `ip route` syntax (not acted on by lvs). */
  readonly virtualRoutes: readonly (readonly string[])[];
  /** `virtual_rules { ... }`: each entry's tokens, `ip rule` syntax (not acted on by lvs). */
  readonly virtualRules: readonly (readonly string[])[];
  /** `track_interface { ... }`. */
  readonly trackInterfaces: readonly TrackInterface[];
  /** `track_script { ... }`. */
  readonly trackScripts: readonly TrackScript[];
  /** `dont_track_primary`; default false. */
  readonly dontTrackPrimary: boolean;
  /** `mcast_src_ip`; default: the interface's primary address. */
  readonly mcastSrcIp?: string;
  /** `unicast_src_ip`; default: the interface's primary address. */
  readonly unicastSrcIp?: string;
  /** `unicast_peer { ... }`; empty = multicast. */
  readonly unicastPeers: readonly UnicastPeer[];
  /** `unicast_ttl`; default 255. */
  readonly unicastTtl: number;
  /** `garp_master_delay` in ms; default: global `vrrp_garp_master_delay`. */
  readonly garpMasterDelay: number;
  /** `garp_master_repeat`; default: global `vrrp_garp_master_repeat`. */
  readonly garpMasterRepeat: number;
  /** `garp_master_refresh` in ms; default: global. */
  readonly garpMasterRefresh: number;
  /** `garp_master_refresh_repeat`; default: global. */
  readonly garpMasterRefreshRepeat: number;
  /** `garp_lower_prio_delay` in ms; default: global. */
  readonly garpLowerPrioDelay: number;
  /** `garp_lower_prio_repeat`; default: global. */
  readonly garpLowerPrioRepeat: number;
  /** `lower_prio_no_advert`; default: global `vrrp_lower_prio_no_advert`. */
  readonly lowerPrioNoAdvert: boolean;
  /** `higher_prio_send_advert`; default: global. */
  readonly higherPrioSendAdvert: boolean;
  /** `down_timer_adverts`; default: global `vrrp_down_timer_adverts`. */
  readonly downTimerAdverts: number;
  /** `smtp_alert`; default: global `smtp_alert`. */
  readonly smtpAlert: boolean;
  /** `notify_priority_changes`; default false. */
  readonly notifyPriorityChanges: boolean;
  /** `use_vmac [NAME]`: the VMAC interface name, when set. */
  readonly useVmac?: string;
  /** `accept` / `no_accept`; default accept (strict: accept only for priority 255). */
  readonly accept: boolean;
  /** `strict_mode`; default: global `vrrp_strict`. */
  readonly strictMode: boolean;
  /** `skip_check_adv_addr`; default: global `vrrp_skip_check_adv_addr`. */
  readonly skipCheckAdvAddr: boolean;
  /** The sync group this instance belongs to, if any (from `vrrp_sync_group`). */
  readonly syncGroup?: string;
  /** Where the block starts. */
  readonly source: KeepalivedSource;
}

/** An entry of `virtual_server_group NAME { ... }`. */
export type VirtualServerGroupEntry =
  | {
      /** `IP [PORT]`, `IP-LAST [PORT]`, `IP-IP [PORT]` or `IP/PREFIX [PORT]`. */
      readonly kind: 'range';
      /** First address of the range. */
      readonly first: string;
      /** Last address of the range (= first for a single address). */
      readonly last: string;
      /** Port; 0 when omitted. */
      readonly port: number;
    }
  | {
      /** `fwmark N [inet|inet6]`. */
      readonly kind: 'fwmark';
      /** The mark. */
      readonly fwmark: number;
      /** Family; default: the family of the group's addresses, else inet. */
      readonly family: 'inet' | 'inet6';
    };

/** `virtual_server_group NAME { ... }`. */
export interface VirtualServerGroup {
  /** The block name. */
  readonly name: string;
  /** The entries, one per line. */
  readonly entries: readonly VirtualServerGroupEntry[];
  /** Where the block starts. */
  readonly source: KeepalivedSource;
}

/** `lvs_method` (alias `lb_kind`): `NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]`. */
export interface LvsMethod {
  /** Forwarding method; default NAT. */
  readonly kind: 'NAT' | 'DR' | 'TUN';
  /** Tunnel type for TUN; default `ipip`. */
  readonly tunnelType?: 'ipip' | 'gue' | 'gre';
  /** GUE port. */
  readonly tunnelPort?: number;
  /** Tunnel checksum option. */
  readonly tunnelChecksum?: 'nocsum' | 'csum' | 'remcsum';
}

/** Timing and retry settings every checker ends up with (after inheritance and defaults). */
export interface CheckerTiming {
  /** `delay_loop` in ms: time between checks; default: the RS's, then the VS's (60000). */
  readonly delayLoop: number;
  /** `connect_timeout` in ms; default: RS, then VS, then 5000. */
  readonly connectTimeout: number;
  /** `retry` (old `nb_get_retry`): failures tolerated before DOWN; default 1 (MISC_CHECK 0, DNS_CHECK 3). */
  readonly retry: number;
  /** `delay_before_retry` in ms; default 1000 (HTTP_GET/SSL_GET 3000, DNS_CHECK = delay_loop). */
  readonly delayBeforeRetry: number;
  /** `warmup` in ms: the first check runs after 1 s + random(0..warmup); default = delay_loop. */
  readonly warmup: number;
  /** `alpha`: start in the failed state; default: RS, then VS (false). */
  readonly alpha: boolean;
  /** `log_all_failures`; default: global `checker_log_all_failures` (false). */
  readonly logAllFailures: boolean;
  /** Where the checker block starts. */
  readonly source: KeepalivedSource;
}

/** Connection options of socket-based checkers. */
export interface CheckerConnection {
  /** `connect_ip`; default: the real server's address. */
  readonly connectIp: string;
  /** `connect_port`; default: the real server's port. */
  readonly connectPort: number;
  /** `bindto IP`: source address. */
  readonly bindto?: string;
  /** `bind_port`: source port. */
  readonly bindPort?: number;
  /** `bind_if IF`. */
  readonly bindIf?: string;
  /** `fwmark N` on the check's packets. */
  readonly fwmark?: number;
}

/** `TCP_CHECK { ... }`: up when a TCP connect completes within connect_timeout. */
export interface TcpCheck extends CheckerTiming, CheckerConnection {
  /** Discriminant. */
  readonly type: 'TCP_CHECK';
}

/** `url { ... }` of HTTP_GET / SSL_GET. */
export interface HttpUrl {
  /** `path` (required). */
  readonly path: string;
  /** `digest` (32 lower-case hex characters, MD5 of the body). */
  readonly digest?: string;
  /** `status_code` ranges `[low, high]`; default `[[200, 299]]`. */
  readonly statusCodes: readonly (readonly [number, number])[];
  /** `virtualhost`: Host header for this URL; default: the checker's. */
  readonly virtualhost?: string;
  /** `regex`: the body must match. */
  readonly regex?: string;
  /** `regex_no_match`: the body must not match `regex`. */
  readonly regexNoMatch: boolean;
}

/** `HTTP_GET { ... }` / `SSL_GET { ... }`. */
export interface HttpCheck extends CheckerTiming, CheckerConnection {
  /** Discriminant: `SSL_GET` uses TLS. */
  readonly type: 'HTTP_GET' | 'SSL_GET';
  /** `url { ... }` blocks, at least one. */
  readonly urls: readonly HttpUrl[];
  /** `http_protocol 1.0|1.0C|1.1`; default `1.0`. */
  readonly httpProtocol: '1.0' | '1.0C' | '1.1';
  /** `virtualhost`: Host header; default: RS, then VS `virtualhost`, else `IP:port`. */
  readonly virtualhost?: string;
  /** `fast_recovery`; default false. */
  readonly fastRecovery: boolean;
  /** `enable_sni` (SSL_GET); default false. */
  readonly enableSni: boolean;
}

/** `MISC_CHECK { ... }`: runs a program; exit 0 = up. */
export interface MiscCheck extends CheckerTiming {
  /** Discriminant. */
  readonly type: 'MISC_CHECK';
  /** `misc_path "cmd args"` (required). */
  readonly miscPath: ScriptCommand;
  /** `misc_timeout` in ms; default = delay_loop. */
  readonly miscTimeout: number;
  /** `misc_dynamic`: exit 2..255 sets weight exit−2; default false. */
  readonly miscDynamic: boolean;
}

/** `SMTP_CHECK { ... }`. Deprecated `host { ... }` sub-blocks become separate checkers. */
export interface SmtpCheck extends CheckerTiming, CheckerConnection {
  /** Discriminant. */
  readonly type: 'SMTP_CHECK';
  /** `helo_name`; default `smtpchecker.keepalived.org`. */
  readonly heloName: string;
}

/** `DNS_CHECK { ... }`: a UDP query with RD set; a reply with the same id and RCODE 0 is up. */
export interface DnsCheck extends CheckerTiming, CheckerConnection {
  /** Discriminant. */
  readonly type: 'DNS_CHECK';
  /** `type`; default `SOA`. */
  readonly dnsType: 'A' | 'NS' | 'CNAME' | 'SOA' | 'MX' | 'TXT' | 'AAAA';
  /** `name`; default `.`. */
  readonly name: string;
}

/** `UDP_CHECK { ... }`. */
export interface UdpCheck extends CheckerTiming, CheckerConnection {
  /** Discriminant. */
  readonly type: 'UDP_CHECK';
  /** `payload HEX` as lower-case hex; default none (empty datagram). */
  readonly payload?: string;
  /** `require_reply [HEX]`: `true` = any reply, a hex string = the reply must start with it. */
  readonly requireReply?: true | string;
  /** `min_reply_length`; default 0. */
  readonly minReplyLength: number;
  /** `max_reply_length`; default none. */
  readonly maxReplyLength?: number;
}

/** `PING_CHECK { ... }`: ICMP echo. */
export interface PingCheck extends CheckerTiming, CheckerConnection {
  /** Discriminant. */
  readonly type: 'PING_CHECK';
}

/** `FILE_CHECK { ... }`: weight from a `track_file` (not implemented by lvs; reported). */
export interface FileCheck extends CheckerTiming {
  /** Discriminant. */
  readonly type: 'FILE_CHECK';
  /** `track_file NAME`. */
  readonly trackFile: string;
  /** `weight W [reverse]`; default 0. */
  readonly weight: number;
  /** `reverse`. */
  readonly reverse: boolean;
}

/** `BFD_CHECK { ... }`: follows a BFD session (not implemented by lvs; reported). */
export interface BfdCheck extends CheckerTiming {
  /** Discriminant. */
  readonly type: 'BFD_CHECK';
  /** `name BFD_INSTANCE`. */
  readonly name: string;
}

/** A health checker of a real server (discriminated on `type`). */
export type Checker = TcpCheck | HttpCheck | MiscCheck | SmtpCheck | DnsCheck | UdpCheck | PingCheck | FileCheck | BfdCheck;

/** `real_server IP [PORT] { ... }`. */
export interface RealServer {
  /** The address. */
  readonly address: string;
  /** The port after keepalived's fix-ups (NAT: VS port if none; DR/TUN: the VS port; fwmark DR/TUN: 0). */
  readonly port: number;
  /** `weight`; default: the VS `weight`, else 1. */
  readonly weight: number;
  /** `lvs_method`; default: the VS's. */
  readonly lvsMethod: LvsMethod;
  /** `inhibit_on_failure`: weight 0 instead of removal when down; default: the VS's. */
  readonly inhibitOnFailure: boolean;
  /** `uthreshold`; default 0. */
  readonly uthreshold: number;
  /** `lthreshold`; default 0. */
  readonly lthreshold: number;
  /** `alpha`; default: the VS's. */
  readonly alpha: boolean;
  /** `notify_up`. */
  readonly notifyUp?: ScriptCommand;
  /** `notify_down`. */
  readonly notifyDown?: ScriptCommand;
  /** `smtp_alert`; default true (keepalived's backward-compatible RS default). */
  readonly smtpAlert: boolean;
  /** `virtualhost`; default: the VS's. */
  readonly virtualhost?: string;
  /** Checker blocks; an RS with none is always up. */
  readonly checkers: readonly Checker[];
  /** Where the block starts. */
  readonly source: KeepalivedSource;
}

/** `sorry_server IP [PORT]` with its `sorry_server_*` options. */
export interface SorryServer {
  /** The address. */
  readonly address: string;
  /** The port after the same fix-ups as real servers. */
  readonly port: number;
  /** `sorry_server_lvs_method`; default: the VS `lvs_method`. */
  readonly lvsMethod: LvsMethod;
  /** `sorry_server_inhibit`: always present, weight 0 while unused; default false. */
  readonly inhibit: boolean;
}

/** How a `virtual_server` names its service(s). */
export type VirtualServerKey =
  | {
      /** `virtual_server IP PORT`. */
      readonly kind: 'address';
      /** The virtual address. */
      readonly address: string;
      /** The port (0 for an all-ports persistent service). */
      readonly port: number;
    }
  | {
      /** `virtual_server fwmark N`. */
      readonly kind: 'fwmark';
      /** The mark. */
      readonly fwmark: number;
    }
  | {
      /** `virtual_server group NAME`. */
      readonly kind: 'group';
      /** The virtual_server_group name. */
      readonly group: string;
    };

/** `virtual_server ... { ... }`. */
export interface VirtualServer {
  /** The service(s) the block names. */
  readonly key: VirtualServerKey;
  /** `protocol TCP|UDP|SCTP`; default UDP (with keepalived's error "no protocol set"). */
  readonly protocol: 'TCP' | 'UDP' | 'SCTP';
  /** `ip_family inet|inet6`; default: the address's. */
  readonly ipFamily: 'inet' | 'inet6';
  /** `delay_loop` in ms; default 60000. */
  readonly delayLoop: number;
  /** `lvs_sched` (alias `lb_algo`); default `wlc`. */
  readonly lvsSched: SchedulerName;
  /** `lvs_method` (alias `lb_kind`); default NAT. */
  readonly lvsMethod: LvsMethod;
  /** `persistence_timeout [N]` in seconds; none = not persistent (360 when the keyword has no value). */
  readonly persistenceTimeout?: number;
  /** `persistence_granularity`: IPv4 netmask text or IPv6 prefix length. */
  readonly persistenceGranularity?: string | number;
  /** `persistence_engine` (e.g. `sip`). */
  readonly persistenceEngine?: string;
  /** `ops` one-packet scheduling (UDP only); default false. */
  readonly ops: boolean;
  /** Scheduler flags from `flag-1..3`, `sh-port`, `sh-fallback`, `mh-port`, `mh-fallback`. */
  readonly schedFlags: readonly SchedulerFlag[];
  /** `ha_suspend`; default false. */
  readonly haSuspend: boolean;
  /** `virtualhost`: default Host for HTTP checks. */
  readonly virtualhost?: string;
  /** `alpha`: real servers start DOWN; default false. */
  readonly alpha: boolean;
  /** `omega`: run down scripts on shutdown; default false. */
  readonly omega: boolean;
  /** `quorum` ≥1; default 1. */
  readonly quorum: number;
  /** `hysteresis`; default 0. */
  readonly hysteresis: number;
  /** `quorum_up`. */
  readonly quorumUp?: ScriptCommand;
  /** `quorum_down`. */
  readonly quorumDown?: ScriptCommand;
  /** `sorry_server`. */
  readonly sorryServer?: SorryServer;
  /** `inhibit_on_failure`: default for the real servers; default false. */
  readonly inhibitOnFailure: boolean;
  /** `smtp_alert`; default: global. */
  readonly smtpAlert: boolean;
  /** The real servers, after fix-ups and duplicate removal. */
  readonly realServers: readonly RealServer[];
  /** Where the block starts. */
  readonly source: KeepalivedSource;
}

/** `SSL { password; ca; certificate; key }`: the TLS context for SSL_GET. */
export interface SslContext {
  /** `password`. */
  readonly password?: string;
  /** `ca` file. */
  readonly ca?: string;
  /** `certificate` file. */
  readonly certificate?: string;
  /** `key` file. */
  readonly key?: string;
}

/** A keyword keepalived knows that lvs parses but does not act on. */
export interface UnsupportedKeyword {
  /** The keyword, with its enclosing blocks, e.g. `vrrp_instance/use_vmac`. */
  readonly keyword: string;
  /** Its arguments as written. */
  readonly args: readonly string[];
  /** Where it is. */
  readonly source: KeepalivedSource;
}

/** A whole keepalived.conf. */
export interface KeepalivedConfig {
  /** `global_defs`, with defaults when absent. */
  readonly globalDefs: GlobalDefs;
  /** `vrrp_script` blocks that are valid (keepalived drops invalid ones). */
  readonly vrrpScripts: readonly VrrpScript[];
  /** `vrrp_sync_group` blocks that survive validation. */
  readonly vrrpSyncGroups: readonly VrrpSyncGroup[];
  /** `vrrp_instance` blocks. */
  readonly vrrpInstances: readonly VrrpInstance[];
  /** `virtual_server_group` blocks with at least one entry. */
  readonly virtualServerGroups: readonly VirtualServerGroup[];
  /** `virtual_server` blocks that keepalived would configure (those with real servers). */
  readonly virtualServers: readonly VirtualServer[];
  /** The top-level `SSL { ... }` block, if any. */
  readonly ssl?: SslContext;
  /** Keywords keepalived accepts but lvs does not act on, each also reported as a warning. */
  readonly unsupported: readonly UnsupportedKeyword[];
}

/** How serious a diagnostic is, with the `keepalived -t` exit code it implies. */
export type KeepalivedSeverity =
  /** Information keepalived logs without failing the test (exit 0). */
  | 'warning'
  /** A configuration error: exit 5. */
  | 'error'
  /** A script security problem: exit 6. */
  | 'security'
  /** A fatal problem such as an unreadable file: exit 4. */
  | 'fatal';

/** One message about the configuration. */
export interface KeepalivedDiagnostic {
  /** Severity. */
  readonly severity: KeepalivedSeverity;
  /** keepalived's message text, without the location prefix. */
  readonly message: string;
  /** Where, when the message concerns a line. */
  readonly source?: KeepalivedSource;
  /** The message as `keepalived -t` prints it: `(<file>: Line <n>) <text>`, or the text alone. */
  readonly text: string;
}
