/**
 * keepalived.conf → {@link KeepalivedConfig}: the keyword tables for every block, the value checks
 * and the defaults and fix-ups keepalived 2.2.7 applies, with its diagnostic texts.
 * @module
 */
import { isIP } from 'node:net';
import { splitCommand } from '../command.js';
import type { SchedulerFlag, SchedulerName } from '../types.js';
import { BlockParser, type Keyword, type KeywordCall, type KeywordTable } from './grammar.js';
import { diagnostic, type LogicalLine } from './lexer.js';
import type {
  Checker,
  GlobalDefs,
  HttpUrl,
  KeepalivedConfig,
  KeepalivedDiagnostic,
  KeepalivedSource,
  LvsMethod,
  RealServer,
  ScriptCommand,
  TrackInterface,
  TrackScript,
  UnicastPeer,
  UnsupportedKeyword,
  VirtualIpAddress,
  VirtualServer,
  VirtualServerGroup,
  VirtualServerGroupEntry,
  VirtualServerKey,
  VrrpInstance,
  VrrpScript,
  VrrpSyncGroup,
} from './types.js';

/** Environment facts the parser needs (all optional: without them, the checks are skipped). */
export interface ParseEnvironment {
  /** The host name (default router_id, smtp_helo_name). */
  readonly hostname: string;
  /** Whether a network interface exists; undefined skips the check. */
  readonly interfaceExists?: (name: string) => boolean;
  /** Whether a script's program can be run; undefined skips the check. */
  readonly scriptRunnable?: (argv0: string) => boolean;
}

type Mutable<T> = { -readonly [K in keyof T]?: T[K] | undefined };
type Bag = Record<string, unknown>;

const SCHEDULERS = new Set(['rr', 'wrr', 'lc', 'wlc', 'lblc', 'sh', 'mh', 'dh', 'fo', 'ovf', 'lblcr', 'sed', 'nq', 'twos']);
const SCHED_FLAGS: Record<string, SchedulerFlag> = {
  'flag-1': 'flag-1',
  'flag-2': 'flag-2',
  'flag-3': 'flag-3',
  'sh-port': 'sh-port',
  'sh-fallback': 'sh-fallback',
  'mh-port': 'mh-port',
  'mh-fallback': 'mh-fallback',
};

/** global_defs keywords keepalived 2.2.7 knows and lvs does not act on. */
const GLOBAL_UNSUPPORTED = [
  'checker_log_all_failures rs_init_notifies',
  'vrrp_garp_extra_if vrrp_vmac_garp_intvl vrrp_iptables vrrp_ipsets nftables nftables_priority nftables_counters',
  'nftables_ifindex nftables_ipvs nftables_ipvs_table notify_fifo notify_fifo_script vrrp_notify_fifo',
  'vrrp_notify_fifo_script lvs_notify_fifo lvs_notify_fifo_script log_unknown_vrids vmac_prefix vmac_addr_prefix',
  'vrrp_priority checker_priority bfd_priority vrrp_rt_priority checker_rt_priority bfd_rt_priority vrrp_no_swap',
  'checker_no_swap bfd_no_swap vrrp_cpu_affinity checker_cpu_affinity bfd_cpu_affinity vrrp_rlimit_rttime',
  'checker_rlimit_rttime bfd_rlimit_rttime vrrp_rlimit_rtime checker_rlimit_rtime bfd_rlimit_rtime',
  'max_auto_priority min_auto_priority_delay snmp_socket enable_snmp_vrrp enable_snmp_keepalived enable_snmp_checker',
  'enable_snmp_rfc enable_snmp_rfcv2 enable_snmp_rfcv3 enable_traps enable_dbus dbus_service_name process_names',
  'process_name vrrp_process_name checker_process_name lvs_process_name bfd_process_name startup_script',
  'startup_script_timeout shutdown_script shutdown_script_timeout umask random_seed reload_check_config',
  'reload_time_file reload_repeat reload_file include_check config_save_dir tmp_config_directory data_use_instance',
  'vrrp_netlink_cmd_rcv_bufs vrrp_netlink_cmd_rcv_bufs_force vrrp_netlink_monitor_rcv_bufs',
  'vrrp_netlink_monitor_rcv_bufs_force lvs_netlink_cmd_rcv_bufs lvs_netlink_cmd_rcv_bufs_force',
  'lvs_netlink_monitor_rcv_bufs lvs_netlink_monitor_rcv_bufs_force process_monitor_rcv_bufs',
  'process_monitor_rcv_bufs_force rs_init_notifies no_checker_emails vrrp_rx_bufs_policy vrrp_rx_bufs_multiplier',
  'fifo_write_vrrp_states_on_reload vrrp_startup_delay_timer instance net_namespace net_namespace_ipvs',
  'namespace_with_ipsets linkbeat_use_polling vrrp_track_process_queue_size',
]
  .join(' ')
  .split(' ');

/** vrrp_instance keywords lvs parses but does not act on. */
const INSTANCE_UNSUPPORTED = [
  'use_vmac use_vmac_addr vmac_xmit_base use_ipvlan native_ipv6 vrf debug kernel_rx_buf_size promote_secondaries',
  'linkbeat_use_polling garp_extra_if vmac_garp_intvl track_src_ip old_unicast_checksum mcast_dst_ip',
  'unicast_fault_no_peer check_unicast_src notify_deleted notify_master_rx_lower_pri',
]
  .join(' ')
  .split(' ');

function bool(value: string | undefined): boolean | undefined {
  if (value === undefined) return true;
  if (['true', 'on', 'yes'].includes(value)) return true;
  if (['false', 'off', 'no'].includes(value)) return false;
  return undefined;
}

function familyOf(address: string): 'inet' | 'inet6' {
  return isIP(address) === 6 ? 'inet6' : 'inet';
}

function ipv4ToInt(a: string): number {
  return a.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join('.');
}

