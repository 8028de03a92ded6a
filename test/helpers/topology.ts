// LVS test topologies in network namespaces: a client (optionally a second client and a router), a
// director and N real servers, wired through bridges that live in a namespace of their own. Nothing
// is created in the root namespace; every address below exists only inside these namespaces.
//
// Layouts (the classic LVS ones):
//   dr / tun  client, director and real servers on one L2 segment `lan` (with `router: true` the
//             client sits on its own segment behind a router). Real servers carry the VIP on `lo`
//             with arp_ignore=1 / arp_announce=2 and rp_filter=0; for `tun` they also run
//             lvs-tun-decap (this kernel has no ipip module) and drop the raw tunnel packets at
//             input so the kernel sends no ICMP protocol-unreachable for them (`decapArgs` adds
//             GUE / GRE decapsulation, which lvs-tun-decap takes from sockets).
//   nat       client segment `cnet` and a private segment `pnet`; the director is on both, the real
//             servers' default routes point at the director's private address.
//
// Addresses (IPv4 / IPv6):
//   lan   10.77.0.0/24   fd00:77::/64     director .1, client .2, client2 .3, rsN .(10+N), router .254
//   cnet  10.77.1.0/24   fd00:77:1::/64   director (nat) or router .1, client .2, client2 .3
//   pnet  10.77.2.0/24   fd00:77:2::/64   director .1, rsN .(10+N)
//   VIP   10.77.0.100 / fd00:77::100 (dr, tun)   10.77.1.100 / fd00:77:1::100 (nat)
//
// The director gets addresses only (forwarding off); the test decides what forwards: the kernel
// (test/topology.spec.ts) or lvs. `directorVip` says whether the VIP is a kernel address on the
// director, routed to it, or left to the forwarder (the lvs engine answers ARP/ND for its VIPs).
//
// Every real server runs an HTTP server answering with its name (body `rs1\n`, header
// x-real-server) and a UDP service answering `rs1 <payload>`. `http()` / `udp()` send N requests
// from the client, one connection or socket each, bounded by timeouts, and report who answered.
// Everything (processes, namespaces and with them links and bridges) is removed in t.teardown, also
// when the test fails. The tunnel real servers' input rule and the tests' rulesets need nftables;
// offloads are switched off with ethtool when it is installed.
//
//   const topo = await createTopology(t, { layout: 'dr', realServers: 2, directorVip: 'none' });
//   const lvs = topo.spawn(topo.director, process.execPath, ['director-script.js', ...]);
//   await topo.waitFor(lvs, /ready/);
//   const answers = await topo.http(10);              // [{ server: 'rs1', ms: 3 }, ...]
//   const udp6 = await topo.udp(4, { host: topo.vip.v6 });
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { netns, type Netns } from './netns.js';

export type Layout = 'dr' | 'tun' | 'nat';

export interface TopologyOptions {
  readonly layout: Layout;
  /** Number of real servers, 1..20 (default 2). */
  readonly realServers?: number;
  /** dr/tun: put the client (and client2) behind a router on segment `cnet` (default false). */
  readonly router?: boolean;
  /** A second client namespace on the client's segment (default false). */
  readonly secondClient?: boolean;
  /** dr/tun without router: a second director (`director2`, .4 on lan) for failover tests (default false). */
  readonly secondDirector?: boolean;
  /**
   * How traffic for the VIP finds the director:
   * - `address` (default): the VIP is a kernel address on the director's first interface, so the
   *   kernel answers ARP/ND for it (and delivers locally what nothing forwards first);
   * - `route`: clients (or the router) route the VIP via the director's own address, which is
   *   what a kernel-forwarding director needs (a local VIP would be delivered locally);
   * - `none`: neither; something on the director answers ARP/ND for the VIP itself (the lvs
   *   engine owns its VIPs).
   */
  readonly directorVip?: 'address' | 'route' | 'none';
  /** Start the HTTP and UDP services on the real servers (default true). */
  readonly services?: boolean;
  /** tun: start lvs-tun-decap on every real server (default true). */
  readonly decap?: boolean;
  /**
   * tun: more lvs-tun-decap arguments per real server (index 0 is rs1), e.g.
   * `[['--gue', '6080'], ['--gre']]` for a GUE and a GRE real server (default none: IPIP only).
   */
  readonly decapArgs?: readonly (readonly string[])[];
  /**
   * Keep the veth checksum/segmentation offloads (default false: they are switched off with
   * ethtool where it is installed, so every frame on the wire carries complete checksums, as a
   * user-space packet engine reading AF_PACKET rings needs).
   */
  readonly offloads?: boolean;
  readonly httpPort?: number;
  /** More ports the real servers' HTTP service listens on besides `httpPort` (default none). */
  readonly extraHttpPorts?: readonly number[];
  readonly udpPort?: number;
}

