/**
 * Running a keepalived.conf on a director: what `lvsd -f FILE` does. The virtual servers go to a
 * {@link HealthMonitor}, the VRRP instances to the director's VRRP speaker (which makes the
 * director own a MASTER's VIPs), `lvs_sync_daemon` to the connection-sync daemons (switched
 * between master and backup with the named instance, as keepalived does), `lvs_timeouts` to the
 * connection timeouts.
 * @module
 */
import { EventEmitter } from 'node:events';
import type { Director } from '../director.js';
import { LvsError } from '../errors.js';
import { fromKeepalived } from '../health/keepalived.js';
import { HealthMonitor, type HealthMonitorOptions } from '../health/monitor.js';
import type { ServiceOptions, ServiceRef, SyncDaemonOptions } from '../types.js';
import type {
  VrrpCommand,
  VrrpInstanceOptions,
  VrrpScriptOptions,
  VrrpSpeaker,
  VrrpStateChange,
  VrrpSyncGroupOptions,
} from '../vrrp.js';
import { KeepalivedAlerts } from './alerts.js';
import type { KeepalivedConfig, ScriptCommand, VrrpInstance } from './types.js';

/** Options of {@link runKeepalived}. */
export interface KeepalivedRunOptions {
  /** Options passed to the {@link HealthMonitor} (clock, random source, notify FIFO). */
  readonly health?: HealthMonitorOptions;
  /**
   * Remove the rules this configuration created when stopping (keepalived's default); false
   * keeps them, like keepalived's `--dont-release-ipvs`. Default true.
   */
  readonly releaseOnStop?: boolean;
}

/** The events of a {@link KeepalivedRun}: a log line (keepalived's wording where it has one). */
export interface KeepalivedRunEvents {
  /** A line for the log: VRRP transitions, checker results, sync daemon switches. */
  log: [string];
  /** A failure outside the normal flow (a director call, a notify script). */
  error: [Error];
}

/** The instances, interfaces and commands {@link runKeepalived} derives from a configuration. */
export interface KeepalivedPlan {
  /** VRRP instances for {@link Director.startVrrp}. */
  readonly instances: VrrpInstanceOptions[];
  /** Sync groups. */
  readonly syncGroups: VrrpSyncGroupOptions[];
  /** The `vrrp_script`s tracked by some instance. */
  readonly scripts: Record<string, VrrpScriptOptions>;
  /** The director interfaces the configuration needs: VRRP instances and the sync daemon's. */
  readonly interfaces: string[];
  /** Things lvs does not do that the configuration asks for (each a sentence for the log). */
  readonly unsupported: string[];
}

function command(c: ScriptCommand | undefined): VrrpCommand | undefined {
  if (c === undefined) return undefined;
  // keepalived runs a command starting with `<` through /bin/sh -c; everything else with execve.
  return c.shell ? ['/bin/sh', '-c', c.command] : c.argv;
}

function notifies(n: {
  readonly notifyMaster?: ScriptCommand;
  readonly notifyBackup?: ScriptCommand;
  readonly notifyFault?: ScriptCommand;
  readonly notifyStop?: ScriptCommand;
  readonly notify?: ScriptCommand;
}): Pick<VrrpInstanceOptions, 'notifyMaster' | 'notifyBackup' | 'notifyFault' | 'notifyStop' | 'notify'> {
  const out: Record<string, VrrpCommand> = {};
  const set = (key: string, c: ScriptCommand | undefined): void => {
    const v = command(c);
    if (v !== undefined) out[key] = v;
  };
  set('notifyMaster', n.notifyMaster);
  set('notifyBackup', n.notifyBackup);
  set('notifyFault', n.notifyFault);
  set('notifyStop', n.notifyStop);
  set('notify', n.notify);
  return out;
}

