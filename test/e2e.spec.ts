// Real traffic through lvs: lvsd on the director's interface, configured with lvsadm like the
// seeds configure ipvsadm, HTTP from a client namespace to the VIP, answered by real servers.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canUseNetns } from './helpers/netns.js';
import { createTopology, systemTool, type Answer, type Topology } from './helpers/topology.js';

const maybe = canUseNetns ? test.serial : test.skip;
const bin = (name: string) => fileURLToPath(new URL(`../packages/lvs/dist/bin/${name}.js`, import.meta.url));

async function startLvsd(
  t: Parameters<typeof createTopology>[0],
  topo: Topology,
  extra: readonly string[] = [],
): Promise<(args: string) => string> {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'lvsadm.sock');
  const ifaces = topo.director.ifaces.flatMap((i) => ['-I', i.name]);
  const lvsd = topo.spawn(topo.director, process.execPath, [bin('lvsd'), ...ifaces, ...extra, '--control-socket', socket]);
  await topo.waitFor(lvsd, /: balancing on /, 15_000).catch((err: unknown) => {
    throw new Error(`${(err as Error).message}\n${lvsd.output()}`);
  });
  return (args: string) =>
    execFileSync(process.execPath, [bin('lvsadm'), ...args.split(' ')], {
      env: { ...process.env, LVSADM_SOCKET: socket },
      encoding: 'utf8',
      timeout: 10_000,
    });
}

/** The service line of `lvsadm -L -n --stats --exact`: conns, inpkts, outpkts, inbytes, outbytes. */
function serviceStats(stats: string, head: string): number[] {
  const line = stats.split('\n').find((l) => l.startsWith(head));
  if (!line) throw new Error(`no service line ${head} in:\n${stats}`);
  return line.trim().split(/\s+/).slice(2).map(Number);
}

function errors(answers: readonly Answer[]): (string | null)[] {
  return answers.map((a) => a.error ?? null);
}

function tally(servers: readonly (string | null)[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of servers) out[s ?? 'error'] = (out[s ?? 'error'] ?? 0) + 1;
  return out;
}

