// The end-to-end harness (test/helpers/topology.ts) proven with the KERNEL as the director, so the
// same topologies are known to work before lvs forwards in them:
//   nat  nftables DNAT with `numgen inc` (requests alternate between the real servers),
//   dr   nftables netdev `fwd` to the real servers' MACs (replies go straight to the client),
//   tun  kernel routing into lvs-tun-encap, lvs-tun-decap on the real servers.
// Root only (network namespaces); skipped otherwise. Every address lives in the test's namespaces.
import test from 'ava';
import { canUseNetns } from './helpers/netns.js';
import { createTopology, NFT, tunTools, type Answer, type Topology } from './helpers/topology.js';

const haveNft = canUseNetns && NFT !== null;
const maybe = haveNft ? test : test.skip;
if (!canUseNetns) console.log('topology.spec: skipped (needs root and iproute2 for network namespaces)');
else if (!haveNft) console.log('topology.spec: skipped (needs nftables: apt-get install nftables)');

const servers = (answers: readonly Answer[]): (string | null)[] => answers.map((a) => a.server);

function alternates(t: { deepEqual: (a: unknown, b: unknown, m?: string) => void }, got: readonly Answer[], n: number, what: string): void {
  const names = servers(got);
  const first = names[0] === 'rs2' ? 1 : 0;
  const want = Array.from({ length: n }, (_, i) => `rs${((i + first) % 2) + 1}`);
  t.deepEqual(names, want, `${what}: ${JSON.stringify(got)}`);
}

function natRules(topo: Topology): string {
  const [rs1, rs2] = topo.realServers;
  if (!rs1 || !rs2) throw new Error('two real servers expected');
  const { v4, v6 } = topo.vip;
  return `
table ip lvs_nat {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip daddr ${v4} tcp dport ${topo.httpPort} dnat to numgen inc mod 2 map { 0 : ${rs1.ipv4}, 1 : ${rs2.ipv4} }
    ip daddr ${v4} udp dport ${topo.udpPort} dnat to numgen inc mod 2 map { 0 : ${rs1.ipv4}, 1 : ${rs2.ipv4} }
  }
}
table ip6 lvs_nat6 {
  chain pre {
    type nat hook prerouting priority dstnat;
    ip6 daddr ${v6} tcp dport ${topo.httpPort} dnat to numgen inc mod 2 map { 0 : ${rs1.ipv6}, 1 : ${rs2.ipv6} }
    ip6 daddr ${v6} udp dport ${topo.udpPort} dnat to numgen inc mod 2 map { 0 : ${rs1.ipv6}, 1 : ${rs2.ipv6} }
  }
}
`;
}

