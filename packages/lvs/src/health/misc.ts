/**
 * MISC_CHECK: runs a command without a shell in its own process group; at the timeout the group
 * gets SIGTERM, then SIGKILL 2 s later, as keepalived does.
 * @module
 */
import { spawn } from 'node:child_process';
import type { HealthClock } from './clock.js';

/** How a command ended. */
export type CommandOutcome =
  | {
      /** It exited. */
      readonly kind: 'exit';
      /** Exit status 0..255. */
      readonly code: number;
    }
  | {
      /** It was killed by a signal. */
      readonly kind: 'signal';
      /** The signal name. */
      readonly signal: string;
      /** True when the signal was ours, sent at the timeout. */
      readonly timedOut: boolean;
    }
  | {
      /** It could not be started. */
      readonly kind: 'error';
      /** Why. */
      readonly message: string;
    };

const KILL_GRACE_MS = 2_000;

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // Already gone: nothing to kill.
  }
}

/**
 * Runs `argv` and resolves with how it ended. The command's output is discarded.
 */
export function runCommand(
  argv: readonly string[],
  timeoutMs: number,
  clock: HealthClock,
  signal?: AbortSignal,
): Promise<CommandOutcome> {
  return new Promise((resolve) => {
    const [file, ...args] = argv;
    if (file === undefined || file === '') {
      resolve({ kind: 'error', message: 'empty command' });
      return;
    }
    const child = spawn(file, args, { detached: true, stdio: 'ignore' });
    let timedOut = false;
    let settled = false;
    const timers = [
      clock.setTimer(() => {
        timedOut = true;
        if (child.pid !== undefined) killGroup(child.pid, 'SIGTERM');
      }, timeoutMs),
      clock.setTimer(() => {
        if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      }, timeoutMs + KILL_GRACE_MS),
    ];
    const onAbort = (): void => {
      if (child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    const finish = (outcome: CommandOutcome): void => {
      if (settled) return;
      settled = true;
      for (const t of timers) clock.clearTimer(t);
      signal?.removeEventListener('abort', onAbort);
      resolve(outcome);
    };
    child.once('error', (err) => finish({ kind: 'error', message: err.message }));
    child.once('exit', (code, sig) => {
      // Children the command left behind go with it, as keepalived kills the whole group.
      if (timedOut && child.pid !== undefined) killGroup(child.pid, 'SIGKILL');
      if (code !== null) finish({ kind: 'exit', code });
      else finish({ kind: 'signal', signal: sig ?? 'unknown', timedOut });
    });
  });
}
