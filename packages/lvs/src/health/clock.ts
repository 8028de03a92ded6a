/**
 * Time for the health monitor: a clock with timers, real ({@link systemClock}) or driven by hand
 * ({@link ManualClock}) so timing rules can be tested deterministically.
 * @module
 */

/** An opaque handle of a scheduled timer. */
export interface TimerHandle {
  /** Brand; handles come only from a {@link HealthClock}. */
  readonly __timer: true;
}

/** Where the monitor gets time and timers from. */
export interface HealthClock {
  /** Milliseconds on a monotonic scale. */
  now(): number;
  /** Calls `fn` once after `ms` milliseconds. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  /** Cancels a timer that has not fired; cancelling twice is harmless. */
  clearTimer(handle: TimerHandle): void;
}

interface SystemHandle extends TimerHandle {
  readonly timeout: NodeJS.Timeout;
}

/**
 * The real clock: `performance.now()` and Node timers.
 *
 * @example
 * ```ts
 * const monitor = new HealthMonitor(director, [vs], { clock: systemClock });
 * ```
 */
export const systemClock: HealthClock = {
  now: () => performance.now(),
  setTimer(fn, ms) {
    return { __timer: true, timeout: setTimeout(fn, Math.max(0, ms)) } as SystemHandle;
  },
  clearTimer(handle) {
    clearTimeout((handle as SystemHandle).timeout);
  },
};

interface ManualTimer extends TimerHandle {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** Lets promise chains started by a timer run to their next wait (several rounds of I/O callbacks). */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}

/**
 * A clock that stands still until {@link ManualClock.advance} moves it. Timers fire in due order,
 * and after each one the work it started (for example a check function) is allowed to settle,
 * so a test can step through hours of health checking in milliseconds.
 *
 * @example
 * ```ts
 * const clock = new ManualClock();
 * const monitor = new HealthMonitor(director, [vs], { clock, random: () => 0 });
 * await monitor.start();
 * await clock.advance(1_000); // the first checks run
 * ```
 */
export class ManualClock implements HealthClock {
  #now = 0;
  #seq = 0;
  #timers = new Set<ManualTimer>();

  /** Milliseconds since the clock was made (plus any start given). */
  now(): number {
    return this.#now;
  }

  /** Schedules `fn` at now + ms. */
  setTimer(fn: () => void, ms: number): TimerHandle {
    const timer: ManualTimer = { __timer: true, due: this.#now + Math.max(0, ms), seq: this.#seq++, fn };
    this.#timers.add(timer);
    return timer;
  }

  /** Cancels a timer. */
  clearTimer(handle: TimerHandle): void {
    this.#timers.delete(handle as ManualTimer);
  }

  /** Number of pending timers. */
  get pending(): number {
    return this.#timers.size;
  }

  /**
   * Moves the clock forward by `ms`, firing every timer that falls due on the way (in order of
   * due time, then of scheduling) and letting the work each starts settle.
   */
  async advance(ms: number): Promise<void> {
    if (!Number.isFinite(ms) || ms < 0) throw new RangeError('advance needs a finite, non-negative number');
    const target = this.#now + ms;
    await settle();
    for (;;) {
      let next: ManualTimer | undefined;
      for (const t of this.#timers) {
        if (t.due <= target && (next === undefined || t.due < next.due || (t.due === next.due && t.seq < next.seq))) {
          next = t;
        }
      }
      if (next === undefined) break;
      this.#timers.delete(next);
      this.#now = next.due;
      next.fn();
      await settle();
    }
    this.#now = target;
  }
}