maybe('nat: kernel DNAT with numgen alternates between the real servers (HTTP, UDP, IPv4, IPv6)', async (t) => {
  const topo = await createTopology(t, { layout: 'nat', realServers: 2, secondClient: true });
  // Before the director forwards, the VIP is the director itself: nothing listens there.
  const before = await topo.http(1, { timeoutMs: 1000 });
  t.is(before[0]?.server, null);
  t.regex(before[0]?.error ?? '', /ECONNREFUSED|timeout/);

  topo.sysctl(topo.director, { 'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1 });
  topo.nft(topo.director, natRules(topo));

  alternates(t, await topo.http(8), 8, 'HTTP over IPv4');
  alternates(t, await topo.http(6, { host: topo.vip.v6 }), 6, 'HTTP over IPv6');
  alternates(t, await topo.udp(6), 6, 'UDP over IPv4');
  alternates(t, await topo.udp(4, { host: topo.vip.v6 }), 4, 'UDP over IPv6');
  // The second client shares the counter: two more requests, one per server.
  const c2 = await topo.http(2, topo.client2 ? { from: topo.client2 } : {});
  t.deepEqual([...servers(c2)].sort(), ['rs1', 'rs2']);
  // The real servers saw the client's own address (NAT keeps the source).
  const conns = topo.run(topo.director, 'cat', ['/proc/net/nf_conntrack']);
  t.regex(conns, new RegExp(`src=${topo.client.ipv4.replaceAll('.', '\\.')} dst=${topo.vip.v4.replaceAll('.', '\\.')}`));
});

maybe('dr: kernel forwarding to the real servers MACs; replies go straight to the client (IPv4, IPv6, router)', async (t) => {
  const topo = await createTopology(t, { layout: 'dr', realServers: 2, router: true });
  const [rs1, rs2] = topo.realServers;
  if (!rs1 || !rs2) throw new Error('two real servers expected');
  const { v4, v6 } = topo.vip;
  // Direct requests to each real server's own address work (the services run).
  t.deepEqual(servers(await topo.http(1, { host: rs1.ipv4 })), ['rs1']);
  t.deepEqual(servers(await topo.udp(1, { host: rs2.ipv6 })), ['rs2']);
  // The director owns the VIP (answers ARP/ND); netdev ingress forwards before its IP stack sees
  // the packet: TCP by a hash of the flow (a connection stays put), UDP round robin.
  topo.nft(
    topo.director,
    `
table netdev lvs_dr {
  counter replies {}
  chain ingress {
    type filter hook ingress device "eth0" priority 0;
    ip saddr ${v4} counter name replies
    ip6 saddr ${v6} counter name replies
    ip daddr ${v4} tcp dport ${topo.httpPort} fwd ip to jhash ip saddr . tcp sport mod 2 map { 0 : ${rs1.ipv4}, 1 : ${rs2.ipv4} } device "eth0"
    ip daddr ${v4} udp dport ${topo.udpPort} fwd ip to numgen inc mod 2 map { 0 : ${rs1.ipv4}, 1 : ${rs2.ipv4} } device "eth0"
    ip6 daddr ${v6} tcp dport ${topo.httpPort} fwd ip6 to jhash ip6 saddr . tcp sport mod 2 map { 0 : ${rs1.ipv6}, 1 : ${rs2.ipv6} } device "eth0"
    ip6 daddr ${v6} udp dport ${topo.udpPort} fwd ip6 to numgen inc mod 2 map { 0 : ${rs1.ipv6}, 1 : ${rs2.ipv6} } device "eth0"
  }
}
`,
  );
  const http4 = await topo.http(16);
  const http6 = await topo.http(16, { host: v6 });
  for (const [name, got] of [['IPv4', http4], ['IPv6', http6]] as const) {
    t.true(got.every((a) => a.server === 'rs1' || a.server === 'rs2'), `${name}: ${JSON.stringify(got)}`);
    // 16 connections from random source ports: both servers (all on one: p = 2^-15).
    t.deepEqual([...new Set(servers(got))].sort(), ['rs1', 'rs2'], name);
  }
  alternates(t, await topo.udp(6), 6, 'UDP over IPv4');
  alternates(t, await topo.udp(4, { host: v6 }), 4, 'UDP over IPv6');
  // Direct server return: no reply from the VIP ever passed the director.
  t.regex(topo.nftList(topo.director, ['counter', 'netdev', 'lvs_dr', 'replies']), /packets 0 bytes 0/);
});

maybe('tun: kernel routing into lvs-tun-encap, lvs-tun-decap on the real servers (HTTP, UDP, 4in4, 6in6)', async (t) => {
  const { encap } = tunTools();
  const topo = await createTopology(t, { layout: 'tun', realServers: 2, directorVip: 'route' });
  const [rs1, rs2] = topo.realServers;
  if (!rs1 || !rs2) throw new Error('two real servers expected');
  const d = topo.director;
  topo.sysctl(d, { 'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1 });
  const enc = topo.spawn(d, encap, ['--tun', 'lvsenc0', '--to', rs1.ipv4, '--to', rs2.ipv4, '--to', rs1.ipv6, '--to', rs2.ipv6]);
  await topo.waitFor(enc, /lvs-tun-encap: ready/);
  topo.run(d, 'ip', ['route', 'add', `${topo.vip.v4}/32`, 'dev', 'lvsenc0']);
  topo.run(d, 'ip', ['-6', 'route', 'add', `${topo.vip.v6}/128`, 'dev', 'lvsenc0']);
  // Watches for replies (source VIP) reaching the director: there must be none.
  topo.nft(
    d,
    `table netdev watch {
  counter replies {}
  chain ingress {
    type filter hook ingress device "eth0" priority 0;
    ip saddr ${topo.vip.v4} counter name replies
    ip6 saddr ${topo.vip.v6} counter name replies
  }
}
`,
  );

  const results = {
    http4: await topo.http(12),
    http6: await topo.http(12, { host: topo.vip.v6 }),
    udp4: await topo.udp(12),
    udp6: await topo.udp(12, { host: topo.vip.v6 }),
  };
  for (const [name, got] of Object.entries(results)) {
    t.true(got.every((a) => a.server === 'rs1' || a.server === 'rs2'), `${name}: ${JSON.stringify(got)}`);
  }
  const all = Object.values(results).flatMap(servers);
  t.deepEqual([...new Set(all)].sort(), ['rs1', 'rs2'], 'flows spread over both real servers');
  t.regex(topo.nftList(d, ['counter', 'netdev', 'watch', 'replies']), /packets 0 bytes 0/, 'replies bypass the director');

  // The real servers' kernels dropped the raw tunnel packets at input (nft counter) instead of
  // answering them with ICMP protocol-unreachable.
  for (const rs of [rs1, rs2]) {
    t.regex(topo.nftList(rs, ['counter', 'inet', 'lvs_tun', 'tunnel']), /packets [1-9]\d* /);
    t.is(topo.snmp(rs).Icmp?.OutDestUnreachs, 0, `${rs.name} sent no ICMP destination-unreachable`);
  }
  // Graceful exits with counters: every packet the director sent was decapsulated, 4in4 and 6in6.
  await enc.stop();
  const sent = Number(/ sent=(\d+)/.exec(enc.output())?.[1]);
  t.regex(enc.output(), /exit \(signal\) .* errors=0 /);
  const decaps = [rs1, rs2].flatMap((rs) => topo.processesOf(rs).filter((p) => /lvs-tun-decap/.test(p.output())));
  t.is(decaps.length, 2);
  const count = (field: string): number =>
    decaps.reduce((n, p) => n + Number(new RegExp(` ${field}=(\\d+)`).exec(p.output())?.[1] ?? NaN), 0);
  await Promise.all(decaps.map((p) => p.stop()));
  for (const p of decaps) t.regex(p.output(), /lvs-tun-decap: exit \(signal\) .* malformed=0 /);
  t.true(sent > 0);
  t.is(count('delivered'), sent, `${enc.output()}\n${decaps.map((p) => p.output()).join('\n')}`);
  t.true(count('4in4') > 0 && count('6in6') > 0);
  await topo.teardown();
});
