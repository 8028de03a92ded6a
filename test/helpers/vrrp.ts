// A VRRP test bed: two network namespaces joined by one veth pair on 10.200.0.0/24 (names start
// with `vr`), Debian's keepalived in one (`ka`), an lvs director with a VRRP speaker in the other
// (`lv`), tcpdump captures and a raw-socket advert sender. Everything runs inside the namespaces and
// is removed in t.teardown, also when the test fails. Needs root.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { systemTool } from './topology.js';

export const KEEPALIVED: string | null = systemTool('keepalived');
export const TCPDUMP: string | null = systemTool('tcpdump');
export const TSHARK: string | null = systemTool('tshark');
export const ARPING: string | null = systemTool('arping');
export const NFT: string | null = systemTool('nft');
export const PYTHON: string | null = (() => {
  const r = spawnSync('python3', ['-c', 'print(1)'], { encoding: 'utf8' });
  return r.status === 0 ? 'python3' : null;
})();

/** keepalived's MAC in the fixture captures; the side given it gets fe80::5889:80ff:feea:fada. */
export const FIXTURE_MAC = '5a:89:80:ea:fa:da';

let counter = 0;

/** One side of the bed. */
export interface Side {
  readonly ns: string;
  readonly addr: string;
  readonly mac: string;
  /** Runs a command in the namespace (throws on failure). */
  run(cmd: string, args: readonly string[]): string;
  /** Runs a command in the namespace without throwing. */
  try(cmd: string, args: readonly string[], timeoutMs?: number): { status: number; stdout: string; stderr: string };
}

export interface Bed {
  readonly ka: Side;
  readonly lv: Side;
  /** A scratch directory (configs, captures, pid files). */
  readonly dir: string;
}

