// net.ipv4.vs.* settings: typed and by name, all-or-nothing, and what they change in the tables.
import test from 'ava';
import { applySysctlConf, Director, type IpvsSysctlSettings, LvsError, parseSysctlConf } from 'lvs';

const DEFAULTS = {
  expire_nodest_conn: 0,
  expire_quiescent_template: 0,
  sloppy_tcp: 0,
  sloppy_sctp: 0,
  conn_reuse_mode: 1,
  secure_tcp: 0,
  lblc_expiration: 86400,
  lblcr_expiration: 86400,
  sync_version: 1,
  sync_threshold: [3, 50],
  sync_persist_mode: 0,
  sync_qlen_max: 1024,
};

test('the kernel defaults; typed and by-name settings; open({ sysctl })', async (t) => {
  const d = await Director.open();
  t.deepEqual(d.sysctl(), DEFAULTS);
  d.setSysctl({ expire_nodest_conn: true, sync_threshold: [5, 100], lblc_expiration: 60 });
  d.setSysctl('net.ipv4.vs.sloppy_tcp', 1);
  d.setSysctl('conn_reuse_mode', '3');
  t.deepEqual(d.sysctl(), {
    ...DEFAULTS,
    expire_nodest_conn: 1,
    sync_threshold: [5, 100],
    lblc_expiration: 60,
    sloppy_tcp: 1,
    conn_reuse_mode: 3,
  });
  t.is(d.sysctl('net/ipv4/vs/sync_threshold'), '5\t100');
  t.is(d.sysctl('pmtu_disc'), '1', 'a setting lvs does not act on reads as what lvs does');
  const opened = await Director.open({ sysctl: { expire_quiescent_template: 1 } });
  t.is(opened.sysctl().expire_quiescent_template, 1);
});

test('a bad setting is an error naming it, and nothing given with it takes effect', async (t) => {
  const d = await Director.open();
  const cases: [IpvsSysctlSettings, string, string][] = [
    [{ sloppy_tcp: 1, sync_version: 2 }, 'ERANGE', 'net.ipv4.vs.sync_version: 2 is out of range 0..1'],
    [{ sloppy_tcp: 1, sync_threshold: [50, 50] }, 'ERANGE', 'net.ipv4.vs.sync_threshold: threshold 50 must be below period 50'],
    [{ sloppy_tcp: 1, conn_reuse_mode: 1.5 }, 'EINVAL', "net.ipv4.vs.conn_reuse_mode: '1.5' is not an integer"],
    [{ sloppy_tcp: 1, drop_entry: 1 } as never, 'ENOTSUP', 'net.ipv4.vs.drop_entry: not supported by lvs (it behaves as drop_entry = 0)'],
    [{ sloppy_tcp: 1, no_such_thing: 1 } as never, 'ENOENT', 'net.ipv4.vs.no_such_thing: no such sysctl'],
  ];
  for (const [settings, code, message] of cases) {
    const err = t.throws(() => d.setSysctl(settings), { instanceOf: LvsError });
    t.deepEqual([err?.code, err?.message], [code, message]);
    t.deepEqual(d.sysctl(), DEFAULTS);
  }
  await t.throwsAsync(Director.open({ sysctl: { sync_version: 9 } }), { code: 'ERANGE' });
});

test('expire_quiescent_template moves a persistent client off a weight-0 server; default keeps it', async (t) => {
  for (const on of [0, 1]) {
    const d = await Director.open({ clock: 'manual', sysctl: { expire_quiescent_template: on } });
    d.exec('-A -t 10.0.0.1:80 -s rr -p 300');
    d.exec('-a -t 10.0.0.1:80 -r 192.168.1.1 -g');
    d.exec('-a -t 10.0.0.1:80 -r 192.168.1.2 -g');
    const first = d.routeFlow({ protocol: 'tcp', client: '172.16.0.9:1000', virtual: '10.0.0.1:80' });
    const host = first?.server.split(':')[0] ?? '';
    d.exec(`-e -t 10.0.0.1:80 -r ${host} -g -w 0`);
    const again = d.routeFlow({ protocol: 'tcp', client: '172.16.0.9:1001', virtual: '10.0.0.1:80' });
    if (on) t.not(again?.server, first?.server, 'template invalidated: scheduled anew');
    else t.is(again?.server, first?.server, 'the template still holds');
  }
});

test('expire_nodest_conn: a flow whose server was deleted is scheduled anew instead of dropped', async (t) => {
  for (const on of [0, 1]) {
    const d = await Director.open({ clock: 'manual', sysctl: { expire_nodest_conn: on } });
    d.exec('-A -u 10.0.0.1:53 -s rr');
    d.exec('-a -u 10.0.0.1:53 -r 192.168.1.1 -g');
    d.exec('-a -u 10.0.0.1:53 -r 192.168.1.2 -g');
    const flow = { protocol: 'udp', client: '172.16.0.9:1000', virtual: '10.0.0.1:53' } as const;
    const first = d.routeFlow(flow);
    d.exec(`-d -u 10.0.0.1:53 -r ${first?.server.split(':')[0] ?? ''}`);
    const again = d.routeFlow(flow);
    if (on) t.truthy(again && again.server !== first?.server, 'rescheduled to the remaining server');
    else t.is(again, null, 'the old connection still owns the flow, and its packets are dropped');
  }
});

test('sysctl.conf files: IPVS lines applied, others skipped, a bad line named and nothing applied', async (t) => {
  const conf = [
    '# /etc/sysctl.d/90-lvs.conf',
    'net.ipv4.ip_forward = 1',
    '; another comment',
    'net.ipv4.vs.expire_nodest_conn = 1',
    '-net.ipv4.vs.sloppy_tcp=1',
    'net/ipv4/vs/sync_threshold = 3 40',
    '',
  ].join('\n');
  t.deepEqual(parseSysctlConf(conf), [
    { line: 4, name: 'net.ipv4.vs.expire_nodest_conn', value: '1' },
    { line: 5, name: 'net.ipv4.vs.sloppy_tcp', value: '1' },
    { line: 6, name: 'net/ipv4/vs/sync_threshold', value: '3 40' },
  ]);
  const d = await Director.open();
  applySysctlConf(d, conf, '90-lvs.conf');
  t.like(d.sysctl(), { expire_nodest_conn: 1, sloppy_tcp: 1, sync_threshold: [3, 40] });

  const fresh = await Director.open();
  const err = t.throws(() => applySysctlConf(fresh, `${conf}net.ipv4.vs.drop_packet = 3\n`, '90-lvs.conf'), {
    instanceOf: LvsError,
  });
  t.is(err?.message, '90-lvs.conf:7: net.ipv4.vs.drop_packet: not supported by lvs (it behaves as drop_packet = 0)');
  t.deepEqual(fresh.sysctl(), DEFAULTS, 'the lines before it were taken back');
  t.throws(() => parseSysctlConf('net.ipv4.vs.sloppy_tcp\n', 'x.conf'), {
    message: "x.conf:1: expected 'name = value': net.ipv4.vs.sloppy_tcp",
  });
});
