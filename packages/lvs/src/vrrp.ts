/**
 * VRRP (keepalived's `vrrp_instance`, `vrrp_script`, `vrrp_sync_group`) for a {@link Director}:
 * the director takes part in a VRRP election and serves its VIPs only while MASTER.
 * Start it with {@link Director.startVrrp}.
 * @module
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { EventEmitter } from 'node:events';
import { splitCommand } from './command.js';
import { callNative, LvsError } from './errors.js';
import type { Director } from './director.js';
import type { native } from './native.js';

type NativeDirector = InstanceType<typeof native.NativeDirector>;
type NativeSpeaker = ReturnType<NativeDirector['startVrrp']>;
type NativeSpec = Parameters<NativeDirector['startVrrp']>[0][number];
type NativeEvent = Parameters<Parameters<NativeDirector['startVrrp']>[2]>[0];

/** A VRRP instance state, in keepalived's words. */
export type VrrpState = 'INIT' | 'BACKUP' | 'MASTER' | 'FAULT' | 'STOP';

/**
 * A command to run: an argv array (run as is), or a command line split at unquoted spaces as
 * keepalived splits `notify_master "/path/script arg1 arg2"` (single or double quotes group words).
 * Scripts run without a shell.
 */
export type VrrpCommand = string | readonly string[];

/** `authentication { auth_type PASS; auth_pass … }` (VRRPv2 only). */
export interface VrrpAuthentication {
  /** Only simple passwords are supported. */
  readonly authType: 'PASS';
  /** The password; only the first 8 bytes count, as in keepalived. */
  readonly authPass: string;
}

/** A `track_script` entry: a script name, or the name with an instance-specific weight. */
export type VrrpTrackScript = string | VrrpTrackScriptEntry;

/** `track_script { NAME weight W [reverse] }`. */
export interface VrrpTrackScriptEntry {
  /** The `vrrp_script` name. */
  readonly name: string;
  /** Overrides the script's weight for this instance. */
  readonly weight?: number;
  /** Flips the direction of the weight. */
  readonly reverse?: boolean;
}

/** A `track_interface` entry: an interface name, or the name with a weight. */
export type VrrpTrackInterface = string | VrrpTrackInterfaceEntry;

/** `track_interface { IF weight W [reverse] }`. */
export interface VrrpTrackInterfaceEntry {
  /** The interface. */
  readonly name: string;
  /**
   * 0 (default): the instance goes to FAULT while the interface is down; > 0: added to the
   * priority while it is up; < 0: subtracted while it is down.
   */
  readonly weight?: number;
  /** Flips the direction of the weight. */
  readonly reverse?: boolean;
}

/**
 * One `vrrp_instance`, keyword by keyword in camelCase. Times are in seconds, as in
 * keepalived.conf.
 */
