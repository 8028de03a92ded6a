// Health checking with keepalived's timing rules, driven by a manual clock: JS checks whose
// results the test sets, an in-memory director whose table shows every consequence.
import test from 'ava';
import {
  Director,
  HealthMonitor,
  LvsError,
  ManualClock,
  type CheckerSpec,
  type HealthMonitorOptions,
  type RealServerHealth,
  type VirtualServerHealth,
} from 'lvs';

const VIP = { protocol: 'tcp', address: '10.0.0.1:80', scheduler: 'rr' } as const;

/** Servers whose health the test controls: true/false, or a number (success with that weight). */
class Fleet {
  readonly health = new Map<string, boolean | number>();
  readonly calls: [string, number][] = [];
  constructor(readonly clock: ManualClock) {}
  check(extra: Partial<Omit<Extract<CheckerSpec, { type: 'JS' }>, 'type' | 'check'>> = {}): CheckerSpec {
    return {
      type: 'JS',
      ...extra,
      check: (t) => {
        this.calls.push([t.server, this.clock.now()]);
        return this.health.get(t.server) ?? true;
      },
    };
  }
  times(server: string): number[] {
    return this.calls.filter(([s]) => s === server).map(([, at]) => at);
  }
}

async function setup(
  vs: (fleet: Fleet) => VirtualServerHealth[],
  opts: Omit<HealthMonitorOptions, 'clock'> = {},
): Promise<{
  director: Director;
  monitor: HealthMonitor;
  clock: ManualClock;
  fleet: Fleet;
  log: string[];
  quorum: string[];
}> {
  const director = await Director.open();
  const clock = new ManualClock();
  const fleet = new Fleet(clock);
  const monitor = new HealthMonitor(director, vs(fleet), { random: () => 0, ...opts, clock });
  const log: string[] = [];
  const quorum: string[] = [];
  monitor.on('up', (e) => log.push(`up ${e.server} @${clock.now()}`));
  monitor.on('down', (e) => log.push(`down ${e.server} @${clock.now()}`));
  monitor.on('quorumUp', (e) => quorum.push(`quorumUp ${e.weightSum} @${clock.now()}`));
  monitor.on('quorumDown', (e) => quorum.push(`quorumDown ${e.weightSum} @${clock.now()}`));
  monitor.on('weight', (e) => log.push(`weight ${e.server} ${e.from}->${e.to} @${clock.now()}`));
  return { director, monitor, clock, fleet, log, quorum };
}

/** The director's real servers of the first service, as `address:weight`. */
function pool(d: Director): string[] {
  return (d.list()[0]?.servers ?? []).map((s) => `${s.address}:${s.weight}`);
}

function servers(n: number, checker: (f: Fleet) => CheckerSpec, fleet: Fleet, extra: Partial<RealServerHealth> = {}) {
  return Array.from({ length: n }, (_, i) => ({
    address: `192.168.1.${i + 1}:80`,
    checkers: [checker(fleet)],
    ...extra,
  }));
}

test('startup: every server is added at once, and the first failed check takes one down (retry ignored)', async (t) => {
  const { director, monitor, clock, fleet, log } = await setup((f) => [
    { service: VIP, delayLoop: 10, retry: 3, delayBeforeRetry: 2, realServers: servers(2, (x) => x.check(), f) },
  ]);
  fleet.health.set('192.168.1.2:80', false);
  await monitor.start();
  t.deepEqual(pool(director), ['192.168.1.1:80:1', '192.168.1.2:80:1']);
  await clock.advance(999);
  t.deepEqual(fleet.calls, []); // BOOTSTRAP_DELAY: nothing before 1 s
  await clock.advance(1);
  t.deepEqual(pool(director), ['192.168.1.1:80:1']);
  t.deepEqual(log, ['down 192.168.1.2:80 @1000']);
  // Down servers are polled every delay_loop; one success brings it back.
  fleet.health.set('192.168.1.2:80', true);
  await clock.advance(10_000);
  t.deepEqual(fleet.times('192.168.1.2:80'), [1000, 11_000]);
  t.deepEqual(log, ['down 192.168.1.2:80 @1000', 'up 192.168.1.2:80 @11000']);
  t.deepEqual(pool(director), ['192.168.1.1:80:1', '192.168.1.2:80:1']);
  await monitor.stop();
});

