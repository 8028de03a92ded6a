// The immutable builders: data, ipvsadm lines, atomic apply, branching, and compile-time types.
import test from 'ava';
import { Director, fwmark, LvsError, tcp, udp, type ServiceBuilder } from 'lvs';

test('builders are immutable values that branch safely', (t) => {
  const base = tcp('10.10.36.11:80').scheduler('rr');
  const a = base.server('10.10.36.4', { method: 'dr' });
  const b = base.persistent(600);
  t.is(base.definition.servers.length, 0, 'adding a server did not change the base');
  t.is(base.definition.service.persistent, undefined);
  t.is(a.definition.servers.length, 1);
  t.is(b.definition.service.persistent, 600);
  t.true(Object.isFrozen(a.definition) && Object.isFrozen(a.definition.servers[0]));
  t.throws(() => {
    (a.definition.service as { scheduler?: string }).scheduler = 'wlc';
  });
});

test('toIpvsadm writes the command lines ipvsadm would take', (t) => {
  t.deepEqual(
    tcp('10.10.36.11:80')
      .scheduler('rr')
      .server('10.10.36.4:80', { method: 'dr', weight: 1 })
      .server('10.10.36.7:80', { method: 'tunnel', weight: 1, tunnel: { type: 'gue', port: 6080, checksum: 'csum' } })
      .toIpvsadm(),
    [
      '-A -t 10.10.36.11:80 -s rr',
      '-a -t 10.10.36.11:80 -r 10.10.36.4:80 -g -w 1',
      '-a -t 10.10.36.11:80 -r 10.10.36.7:80 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum',
    ],
  );
  t.deepEqual(fwmark(10).persistent().netmask('255.255.255.0').toIpvsadm(), ['-A -f 10 -s wlc -p -M 255.255.255.0']);
  t.deepEqual(udp('[2001:db8::1]:53').scheduler('sh').schedFlags('sh-port').onePacket().toIpvsadm(), [
    '-A -u [2001:db8::1]:53 -s sh -o -b sh-port',
  ]);
  t.throws(() => tcp('10.0.0.1:80 -C').toIpvsadm(), { instanceOf: LvsError, code: 'EINVAL' });
});

test('apply is all or nothing and lists like ipvsadm', async (t) => {
  const d = await Director.open();
  d.apply(
    tcp('10.10.36.11:80').scheduler('rr').server('10.10.36.4', { method: 'dr' }).server('10.10.36.7', { method: 'tun' }),
    fwmark(10).scheduler('rr').persistent(1800).server('192.168.10.200').server('192.168.10.201'),
  );
  const saved = d.save();
  t.is(
    saved,
    '-A -t 10.10.36.11:80 -s rr\n' +
      '-a -t 10.10.36.11:80 -r 10.10.36.4:80 -g -w 1\n' +
      '-a -t 10.10.36.11:80 -r 10.10.36.7:80 -i -w 1 --tun-type ipip\n' +
      '-A -f 10 -s rr -p 1800\n' +
      '-a -f 10 -r 192.168.10.200:0 -g -w 1\n' +
      '-a -f 10 -r 192.168.10.201:0 -g -w 1\n',
  );
  const err = t.throws(
    () => d.apply(tcp('10.0.0.9:80').server('10.0.0.10'), tcp('10.10.36.11:80')),
    { instanceOf: LvsError, code: 'EINVAL' },
  );
  t.is(err?.message, 'line 3: Service already exists');
  t.is(d.save(), saved, 'the first service of the failed apply was not added either');
});

test('builder types', (t) => {
  const b: ServiceBuilder = tcp('10.0.0.1:80');
  // @ts-expect-error scheduler names are checked
  b.scheduler('fastest');
  // @ts-expect-error scheduler flags are checked
  b.schedFlags('sh-everything');
  // @ts-expect-error the address comes from the first argument
  b.server('10.0.0.2', { address: '10.0.0.3' });
  t.pass();
});