export interface Iface {
  /** Interface name inside the host's namespace. */
  readonly name: string;
  readonly segment: 'lan' | 'cnet' | 'pnet';
  readonly ipv4: string;
  readonly ipv6: string;
}

export interface Host {
  /** Role name: client, client2, router, director, rs1, rs2, ... */
  readonly name: string;
  readonly ns: Netns;
  /** Interfaces in order (eth0, eth1). */
  readonly ifaces: readonly Iface[];
  /** Address on the first interface. */
  readonly ipv4: string;
  readonly ipv6: string;
}

export interface ProcessHandle {
  readonly child: ChildProcess;
  /** Everything the process wrote so far (stdout and stderr interleaved). */
  output(): string;
  /** Resolves with the exit code (or the signal name) once it exits. */
  readonly exited: Promise<number | string>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has exited. */
  stop(graceMs?: number): Promise<number | string>;
}

export interface Answer {
  /** Which real server answered, or null on error/timeout. */
  readonly server: string | null;
  readonly error?: string;
  readonly ms: number;
}

export interface RequestOptions {
  /** Target address (default: the IPv4 VIP; pass topo.vip.v6 for IPv6). */
  readonly host?: string;
  readonly port?: number;
  /** Per-request timeout in ms (default 2000). */
  readonly timeoutMs?: number;
  /** Which client sends (default: client). */
  readonly from?: Host;
}

export interface Topology {
  readonly layout: Layout;
  readonly vip: { readonly v4: string; readonly v6: string };
  readonly httpPort: number;
  readonly udpPort: number;
  readonly bridge: Netns;
  readonly client: Host;
  readonly client2?: Host;
  readonly router?: Host;
  readonly director: Host;
  readonly director2?: Host;
  readonly realServers: readonly Host[];
  /** Runs a command in a host's namespace (throws on failure). */
  run(host: Host, cmd: string, args: readonly string[], input?: string): string;
  /** Loads an nftables ruleset (`nft -f -`) in a host's namespace. */
  nft(host: Host, ruleset: string): void;
  /** `nft list ARGS...` in a host's namespace, e.g. `['counter', 'inet', 'lvs_tun', 'tunnel']`. */
  nftList(host: Host, args: readonly string[]): string;
  /** Writes sysctls (`net.ipv4.ip_forward` style keys) in a host's namespace. */
  sysctl(host: Host, values: Readonly<Record<string, string | number>>): void;
  /** Starts a long-running process in a host's namespace; stopped at teardown. */
  spawn(host: Host, cmd: string, args: readonly string[]): ProcessHandle;
  /** The processes started in a host (services, lvs-tun-decap, and spawn()'s), in start order. */
  processesOf(host: Host): readonly ProcessHandle[];
  /** Waits until `pattern` appears in the process output (rejects after `timeoutMs` or on exit). */
  waitFor(proc: ProcessHandle, pattern: RegExp, timeoutMs?: number): Promise<void>;
  /** N sequential HTTP GETs (a new connection each) from the client to VIP:port. */
  http(count: number, opts?: RequestOptions): Promise<Answer[]>;
  /** N sequential UDP requests (a new socket, so a new source port, each). */
  udp(count: number, opts?: RequestOptions): Promise<Answer[]>;
  /** Stops every process and deletes the namespaces now (also done at teardown; idempotent). */
  teardown(): Promise<void>;
  /** Reads /proc/net/snmp in a host's namespace: `snmp(h).Icmp.OutDestUnreachs`. */
  snmp(host: Host): Record<string, Record<string, number>>;
}

const root = fileURLToPath(new URL('../..', import.meta.url));
const node = process.execPath;