test('a server that is up goes down after retry+1 failures, retried every delay_before_retry', async (t) => {
  const { director, monitor, clock, fleet, log } = await setup((f) => [
    { service: VIP, delayLoop: 10, retry: 3, delayBeforeRetry: 2, realServers: servers(1, (x) => x.check(), f) },
  ]);
  await monitor.start();
  await clock.advance(1_000);
  fleet.health.set('192.168.1.1:80', false);
  await clock.advance(15_999);
  t.deepEqual(log, []); // failures at 11, 13, 15 s are retries
  t.deepEqual(pool(director), ['192.168.1.1:80:1']);
  await clock.advance(1);
  t.deepEqual(log, ['down 192.168.1.1:80 @17000']);
  t.deepEqual(pool(director), []);
  // keepalived 2.2.7's tcp_epilog keeps the retry cadence while down: delay_loop, then retries.
  await clock.advance(20_000);
  t.deepEqual(
    fleet.times('192.168.1.1:80'),
    [1000, 11_000, 13_000, 15_000, 17_000, 27_000, 29_000, 31_000, 33_000],
  );
  // One success brings it back.
  fleet.health.set('192.168.1.1:80', true);
  await clock.advance(10_000);
  t.deepEqual(log, ['down 192.168.1.1:80 @17000', 'up 192.168.1.1:80 @43000']);
  await monitor.stop();
});

test('warmup spreads the first check over 1 s + random(0..warmup), warmup defaulting to delay_loop', async (t) => {
  const { monitor, clock, fleet } = await setup(
    (f) => [
      {
        service: VIP,
        delayLoop: 8,
        realServers: [
          { address: '192.168.1.1:80', checkers: [f.check({ warmup: 4 })] },
          { address: '192.168.1.2:80', checkers: [f.check()] },
          { address: '192.168.1.3:80', checkers: [f.check({ warmup: 0 })] },
        ],
      },
    ],
    { random: () => 0.5 },
  );
  await monitor.start();
  await clock.advance(10_000);
  t.deepEqual(fleet.times('192.168.1.1:80'), [3000]); // 1 s + 0.5 * 4 s
  t.deepEqual(fleet.times('192.168.1.2:80'), [5000]); // 1 s + 0.5 * 8 s
  t.deepEqual(fleet.times('192.168.1.3:80'), [1000, 9000]);
  await monitor.stop();
});

test('several checkers: down at the first failure, up only when the last failed one recovers', async (t) => {
  const { director, monitor, clock, fleet, log } = await setup((f) => [
    {
      service: VIP,
      delayLoop: 1,
      retry: 0,
      realServers: [
        {
          address: '192.168.1.1:80',
          checkers: [
            { type: 'JS', check: () => f.health.get('a') ?? true },
            { type: 'JS', check: () => f.health.get('b') ?? true },
          ],
        },
      ],
    },
  ]);
  await monitor.start();
  await clock.advance(1_000);
  fleet.health.set('a', false);
  await clock.advance(1_000);
  t.deepEqual(log, ['down 192.168.1.1:80 @2000']);
  fleet.health.set('b', false);
  await clock.advance(1_000);
  fleet.health.set('a', true);
  await clock.advance(1_000);
  t.deepEqual(pool(director), []);
  t.is(monitor.state()[0]?.servers[0]?.failedCheckers, 1);
  fleet.health.set('b', true);
  await clock.advance(1_000);
  t.deepEqual(log, ['down 192.168.1.1:80 @2000', 'up 192.168.1.1:80 @5000']);
  t.deepEqual(pool(director), ['192.168.1.1:80:1']);
  await monitor.stop();
});

