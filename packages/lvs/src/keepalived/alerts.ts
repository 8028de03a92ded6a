/**
 * Which keepalived events are mailed and with what words: real servers going up or down (per
 * checker, keepalived's `smtp_alert` default true), quorum gained or lost (`smtp_alert` on the
 * virtual server), VRRP instance and sync-group state changes (`smtp_alert` on the instance or
 * group). Subjects and bodies are keepalived 2.2.7's; the mail itself goes through an
 * {@link SmtpAlerter}.
 * @module
 */
import { EventEmitter } from 'node:events';
import type { CheckEvent, HealthMonitor, QuorumEvent } from '../health/monitor.js';
import type { CheckerSpec } from '../health/types.js';
import type { VrrpSpeaker, VrrpState, VrrpStateChange } from '../vrrp.js';
import { type SmtpAlert, SmtpAlerter, type SmtpAlerterOptions } from './smtp.js';
import type { KeepalivedConfig, VirtualServer } from './types.js';

/** Something keepalived sends a mail about. */
export type KeepalivedAlertEvent =
  | {
      /** A checker of a real server changed state. */
      readonly kind: 'realServer';
      /** The real server as keepalived names it (`[10.0.0.4]:tcp:80`). */
      readonly realServer: string;
      /** Its virtual server as keepalived names it (`[10.0.0.1]:tcp:80`, `FWM 1`). */
      readonly virtualServer: string;
      /** Whether the real server is alive after the change. */
      readonly alive: boolean;
      /** The checker's line, e.g. `=> TCP CHECK failed on service <=` (see {@link checkerAlertBody}). */
      readonly body: string;
    }
  | {
      /** A virtual server gained or lost quorum. */
      readonly kind: 'virtualServer';
      /** The virtual server as keepalived names it. */
      readonly virtualServer: string;
      /** Quorum after the change. */
      readonly quorumUp: boolean;
      /** The quorum line, e.g. `=> Lost quorum 1+0=1 <= 0 <=` (see {@link quorumAlertBody}). */
      readonly body: string;
    }
  | {
      /** A VRRP instance changed state. */
      readonly kind: 'vrrpInstance';
      /** The instance name. */
      readonly instance: string;
      /** The new state. */
      readonly state: VrrpState;
    }
  | {
      /** A VRRP sync group changed state (all its instances are in it). */
      readonly kind: 'vrrpGroup';
      /** The group name. */
      readonly group: string;
      /** The new state. */
      readonly state: VrrpState;
    };

const VRRP_INSTANCE_TEXT: Partial<Record<VrrpState, readonly [string, string]>> = {
  MASTER: ['Entering MASTER state', '=> VRRP Instance is now owning VRRP VIPs <='],
  BACKUP: ['Entering BACKUP state', '=> VRRP Instance is no longer owning VRRP VIPs <='],
  FAULT: ['Entering FAULT state', '=> VRRP Instance is no longer owning VRRP VIPs <='],
  STOP: ['Stopping', '=> VRRP Instance stopping <='],
};

const VRRP_GROUP_TEXT: Partial<Record<VrrpState, readonly [string, string]>> = {
  MASTER: ['Entering MASTER state', '=> All VRRP group instances are now in MASTER state <='],
  BACKUP: ['Entering BACKUP state', '=> All VRRP group instances are now in BACKUP state <='],
  FAULT: ['Entering FAULT state', '=> All VRRP group instances are now in FAULT state <='],
  STOP: ['Stopping', '=> All VRRP group instances are now stopping <='],
};

/**
 * The Subject and body keepalived 2.2.7 mails for an event; undefined for a VRRP state it does
 * not mail (INIT).
 *
 * @example
 * ```ts
 * formatKeepalivedAlert('LVS_DEVEL', { kind: 'vrrpInstance', instance: 'VI_1', state: 'MASTER' });
 * // { subject: '[LVS_DEVEL] VRRP Instance VI_1 - Entering MASTER state',
 * //   body: '=> VRRP Instance is now owning VRRP VIPs <=' }
 * ```
 */