/**
 * Absolute path of a system tool (`nft`, `ethtool`), or null. Only system directories are
 * searched: under npm/npx, PATH starts with node_modules/.bin, where `nft` is @vercel/nft.
 */
export function systemTool(name: string): string | null {
  for (const dir of ['/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/local/bin', '/usr/bin', '/bin']) {
    const p = join(dir, name);
    if (existsSync(p)) return p;
  }
  return null;
}

/** nftables' `nft` (absolute path), or null when nftables is not installed. */
export const NFT: string | null = systemTool('nft');
/** `ethtool` (absolute path), or null. */
export const ETHTOOL: string | null = systemTool('ethtool');

let toolsBuilt = false;

/**
 * Paths of the tunnel tools (lvs-tun-decap, lvs-tun-encap), built with cargo on first use
 * (`$CARGO_TARGET_DIR` is honoured; `$LVS_TUN_BIN_DIR` points at prebuilt binaries instead).
 */
export function tunTools(): { decap: string; encap: string } {
  const dir = process.env.LVS_TUN_BIN_DIR ?? join(process.env.CARGO_TARGET_DIR ?? join(root, 'target'), 'debug');
  if (!process.env.LVS_TUN_BIN_DIR && !toolsBuilt) {
    execFileSync('cargo', ['build', '--quiet', '-p', 'lvs-dataplane', '--bins'], {
      cwd: root,
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 300_000,
    });
    toolsBuilt = true;
  }
  const decap = join(dir, 'lvs-tun-decap');
  const encap = join(dir, 'lvs-tun-encap');
  if (!existsSync(decap) || !existsSync(encap)) throw new Error(`tunnel tools not found in ${dir}`);
  return { decap, encap };
}

const NET = {
  lan: { v4: '10.77.0.', v6: 'fd00:77::' },
  cnet: { v4: '10.77.1.', v6: 'fd00:77:1::' },
  pnet: { v4: '10.77.2.', v6: 'fd00:77:2::' },
} as const;

function addr(segment: Iface['segment'], host: number): { ipv4: string; ipv6: string } {
  return { ipv4: `${NET[segment].v4}${host}`, ipv6: `${NET[segment].v6}${host.toString(16)}` };
}

/** Sysctl key (`net.ipv4.conf.all.rp_filter`) to its /proc path. */
function procPath(key: string): string {
  if (!/^[a-z0-9_.-]+$/i.test(key)) throw new Error(`bad sysctl key ${key}`);
  return `/proc/sys/${key.replaceAll('.', '/')}`;
}

// The services on each real server: HTTP (dual-stack, any address) and UDP (one socket per
// address: a reply must leave from the address the request was sent to, the VIP in dr/tun).
const SERVICE_SCRIPT = `
import http from 'node:http';
import dgram from 'node:dgram';
const [name, httpPorts, udpPort, ...udpAddrs] = process.argv.slice(1);
for (const httpPort of httpPorts.split(',')) {
  const server = http.createServer((req, res) => {
    req.resume();
    res.writeHead(200, { 'content-type': 'text/plain', 'x-real-server': name, connection: 'close' });
    res.end(name + '\\n');
  });
  await new Promise((ok, fail) => { server.once('error', fail); server.listen({ port: Number(httpPort), host: '::', ipv6Only: false }, ok); });
}
for (const a of udpAddrs) {
  const s = dgram.createSocket(a.includes(':') ? 'udp6' : 'udp4');
  s.on('message', (msg, rinfo) => s.send(name + ' ' + msg.toString(), rinfo.port, rinfo.address));
  await new Promise((ok, fail) => { s.once('error', fail); s.bind(Number(udpPort), a, ok); });
}
console.log('ready ' + name);
process.on('SIGTERM', () => process.exit(0));
`;

// N sequential HTTP GETs, one connection each; prints a JSON array of answers.
const HTTP_CLIENT = `
import http from 'node:http';
const [host, port, count, timeout] = process.argv.slice(1);
const out = [];
for (let i = 0; i < Number(count); i++) {
  const t0 = Date.now();
  out.push(await new Promise((resolve) => {
    const req = http.get({ host, port: Number(port), path: '/', agent: false, timeout: Number(timeout), headers: { connection: 'close' } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ server: res.headers['x-real-server'] ?? body.trim(), ms: Date.now() - t0 }));
      res.on('error', (e) => resolve({ server: null, error: String(e), ms: Date.now() - t0 }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ server: null, error: String(e.message ?? e), ms: Date.now() - t0 }));
  }));
}
console.log(JSON.stringify(out));
`;

