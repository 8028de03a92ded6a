// routeFlow, connections and timeouts through the SDK, driven by a manual clock.
import test from 'ava';
import { Director } from 'lvs';

const vip = { protocol: 'tcp', address: '10.10.36.11:80' } as const;

async function rrDirector(): Promise<Director> {
  const d = await Director.open({ clock: 'manual' });
  d.addService({ ...vip, scheduler: 'rr' })
    .addServer(vip, { address: '10.10.36.4', method: 'route' })
    .addServer(vip, { address: '10.10.36.7', method: 'tunnel' });
  return d;
}

test('routeFlow schedules like a first packet and finds the connection again', async (t) => {
  const d = await rrDirector();
  const go = (client: string) => d.routeFlow({ client, virtual: '10.10.36.11:80' });
  // rr starts with the newest server (the kernel's list is newest first), then alternates.
  t.deepEqual(go('203.0.113.1:40000'), { server: '10.10.36.7:80', method: 'tunnel', created: true });
  t.deepEqual(go('203.0.113.2:40000'), { server: '10.10.36.4:80', method: 'route', created: true });
  t.deepEqual(go('203.0.113.3:40000'), { server: '10.10.36.7:80', method: 'tunnel', created: true });
  t.deepEqual(go('203.0.113.1:40000'), { server: '10.10.36.7:80', method: 'tunnel', created: false });
  t.is(d.routeFlow({ client: '203.0.113.1:1', virtual: '10.10.36.99:80' }), null, 'no such service');
  const svc = d.list()[0];
  t.is(svc?.stats.conns, 3n);
  t.deepEqual(
    svc?.servers.map((s) => [s.address, s.activeConns, s.inactiveConns]),
    [
      ['10.10.36.4:80', 1, 0],
      ['10.10.36.7:80', 2, 0],
    ],
    'SYN_RECV counts as active (Linux 4.7+)',
  );
});

test('connections expire on the manual clock with the IPVS state timeouts', async (t) => {
  const d = await rrDirector();
  d.routeFlow({ client: '203.0.113.1:40000', virtual: '10.10.36.11:80' });
  const [conn] = d.connections();
  t.like(conn, {
    protocol: 'tcp',
    template: false,
    state: 'SYN_RECV',
    expiresMs: 60_000,
    client: '203.0.113.1:40000',
    virtual: '10.10.36.11:80',
    server: '10.10.36.7:80',
    method: 'tunnel',
  });
  d.advanceTime(59_000);
  t.is(d.connections()[0]?.expiresMs, 1_000);
  d.advanceTime(1_000);
  t.deepEqual(d.connections(), []);
  t.is(d.list()[0]?.servers.every((s) => s.activeConns === 0 && s.inactiveConns === 0), true);
  t.true(d.exec('-Lcn').stdout.startsWith('IPVS connection entries\npro expire state'));
});

test('persistence keeps a client on one server until the template expires', async (t) => {
  const d = await Director.open({ clock: 'manual' });
  d.addService({ protocol: 'tcp', address: '192.168.10.101:0', scheduler: 'rr', persistent: 1800 })
    .addServer({ address: '192.168.10.101:0' }, { address: '192.168.10.200' })
    .addServer({ address: '192.168.10.101:0' }, { address: '192.168.10.201' });
  const to = (client: string, port: number) =>
    d.routeFlow({ client, virtual: `192.168.10.101:${port}` })?.server.split(':')[0];
  const first = to('203.0.113.9:1000', 80);
  t.is(to('203.0.113.9:1001', 22), first, 'another port, same server (port-0 service)');
  t.is(to('203.0.113.9:1002', 443), first);
  t.not(to('203.0.113.10:1000', 80), first, 'another client is scheduled (rr)');
  const templates = d
    .connections()
    .filter((c) => c.template)
    .map((c) => `${c.client} ${c.virtual} ${c.state}`)
    .sort();
  // Templates are keyed by the client network with port 0 and the service's port 0.
  t.deepEqual(templates, ['203.0.113.10:0 192.168.10.101:0 NONE', '203.0.113.9:0 192.168.10.101:0 NONE']);
  t.is(d.list()[0]?.servers.reduce((n, s) => n + s.persistentConns, 0), 2);
});

test('fwmark flows and timeouts', async (t) => {
  const d = await Director.open({ clock: 'manual' });
  d.exec('-A -f 10 -s rr -p 1800');
  d.exec('-a -f 10 -r 192.168.10.200');
  const r = d.routeFlow({ fwmark: 10, client: '203.0.113.5:5555', virtual: '192.168.10.101:443' });
  t.deepEqual(r, { server: '192.168.10.200:443', method: 'route', created: true }, 'fwmark keeps the packet port');
  t.is(d.routeFlow({ fwmark: 11, client: '203.0.113.5:5556' }), null);
  t.deepEqual(d.timeouts(), { tcp: 900, tcpfin: 120, udp: 300 });
  d.setTimeouts({ tcp: 1, tcpfin: 2, udp: 0 });
  t.deepEqual(d.timeouts(), { tcp: 1, tcpfin: 2, udp: 300 });
  t.is(d.exec('-L --timeout').stdout, 'Timeout (tcp tcpfin udp): 1 2 300\n');
  t.throws(() => d.setTimeouts({ tcp: -1, tcpfin: 0, udp: 0 }), { code: 'ERANGE' });
});
