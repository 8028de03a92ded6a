/**
 * The {@link HealthMonitor}: runs the checkers of virtual servers and applies keepalived's
 * consequences to a {@link Director}: real servers removed and re-added (or set to weight 0 with
 * inhibit_on_failure), weights changed, quorum with hysteresis, the sorry server swapped in and
 * out, notify scripts run and events emitted.
 * @module
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import * as fs from 'node:fs';
import type { Director } from '../director.js';
import { LvsError } from '../errors.js';
import type { ServerOptions, ServiceOptions } from '../types.js';
import { type HealthClock, systemClock, type TimerHandle } from './clock.js';
import {
  destAddress,
  type ResolvedChecker,
  type ResolvedServer,
  type ResolvedSorry,
  type ResolvedVirtual,
  resolveVirtual,
  serverOptions,
  serviceRef,
} from './config.js';
import {
  type CheckerCounters,
  currentUrl,
  type HttpCounters,
  httpResult,
  initialCounters,
  initialHttpCounters,
  miscEpilog,
  tcpEpilog,
} from './epilog.js';
import { httpCheck } from './http.js';
import { runCommand } from './misc.js';
import { smtpCheck } from './smtp.js';
import { CheckFailure, type ConnectParams, tcpCheck } from './tcp.js';
import type { CheckerSpec, VirtualServerHealth } from './types.js';

/** Options of a {@link HealthMonitor}. */
export interface HealthMonitorOptions {
  /** Time source; default the real clock. Use a {@link ManualClock} to test timing. */
  readonly clock?: HealthClock;
  /** Random numbers in [0, 1) for the warmup spread; default `Math.random`. */
  readonly random?: () => number;
  /**
   * A file or FIFO that receives keepalived's LVS notify lines (`lvs_notify_fifo`):
   * `RS [ip]:tcp:port [vip]:tcp:vport UP|DOWN` and `VS [vip]:tcp:vport UP|DOWN`.
   */
  readonly notifyFifo?: string;
  /**
   * Real servers to start as failed (their checkers must succeed first, as with `alpha`), by
   * virtual-server name and configured address: what a reload carries over from the monitor it
   * replaces ({@link HealthMonitor.state}).
   */
  readonly initiallyDown?: (virtualServer: string, server: string) => boolean;
  /**
   * Adding a server that is already in the director updates it (weight, method, thresholds)
   * instead of leaving it as it is; for a monitor taking over a director's rules on reload.
   */
  readonly updateExisting?: boolean;
}

/** A service and the destinations a {@link HealthMonitor} may put into it. */
export interface ManagedService {
  /** The service with its settings (scheduler, persistence, …). */
  readonly service: ServiceOptions;
  /** Real-server addresses as the director lists them. */
  readonly servers: readonly string[];
  /** The sorry server's address, when one is configured. */
  readonly sorryServer?: string;
}

/** A real server changed state (fires when keepalived would run notify_up / notify_down). */
export interface ServerEvent {
  /** The virtual server's name. */
  readonly virtualServer: string;
  /** The real server's address as configured. */
  readonly server: string;
  /** Its effective weight. */
  readonly weight: number;
}

/** A virtual server gained or lost quorum. */
export interface QuorumEvent {
  /** The virtual server's name. */
  readonly virtualServer: string;
  /** Sum of the weights of the live real servers. */
  readonly weightSum: number;
  /** True while the sorry server is serving. */
  readonly sorryServer: boolean;
}

/** A real server's effective weight changed (misc_dynamic or a JS check returning a number). */
export interface WeightEvent {
  /** The virtual server's name. */
  readonly virtualServer: string;
  /** The real server's address as configured. */
  readonly server: string;
  /** Weight before. */
  readonly from: number;
  /** Weight now. */
  readonly to: number;
}

/** One check attempt finished. */
export interface CheckEvent {
  /** The virtual server's name. */
  readonly virtualServer: string;
  /** The real server's address as configured. */
  readonly server: string;
  /** Index of the checker in the real server's list. */
  readonly checker: number;
  /** Checker kind. */
  readonly type: CheckerSpec['type'];
  /** Whether the attempt succeeded. */
  readonly success: boolean;
  /** Why it failed (or the exit code of a MISC_CHECK). */
  readonly reason?: string;
}