// N sequential UDP requests, a fresh socket (source port) each; prints a JSON array of answers.
const UDP_CLIENT = `
import dgram from 'node:dgram';
const [host, port, count, timeout] = process.argv.slice(1);
const out = [];
for (let i = 0; i < Number(count); i++) {
  const t0 = Date.now();
  out.push(await new Promise((resolve) => {
    const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    const payload = 'q' + i;
    let finished = false;
    const done = (r) => {
      if (finished) return;
      finished = true;
      clearTimeout(timer);
      s.close();
      resolve({ ...r, ms: Date.now() - t0 });
    };
    const timer = setTimeout(() => done({ server: null, error: 'timeout' }), Number(timeout));
    s.on('error', (e) => done({ server: null, error: String(e.message ?? e) }));
    s.on('message', (msg) => {
      const [name, echoed] = msg.toString().split(' ');
      if (echoed === payload) done({ server: name });
    });
    s.send(payload, Number(port), host);
  }));
}
console.log(JSON.stringify(out));
`;

/** Runs a short node script in a namespace, asynchronously, with a hard timeout. */
function runNode(ns: Netns, script: string, args: readonly string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns.name, node, '--input-type=module', '-e', script, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`node in ${ns.name} exited ${code ?? signal}: ${err.trim()}`));
    });
  });
}

