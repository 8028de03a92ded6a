// Every concrete ipvsadm command line of the seed articles, verbatim (shell variables expanded
// with the seeds' own values), through director.exec: each does what ipvsadm does with it,
// including the seeds' typos (an en dash instead of "-") failing exactly as ipvsadm fails.
import test, { type ExecutionContext } from 'ava';
import { Director } from 'lvs';

interface Step {
  readonly line: string;
  /** Expected exit status (ipvsadm's); default 0. */
  readonly status?: number;
  readonly stderr?: string;
}

async function run(t: ExecutionContext, steps: readonly Step[]): Promise<Director> {
  const d = await Director.open();
  for (const s of steps) {
    const r = d.exec(s.line);
    t.is(r.status, s.status ?? 0, `${s.line}: ${r.stderr}`);
    if (s.stderr !== undefined) t.is(r.stderr, s.stderr, s.line);
  }
  return d;
}

test('seed 000 (LVS-TUN + DR): lvs-tun script and listing', async (t) => {
  const [VIP, RIP1, RIP2] = ['10.10.36.11', '10.10.36.4', '10.10.36.7'];
  const d = await run(t, [
    { line: 'ipvsadm -C' },
    { line: `ipvsadm -At ${VIP}:80 -s rr` },
    { line: `ipvsadm -at ${VIP}:80 -r ${RIP1}:80 -i -w 1` },
    { line: `ipvsadm -at ${VIP}:80 -r ${RIP2}:80 -i -w 1` },
    { line: 'ipvsadm -C' },
    { line: 'ipvsadm -At 10.10.36.11:80 -s rr' },
    { line: 'ipvsadm -at 10.10.36.11:80 -r 10.10.36.4:80 -g -w 1' },
    { line: 'ipvsadm -at 10.10.36.11:80 -r 10.10.36.7:80 -i -w 1' },
    { line: 'ipvsadm -L -n --stats' },
    { line: 'ipvsadm -Ln --stats' },
  ]);
  const ln = d.exec('ipvsadm -Ln').stdout;
  // The seed's listing (counters aside): header, title, service, Route and Tunnel servers.
  t.regex(ln, /^IP Virtual Server version 1\.2\.1 \(size=4096\)\nProt LocalAddress:Port Scheduler Flags\n/);
  t.regex(ln, /\nTCP {2}10\.10\.36\.11:80 rr\n {2}-> 10\.10\.36\.4:80 {16}Route {3}1 {6}0 {10}0 {9}\n {2}-> 10\.10\.36\.7:80 {16}Tunnel {2}1 {6}0 {10}0 {9}\n$/);
});

test('seed 001 (LVS/DR and LVS/NAT on 10.10.10.10): both variants of the same servers', async (t) => {
  await run(t, [
    { line: 'ipvsadm -A -t 10.10.10.10:80 -s rr' },
    { line: 'ipvsadm -a -t 10.10.10.10:80 -r 192.168.122.101 -g -w 1' },
    { line: 'ipvsadm -a -t 10.10.10.10:80 -r 192.168.122.102 -g -w 1' },
    // The article's NAT variant of the same lines: on a live DR table they collide, as in ipvsadm.
    { line: 'ipvsadm -a -t 10.10.10.10:80 -r 192.168.122.101 -m -w 1', status: 255, stderr: 'Destination already exists\n' },
    { line: 'ipvsadm -C' },
    { line: 'ipvsadm -A -t 192.168.122.100:80 -s rr' },
    { line: 'ipvsadm -a -t 192.168.122.100:80 -r 192.168.122.101 -m -w 1' },
    { line: 'ipvsadm -a -t 192.168.122.100:80 -r 192.168.122.102 -m -w 1' },
    { line: 'ipvsadm -ln' },
    { line: 'ipvsadm -h' },
  ]);
  t.pass();
});