export interface BedOptions {
  /** keepalived's address (default 10.200.0.1). */
  readonly kaAddr?: string;
  /** lvs' address (default 10.200.0.2). */
  readonly lvAddr?: string;
  /** MACs (default: fixed, keepalived side de:4d:…, lvs side 02:…). */
  readonly kaMac?: string;
  readonly lvMac?: string;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Creates the two namespaces and the veth pair between them. */
export function createBed(t: ExecutionContext, opts: BedOptions = {}): Bed {
  const n = `${process.pid % 100000}${++counter}`;
  const dir = mkdtempSync(join(tmpdir(), 'vr-'));
  const procs: ChildProcess[] = [];
  const names = { ka: `vrk${n}`, lv: `vrl${n}` };
  t.teardown(() => {
    for (const p of procs) p.kill('SIGKILL');
    for (const ns of Object.values(names)) {
      spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' })
        .stdout.split('\n')
        .filter(Boolean)
        .forEach((pid) => spawnSync('kill', ['-9', pid]));
      spawnSync('ip', ['netns', 'del', ns]);
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const side = (ns: string, addr: string, mac: string): Side => ({
    ns,
    addr,
    mac,
    run: (cmd, args) => execFileSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: 30_000 }),
    try: (cmd, args, timeoutMs = 30_000) => {
      const r = spawnSync('ip', ['netns', 'exec', ns, cmd, ...args], { encoding: 'utf8', timeout: timeoutMs });
      return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
    },
  });
  const ka = side(names.ka, opts.kaAddr ?? '10.200.0.1', opts.kaMac ?? 'de:4d:35:4e:d1:33');
  const lv = side(names.lv, opts.lvAddr ?? '10.200.0.2', opts.lvMac ?? '02:00:5e:10:00:02');
  for (const s of [ka, lv]) {
    execFileSync('ip', ['netns', 'add', s.ns]);
    // No duplicate address detection: the link-local source must be usable at once.
    s.run('sysctl', ['-qw', 'net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0']);
    execFileSync('ip', ['-n', s.ns, 'link', 'set', 'lo', 'up']);
  }
  execFileSync('ip', ['-n', ka.ns, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'veth0', 'netns', lv.ns]);
  const ethtool = systemTool('ethtool');
  for (const s of [ka, lv]) {
    execFileSync('ip', ['-n', s.ns, 'link', 'set', 'veth0', 'address', s.mac]);
    execFileSync('ip', ['-n', s.ns, 'addr', 'add', `${s.addr}/24`, 'dev', 'veth0']);
    execFileSync('ip', ['-n', s.ns, 'link', 'set', 'veth0', 'up']);
    // The director reads AF_PACKET rings: frames must carry complete checksums.
    if (ethtool !== null) s.try(ethtool, ['-K', 'veth0', 'tx', 'off', 'rx', 'off']);
  }
  // The link-local addresses appear once the kernel has seen the carrier (linkwatch may take ~1 s).
  for (const s of [ka, lv]) {
    for (let i = 0; i < 50 && !/fe80::/.test(s.run('ip', ['-6', 'addr', 'show', 'dev', 'veth0', 'scope', 'link'])); i++) {
      execFileSync('sleep', ['0.1']);
    }
  }
  (t as unknown as { vrProcs: ChildProcess[] }).vrProcs = procs;
  return { ka, lv, dir };
}

function track(t: ExecutionContext, p: ChildProcess): void {
  (t as unknown as { vrProcs: ChildProcess[] }).vrProcs.push(p);
}

/** A line of output with the time it arrived. */
export interface Line {
  readonly at: number;
  readonly text: string;
}

/** A running keepalived. */
export interface Keepalived {
  readonly lines: Line[];
  /** Resolves with the first line (from `since`) matching `re`; rejects after `timeoutMs`. */
  waitFor(re: RegExp, timeoutMs: number, since?: number): Promise<Line>;
  /** Lines matching `re`. */
  grep(re: RegExp): Line[];
  /** Sends a signal and waits for the exit (SIGTERM: priority 0 from a MASTER). */
  stop(signal?: NodeJS.Signals): Promise<void>;
  /** Kills the VRRP child and the parent at once (SIGKILL): it falls silent without priority 0. */
  crash(): Promise<void>;
}

function collect(p: ChildProcess, lines: Line[]): void {
  let buf = '';
  const on = (chunk: Buffer): void => {
    buf += chunk.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push({ at: Date.now(), text: buf.slice(0, i) });
      buf = buf.slice(i + 1);
    }
  };
  p.stdout?.on('data', on);
  p.stderr?.on('data', on);
}

function waiter(lines: Line[], p: ChildProcess, what: string) {
  return (re: RegExp, timeoutMs: number, since = 0): Promise<Line> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const tick = (): void => {
        const hit = lines.find((l) => l.at >= since && re.test(l.text));
        if (hit !== undefined) return resolve(hit);
        if (Date.now() - started > timeoutMs) {
          return reject(new Error(`${what}: no line matching ${String(re)} within ${timeoutMs} ms:\n${lines.map((l) => l.text).join('\n')}`));
        }
        if (p.exitCode !== null && !lines.some((l) => re.test(l.text))) {
          return reject(new Error(`${what} exited (${String(p.exitCode)}):\n${lines.map((l) => l.text).join('\n')}`));
        }
        setTimeout(tick, 20);
      };
      tick();
    });
}

function exited(p: ChildProcess, timeoutMs: number): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      p.kill('SIGKILL');
      resolve();
    }, timeoutMs);
    p.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Starts `keepalived --vrrp` with `conf` in the keepalived namespace. */