export interface VrrpInstanceOptions {
  /** Instance name (`vrrp_instance VI_1`). */
  readonly name: string;
  /** `interface`: one of the director's interfaces. */
  readonly interface: string;
  /** `virtual_router_id`, 1..255. */
  readonly virtualRouterId: number;
  /** `priority`, 1..255; default 100 (255 with `state: 'MASTER'`, as keepalived). */
  readonly priority?: number;
  /** `advert_int` in seconds; default 1 (whole seconds for VRRPv2). */
  readonly advertInt?: number;
  /** `version`; default 2 for IPv4 VIPs, always 3 for IPv6. */
  readonly version?: 2 | 3;
  /** `state`: with `'MASTER'` and priority 255 the instance takes over at once. */
  readonly state?: 'MASTER' | 'BACKUP';
  /** `nopreempt`: never take over from a lower-priority master. */
  readonly nopreempt?: boolean;
  /** `preempt_delay` in seconds. */
  readonly preemptDelay?: number;
  /** `authentication` (VRRPv2). */
  readonly authentication?: VrrpAuthentication;
  /** `virtual_ipaddress`: `'10.0.0.100'` or `'10.0.0.100/24'` (the prefix length is ignored). */
  readonly virtualIpaddress: readonly string[];
  /** `mcast_src_ip`: advert source; default the interface's address (IPv6: link-local). */
  readonly mcastSrcIp?: string;
  /** `unicast_src_ip`: advert source in unicast mode. */
  readonly unicastSrcIp?: string;
  /** `unicast_peer`: send adverts to these addresses instead of multicasting. */
  readonly unicastPeer?: readonly string[];
  /** `garp_master_delay` (s): second gratuitous ARP burst after becoming MASTER; 0 = none. Default 5. */
  readonly garpMasterDelay?: number;
  /** `garp_master_repeat`: announcements per VIP per burst. Default 5. */
  readonly garpMasterRepeat?: number;
  /** `garp_lower_prio_delay` (s). Default 5. */
  readonly garpLowerPrioDelay?: number;
  /** `garp_lower_prio_repeat`. Default 5. */
  readonly garpLowerPrioRepeat?: number;
  /** `garp_master_refresh` (s): periodic announcements while MASTER; 0 = off. */
  readonly garpMasterRefresh?: number;
  /** `garp_master_refresh_repeat`. Default 1. */
  readonly garpMasterRefreshRepeat?: number;
  /** `vrrp_lower_prio_no_advert`: a MASTER does not answer lower-priority adverts. */
  readonly lowerPrioNoAdvert?: boolean;
  /** `vrrp_higher_prio_send_advert`: a MASTER adverts once before yielding. */
  readonly higherPrioSendAdvert?: boolean;
  /** `vrrp_down_timer_adverts`: adverts missed before the master is declared down. Default 3. */
  readonly downTimerAdverts?: number;
  /** `vrrp_skip_check_adv_addr`. */
  readonly skipCheckAdvAddr?: boolean;
  /** `vrrp_check_unicast_src`. */
  readonly checkUnicastSrc?: boolean;
  /** `track_script`: names of scripts from {@link StartVrrpOptions.scripts}. */
  readonly trackScript?: readonly VrrpTrackScript[];
  /** `track_interface`: interfaces whose state (up and carrier) moves the priority or faults the instance. */
  readonly trackInterface?: readonly VrrpTrackInterface[];
  /** `dont_track_primary`: stay out of FAULT when the instance's own interface goes down. */
  readonly dontTrackPrimary?: boolean;
  /** `notify_master`. */
  readonly notifyMaster?: VrrpCommand;
  /** `notify_backup`. */
  readonly notifyBackup?: VrrpCommand;
  /** `notify_fault`. */
  readonly notifyFault?: VrrpCommand;
  /** `notify_stop`. */
  readonly notifyStop?: VrrpCommand;
  /** `notify`: run with 4 more arguments, `INSTANCE <name> <state> <priority>`. */
  readonly notify?: VrrpCommand;
}

/** A `vrrp_script`: a check whose result moves the tracking instances' priority or faults them. */
export interface VrrpScriptOptions {
  /** `script`: the command. Exit status 0 is success; anything else, a signal or a timeout is failure. */
  readonly script: VrrpCommand;
  /** `interval` in seconds between runs; default 1. */
  readonly interval?: number;
  /** `timeout` in seconds; default the interval. SIGTERM, then SIGKILL 2 s later. */
  readonly timeout?: number;
  /**
   * `weight`, -253..253; default 0. 0: failure puts the tracking instances into FAULT; > 0:
   * success adds it to their priority; < 0: failure subtracts it.
   */
  readonly weight?: number;
  /** `weight … reverse`: flips the direction. */
  readonly reverse?: boolean;
  /** `rise`: consecutive successes to become OK; default 1. */
  readonly rise?: number;
  /** `fall`: consecutive failures to become KO; default 1. */
  readonly fall?: number;
  /** `init_fail`: start failed instead of waiting for the first result. */
  readonly initFail?: boolean;
}

/** A `vrrp_sync_group`: its members change state together. */
export interface VrrpSyncGroupOptions {
  /** Group name. */
  readonly name: string;
  /** `group { … }`: member instance names. */
  readonly group: readonly string[];
  /** `notify_master`. */
  readonly notifyMaster?: VrrpCommand;
  /** `notify_backup`. */
  readonly notifyBackup?: VrrpCommand;
  /** `notify_fault`. */
  readonly notifyFault?: VrrpCommand;
  /** `notify_stop`. */
  readonly notifyStop?: VrrpCommand;
  /** `notify`: with `GROUP <name> <state> 0`. */
  readonly notify?: VrrpCommand;
}