/** The events of a {@link HealthMonitor}, with their arguments. */
export interface HealthMonitorEvents {
  /** A real server came up. */
  up: [ServerEvent];
  /** A real server went down. */
  down: [ServerEvent];
  /** A virtual server gained quorum. */
  quorumUp: [QuorumEvent];
  /** A virtual server lost quorum. */
  quorumDown: [QuorumEvent];
  /** A weight changed. */
  weight: [WeightEvent];
  /** A check attempt finished. */
  check: [CheckEvent];
  /** Something failed outside the checks (a director call, a notify script); emitted only when listened to. */
  error: [Error];
}

/** A checker's current state. */
export interface CheckerState {
  /** Checker kind. */
  readonly type: CheckerSpec['type'];
  /** Up (or, before the first result, assumed up unless alpha). */
  readonly up: boolean;
  /** At least one result has been processed. */
  readonly hasRun: boolean;
}

/** A real server's current state. */
export interface ServerState {
  /** Address as configured. */
  readonly address: string;
  /** Alive: every checker up. */
  readonly alive: boolean;
  /** Effective weight. */
  readonly weight: number;
  /** Present in the director (alive, or kept at weight 0 by inhibit_on_failure). */
  readonly inPool: boolean;
  /** Checkers currently failed. */
  readonly failedCheckers: number;
  /** Per-checker state. */
  readonly checkers: readonly CheckerState[];
}

/** A virtual server's current state. */
export interface VirtualServerState {
  /** Name. */
  readonly name: string;
  /** Quorum up. */
  readonly quorumUp: boolean;
  /** Sum of the weights of the live real servers. */
  readonly weightSum: number;
  /** The sorry server is serving. */
  readonly sorryServerActive: boolean;
  /** Real servers. */
  readonly servers: readonly ServerState[];
}

/** Options of {@link HealthMonitor.stop}. */
export interface StopOptions {
  /**
   * Remove the real servers (even inhibited ones) and the sorry server, then the services, as
   * keepalived does on shutdown; with `omega`, run notify_down for live servers and quorum_down.
   * Default false: leave the director as it is (keepalived's `--dont-release-ipvs`).
   */
  readonly release?: boolean;
}

interface Sorry extends ResolvedSorry {
  alive: boolean;
  set: boolean;
  failed: boolean;
}

interface Server extends ResolvedServer {
  readonly vs: Virtual;
  effectiveWeight: number;
  alive: boolean;
  set: boolean;
  numFailed: number;
  readonly runs: Run[];
}

interface Virtual extends ResolvedVirtual {
  quorumUp: boolean;
  readonly sorryRt: Sorry | undefined;
  readonly rs: Server[];
}

interface Run {
  readonly rs: Server;
  readonly cfg: ResolvedChecker;
  readonly c: CheckerCounters | HttpCounters;
  timer: TimerHandle | undefined;
  lastExit: number;
  lastWeight: number | undefined;
}

const WEIGHT_MAX = 65535;
const BOOTSTRAP_MS = 1_000;
const STOP_SCRIPT_MS = 1_000;

/** keepalived's `real_weight`: an effective weight clamped to what IPVS accepts. */
function realWeight(w: number): number {
  return w <= 0 ? 0 : w > WEIGHT_MAX ? WEIGHT_MAX : w;
}

function codeOf(err: unknown): string | undefined {
  return err instanceof LvsError ? err.code : undefined;
}