test('quorum 7 with hysteresis 2 over 10 servers of weight 1: lost below 5, regained at 9', async (t) => {
  const { monitor, clock, fleet, quorum } = await setup((f) => [
    { service: VIP, delayLoop: 1, retry: 0, quorum: 7, hysteresis: 2, realServers: servers(10, (x) => x.check(), f) },
  ]);
  await monitor.start();
  t.true(monitor.state()[0]?.quorumUp);
  const set = (n: number, ok: boolean) => fleet.health.set(`192.168.1.${n}:80`, ok);
  for (let n = 1; n <= 5; n++) set(n, false); // 5 live: still >= 7 - 2
  await clock.advance(1_000);
  t.deepEqual(quorum, []);
  set(6, false); // 4 live < 5
  await clock.advance(1_000);
  t.deepEqual(quorum, ['quorumDown 4 @2000']);
  for (let n = 1; n <= 4; n++) set(n, true); // 8 live: not yet 7 + 2
  await clock.advance(1_000);
  t.false(monitor.state()[0]?.quorumUp);
  set(5, true); // 9 live
  await clock.advance(1_000);
  t.deepEqual(quorum, ['quorumDown 4 @2000', 'quorumUp 9 @4000']);
  await monitor.stop();
});

test('sorry server replaces the live servers while quorum is lost, and leaves when it returns', async (t) => {
  const { director, monitor, clock, fleet } = await setup((f) => [
    {
      service: VIP,
      delayLoop: 1,
      retry: 0,
      quorum: 2,
      sorryServer: { address: '192.168.9.9:80' },
      realServers: servers(3, (x) => x.check(), f),
    },
  ]);
  await monitor.start();
  t.deepEqual(pool(director), ['192.168.1.1:80:1', '192.168.1.2:80:1', '192.168.1.3:80:1']);
  fleet.health.set('192.168.1.1:80', false);
  fleet.health.set('192.168.1.2:80', false);
  await clock.advance(1_000);
  // 192.168.1.3 is alive but out of the pool while the sorry server serves.
  t.deepEqual(pool(director), ['192.168.9.9:80:1']);
  t.true(monitor.state()[0]?.sorryServerActive);
  // Changes under a sorry server only update state.
  fleet.health.set('192.168.1.3:80', false);
  await clock.advance(1_000);
  t.deepEqual(pool(director), ['192.168.9.9:80:1']);
  fleet.health.set('192.168.1.1:80', true);
  fleet.health.set('192.168.1.3:80', true);
  await clock.advance(1_000);
  t.deepEqual(pool(director), ['192.168.1.1:80:1', '192.168.1.3:80:1']);
  t.false(monitor.state()[0]?.sorryServerActive);
  await monitor.stop();
});

test('sorry_server_inhibit keeps the sorry server at weight 0 while unused; startup with quorum down adds it', async (t) => {
  const { director, monitor, clock, fleet, quorum } = await setup((f) => [
    {
      service: VIP,
      delayLoop: 1,
      retry: 0,
      alpha: true,
      sorryServer: { address: '192.168.9.9:80', inhibit: true },
      realServers: servers(1, (x) => x.check(), f),
    },
  ]);
  await monitor.start();
  // alpha: the server waits for its first success; quorum starts down and the sorry server serves.
  t.deepEqual(pool(director), ['192.168.9.9:80:1']);
  t.deepEqual(quorum, ['quorumDown 0 @0']);
  await clock.advance(1_000);
  t.deepEqual(pool(director), ['192.168.1.1:80:1', '192.168.9.9:80:0']);
  fleet.health.set('192.168.1.1:80', false);
  await clock.advance(1_000);
  t.deepEqual(pool(director), ['192.168.9.9:80:1']);
  await monitor.stop();
});

