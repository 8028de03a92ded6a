// keepalived.conf to health checks: a parsed configuration drives a HealthMonitor against a real
// TCP server on loopback, with a virtual_server_group expanded to one service per address/fwmark.
import test from 'ava';
import * as net from 'node:net';
import { Director, fromKeepalived, HealthMonitor, parseKeepalivedConfig } from 'lvs';

test('fromKeepalived: group expansion, inherited timing, checkers, sorry server and scripts', (t) => {
  const { config } = parseKeepalivedConfig({
    text: `
virtual_server_group WEB {
    10.0.0.1-2 80
    fwmark 7
}
virtual_server group WEB {
    delay_loop 2.5
    lvs_sched wrr
    lvs_method DR
    protocol TCP
    quorum 2
    hysteresis 1
    sorry_server 192.168.9.9 80
    real_server 192.168.1.1 80 {
        weight 3
        inhibit_on_failure
        notify_down "/bin/echo down now"
        TCP_CHECK {
            connect_timeout 3
            retry 2
        }
        HTTP_GET {
            url {
                path /health
                digest 444bcb3a3fcf8389296c49467f27e1d6
                status_code 200 300-302
            }
            http_protocol 1.1
        }
    }
    real_server 192.168.1.2 80 {
        MISC_CHECK {
            misc_path "/usr/bin/true now"
            misc_dynamic
        }
        DNS_CHECK {
        }
    }
}
`,
  });
  const { virtualServers, unsupported } = fromKeepalived(config);
  t.is(virtualServers.length, 1);
  const vs = virtualServers[0]!;
  t.is(vs.name, 'WEB');
  t.deepEqual(
    (vs.service as readonly object[]).map((s) => ('fwmark' in s ? `FWM ${String(s.fwmark)}` : (s as { address: string }).address)),
    ['10.0.0.1:80', '10.0.0.2:80', 'FWM 7'],
  );
  t.like(vs, { delayLoop: 2.5, method: 'route', quorum: 2, hysteresis: 1, sorryServer: { address: '192.168.9.9', method: 'route' } });
  const [a, b] = vs.realServers;
  t.like(a, { address: '192.168.1.1', weight: 3, method: 'route', inhibitOnFailure: true });
  t.deepEqual(a?.notifyDown, ['/bin/echo', 'down', 'now']);
  t.like(a?.checkers?.[0], { type: 'TCP_CHECK', connectTimeout: 3, retry: 2, delayLoop: 2.5, delayBeforeRetry: 1, warmup: 2.5 });
  t.like(a?.checkers?.[1], { type: 'HTTP_GET', httpProtocol: '1.1', delayBeforeRetry: 3, retry: 1 });
  t.deepEqual((a?.checkers?.[1] as { urls: unknown }).urls, [
    { path: '/health', statusCode: [200, '300-302'], digest: '444bcb3a3fcf8389296c49467f27e1d6' },
  ]);
  t.like(b?.checkers?.[0], { type: 'MISC_CHECK', path: ['/usr/bin/true', 'now'], dynamic: true, retry: 0, timeout: 2.5 });
  t.is(b?.checkers?.length, 1);
  t.is(unsupported.length, 1);
  t.regex(unsupported[0] ?? '', /DNS_CHECK/);
});

test('a keepalived.conf drives the director: the server is removed when it stops and re-added when it returns', async (t) => {
  let server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const { config } = parseKeepalivedConfig({
    text: `
virtual_server 10.0.0.1 80 {
    delay_loop 0.2
    lvs_sched rr
    lvs_method NAT
    protocol TCP
    real_server 127.0.0.1 ${port} {
        TCP_CHECK {
            connect_timeout 1
            delay_before_retry 0.1
        }
    }
}
`,
  });
  const director = await Director.open();
  const monitor = new HealthMonitor(director, fromKeepalived(config).virtualServers);
  t.teardown(() => monitor.stop());
  const wait = (event: 'up' | 'down') =>
    new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${event} within 10 s`)), 10_000);
      monitor.once(event, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  await monitor.start();
  t.is(director.exec('-Ln').stdout.includes(`127.0.0.1:${port}`), true);
  const down = wait('down');
  await new Promise<void>((r) => server.close(() => r()));
  await down;
  t.is(director.exec('-Ln').stdout.includes(`127.0.0.1:${port}`), false);
  const up = wait('up');
  server = net.createServer((s) => s.destroy());
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  await up;
  t.regex(director.save(), new RegExp(`-a -t 10.0.0.1:80 -r 127.0.0.1:${port} -m -w 1`));
  await monitor.stop({ release: true });
  t.is(director.save(), '');
});
