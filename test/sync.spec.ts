// Connection synchronization between two directors: the master balances real TCP connections
// (LVS/DR), its sync daemon multicasts them (IPVS sync protocol v1), the backup's connection
// table shows them, and after the client's traffic moves to the backup (what a VRRP takeover
// does to the VIP) the established stream continues without a reset. tshark's IPVS dissector
// decodes what we sent.
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Director } from '../packages/lvs/dist/index.js';
import { canUseNetns } from './helpers/netns.js';
import { ECHO_PORT, ECHO_SERVER, lastServer, sleep, STREAM_CLIENT, until } from './helpers/stream.js';
import { createTopology, type Host, type Topology, systemTool } from './helpers/topology.js';

const maybe = canUseNetns ? test.serial : test.skip;
const bin = (name: string) => fileURLToPath(new URL(`../packages/lvs/dist/bin/${name}.js`, import.meta.url));
const TSHARK = systemTool('tshark');
const TCPDUMP = systemTool('tcpdump');

type Lvsadm = (args: string) => string;

async function startLvsd(
  t: Parameters<typeof createTopology>[0],
  topo: Topology,
  host: Host,
): Promise<{ lvsadm: Lvsadm; socket: string; stop: () => Promise<unknown> }> {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-sy-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'lvsadm.sock');
  const lvsd = topo.spawn(host, process.execPath, [bin('lvsd'), '-I', 'eth0', '--control-socket', socket]);
  await topo.waitFor(lvsd, /lvsd: balancing on/, 15_000);
  const lvsadm = (args: string) =>
    execFileSync(process.execPath, [bin('lvsadm'), ...args.split(' ')], {
      env: { ...process.env, LVSADM_SOCKET: socket },
      encoding: 'utf8',
      timeout: 10_000,
    });
  return { lvsadm, socket, stop: () => lvsd.stop(2000) };
}

const mac = (h: Host) => h.ns.run('cat', ['/sys/class/net/eth0/address']).trim();

/** Points the client's VIP neighbour entry at one director (what a VRRP takeover's gratuitous ARP does). */
function pointVip(topo: Topology, to: Host): void {
  topo.run(topo.client, 'ip', ['neigh', 'replace', topo.vip.v4, 'lladdr', mac(to), 'dev', 'eth0', 'nud', 'permanent']);
}