export function formatKeepalivedAlert(routerId: string, event: KeepalivedAlertEvent): SmtpAlert | undefined {
  switch (event.kind) {
    case 'realServer': {
      const state = event.alive ? 'UP' : 'DOWN';
      return {
        subject: `[${routerId}] Realserver ${event.realServer} of virtual server ${event.virtualServer} - ${state}`,
        body: event.body,
      };
    }
    case 'virtualServer':
      return {
        subject: `[${routerId}] Virtualserver ${event.virtualServer} - ${event.quorumUp ? 'UP' : 'DOWN'}`,
        body: event.body,
      };
    case 'vrrpInstance': {
      const text = VRRP_INSTANCE_TEXT[event.state];
      return text && { subject: `[${routerId}] VRRP Instance ${event.instance} - ${text[0]}`, body: text[1] };
    }
    case 'vrrpGroup': {
      const text = VRRP_GROUP_TEXT[event.state];
      return text && { subject: `[${routerId}] VRRP Group ${event.group} - ${text[0]}`, body: text[1] };
    }
  }
}

/**
 * The body keepalived's checkers mail when a checker changes state. `reason` is the failure
 * text SMTP_CHECK includes; MISC_CHECK says `timed out` when its command was killed for time.
 *
 * @example
 * ```ts
 * checkerAlertBody('TCP_CHECK', false); // '=> TCP CHECK failed on service <='
 * ```
 */
export function checkerAlertBody(
  type: CheckerSpec['type'],
  success: boolean,
  reason?: string,
): string {
  switch (type) {
    case 'TCP_CHECK':
      return `=> TCP CHECK ${success ? 'succeed' : 'failed'} on service <=`;
    case 'HTTP_GET':
    case 'SSL_GET':
      return success ? '=> CHECK succeed on service <=' : '=> CHECK failed on service : HTTP request failed <=';
    case 'MISC_CHECK':
      return `=> MISC CHECK ${success ? 'succeeded' : reason === 'timed out' ? 'timed out' : 'failed'} on service <=`;
    case 'SMTP_CHECK':
    case 'JS':
      if (success) return '=> CHECK succeed on service <=';
      return reason ? `=> CHECK failed on service : ${reason} <=` : '=> CHECK failed on service <=';
  }
}

/**
 * The body keepalived mails when a virtual server's quorum changes: the quorum, hysteresis,
 * the threshold crossed and the live weight.
 *
 * @example
 * ```ts
 * quorumAlertBody({ quorumUp: false, init: false, quorum: 2, hysteresis: 0, weightSum: 1 });
 * // '=> Lost quorum 2+0=2 <= 1 <='
 * ```
 */
export function quorumAlertBody(q: {
  /** Quorum after the change. */
  readonly quorumUp: boolean;
  /** At startup (`Starting with quorum ...`). */
  readonly init: boolean;
  /** `quorum`. */
  readonly quorum: number;
  /** `hysteresis`. */
  readonly hysteresis: number;
  /** Sum of the live real servers' weights. */
  readonly weightSum: number;
}): string {
  // keepalived's threshold is quorum - hysteresis while quorum was up (only a loss starts from
  // there), quorum + hysteresis otherwise (a gain, or the startup state).
  const wasUp = !q.quorumUp && !q.init;
  const threshold = q.quorum + (wasUp ? -1 : 1) * q.hysteresis;
  const what = q.quorumUp
    ? q.init
      ? 'Starting with quorum up'
      : 'Gained quorum'
    : q.init
      ? 'Starting with quorum down'
      : 'Lost quorum';
  return `=> ${what} ${q.quorum}+${q.hysteresis}=${threshold} <= ${q.weightSum} <=`;
}

/** keepalived's FMT_VS. */
function fmtVs(vs: VirtualServer): string {
  const k = vs.key;
  if (k.kind === 'fwmark') return `FWM ${k.fwmark}`;
  if (k.kind === 'group') return `[${k.group}]:0`;
  return `[${k.address}]:${vs.protocol.toLowerCase()}:${k.port}`;
}

/** keepalived's FMT_RS (the protocol of a fwmark service is shown as tcp, as in the notify FIFO). */
function fmtRs(vs: VirtualServer, index: number): string {
  const rs = vs.realServers[index];
  if (rs === undefined) return '';
  const proto = vs.key.kind === 'fwmark' ? 'tcp' : vs.protocol.toLowerCase();
  return `[${rs.address}]:${proto}:${rs.port}`;
}

/** The alerter settings of a configuration's `global_defs`. */
function alerterOptions(config: KeepalivedConfig): SmtpAlerterOptions {
  const g = config.globalDefs;
  return {
    ...(g.smtpServer !== undefined ? { server: g.smtpServer } : {}),
    to: g.notificationEmail,
    from: g.notificationEmailFrom,
    heloName: g.smtpHeloName,
    connectTimeout: g.smtpConnectTimeout,
  };
}

/** Options of {@link KeepalivedAlerts}. */
export interface KeepalivedAlertsOptions {
  /** Overrides of the mail settings taken from `global_defs` (e.g. `maxQueue`, `now`). */
  readonly smtp?: Partial<SmtpAlerterOptions>;
}