/** Creates the namespaces, links, addresses and services; everything is removed at teardown. */
export async function createTopology(t: ExecutionContext, opts: TopologyOptions): Promise<Topology> {
  const layout = opts.layout;
  const nRs = opts.realServers ?? 2;
  if (!Number.isInteger(nRs) || nRs < 1 || nRs > 20) throw new Error(`realServers must be 1..20, not ${nRs}`);
  const withRouter = (opts.router ?? false) && layout !== 'nat';
  const directorVip = opts.directorVip ?? 'address';
  const httpPort = opts.httpPort ?? 80;
  const udpPort = opts.udpPort ?? 5300;
  const vip = layout === 'nat' ? { v4: '10.77.1.100', v6: 'fd00:77:1::100' } : { v4: '10.77.0.100', v6: 'fd00:77::100' };

  const procs: ProcessHandle[] = [];
  const procsByHost = new Map<string, ProcessHandle[]>();
  const namespaces: Netns[] = [];
  let tornDown = false;
  const stopAll = async (): Promise<void> => {
    if (tornDown) return;
    tornDown = true;
    await Promise.all(procs.map((p) => p.stop(1000).catch(() => undefined)));
    // Hosts first, the bridge namespace last. netns() would do this at teardown as well; doing it
    // here makes topo.teardown() usable in the middle of a test. Deleting an already deleted
    // namespace later is harmless.
    for (const ns of [...namespaces].reverse()) {
      for (const pid of spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout.split('\n')) {
        if (pid.trim()) spawnSync('kill', ['-9', pid.trim()]);
      }
      spawnSync('ip', ['netns', 'del', ns.name]);
    }
  };

  // Namespaces. Registered with netns() (deleted at teardown, their processes killed); our own
  // teardown, registered last, runs first and stops the processes gracefully.
  const bridge = netns(t, 'br');
  namespaces.push(bridge);
  const hosts: Host[] = [];
  const segments: Iface['segment'][] = layout === 'nat' ? ['cnet', 'pnet'] : withRouter ? ['cnet', 'lan'] : ['lan'];
  const clientSeg: Iface['segment'] = layout === 'nat' || withRouter ? 'cnet' : 'lan';
  const rsSeg: Iface['segment'] = layout === 'nat' ? 'pnet' : 'lan';

  const plan: { name: string; tag: string; links: { seg: Iface['segment']; host: number }[] }[] = [];
  plan.push({ name: 'client', tag: 'cl', links: [{ seg: clientSeg, host: 2 }] });
  if (opts.secondClient) plan.push({ name: 'client2', tag: 'c2', links: [{ seg: clientSeg, host: 3 }] });
  if (withRouter) plan.push({ name: 'router', tag: 'gw', links: [{ seg: 'cnet', host: 1 }, { seg: 'lan', host: 254 }] });
  plan.push({
    name: 'director',
    tag: 'dir',
    links: layout === 'nat' ? [{ seg: 'cnet', host: 1 }, { seg: 'pnet', host: 1 }] : [{ seg: 'lan', host: 1 }],
  });
  if (opts.secondDirector) plan.push({ name: 'director2', tag: 'syd2', links: [{ seg: 'lan', host: 4 }] });
  for (let i = 1; i <= nRs; i++) plan.push({ name: `rs${i}`, tag: `rs${i}`, links: [{ seg: rsSeg, host: 10 + i }] });

  const sh = (ns: Netns, script: string): void => {
    ns.run('sh', ['-c', script]);
  };
  const writeSysctls = (ns: Netns, values: Readonly<Record<string, string | number>>): void => {
    const lines = Object.entries(values).map(([k, v]) => `echo ${String(v)} > ${procPath(k)}`);
    if (lines.length > 0) sh(ns, lines.join(' && '));
  };

  // The bridge namespace: one bridge per segment, no IPv6 on its own ports, no STP delay, no
  // multicast snooping (neighbour discovery must flood).
  writeSysctls(bridge, { 'net.ipv6.conf.all.disable_ipv6': 1, 'net.ipv6.conf.default.disable_ipv6': 1 });
  for (const seg of segments) {
    execFileSync('ip', ['-n', bridge.name, 'link', 'add', seg, 'type', 'bridge', 'stp_state', '0', 'mcast_snooping', '0']);
    execFileSync('ip', ['-n', bridge.name, 'link', 'set', seg, 'up']);
  }

  const ethtool = opts.offloads ?? false ? null : ETHTOOL;
  let port = 0;
  for (const p of plan) {
    const ns = netns(t, p.tag);
    namespaces.push(ns);
    // Before any link exists: no DAD (neighbour discovery would wait ~2 s for a usable
    // link-local source), no router advertisements, no reverse-path filter.
    writeSysctls(ns, {
      'net.ipv6.conf.all.accept_dad': 0,
      'net.ipv6.conf.default.accept_dad': 0,
      'net.ipv6.conf.all.accept_ra': 0,
      'net.ipv6.conf.default.accept_ra': 0,
      'net.ipv4.conf.all.rp_filter': 0,
      'net.ipv4.conf.default.rp_filter': 0,
    });
    const ifaces: Iface[] = [];
    p.links.forEach((l, i) => {
      const dev = `eth${i}`;
      const peer = `p${++port}`;
      execFileSync('ip', ['-n', bridge.name, 'link', 'add', peer, 'type', 'veth', 'peer', 'name', dev, 'netns', ns.name]);
      execFileSync('ip', ['-n', bridge.name, 'link', 'set', peer, 'master', l.seg, 'up']);
      const a = addr(l.seg, l.host);
      ns.run('ip', ['addr', 'add', `${a.ipv4}/24`, 'dev', dev]);
      ns.run('ip', ['addr', 'add', `${a.ipv6}/64`, 'dev', dev, 'nodad']);
      ns.run('ip', ['link', 'set', dev, 'up']);
      if (ethtool) ns.try(ethtool, ['-K', dev, 'tx', 'off', 'tso', 'off', 'gso', 'off', 'gro', 'off']);
      ifaces.push({ name: dev, segment: l.seg, ...a });
    });
    const first = ifaces[0];
    if (!first) throw new Error(`host ${p.name} has no interface`);
    hosts.push({ name: p.name, ns, ifaces, ipv4: first.ipv4, ipv6: first.ipv6 });
  }
  const byName = (n: string): Host | undefined => hosts.find((h) => h.name === n);
  const must = (n: string): Host => {
    const h = byName(n);
    if (!h) throw new Error(`no host ${n}`);
    return h;
  };
  const client = must('client');
  const client2 = byName('client2');
  const router = byName('router');
  const director = must('director');
  const director2 = byName('director2');
  const realServers = hosts.filter((h) => /^rs\d+$/.test(h.name));
  const clients = [client, ...(client2 ? [client2] : [])];

  // Routing.
  const route = (h: Host, dst: string, via: string): void => {
    h.ns.run('ip', [...(via.includes(':') ? ['-6'] : []), 'route', 'replace', dst, 'via', via]);
  };
  if (router) {
    writeSysctls(router.ns, { 'net.ipv4.ip_forward': 1, 'net.ipv6.conf.all.forwarding': 1 });
    const [gwC, gwL] = [addr('cnet', 1), addr('lan', 254)];
    for (const c of clients) {
      route(c, 'default', gwC.ipv4);
      route(c, 'default', gwC.ipv6);
    }
    for (const h of [director, ...realServers]) {
      route(h, 'default', gwL.ipv4);
      route(h, 'default', gwL.ipv6);
    }
    if (directorVip === 'route') {
      route(router, `${vip.v4}/32`, director.ipv4);
      route(router, `${vip.v6}/128`, director.ipv6);
    }
  } else if (directorVip === 'route') {
    for (const c of clients) {
      route(c, `${vip.v4}/32`, director.ipv4);
      route(c, `${vip.v6}/128`, director.ipv6);
    }
  }
  if (layout === 'nat') {
    const gw = addr('pnet', 1);
    for (const rs of realServers) {
      route(rs, 'default', gw.ipv4);
      route(rs, 'default', gw.ipv6);
    }
  }
  if (directorVip === 'address') {
    director.ns.run('ip', ['addr', 'add', `${vip.v4}/32`, 'dev', 'eth0']);
    director.ns.run('ip', ['addr', 'add', `${vip.v6}/128`, 'dev', 'eth0', 'nodad']);
  }

  // Real servers: dr/tun carry the VIP on lo without answering ARP for it (what setupRealServer
  // does for method 'dr'), and for tun also drop the raw tunnel packets at input.
  if (layout !== 'nat') {
    for (const rs of realServers) {
      rs.ns.run('ip', ['addr', 'add', `${vip.v4}/32`, 'dev', 'lo']);
      rs.ns.run('ip', ['addr', 'add', `${vip.v6}/128`, 'dev', 'lo', 'nodad']);
      writeSysctls(rs.ns, {
        'net.ipv4.conf.all.arp_ignore': 1,
        'net.ipv4.conf.all.arp_announce': 2,
        'net.ipv4.conf.eth0.arp_ignore': 1,
        'net.ipv4.conf.eth0.arp_announce': 2,
      });
      if (layout === 'tun' && NFT) rs.ns.run(NFT, ['-f', '-'], TUN_INPUT_RULES);
    }
  }

  const spawnIn = (host: Host, cmd: string, args: readonly string[]): ProcessHandle => {
    const child = spawn('ip', ['netns', 'exec', host.ns.name, cmd, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    const exited = new Promise<number | string>((resolve) => {
      child.on('error', (e) => {
        out += String(e);
        resolve('spawn-error');
      });
      // 'close', not 'exit': only then is everything the process wrote read into `output()`.
      child.on('close', (code, signal) => resolve(code ?? signal ?? 'unknown'));
    });
    const handle: ProcessHandle = {
      child,
      output: () => out,
      exited,
      stop: async (graceMs = 1000) => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
          const r = await exited;
          clearTimeout(timer);
          return r;
        }
        return exited;
      },
    };
    procs.push(handle);
    procsByHost.set(host.name, [...(procsByHost.get(host.name) ?? []), handle]);
    return handle;
  };

  const waitFor = (proc: ProcessHandle, pattern: RegExp, timeoutMs = 10_000): Promise<void> =>
    new Promise((resolve, reject) => {
      const check = (): boolean => pattern.test(proc.output());
      if (check()) return resolve();
      const onData = (): void => {
        if (check()) finish();
      };
      const timer = setTimeout(() => finish(new Error(`timed out waiting for ${pattern}: ${proc.output().trim()}`)), timeoutMs);
      const finish = (err?: Error): void => {
        clearTimeout(timer);
        proc.child.stdout?.off('data', onData);
        proc.child.stderr?.off('data', onData);
        if (err) reject(err);
        else resolve();
      };
      proc.child.stdout?.on('data', onData);
      proc.child.stderr?.on('data', onData);
      void proc.exited.then((code) => {
        if (!check()) finish(new Error(`process exited (${code}) before ${pattern}: ${proc.output().trim()}`));
      });
    });

  t.teardown(stopAll);

  // Services.
  if (opts.services ?? true) {
    const ready: Promise<void>[] = [];
    for (const rs of realServers) {
      const udpAddrs = layout === 'nat' ? [rs.ipv4, rs.ipv6] : [vip.v4, vip.v6, rs.ipv4, rs.ipv6];
      const p = spawnIn(rs, node, ['--input-type=module', '-e', SERVICE_SCRIPT, rs.name, [httpPort, ...(opts.extraHttpPorts ?? [])].join(','), String(udpPort), ...udpAddrs]);
      ready.push(waitFor(p, /^ready /m, 15_000));
    }
    if (layout === 'tun' && (opts.decap ?? true)) {
      const { decap } = tunTools();
      for (const [i, rs] of realServers.entries()) {
        const extra = opts.decapArgs?.[i] ?? [];
        const p = spawnIn(rs, decap, ['--iface', 'eth0', '--tun', 'lvstun0', '--local', rs.ipv4, '--local', rs.ipv6, ...extra]);
        ready.push(waitFor(p, /lvs-tun-decap: ready/, 15_000));
      }
    }
    await Promise.all(ready);
  }

  const request = async (kind: 'http' | 'udp', count: number, o: RequestOptions): Promise<Answer[]> => {
    if (!Number.isInteger(count) || count < 0 || count > 10_000) throw new Error(`bad request count ${count}`);
    const timeout = o.timeoutMs ?? 2000;
    const from = o.from ?? client;
    const out = await runNode(
      from.ns,
      kind === 'http' ? HTTP_CLIENT : UDP_CLIENT,
      [o.host ?? vip.v4, String(o.port ?? (kind === 'http' ? httpPort : udpPort)), String(count), String(timeout)],
      count * (timeout + 500) + 10_000,
    );
    return JSON.parse(out) as Answer[];
  };

  const topo: Topology = {
    layout,
    vip,
    httpPort,
    udpPort,
    bridge,
    client,
    ...(client2 ? { client2 } : {}),
    ...(router ? { router } : {}),
    director,
    ...(director2 ? { director2 } : {}),
    realServers,
    run: (host, cmd, args, input) => host.ns.run(cmd, args, input),
    nft: (host, ruleset) => {
      host.ns.run(needNft(), ['-f', '-'], ruleset);
    },
    nftList: (host, args) => host.ns.run(needNft(), ['list', ...args]),
    sysctl: (host, values) => writeSysctls(host.ns, values),
    spawn: spawnIn,
    processesOf: (host) => procsByHost.get(host.name) ?? [],
    waitFor,
    http: (count, o = {}) => request('http', count, o),
    udp: (count, o = {}) => request('udp', count, o),
    teardown: stopAll,
    snmp: (host) => parseSnmp(host.ns.run('cat', ['/proc/net/snmp'])),
  };
  return topo;
}

/** Drops raw tunnel packets at input on a real server (lvs-tun-decap has seen them already). */
export const TUN_INPUT_RULES = `table inet lvs_tun {
  counter tunnel {}
  chain input {
    type filter hook input priority 0;
    meta l4proto { 4, 41 } counter name tunnel drop
  }
}
`;

function needNft(): string {
  if (!NFT) throw new Error('nftables is not installed (apt-get install nftables)');
  return NFT;
}

/** Parses /proc/net/snmp (pairs of header and value lines per protocol). */
export function parseSnmp(text: string): Record<string, Record<string, number>> {
  const out: Record<string, Record<string, number>> = {};
  const lines = text.trim().split('\n');
  for (let i = 0; i + 1 < lines.length; i += 2) {
    const keys = (lines[i] ?? '').split(/\s+/);
    const vals = (lines[i + 1] ?? '').split(/\s+/);
    const proto = (keys[0] ?? '').replace(/:$/, '');
    const rec: Record<string, number> = {};
    keys.slice(1).forEach((k, j) => {
      rec[k] = Number(vals[j + 1]);
    });
    out[proto] = rec;
  }
  return out;
}