test('inhibit_on_failure edits the weight to 0 and back instead of removing the server', async (t) => {
  const { director, monitor, clock, fleet } = await setup((f) => [
    {
      service: VIP,
      delayLoop: 1,
      retry: 0,
      realServers: servers(2, (x) => x.check(), f, { weight: 3, inhibitOnFailure: true }),
    },
  ]);
  await monitor.start();
  fleet.health.set('192.168.1.2:80', false);
  await clock.advance(1_000);
  t.deepEqual(pool(director), ['192.168.1.1:80:3', '192.168.1.2:80:0']);
  fleet.health.set('192.168.1.2:80', true);
  await clock.advance(1_000);
  t.deepEqual(pool(director), ['192.168.1.1:80:3', '192.168.1.2:80:3']);
  await monitor.stop();
});

test('alpha: servers start out of the pool (weight 0 with inhibit) until a check succeeds', async (t) => {
  const { director, monitor, clock, fleet, log } = await setup((f) => [
    {
      service: VIP,
      delayLoop: 1,
      realServers: [
        { address: '192.168.1.1:80', alpha: true, checkers: [f.check()] },
        { address: '192.168.1.2:80', alpha: true, inhibitOnFailure: true, checkers: [f.check()] },
        { address: '192.168.1.3:80', checkers: [f.check({ alpha: true, retry: 0 })] },
      ],
    },
  ]);
  fleet.health.set('192.168.1.3:80', false);
  await monitor.start();
  t.deepEqual(pool(director), ['192.168.1.2:80:0']);
  await clock.advance(1_000);
  t.deepEqual(pool(director), ['192.168.1.1:80:1', '192.168.1.2:80:1']);
  // With retry 0 an alpha checker's first failure confirms the down state (keepalived runs notify_down).
  t.deepEqual(log, ['up 192.168.1.1:80 @1000', 'up 192.168.1.2:80 @1000', 'down 192.168.1.3:80 @1000']);
  await monitor.stop();
});

test('a check returning a number sets the weight (like misc_dynamic); true restores the configured weight', async (t) => {
  const { director, monitor, clock, fleet, log } = await setup((f) => [
    { service: VIP, delayLoop: 1, realServers: servers(1, (x) => x.check(), f, { weight: 2 }) },
  ]);
  await monitor.start();
  fleet.health.set('192.168.1.1:80', 7);
  await clock.advance(1_000);
  t.deepEqual(pool(director), ['192.168.1.1:80:7']);
  fleet.health.set('192.168.1.1:80', true);
  await clock.advance(1_000);
  t.deepEqual(pool(director), ['192.168.1.1:80:2']);
  t.deepEqual(log, ['weight 192.168.1.1:80 2->7 @1000', 'weight 192.168.1.1:80 7->2 @2000']);
  await monitor.stop();
});

test('a check that never settles fails at connect_timeout; a throwing check fails', async (t) => {
  let aborted = false;
  const { director, monitor, clock, log } = await setup(() => [
    {
      service: VIP,
      delayLoop: 10,
      connectTimeout: 3,
      realServers: [
        {
          address: '192.168.1.1:80',
          checkers: [
            {
              type: 'JS',
              check: ({ signal }) =>
                new Promise<boolean>(() => signal.addEventListener('abort', () => (aborted = true))),
            },
          ],
        },
        {
          address: '192.168.1.2:80',
          checkers: [
            {
              type: 'JS',
              check: () => {
                throw new Error('boom');
              },
            },
          ],
        },
      ],
    },
  ]);
  const reasons: string[] = [];
  monitor.on('check', (e) => reasons.push(`${e.server} ${e.reason ?? 'ok'}`));
  await monitor.start();
  await clock.advance(1_000);
  t.deepEqual(log, ['down 192.168.1.2:80 @1000']);
  await clock.advance(3_000);
  t.true(aborted);
  t.deepEqual(log, ['down 192.168.1.2:80 @1000', 'down 192.168.1.1:80 @4000']);
  t.deepEqual(reasons, ['192.168.1.2:80 boom', '192.168.1.1:80 check timed out']);
  t.deepEqual(pool(director), []);
  await monitor.stop();
});

