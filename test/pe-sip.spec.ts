// `--pe sip` through the whole packet path: real Ethernet/IPv4/UDP frames carrying SIP requests
// are injected into an offline director, which balances calls (Call-IDs), not client addresses.
import test from 'ava';
import { Director, type ConnectionInfo } from 'lvs';

const DIRECTOR_MAC = '02:00:00:00:00:01';
const CLIENT_MAC = [0x02, 0, 0, 0, 0, 0x02];
const VIP = '10.0.0.100';
const SERVERS = ['10.0.0.11', '10.0.0.12'];
const sip = { protocol: 'udp', address: `${VIP}:5060` } as const;

function ipBytes(ip: string): number[] {
  return ip.split('.').map(Number);
}

/** The Internet checksum of `b`. */
function checksum(b: Buffer): number {
  let sum = 0;
  for (let i = 0; i + 1 < b.length; i += 2) sum += b.readUInt16BE(i);
  if (b.length % 2) sum += (b[b.length - 1] as number) << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An Ethernet frame with an IPv4/UDP datagram (UDP checksum 0: none, valid for IPv4). */
function udpFrame(src: string, sport: number, dst: string, dport: number, payload: Buffer): Buffer {
  const udp = Buffer.alloc(8);
  udp.writeUInt16BE(sport, 0);
  udp.writeUInt16BE(dport, 2);
  udp.writeUInt16BE(8 + payload.length, 4);
  const ip = Buffer.from([0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, 17, 0, 0, ...ipBytes(src), ...ipBytes(dst)]);
  ip.writeUInt16BE(20 + 8 + payload.length, 2);
  ip.writeUInt16BE(checksum(ip), 10);
  const eth = Buffer.from([...DIRECTOR_MAC.split(':').map((h) => parseInt(h, 16)), ...CLIENT_MAC, 0x08, 0x00]);
  return Buffer.concat([eth, ip, udp, payload]);
}

function invite(callId: string, compact = false): Buffer {
  const header = compact ? 'i' : 'Call-ID';
  return Buffer.from(
    `INVITE sip:bob@biloxi.example.com SIP/2.0\r\nVia: SIP/2.0/UDP pc33.example.com\r\n` +
      `${header}: ${callId}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`,
  );
}

async function director(): Promise<Director> {
  const d = await Director.open({
    clock: 'manual',
    interfaces: [{ name: 'eth0', mac: DIRECTOR_MAC, addresses: ['10.0.0.1/24'] }],
    routes: [{ destination: '0.0.0.0/0', gateway: '10.0.0.254', interface: 'eth0' }],
  });
  d.addService({ ...sip, scheduler: 'rr', persistent: 300, pe: 'sip' });
  for (const s of SERVERS) d.addServer(sip, { address: s, method: 'masq' });
  return d;
}

/** The real server of the client connection from `client`. */
function serverOf(conns: readonly ConnectionInfo[], client: string): string | undefined {
  return conns.find((c) => !c.template && c.client === client)?.server;
}

test('calls, not client addresses, are persistent; Call-ID templates are listed', async (t) => {
  const d = await director();
  t.teardown(() => d.close());
  const phone = '192.0.2.7';
  // Two phones behind one NAT address, two calls: round robin spreads them.
  d.inject(udpFrame(phone, 5060, VIP, 5060, invite('a84b4c76e66710@pc33')), 'eth0');
  d.inject(udpFrame(phone, 5062, VIP, 5060, invite('f81d4fae-7dec@pc34', true)), 'eth0');
  let conns = d.connections();
  const first = serverOf(conns, `${phone}:5060`);
  const second = serverOf(conns, `${phone}:5062`);
  t.truthy(first);
  t.truthy(second);
  t.not(first, second);
  // Later messages of each call, from new ports, follow their call (compact and long form alike).
  for (const [port, call, compact] of [
    [6000, 'a84b4c76e66710@pc33', true],
    [6001, 'f81d4fae-7dec@pc34', false],
    [6002, 'a84b4c76e66710@pc33', false],
  ] as const) {
    d.inject(udpFrame(phone, port, VIP, 5060, invite(call, compact)), 'eth0');
  }
  conns = d.connections();
  t.is(serverOf(conns, `${phone}:6000`), first);
  t.is(serverOf(conns, `${phone}:6001`), second);
  t.is(serverOf(conns, `${phone}:6002`), first);
  const templates = conns.filter((c) => c.template);
  t.deepEqual(
    templates.map((c) => [c.client, c.pe, c.peData, c.server]).sort(),
    [
      [`${phone}:0`, 'sip', 'a84b4c76e66710@pc33', first],
      [`${phone}:0`, 'sip', 'f81d4fae-7dec@pc34', second],
    ].sort(),
  );
  t.true(conns.filter((c) => !c.template).every((c) => c.pe === undefined && c.peData === undefined));
  // ipvsadm -Lc --persistent-conn shows the engine columns.
  const listing = d.exec('-Lcn --persistent-conn');
  t.regex(listing.stdout, /pe name\s+pe_data/);
  t.regex(listing.stdout, /NONE\s+192\.0\.2\.7:0\s+10\.0\.0\.100:5060\s+\S+\s+sip\s+a84b4c76e66710@pc33\n/);
});

test('datagrams without a Call-ID start nothing; malformed SIP never breaks the director', async (t) => {
  const d = await director();
  t.teardown(() => d.close());
  const before = d.counters().drop_pe_no_data ?? 0n;
  const junk = [
    Buffer.from('\r\n\r\n'),
    Buffer.alloc(0),
    Buffer.from('OPTIONS sip:x SIP/2.0\r\nCall-ID:\r\n\r\n'),
    Buffer.from('OPTIONS sip:carol@chicago.example.com SIP/2.0\r\nCall-ID: abc@'),
    Buffer.from(Array.from({ length: 300 }, (_, i) => (i * 37) & 0xff)),
  ];
  for (const [i, payload] of junk.entries()) {
    t.deepEqual(d.inject(udpFrame('192.0.2.9', 7000 + i, VIP, 5060, payload), 'eth0'), []);
  }
  // routeFlow carries no payload, so no Call-ID either.
  t.is(d.routeFlow({ protocol: 'udp', client: '192.0.2.9:7200', virtual: `${VIP}:5060` }), null);
  t.deepEqual(d.connections(), []);
  t.is((d.counters().drop_pe_no_data ?? 0n) - before, BigInt(junk.length));
  // A proper request afterwards is balanced as usual.
  d.inject(udpFrame('192.0.2.9', 7100, VIP, 5060, invite('ok@192.0.2.9')), 'eth0');
  t.is(d.connections().filter((c) => c.template && c.peData === 'ok@192.0.2.9').length, 1);
});

test('a real server may start a call: the callee then answers that server', async (t) => {
  const d = await director();
  t.teardown(() => d.close());
  const server = SERVERS[1] as string;
  // The server sends an INVITE straight to a phone (NAT: it is masqueraded as the VIP).
  d.inject(udpFrame(server, 5060, '192.0.2.50', 5060, invite('srv-call@10.0.0.12')), 'eth0');
  let conns = d.connections();
  t.is(serverOf(conns, '192.0.2.50:5060'), `${server}:5060`);
  t.like(
    conns.find((c) => c.template),
    { client: '192.0.2.50:0', virtual: `${VIP}:5060`, server: `${server}:5060`, pe: 'sip', peData: 'srv-call@10.0.0.12' },
  );
  // The phone's requests in that call, from any port, reach the server that called.
  d.inject(udpFrame('192.0.2.50', 5077, VIP, 5060, invite('srv-call@10.0.0.12', true)), 'eth0');
  conns = d.connections();
  t.is(serverOf(conns, '192.0.2.50:5077'), `${server}:5060`);
});
