// The in-memory director end to end: SDK -> N-API -> Rust core -> back, with ipvsadm's rules.
import test from 'ava';
import { Director, LvsError, type ServiceInfo } from 'lvs';

const web = { protocol: 'tcp', address: '10.10.36.11:80' } as const;

function only<T>(items: readonly T[]): T {
  if (items.length !== 1) throw new Error(`expected one item, got ${items.length}`);
  return items[0] as T;
}

test('services and real servers round-trip through the native core', async (t) => {
  const d = await Director.open();
  d.addService({ ...web, scheduler: 'rr' })
    .addServer(web, { address: '10.10.36.7', method: 'tunnel', weight: 1 })
    .addServer(web, { address: '10.10.36.4', method: 'route', weight: 1 });
  const svc = only(d.list());
  t.like(svc, { protocol: 'tcp', address: '10.10.36.11:80', family: 'inet', scheduler: 'rr', onePacket: false });
  t.is(svc.persistent, undefined);
  t.is(svc.netmask, '255.255.255.255');
  // ipvsadm -L sorts real servers by address; DR and TUN servers get the service port.
  t.deepEqual(
    svc.servers.map((s) => [s.address, s.method, s.weight, s.activeConns, s.inactiveConns]),
    [
      ['10.10.36.4:80', 'route', 1, 0, 0],
      ['10.10.36.7:80', 'tunnel', 1, 0, 0],
    ],
  );
  t.deepEqual(svc.servers[1]?.tunnel, { type: 'ipip', port: 0, checksum: 'none' });
  t.is(typeof svc.stats.conns, 'bigint');
  t.is(svc.stats.inBytes, 0n);
});

test('persistent, port-0, fwmark and IPv6 services as in the seeds', async (t) => {
  const d = await Director.open();
  d.addService({ protocol: 'tcp', address: '192.168.10.101:0', scheduler: 'rr', persistent: 1800 })
    .addService({ fwmark: 10, scheduler: 'rr', persistent: 1800 })
    .addService({ protocol: 'udp', address: '[2001:db8::1]:53', scheduler: 'sh', schedFlags: ['sh-port'] })
    .addService({ protocol: 'tcp', address: '10.0.0.1:443', persistent: true, netmask: '255.255.255.0' });
  d.addServer({ fwmark: 10 }, { address: '192.168.10.200' }).addServer({ fwmark: 10 }, { address: '192.168.10.201' });
  const list = d.list();
  // ipvsadm -L order, quirk included: it compares addresses by 32-bit signed subtraction, so
  // 192.168.x (0xC0A8…) minus 10.x goes negative and 192.168.x is listed first.
  t.deepEqual(
    list.map((s) => s.address ?? `FWM ${s.fwmark}`),
    ['192.168.10.101:0', '10.0.0.1:443', '[2001:db8::1]:53', 'FWM 10'],
  );
  const [allPorts, https, dns, fwm] = list as [ServiceInfo, ServiceInfo, ServiceInfo, ServiceInfo];
  t.is(https.persistent, 360, 'persistent: true means ipvsadm default 360 s');
  t.is(https.netmask, '255.255.255.0');
  t.is(https.scheduler, 'wlc', 'default scheduler');
  t.is(allPorts.persistent, 1800);
  t.is(dns.family, 'inet6');
  t.is(dns.netmask, '128');
  t.deepEqual(dns.schedFlags, ['sh-port']);
  t.deepEqual(
    fwm.servers.map((s) => s.address),
    ['192.168.10.200:0', '192.168.10.201:0'],
  );
});

