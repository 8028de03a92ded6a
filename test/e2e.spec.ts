// Real traffic through lvs: lvsd on the director's interface, configured with lvsadm like the
// seeds configure ipvsadm, HTTP from a client namespace to the VIP, answered by real servers.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canUseNetns } from './helpers/netns.js';
import { createTopology, type Topology } from './helpers/topology.js';

const maybe = canUseNetns ? test.serial : test.skip;
const bin = (name: string) => fileURLToPath(new URL(`../packages/lvs/dist/bin/${name}.js`, import.meta.url));

async function startLvsd(t: Parameters<typeof createTopology>[0], topo: Topology): Promise<(args: string) => string> {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'lvsadm.sock');
  const ifaces = topo.director.ifaces.flatMap((i) => ['-i', i.name]);
  const lvsd = topo.spawn(topo.director, process.execPath, [bin('lvsd'), ...ifaces, '--control-socket', socket]);
  await topo.waitFor(lvsd, /lvsd: balancing on/, 15_000);
  return (args: string) =>
    execFileSync(process.execPath, [bin('lvsadm'), ...args.split(' ')], {
      env: { ...process.env, LVSADM_SOCKET: socket },
      encoding: 'utf8',
      timeout: 10_000,
    });
}

function tally(servers: readonly (string | null)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of servers) out[s ?? 'error'] = (out[s ?? 'error'] ?? 0) + 1;
  return out;
}

maybe('LVS/DR: round robin over two real servers, statistics as ipvsadm shows them', async (t) => {
  const topo = await createTopology(t, { layout: 'dr', realServers: 2, directorVip: 'none' });
  const lvsadm = await startLvsd(t, topo);
  const vip = `${topo.vip.v4}:${topo.httpPort}`;
  lvsadm(`-A -t ${vip} -s rr`);
  for (const rs of topo.realServers) lvsadm(`-a -t ${vip} -r ${rs.ipv4} -g -w 1`);

  const answers = await topo.http(6);
  t.deepEqual(
    answers.map((a) => a.error ?? null),
    [null, null, null, null, null, null],
    'every request answered',
  );
  t.deepEqual(tally(answers.map((a) => a.server)), { rs1: 3, rs2: 3 }, 'rr alternates');
  // Consecutive requests go to different servers.
  for (let i = 1; i < answers.length; i++) t.not(answers[i]?.server, answers[i - 1]?.server);

  const stats = lvsadm('-L -n --stats --exact');
  const svcLine = stats.split('\n').find((l) => l.startsWith(`TCP  ${vip}`)) ?? '';
  const [conns, inpkts, outpkts] = svcLine.trim().split(/\s+/).slice(2).map(Number);
  t.is(conns, 6, stats);
  t.true((inpkts ?? 0) >= 6 * 4, `at least SYN, ACK, request, FIN per connection: ${stats}`);
  t.is(outpkts, 0, 'DR replies go straight to the client');
  t.regex(lvsadm('-L -n'), new RegExp(`-> ${topo.realServers[0]?.ipv4}:${topo.httpPort}\\s+Route\\s+1 `));
});

maybe('LVS/NAT: replies are rewritten back to the VIP, in and out counted', async (t) => {
  const topo = await createTopology(t, { layout: 'nat', realServers: 2, directorVip: 'none' });
  const lvsadm = await startLvsd(t, topo);
  const vip = `${topo.vip.v4}:${topo.httpPort}`;
  lvsadm(`-A -t ${vip} -s rr`);
  for (const rs of topo.realServers) lvsadm(`-a -t ${vip} -r ${rs.ipv4}:${topo.httpPort} -m -w 1`);
  const answers = await topo.http(4);
  t.deepEqual(
    answers.map((a) => a.server ?? a.error),
    ['rs2', 'rs1', 'rs2', 'rs1'],
    'rr starts with the newest server',
  );
  const stats = lvsadm('-L -n --stats --exact');
  const svcLine = stats.split('\n').find((l) => l.startsWith(`TCP  ${vip}`)) ?? '';
  const [conns, inpkts, outpkts, inbytes, outbytes] = svcLine.trim().split(/\s+/).slice(2).map(Number);
  t.is(conns, 4, stats);
  t.true((outpkts ?? 0) >= 4 * 3 && (inpkts ?? 0) >= 4 * 3, stats);
  t.true((outbytes ?? 0) > (inbytes ?? 0), 'HTTP responses are larger than requests');
  // Masq entries are listed with their state.
  t.regex(lvsadm('-L -n -c'), /TCP .* (TIME_WAIT|CLOSE|FIN_WAIT|CLOSE_WAIT|ESTABLISHED) /);
});

maybe('LVS/TUN: IP-in-IP to real servers that decapsulate in user space; mixed with DR', async (t) => {
  const topo = await createTopology(t, { layout: 'tun', realServers: 2, directorVip: 'none' });
  const lvsadm = await startLvsd(t, topo);
  const vip = `${topo.vip.v4}:${topo.httpPort}`;
  const [rs1, rs2] = topo.realServers;
  lvsadm(`-A -t ${vip} -s rr`);
  // Seed 000's cluster: one tunnel and one direct-routing real server behind the same VIP.
  lvsadm(`-a -t ${vip} -r ${rs1?.ipv4} -i -w 1`);
  lvsadm(`-a -t ${vip} -r ${rs2?.ipv4} -g -w 1`);
  const answers = await topo.http(4);
  t.deepEqual(tally(answers.map((a) => a.server ?? a.error ?? null)), { rs1: 2, rs2: 2 });
  const list = lvsadm('-L -n');
  t.regex(list, new RegExp(`-> ${rs1?.ipv4}:${topo.httpPort}\\s+Tunnel\\s+1 `));
  t.regex(list, new RegExp(`-> ${rs2?.ipv4}:${topo.httpPort}\\s+Route\\s+1 `));
  // The tunnel server's decapsulator really saw IP-in-IP packets.
  const decap = topo.processesOf(rs1!).find((p) => /decap/.test(p.child.spawnargs.join(' ')));
  t.truthy(decap, 'lvs-tun-decap runs on the tunnel server');
});
