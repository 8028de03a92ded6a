// runKeepalived on an in-memory director, checks against real TCP servers on loopback: the rules
// a configuration starts with, and a reload (what lvsd does on SIGHUP) that removes, adds and
// updates services and servers in place while servers keep their health.
import test from 'ava';
import * as net from 'node:net';
import { Director, parseKeepalivedConfig, runKeepalived } from 'lvs';
import { until } from './helpers/stream.js';

async function listen(host: string): Promise<net.Server> {
  const server = net.createServer((s) => s.on('error', () => undefined).end());
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  return server;
}

const port = (s: net.Server): number => (s.address() as net.AddressInfo).port;

/** A closed port on `host`: bound once and released, so nothing listens there. */
async function closedPort(host: string): Promise<number> {
  const s = await listen(host);
  const p = port(s);
  await new Promise((r) => s.close(r));
  return p;
}

function vs(address: string, sched: string, servers: string): string {
  return `virtual_server ${address} 80 {
    delay_loop 0.3
    lb_algo ${sched}
    lb_kind NAT
    protocol TCP
${servers}}
`;
}

function rs(host: string, p: number, weight = 1): string {
  return `    real_server ${host} ${p} {
        weight ${weight}
        TCP_CHECK {
            connect_timeout 0.5
            retry 0
            warmup 0
        }
    }
`;
}

test('reload: gone services and servers go, new ones come, changed ones are edited in place; down servers stay down', async (t) => {
  t.timeout(30_000);
  const up1 = await listen('127.0.0.1');
  const up3 = await listen('127.0.0.3');
  t.teardown(() => {
    up1.close();
    up3.close();
  });
  const down2 = await closedPort('127.0.0.2');
  const p1 = port(up1);
  const p3 = port(up3);
  const director = await Director.open();
  t.teardown(() => director.close());

  const first = parseKeepalivedConfig({
    text: vs('10.0.0.1', 'rr', rs('127.0.0.1', p1) + rs('127.0.0.2', down2)) + vs('10.0.0.9', 'rr', rs('127.0.0.1', p1)),
  });
  t.deepEqual(first.diagnostics.filter((d) => d.severity !== 'warning'), []);
  const run = await runKeepalived(director, first.config);
  t.teardown(() => run.stop());
  const logs: string[] = [];
  run.on('log', (l) => logs.push(l));
  // keepalived's start: every server in at once; the first failed check takes 127.0.0.2 out.
  t.regex(director.save(), new RegExp(`-a -t 10.0.0.1:80 -r 127.0.0.2:${down2} -m -w 1`));
  t.true(await until(10_000, () => !director.save().includes(`127.0.0.2:${down2}`)), director.save());
  t.true(logs.some((l) => l.includes(`Removing service [127.0.0.2:${down2}]`)), logs.join('\n'));

  // The next configuration: 10.0.0.9 is gone, 10.0.0.1 is wlc with 127.0.0.1 at weight 3, keeps
  // the (still down) 127.0.0.2 and gains 127.0.0.3; 10.0.0.2 is new.
  const second = parseKeepalivedConfig({
    text:
      vs('10.0.0.1', 'wlc', rs('127.0.0.1', p1, 3) + rs('127.0.0.2', down2) + rs('127.0.0.3', p3)) +
      vs('10.0.0.2', 'rr', rs('127.0.0.3', p3)),
  });
  await run.reload(second.config);
  t.is(
    director.save(),
    [
      '-A -t 10.0.0.1:80 -s wlc',
      `-a -t 10.0.0.1:80 -r 127.0.0.1:${p1} -m -w 3`,
      `-a -t 10.0.0.1:80 -r 127.0.0.3:${p3} -m -w 1`,
      '-A -t 10.0.0.2:80 -s rr',
      `-a -t 10.0.0.2:80 -r 127.0.0.3:${p3} -m -w 1`,
      '',
    ].join('\n'),
    'the down server did not come back with the reload',
  );
  // The new monitor checks on: 127.0.0.2 comes back once something listens there.
  const back = net.createServer((s) => s.on('error', () => undefined).end());
  await new Promise<void>((resolve) => back.listen(down2, '127.0.0.2', resolve));
  t.teardown(() => back.close());
  t.true(await until(10_000, () => director.save().includes(`127.0.0.2:${down2}`)), director.save());
});
