// ipvsadm compatibility through the SDK: seed command lines, byte-identical output, atomic restore.
import test from 'ava';
import { Director, LvsError } from 'lvs';

test('seed command lines run unchanged and list like ipvsadm -Ln', async (t) => {
  const d = await Director.open();
  for (const line of [
    'ipvsadm -At 10.10.36.11:80 -s rr',
    'ipvsadm -at 10.10.36.11:80 -r 10.10.36.4:80 -g -w 100',
    'ipvsadm -at 10.10.36.11:80 -r 10.10.36.7:80 -i -w 100',
  ]) {
    t.deepEqual(d.exec(line), { stdout: '', stderr: '', status: 0 }, line);
  }
  t.is(
    d.exec('-Ln').stdout,
    [
      'IP Virtual Server version 1.2.1 (size=4096)',
      'Prot LocalAddress:Port Scheduler Flags',
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
      'TCP  10.10.36.11:80 rr',
      '  -> 10.10.36.4:80                Route   100    0          0         ',
      '  -> 10.10.36.7:80                Tunnel  100    0          0         ',
      '',
    ].join('\n'),
  );
  // The typed API and ipvsadm see the same table.
  t.deepEqual(
    d.list()[0]?.servers.map((s) => [s.address, s.method, s.weight]),
    [
      ['10.10.36.4:80', 'route', 100],
      ['10.10.36.7:80', 'tunnel', 100],
    ],
  );
  t.deepEqual(d.exec(['-L', '--timeout']), { stdout: 'Timeout (tcp tcpfin udp): 900 120 300\n', stderr: '', status: 0 });
});

test('errors come back as ipvsadm prints them and change nothing', async (t) => {
  const d = await Director.open();
  d.exec('-A -t 192.168.10.100:80 -s rr');
  t.deepEqual(d.exec('-A -t 192.168.10.100:80 -s rr'), { stdout: '', stderr: 'Service already exists\n', status: 255 });
  t.deepEqual(d.exec('-n -L'), {
    stdout: '',
    stderr: "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n",
    status: 255,
  });
  t.is(d.exec('-a -t 192.168.10.100:80 -r 192.168.1.101 -w 70000').stderr, 'illegal weight specified\n');
  t.is(d.save(), '-A -t 192.168.10.100:80 -s rr\n');
});

test('save and restore round-trip; restore is atomic and names the line', async (t) => {
  const a = await Director.open();
  a.addService({ protocol: 'tcp', address: '192.168.10.101:0', scheduler: 'rr', persistent: 1800 })
    .addServer({ address: '192.168.10.101:0' }, { address: '192.168.10.200' })
    .addService({ fwmark: 10, scheduler: 'sh', schedFlags: ['sh-port'], persistent: 60, netmask: '255.255.255.0' })
    .addServer({ fwmark: 10 }, { address: '10.0.0.5', method: 'tunnel', tunnel: { type: 'gre', checksum: 'csum' } });
  const rules = a.save();
  t.is(
    rules,
    '-A -t 192.168.10.101:0 -s rr -p 1800\n' +
      '-a -t 192.168.10.101:0 -r 192.168.10.200:0 -g -w 1\n' +
      '-A -f 10 -s sh -p 60 -M 255.255.255.0 -b sh-port\n' +
      '-a -f 10 -r 10.0.0.5:0 -i -w 1 --tun-type gre --tun-csum\n',
  );
  const b = await Director.open();
  b.restore(rules);
  t.is(b.save(), rules);
  const bad = t.throws(() => b.restore('-A -t 10.9.9.9:80\n-a -t 10.9.9.9:80 -r 1.2.3.4 -x 5 -y 9\n-C\n'), {
    instanceOf: LvsError,
  });
  t.is(bad?.code, 'EINVAL');
  t.is(bad?.message, 'line 2: Numerical result out of range');
  t.is(b.save(), rules, 'nothing applied');
  t.is(b.exec('-R', rules.replaceAll('-A', '-E').split('\n').filter((l) => l.startsWith('-E')).join('\n')).status, 0);
});