/** Parses a configuration from its lexed lines. */
export function parseLines(
  lines: readonly LogicalLine[],
  diagnostics: KeepalivedDiagnostic[],
  env: ParseEnvironment,
): KeepalivedConfig {
  const p = new BlockParser(lines, diagnostics);
  const err = (message: string, source?: KeepalivedSource): void => p.error(message, source);
  const unsupported: UnsupportedKeyword[] = [];
  const warnUnsupported = (path: string, call: KeywordCall): void => {
    unsupported.push({ keyword: path, args: call.args, source: call.source });
    diagnostics.push(diagnostic('warning', `'${path}' is not supported by lvs - ignoring`, call.source));
  };
  let netNamespace = false;

  // --- value readers with keepalived's messages --------------------------------------------
  const missing = (kw: string, call: KeywordCall, index = 0): boolean => {
    if (call.args.length > index) return false;
    err(`*** Configuration line starting \`${kw}\` is missing a parameter after keyword \`${index === 0 ? kw : call.args[index - 1]}\` at word position ${index + 2}`, call.source);
    return true;
  };
  const readInt = (text: string, min: number, max: number, source: KeepalivedSource, unsigned = true): number | undefined => {
    const t = text.trim();
    if (unsigned && t.startsWith('-')) return err(`negative number '${text}'`, source), undefined;
    if (!/^[-+]?\d+$/.test(t)) return err(`invalid number '${text}'`, source), undefined;
    const v = Number(t);
    if (v < min || v > max) return err(`number '${text}' outside range [${min}, ${max}]`, source), undefined;
    return v;
  };
  const readTimer = (text: string, source: KeepalivedSource, minS = 0, maxS = 4294967): number | undefined => {
    if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(text)) return err(`invalid number '${text}'`, source), undefined;
    const v = Number(text);
    if (v < minS || v > maxS) return err(`number '${text}' outside range [${minS}, ${maxS}]`, source), undefined;
    return Math.round(v * 1000);
  };
  const script = (kw: string, call: KeywordCall): ScriptCommand | undefined => {
    if (missing(kw, call)) return undefined;
    const command = call.args[0] ?? '';
    let argv: string[];
    try {
      argv = splitCommand(command);
    } catch (e) {
      return err((e as Error).message, call.source), undefined;
    }
    const base: ScriptCommand = { command, argv, shell: command.startsWith('<') };
    const user = call.args[1];
    const group = call.args[2];
    return { ...base, ...(user !== undefined ? { user } : {}), ...(group !== undefined ? { group } : {}) };
  };

  // Table builders: set a field of a draft from a keyword.
  const set = (bag: () => Bag, field: string, conv: (call: KeywordCall, kw: string) => unknown): Keyword => ({
    handler: (call) => {
      const kw = field;
      const v = conv(call, kw);
      if (v !== undefined) bag()[field] = v;
    },
  });
  const uint = (bag: () => Bag, field: string, kw: string, min: number, max: number): Keyword =>
    set(bag, field, (c) => (missing(kw, c) ? undefined : readInt(c.args[0] ?? '', min, max, c.source)));
  const sint = (bag: () => Bag, field: string, kw: string, min: number, max: number): Keyword =>
    set(bag, field, (c) => (missing(kw, c) ? undefined : readInt(c.args[0] ?? '', min, max, c.source, false)));
  const timer = (bag: () => Bag, field: string, kw: string, min = 0, max = 4294967): Keyword =>
    set(bag, field, (c) => (missing(kw, c) ? undefined : readTimer(c.args[0] ?? '', c.source, min, max)));
  const flag = (bag: () => Bag, field: string, kw: string): Keyword =>
    set(bag, field, (c) => {
      const v = bool(c.args[0]);
      if (v === undefined) err(`Invalid value '${c.args[0]}' for ${kw}`, c.source);
      return v;
    });
  const str = (bag: () => Bag, field: string, kw: string): Keyword =>
    set(bag, field, (c) => (missing(kw, c) ? undefined : c.args[0]));
  const scriptKw = (bag: () => Bag, field: string, kw: string): Keyword => ({
    script: true,
    handler: (c) => {
      const s = script(kw, c);
      if (s) bag()[field] = s;
    },
  });
  const unsup = (path: string, extra: Partial<Keyword> = {}): Keyword => ({
    handler: (c) => warnUnsupported(path, c),
    ...extra,
  });
  const unsupTable = (prefix: string, names: readonly string[]): Record<string, Keyword> =>
    Object.fromEntries(names.map((n) => [n, unsup(`${prefix}/${n}`)]));
  const unsupValueBlock = (path: string): Keyword => ({
    entry: (tokens, source) => warnUnsupported(path, { args: tokens, source }),
  });

  // --- global_defs ---------------------------------------------------------------------------
  const g: Bag = { notificationEmail: [] as string[] };
  const gb = (): Bag => g;
  const globalTable: KeywordTable = {
    ...unsupTable('global_defs', GLOBAL_UNSUPPORTED),
    router_id: str(gb, 'routerId', 'router_id'),
    notification_email: { entry: (t) => (g['notificationEmail'] as string[]).push(t.join(' ')) },
    notification_email_from: str(gb, 'notificationEmailFrom', 'notification_email_from'),
    smtp_server: set(gb, 'smtpServer', (c) => {
      if (missing('smtp_server', c)) return undefined;
      const port = c.args[1] === undefined ? 25 : readInt(c.args[1], 1, 65535, c.source);
      return port === undefined ? undefined : { host: c.args[0] ?? '', port };
    }),
    smtp_helo_name: str(gb, 'smtpHeloName', 'smtp_helo_name'),
    smtp_connect_timeout: timer(gb, 'smtpConnectTimeout', 'smtp_connect_timeout'),
    smtp_alert: flag(gb, 'smtpAlert', 'smtp_alert'),
    smtp_alert_vrrp: flag(gb, 'smtpAlertVrrp', 'smtp_alert_vrrp'),
    smtp_alert_checker: flag(gb, 'smtpAlertChecker', 'smtp_alert_checker'),
    no_email_faults: flag(gb, 'noEmailFaults', 'no_email_faults'),
    no_checker_emails: flag(gb, 'noCheckerEmails', 'no_checker_emails'),
    vrrp_mcast_group4: str(gb, 'vrrpMcastGroup4', 'vrrp_mcast_group4'),
    vrrp_mcast_group6: str(gb, 'vrrpMcastGroup6', 'vrrp_mcast_group6'),
    default_interface: str(gb, 'defaultInterface', 'default_interface'),
    vrrp_version: uint(gb, 'vrrpVersion', 'vrrp_version', 2, 3),
    vrrp_strict: flag(gb, 'vrrpStrict', 'vrrp_strict'),
    vrrp_garp_master_delay: timer(gb, 'vrrpGarpMasterDelay', 'vrrp_garp_master_delay'),
    vrrp_garp_master_repeat: uint(gb, 'vrrpGarpMasterRepeat', 'vrrp_garp_master_repeat', 0, 1000),
    vrrp_garp_master_refresh: timer(gb, 'vrrpGarpMasterRefresh', 'vrrp_garp_master_refresh'),
    vrrp_garp_master_refresh_repeat: uint(gb, 'vrrpGarpMasterRefreshRepeat', 'vrrp_garp_master_refresh_repeat', 0, 1000),
    vrrp_garp_lower_prio_delay: timer(gb, 'vrrpGarpLowerPrioDelay', 'vrrp_garp_lower_prio_delay'),
    vrrp_garp_lower_prio_repeat: uint(gb, 'vrrpGarpLowerPrioRepeat', 'vrrp_garp_lower_prio_repeat', 0, 1000),
    vrrp_garp_interval: timer(gb, 'vrrpGarpInterval', 'vrrp_garp_interval'),
    vrrp_gna_interval: timer(gb, 'vrrpGnaInterval', 'vrrp_gna_interval'),
    vrrp_min_garp: {
      handler: () => {
        g['vrrpGarpMasterRepeat'] = 1;
        g['vrrpGarpMasterDelay'] = 0;
      },
    },
    vrrp_lower_prio_no_advert: flag(gb, 'vrrpLowerPrioNoAdvert', 'vrrp_lower_prio_no_advert'),
    vrrp_higher_prio_send_advert: flag(gb, 'vrrpHigherPrioSendAdvert', 'vrrp_higher_prio_send_advert'),
    vrrp_down_timer_adverts: uint(gb, 'vrrpDownTimerAdverts', 'vrrp_down_timer_adverts', 1, 100),
    vrrp_check_unicast_src: flag(gb, 'vrrpCheckUnicastSrc', 'vrrp_check_unicast_src'),
    vrrp_skip_check_adv_addr: flag(gb, 'vrrpSkipCheckAdvAddr', 'vrrp_skip_check_adv_addr'),
    vrrp_startup_delay: timer(gb, 'vrrpStartupDelay', 'vrrp_startup_delay'),
    dynamic_interfaces: set(gb, 'dynamicInterfaces', () => true),
    lvs_sync_daemon: set(gb, 'lvsSyncDaemon', (c) => {
      if (missing('lvs_sync_daemon', c)) return undefined;
      const d: Bag = { interface: c.args[0], syncId: 0 };
      const a = c.args.slice(1);
      for (let i = 0; i < a.length; i++) {
        const k = a[i] ?? '';
        const v = a[i + 1];
        const num = (f: string, max: number): void => {
          if (v === undefined) err(`lvs_sync_daemon ${k} is missing a value`, c.source);
          else {
            const n = readInt(v, 0, max, c.source);
            if (n !== undefined) d[f] = n;
          }
          i++;
        };
        if (k === 'inst') {
          d['vrrpInstance'] = v;
          i++;
        } else if (k === 'id') num('syncId', 255);
        else if (k === 'maxlen') num('maxlen', 65535 - 20 - 8);
        else if (k === 'port') num('port', 65535);
        else if (k === 'ttl') num('ttl', 255);
        else if (k === 'group') {
          d['group'] = v;
          i++;
        } else if (i === 0) d['vrrpInstance'] = k;
        else err(`Unknown option ${k} specified for lvs_sync_daemon`, c.source);
      }
      return d;
    }),
    lvs_timeouts: set(gb, 'lvsTimeouts', (c) => {
      const t: Bag = {};
      for (let i = 0; i < c.args.length; i += 2) {
        const k = c.args[i] ?? '';
        const v = c.args[i + 1];
        if (!['tcp', 'tcpfin', 'udp'].includes(k) || v === undefined) {
          err(`Unknown option ${k} specified for lvs_timeouts`, c.source);
          break;
        }
        const n = readInt(v, 1, 86400 * 31, c.source);
        if (n !== undefined) t[k] = n;
      }
      return t;
    }),
    lvs_flush: set(gb, 'lvsFlush', () => true),
    lvs_flush_on_stop: set(gb, 'lvsFlushOnStop', (c) => (c.args[0] === 'VS' ? 'vs' : 'all')),
    lvs_flush_onstop: set(gb, 'lvsFlushOnStop', (c) => (c.args[0] === 'VS' ? 'vs' : 'all')),
    script_user: set(gb, 'scriptUser', (c) =>
      missing('script_user', c) ? undefined : { user: c.args[0], ...(c.args[1] ? { group: c.args[1] } : {}) },
    ),
    enable_script_security: set(gb, 'enableScriptSecurity', () => true),
  };

  // --- vrrp_script ----------------------------------------------------------------------------
  const scripts: VrrpScript[] = [];
  let vs_: Bag = {};
  const scriptTable: KeywordTable = {
    script: scriptKw(() => vs_, 'script', 'script'),
    interval: uint(() => vs_, 'interval', 'interval', 0, 4294967),
    timeout: uint(() => vs_, 'timeout', 'timeout', 0, 4294967),
    weight: {
      handler: (c) => {
        if (missing('weight', c)) return;
        const w = readInt(c.args[0] ?? '', -253, 253, c.source, false);
        if (w !== undefined) vs_['weight'] = w;
        vs_['weightReverse'] = c.args[1] === 'reverse';
      },
    },
    rise: uint(() => vs_, 'rise', 'rise', 1, 2147483647),
    fall: uint(() => vs_, 'fall', 'fall', 1, 2147483647),
    user: unsup('vrrp_script/user'),
    init_fail: set(() => vs_, 'initFail', () => true),
  };

  // --- tracking value blocks ------------------------------------------------------------------
  const trackInterface = (list: TrackInterface[], owner: string) => (t: string[], source: KeepalivedSource) => {
    const name = t[0] ?? '';
    let weight = 0;
    if (t[1] === 'weight') {
      const w = t[2] === undefined ? undefined : readInt(t[2], -254, 254, source, false);
      if (w !== undefined) weight = w;
    } else if (t[1] !== undefined) err(`(${owner}) track_interface ${name} unknown option ${t[1]}`, source);
    if (env.interfaceExists && !netNamespace && !env.interfaceExists(name))
      err(`(${owner}) WARNING - interface ${name} for track_interface doesn't exist`, source);
    list.push({ interface: name, weight, reverse: t[3] === 'reverse' });
  };
  const trackScript = (list: TrackScript[], owner: string) => (t: string[], source: KeepalivedSource) => {
    const name = t[0] ?? '';
    const s = scripts.find((x) => x.name === name);
    if (!s) {
      err(`(${owner}) track script ${name} not found, ignoring...`, source);
      return;
    }
    let weight = s.weight;
    let reverse = s.weightReverse;
    if (t[1] === 'weight' && t[2] !== undefined) {
      const w = readInt(t[2], -253, 253, source, false);
      if (w !== undefined) weight = w;
      reverse = t[3] === 'reverse' ? true : t[3] === 'noreverse' ? false : reverse;
    }
    list.push({ name, weight, reverse });
  };

  // --- vrrp_sync_group --------------------------------------------------------------------------
  const groups: (Mutable<VrrpSyncGroup> & { members: string[]; src: KeepalivedSource })[] = [];
  const curGroup = (): Bag => groups[groups.length - 1] as unknown as Bag;
  const groupTable = (): KeywordTable => {
    const gr = groups[groups.length - 1];
    const name = gr?.name ?? '';
    const ti: TrackInterface[] = [];
    const ts: TrackScript[] = [];
    if (gr) {
      gr.trackInterfaces = ti;
      gr.trackScripts = ts;
    }
    return {
      group: { entry: (t) => gr?.members.push(t[0] ?? '') },
      track_interface: { entry: trackInterface(ti, name) },
      track_script: { entry: trackScript(ts, name) },
      track_file: unsupValueBlock('vrrp_sync_group/track_file'),
      track_process: unsupValueBlock('vrrp_sync_group/track_process'),
      track_bfd: unsupValueBlock('vrrp_sync_group/track_bfd'),
      notify_master: scriptKw(curGroup, 'notifyMaster', 'notify_master'),
      notify_backup: scriptKw(curGroup, 'notifyBackup', 'notify_backup'),
      notify_fault: scriptKw(curGroup, 'notifyFault', 'notify_fault'),
      notify_stop: scriptKw(curGroup, 'notifyStop', 'notify_stop'),
      notify: scriptKw(curGroup, 'notify', 'notify'),
      smtp_alert: flag(curGroup, 'smtpAlert', 'smtp_alert'),
      notify_priority_changes: flag(curGroup, 'notifyPriorityChanges', 'notify_priority_changes'),
      sync_group_tracking_weight: set(curGroup, 'syncGroupTrackingWeight', () => true),
      global_tracking: {
        handler: (c) => err(`(${name}) global_tracking is deprecated. Use track_interface/script/file/bfd/process on the sync group`, c.source),
      },
    };
  };

  // --- vrrp_instance ----------------------------------------------------------------------------
  type InstDraft = Mutable<VrrpInstance> & { src: KeepalivedSource; stateSet?: boolean; prioSet?: boolean };
  const instances: InstDraft[] = [];
  const inst = (): Bag => instances[instances.length - 1] as unknown as Bag;
  const vip = (list: VirtualIpAddress[], owner: () => InstDraft | undefined) => (t: string[], source: KeepalivedSource) => {
    const [addr = '', mask] = (t[0] ?? '').split('/');
    const fam = isIP(addr);
    if (!fam) {
      err(`Invalid address ${t[0]} for ip address - ignoring`, source);
      return;
    }
    const v: Mutable<VirtualIpAddress> = {
      address: addr,
      family: fam === 6 ? 'inet6' : 'inet',
      prefixLength: mask === undefined ? (fam === 6 ? 128 : 32) : Number(mask),
      dev: owner()?.interface ?? '',
      noTrack: false,
    };
    for (let i = 1; i < t.length; i++) {
      const k = t[i] ?? '';
      const val = t[i + 1];
      if (['brd', 'broadcast'].includes(k)) (v.broadcast = val), i++;
      else if (k === 'dev') (v.dev = val), i++;
      else if (k === 'scope') (v.scope = val), i++;
      else if (k === 'label') (v.label = val), i++;
      else if (k === 'peer') (v.peer = val), i++;
      else if (k === 'no_track') v.noTrack = true;
      else if (['home', '-nodad', 'nodad', 'mngtmpaddr', 'noprefixroute', 'autojoin', 'use_vmac'].includes(k)) continue;
      else if (['preferred_lft', 'track_group'].includes(k)) i++;
      else {
        err(`Unknown configuration entry '${k}' for ip address - ignoring`, source);
        break;
      }
    }
    list.push(v as VirtualIpAddress);
  };
  const route = (list: string[][], owner: () => InstDraft | undefined) => (t: string[], source: KeepalivedSource) => {
    list.push(t);
    let dest: string | undefined;
    let dev = false;
    for (let i = 0; i < t.length; i++) {
      const k = t[i] ?? '';
      if (k === 'or') err('"or" for routes is deprecated. Please use "nexthop"', source);
      if (k === 'gw') err('"gw" for routes is deprecated. Please use "via"', source);
      if (k === 'dev' || k === 'oif') dev = true;
      if (k === 'no_track') dev = true;
      if (['src', 'via', 'gw', 'or', 'dev', 'oif', 'table', 'metric', 'priority', 'preference', 'scope', 'proto', 'protocol', 'realms', 'mtu', 'advmss', 'from', 'tos', 'type'].includes(k)) {
        i++;
        continue;
      }
      if (['blackhole', 'unreachable', 'prohibit', 'throw', 'to', 'inet6'].includes(k)) continue;
      if (dest === undefined) dest = k;
    }
    if (!dev && !owner()?.useVmac && dest !== undefined) {
      const d = dest === 'default' ? '0.0.0.0/0' : dest.includes('/') ? dest : `${dest}/${isIP(dest) === 6 ? 128 : 32}`;
      err(`Warning - cannot track route ${d} with no interface specified, not tracking`, source);
    }
  };
  const instanceTable = (): KeywordTable => {
    const d = instances[instances.length - 1];
    const name = d?.name ?? '';
    const lists = {
      vip: [] as VirtualIpAddress[],
      vipx: [] as VirtualIpAddress[],
      routes: [] as string[][],
      rules: [] as string[][],
      ti: [] as TrackInterface[],
      ts: [] as TrackScript[],
      peers: [] as UnicastPeer[],
    };
    if (d) {
      d.virtualIpaddress = lists.vip;
      d.virtualIpaddressExcluded = lists.vipx;
      d.virtualRoutes = lists.routes;
      d.virtualRules = lists.rules;
      d.trackInterfaces = lists.ti;
      d.trackScripts = lists.ts;
      d.unicastPeers = lists.peers;
    }
    const cur = (): InstDraft | undefined => d;
    return {
      ...unsupTable('vrrp_instance', INSTANCE_UNSUPPORTED),
      use_vmac: {
        handler: (c) => {
          if (d) d.useVmac = c.args[0] ?? `vrrp.${d.virtualRouterId ?? ''}`;
          warnUnsupported('vrrp_instance/use_vmac', c);
        },
      },
      state: {
        handler: (c) => {
          if (!d || missing('state', c)) return;
          const s = c.args[0];
          if (s === 'MASTER') d.state = 'MASTER';
          else if (s === 'BACKUP') {
            if (d.state === 'MASTER') err(`(${name}) state previously set as MASTER - ignoring BACKUP`, c.source);
            else d.state = 'BACKUP';
          } else err(`(${name}) unknown state '${s}', defaulting to BACKUP`, c.source);
          d.stateSet = true;
        },
      },
      interface: {
        handler: (c) => {
          if (!d || missing('interface', c)) return;
          const ifname = c.args[0] ?? '';
          if (ifname === 'lo') err(`(${name}) cannot use a loopback interface (${ifname}) for vrrp - ignoring`, c.source);
          d.interface = ifname;
          if (env.interfaceExists && !netNamespace && !env.interfaceExists(ifname)) {
            err(`WARNING - interface ${ifname} for vrrp_instance ${name} doesn't exist`, c.source);
            nonExistentInterface = true;
          }
        },
      },
      virtual_router_id: uint(inst, 'virtualRouterId', 'virtual_router_id', 1, 255),
      priority: {
        handler: (c) => {
          if (!d || missing('priority', c)) return;
          const v = readInt(c.args[0] ?? '', 1, 255, c.source);
          if (v === undefined) err(`(${name}) Priority not valid! must be between 1 & 255. Reconfigure !`, c.source);
          else d.priority = v;
          d.prioSet = true;
        },
      },
      advert_int: timer(inst, 'advertInt', 'advert_int', 0.01, 255),
      version: uint(inst, 'version', 'version', 2, 3),
      nopreempt: set(inst, 'nopreempt', () => true),
      preempt: { handler: () => undefined },
      preempt_delay: timer(inst, 'preemptDelay', 'preempt_delay', 0, 1000),
      authentication: {
        block: () => ({
          auth_type: {
            handler: (c) => {
              if (!d || missing('auth_type', c)) return;
              const t = c.args[0];
              if (t === 'PASS' || t === 'AH') d.authentication = { authType: t, authPass: d.authentication?.authPass ?? '' };
              else err(`(${name}) unknown authentication type '${t}'`, c.source);
            },
          },
          auth_pass: {
            handler: (c) => {
              if (!d || missing('auth_pass', c)) return;
              let pass = c.args[0] ?? '';
              if (Buffer.byteLength(pass) > 8) {
                err(`Truncating auth_pass to 8 characters`, c.source);
                pass = Buffer.from(pass).subarray(0, 8).toString();
              }
              d.authentication = { authType: d.authentication?.authType ?? 'PASS', authPass: pass };
            },
          },
        }),
      },
      virtual_ipaddress: { entry: vip(lists.vip, cur) },
      virtual_ipaddress_excluded: { entry: vip(lists.vipx, cur) },
      virtual_routes: { entry: route(lists.routes, cur) },
      virtual_rules: { entry: (t) => lists.rules.push(t) },
      track_interface: { entry: trackInterface(lists.ti, name) },
      track_script: { entry: trackScript(lists.ts, name) },
      track_file: unsupValueBlock('vrrp_instance/track_file'),
      track_process: unsupValueBlock('vrrp_instance/track_process'),
      track_bfd: unsupValueBlock('vrrp_instance/track_bfd'),
      dont_track_primary: set(inst, 'dontTrackPrimary', () => true),
      mcast_src_ip: str(inst, 'mcastSrcIp', 'mcast_src_ip'),
      unicast_src_ip: str(inst, 'unicastSrcIp', 'unicast_src_ip'),
      unicast_peer: {
        entry: (t, source) => {
          const peer: Mutable<UnicastPeer> = { address: t[0] ?? '', minTtl: 0, maxTtl: 255 };
          if (!isIP(peer.address ?? '')) return err(`(${name}) Invalid unicast_peer address ${t[0]} - ignoring`, source);
          for (let i = 1; i + 1 < t.length; i += 2) {
            const n = readInt(t[i + 1] ?? '', 0, 255, source);
            if (n === undefined) continue;
            if (t[i] === 'min_ttl') peer.minTtl = n;
            else if (t[i] === 'max_ttl') peer.maxTtl = n;
            else err(`(${name}) unknown unicast_peer option ${t[i]}`, source);
          }
          lists.peers.push(peer as UnicastPeer);
        },
      },
      unicast_ttl: uint(inst, 'unicastTtl', 'unicast_ttl', 1, 255),
      garp_master_delay: timer(inst, 'garpMasterDelay', 'garp_master_delay'),
      garp_master_repeat: uint(inst, 'garpMasterRepeat', 'garp_master_repeat', 0, 1000),
      garp_master_refresh: timer(inst, 'garpMasterRefresh', 'garp_master_refresh'),
      garp_master_refresh_repeat: uint(inst, 'garpMasterRefreshRepeat', 'garp_master_refresh_repeat', 0, 1000),
      garp_lower_prio_delay: timer(inst, 'garpLowerPrioDelay', 'garp_lower_prio_delay'),
      garp_lower_prio_repeat: uint(inst, 'garpLowerPrioRepeat', 'garp_lower_prio_repeat', 0, 1000),
      lower_prio_no_advert: flag(inst, 'lowerPrioNoAdvert', 'lower_prio_no_advert'),
      higher_prio_send_advert: flag(inst, 'higherPrioSendAdvert', 'higher_prio_send_advert'),
      down_timer_adverts: uint(inst, 'downTimerAdverts', 'down_timer_adverts', 1, 100),
      notify_master: scriptKw(inst, 'notifyMaster', 'notify_master'),
      notify_backup: scriptKw(inst, 'notifyBackup', 'notify_backup'),
      notify_fault: scriptKw(inst, 'notifyFault', 'notify_fault'),
      notify_stop: scriptKw(inst, 'notifyStop', 'notify_stop'),
      notify: scriptKw(inst, 'notify', 'notify'),
      smtp_alert: flag(inst, 'smtpAlert', 'smtp_alert'),
      notify_priority_changes: flag(inst, 'notifyPriorityChanges', 'notify_priority_changes'),
      accept: set(inst, 'accept', () => true),
      no_accept: set(inst, 'accept', () => false),
      strict_mode: flag(inst, 'strictMode', 'strict_mode'),
      skip_check_adv_addr: flag(inst, 'skipCheckAdvAddr', 'skip_check_adv_addr'),
      lvs_sync_daemon_interface: {
        handler: (c) => {
          err(`(${name}) Specifying lvs_sync_daemon_interface against a vrrp is deprecated.`, c.source);
          err('        Please use global lvs_sync_daemon', c.source);
        },
      },
    };
  };
  let nonExistentInterface = false;

  // --- virtual_server_group -------------------------------------------------------------------
  const vsGroups: (VirtualServerGroup & { entries: VirtualServerGroupEntry[] })[] = [];
  const vsgEntry = (t: string[], source: KeepalivedSource): void => {
    const gr = vsGroups[vsGroups.length - 1];
    if (!gr) return;
    if (t[0] === 'fwmark') {
      const m = t[1] === undefined ? undefined : readInt(t[1], 1, 4294967295, source);
      if (m !== undefined) gr.entries.push({ kind: 'fwmark', fwmark: m, family: t[2] === 'inet6' ? 'inet6' : 'inet' });
      return;
    }
    const spec = t[0] ?? '';
    const port = t[1] === undefined ? 0 : readInt(t[1], 0, 65535, source);
    if (port === undefined) return;
    const bad = (): void => err(`Invalid virtual server group IP address/range ${spec} - skipping`, source);
    const cidr = /^([0-9.]+)\/(\d+)$/.exec(spec);
    const range = /^([0-9a-fA-F.:]+)-([0-9a-fA-F.:]+)$/.exec(spec);
    if (cidr && isIP(cidr[1] ?? '') === 4) {
      const bits = Number(cidr[2]);
      if (bits > 32) return bad();
      const base = ipv4ToInt(cidr[1] ?? '');
      const size = 2 ** (32 - bits);
      const first = base - (base % size);
      gr.entries.push({ kind: 'range', first: intToIpv4(first), last: intToIpv4(first + size - 1), port });
    } else if (range && isIP(range[1] ?? '') === 4) {
      const first = range[1] ?? '';
      const lastText = range[2] ?? '';
      const last = isIP(lastText) === 4 ? lastText : /^\d+$/.test(lastText) ? first.replace(/\d+$/, lastText) : '';
      if (!last || isIP(last) !== 4 || ipv4ToInt(last) < ipv4ToInt(first)) return bad();
      gr.entries.push({ kind: 'range', first, last, port });
    } else if (isIP(spec)) gr.entries.push({ kind: 'range', first: spec, last: spec, port });
    else bad();
  };

  // --- virtual_server / real_server / checkers -------------------------------------------------
  type VsDraft = Bag & { realServers: RsDraft[]; key: VirtualServerKey; src: KeepalivedSource };
  type RsDraft = Bag & { checkers: Bag[]; address: string; port?: number; src: KeepalivedSource };
  const servers: VsDraft[] = [];
  const curVs = (): VsDraft => servers[servers.length - 1] as VsDraft;
  const curRs = (): RsDraft => curVs().realServers[curVs().realServers.length - 1] as RsDraft;
  const curCk = (): Bag => curRs().checkers[curRs().checkers.length - 1] as Bag;
  const method = (bag: () => Bag, field: string) =>
    set(bag, field, (c) => {
      const k = c.args[0];
      if (k !== 'NAT' && k !== 'DR' && k !== 'TUN') {
        err(`PARSER : unknown [${k}] routing method.`, c.source);
        return undefined;
      }
      const m: Mutable<LvsMethod> = { kind: k };
      for (let i = 1; i < c.args.length; i++) {
        const a = c.args[i];
        if (a === 'type') {
          const t = c.args[++i];
          if (t === 'ipip' || t === 'gue' || t === 'gre') m.tunnelType = t;
        } else if (a === 'port') m.tunnelPort = readInt(c.args[++i] ?? '', 1, 65535, c.source);
        else if (a === 'nocsum' || a === 'csum' || a === 'remcsum') m.tunnelChecksum = a;
      }
      return m;
    });
  const commonTiming = (bag: () => Bag): KeywordTable => ({
    delay_loop: timer(bag, 'delayLoop', 'delay_loop', 0.000001),
    connect_timeout: timer(bag, 'connectTimeout', 'connect_timeout', 0.000001),
    retry: uint(bag, 'retry', 'retry', 0, 2147483647),
    delay_before_retry: timer(bag, 'delayBeforeRetry', 'delay_before_retry'),
    warmup: timer(bag, 'warmup', 'warmup'),
    alpha: flag(bag, 'alpha', 'alpha'),
    log_all_failures: flag(bag, 'logAllFailures', 'log_all_failures'),
  });
  const connection = (bag: () => Bag): KeywordTable => ({
    connect_ip: str(bag, 'connectIp', 'connect_ip'),
    connect_port: uint(bag, 'connectPort', 'connect_port', 0, 65535),
    bindto: str(bag, 'bindto', 'bindto'),
    bind_port: uint(bag, 'bindPort', 'bind_port', 0, 65535),
    bind_if: str(bag, 'bindIf', 'bind_if'),
    fwmark: uint(bag, 'fwmark', 'fwmark', 0, 4294967295),
  });
  const checker = (type: string, table: () => KeywordTable): Keyword => ({
    handler: (c) => curRs().checkers.push({ type, src: c.source }),
    block: () => ({ ...commonTiming(curCk), ...table() }),
  });
  const httpTable = (type: string) => (): KeywordTable => {
    const ck = curCk();
    const urls: Bag[] = [];
    ck['urls'] = urls;
    const url = (): Bag => urls[urls.length - 1] as Bag;
    return {
      ...connection(curCk),
      url: {
        handler: (c) => urls.push({ src: c.source }),
        block: () => ({
          path: str(url, 'path', 'path'),
          digest: set(url, 'digest', (c) => {
            if (missing('digest', c)) return undefined;
            if (url()['digest'] !== undefined) err('Digest already specified', c.source);
            const h = (c.args[0] ?? '').toLowerCase();
            if (!/^[0-9a-f]{32}$/.test(h)) return err(`digest '${c.args[0]}' is not 32 hex characters`, c.source), undefined;
            return h;
          }),
          status_code: set(url, 'statusCodes', (c) => {
            const codes: [number, number][] = [];
            for (const a of c.args) {
              const m = /^(\d+)(?:-(\d+))?$/.exec(a);
              const lo = Number(m?.[1]);
              const hi = m?.[2] === undefined ? lo : Number(m[2]);
              if (!m || lo < 100 || hi > 599 || hi < lo) err(`Invalid HTTP_GET status code range '${a}'`, c.source);
              else codes.push([lo, hi]);
            }
            return codes;
          }),
          virtualhost: str(url, 'virtualhost', 'virtualhost'),
          regex: str(url, 'regex', 'regex'),
          regex_no_match: set(url, 'regexNoMatch', () => true),
          regex_options: unsup(`${type}/url/regex_options`),
          regex_stack: unsup(`${type}/url/regex_stack`),
          regex_min_offset: unsup(`${type}/url/regex_min_offset`),
          regex_max_offset: unsup(`${type}/url/regex_max_offset`),
        }),
        close: (source) => {
          if (url()['path'] === undefined) {
            err(`${type} url has no path - removing`, source);
            urls.pop();
          }
        },
      },
      nb_get_retry: {
        handler: (c) => {
          err("nb_get_retry is deprecated - please use 'retry'", c.source);
          const n = c.args[0] === undefined ? undefined : readInt(c.args[0], 0, 2147483647, c.source);
          if (n !== undefined) ck['retry'] = n;
        },
      },
      http_protocol: set(curCk, 'httpProtocol', (c) => {
        const v = c.args[0];
        if (v === '1.0' || v === '1.1') return v;
        if (v === '1.0C' || v === '1.0c') return '1.0C';
        err(`Unknown HTTP protocol '${v}'`, c.source);
        return undefined;
      }),
      virtualhost: str(curCk, 'virtualhost', 'virtualhost'),
      fast_recovery: flag(curCk, 'fastRecovery', 'fast_recovery'),
      enable_sni: flag(curCk, 'enableSni', 'enable_sni'),
    };
  };
  const checkerTables: Record<string, Keyword> = {
    TCP_CHECK: checker('TCP_CHECK', () => connection(curCk)),
    HTTP_GET: checker('HTTP_GET', httpTable('HTTP_GET')),
    SSL_GET: checker('SSL_GET', httpTable('SSL_GET')),
    MISC_CHECK: checker('MISC_CHECK', () => ({
      misc_path: scriptKw(curCk, 'miscPath', 'misc_path'),
      misc_timeout: set(curCk, 'miscTimeout', (c) => {
        const n = missing('misc_timeout', c) ? undefined : readInt(c.args[0] ?? '', 0, 4294967, c.source);
        return n === undefined ? undefined : n * 1000;
      }),
      misc_dynamic: set(curCk, 'miscDynamic', () => true),
      user: unsup('MISC_CHECK/user'),
    })),
    SMTP_CHECK: checker('SMTP_CHECK', () => {
      const ck = curCk();
      return {
        ...connection(curCk),
        helo_name: str(curCk, 'heloName', 'helo_name'),
        host: {
          handler: (c) => {
            const hosts = (ck['hosts'] ??= []) as Bag[];
            hosts.push({ src: c.source });
          },
          block: () => connection(() => ((ck['hosts'] as Bag[]).at(-1) ?? {}) as Bag),
        },
      };
    }),
    DNS_CHECK: checker('DNS_CHECK', () => ({
      ...connection(curCk),
      type: set(curCk, 'dnsType', (c) => {
        const t = (c.args[0] ?? '').toUpperCase();
        if (['A', 'NS', 'CNAME', 'SOA', 'MX', 'TXT', 'AAAA'].includes(t)) return t;
        err(`DNS_CHECK: unknown type '${c.args[0]}'`, c.source);
        return undefined;
      }),
      name: str(curCk, 'name', 'name'),
    })),
    UDP_CHECK: checker('UDP_CHECK', () => ({
      ...connection(curCk),
      payload: set(curCk, 'payload', (c) => (c.args[0] ?? '').toLowerCase()),
      require_reply: set(curCk, 'requireReply', (c) => (c.args[0] === undefined ? true : c.args[0].toLowerCase())),
      min_reply_length: uint(curCk, 'minReplyLength', 'min_reply_length', 0, 65535),
      max_reply_length: uint(curCk, 'maxReplyLength', 'max_reply_length', 0, 65535),
    })),
    PING_CHECK: checker('PING_CHECK', () => connection(curCk)),
    FILE_CHECK: checker('FILE_CHECK', () => ({
      track_file: str(curCk, 'trackFile', 'track_file'),
      weight: {
        handler: (c) => {
          const w = readInt(c.args[0] ?? '', -254, 254, c.source, false);
          if (w !== undefined) curCk()['weight'] = w;
          curCk()['reverse'] = c.args[1] === 'reverse';
        },
      },
      dynamic: unsup('FILE_CHECK/dynamic'),
    })),
    BFD_CHECK: checker('BFD_CHECK', () => ({ name: str(curCk, 'name', 'name') })),
  };
  const realServerTable = (): KeywordTable => ({
    ...commonTiming(curRs),
    ...checkerTables,
    weight: sint(curRs, 'weight', 'weight', 0, 2147483647),
    lvs_method: method(curRs, 'lvsMethod'),
    lb_kind: method(curRs, 'lvsMethod'),
    inhibit_on_failure: flag(curRs, 'inhibitOnFailure', 'inhibit_on_failure'),
    notify_up: scriptKw(curRs, 'notifyUp', 'notify_up'),
    notify_down: scriptKw(curRs, 'notifyDown', 'notify_down'),
    uthreshold: uint(curRs, 'uthreshold', 'uthreshold', 0, 2147483647),
    lthreshold: uint(curRs, 'lthreshold', 'lthreshold', 0, 2147483647),
    smtp_alert: flag(curRs, 'smtpAlert', 'smtp_alert'),
    virtualhost: str(curRs, 'virtualhost', 'virtualhost'),
    snmp_name: unsup('real_server/snmp_name'),
  });
  const virtualServerTable = (): KeywordTable => ({
    delay_loop: timer(curVs, 'delayLoop', 'delay_loop', 0.000001),
    connect_timeout: timer(curVs, 'connectTimeout', 'connect_timeout', 0.000001),
    retry: uint(curVs, 'retry', 'retry', 0, 2147483647),
    delay_before_retry: timer(curVs, 'delayBeforeRetry', 'delay_before_retry'),
    warmup: timer(curVs, 'warmup', 'warmup'),
    lvs_sched: set(curVs, 'lvsSched', schedConv),
    lb_algo: set(curVs, 'lvsSched', schedConv),
    lvs_method: method(curVs, 'lvsMethod'),
    lb_kind: method(curVs, 'lvsMethod'),
    protocol: set(curVs, 'protocol', (c) => {
      const v = (c.args[0] ?? '').toUpperCase();
      if (v === 'TCP' || v === 'UDP' || v === 'SCTP') return v;
      err(`Unknown protocol ${c.args[0]} - ignoring`, c.source);
      return undefined;
    }),
    persistence_timeout: set(curVs, 'persistenceTimeout', (c) => {
      if (c.args[0] === undefined) return 360;
      const n = readInt(c.args[0], 1, 2678400, c.source);
      if (n === undefined) err('persistence_timeout invalid', c.source);
      return n;
    }),
    persistence_granularity: set(curVs, 'persistenceGranularity', (c) => {
      const v = c.args[0] ?? '';
      if (isIP(v) === 4 || /^\d+$/.test(v)) return /^\d+$/.test(v) ? Number(v) : v;
      err(`Invalid persistence_granularity specified - ${v}`, c.source);
      return undefined;
    }),
    persistence_engine: str(curVs, 'persistenceEngine', 'persistence_engine'),
    ops: set(curVs, 'ops', () => true),
    ...Object.fromEntries(
      Object.keys(SCHED_FLAGS).map((f) => [f, { handler: () => ((curVs()['schedFlags'] ??= []) as SchedulerFlag[]).push(SCHED_FLAGS[f] as SchedulerFlag) }]),
    ),
    hashed: unsup('virtual_server/hashed'),
    ha_suspend: set(curVs, 'haSuspend', () => true),
    virtualhost: str(curVs, 'virtualhost', 'virtualhost'),
    alpha: set(curVs, 'alpha', () => true),
    omega: set(curVs, 'omega', () => true),
    quorum: uint(curVs, 'quorum', 'quorum', 1, 2147483647),
    hysteresis: uint(curVs, 'hysteresis', 'hysteresis', 0, 2147483646),
    quorum_up: scriptKw(curVs, 'quorumUp', 'quorum_up'),
    quorum_down: scriptKw(curVs, 'quorumDown', 'quorum_down'),
    sorry_server: set(curVs, 'sorry', (c) => {
      if (missing('sorry_server', c)) return undefined;
      if (!isIP(c.args[0] ?? '')) return err(`Invalid sorry_server ip ${c.args[0]}`, c.source), undefined;
      const port = c.args[1] === undefined ? undefined : readInt(c.args[1], 0, 65535, c.source);
      return { address: c.args[0], port };
    }),
    sorry_server_inhibit: set(curVs, 'sorryInhibit', () => true),
    sorry_server_lvs_method: method(curVs, 'sorryMethod'),
    inhibit_on_failure: flag(curVs, 'inhibitOnFailure', 'inhibit_on_failure'),
    weight: sint(curVs, 'weight', 'weight', 0, 2147483647),
    smtp_alert: flag(curVs, 'smtpAlert', 'smtp_alert'),
    snmp_name: unsup('virtual_server/snmp_name'),
    ip_family: set(curVs, 'ipFamily', (c) => (c.args[0] === 'inet6' ? 'inet6' : 'inet')),
    real_server: {
      handler: (c) => {
        const addr = c.args[0] ?? '';
        if (!isIP(addr)) err(`Invalid real server ip address/port ${c.args.join(' ')} - skipping`, c.source);
        const port = c.args[1] === undefined ? undefined : readInt(c.args[1], 0, 65535, c.source);
        curVs().realServers.push({ address: addr, ...(port !== undefined ? { port } : {}), checkers: [], src: c.source, invalid: !isIP(addr) });
      },
      block: realServerTable,
    },
  });
  function schedConv(c: KeywordCall): SchedulerName | undefined {
    const v = c.args[0] ?? '';
    if (SCHEDULERS.has(v)) return v as SchedulerName;
    err(`Invalid lvs_sched '${v}'`, c.source);
    return undefined;
  }

  const ssl: Bag = {};

  // --- root ------------------------------------------------------------------------------------
  const root: KeywordTable = {
    global_defs: { block: () => globalTable },
    vrrp_script: {
      handler: (c) => {
        vs_ = { name: c.args[0] ?? '', src: c.source };
      },
      block: () => scriptTable,
      close: (source) => {
        const name = String(vs_['name']);
        const s = vs_['script'] as ScriptCommand | undefined;
        if (!s) {
          err(`No script set for vrrp_script ${name} - removing`, source);
          return;
        }
        const interval = ((vs_['interval'] as number | undefined) || 1) * 1000;
        scripts.push({
          name,
          script: s,
          interval,
          timeout: ((vs_['timeout'] as number | undefined) ?? 0) * 1000 || interval,
          weight: (vs_['weight'] as number | undefined) ?? 0,
          weightReverse: (vs_['weightReverse'] as boolean | undefined) ?? false,
          rise: (vs_['rise'] as number | undefined) ?? 1,
          fall: (vs_['fall'] as number | undefined) ?? 1,
          initFail: (vs_['initFail'] as boolean | undefined) ?? false,
          source: vs_['src'] as KeepalivedSource,
        });
      },
    },
    vrrp_sync_group: {
      handler: (c) => groups.push({ name: c.args[0] ?? '', members: [], src: c.source }),
      block: groupTable,
    },
    vrrp_instance: {
      handler: (c) => instances.push({ name: c.args[0] ?? '', src: c.source }),
      block: instanceTable,
    },
    virtual_server_group: {
      handler: (c) => vsGroups.push({ name: c.args[0] ?? '', entries: [], source: c.source }),
      entry: vsgEntry,
    },
    virtual_server: {
      handler: (c) => {
        const a = c.args;
        let key: VirtualServerKey;
        if (a[0] === 'fwmark') key = { kind: 'fwmark', fwmark: readInt(a[1] ?? '', 1, 4294967295, c.source) ?? 0 };
        else if (a[0] === 'group') key = { kind: 'group', group: a[1] ?? '' };
        else {
          if (!isIP(a[0] ?? '')) err(`Invalid virtual server ip address ${a[0]} - skipping`, c.source);
          key = { kind: 'address', address: a[0] ?? '', port: a[1] === undefined ? 0 : (readInt(a[1], 0, 65535, c.source) ?? 0) };
        }
        servers.push({ key, realServers: [], src: c.source });
      },
      block: virtualServerTable,
    },
    SSL: {
      handler: () => undefined,
      block: () => ({
        password: str(() => ssl, 'password', 'password'),
        ca: str(() => ssl, 'ca', 'ca'),
        certificate: str(() => ssl, 'certificate', 'certificate'),
        key: str(() => ssl, 'key', 'key'),
      }),
    },
    static_ipaddress: unsupValueBlock('static_ipaddress'),
    static_routes: unsupValueBlock('static_routes'),
    static_rules: unsupValueBlock('static_rules'),
    linkbeat_interfaces: unsupValueBlock('linkbeat_interfaces'),
    interface_up_down_delays: unsupValueBlock('interface_up_down_delays'),
    track_group: unsup('track_group', { opaque: true }),
    track_file: unsup('track_file', { opaque: true }),
    vrrp_track_file: unsup('vrrp_track_file', { opaque: true }),
    vrrp_track_process: unsup('vrrp_track_process', { opaque: true }),
    bfd_instance: unsup('bfd_instance', { opaque: true }),
    garp_group: unsup('garp_group', { opaque: true }),
    net_namespace: {
      handler: (c) => {
        netNamespace = true;
        warnUnsupported('net_namespace', c);
      },
    },
    ...unsupTable('', ['net_namespace_ipvs', 'namespace_with_ipsets', 'instance', 'use_pid_dir', 'linkbeat_use_polling', 'child_wait_time']),
  };
  p.run(root);
  return finish();

  // --- finishing: defaults, fix-ups, cross checks ------------------------------------------------
  function finish(): KeepalivedConfig {
    const hostname = env.hostname;
    const num = (b: Bag, k: string, d: number): number => (b[k] as number | undefined) ?? d;
    const boo = (b: Bag, k: string, d: boolean): boolean => (b[k] as boolean | undefined) ?? d;
    const strict = boo(g, 'vrrpStrict', false);
    const masterDelay = num(g, 'vrrpGarpMasterDelay', 5000);
    const masterRepeat = num(g, 'vrrpGarpMasterRepeat', 5);
    // An unset smtp_alert: smtp_alert_checker (checker side) or smtp_alert_vrrp (VRRP side), then
    // an explicit global smtp_alert, then keepalived's default (true only for real servers).
    const explicitGlobalAlert = g['smtpAlert'] as boolean | undefined;
    const checkerAlert = (g['smtpAlertChecker'] as boolean | undefined) ?? explicitGlobalAlert;
    const vrrpAlert = (g['smtpAlertVrrp'] as boolean | undefined) ?? explicitGlobalAlert ?? false;
    const globalDefs: GlobalDefs = {
      routerId: (g['routerId'] as string | undefined) ?? hostname,
      notificationEmail: g['notificationEmail'] as string[],
      notificationEmailFrom: (g['notificationEmailFrom'] as string | undefined) ?? `keepalived@${hostname}`,
      ...(g['smtpServer'] ? { smtpServer: g['smtpServer'] as GlobalDefs['smtpServer'] & object } : {}),
      smtpHeloName: (g['smtpHeloName'] as string | undefined) ?? hostname,
      smtpConnectTimeout: num(g, 'smtpConnectTimeout', 30000),
      smtpAlert: boo(g, 'smtpAlert', false),
      ...(g['smtpAlertVrrp'] !== undefined ? { smtpAlertVrrp: g['smtpAlertVrrp'] as boolean } : {}),
      ...(g['smtpAlertChecker'] !== undefined ? { smtpAlertChecker: g['smtpAlertChecker'] as boolean } : {}),
      noEmailFaults: boo(g, 'noEmailFaults', false),
      noCheckerEmails: boo(g, 'noCheckerEmails', false),
      vrrpMcastGroup4: (g['vrrpMcastGroup4'] as string | undefined) ?? '224.0.0.18',
      vrrpMcastGroup6: (g['vrrpMcastGroup6'] as string | undefined) ?? 'ff02::12',
      defaultInterface: (g['defaultInterface'] as string | undefined) ?? 'eth0',
      vrrpVersion: num(g, 'vrrpVersion', 2) === 3 ? 3 : 2,
      vrrpStrict: strict,
      vrrpGarpMasterDelay: masterDelay,
      vrrpGarpMasterRepeat: masterRepeat,
      vrrpGarpMasterRefresh: num(g, 'vrrpGarpMasterRefresh', 0),
      vrrpGarpMasterRefreshRepeat: num(g, 'vrrpGarpMasterRefreshRepeat', 1),
      vrrpGarpLowerPrioDelay: num(g, 'vrrpGarpLowerPrioDelay', masterDelay),
      vrrpGarpLowerPrioRepeat: num(g, 'vrrpGarpLowerPrioRepeat', masterRepeat),
      vrrpGarpInterval: num(g, 'vrrpGarpInterval', 0),
      vrrpGnaInterval: num(g, 'vrrpGnaInterval', 0),
      vrrpLowerPrioNoAdvert: boo(g, 'vrrpLowerPrioNoAdvert', strict),
      vrrpHigherPrioSendAdvert: boo(g, 'vrrpHigherPrioSendAdvert', false),
      vrrpDownTimerAdverts: num(g, 'vrrpDownTimerAdverts', 3),
      vrrpCheckUnicastSrc: boo(g, 'vrrpCheckUnicastSrc', false),
      vrrpSkipCheckAdvAddr: boo(g, 'vrrpSkipCheckAdvAddr', false),
      vrrpStartupDelay: num(g, 'vrrpStartupDelay', 0),
      dynamicInterfaces: boo(g, 'dynamicInterfaces', false),
      ...(g['lvsSyncDaemon'] ? { lvsSyncDaemon: g['lvsSyncDaemon'] as GlobalDefs['lvsSyncDaemon'] & object } : {}),
      ...(g['lvsTimeouts'] ? { lvsTimeouts: g['lvsTimeouts'] as GlobalDefs['lvsTimeouts'] & object } : {}),
      lvsFlush: boo(g, 'lvsFlush', false),
      lvsFlushOnStop: (g['lvsFlushOnStop'] as GlobalDefs['lvsFlushOnStop'] | undefined) ?? 'none',
      ...(g['scriptUser'] ? { scriptUser: g['scriptUser'] as GlobalDefs['scriptUser'] & object } : {}),
      enableScriptSecurity: boo(g, 'enableScriptSecurity', false),
    };
    if (nonExistentInterface && !globalDefs.dynamicInterfaces) err('Non-existent interface specified in configuration');

    // Sync groups first: membership is needed by the instances.
    const instanceNames = new Set(instances.map((i) => i.name));
    const syncGroups: VrrpSyncGroup[] = [];
    const memberOf = new Map<string, string>();
    for (const gr of groups) {
      const members = gr.members.filter((m) => {
        if (instanceNames.has(m)) return true;
        err(`Virtual router ${m} specified in sync group ${gr.name} doesn't exist - ignoring`);
        return false;
      });
      if (members.length === 0) {
        err(`Sync group ${gr.name} has no virtual router(s). removing`);
        continue;
      }
      if (members.length === 1) err(`Sync group ${gr.name} has only 1 virtual router(s) - this probably isn't what you want`);
      const b = gr as unknown as Bag;
      for (const m of members) memberOf.set(m, gr.name ?? '');
      syncGroups.push({
        ...(b as object),
        name: gr.name ?? '',
        group: members,
        trackInterfaces: gr.trackInterfaces ?? [],
        trackScripts: gr.trackScripts ?? [],
        smtpAlert: boo(b, 'smtpAlert', vrrpAlert),
        notifyPriorityChanges: boo(b, 'notifyPriorityChanges', false),
        syncGroupTrackingWeight: boo(b, 'syncGroupTrackingWeight', false),
        source: gr.src,
      } as VrrpSyncGroup);
      delete (syncGroups[syncGroups.length - 1] as unknown as Bag)['members'];
      delete (syncGroups[syncGroups.length - 1] as unknown as Bag)['src'];
    }

    const vrrpInstances: VrrpInstance[] = [];
    for (const d of instances) {
      const name = d.name ?? '';
      if (d.virtualRouterId === undefined) {
        err(`(${name}) the virtual router id must be set`);
        continue;
      }
      const vips = d.virtualIpaddress ?? [];
      const v6 = vips.some((v) => v.family === 'inet6');
      let version = d.version ?? globalDefs.vrrpVersion;
      if (v6) {
        if (d.version === 2) err(`(${name}) cannot use IPv6 with VRRP version 2; setting version 3`);
        version = 3;
      }
      let state = d.state;
      let priority = d.priority;
      if (priority === undefined) priority = state === 'MASTER' && !d.prioSet ? 255 : 100;
      if (state === undefined) state = priority === 255 ? 'MASTER' : 'BACKUP';
      if (d.authentication?.authType === 'AH' && state === 'MASTER') {
        err(`(${name}) Initial state master is incompatible with AH authentication - clearing`);
        state = 'BACKUP';
      }
      let nopreempt = d.nopreempt ?? false;
      if (nopreempt && (state === 'MASTER' || priority === 255)) {
        err(`(${name}) Warning - nopreempt will not work with initial state MASTER - clearing`);
        nopreempt = false;
      }
      if (vips.length === 0 && version === 2 && !strict) err(`(${name}) No VIP specified; at least one is sensible`);
      const advert = d.advertInt ?? 1000;
      const b = d as unknown as Bag;
      const out: VrrpInstance = {
        name,
        state,
        interface: d.interface ?? globalDefs.defaultInterface,
        virtualRouterId: d.virtualRouterId,
        priority,
        advertInt: version === 2 ? Math.max(1000, Math.round(advert / 1000) * 1000) : Math.round(advert / 10) * 10,
        version: version === 3 ? 3 : 2,
        nopreempt,
        preemptDelay: state === 'MASTER' || nopreempt || strict ? 0 : (d.preemptDelay ?? 0),
        ...(d.authentication && version === 2 && !strict ? { authentication: d.authentication } : {}),
        virtualIpaddress: vips,
        virtualIpaddressExcluded: d.virtualIpaddressExcluded ?? [],
        virtualRoutes: d.virtualRoutes ?? [],
        virtualRules: d.virtualRules ?? [],
        trackInterfaces: d.trackInterfaces ?? [],
        trackScripts: d.trackScripts ?? [],
        dontTrackPrimary: d.dontTrackPrimary ?? false,
        ...(d.mcastSrcIp ? { mcastSrcIp: d.mcastSrcIp } : {}),
        ...(d.unicastSrcIp ? { unicastSrcIp: d.unicastSrcIp } : {}),
        unicastPeers: d.unicastPeers ?? [],
        unicastTtl: d.unicastTtl ?? 255,
        garpMasterDelay: d.garpMasterDelay ?? globalDefs.vrrpGarpMasterDelay,
        garpMasterRepeat: d.garpMasterRepeat ?? globalDefs.vrrpGarpMasterRepeat,
        garpMasterRefresh: d.garpMasterRefresh ?? globalDefs.vrrpGarpMasterRefresh,
        garpMasterRefreshRepeat: d.garpMasterRefreshRepeat ?? globalDefs.vrrpGarpMasterRefreshRepeat,
        garpLowerPrioDelay: strict ? 0 : (d.garpLowerPrioDelay ?? globalDefs.vrrpGarpLowerPrioDelay),
        garpLowerPrioRepeat: strict ? 0 : (d.garpLowerPrioRepeat ?? globalDefs.vrrpGarpLowerPrioRepeat),
        lowerPrioNoAdvert: strict || (d.lowerPrioNoAdvert ?? globalDefs.vrrpLowerPrioNoAdvert),
        higherPrioSendAdvert: !strict && (d.higherPrioSendAdvert ?? globalDefs.vrrpHigherPrioSendAdvert),
        downTimerAdverts: d.downTimerAdverts ?? globalDefs.vrrpDownTimerAdverts,
        smtpAlert: d.smtpAlert ?? vrrpAlert,
        notifyPriorityChanges: d.notifyPriorityChanges ?? false,
        ...(d.useVmac ? { useVmac: d.useVmac } : {}),
        accept: d.accept ?? (strict ? priority === 255 : true),
        strictMode: d.strictMode ?? strict,
        skipCheckAdvAddr: d.skipCheckAdvAddr ?? globalDefs.vrrpSkipCheckAdvAddr,
        ...(memberOf.has(name) ? { syncGroup: memberOf.get(name) as string } : {}),
        source: d.src,
        ...pick(b, ['notifyMaster', 'notifyBackup', 'notifyFault', 'notifyStop', 'notify']),
      };
      vrrpInstances.push(out);
    }

    const virtualServerGroups = vsGroups.filter((gr) => gr.entries.length > 0);
    const virtualServers: VirtualServer[] = [];
    for (const v of servers) {
      const k = v.key;
      if (k.kind === 'address' && !isIP(k.address)) continue;
      if (k.kind === 'group' && !virtualServerGroups.some((gr) => gr.name === k.group)) {
        err(`Virtual server group ${k.group} not found - removing virtual server`);
        continue;
      }
      const fam: 'inet' | 'inet6' = (v['ipFamily'] as 'inet' | 'inet6' | undefined) ?? (k.kind === 'address' ? familyOf(k.address) : 'inet');
      const vsPort = k.kind === 'address' ? k.port : 0;
      let protocol = v['protocol'] as VirtualServer['protocol'] | undefined;
      const label = (proto: string): string =>
        k.kind === 'fwmark' ? `FWM ${k.fwmark}` : k.kind === 'group' ? `[${k.group}]:${proto}:0` : `[${k.address}]:${proto}:${k.port}`;
      if (k.kind === 'fwmark') {
        if (protocol) err(`Warning: Virtual server ${label('')}: protocol specified for fwmark - protocol will be ignored`);
        protocol = protocol ?? 'TCP';
      } else if (!protocol) {
        err(`Virtual server ${label('none')}: no protocol set - defaulting to UDP`);
        protocol = 'UDP';
      }
      const lp = protocol.toLowerCase();
      let sched = v['lvsSched'] as SchedulerName | undefined;
      if (!sched) {
        err(`Virtual server ${label(lp)}: no scheduler set, setting default 'wlc'`);
        sched = 'wlc';
      }
      let vsMethod = v['lvsMethod'] as LvsMethod | undefined;
      if (!vsMethod) {
        err(`Virtual server ${label(lp)}: no forwarding method set, setting default NAT`);
        vsMethod = { kind: 'NAT' };
      }
      let persistence = v['persistenceTimeout'] as number | undefined;
      if (persistence === undefined && v['persistenceGranularity'] !== undefined) persistence = 360;
      if (k.kind === 'address' && k.port === 0 && persistence === undefined) {
        err(`Virtual server ${label(lp)}: zero port only valid for persistent services - setting`);
        persistence = 360;
      }
      const vsDelay = num(v, 'delayLoop', 60000);
      const vsAlpha = boo(v, 'alpha', false);
      const vsInhibit = boo(v, 'inhibitOnFailure', false);
      const fixPort = (m: LvsMethod, port: number | undefined): number => {
        if (k.kind === 'fwmark') return m.kind === 'NAT' ? (port ?? 0) : 0;
        if (m.kind === 'NAT') return port ?? vsPort;
        return vsPort;
      };
      const realServers: RealServer[] = [];
      for (const r of v.realServers) {
        if (r['invalid']) continue;
        const m = (r['lvsMethod'] as LvsMethod | undefined) ?? vsMethod;
        const port = fixPort(m, r.port);
        if (realServers.some((x) => x.address === r.address && x.port === port)) {
          err(`Virtual server ${label(lp)}: duplicate real server [${r.address}]:${lp}:${port} - removing`);
          continue;
        }
        const rsDelay = num(r, 'delayLoop', vsDelay);
        const checkers: Checker[] = [];
        for (const c of r.checkers) checkers.push(...finishChecker(c, r, v, rsDelay, port));
        realServers.push({
          address: r.address,
          port,
          weight: num(r, 'weight', num(v, 'weight', 1)),
          lvsMethod: m,
          inhibitOnFailure: boo(r, 'inhibitOnFailure', vsInhibit),
          uthreshold: num(r, 'uthreshold', 0),
          lthreshold: num(r, 'lthreshold', 0),
          alpha: boo(r, 'alpha', vsAlpha),
          ...pick(r, ['notifyUp', 'notifyDown']),
          smtpAlert: boo(r, 'smtpAlert', checkerAlert ?? true),
          ...(r['virtualhost'] ?? v['virtualhost'] ? { virtualhost: (r['virtualhost'] ?? v['virtualhost']) as string } : {}),
          checkers,
          source: r.src,
        });
      }
      if (realServers.length === 0 && !v['sorry']) {
        diagnostics.push(diagnostic('warning', `Virtual server ${label(lp)} has no real servers - ignoring`));
        continue;
      }
      const sorry = v['sorry'] as { address: string; port?: number } | undefined;
      const sorryMethod = (v['sorryMethod'] as LvsMethod | undefined) ?? vsMethod;
      let quorum = num(v, 'quorum', 1);
      const weightSum = realServers.reduce((s, r) => s + r.weight, 0);
      if (quorum > weightSum && weightSum > 0) {
        diagnostics.push(diagnostic('warning', `Virtual server ${label(lp)}: quorum ${quorum} exceeds total weight ${weightSum} - setting`));
        quorum = weightSum;
      }
      let hysteresis = num(v, 'hysteresis', 0);
      if (hysteresis >= quorum) hysteresis = quorum - 1;
      virtualServers.push({
        key: k,
        protocol,
        ipFamily: fam,
        delayLoop: vsDelay,
        lvsSched: sched,
        lvsMethod: vsMethod,
        ...(persistence !== undefined ? { persistenceTimeout: persistence } : {}),
        ...pick(v, ['persistenceGranularity', 'persistenceEngine', 'virtualhost', 'quorumUp', 'quorumDown']),
        ops: boo(v, 'ops', false) && protocol === 'UDP',
        schedFlags: (v['schedFlags'] as SchedulerFlag[] | undefined) ?? [],
        haSuspend: boo(v, 'haSuspend', false),
        alpha: vsAlpha,
        omega: boo(v, 'omega', false),
        quorum,
        hysteresis,
        ...(sorry
          ? {
              sorryServer: {
                address: sorry.address,
                port: fixPort(sorryMethod, sorry.port),
                lvsMethod: sorryMethod,
                inhibit: boo(v, 'sorryInhibit', false),
              },
            }
          : {}),
        inhibitOnFailure: vsInhibit,
        smtpAlert: boo(v, 'smtpAlert', checkerAlert ?? false),
        realServers,
        source: v.src,
      });
    }

    return {
      globalDefs,
      vrrpScripts: scripts,
      vrrpSyncGroups: syncGroups,
      vrrpInstances,
      virtualServerGroups,
      virtualServers,
      ...(Object.keys(ssl).length ? { ssl } : {}),
      unsupported,
    };
  }

  function finishChecker(c: Bag, r: RsDraft, v: VsDraft, rsDelay: number, rsPort: number): Checker[] {
    const type = c['type'] as Checker['type'];
    const num = (b: Bag, k: string): number | undefined => b[k] as number | undefined;
    const delayLoop = num(c, 'delayLoop') ?? rsDelay;
    const defRetry = type === 'MISC_CHECK' ? 0 : type === 'DNS_CHECK' ? 3 : 1;
    const defDbr = type === 'HTTP_GET' || type === 'SSL_GET' ? 3000 : type === 'DNS_CHECK' ? delayLoop : 1000;
    const timing = {
      delayLoop,
      connectTimeout: num(c, 'connectTimeout') ?? num(r, 'connectTimeout') ?? num(v, 'connectTimeout') ?? 5000,
      retry: num(c, 'retry') ?? num(r, 'retry') ?? num(v, 'retry') ?? defRetry,
      delayBeforeRetry: num(c, 'delayBeforeRetry') ?? num(r, 'delayBeforeRetry') ?? num(v, 'delayBeforeRetry') ?? defDbr,
      warmup: num(c, 'warmup') ?? num(r, 'warmup') ?? num(v, 'warmup') ?? delayLoop,
      alpha: (c['alpha'] ?? r['alpha'] ?? v['alpha'] ?? false) as boolean,
      logAllFailures: (c['logAllFailures'] ?? false) as boolean,
      source: c['src'] as KeepalivedSource,
    };
    const conn = (b: Bag) => ({
      connectIp: (b['connectIp'] ?? c['connectIp'] ?? r.address) as string,
      connectPort: (b['connectPort'] ?? c['connectPort'] ?? rsPort) as number,
      ...pick(b['bindto'] !== undefined ? b : c, ['bindto']),
      ...pick(c, ['bindPort', 'bindIf', 'fwmark']),
    });
    switch (type) {
      case 'TCP_CHECK':
      case 'PING_CHECK':
        return [{ type, ...timing, ...conn(c) }];
      case 'HTTP_GET':
      case 'SSL_GET': {
        const urls = ((c['urls'] as Bag[] | undefined) ?? []).map(
          (u): HttpUrl => ({
            path: u['path'] as string,
            ...pick(u, ['digest', 'virtualhost', 'regex']),
            statusCodes: (u['statusCodes'] as [number, number][] | undefined) ?? [[200, 299]],
            regexNoMatch: (u['regexNoMatch'] as boolean | undefined) ?? false,
          }),
        );
        if (urls.length === 0) {
          err(`${type} has no urls specified - removing checker`, timing.source);
          return [];
        }
        const vhost = c['virtualhost'] ?? r['virtualhost'] ?? v['virtualhost'];
        return [
          {
            type,
            ...timing,
            ...conn(c),
            urls,
            httpProtocol: (c['httpProtocol'] as '1.0' | '1.0C' | '1.1' | undefined) ?? '1.0',
            ...(vhost !== undefined ? { virtualhost: vhost as string } : {}),
            fastRecovery: (c['fastRecovery'] as boolean | undefined) ?? false,
            enableSni: (c['enableSni'] as boolean | undefined) ?? false,
          },
        ];
      }
      case 'MISC_CHECK': {
        const path = c['miscPath'] as ScriptCommand | undefined;
        if (!path) {
          err('MISC_CHECK: no misc_path specified - removing checker', timing.source);
          return [];
        }
        return [{ type, ...timing, miscPath: path, miscTimeout: num(c, 'miscTimeout') ?? delayLoop, miscDynamic: (c['miscDynamic'] as boolean | undefined) ?? false }];
      }
      case 'SMTP_CHECK': {
        const heloName = (c['heloName'] as string | undefined) ?? 'smtpchecker.keepalived.org';
        const hosts = (c['hosts'] as Bag[] | undefined) ?? [];
        if (hosts.length === 0) return [{ type, ...timing, ...conn(c), heloName }];
        return hosts.map((h) => ({ type, ...timing, ...conn(h), heloName }));
      }
      case 'DNS_CHECK':
        return [{ type, ...timing, ...conn(c), dnsType: (c['dnsType'] as 'SOA' | undefined) ?? 'SOA', name: (c['name'] as string | undefined) ?? '.' }];
      case 'UDP_CHECK':
        return [{ type, ...timing, ...conn(c), ...pick(c, ['payload', 'requireReply', 'maxReplyLength']), minReplyLength: num(c, 'minReplyLength') ?? 0 }];
      case 'FILE_CHECK':
        diagnostics.push(diagnostic('warning', "'FILE_CHECK' is not supported by lvs - ignoring", timing.source));
        return [{ type, ...timing, trackFile: (c['trackFile'] as string | undefined) ?? '', weight: num(c, 'weight') ?? 0, reverse: (c['reverse'] as boolean | undefined) ?? false }];
      case 'BFD_CHECK':
        diagnostics.push(diagnostic('warning', "'BFD_CHECK' is not supported by lvs - ignoring", timing.source));
        return [{ type, ...timing, name: (c['name'] as string | undefined) ?? '' }];
      default:
        return [];
    }
  }
}

function pick(b: Bag, keys: readonly string[]): Bag {
  const out: Bag = {};
  for (const k of keys) if (b[k] !== undefined) out[k] = b[k];
  return out;
}
