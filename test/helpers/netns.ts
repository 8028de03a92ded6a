// Network namespaces for tests: created with unique names, always removed in teardown (even when
// the test fails), and commands run inside them with `ip netns exec`. Needs root.
import { execFileSync, spawnSync } from 'node:child_process';
import type { ExecutionContext } from 'ava';

/** True when the tests can create namespaces (root with iproute2). */
export const canUseNetns: boolean = (() => {
  if (process.getuid?.() !== 0) return false;
  return spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' }).status === 0;
})();

let counter = 0;

/** A namespace owned by one test. */
export interface Netns {
  readonly name: string;
  /** Runs a command inside the namespace, returning stdout; throws on a non-zero exit. */
  run(cmd: string, args: readonly string[], input?: string): string;
  /** Runs a command inside the namespace, returning status and output without throwing. */
  try(cmd: string, args: readonly string[]): { status: number; stdout: string; stderr: string };
}

/** Creates a namespace that is deleted when the test ends. */
export function netns(t: ExecutionContext, tag: string): Netns {
  const name = `lvst-${tag}-${process.pid}-${++counter}`;
  execFileSync('ip', ['netns', 'add', name]);
  t.teardown(() => {
    spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' })
      .stdout.split('\n')
      .filter(Boolean)
      .forEach((pid) => spawnSync('kill', ['-9', pid]));
    spawnSync('ip', ['netns', 'del', name]);
  });
  execFileSync('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  return {
    name,
    run: (cmd, args, input) =>
      execFileSync('ip', ['netns', 'exec', name, cmd, ...args], {
        encoding: 'utf8',
        timeout: 30_000,
        ...(input === undefined ? {} : { input }),
      }),
    try: (cmd, args) => {
      const r = spawnSync('ip', ['netns', 'exec', name, cmd, ...args], { encoding: 'utf8', timeout: 30_000 });
      return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
  };
}