/** Options of {@link Director.startVrrp}. */
export interface StartVrrpOptions {
  /** `vrrp_sync_group`s over the instances. */
  readonly syncGroups?: readonly VrrpSyncGroupOptions[];
  /** `vrrp_script`s by name, for the instances' `trackScript`. */
  readonly scripts?: Readonly<Record<string, VrrpScriptOptions>>;
}

/** A state change of an instance. */
export interface VrrpStateChange {
  /** Instance name. */
  readonly instance: string;
  /** The previous state. */
  readonly from: VrrpState;
  /** The new state. */
  readonly to: VrrpState;
  /** The effective priority at the change. */
  readonly priority: number;
}

/** A log line of an instance, in keepalived's words (`(VI_1) Entering MASTER STATE`). */
export interface VrrpLog {
  /** Instance name. */
  readonly instance: string;
  /** The line. */
  readonly message: string;
}

/** An instance as the speaker last saw it. */
export interface VrrpInstanceStatus {
  /** Instance name. */
  readonly name: string;
  /** Its state. */
  readonly state: VrrpState;
  /** Effective priority (base plus tracking weights, clamped to 1..254; 255 stays 255). */
  readonly priority: number;
  /** The master a BACKUP listens to. */
  readonly master?: string;
  /** Adverts received, sent and dropped per reason. */
  readonly counters: Readonly<Record<string, bigint>>;
}

/** The events of a {@link VrrpSpeaker}. */
export interface VrrpEvents {
  /** Any state change. */
  state: [VrrpStateChange];
  /** An instance became MASTER. */
  master: [VrrpStateChange];
  /** An instance became BACKUP. */
  backup: [VrrpStateChange];
  /** An instance entered FAULT. */
  fault: [VrrpStateChange];
  /** A log line. */
  log: [VrrpLog];
  /** A socket or script error; emitted only while someone listens, so it never crashes the process. */
  error: [LvsError];
}

/** How often tracked interfaces are looked at. */
const LINK_POLL_MS = 500;

/** keepalived's test for a usable interface: administratively up with a carrier. */
function linkUp(name: string): boolean {
  try {
    const flags = Number.parseInt(readFileSync(`/sys/class/net/${name}/flags`, 'utf8').trim(), 16);
    return (flags & 1) === 1 && readFileSync(`/sys/class/net/${name}/carrier`, 'utf8').trim() === '1';
  } catch {
    return false; // no such interface, or down (reading the carrier of a down link fails)
  }
}

function argv(cmd: VrrpCommand): string[] {
  return typeof cmd === 'string' ? splitCommand(cmd) : [...cmd];
}

function bareAddress(a: string): string {
  const slash = a.indexOf('/');
  return (slash < 0 ? a : a.slice(0, slash)).trim();
}

function int(name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new LvsError('EINVAL', `${name} must be an integer from ${min} to ${max}, got ${String(v)}`);
  }
  return v;
}

function seconds(name: string, v: number): number {
  if (!Number.isFinite(v) || v < 0) throw new LvsError('EINVAL', `${name} must be a number of seconds ≥ 0, got ${String(v)}`);
  return v;
}