test('seed 002 (keepalived article): wrr service, timeouts, --set', async (t) => {
  const d = await run(t, [
    { line: 'ipvsadm -A -t 192.168.60.200:8080 -s wrr' },
    { line: 'ipvsadm -a -t 192.168.60.200:8080 -r 192.168.60.121:8080 -w 1' },
    { line: 'ipvsadm -a -t 192.168.60.200:8080 -r 192.168.60.122:8080 -w 1' },
  ]);
  t.is(d.exec('ipvsadm -L --timeout').stdout, 'Timeout (tcp tcpfin udp): 900 120 300\n');
  t.is(d.exec('ipvsadm --set 1 2 1').status, 0);
  t.is(d.exec('ipvsadm -L --timeout').stdout, 'Timeout (tcp tcpfin udp): 1 2 1\n');
  t.regex(d.exec('ipvsadm -ln').stdout, /TCP {2}192\.168\.60\.200:8080 wrr\n {2}-> 192\.168\.60\.121:8080 {10}Route {3}1 /);
});

test('seed 003 (persistence and fwmark): every command, typos failing like ipvsadm', async (t) => {
  const tryHelp = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n";
  const d = await run(t, [
    { line: 'ipvsadm -A -t 192.168.10.100:80 -s rr' },
    { line: 'ipvsadm -a -t 192.168.10.100:80 -r 192.168.1.100 -m' },
    { line: 'ipvsadm -a -t 192.168.10.100:80 -r 192.168.1.101 \u2013m', status: 2, stderr: 'unexpected argument \u2013m\n' },
    { line: 'ipvsadm -A -t 192.168.10.101:80 -s rr' },
    { line: 'ipvsadm -a -t 192.168.10.101:80 -r 192.168.10.200 -g' },
    { line: 'ipvsadm -a -t 192.168.10.101:80 -r 192.168.10.201 -g' },
    { line: 'ipvsadm -ln' },
    { line: 'ipvsadm \u2013C', status: 255, stderr: tryHelp },
    { line: 'ipvsadm \u2013ln', status: 255, stderr: tryHelp },
    { line: 'ipvsadm -C' },
    { line: 'ipvsadm -A -t 192.168.10.101:0 -s rr -p 1800' },
    { line: 'ipvsadm -a -t 192.168.10.101:0 -r 192.168.10.200 -g' },
    { line: 'ipvsadm -a -t 192.168.10.101:0 -r 192.168.10.201 -g' },
    { line: 'ipvsadm -C' },
    { line: 'ipvsadm -A -t 192.168.10.101:80 -s rr -p 1800' },
    { line: 'ipvsadm -A -t 192.168.10.101:22 -s rr -p 1800' },
    { line: 'ipvsadm -a -t 192.168.10.101:80 -r 192.168.10.200 -g' },
    { line: 'ipvsadm -a -t 192.168.10.101:80 -r 192.168.10.201 -g' },
    { line: 'ipvsadm -a -t 192.168.10.101:22 -r 192.168.10.200 \u2013g', status: 2, stderr: 'unexpected argument \u2013g\n' },
    { line: 'ipvsadm -a -t 192.168.10.101:22 -r 192.168.10.201 -g' },
    { line: 'ipvsadm -C' },
    { line: 'ipvsadm -A -f 10 -s rr -p 1800' },
    { line: 'ipvsadm -a -f 10 -r 192.168.10.200' },
    { line: 'ipvsadm -a -f 10 -r 192.168.10.201' },
  ]);
  t.is(
    d.exec('ipvsadm -ln').stdout,
    'IP Virtual Server version 1.2.1 (size=4096)\n' +
      'Prot LocalAddress:Port Scheduler Flags\n' +
      '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
      'FWM  10 rr persistent 1800\n' +
      '  -> 192.168.10.200:0             Route   1      0          0         \n' +
      '  -> 192.168.10.201:0             Route   1      0          0         \n',
  );
  t.is(d.exec('ipvsadm -S').stdout, '-A -f 10 -s rr -p 1800\n-a -f 10 -r 192.168.10.200:0 -g -w 1\n-a -f 10 -r 192.168.10.201:0 -g -w 1\n');
  t.is(d.exec('ipvsadm -Z').status, 0);
});