maybe('the backup learns the master\'s connections and takes over an established stream', async (t) => {
  t.timeout(120_000);
  const topo = await createTopology(t, { layout: 'dr', directorVip: 'none', secondDirector: true, realServers: 2 });
  const backupHost = topo.director2;
  if (!backupHost) throw new Error('no second director');
  for (const rs of topo.realServers) {
    const p = topo.spawn(rs, process.execPath, ['-e', ECHO_SERVER, rs.name]);
    await topo.waitFor(p, /listening/, 10_000);
  }
  // Both directors see the sync traffic as it really is: no VIP on the backup's link yet.
  pointVip(topo, topo.director);
  const master = await startLvsd(t, topo, topo.director);
  const backup = await startLvsd(t, topo, backupHost);
  const vip = `${topo.vip.v4}:${ECHO_PORT}`;
  for (const { lvsadm } of [master, backup]) {
    lvsadm(`-A -t ${vip} -s rr`);
    for (const rs of topo.realServers) lvsadm(`-a -t ${vip} -r ${rs.ipv4} -g -w 1`);
  }
  // The daemons, through lvsadm as with ipvsadm.
  master.lvsadm('--start-daemon master --mcast-interface eth0 --syncid 42');
  backup.lvsadm('--start-daemon backup --mcast-interface eth0 --syncid 42');
  t.is(
    master.lvsadm('-L --daemon'),
    'master sync daemon (mcast=eth0, syncid=42, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
  );
  t.is(
    backup.lvsadm('-L --daemon'),
    'backup sync daemon (mcast=eth0, syncid=42, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n',
  );
  // A daemon on an interface the director's namespace does not have: ipvsadm's ENODEV text.
  master.lvsadm('--stop-daemon master');
  const nodev = spawnSync(process.execPath, [bin('lvsadm'), '--start-daemon', 'master', '--mcast-interface', 'nope0'], {
    env: { ...process.env, LVSADM_SOCKET: master.socket },
    encoding: 'utf8',
    timeout: 10_000,
  });
  t.deepEqual([nodev.status, nodev.stderr], [255, 'No such device\n']);
  master.lvsadm('--start-daemon master --mcast-interface eth0 --syncid 42');

  // Capture the sync datagrams on the backup's link while the stream starts.
  const pcapDir = mkdtempSync(join(tmpdir(), 'lvs-sy-pcap-'));
  t.teardown(() => rmSync(pcapDir, { recursive: true, force: true }));
  const pcap = join(pcapDir, 'sync.pcap');
  const capture = TCPDUMP
    ? topo.spawn(backupHost, TCPDUMP, ['-i', 'eth0', '-U', '-n', '-c', '2', '-w', pcap, 'udp', 'port', '8848'])
    : null;
  if (capture) await sleep(500);

  const stream = topo.spawn(topo.client, process.execPath, ['-e', STREAM_CLIENT, topo.vip.v4]);
  await topo.waitFor(stream, /connected/, 10_000);
  await topo.waitFor(stream, /rs\d:line3\n/, 10_000);
  const server = /(rs\d):line3/.exec(stream.output())?.[1];
  const serverIp = topo.realServers.find((h) => h.name === server)?.ipv4;
  t.truthy(serverIp);

  // The backup's table shows the stream: ESTABLISHED, same client, same real server.
  const cport = topo.run(topo.client, 'ss', ['-Htn', 'state', 'established', 'dst', `${topo.vip.v4}:${ECHO_PORT}`])
    .trim()
    .split(/\s+/)[2]
    ?.split(':')[1];
  t.truthy(cport);
  const entry = new RegExp(
    `TCP\\s+\\S+\\s+ESTABLISHED\\s+${topo.client.ipv4}:${cport}\\s+${topo.vip.v4}:${ECHO_PORT}\\s+${serverIp}:${ECHO_PORT}`,
  );
  t.true(await until(10_000, () => entry.test(backup.lvsadm('-L -n -c'))), backup.lvsadm('-L -n -c'));
  t.regex(master.lvsadm('-L -n -c'), entry);

  // tshark decodes our datagrams as IPVS sync messages with the sync id, count and addresses.
  if (capture && TSHARK) {
    await capture.exited;
    const fields = execFileSync(
      TSHARK,
      ['-r', pcap, '-d', 'udp.port==8848,ipvs', '-T', 'fields', '-E', 'separator=,', '-e', 'ip.dst', '-e', 'ipvs.syncid', '-e', 'ipvs.conncount', '-e', 'ipvs.caddr', '-e', 'ipvs.vaddr', '-e', 'ipvs.daddr', '-e', 'ipvs.cport'],
      { encoding: 'utf8', timeout: 30_000 },
    );
    const line = fields.split('\n').find((l) => l.includes(`${cport}`));
    t.truthy(line, fields);
    const [dst, syncid, count, caddr, vaddr, daddr] = (line ?? '').split(',');
    t.deepEqual([dst, syncid, caddr, vaddr, daddr], ['224.0.0.81', '42', topo.client.ipv4, topo.vip.v4, serverIp]);
    t.true(Number(count) >= 1);
  } else {
    t.log('tcpdump or tshark missing: sync packet decode skipped');
  }

  // Failover: the master dies, the VIP moves to the backup, the stream goes on.
  await master.stop();
  pointVip(topo, backupHost);
  const before = (stream.output().match(/line\d+/g) ?? []).length;
  t.true(await until(10_000, () => (stream.output().match(/line\d+/g) ?? []).length >= before + 20), stream.output().slice(-400));
  const out = stream.output();
  t.false(/ERROR|CLOSED/.test(out), out.slice(-400));
  // The echo server prefixes each chunk it answers with its name: the last chunk is still the same server's.
  t.is(lastServer(out), server, 'still the same real server');
  // The backup forwards it on the synced entry.
  t.regex(backup.lvsadm('-L -n -c'), entry);
});

test('startDaemon, daemons and stopDaemon on an in-memory director', async (t) => {
  const d = await Director.open();
  t.teardown(() => d.close());
  const info = d.startDaemon({ state: 'master', mcastInterface: 'eth1', syncId: 9 });
  t.deepEqual(info, {
    state: 'master',
    mcastInterface: 'eth1',
    syncId: 9,
    syncMaxlen: 1472,
    mcastGroup: '224.0.0.81',
    mcastPort: 8848,
    mcastTtl: 1,
  });
  t.is(d.exec('--start-daemon backup --mcast-interface eth2 --mcast-port 9000').status, 0);
  t.is(
    d.exec('-L --daemon').stdout,
    'master sync daemon (mcast=eth1, syncid=9, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n' +
      'backup sync daemon (mcast=eth2, syncid=0, maxlen=1472, group=224.0.0.81, port=9000, ttl=1)\n',
  );
  const again = d.exec('--start-daemon master');
  t.deepEqual([again.status, again.stderr], [255, 'Daemon has already run\n']);
  t.throws(() => d.startDaemon({ state: 'backup' }), { code: 'EEXIST' });
  t.throws(() => d.startDaemon({ state: 'master', syncId: 256 }), { code: 'ERANGE' });
  d.stopDaemon('master');
  t.deepEqual(d.daemons().map((x) => x.state), ['backup']);
  t.is(d.exec('--stop-daemon backup').status, 0);
  t.throws(() => d.stopDaemon('backup'), { code: 'ESRCH', message: 'No daemon is running' });
  t.is(d.syncStats()['connsQueued'], 0n);
});