test('virtual server group: every service gets the servers; each server is checked once', async (t) => {
  const { director, monitor, clock, fleet } = await setup((f) => [
    {
      service: [
        { protocol: 'tcp', address: '10.0.0.1:80' },
        { protocol: 'tcp', address: '10.0.0.2:80' },
        { fwmark: 5 },
      ],
      method: 'route',
      delayLoop: 1,
      retry: 0,
      realServers: [{ address: '192.168.1.1', checkers: [f.check()] }],
    },
  ]);
  await monitor.start();
  t.deepEqual(
    director.list().map((s) => s.servers.map((r) => r.address)),
    [['192.168.1.1:80'], ['192.168.1.1:80'], ['192.168.1.1:0']],
  );
  fleet.health.set('192.168.1.1', false);
  await clock.advance(1_000);
  t.deepEqual(fleet.times('192.168.1.1'), [1000]);
  t.deepEqual(
    director.list().map((s) => s.servers.length),
    [0, 0, 0],
  );
  await monitor.stop({ release: true });
  t.deepEqual(director.list(), []);
});

test('stop with release removes the servers then the services; without it the table stays', async (t) => {
  const a = await setup((f) => [{ service: VIP, delayLoop: 1, realServers: servers(2, (x) => x.check(), f) }]);
  await a.monitor.start();
  await a.monitor.stop();
  t.is(a.director.list()[0]?.servers.length, 2);
  t.is(a.clock.pending, 0);
  const b = await setup((f) => [
    { service: VIP, delayLoop: 1, realServers: servers(1, (x) => x.check(), f, { inhibitOnFailure: true }) },
  ]);
  await b.monitor.start();
  await b.monitor.stop({ release: true });
  t.deepEqual(b.director.list(), []);
});

test('bad specs are refused with a message naming the place', (t) => {
  const d = Director.open();
  const bad: [VirtualServerHealth, RegExp][] = [
    [{ service: VIP, realServers: [] }, /virtual server 10.0.0.1:80: has no real servers/],
    [
      { service: VIP, realServers: [{ address: '192.168.1.1', checkers: [{ type: 'TCP_CHECK', retry: -1 }] }] },
      /real server 192.168.1.1 checker 1 \(TCP_CHECK\): retry must be an integer/,
    ],
    [
      { service: { fwmark: 3 }, realServers: [{ address: '192.168.1.1', checkers: [{ type: 'TCP_CHECK' }] }] },
      /no port to check/,
    ],
    [
      {
        service: VIP,
        realServers: [{ address: '192.168.1.1', checkers: [{ type: 'HTTP_GET', urls: [{ path: '/', digest: 'xyz' }] }] }],
      },
      /url 1: digest 'xyz' is not 32 hex characters/,
    ],
    [
      {
        service: VIP,
        realServers: [
          { address: '192.168.1.1', checkers: [{ type: 'HTTP_GET', urls: [{ path: '/', statusCode: ['600'] }] }] },
        ],
      },
      /Invalid HTTP_GET status code '600'/,
    ],
    [{ service: VIP, realServers: [{ address: 'nope:80' }] }, /'nope:80' is not an IP address/],
    [
      { service: VIP, realServers: [{ address: '192.168.1.1', checkers: [{ type: 'MISC_CHECK', path: '"unterminated' }] }] },
      /unterminated " quote/,
    ],
  ];
  return d.then((director) => {
    for (const [spec, message] of bad) {
      const err = t.throws(() => new HealthMonitor(director, [spec]), { instanceOf: LvsError, message });
      t.is(err?.code, 'EINVAL');
    }
  });
});