test('errors arrive as LvsError with stable codes and ipvsadm messages', async (t) => {
  const d = await Director.open();
  d.addService(web);
  const dup = t.throws(() => d.addService(web), { instanceOf: LvsError });
  t.is(dup?.code, 'EEXIST');
  t.is(dup?.message, 'Service already exists');
  t.throws(() => d.deleteService({ address: '10.9.9.9:80' }), { code: 'ESRCH', message: 'No such service' });
  t.throws(() => d.addServer({ address: '10.9.9.9:80' }, { address: '1.2.3.4' }), {
    code: 'ESRCH',
    message: 'Service not defined',
  });
  t.throws(() => d.deleteServer(web, '10.10.36.99'), { code: 'ENOENT', message: 'No such destination' });
  t.throws(() => d.addService({ address: '10.0.0.2:80', scheduler: 'bogus' as never }), {
    code: 'ENOENT',
    message: 'Scheduler or persistence engine not found',
  });
  t.throws(() => d.addService({ address: '10.0.0.2:0' }), {
    code: 'EINVAL',
    message: 'Zero port specified for non-persistent service',
  });
  t.throws(() => d.addService({ address: 'not-an-address' }), { code: 'EINVAL' });
  t.throws(() => d.addService({ protocol: 'tcp', address: '10.0.0.3:80', schedFlags: ['mh-port'] }), {
    code: 'EINVAL',
    message: "incompatible scheduler flag `mh-port'",
  });
  t.throws(() => d.addServer(web, { address: '10.10.36.4', weight: 70000 }), { code: 'ERANGE' });
  t.throws(() => d.addServer(web, { address: '10.10.36.4', weight: 1.5 }), {
    instanceOf: LvsError,
    code: 'EINVAL',
    message: 'weight must be an integer, got 1.5',
  });
  t.throws(() => d.addServer(web, { address: '10.10.36.4', lowerThreshold: 5 }), {
    code: 'ERANGE',
    message: 'Numerical result out of range',
  });
  t.throws(() => d.addService({ fwmark: 0 }), { code: 'ERANGE' });
  t.throws(() => d.addService({ address: '10.0.0.9:80', persistent: 0 }), { code: 'ERANGE' });
  t.throws(() => d.addServer(web, { address: '10.10.36.4', method: 'carrier-pigeon' as never }), { code: 'EINVAL' });
  // A JS value of the wrong type is a conversion error, still an LvsError.
  t.throws(() => d.addService({ address: 42 as unknown as string }), { instanceOf: LvsError, code: 'EINVAL' });
  // None of that changed the table.
  t.deepEqual(
    d.list().map((s) => [s.address, s.servers.length]),
    [['10.10.36.11:80', 0]],
  );
});

test('edit replaces every setting like ipvsadm -E / -e', async (t) => {
  const d = await Director.open();
  d.addService({ ...web, scheduler: 'rr', persistent: 600 }).addServer(web, {
    address: '192.168.0.2:8080',
    method: 'masq',
    weight: 3,
    upperThreshold: 100,
  });
  d.editService(web);
  d.editServer(web, { address: '192.168.0.2:8080', method: 'nat' });
  const svc = only(d.list());
  t.is(svc.scheduler, 'wlc');
  t.is(svc.persistent, undefined);
  t.like(only(svc.servers), { address: '192.168.0.2:8080', method: 'masq', weight: 1, upperThreshold: 0 });
  t.throws(() => d.editServer(web, { address: '192.168.0.9' }), { code: 'ENOENT' });
  t.throws(() => d.editService({ address: '10.1.1.1:80' }), { code: 'ESRCH' });
});

test('delete, clear and zero', async (t) => {
  const d = await Director.open();
  d.addService(web).addServer(web, { address: '10.10.36.4' }).addService({ fwmark: 1, persistent: 60 });
  d.deleteServer(web, '10.10.36.4');
  t.is(d.list()[0]?.servers.length, 0);
  d.zero().zero(web);
  t.throws(() => d.zero({ fwmark: 2 }), { code: 'ESRCH' });
  d.deleteService({ fwmark: 1 });
  t.is(d.list().length, 1);
  d.clear();
  t.deepEqual(d.list(), []);
});

test('manual clock moves only when told; system clock refuses advanceTime', async (t) => {
  const manual = await Director.open({ clock: 'manual' });
  t.is(manual.now(), 0);
  manual.advanceTime(2500);
  t.is(manual.now(), 2500);
  t.throws(() => manual.advanceTime(-1), { code: 'EINVAL' });
  t.throws(() => manual.advanceTime(Number.NaN), { code: 'EINVAL' });
  const system = await Director.open();
  t.throws(() => system.advanceTime(10), { code: 'ENOTSUP' });
  t.true(system.now() >= 0);
  await t.throwsAsync(() => Director.open({ clock: 'sundial' as never }), { code: 'EINVAL' });
});

test('a closed director refuses further calls', async (t) => {
  const d = await Director.open();
  {
    using scoped = await Director.open();
    scoped.addService(web);
  }
  d.close();
  t.throws(() => d.list(), { instanceOf: LvsError, code: 'EINVAL', message: 'the director is closed' });
});

test('a missing interface is ENODEV; a manual clock cannot run real interfaces', async (t) => {
  await t.throwsAsync(() => Director.open({ interfaces: ['no-such-if0'] }), { instanceOf: LvsError, code: 'ENODEV' });
  await t.throwsAsync(() => Director.open({ interfaces: ['lo'], clock: 'manual' }), { code: 'EINVAL' });
  await t.throwsAsync(() => Director.open({ interfaces: [{ name: 'eth0', mac: 'nonsense' }] }), { code: 'EINVAL' });
});