/**
 * Health-checks real servers with keepalived's semantics and keeps a {@link Director} in step.
 *
 * At {@link HealthMonitor.start} every service is created (existing ones are kept) and every
 * real server added, except those with alpha checkers (added at weight 0 with
 * inhibit_on_failure). Each checker first runs 1 s + random(0..warmup) later, then every
 * delayLoop. A server that is up goes down after retry+1 consecutive failures (the first failure
 * at startup is enough), and comes back after one success; with several checkers it is down
 * while any of them is.
 *
 * @example
 * ```ts
 * import { Director, HealthMonitor } from 'lvs';
 *
 * const director = await Director.open();
 * const monitor = new HealthMonitor(director, [
 *   {
 *     service: { protocol: 'tcp', address: '10.10.36.11:80', scheduler: 'rr' },
 *     method: 'route',
 *     delayLoop: 3,
 *     realServers: [
 *       { address: '10.10.36.4:80', checkers: [{ type: 'TCP_CHECK', connectTimeout: 2 }] },
 *       { address: '10.10.36.7:80', checkers: [{ type: 'HTTP_GET', urls: [{ path: '/health' }] }] },
 *     ],
 *   },
 * ]);
 * monitor.on('down', (e) => console.log(`${e.server} is down`));
 * await monitor.start();
 * // ...
 * await monitor.stop({ release: true });
 * ```
 */
export class HealthMonitor extends EventEmitter<HealthMonitorEvents> implements AsyncDisposable {
  readonly #director: Director;
  readonly #clock: HealthClock;
  readonly #random: () => number;
  readonly #fifoPath: string | undefined;
  readonly #updateExisting: boolean;
  readonly #vss: Virtual[];
  readonly #attempts = new Set<AbortController>();
  readonly #inflight = new Set<Promise<void>>();
  #fifo: number | undefined;
  #state: 'new' | 'running' | 'stopped' = 'new';