export function startKeepalived(t: ExecutionContext, bed: Bed, conf: string): Keepalived {
  const file = join(bed.dir, `ka${++counter}.conf`);
  writeFileSync(file, conf);
  const pid = join(bed.dir, `ka${counter}.pid`);
  const p = spawn(
    'ip',
    ['netns', 'exec', bed.ka.ns, KEEPALIVED ?? 'keepalived', '--vrrp', '-n', '-l', '-D', '-G', '-f', file, '-p', pid, '-r', `${pid}.vrrp`],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  track(t, p);
  const lines: Line[] = [];
  collect(p, lines);
  return {
    lines,
    waitFor: waiter(lines, p, 'keepalived'),
    grep: (re) => lines.filter((l) => re.test(l.text)),
    stop: async (signal = 'SIGTERM') => {
      p.kill(signal);
      await exited(p, 5000);
    },
    crash: async () => {
      // The parent's death would make the child resign (SIGTERM to it); kill the child first.
      const child = Number.parseInt(readFileSync(`${pid}.vrrp`, 'utf8'), 10);
      if (Number.isInteger(child) && child > 1) spawnSync('kill', ['-9', String(child)]);
      p.kill('SIGKILL');
      await exited(p, 5000);
    },
  };
}

/** keepalived.conf for one instance, from keyword lines. */
export function kaConf(name: string, body: readonly string[], vips: readonly string[]): string {
  return [
    'global_defs {',
    `    router_id ${name}`,
    '}',
    `vrrp_instance ${name} {`,
    '    interface veth0',
    ...body.map((l) => `    ${l}`),
    '    virtual_ipaddress {',
    ...vips.map((v) => `        ${v}`),
    '    }',
    '}',
    '',
  ].join('\n');
}

/** An event of the lvs speaker process (JSON lines). */
export interface LvEvent {
  readonly ev: string;
  readonly at: number;
  readonly [k: string]: unknown;
}

/** The lvs director process with its speaker. */
export interface LvSpeaker {
  readonly events: LvEvent[];
  /** The first event (from `since`) satisfying `pred`. */
  waitFor(pred: (e: LvEvent) => boolean, timeoutMs: number, since?: number): Promise<LvEvent>;
  /** Sends a command and waits for its reply. */
  call(op: string, args?: Record<string, unknown>): Promise<LvEvent>;
  /** Stops the speaker (priority 0 from a MASTER) and the director, then the process. */
  stop(): Promise<void>;
}

const SDK = new URL('../../packages/lvs/dist/index.js', import.meta.url).href;

// The director process: reads JSON commands on stdin, writes JSON events on stdout.
const SCRIPT = `
import { Director } from ${JSON.stringify(SDK)};
import { createInterface } from 'node:readline';
const cfg = JSON.parse(process.argv[1]);
const out = (o) => process.stdout.write(JSON.stringify({ ...o, at: Date.now() }, (k, v) => typeof v === 'bigint' ? Number(v) : v) + '\\n');
const director = await Director.open({ interfaces: ['veth0'] });
for (const s of cfg.services ?? []) director.addService(s.service).addServer(s.service, s.server);
const vrrp = director.startVrrp(cfg.instances, cfg.options ?? {});
vrrp.on('state', (c) => out({ ev: 'state', ...c }));
vrrp.on('master', (c) => out({ ev: 'master', instance: c.instance }));
vrrp.on('backup', (c) => out({ ev: 'backup', instance: c.instance }));
vrrp.on('fault', (c) => out({ ev: 'fault', instance: c.instance }));
vrrp.on('log', (l) => out({ ev: 'log', ...l }));
vrrp.on('error', (e) => out({ ev: 'error', message: e.message }));
createInterface({ input: process.stdin }).on('line', (line) => {
  const c = JSON.parse(line);
  try {
    if (c.op === 'status') out({ ev: 'reply', id: c.id, status: vrrp.status(), counters: director.counters() });
    else if (c.op === 'delta') { vrrp.setPriorityDelta(c.name, c.delta); out({ ev: 'reply', id: c.id }); }
    else if (c.op === 'fault') { vrrp.setFault(c.name, c.fault); out({ ev: 'reply', id: c.id }); }
    else if (c.op === 'stop') {
      vrrp.stop();
      // Let the last events arrive before the director goes.
      setTimeout(() => { director.close(); out({ ev: 'reply', id: c.id }); setTimeout(() => process.exit(0), 50); }, 200);
    }
  } catch (e) { out({ ev: 'reply', id: c.id, error: e.message, code: e.code }); }
});
out({ ev: 'ready' });
`;

/** Starts a director on veth0 of the lvs namespace with a VRRP speaker for `instances`. */
export async function startLvs(
  t: ExecutionContext,
  bed: Bed,
  cfg: { instances: readonly unknown[]; options?: unknown; services?: readonly unknown[] },
): Promise<LvSpeaker> {
  const p = spawn('ip', ['netns', 'exec', bed.lv.ns, process.execPath, '--input-type=module', '-e', SCRIPT, JSON.stringify(cfg)], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  track(t, p);
  const events: LvEvent[] = [];
  const raw: Line[] = [];
  let buf = '';
  p.stdout?.on('data', (chunk: Buffer) => {
    buf += chunk.toString('utf8');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const text = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        events.push(JSON.parse(text) as LvEvent);
      } catch {
        raw.push({ at: Date.now(), text });
      }
    }
  });
  p.stderr?.on('data', (chunk: Buffer) => raw.push({ at: Date.now(), text: chunk.toString('utf8') }));
  // A helper that died makes the next command an EPIPE; waitFor then reports its exit and output.
  p.stdin?.on('error', () => undefined);
  const waitFor = (pred: (e: LvEvent) => boolean, timeoutMs: number, since = 0): Promise<LvEvent> =>
    new Promise((resolve, reject) => {
      const started = Date.now();
      const tick = (): void => {
        const hit = events.find((e) => e.at >= since && pred(e));
        if (hit !== undefined) return resolve(hit);
        if (Date.now() - started > timeoutMs || p.exitCode !== null) {
          return reject(
            new Error(
              `lvs: no such event within ${timeoutMs} ms (exit ${String(p.exitCode)}):\n${events.map((e) => JSON.stringify(e)).join('\n')}\n${raw.map((l) => l.text).join('')}`,
            ),
          );
        }
        setTimeout(tick, 20);
      };
      tick();
    });
  await waitFor((e) => e.ev === 'ready', 15_000);
  let id = 0;
  const call = async (op: string, args: Record<string, unknown> = {}): Promise<LvEvent> => {
    const my = ++id;
    p.stdin?.write(`${JSON.stringify({ op, id: my, ...args })}\n`);
    return waitFor((e) => e.ev === 'reply' && e.id === my, 10_000);
  };
  return {
    events,
    waitFor,
    call,
    stop: async () => {
      if (p.exitCode === null) await call('stop');
      await exited(p, 5000);
    },
  };
}