function instanceOptions(i: VrrpInstance, config: KeepalivedConfig, unsupported: string[]): VrrpInstanceOptions {
  const where = `vrrp_instance ${i.name} (${i.source.file}: Line ${i.source.line})`;
  if (i.authentication?.authType === 'AH') unsupported.push(`${where}: auth_type AH is not supported by lvs; use PASS`);
  if (i.useVmac !== undefined) unsupported.push(`${where}: use_vmac is not supported by lvs; the interface MAC is used`);
  if (i.virtualIpaddressExcluded.length > 0) {
    unsupported.push(`${where}: virtual_ipaddress_excluded addresses are claimed like virtual_ipaddress ones`);
  }
  if (i.virtualRoutes.length > 0 || i.virtualRules.length > 0) {
    unsupported.push(`${where}: virtual_routes / virtual_rules are not installed by lvs`);
  }
  const g = config.globalDefs;
  return {
    name: i.name,
    interface: i.interface,
    virtualRouterId: i.virtualRouterId,
    priority: i.priority,
    advertInt: i.advertInt / 1000,
    version: i.version,
    state: i.state,
    nopreempt: i.nopreempt,
    preemptDelay: i.preemptDelay / 1000,
    ...(i.authentication?.authType === 'PASS'
      ? { authentication: { authType: 'PASS', authPass: i.authentication.authPass } }
      : {}),
    virtualIpaddress: [...i.virtualIpaddress, ...i.virtualIpaddressExcluded].map((a) => a.address),
    ...(i.mcastSrcIp !== undefined ? { mcastSrcIp: i.mcastSrcIp } : {}),
    ...(i.unicastSrcIp !== undefined ? { unicastSrcIp: i.unicastSrcIp } : {}),
    ...(i.unicastPeers.length > 0 ? { unicastPeer: i.unicastPeers.map((p) => p.address) } : {}),
    garpMasterDelay: i.garpMasterDelay / 1000,
    garpMasterRepeat: i.garpMasterRepeat,
    garpLowerPrioDelay: i.garpLowerPrioDelay / 1000,
    garpLowerPrioRepeat: i.garpLowerPrioRepeat,
    garpMasterRefresh: i.garpMasterRefresh / 1000,
    garpMasterRefreshRepeat: i.garpMasterRefreshRepeat,
    lowerPrioNoAdvert: i.lowerPrioNoAdvert,
    higherPrioSendAdvert: i.higherPrioSendAdvert,
    downTimerAdverts: i.downTimerAdverts,
    skipCheckAdvAddr: i.skipCheckAdvAddr,
    checkUnicastSrc: g.vrrpCheckUnicastSrc,
    trackScript: i.trackScripts.map((t) => ({ name: t.name, weight: t.weight, reverse: t.reverse })),
    trackInterface: i.trackInterfaces.map((t) => ({ name: t.interface, weight: t.weight, reverse: t.reverse })),
    dontTrackPrimary: i.dontTrackPrimary,
    ...notifies(i),
  };
}

/**
 * What a configuration asks of the VRRP speaker and of the director's interfaces, without
 * running anything.
 *
 * @example
 * ```ts
 * const { config } = parseKeepalivedConfig('/etc/keepalived/keepalived.conf');
 * const plan = planKeepalived(config);
 * console.log(plan.interfaces, plan.instances.map((i) => i.name));
 * ```
 */
export function planKeepalived(config: KeepalivedConfig): KeepalivedPlan {
  const unsupported: string[] = [];
  const instances = config.vrrpInstances.map((i) => instanceOptions(i, config, unsupported));
  const syncGroups = config.vrrpSyncGroups.map((g) => ({ name: g.name, group: [...g.group], ...notifies(g) }));
  const tracked = new Set(config.vrrpInstances.flatMap((i) => i.trackScripts.map((t) => t.name)));
  const scripts: Record<string, VrrpScriptOptions> = {};
  for (const s of config.vrrpScripts) {
    if (!tracked.has(s.name)) continue; // keepalived runs only tracked scripts
    scripts[s.name] = {
      script: command(s.script) ?? s.script.argv,
      interval: s.interval / 1000,
      timeout: s.timeout / 1000,
      weight: s.weight,
      reverse: s.weightReverse,
      rise: s.rise,
      fall: s.fall,
      initFail: s.initFail,
    };
  }
  for (const vs of config.virtualServers) {
    if (vs.haSuspend) {
      unsupported.push(
        `virtual_server (${vs.source.file}: Line ${vs.source.line}): ha_suspend is not supported by lvs; its checkers always run`,
      );
    }
  }
  const interfaces = new Set(config.vrrpInstances.map((i) => i.interface));
  const sync = config.globalDefs.lvsSyncDaemon;
  if (sync !== undefined) interfaces.add(sync.interface);
  return { instances, syncGroups, scripts, interfaces: [...interfaces], unsupported };
}