/** The events of {@link KeepalivedAlerts}. */
export interface KeepalivedAlertsEvents {
  /** A log line of the mailer (SMTP failures, dropped alerts). */
  log: [string];
  /** A failure outside the SMTP dialogue. */
  error: [Error];
}

interface Location {
  readonly vs: VirtualServer;
  readonly vsIndex: number;
  readonly rsIndex: number;
}

interface CheckerSnapshot {
  readonly up: boolean;
  readonly hasRun: boolean;
  readonly alive: boolean;
}

/**
 * Mails the alerts of a running keepalived configuration: attach it to the health monitor
 * (before its `start()`, so startup quorum alerts are seen) and to the VRRP speaker. Nothing is
 * mailed when `notification_email` is empty or `smtp_server` is unset.
 *
 * @example
 * ```ts
 * const alerts = new KeepalivedAlerts(config);
 * alerts.on('log', (line) => console.log(line));
 * alerts.watchHealth(health);
 * await health.start();
 * if (vrrp) alerts.watchVrrp(vrrp);
 * // ...
 * await alerts.close();
 * ```
 */
export class KeepalivedAlerts extends EventEmitter<KeepalivedAlertsEvents> {
  /** The mailer. */
  readonly alerter: SmtpAlerter;
  readonly #config: KeepalivedConfig;
  readonly #noCheckerEmails: boolean;
  readonly #noEmailFaults: boolean;
  readonly #detach: (() => void)[] = [];
  readonly #vrrpStates = new Map<string, VrrpState>();
  readonly #lastInstanceMail = new Map<string, VrrpState>();
  readonly #lastGroupMail = new Map<string, VrrpState>();

  /**
   * Reads the mail settings and the `smtp_alert` flags of a configuration.
   *
   * @example
   * ```ts
   * const alerts = new KeepalivedAlerts(parseKeepalivedConfig('/etc/keepalived/keepalived.conf').config);
   * ```
   */
  constructor(config: KeepalivedConfig, options: KeepalivedAlertsOptions = {}) {
    super();
    this.#config = config;
    this.#noCheckerEmails = config.globalDefs.noCheckerEmails;
    this.#noEmailFaults = config.globalDefs.noEmailFaults;
    this.alerter = new SmtpAlerter({ ...alerterOptions(config), ...options.smtp });
    this.alerter.on('log', (line) => this.emit('log', line));
    this.alerter.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
  }

  /**
   * Mails an event (if mail is configured).
   *
   * @example
   * ```ts
   * alerts.raise({ kind: 'vrrpInstance', instance: 'VI_1', state: 'BACKUP' });
   * ```
   */
  raise(event: KeepalivedAlertEvent): void {
    const alert = formatKeepalivedAlert(this.#config.globalDefs.routerId, event);
    if (alert !== undefined) this.alerter.send(alert);
  }

  /**
   * Follows a health monitor built from this configuration ({@link fromKeepalived} order):
   * checker state changes and quorum changes. Attach before `start()`.
   *
   * @example
   * ```ts
   * alerts.watchHealth(run.health);
   * ```
   */
  watchHealth(health: HealthMonitor): void {
    if (!this.alerter.enabled) return;
    // Quorum events while start() runs (synchronously) are keepalived's "Starting with quorum ...".
    let init = true;
    setImmediate(() => (init = false));
    const onCheck = (e: CheckEvent): void => {
      const at = this.#locate(health, e);
      if (at === undefined || !at.vs.realServers[at.rsIndex]?.smtpAlert) return;
      const before = this.#snapshot(health, e, at);
      if (before === undefined) return;
      // The monitor updates the checker right after emitting `check`, in the same turn.
      queueMicrotask(() => this.#afterCheck(health, e, at, before));
    };
    const onQuorum = (e: QuorumEvent, up: boolean): void => {
      const index = health.state().findIndex((v) => v.name === e.virtualServer);
      const vs = this.#config.virtualServers[index];
      if (vs === undefined || !vs.smtpAlert) return;
      const { quorum, hysteresis } = quorumOf(vs);
      this.raise({
        kind: 'virtualServer',
        virtualServer: fmtVs(vs),
        quorumUp: up,
        body: quorumAlertBody({ quorumUp: up, init, quorum, hysteresis, weightSum: e.weightSum }),
      });
    };
    const onUp = (e: QuorumEvent): void => onQuorum(e, true);
    const onDown = (e: QuorumEvent): void => onQuorum(e, false);
    health.on('check', onCheck);
    health.on('quorumUp', onUp);
    health.on('quorumDown', onDown);
    this.#detach.push(() => {
      health.off('check', onCheck);
      health.off('quorumUp', onUp);
      health.off('quorumDown', onDown);
    });
  }