/** A tcpdump capture on veth0 of a namespace. */
export interface Capture {
  /** Stops tcpdump and returns the frames. */
  stop(): Promise<Frame[]>;
  readonly file: string;
}

/** A captured frame: time (seconds) and bytes. */
export interface Frame {
  readonly time: number;
  readonly data: Buffer;
}

/** Reads a classic pcap file (microsecond or nanosecond timestamps). */
export function readPcap(file: string): Frame[] {
  const b = readFileSync(file);
  if (b.length < 24) return [];
  const magic = b.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  const nano = magic === 0xa1b23c4d || magic === 0x4d3cb2a1;
  const u32 = (o: number): number => (le ? b.readUInt32LE(o) : b.readUInt32BE(o));
  const frames: Frame[] = [];
  let o = 24;
  while (o + 16 <= b.length) {
    const sec = u32(o);
    const frac = u32(o + 4);
    const incl = u32(o + 8);
    if (o + 16 + incl > b.length) break;
    frames.push({ time: sec + frac / (nano ? 1e9 : 1e6), data: b.subarray(o + 16, o + 16 + incl) });
    o += 16 + incl;
  }
  return frames;
}

/** Starts tcpdump (VRRP and ARP) on veth0 of `side`; waits until it listens. */
export async function capture(t: ExecutionContext, bed: Bed, side: Side): Promise<Capture> {
  const file = join(bed.dir, `cap${++counter}.pcap`);
  const p = spawn('ip', ['netns', 'exec', side.ns, TCPDUMP ?? 'tcpdump', '-i', 'veth0', '-n', '-U', '--immediate-mode', '-w', file, 'ip proto 112 or ip6 proto 112 or arp'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  track(t, p);
  const lines: Line[] = [];
  collect(p, lines);
  await waiter(lines, p, 'tcpdump')(/listening on/, 10_000);
  return {
    file,
    stop: async () => {
      // Immediate mode hands every frame over at once; the pause lets the last ones be written.
      await sleep(500);
      p.kill('SIGTERM');
      await exited(p, 5000);
      return readPcap(file);
    },
  };
}

/** VRRP frames of a capture: IP source, TTL / hop limit, IP header and VRRP bytes. */
export interface VrrpFrame {
  readonly time: number;
  readonly src: string;
  readonly ttl: number;
  readonly ip: Buffer;
  readonly vrrp: Buffer;
  readonly priority: number;
  readonly vrid: number;
}

export function vrrpFrames(frames: readonly Frame[]): VrrpFrame[] {
  const out: VrrpFrame[] = [];
  for (const f of frames) {
    const type = f.data.readUInt16BE(12);
    if (type === 0x0800 && f.data[23] === 112) {
      const hl = (f.data[14]! & 0x0f) * 4;
      const total = f.data.readUInt16BE(16);
      const ip = f.data.subarray(14, 14 + hl);
      const vrrp = f.data.subarray(14 + hl, 14 + total);
      out.push({ time: f.time, src: [...f.data.subarray(26, 30)].join('.'), ttl: f.data[22]!, ip, vrrp, priority: vrrp[2]!, vrid: vrrp[1]! });
    } else if (type === 0x86dd && f.data[20] === 112) {
      const len = f.data.readUInt16BE(18);
      const src = f.data.subarray(22, 38).toString('hex');
      out.push({ time: f.time, src, ttl: f.data[21]!, ip: f.data.subarray(14, 54), vrrp: f.data.subarray(54, 54 + len), priority: f.data[56]!, vrid: f.data[55]! });
    }
  }
  return out;
}

/** ARP replies in a capture: sender IP and MAC. */
export function arpReplies(frames: readonly Frame[]): { ip: string; mac: string }[] {
  return frames
    .filter((f) => f.data.readUInt16BE(12) === 0x0806 && f.data.readUInt16BE(20) === 2)
    .map((f) => ({ ip: [...f.data.subarray(28, 32)].join('.'), mac: [...f.data.subarray(22, 28)].map((x) => x.toString(16).padStart(2, '0')).join(':') }));
}

/** `ip -br addr` of veth0 in a namespace. */
export function addrs(side: Side): string {
  return side.run('ip', ['-br', 'addr', 'show', 'dev', 'veth0']);
}

/** Sends ARP requests for `ip` from `side`; returns the MACs that answered. */
export function arping(side: Side, ip: string): string[] {
  const r = side.try(ARPING ?? 'arping', ['-c', '2', '-w', '3', '-I', 'veth0', ip], 10_000);
  return [...r.stdout.matchAll(/reply from \S+ \[([0-9a-fA-F:]+)\]/g)].map((m) => m[1]!.toLowerCase());
}

// A VRRPv2 advert sender on a raw socket (IP_HDRINCL, so TTL and every field are ours).
const SENDER = `
import socket, struct, sys, time
src, dst, ttl, vrid, prio, authtype, pw, adv, vips, count = sys.argv[1:11]
vips = vips.split(',')
def csum(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
body = b''.join(socket.inet_aton(v) for v in vips) + pw.encode().ljust(8, b'\\0')[:8]
msg = struct.pack('!BBBBBBH', 0x21, int(vrid), int(prio), len(vips), int(authtype), int(adv), 0) + body
msg = msg[:6] + struct.pack('!H', csum(msg)) + msg[8:]
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0xc0, 20 + len(msg), 4242, 0, int(ttl), 112, 0, socket.inet_aton(src), socket.inet_aton(dst))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, 112)
s.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'veth0')
for _ in range(int(count)):
    s.sendto(ip + msg, (dst, 0))
    time.sleep(0.2)
`;

/** An advert to inject. */
export interface Advert {
  readonly ttl?: number;
  readonly vrid: number;
  readonly priority: number;
  readonly authType?: number;
  readonly password?: string;
  readonly advertInt?: number;
  readonly vips: readonly string[];
  readonly count?: number;
}

/** Sends VRRPv2 adverts to 224.0.0.18 from `side`'s address. */
export function sendAdvert(side: Side, a: Advert): void {
  side.run(PYTHON ?? 'python3', [
    '-c',
    SENDER,
    side.addr,
    '224.0.0.18',
    String(a.ttl ?? 255),
    String(a.vrid),
    String(a.priority),
    String(a.authType ?? (a.password === undefined ? 0 : 1)),
    a.password ?? '',
    String(a.advertInt ?? 1),
    a.vips.join(','),
    String(a.count ?? 1),
  ]);
}

export { sleep };