/** `lvs_timeouts`: `ipvsadm --set`, unset values kept. */
function setTimeouts(director: Director, config: KeepalivedConfig): void {
  const t = config.globalDefs.lvsTimeouts;
  if (t === undefined) return;
  const now = director.timeouts();
  director.setTimeouts({ tcp: t.tcp ?? now.tcp, tcpfin: t.tcpfin ?? now.tcpfin, udp: t.udp ?? now.udp });
}

function refOf(s: ServiceOptions): ServiceRef {
  return 'fwmark' in s
    ? { fwmark: s.fwmark, ...(s.family !== undefined ? { family: s.family } : {}) }
    : { ...(s.protocol !== undefined ? { protocol: s.protocol } : {}), address: s.address };
}

function serviceKey(s: ServiceOptions): string {
  return JSON.stringify(refOf(s));
}

function ignore(codes: readonly string[], f: () => unknown): void {
  try {
    f();
  } catch (err) {
    if (!(err instanceof LvsError && codes.includes(err.code))) throw err;
  }
}

function syncOptions(config: KeepalivedConfig, state: 'master' | 'backup'): SyncDaemonOptions | undefined {
  const s = config.globalDefs.lvsSyncDaemon;
  if (s === undefined) return undefined;
  return {
    state,
    mcastInterface: s.interface,
    syncId: s.syncId,
    ...(s.maxlen !== undefined ? { syncMaxlen: s.maxlen } : {}),
    ...(s.group !== undefined ? { mcastGroup: s.group } : {}),
    ...(s.port !== undefined ? { mcastPort: s.port } : {}),
    ...(s.ttl !== undefined ? { mcastTtl: s.ttl } : {}),
  };
}

/**
 * A keepalived configuration running on a director; {@link KeepalivedRun.stop} ends it the way
 * keepalived ends on SIGTERM.
 */
export class KeepalivedRun extends EventEmitter<KeepalivedRunEvents> {
  /** The VRRP speaker, when the configuration has VRRP instances. */
  readonly vrrp: VrrpSpeaker | undefined;
  readonly #director: Director;
  readonly #release: boolean;
  readonly #healthOptions: HealthMonitorOptions;
  #health: HealthMonitor;
  #alerts: KeepalivedAlerts;
  #config: KeepalivedConfig;
  #syncState: 'master' | 'backup' | 'both' | 'none' = 'none';
  #stopped = false;

  /** @internal Use {@link runKeepalived}. */
  constructor(
    director: Director,
    config: KeepalivedConfig,
    health: HealthMonitor,
    vrrp: VrrpSpeaker | undefined,
    release: boolean,
    healthOptions: HealthMonitorOptions,
    alerts: KeepalivedAlerts,
  ) {
    super();
    this.#director = director;
    this.#config = config;
    this.#health = health;
    this.#alerts = alerts;
    this.#listenAlerts(alerts);
    this.vrrp = vrrp;
    this.#release = release;
    this.#healthOptions = healthOptions;
    this.#listen(health);
  }

  /** The health monitor of the virtual servers (a new one after {@link KeepalivedRun.reload}). */
  get health(): HealthMonitor {
    return this.#health;
  }

  // --- SMTP alerts (keepalived's notification_email): their log lines and errors are the run's.
  #listenAlerts(alerts: KeepalivedAlerts): void {
    alerts.on('log', (line) => this.emit('log', line));
    alerts.on('error', (err) => this.#fail(err));
  }

  #listen(health: HealthMonitor): void {
    health.on('up', (e) => this.emit('log', `Adding service [${e.server}] to VS ${e.virtualServer}`));
    health.on('down', (e) => this.emit('log', `Removing service [${e.server}] from VS ${e.virtualServer}`));
    health.on('quorumUp', (e) => this.emit('log', `Gained quorum ${e.weightSum} for VS ${e.virtualServer}`));
    health.on('quorumDown', (e) => this.emit('log', `Lost quorum ${e.weightSum} for VS ${e.virtualServer}`));
    health.on('error', (err) => this.#fail(err));
  }