maybe('LVS/DR: round robin over two real servers, statistics as ipvsadm shows them', async (t) => {
  const topo = await createTopology(t, { layout: 'dr', realServers: 2, directorVip: 'none' });
  // The net.ipv4.vs settings an operator keeps in sysctl.d, plus one on the command line.
  const conf = join(mkdtempSync(join(tmpdir(), 'lvs-e2e-sysctl-')), '90-lvs.conf');
  t.teardown(() => rmSync(dirname(conf), { recursive: true, force: true }));
  writeFileSync(conf, 'net.ipv4.ip_forward = 1\nnet.ipv4.vs.expire_nodest_conn = 1\n');
  const lvsadm = await startLvsd(t, topo, ['--sysctl-file', conf, '--sysctl', 'net.ipv4.vs.sloppy_tcp=1']);
  t.is(lvsadm('--sysctl expire_nodest_conn sloppy_tcp'), 'net.ipv4.vs.expire_nodest_conn = 1\nnet.ipv4.vs.sloppy_tcp = 1\n');
  // A setting lvs cannot honour stops the start, naming the file and line.
  writeFileSync(conf, 'net.ipv4.vs.expire_nodest_conn = 1\nnet.ipv4.vs.drop_entry = 1\n');
  const refused = topo.spawn(topo.director, process.execPath, [
    bin('lvsd'), '-I', 'eth0', '--sysctl-file', conf, '--control-socket', join(dirname(conf), 'other.sock'),
  ]);
  t.is(await refused.exited, 1);
  t.regex(refused.output(), /lvsd: ENOTSUP: .*90-lvs\.conf:2: net\.ipv4\.vs\.drop_entry: not supported by lvs/);
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

/** The per-destination line of `lvsadm -L -n --stats --exact`: conns, inpkts, outpkts, inbytes, outbytes. */
function destStats(stats: string, dest: string): number[] {
  const line = stats.split('\n').find((l) => l.trim().startsWith(`-> ${dest} `));
  if (!line) throw new Error(`no destination line ${dest} in:\n${stats}`);
  return line.trim().split(/\s+/).slice(2).map(Number);
}

/** A counter from lvs-tun-decap's exit summary (`gue=3 gue_malformed=0 ...`). */
function decapCounter(output: string, name: string): number {
  const m = new RegExp(`exit \\(.*\\s${name}=(\\d+)`).exec(output);
  if (!m) throw new Error(`no ${name}= in lvs-tun-decap's summary:\n${output}`);
  return Number(m[1]);
}

maybe('LVS/TUN with GUE and GRE real servers (--tun-type gue|gre), IPv4 and IPv6, counted on both ends', async (t) => {
  t.timeout(90_000);
  const topo = await createTopology(t, {
    layout: 'tun',
    realServers: 2,
    directorVip: 'none',
    decapArgs: [['--gue', '6080'], ['--gre']],
  });
  const lvsadm = await startLvsd(t, topo);
  const [rs1, rs2] = topo.realServers as [Topology['realServers'][number], Topology['realServers'][number]];
  const vip = `${topo.vip.v4}:${topo.httpPort}`;
  const vip6 = `[${topo.vip.v6}]:${topo.httpPort}`;
  lvsadm(`-A -t ${vip} -s rr`);
  lvsadm(`-a -t ${vip} -r ${rs1.ipv4} -i -w 1 --tun-type gue --tun-port 6080 --tun-csum`);
  lvsadm(`-a -t ${vip} -r ${rs2.ipv4} -i -w 1 --tun-type gre --tun-nocsum`);
  // IPv6 with the other checksum options: GUE without a UDP checksum over IPv6 (as the kernel
  // sends it), GRE with its checksum.
  lvsadm(`-A -t ${vip6} -s rr`);
  lvsadm(`-a -t ${vip6} -r ${rs1.ipv6} -i -w 1 --tun-type gue --tun-port 6080 --tun-nocsum`);
  lvsadm(`-a -t ${vip6} -r ${rs2.ipv6} -i -w 1 --tun-type gre --tun-csum`);
  // Malformed tunnel input first: counted, and the real servers go on decapsulating. GUE: a
  // one-byte datagram, an unknown protocol, and a control message (not data, counted apart).
  const garbage = [Buffer.from([0x00]), Buffer.from('0011000045', 'hex'), Buffer.from('20000000', 'hex')];
  topo.run(topo.client, process.execPath, [
    '-e',
    `const s=require('node:dgram').createSocket('udp4');let n=0;for(const h of ${JSON.stringify(garbage.map((b) => b.toString('hex')))})s.send(Buffer.from(h,'hex'),6080,${JSON.stringify(rs1.ipv4)},()=>{if(++n===3)s.close()});`,
  ]);
  // GRE (raw socket, needs python3): version 1, and a checksum that does not verify.
  const python = systemTool('python3');
  if (python) {
    topo.run(topo.client, python, [
      '-c',
      `import socket;s=socket.socket(socket.AF_INET,socket.SOCK_RAW,47);[s.sendto(bytes.fromhex(h),(${JSON.stringify(rs2.ipv4)},0)) for h in ('000108004500','8000080012340000450000')]`,
    ]);
  }
  const info = lvsadm('-L -n --tun-info');
  t.regex(info, new RegExp(`-> ${rs1.ipv4}:${topo.httpPort}\\s+Tunnel\\s+gue:6080:\\+c\\s+1 `), info);
  t.regex(info, new RegExp(`-> ${rs2.ipv4}:${topo.httpPort}\\s+Tunnel\\s+gre:-c\\s+1 `), info);

  const answers = await topo.http(4);
  t.deepEqual(errors(answers), [null, null, null, null], `every IPv4 request answered: ${JSON.stringify(answers)}`);
  t.deepEqual(tally(answers.map((a) => a.server)), { rs1: 2, rs2: 2 }, 'both tunnel servers answer');
  const answers6 = await topo.http(4, { host: topo.vip.v6 });
  t.deepEqual(errors(answers6), [null, null, null, null], `every IPv6 request answered: ${JSON.stringify(answers6)}`);
  t.deepEqual(tally(answers6.map((a) => a.server)), { rs1: 2, rs2: 2 }, 'both tunnel servers answer over IPv6');

  const stats = lvsadm('-L -n --stats --exact');
  const [conns4, in4, out4] = serviceStats(stats, `TCP  ${vip}`);
  const [conns6, in6, out6] = serviceStats(stats, `TCP  ${vip6}`);
  t.deepEqual([conns4, conns6, out4, out6], [4, 4, 0, 0], `4 connections each, replies bypass the director: ${stats}`);
  t.true((in4 ?? 0) >= 4 * 4 && (in6 ?? 0) >= 4 * 4, stats);
  const port = topo.httpPort;
  const gueIn = (destStats(stats, `${rs1.ipv4}:${port}`)[1] ?? 0) + (destStats(stats, `[${rs1.ipv6}]:${port}`)[1] ?? 0);
  const greIn = (destStats(stats, `${rs2.ipv4}:${port}`)[1] ?? 0) + (destStats(stats, `[${rs2.ipv6}]:${port}`)[1] ?? 0);

  // Every packet the director tunnelled came out of the real server's GUE or GRE socket,
  // well-formed (UDP and GRE checksums checked there), and nothing else did.
  const decapOf = (rs: typeof rs1) => topo.processesOf(rs).find((p) => /lvs-tun-decap/.test(p.child.spawnargs.join(' ')))!;
  const [d1, d2] = [decapOf(rs1), decapOf(rs2)];
  await Promise.all([d1.stop(3000), d2.stop(3000)]);
  const [o1, o2] = [d1.output(), d2.output()];
  t.is(decapCounter(o1, 'gue'), gueIn, o1);
  t.is(decapCounter(o2, 'gre'), greIn, o2);
  t.true(gueIn >= 4 * 4 && greIn >= 4 * 4, `4 connections each, at least 4 packets each: ${gueIn} ${greIn}`);
  t.deepEqual(
    ['gue_received', 'gue_malformed', 'gue_other', 'ipip', 'gre'].map((n) => decapCounter(o1, n)),
    [gueIn + 3, 2, 1, 0, 0],
    o1,
  );
  t.deepEqual(
    ['gre_received', 'gre_malformed', 'gre_other', 'ipip', 'gue'].map((n) => decapCounter(o2, n)),
    python ? [greIn + 2, 2, 0, 0, 0] : [greIn, 0, 0, 0, 0],
    o2,
  );
});

maybe('persistence on a port-0 service: one client sticks to one server, a second is scheduled on its own', async (t) => {
  t.timeout(60_000);
  const topo = await createTopology(t, { layout: 'dr', realServers: 2, directorVip: 'none', secondClient: true });
  const lvsadm = await startLvsd(t, topo);
  const vip0 = `${topo.vip.v4}:0`;
  lvsadm(`-A -t ${vip0} -s rr -p 1800`);
  for (const rs of topo.realServers) lvsadm(`-a -t ${vip0} -r ${rs.ipv4} -g -w 1`);

  const first = await topo.http(4);
  t.deepEqual(errors(first), [null, null, null, null], 'every request of client 1 answered');
  const s1 = first[0]?.server;
  t.true(first.every((a) => a.server === s1), `client 1 sticks to one server: ${JSON.stringify(first)}`);
  const second = await topo.http(4, { from: topo.client2! });
  t.deepEqual(errors(second), [null, null, null, null], 'every request of client 2 answered');
  const s2 = second[0]?.server;
  t.true(second.every((a) => a.server === s2), `client 2 sticks to one server: ${JSON.stringify(second)}`);
  t.not(s2, s1, 'rr schedules the second client (its template) on the other server');
  // Client 1 still goes where its template says.
  const again = await topo.http(2);
  t.deepEqual(again.map((a) => a.server), [s1, s1]);

  const conns = lvsadm('-L -c -n');
  const rsOf = (name: string | null | undefined): string => topo.realServers.find((r) => r.name === name)?.ipv4 ?? '?';
  // Templates: the client's address with port 0 to the VIP with port 0, to the chosen server;
  // assured (ip_vs_control_assure_ct) once a connection they control was established.
  for (const [client, server] of [
    [topo.client.ipv4, rsOf(s1)],
    [topo.client2!.ipv4, rsOf(s2)],
  ] as const) {
    t.regex(conns, new RegExp(`^TCP\\s+\\S+\\s+ASSURED\\s+${client}:0\\s+${topo.vip.v4}:0\\s+${server}:0\\s*$`, 'm'), conns);
  }
  const stats = lvsadm('-L -n --stats --exact');
  t.is(serviceStats(stats, `TCP  ${vip0}`)[0], 10, stats);
});

maybe('firewall-mark service: ports 80 and 443 grouped under mark 10 land on the same server (seed 003)', async (t) => {
  t.timeout(60_000);
  const topo = await createTopology(t, { layout: 'dr', realServers: 2, directorVip: 'none', extraHttpPorts: [443] });
  const dir = mkdtempSync(join(tmpdir(), 'lvs-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const socket = join(dir, 'lvsadm.sock');
  // lvsd takes no mark rules, so a small director script owns them: the equivalent of
  // `iptables -t mangle -A PREROUTING -d VIP -p tcp -m multiport --dports 80,443 -j MARK --set-mark 10`.
  const sdk = new URL('../packages/lvs/dist/index.js', import.meta.url).href;
  const script = `
    import { Director } from ${JSON.stringify(sdk)};
    const [iface, vip, path] = process.argv.slice(1);
    const director = await Director.open({
      interfaces: [iface],
      markRules: [{ destination: vip, protocol: 'tcp', ports: [80, 443], mark: 10 }],
    });
    const control = await director.serve({ path });
    console.log('director ready');
    process.on('SIGTERM', () => { director.close(); void control.close().finally(() => process.exit(0)); });
  `;
  const proc = topo.spawn(topo.director, process.execPath, ['--input-type=module', '-e', script, 'eth0', topo.vip.v4, socket]);
  await topo.waitFor(proc, /director ready/, 15_000);
  const lvsadm = (args: string): string =>
    execFileSync(process.execPath, [bin('lvsadm'), ...args.split(' ')], {
      env: { ...process.env, LVSADM_SOCKET: socket },
      encoding: 'utf8',
      timeout: 10_000,
    });
  lvsadm('-A -f 10 -s rr -p 1800');
  for (const rs of topo.realServers) lvsadm(`-a -f 10 -r ${rs.ipv4} -g -w 1`);

  const on80 = await topo.http(3, { port: 80 });
  const on443 = await topo.http(3, { port: 443 });
  t.deepEqual(errors([...on80, ...on443]), [null, null, null, null, null, null], 'every request answered');
  const s = on80[0]?.server;
  t.truthy(s);
  const rsIp = topo.realServers.find((r) => r.name === s)?.ipv4 ?? '?';
  t.deepEqual([...on80, ...on443].map((a) => a.server), [s, s, s, s, s, s], 'one persistence template for both ports');
  // A port outside the mark rule is not balanced: nothing answers for the VIP on 8080.
  const other = await topo.http(1, { port: 8080, timeoutMs: 1000 });
  t.is(other[0]?.server, null, 'port 8080 is not in the mark rule');

  const list = lvsadm('-L -n');
  t.regex(list, /^FWM\s+10 rr persistent 1800/m, list);
  const stats = lvsadm('-L -n --stats --exact');
  t.is(serviceStats(stats, 'FWM  10')[0], 6, stats);
  // The template is keyed by the mark, shown as the virtual address (0.0.0.10) as the kernel does.
  const conns = lvsadm('-L -c -n');
  t.regex(conns, new RegExp(`^IP\\s+\\S+\\s+ASSURED\\s+${topo.client.ipv4}:0\\s+0\\.0\\.0\\.10:0\\s+${rsIp}:0\\s*$`, 'm'), conns);
});

for (const layout of ['dr', 'nat'] as const) {
  maybe(`IPv6 ${layout === 'dr' ? 'LVS/DR' : 'LVS/NAT'}: rr alternation and statistics for the IPv6 VIP`, async (t) => {
    t.timeout(60_000);
    const topo = await createTopology(t, { layout, realServers: 2, directorVip: 'none' });
    const lvsadm = await startLvsd(t, topo);
    const vip = `[${topo.vip.v6}]:${topo.httpPort}`;
    lvsadm(`-A -t ${vip} -s rr`);
    for (const rs of topo.realServers) {
      lvsadm(layout === 'dr' ? `-a -t ${vip} -r ${rs.ipv6} -g -w 1` : `-a -t ${vip} -r [${rs.ipv6}]:${topo.httpPort} -m -w 1`);
    }
    const answers = await topo.http(4, { host: topo.vip.v6 });
    t.deepEqual(
      answers.map((a) => a.server ?? a.error),
      ['rs2', 'rs1', 'rs2', 'rs1'],
      'rr starts with the newest server and alternates',
    );
    const stats = lvsadm('-L -n --stats --exact');
    const [conns, inpkts, outpkts, inbytes, outbytes] = serviceStats(stats, `TCP  ${vip}`);
    t.is(conns, 4, stats);
    t.true((inpkts ?? 0) >= 4 * 3, stats);
    if (layout === 'dr') {
      t.is(outpkts, 0, 'DR replies go straight to the client');
    } else {
      t.true((outpkts ?? 0) >= 4 * 3, stats);
      t.true((outbytes ?? 0) > (inbytes ?? 0), 'HTTP responses are larger than requests');
    }
    const method = layout === 'dr' ? 'Route' : 'Masq';
    t.regex(lvsadm('-L -n'), new RegExp(`-> \\[${topo.realServers[0]?.ipv6}\\]:${topo.httpPort}\\s+${method}\\s+1 `));
  });
}

maybe('UDP through LVS/NAT: every datagram answered, each counted', async (t) => {
  t.timeout(60_000);
  const topo = await createTopology(t, { layout: 'nat', realServers: 2, directorVip: 'none' });
  const lvsadm = await startLvsd(t, topo);
  const vip = `${topo.vip.v4}:${topo.udpPort}`;
  lvsadm(`-A -u ${vip} -s rr`);
  for (const rs of topo.realServers) lvsadm(`-a -u ${vip} -r ${rs.ipv4}:${topo.udpPort} -m -w 1`);
  const answers = await topo.udp(6);
  t.deepEqual(errors(answers), [null, null, null, null, null, null], `every datagram answered: ${JSON.stringify(answers)}`);
  t.deepEqual(tally(answers.map((a) => a.server)), { rs1: 3, rs2: 3 }, 'rr over fresh source ports');
  const stats = lvsadm('-L -n --stats --exact');
  const [conns, inpkts, outpkts, inbytes, outbytes] = serviceStats(stats, `UDP  ${vip}`);
  t.is(conns, 6, stats);
  t.is(inpkts, 6, stats);
  t.is(outpkts, 6, stats);
  t.true((outbytes ?? 0) > (inbytes ?? 0), 'answers carry the server name besides the payload');
  t.regex(lvsadm('-L -n -c'), new RegExp(`^UDP\\s+\\S+\\s+UDP\\s+${topo.client.ipv4}:\\d+\\s+${vip}\\s+`, 'm'));
});

// The AF_XDP packet path (lvsd --xdp): an XDP program on the director's interface redirects VIP
// traffic and NAT replies to AF_XDP sockets; ARP and the host's own traffic still go to the kernel.
for (const layout of ['dr', 'nat'] as const) {
  maybe(`AF_XDP ${layout === 'dr' ? 'LVS/DR' : 'LVS/NAT'}: HTTP through lvsd --xdp, rr and statistics`, async (t) => {
    t.timeout(60_000);
    const topo = await createTopology(t, { layout, realServers: 2, directorVip: 'none' });
    let lvsadm: (args: string) => string;
    try {
      lvsadm = await startLvsd(t, topo, ['--xdp']);
    } catch (err) {
      const text = (err as Error).message;
      if (/ENOTSUP|EBUSY/.test(text)) {
        t.log(`skipped: XDP is not available here: ${text}`);
        t.pass();
        return;
      }
      throw err;
    }
    const eth = topo.director.ifaces[0]?.name ?? 'eth0';
    t.regex(topo.run(topo.director, 'ip', ['link', 'show', 'dev', eth]), /xdp/, 'the XDP program is attached');
    const vip = `${topo.vip.v4}:${topo.httpPort}`;
    lvsadm(`-A -t ${vip} -s rr`);
    for (const rs of topo.realServers) {
      lvsadm(layout === 'dr' ? `-a -t ${vip} -r ${rs.ipv4} -g -w 1` : `-a -t ${vip} -r ${rs.ipv4}:${topo.httpPort} -m -w 1`);
    }
    const answers = await topo.http(4);
    t.deepEqual(errors(answers), [null, null, null, null], `every request answered: ${JSON.stringify(answers)}`);
    t.deepEqual(tally(answers.map((a) => a.server)), { rs1: 2, rs2: 2 }, 'rr alternates');
    const [conns, inpkts, outpkts] = serviceStats(lvsadm('-L -n --stats --exact'), `TCP  ${vip}`);
    t.is(conns, 4);
    t.true((inpkts ?? 0) >= 4 * 3, 'the requests crossed the XDP path');
    if (layout === 'dr') t.is(outpkts, 0, 'DR replies go straight to the client');
    else t.true((outpkts ?? 0) >= 4 * 3, 'NAT replies came back through the XDP path');
    // IPv6: neighbour discovery for the VIP goes through the kernel's path to lvs's tap.
    const vip6 = `[${topo.vip.v6}]:${topo.httpPort}`;
    lvsadm(`-A -t ${vip6} -s rr`);
    for (const rs of topo.realServers) {
      lvsadm(layout === 'dr' ? `-a -t ${vip6} -r ${rs.ipv6} -g -w 1` : `-a -t ${vip6} -r [${rs.ipv6}]:${topo.httpPort} -m -w 1`);
    }
    const answers6 = await topo.http(2, { host: topo.vip.v6 });
    t.deepEqual(tally(answers6.map((a) => a.server ?? a.error ?? null)), { rs1: 1, rs2: 1 }, 'IPv6 through XDP');
    // The director's own address still answers (ARP reaches its kernel, and a TCP RST comes back).
    const ping = topo.run(topo.client, process.execPath, [
      '-e',
      `const s=require('node:net').connect({host:${JSON.stringify(topo.director.ipv4)},port:1});s.on('error',e=>{console.log(e.code);process.exit(0)});s.on('connect',()=>{console.log('open');process.exit(0)});setTimeout(()=>{console.log('timeout');process.exit(0)},3000);`,
    ]);
    t.is(ping.trim(), 'ECONNREFUSED', "the director's kernel answers on its own address (RST)");
  });
}

for (const [path, extra] of [['AF_PACKET', []], ['AF_XDP', ['--xdp']]] as const) maybe(`${path}: lvsd survives its link going down and up, and exits with status 1 naming the interface when it is deleted`, async (t) => {
  t.timeout(60_000);
  const topo = await createTopology(t, { layout: 'dr', realServers: 1, directorVip: 'none' });
  const dir = mkdtempSync(join(tmpdir(), 'lvs-e2e-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const lvsd = topo.spawn(topo.director, process.execPath, [bin('lvsd'), '-I', 'eth0', ...extra, '--control-socket', join(dir, 's.sock')]);
  await topo.waitFor(lvsd, /: balancing on /, 15_000);
  const lvsadm = (args: string) =>
    execFileSync(process.execPath, [bin('lvsadm'), ...args.split(' ')], {
      env: { ...process.env, LVSADM_SOCKET: join(dir, 's.sock') },
      encoding: 'utf8',
      timeout: 10_000,
    });
  lvsadm(`-A -t ${topo.vip.v4}:${topo.httpPort} -s rr`);
  lvsadm(`-a -t ${topo.vip.v4}:${topo.httpPort} -r ${topo.realServers[0]!.ipv4} -g`);
  // Down and up again: the worker waits (it does not spin or end) and forwards afterwards.
  topo.run(topo.director, 'ip', ['link', 'set', 'eth0', 'down']);
  await new Promise((r) => setTimeout(r, 1500));
  topo.run(topo.director, 'ip', ['link', 'set', 'eth0', 'up']);
  await new Promise((r) => setTimeout(r, 1500));
  t.is(lvsd.child.exitCode, null, lvsd.output());
  const answers = await topo.http(2);
  t.deepEqual(answers.map((a) => a.server), ['rs1', 'rs1'], JSON.stringify(answers));
  // Deleted: forwarding cannot resume, so lvsd says why and exits 1 for its supervisor.
  topo.run(topo.director, 'ip', ['link', 'del', 'eth0']);
  const exited = await Promise.race([lvsd.exited, new Promise((r) => setTimeout(() => r('still running'), 15_000))]);
  t.is(exited, 1, lvsd.output());
  t.regex(lvsd.output(), /lvsd: packet worker failed: interface `eth0` is gone/);
});