  /**
   * Follows a VRRP speaker running this configuration's instances: instance and sync-group
   * state changes.
   *
   * @example
   * ```ts
   * if (run.vrrp) alerts.watchVrrp(run.vrrp);
   * ```
   */
  watchVrrp(vrrp: VrrpSpeaker): void {
    if (!this.alerter.enabled) return;
    const onState = (change: VrrpStateChange): void => this.#onVrrpState(change);
    vrrp.on('state', onState);
    this.#detach.push(() => vrrp.off('state', onState));
  }

  /**
   * Stops following events and stops the mailer (queued alerts are dropped).
   *
   * @example
   * ```ts
   * await alerts.close();
   * ```
   */
  async close(): Promise<void> {
    for (const d of this.#detach.splice(0)) d();
    await this.alerter.close();
  }

  /** The configuration's virtual and real server behind a monitor event (same order, by name). */
  #locate(health: HealthMonitor, e: CheckEvent): Location | undefined {
    const state = health.state();
    const vsIndex = state.findIndex((v) => v.name === e.virtualServer);
    const rsIndex = state[vsIndex]?.servers.findIndex((s) => s.address === e.server) ?? -1;
    const vs = this.#config.virtualServers[vsIndex];
    return vs === undefined || rsIndex < 0 ? undefined : { vs, vsIndex, rsIndex };
  }

  #snapshot(health: HealthMonitor, e: CheckEvent, at: Location): CheckerSnapshot | undefined {
    const rs = health.state()[at.vsIndex]?.servers[at.rsIndex];
    const c = rs?.checkers[e.checker];
    return rs && c && { up: c.up, hasRun: c.hasRun, alive: rs.alive };
  }

  /** keepalived's checker epilogs: a mail when a checker flips (and, for MISC_CHECK, its first success). */
  #afterCheck(health: HealthMonitor, e: CheckEvent, at: Location, before: CheckerSnapshot): void {
    const after = this.#snapshot(health, e, at);
    if (after === undefined) return;
    const flipped = before.up !== after.up;
    const miscFirst = e.type === 'MISC_CHECK' && e.success && !before.hasRun;
    if (!flipped && !miscFirst) return;
    if (before.alive === after.alive && this.#noCheckerEmails) return;
    this.raise({
      kind: 'realServer',
      realServer: fmtRs(at.vs, at.rsIndex),
      virtualServer: fmtVs(at.vs),
      alive: after.alive,
      body: checkerAlertBody(e.type, after.up, e.reason),
    });
  }

  #onVrrpState(change: VrrpStateChange): void {
    this.#vrrpStates.set(change.instance, change.to);
    const fault = (s: VrrpState): boolean => s === 'FAULT' && this.#noEmailFaults;
    const inst = this.#config.vrrpInstances.find((i) => i.name === change.instance);
    if (inst?.smtpAlert && !fault(change.to) && this.#lastInstanceMail.get(inst.name) !== change.to) {
      if (VRRP_INSTANCE_TEXT[change.to] !== undefined) {
        this.#lastInstanceMail.set(inst.name, change.to);
        this.raise({ kind: 'vrrpInstance', instance: inst.name, state: change.to });
      }
    }
    // A sync group is in a state once all its instances are.
    for (const g of this.#config.vrrpSyncGroups) {
      if (!g.smtpAlert || !g.group.includes(change.instance)) continue;
      if (!g.group.every((m) => this.#vrrpStates.get(m) === change.to)) continue;
      if (fault(change.to) || this.#lastGroupMail.get(g.name) === change.to) continue;
      if (VRRP_GROUP_TEXT[change.to] === undefined) continue;
      this.#lastGroupMail.set(g.name, change.to);
      this.raise({ kind: 'vrrpGroup', group: g.name, state: change.to });
    }
  }
}

/** keepalived caps quorum at the total weight and keeps hysteresis below quorum. */
function quorumOf(vs: VirtualServer): { quorum: number; hysteresis: number } {
  const total = vs.realServers.reduce((sum, rs) => sum + rs.weight, 0);
  const quorum = vs.quorum > total && total > 0 ? total : vs.quorum;
  const hysteresis = vs.hysteresis >= quorum ? quorum - 1 : vs.hysteresis;
  return { quorum, hysteresis };
}