  /**
   * Applies a new configuration the way keepalived reloads on SIGHUP, without dropping traffic:
   * virtual and real servers that are gone are removed, new ones added, changed ones updated in
   * place; real servers keep their health (a server that was down stays out until a check
   * succeeds); `lvs_timeouts` apply. VRRP instances and the sync daemon keep running as they are:
   * changes to them take effect on restart (reported as a log line).
   *
   * @throws {@link LvsError} what the director refuses for the new rules (checks then resume on
   *   the new configuration as far as it was applied).
   * @example
   * ```ts
   * process.on('SIGHUP', () => void run.reload(parseKeepalivedConfig(file).config));
   * ```
   */
  async reload(next: KeepalivedConfig): Promise<void> {
    if (this.#stopped) throw new LvsError('EINVAL', 'the configuration is not running');
    const vrrpOf = (c: KeepalivedConfig): string => {
      const p = planKeepalived(c);
      return JSON.stringify([p.instances, p.syncGroups, p.scripts, c.globalDefs.lvsSyncDaemon ?? null]);
    };
    if (vrrpOf(next) !== vrrpOf(this.#config)) {
      this.emit('log', 'VRRP or sync daemon configuration changed: it applies when lvsd restarts');
    }
    const old = this.#health;
    const wasDown = new Set(
      old.state().flatMap((vs) => vs.servers.filter((s) => !s.alive).map((s) => `${vs.name}\0${s.address}`)),
    );
    const oldManaged = old.managed();
    await old.stop();
    const health = new HealthMonitor(this.#director, fromKeepalived(next).virtualServers, {
      ...this.#healthOptions,
      initiallyDown: (vs, server) => wasDown.has(`${vs}\0${server}`),
      updateExisting: true,
    });
    const keep = new Map(health.managed().map((m) => [serviceKey(m.service), m]));
    for (const m of oldManaged) {
      const ref = refOf(m.service);
      const now = keep.get(serviceKey(m.service));
      try {
        if (now === undefined) {
          this.#director.deleteService(ref);
          continue;
        }
        this.#director.editService(now.service);
        const gone = m.servers.filter((a) => !now.servers.includes(a));
        // The sorry server goes too: the new monitor puts it back if its quorum needs it.
        if (m.sorryServer !== undefined && !now.servers.includes(m.sorryServer)) gone.push(m.sorryServer);
        for (const address of gone) ignore(['ENOENT', 'ESRCH'], () => this.#director.deleteServer(ref, address));
      } catch (err) {
        if (!(err instanceof LvsError && (err.code === 'ESRCH' || err.code === 'ENOENT'))) throw err;
      }
    }
    setTimeouts(this.#director, next);
    this.#config = next;
    this.#health = health;
    this.#listen(health);
    // --- SMTP alerts: the new global_defs and smtp_alert flags apply from here.
    await this.#alerts.close();
    this.#alerts = new KeepalivedAlerts(next);
    this.#listenAlerts(this.#alerts);
    this.#alerts.watchHealth(health);
    if (this.vrrp !== undefined) this.#alerts.watchVrrp(this.vrrp);
    await health.start();
  }

  /** @internal Starts the sync daemons (both, or the one that suits the tracked instance). */
  startSync(): void {
    const s = this.#config.globalDefs.lvsSyncDaemon;
    if (s === undefined) return;
    if (s.vrrpInstance === undefined) {
      this.#startDaemon('master');
      this.#startDaemon('backup');
      this.#syncState = 'both';
      return;
    }
    let state: string | undefined;
    try {
      state = this.vrrp?.state(s.vrrpInstance);
    } catch {
      state = undefined; // no such instance (the parser reported it): run the backup daemon
    }
    this.#switchSync(state === 'MASTER' ? 'master' : 'backup');
  }

  /** @internal Follows a VRRP transition of the instance `lvs_sync_daemon` names. */
  onVrrpState(change: VrrpStateChange): void {
    const s = this.#config.globalDefs.lvsSyncDaemon;
    if (this.#stopped || s?.vrrpInstance !== change.instance) return;
    this.#switchSync(change.to === 'MASTER' ? 'master' : 'backup');
  }

  #switchSync(to: 'master' | 'backup'): void {
    if (this.#syncState === to) return;
    if (this.#syncState === 'master' || this.#syncState === 'backup') this.#stopDaemon(this.#syncState);
    this.#startDaemon(to);
    this.#syncState = to;
  }

  #startDaemon(state: 'master' | 'backup'): void {
    const opts = syncOptions(this.#config, state);
    if (opts === undefined) return;
    try {
      this.#director.startDaemon(opts);
      this.emit('log', `Starting IPVS ${state} sync daemon on ${opts.mcastInterface} (syncid ${opts.syncId ?? 0})`);
    } catch (err) {
      this.#fail(err);
    }
  }

  #stopDaemon(state: 'master' | 'backup'): void {
    try {
      this.#director.stopDaemon(state);
      this.emit('log', `Stopping IPVS ${state} sync daemon`);
    } catch (err) {
      this.#fail(err);
    }
  }

  #fail(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }

  /**
   * Stops like keepalived on SIGTERM: a MASTER resigns (priority-0 advert) and releases its
   * VIPs, the checkers stop, the rules this configuration made are removed (unless
   * `releaseOnStop: false`), and the sync daemons stop.
   *
   * @example
   * ```ts
   * process.on('SIGTERM', () => void run.stop());
   * ```
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.vrrp?.stop();
    await this.health.stop({ release: this.#release });
    for (const d of this.#director.daemons()) this.#stopDaemon(d.state);
    this.#syncState = 'none';
    await this.#alerts.close(); // SMTP alerts: queued ones are dropped
  }
}

/**
 * Runs a parsed keepalived configuration on a director: sets `lvs_timeouts`, creates the virtual
 * and real servers and starts their health checks, starts the VRRP instances (the director owns
 * a MASTER's VIPs) and the connection-sync daemons.
 *
 * The director must be open on the interfaces the configuration uses (see
 * {@link planKeepalived}, which also lists what lvs leaves out). Configuration errors should be
 * checked first with {@link parseKeepalivedConfig} (`lvsd -f` refuses a file with errors).
 *
 * @throws {@link LvsError} what the director or the VRRP speaker refuses (nothing keeps running then).
 * @example
 * ```ts
 * const { config } = parseKeepalivedConfig('/etc/keepalived/keepalived.conf');
 * const plan = planKeepalived(config);
 * const director = await Director.open({ interfaces: plan.interfaces });
 * const run = await runKeepalived(director, config);
 * run.on('log', (line) => console.log(line));
 * ```
 */
export async function runKeepalived(
  director: Director,
  config: KeepalivedConfig,
  options: KeepalivedRunOptions = {},
): Promise<KeepalivedRun> {
  const plan = planKeepalived(config);
  setTimeouts(director, config);
  if (config.globalDefs.lvsFlush) director.clear();
  const health = new HealthMonitor(director, fromKeepalived(config).virtualServers, options.health ?? {});
  // SMTP alerts: attached before start() so that startup quorum alerts are mailed too.
  const alerts = new KeepalivedAlerts(config);
  alerts.watchHealth(health);
  try {
    await health.start();
  } catch (err) {
    await alerts.close();
    throw err;
  }
  let vrrp: VrrpSpeaker | undefined;
  try {
    if (plan.instances.length > 0) {
      vrrp = director.startVrrp(plan.instances, { syncGroups: plan.syncGroups, scripts: plan.scripts });
    }
  } catch (err) {
    await alerts.close();
    await health.stop({ release: true });
    throw err instanceof LvsError ? err : new LvsError('EINVAL', String(err), { cause: err });
  }
  if (vrrp !== undefined) alerts.watchVrrp(vrrp);
  const run = new KeepalivedRun(
    director,
    config,
    health,
    vrrp,
    options.releaseOnStop ?? true,
    options.health ?? {},
    alerts,
  );
  if (vrrp !== undefined) {
    vrrp.on('state', (change) => run.onVrrpState(change));
    vrrp.on('log', (l) => run.emit('log', l.message));
    vrrp.on('error', (err) => run.emit('error', err));
  }
  run.startSync();
  return run;
}