/** The binding's spec for one instance. */
function nativeSpec(o: VrrpInstanceOptions): NativeSpec {
  const n = `(${o.name})`;
  const master = o.state === 'MASTER';
  if (o.state !== undefined && o.state !== 'MASTER' && o.state !== 'BACKUP') {
    throw new LvsError('EINVAL', `${n} state must be MASTER or BACKUP, got ${String(o.state)}`);
  }
  const spec: NativeSpec = {
    name: o.name,
    interface: o.interface,
    virtualRouterId: int(`${n} virtualRouterId`, o.virtualRouterId, 1, 255),
    virtualIpaddress: o.virtualIpaddress.map(bareAddress),
    initialMaster: master,
  };
  if (o.priority !== undefined) spec.priority = int(`${n} priority`, o.priority, 1, 255);
  else if (master) spec.priority = 255;
  if (o.advertInt !== undefined) spec.advertInt = seconds(`${n} advertInt`, o.advertInt);
  if (o.version !== undefined) spec.version = o.version;
  // keepalived clears nopreempt / preempt_delay for `state MASTER` and for the address owner.
  const owner = (spec.priority ?? 100) === 255;
  if (o.nopreempt !== undefined) spec.nopreempt = o.nopreempt && !master && !owner;
  if (o.preemptDelay !== undefined && !master && !spec.nopreempt) {
    spec.preemptDelay = seconds(`${n} preemptDelay`, o.preemptDelay);
  }
  if (o.authentication !== undefined) {
    if (o.authentication.authType !== 'PASS') throw new LvsError('EINVAL', `${n} only auth_type PASS is supported`);
    spec.authPass = o.authentication.authPass;
  }
  const src = o.unicastSrcIp ?? o.mcastSrcIp;
  if (src !== undefined) spec.srcIp = src;
  if (o.unicastPeer !== undefined) spec.unicastPeer = o.unicastPeer.map(bareAddress);
  if (o.garpMasterDelay !== undefined) spec.garpMasterDelay = seconds(`${n} garpMasterDelay`, o.garpMasterDelay);
  if (o.garpMasterRepeat !== undefined) spec.garpMasterRepeat = int(`${n} garpMasterRepeat`, o.garpMasterRepeat, 0, 255);
  if (o.garpLowerPrioDelay !== undefined) spec.garpLowerPrioDelay = seconds(`${n} garpLowerPrioDelay`, o.garpLowerPrioDelay);
  if (o.garpLowerPrioRepeat !== undefined) {
    spec.garpLowerPrioRepeat = int(`${n} garpLowerPrioRepeat`, o.garpLowerPrioRepeat, 0, 255);
  }
  if (o.garpMasterRefresh !== undefined) spec.garpMasterRefresh = seconds(`${n} garpMasterRefresh`, o.garpMasterRefresh);
  if (o.garpMasterRefreshRepeat !== undefined) {
    spec.garpMasterRefreshRepeat = int(`${n} garpMasterRefreshRepeat`, o.garpMasterRefreshRepeat, 1, 255);
  }
  if (o.lowerPrioNoAdvert !== undefined) spec.lowerPrioNoAdvert = o.lowerPrioNoAdvert;
  if (o.higherPrioSendAdvert !== undefined) spec.higherPrioSendAdvert = o.higherPrioSendAdvert;
  if (o.downTimerAdverts !== undefined) spec.downTimerAdverts = int(`${n} downTimerAdverts`, o.downTimerAdverts, 1, 100);
  if (o.skipCheckAdvAddr !== undefined) spec.skipCheckAdvAddr = o.skipCheckAdvAddr;
  if (o.checkUnicastSrc !== undefined) spec.checkUnicastSrc = o.checkUnicastSrc;
  return spec;
}

/** One running `vrrp_script`: rise/fall hysteresis over periodic runs. */
class ScriptTracker {
  /** `true` OK, `false` KO, `undefined` before the first result. */
  ok: boolean | undefined;
  #streak = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #argv: string[];
  readonly #interval: number;
  readonly #timeout: number;