  /**
   * Validates the specs; nothing runs until {@link HealthMonitor.start}.
   *
   * @throws {@link LvsError} `EINVAL` naming the virtual server, real server or checker at fault.
   * @example
   * ```ts
   * const monitor = new HealthMonitor(director, [vs], { clock: new ManualClock(), random: () => 0 });
   * ```
   */
  constructor(director: Director, virtualServers: readonly VirtualServerHealth[], options: HealthMonitorOptions = {}) {
    super();
    this.#director = director;
    this.#clock = options.clock ?? systemClock;
    this.#random = options.random ?? Math.random;
    this.#fifoPath = options.notifyFifo;
    this.#updateExisting = options.updateExisting ?? false;
    const down = options.initiallyDown;
    this.#vss = virtualServers.map((spec) => {
      const r = resolveVirtual(spec);
      const vs: Virtual = {
        ...r,
        quorumUp: false,
        sorryRt: r.sorry === undefined ? undefined : { ...r.sorry, alive: false, set: false, failed: false },
        rs: [],
      };
      for (const s of r.servers) {
        const rs: Server = { ...s, vs, effectiveWeight: s.weight, alive: true, set: false, numFailed: 0, runs: [] };
        const startDown = down?.(vs.name, s.name) ?? false;
        for (const cfg of s.checkers) {
          const alpha = cfg.alpha || startDown;
          const c =
            cfg.spec.type === 'HTTP_GET' || cfg.spec.type === 'SSL_GET'
              ? initialHttpCounters(alpha, cfg.timing, cfg.probes.length, cfg.spec.fastRecovery ?? false)
              : initialCounters(alpha, cfg.timing);
          rs.runs.push({ rs, cfg, c, timer: undefined, lastExit: 0, lastWeight: undefined });
        }
        vs.rs.push(rs);
      }
      return vs;
    });
  }

  /**
   * Creates the services and real servers in the director and starts checking.
   *
   * @throws {@link LvsError} `EINVAL` when already started, or what the director refuses.
   * @example
   * ```ts
   * await monitor.start();
   * ```
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') throw new LvsError('EINVAL', 'the health monitor was already started');
    this.#state = 'running';
    if (this.#fifoPath !== undefined) this.#openFifo(this.#fifoPath);
    for (const vs of this.#vss) {
      for (const svc of vs.services) {
        try {
          this.#director.addService(svc);
        } catch (err) {
          if (codeOf(err) !== 'EEXIST') throw err;
        }
      }
      // Alpha checkers start failed (their counters say so), taking their server out.
      for (const rs of vs.rs) {
        rs.numFailed = rs.runs.filter((run) => !run.c.isUp).length;
        rs.alive = rs.numFailed === 0;
      }
      vs.quorumUp = this.#weightSum(vs) >= vs.quorum + vs.hysteresis;
      this.#initServers(vs);
      this.#updateQuorum(vs, true);
      const sorry = vs.sorryRt;
      if (sorry?.inhibit && !sorry.set) {
        sorry.failed = true; // adds it at weight 0
        this.#ipvs('add', vs, sorry);
        sorry.failed = false;
      }
    }
    for (const vs of this.#vss) {
      for (const rs of vs.rs) {
        for (const run of rs.runs) this.#schedule(run, BOOTSTRAP_MS + this.#random() * run.cfg.warmup);
      }
    }
    await Promise.resolve();
  }

  /**
   * Stops checking; running checks are aborted (MISC_CHECK commands killed). With
   * `{ release: true }` the real servers and services are removed as keepalived does at shutdown.
   *
   * @example
   * ```ts
   * await monitor.stop();                  // leave the director as it is
   * await monitor.stop({ release: true }); // remove what the monitor configured
   * ```
   */
  async stop(options: StopOptions = {}): Promise<void> {
    if (this.#state !== 'running') {
      this.#state = 'stopped';
      return;
    }
    this.#state = 'stopped';
    for (const vs of this.#vss) {
      for (const rs of vs.rs) for (const run of rs.runs) this.#cancel(run);
    }
    for (const ac of this.#attempts) ac.abort();
    await Promise.allSettled([...this.#inflight]);
    if (options.release) {
      const scripts: Promise<void>[] = [];
      for (const vs of this.#vss) scripts.push(...this.#release(vs));
      await Promise.allSettled(scripts);
    }
    if (this.#fifo !== undefined) {
      fs.closeSync(this.#fifo);
      this.#fifo = undefined;
    }
  }

  /** Same as `stop()`, for `await using monitor = …`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /**
   * The services and destinations this monitor manages (whether or not they are in the director
   * now): what a reload compares with the next configuration's.
   *
   * @example
   * ```ts
   * for (const m of monitor.managed()) console.log(m.service, m.servers);
   * ```
   */
  managed(): ManagedService[] {
    return this.#vss.flatMap((vs) =>
      vs.services.map((svc) => ({
        service: svc,
        servers: vs.rs.map((rs) => this.#serverOptions(svc, rs, 0).address),
        ...(vs.sorryRt === undefined ? {} : { sorryServer: this.#serverOptions(svc, vs.sorryRt, 0).address }),
      })),
    );
  }

  /**
   * The current state of every virtual server and real server.
   *
   * @example
   * ```ts
   * for (const vs of monitor.state()) console.log(vs.name, vs.quorumUp, vs.servers.map((s) => [s.address, s.alive]));
   * ```
   */
  state(): VirtualServerState[] {
    return this.#vss.map((vs) => ({
      name: vs.name,
      quorumUp: vs.quorumUp,
      weightSum: this.#weightSum(vs),
      sorryServerActive: vs.sorryRt?.alive ?? false,
      servers: vs.rs.map((rs) => ({
        address: rs.name,
        alive: rs.alive,
        weight: rs.effectiveWeight,
        inPool: rs.set,
        failedCheckers: rs.numFailed,
        checkers: rs.runs.map((r) => ({ type: r.cfg.spec.type, up: r.c.isUp, hasRun: r.c.hasRun })),
      })),
    }));
  }

  // ---- IPVS side (keepalived's ipwrapper.c / ipvswrapper.c) ----

  #error(err: unknown): void {
    if (this.listenerCount('error') > 0) this.emit('error', err instanceof Error ? err : new Error(String(err)));
  }

  #weightSum(vs: Virtual): number {
    return vs.rs.reduce((sum, rs) => sum + (rs.alive ? realWeight(rs.effectiveWeight) : 0), 0);
  }

  #serverOptions(svc: ServiceOptions, target: Server | Sorry, weight: number): ServerOptions {
    if ('runs' in target) return serverOptions(svc, target, weight);
    return { address: destAddress(svc, target.host, target.port, target.method), method: target.method, weight };
  }

  /**
   * keepalived's `ipvs_cmd` for destinations: inhibited servers are edited to weight 0 instead of
   * deleted and edited back instead of added; an add of a failed inhibited server uses weight 0.
   * EEXIST on add and ENOENT on delete count as success; an edit that finds nothing adds.
   */
  #ipvs(cmd: 'add' | 'del' | 'edit', vs: Virtual, t: Server | Sorry, forceDelete = false): boolean {
    const failed = 'runs' in t ? t.numFailed > 0 : t.failed;
    let weight = realWeight('runs' in t ? t.effectiveWeight : t.weight);
    if (cmd === 'del' && t.inhibit && !forceDelete) {
      cmd = 'edit';
      weight = 0;
    } else if (cmd === 'add' && t.inhibit && t.set) cmd = 'edit';
    else if (cmd === 'add' && !t.set) {
      t.set = true;
      if (t.inhibit && failed) weight = 0;
    } else if (cmd === 'del' && t.set) t.set = false;

    let ok = true;
    for (const svc of vs.services) {
      const ref = serviceRef(svc);
      const opts = this.#serverOptions(svc, t, weight);
      try {
        if (cmd === 'add') this.#director.addServer(ref, opts);
        else if (cmd === 'del') this.#director.deleteServer(ref, opts.address);
        else {
          try {
            this.#director.editServer(ref, opts);
          } catch (err) {
            if (codeOf(err) !== 'ENOENT') throw err;
            this.#director.addServer(ref, opts);
          }
        }
      } catch (err) {
        const code = codeOf(err);
        if (cmd === 'add' && code === 'EEXIST' && this.#updateExisting) {
          try {
            this.#director.editServer(ref, opts);
            continue;
          } catch (e) {
            err = e;
          }
        } else if ((cmd === 'add' && code === 'EEXIST') || (cmd === 'del' && code === 'ENOENT')) continue;
        ok = false;
        this.#error(err);
      }
    }
    return ok;
  }

  /** init_service_rs: add live servers; inhibited ones are added even when failed (weight 0). */
  #initServers(vs: Virtual): void {
    for (const rs of vs.rs) {
      if (rs.numFailed === 0 || (rs.inhibit && !rs.set)) {
        this.#ipvs('add', vs, rs);
        if (rs.numFailed === 0) rs.alive = true;
      }
    }
  }

  /** perform_quorum_state: add or remove every live server. */
  #quorumServers(vs: Virtual, add: boolean): void {
    for (const rs of vs.rs) if (rs.alive) this.#ipvs(add ? 'add' : 'del', vs, rs);
  }

  /** update_quorum_state. */
  #updateQuorum(vs: Virtual, init: boolean): void {
    const sum = this.#weightSum(vs);
    const threshold = vs.quorum + (vs.quorumUp ? -1 : 1) * vs.hysteresis;
    const sorry = vs.sorryRt;
    if (!vs.quorumUp && sum >= threshold) {
      vs.quorumUp = true;
      if (sorry?.alive) {
        this.#ipvs('del', vs, sorry);
        sorry.alive = false;
        this.#quorumServers(vs, true);
      }
      this.#vsNotifies(vs, sum);
    } else if ((vs.quorumUp && (sum === 0 || sum < threshold)) || (init && !vs.quorumUp && sorry && !sorry.alive)) {
      vs.quorumUp = false;
      if (sorry && !sorry.alive) {
        this.#quorumServers(vs, false);
        this.#ipvs('add', vs, sorry);
        sorry.alive = true;
      }
      this.#vsNotifies(vs, sum);
    }
  }

  /** perform_svr_state: IPVS changes only while quorum is up or no sorry server serves. */
  #performServerState(alive: boolean, rs: Server): boolean {
    const vs = rs.vs;
    if (rs.alive === alive) return true;
    if (vs.quorumUp || !vs.sorryRt?.alive) {
      if (!this.#ipvs(alive ? 'add' : 'del', vs, rs)) return false;
    }
    rs.alive = alive;
    this.#rsNotifies(rs);
    this.#updateQuorum(vs, false);
    return true;
  }

  /** set_checker_state: keeps the server's failed-checker count. */
  #setCheckerState(run: Run, up: boolean): void {
    if (run.c.isUp === up) return;
    run.c.isUp = up;
    if (!up) run.rs.numFailed++;
    else if (run.rs.numFailed > 0) run.rs.numFailed--;
  }

  /** update_svr_checker_state: the first checker down removes the server, the last one up restores it. */
  #report(run: Run, alive: boolean): void {
    if (run.c.isUp === alive) {
      if (!run.c.hasRun) {
        if (run.cfg.alpha || !alive) this.#rsNotifies(run.rs);
        run.c.hasRun = true;
      }
      return;
    }
    run.c.hasRun = true;
    if (alive) {
      if (run.rs.numFailed <= 1 && !this.#performServerState(true, run.rs)) return;
    } else if (run.rs.numFailed === 0 && !this.#performServerState(false, run.rs)) return;
    this.#setCheckerState(run, alive);
  }

  /** update_svr_wgt. */
  #setWeight(rs: Server, weight: number): void {
    const vs = rs.vs;
    const from = realWeight(rs.effectiveWeight);
    const to = realWeight(weight);
    rs.effectiveWeight = weight;
    if (from === to) return;
    this.emit('weight', { virtualServer: vs.name, server: rs.name, from, to });
    if (rs.set && rs.alive && (vs.quorumUp || !vs.sorryRt?.alive)) this.#ipvs('edit', vs, rs);
    this.#updateQuorum(vs, false);
  }

  /** Shutdown: clear_service_vs with stopping set. */
  #release(vs: Virtual): Promise<void>[] {
    const scripts: Promise<void>[] = [];
    const sorry = vs.sorryRt;
    if (sorry?.set) {
      this.#ipvs('del', vs, sorry, true);
      sorry.alive = false;
    }
    for (const rs of vs.rs) {
      if (!rs.set) continue;
      this.#ipvs('del', vs, rs, true);
      if (!rs.alive) continue;
      rs.alive = false;
      if (vs.omega) scripts.push(...this.#rsNotifies(rs, true));
    }
    vs.quorumUp = false;
    if (vs.omega) scripts.push(...this.#vsNotifies(vs, 0, true));
    for (const svc of vs.services) {
      try {
        this.#director.deleteService(serviceRef(svc));
      } catch (err) {
        if (codeOf(err) !== 'ESRCH') this.#error(err);
      }
    }
    return scripts;
  }

  // ---- notifications ----

  #openFifo(path: string): void {
    try {
      const st = fs.statSync(path, { throwIfNoEntry: false });
      // O_RDWR on a FIFO does not wait for a reader; O_NONBLOCK keeps a full FIFO from stalling us.
      this.#fifo = st?.isFIFO()
        ? fs.openSync(path, fs.constants.O_RDWR | fs.constants.O_NONBLOCK)
        : fs.openSync(path, 'a');
    } catch (err) {
      this.#error(err);
    }
  }

  #fifoLine(line: string): void {
    if (this.#fifo === undefined) return;
    try {
      fs.writeSync(this.#fifo, `${line}\n`);
    } catch (err) {
      this.#error(err);
    }
  }

  #fmtVs(vs: Virtual): string {
    const svc = vs.services[0] as ServiceOptions;
    if ('fwmark' in svc) return `FWM ${svc.fwmark}`;
    const { host, port } = splitHostPortLoose(svc.address);
    return `[${host}]:${svc.protocol ?? 'tcp'}:${port}`;
  }

  #fmtRs(rs: Server): string {
    const svc = rs.vs.services[0] as ServiceOptions;
    const proto = 'fwmark' in svc ? 'tcp' : (svc.protocol ?? 'tcp');
    const { port } = splitHostPortLoose(destAddress(svc, rs.host, rs.port, rs.method));
    return `[${rs.host}]:${proto}:${port}`;
  }

  /** do_rs_notifies: notify_up/notify_down, the FIFO line, the event. */
  #rsNotifies(rs: Server, stopping = false): Promise<void>[] {
    const script = rs.alive ? rs.notifyUp : rs.notifyDown;
    const waits = script ? [this.#runScript(script, stopping)] : [];
    this.#fifoLine(`RS ${this.#fmtRs(rs)} ${this.#fmtVs(rs.vs)} ${rs.alive ? 'UP' : 'DOWN'}`);
    this.emit(rs.alive ? 'up' : 'down', {
      virtualServer: rs.vs.name,
      server: rs.name,
      weight: realWeight(rs.effectiveWeight),
    });
    return waits;
  }

  /** do_vs_notifies: quorum_up/quorum_down, the FIFO line, the event. */
  #vsNotifies(vs: Virtual, sum: number, stopping = false): Promise<void>[] {
    const script = vs.quorumUp ? vs.quorumUpScript : vs.quorumDownScript;
    const waits = script ? [this.#runScript(script, stopping)] : [];
    this.#fifoLine(`VS ${this.#fmtVs(vs)} ${vs.quorumUp ? 'UP' : 'DOWN'}`);
    this.emit(vs.quorumUp ? 'quorumUp' : 'quorumDown', {
      virtualServer: vs.name,
      weightSum: sum,
      sorryServer: vs.sorryRt?.alive ?? false,
    });
    return waits;
  }

  /** Starts a notify script (no shell). At shutdown it gets 1 s, as keepalived gives it. */
  #runScript(argv: readonly string[], stopping: boolean): Promise<void> {
    const [file, ...args] = argv as [string, ...string[]];
    return new Promise((resolve) => {
      const child = spawn(file, args, { stdio: 'ignore', detached: true });
      child.once('error', (err) => {
        this.#error(new LvsError('ENOENT', `notify script ${file}: ${err.message}`, { cause: err }));
        resolve();
      });
      if (!stopping) {
        child.unref();
        resolve();
        return;
      }
      const t = setTimeout(() => {
        if (child.pid !== undefined) {
          try {
            process.kill(-child.pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      }, STOP_SCRIPT_MS);
      child.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  // ---- scheduling and attempts ----

  #schedule(run: Run, ms: number): void {
    if (this.#state !== 'running') return;
    run.timer = this.#clock.setTimer(() => {
      run.timer = undefined;
      const p = this.#attempt(run).catch((err: unknown) => this.#error(err));
      this.#inflight.add(p);
      void p.finally(() => this.#inflight.delete(p));
    }, ms);
  }

  #cancel(run: Run): void {
    if (run.timer !== undefined) this.#clock.clearTimer(run.timer);
    run.timer = undefined;
  }

  #connectParams(run: Run, signal: AbortSignal): ConnectParams {
    const p: { -readonly [K in keyof ConnectParams]: ConnectParams[K] } = {
      host: run.cfg.host,
      port: run.cfg.port,
      timeoutMs: run.cfg.connectTimeout,
      clock: this.#clock,
      signal,
    };
    if (run.cfg.bindto !== undefined) p.bindto = run.cfg.bindto;
    if (run.cfg.bindPort !== undefined) p.bindPort = run.cfg.bindPort;
    return p;
  }

  #emitCheck(run: Run, success: boolean, reason?: string): void {
    const e: { -readonly [K in keyof CheckEvent]: CheckEvent[K] } = {
      virtualServer: run.rs.vs.name,
      server: run.rs.name,
      checker: run.cfg.index,
      type: run.cfg.spec.type,
      success,
    };
    if (reason !== undefined) e.reason = reason;
    this.emit('check', e);
  }

  async #attempt(run: Run): Promise<void> {
    const ac = new AbortController();
    this.#attempts.add(ac);
    const started = this.#clock.now();
    const report = (alive: boolean): void => this.#report(run, alive);
    try {
      const spec = run.cfg.spec;
      if (spec.type === 'MISC_CHECK') {
        const out = await runCommand(run.cfg.argv, run.cfg.miscTimeout, this.#clock, ac.signal);
        if (this.#state !== 'running') return;
        let success = false;
        let reason: string;
        if (out.kind === 'exit') {
          const s = out.code;
          reason = `exit ${s}`;
          if (s === 0 || (spec.dynamic && s >= 2 && s <= 255)) {
            success = true;
            if (s !== run.lastExit) {
              this.#setWeight(run.rs, s >= 2 ? s - 2 : run.rs.weight);
              run.lastExit = s;
            }
          } else if ((run.c.isUp || !run.c.hasRun) && run.c.retryIt >= run.c.retry) run.lastExit = s;
        } else if (out.kind === 'signal') reason = out.timedOut ? 'timed out' : `killed by ${out.signal}`;
        else {
          reason = out.message;
          this.#error(new LvsError('ENOENT', `MISC_CHECK ${run.cfg.argv[0] ?? ''}: ${out.message}`));
        }
        this.#emitCheck(run, success, reason);
        const delay = miscEpilog(run.c, success, report);
        this.#schedule(run, Math.max(0, started + delay - this.#clock.now()));
        return;
      }

      let success = true;
      let reason: string | undefined;
      try {
        await this.#probe(run, ac.signal);
      } catch (err) {
        success = false;
        reason = err instanceof Error ? err.message : String(err);
      }
      if (this.#state !== 'running') return;
      this.#emitCheck(run, success, reason);
      const delay =
        spec.type === 'HTTP_GET' || spec.type === 'SSL_GET'
          ? httpResult(run.c as HttpCounters, success, report)
          : tcpEpilog(run.c, success, report);
      this.#schedule(run, delay);
    } finally {
      this.#attempts.delete(ac);
    }
  }

  /** Runs one network or JS attempt; throws when it fails. */
  async #probe(run: Run, signal: AbortSignal): Promise<void> {
    const spec = run.cfg.spec;
    const p = this.#connectParams(run, signal);
    switch (spec.type) {
      case 'TCP_CHECK':
        return tcpCheck(p);
      case 'SMTP_CHECK':
        return smtpCheck(p, spec.heloName);
      case 'HTTP_GET':
      case 'SSL_GET': {
        const probe = run.cfg.probes[currentUrl(run.c as HttpCounters)];
        if (probe === undefined) throw new CheckFailure('no url');
        await httpCheck(p, probe);
        return;
      }
      case 'JS':
        return this.#jsCheck(run, spec.check, signal);
      case 'MISC_CHECK':
        throw new CheckFailure('not a network check');
    }
  }

  /** A JS check: bounded by connectTimeout; a number is success with that weight. */
  async #jsCheck(
    run: Run,
    check: (t: Parameters<Extract<CheckerSpec, { type: 'JS' }>['check']>[0]) => unknown,
    outer: AbortSignal,
  ): Promise<void> {
    const ac = new AbortController();
    const onAbort = (): void => ac.abort();
    outer.addEventListener('abort', onAbort, { once: true });
    let timer: TimerHandle | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = this.#clock.setTimer(() => {
          ac.abort();
          reject(new CheckFailure('check timed out'));
        }, run.cfg.connectTimeout);
      });
      const target = { host: run.cfg.host, port: run.cfg.port, server: run.rs.name, signal: ac.signal };
      const result = await Promise.race([Promise.resolve().then(() => check(target)), timeout]);
      if (typeof result === 'number') {
        if (!Number.isInteger(result) || result < 0) throw new CheckFailure(`check returned weight ${result}`);
        if (result !== run.lastWeight) this.#setWeight(run.rs, result);
        run.lastWeight = result;
        return;
      }
      if (result !== true) throw new CheckFailure('check returned false');
      if (run.lastWeight !== undefined) {
        this.#setWeight(run.rs, run.rs.weight);
        run.lastWeight = undefined;
      }
    } finally {
      if (timer !== undefined) this.#clock.clearTimer(timer);
      outer.removeEventListener('abort', onAbort);
    }
  }
}

/** Host and port of an address the config layer already validated. */
function splitHostPortLoose(text: string): { host: string; port: number } {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(text);
  if (v6) return { host: v6[1] as string, port: Number(v6[2] ?? 0) };
  const m = /^([^:]+):(\d+)$/.exec(text);
  if (m) return { host: m[1] as string, port: Number(m[2]) };
  return { host: text, port: 0 };
}