  constructor(
    readonly name: string,
    readonly opts: VrrpScriptOptions,
    private readonly onChange: () => void,
    private readonly onError: (err: LvsError) => void,
  ) {
    this.#argv = argv(opts.script);
    if (this.#argv.length === 0) throw new LvsError('EINVAL', `vrrp_script ${name}: empty script`);
    const interval = opts.interval ?? 1;
    this.#interval = (interval === 0 ? 1 : seconds(`vrrp_script ${name} interval`, interval)) * 1000;
    this.#timeout = seconds(`vrrp_script ${name} timeout`, opts.timeout ?? interval) * 1000;
    int(`vrrp_script ${name} rise`, opts.rise ?? 1, 1, 1_000_000);
    int(`vrrp_script ${name} fall`, opts.fall ?? 1, 1, 1_000_000);
    int(`vrrp_script ${name} weight`, opts.weight ?? 0, -253, 253);
    this.ok = opts.initFail === true ? false : undefined;
  }

  start(): void {
    this.#run();
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
  }

  #run(): void {
    if (this.#stopped) return;
    const [cmd, ...args] = this.#argv as [string, ...string[]];
    let killTimer: NodeJS.Timeout | undefined;
    let termTimer: NodeJS.Timeout | undefined;
    let done = false;
    const finish = (success: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(termTimer);
      clearTimeout(killTimer);
      this.#result(success);
      if (!this.#stopped) this.#timer = setTimeout(() => this.#run(), this.#interval);
    };
    const child = spawn(cmd, args, { stdio: 'ignore' });
    termTimer = setTimeout(() => {
      child.kill('SIGTERM');
      killTimer = setTimeout(() => child.kill('SIGKILL'), 2000);
      finish(false);
    }, this.#timeout);
    child.on('error', (err) => {
      this.onError(new LvsError('ENOENT', `vrrp_script ${this.name}: ${err.message}`, { cause: err }));
      finish(false);
    });
    child.on('exit', (code) => finish(code === 0));
  }

  /** keepalived's hysteresis: the first result decides; then `rise` successes / `fall` failures in a row flip it. */
  #result(success: boolean): void {
    const before = this.ok;
    if (this.ok === undefined) {
      this.ok = success;
      this.#streak = 0;
    } else if (success !== this.ok) {
      this.#streak += 1;
      if (this.#streak >= (success ? (this.opts.rise ?? 1) : (this.opts.fall ?? 1))) {
        this.ok = success;
        this.#streak = 0;
      }
    } else {
      this.#streak = 0;
    }
    if (this.ok !== before) this.onChange();
  }
}

/**
 * A running VRRP speaker: the director's instances taking part in VRRP elections (with
 * keepalived or other lvs directors). While an instance is MASTER the director answers ARP/ND
 * for its VIPs and balances their traffic; otherwise it does neither. Like a listening server,
 * a running speaker keeps the Node process alive until {@link VrrpSpeaker.stop} (or
 * {@link Director.close}).
 *
 * @example
 * ```ts
 * const director = await Director.open({ interfaces: ['eth0'] });
 * const vrrp = director.startVrrp([
 *   { name: 'VI_1', interface: 'eth0', virtualRouterId: 51, priority: 150,
 *     authentication: { authType: 'PASS', authPass: 'secret12' }, virtualIpaddress: ['10.200.0.100'] },
 * ]);
 * vrrp.on('master', ({ instance }) => console.log(`${instance} is MASTER`));
 * // later
 * vrrp.stop(); // priority-0 advert: the backup takes over at once
 * ```
 */
export class VrrpSpeaker extends EventEmitter<VrrpEvents> {
  readonly #native: NativeSpeaker;
  readonly #instances: ReadonlyMap<string, VrrpInstanceOptions>;
  readonly #groups: readonly VrrpSyncGroupOptions[];
  readonly #scripts = new Map<string, ScriptTracker>();
  readonly #states = new Map<string, VrrpState>();
  /** Tracked interfaces (each instance's own, and `trackInterface`) and whether each is up. */
  readonly #links = new Map<string, boolean>();
  /** What tracking last set per instance, so only changes reach the instance. */
  readonly #applied = new Map<string, { delta: number; fault: boolean }>();
  #linkTimer: NodeJS.Timeout | undefined;
  #stopped = false;

  /** @internal Use {@link Director.startVrrp}. */
  constructor(
    start: (specs: NativeSpec[], groups: string[][], cb: (e: NativeEvent) => void) => NativeSpeaker,
    instances: readonly VrrpInstanceOptions[],
    options: StartVrrpOptions = {},
  ) {
    super();
    const map = new Map<string, VrrpInstanceOptions>();
    for (const i of instances) map.set(i.name, i);
    this.#instances = map;
    this.#groups = options.syncGroups ?? [];
    const scripts = options.scripts ?? {};
    for (const i of instances) {
      for (const t of i.trackScript ?? []) {
        const name = typeof t === 'string' ? t : t.name;
        const def = scripts[name];
        if (def === undefined) throw new LvsError('EINVAL', `(${i.name}) track_script ${name}: no such vrrp_script`);
        if (!this.#scripts.has(name)) {
          this.#scripts.set(
            name,
            new ScriptTracker(name, def, () => this.#track(), (err) => this.#error(err)),
          );
        }
      }
    }
    const specs = instances.map(nativeSpec);
    this.#native = callNative(() =>
      start(
        specs,
        this.#groups.map((g) => [...g.group]),
        (e) => this.#event(e),
      ),
    );
    for (const i of instances) {
      if (!i.dontTrackPrimary) this.#links.set(i.interface, linkUp(i.interface));
      for (const t of i.trackInterface ?? []) {
        const name = typeof t === 'string' ? t : t.name;
        this.#links.set(name, linkUp(name));
      }
    }
    this.#track();
    for (const s of this.#scripts.values()) s.start();
    // keepalived learns link changes from netlink; a short poll of sysfs is enough here.
    if (this.#links.size > 0) this.#linkTimer = setInterval(() => this.#pollLinks(), LINK_POLL_MS);
  }

  #pollLinks(): void {
    let changed = false;
    for (const [name, was] of this.#links) {
      const up = linkUp(name);
      if (up !== was) {
        this.#links.set(name, up);
        changed = true;
      }
    }
    if (changed) this.#track();
  }

  /** Applies the scripts' results: priority deltas and faults per instance. */
  #track(): void {
    if (this.#stopped) return;
    for (const inst of this.#instances.values()) {
      let delta = 0;
      let fault = false;
      for (const t of inst.trackScript ?? []) {
        const name = typeof t === 'string' ? t : t.name;
        const s = this.#scripts.get(name);
        if (s === undefined || s.ok === undefined) continue;
        const weight = typeof t === 'string' || t.weight === undefined ? (s.opts.weight ?? 0) : t.weight;
        const reverse = typeof t === 'string' || t.reverse === undefined ? s.opts.reverse === true : t.reverse;
        const ok = reverse ? !s.ok : s.ok;
        if (weight === 0) fault ||= !ok;
        else if (weight > 0 && ok) delta += weight;
        else if (weight < 0 && !ok) delta += weight;
      }
      for (const t of inst.trackInterface ?? []) {
        const name = typeof t === 'string' ? t : t.name;
        const weight = typeof t === 'string' ? 0 : (t.weight ?? 0);
        const up = this.#links.get(name) ?? false;
        const ok = typeof t !== 'string' && t.reverse ? !up : up;
        if (weight === 0) fault ||= !ok;
        else if (weight > 0 && ok) delta += weight;
        else if (weight < 0 && !ok) delta += weight;
      }
      if (!inst.dontTrackPrimary && this.#links.get(inst.interface) === false) fault = true;
      const last = this.#applied.get(inst.name) ?? { delta: 0, fault: false };
      if (last.delta === delta && last.fault === fault && this.#applied.has(inst.name)) continue;
      this.#applied.set(inst.name, { delta, fault });
      if ((inst.trackScript ?? []).length > 0 || (inst.trackInterface ?? []).length > 0 || last.delta !== delta) {
        this.#call(() => this.#native.setPriorityDelta(inst.name, delta));
      }
      if (fault || last.fault) this.#call(() => this.#native.setFault(inst.name, fault));
    }
  }

  #call(fn: () => void): void {
    try {
      callNative(fn);
    } catch (err) {
      if (!(err instanceof LvsError && err.code === 'ESRCH')) this.#error(err as LvsError);
    }
  }

  #error(err: LvsError): void {
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  #event(e: NativeEvent): void {
    if (e.kind === 'log') {
      this.emit('log', { instance: e.instance ?? '', message: e.message ?? '' });
    } else if (e.kind === 'error') {
      this.#error(new LvsError('EINVAL', e.message ?? 'VRRP error'));
    } else {
      const change: VrrpStateChange = {
        instance: e.instance ?? '',
        from: (e.from ?? 'INIT') as VrrpState,
        to: (e.to ?? 'INIT') as VrrpState,
        priority: e.priority ?? 0,
      };
      this.#states.set(change.instance, change.to);
      this.emit('state', change);
      if (change.to === 'MASTER') this.emit('master', change);
      else if (change.to === 'BACKUP') this.emit('backup', change);
      else if (change.to === 'FAULT') this.emit('fault', change);
      this.#notify(change);
    }
  }

  /** Runs the notify scripts of an instance (and of its sync groups when all members agree). */
  #notify(c: VrrpStateChange): void {
    const inst = this.#instances.get(c.instance);
    if (inst !== undefined) this.#runNotify(inst, c.to, ['INSTANCE', c.instance, c.to, String(c.priority)]);
    for (const g of this.#groups) {
      if (!g.group.includes(c.instance)) continue;
      // The group notifies once, when its last member arrives in the state.
      if (g.group.every((m) => this.#states.get(m) === c.to)) this.#runNotify(g, c.to, ['GROUP', g.name, c.to, '0']);
    }
  }

  #runNotify(
    o: Pick<VrrpInstanceOptions, 'notifyMaster' | 'notifyBackup' | 'notifyFault' | 'notifyStop' | 'notify'>,
    state: VrrpState,
    extra: string[],
  ): void {
    const specific = { MASTER: o.notifyMaster, BACKUP: o.notifyBackup, FAULT: o.notifyFault, STOP: o.notifyStop, INIT: undefined }[
      state
    ];
    if (specific !== undefined) this.#exec(argv(specific));
    if (o.notify !== undefined) this.#exec([...argv(o.notify), ...extra]);
  }

  #exec(args: string[]): void {
    const [cmd, ...rest] = args;
    if (cmd === undefined) return;
    const child = spawn(cmd, rest, { stdio: 'ignore', detached: false });
    child.on('error', (err) => this.#error(new LvsError('ENOENT', `notify script ${cmd}: ${err.message}`, { cause: err })));
  }

  /**
   * The state of instance `name` (as last reported by the speaker).
   *
   * @throws {@link LvsError} `ENOENT` for an unknown instance.
   * @example
   * ```ts
   * if (vrrp.state('VI_1') === 'MASTER') console.log('serving the VIPs');
   * ```
   */
  state(name: string): VrrpState {
    const s = this.status().find((i) => i.name === name);
    if (s === undefined) throw new LvsError('ENOENT', `no VRRP instance ${name}`);
    return s.state;
  }

  /**
   * Every instance: state, effective priority, master, counters (adverts received and sent,
   * and each drop reason, e.g. invalid TTL or password).
   *
   * @example
   * ```ts
   * for (const i of vrrp.status()) console.log(i.name, i.state, i.priority, i.counters);
   * ```
   */
  status(): VrrpInstanceStatus[] {
    if (this.#stopped) {
      return [...this.#instances.keys()].map((name) => ({ name, state: 'STOP', priority: 0, counters: {} }));
    }
    return callNative(() => this.#native.status()).map((i) => {
      const s: { -readonly [K in keyof VrrpInstanceStatus]: VrrpInstanceStatus[K] } = {
        name: i.name,
        state: i.state as VrrpState,
        priority: i.priority,
        counters: i.counters,
      };
      if (i.master != null) s.master = i.master;
      return s;
    });
  }

  /**
   * Sets the sum of tracking weights of an instance (what `track_script` weights add up to):
   * effective priority = priority + delta, clamped to 1..254. Use it to track anything
   * yourself; instances with `trackScript` are managed by their scripts.
   *
   * @example
   * ```ts
   * vrrp.setPriorityDelta('VI_1', -60); // e.g. a health check failed
   * ```
   */
  setPriorityDelta(name: string, delta: number): this {
    const d = int('priority delta', delta, -1000, 1000);
    callNative(() => this.#native.setPriorityDelta(name, d));
    return this;
  }

  /**
   * Puts an instance into FAULT (no adverts, VIPs released; a MASTER first sends priority 0) or
   * lets it out again (it comes back as BACKUP).
   *
   * @example
   * ```ts
   * vrrp.setFault('VI_1', true);
   * ```
   */
  setFault(name: string, fault: boolean): this {
    callNative(() => this.#native.setFault(name, fault));
    return this;
  }

  /**
   * Stops: scripts end, every MASTER sends a priority-0 advert (the backup takes over after its
   * skew time) and releases its VIPs, `notify_stop` scripts run. Idempotent.
   *
   * @example
   * ```ts
   * vrrp.stop();
   * ```
   */
  stop(): void {
    if (this.#stopped) return;
    clearInterval(this.#linkTimer);
    for (const s of this.#scripts.values()) s.stop();
    callNative(() => this.#native.stop());
    this.#stopped = true;
  }
}
