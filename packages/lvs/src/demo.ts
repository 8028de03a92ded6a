/**
 * `npm run demo`: a real LVS/DR cluster in network namespaces. A client, a director running
 * lvsd and two web servers share one Ethernet segment; the director owns the VIP (answers ARP
 * for it) and balances real HTTP requests round robin; the servers answer the client directly.
 * Everything created is removed at the end, also on Ctrl-C.
 * @internal
 * @module
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { sendControl } from './control.js';

const VIP = '10.99.0.100';
const PORT = 80;
const tag = `lvsdemo${process.pid % 100000}`;
const ns = { sw: `${tag}-sw`, client: `${tag}-cl`, director: `${tag}-dir`, rs1: `${tag}-rs1`, rs2: `${tag}-rs2` };
const addr: Record<string, string> = { client: '10.99.0.1', director: '10.99.0.2', rs1: '10.99.0.11', rs2: '10.99.0.12' };
const children: ChildProcess[] = [];
const created: string[] = [];
const dir = mkdtempSync(join(tmpdir(), 'lvs-demo-'));
const binDir = fileURLToPath(new URL('./bin/', import.meta.url));

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout: 20_000, stdio: ['ignore', 'pipe', 'pipe'] });
}
const inNs = (name: string, cmd: string, args: string[]) => sh('ip', ['netns', 'exec', name, cmd, ...args]);

function cleanup(): void {
  for (const c of children) c.kill('SIGTERM');
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
  for (const n of created.reverse()) spawnSync('ip', ['netns', 'del', n]);
  rmSync(dir, { recursive: true, force: true });
}

function background(name: string, args: string[]): ChildProcess {
  const c = spawn('ip', ['netns', 'exec', name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(c);
  return c;
}

function waitFor(c: ChildProcess, pattern: RegExp, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`timed out waiting for ${pattern}: ${out}`)), ms);
    const on = (b: Buffer) => {
      out += b.toString();
      if (pattern.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    c.stdout?.on('data', on);
    c.stderr?.on('data', on);
    c.once('exit', (code) => reject(new Error(`exited (${code}) before ${pattern}: ${out}`)));
  });
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0 || spawnSync('ip', ['netns', 'list']).status !== 0) {
    console.error(
      'npm run demo builds network namespaces and opens AF_PACKET rings: it needs root (or CAP_NET_ADMIN\n' +
        'and CAP_NET_RAW) and iproute2. Run it as root, e.g. `sudo npm run demo`.',
    );
    process.exitCode = 1;
    return;
  }
  console.log(`# A segment with a client, a director and two web servers (namespaces ${tag}-*)`);
  for (const n of Object.values(ns)) {
    sh('ip', ['netns', 'add', n]);
    created.push(n);
    sh('ip', ['-n', n, 'link', 'set', 'lo', 'up']);
  }
  sh('ip', ['-n', ns.sw, 'link', 'add', 'br0', 'type', 'bridge']);
  sh('ip', ['-n', ns.sw, 'link', 'set', 'br0', 'up']);
  const ethtool = ['/usr/sbin/ethtool', '/sbin/ethtool'].find((p) => spawnSync(p, ['--version']).status === 0);
  for (const host of ['client', 'director', 'rs1', 'rs2'] as const) {
    const n = ns[host];
    const port = `${host}`.slice(0, 10);
    sh('ip', ['-n', ns.sw, 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n]);
    sh('ip', ['-n', ns.sw, 'link', 'set', port, 'master', 'br0', 'up']);
    sh('ip', ['-n', n, 'addr', 'add', `${addr[host]}/24`, 'dev', 'eth0']);
    sh('ip', ['-n', n, 'link', 'set', 'eth0', 'up']);
    // veth would leave checksums to "hardware"; a user-space director needs them in the frame.
    if (ethtool) inNs(n, ethtool, ['-K', 'eth0', 'tx', 'off', 'rx', 'off', 'gso', 'off', 'tso', 'off', 'gro', 'off']);
  }
  for (const rs of ['rs1', 'rs2'] as const) {
    // What the seeds' realserver.sh does: the VIP on lo, never answering ARP for it.
    sh('ip', ['-n', ns[rs], 'addr', 'add', `${VIP}/32`, 'dev', 'lo']);
    for (const [k, v] of [['lo.arp_ignore', 1], ['lo.arp_announce', 2], ['all.arp_ignore', 1], ['all.arp_announce', 2]]) {
      inNs(ns[rs], 'sysctl', ['-qw', `net.ipv4.conf.${k}=${v}`]);
    }
    const server = `require('http').createServer((q, r) => r.end('hello from ${rs}\\n')).listen(${PORT}, () => console.log('up'))`;
    await waitFor(background(ns[rs], [process.execPath, '-e', server]), /up/, 10_000);
  }

  console.log('# lvsd on the director; it answers ARP for the VIP itself (the VIP is no kernel address)');
  const socket = join(dir, 'lvsadm.sock');
  await waitFor(
    background(ns.director, [process.execPath, join(binDir, 'lvsd.js'), '-I', 'eth0', '--control-socket', socket]),
    /balancing on/,
    15_000,
  );
  for (const line of [
    `-A -t ${VIP}:${PORT} -s rr`,
    `-a -t ${VIP}:${PORT} -r ${addr['rs1']} -g -w 1`,
    `-a -t ${VIP}:${PORT} -r ${addr['rs2']} -g -w 1`,
  ]) {
    const r = await sendControl(socket, line.split(' '));
    console.log(`$ lvsadm ${line}${r.status === 0 ? '' : `   -> exit ${r.status}: ${r.stderr.trim()}`}`);
  }

  console.log(`\n# The client sends 8 HTTP requests to http://${VIP}/ (a new connection each)`);
  const client = `
    const http = require('http');
    (async () => {
      for (let i = 1; i <= 8; i++) {
        const body = await new Promise((resolve) => {
          const req = http.get({ host: '${VIP}', port: ${PORT}, agent: false, timeout: 3000 }, (res) => {
            let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => resolve(b.trim()));
          });
          req.on('timeout', () => req.destroy(new Error('timeout')));
          req.on('error', (e) => resolve('error: ' + e.message));
        });
        console.log('request ' + i + ': ' + body);
      }
    })();`;
  process.stdout.write(inNs(ns.client, process.execPath, ['-e', client]));

  for (const args of [['-L', '-n'], ['-L', '-n', '--stats']]) {
    console.log(`\n$ lvsadm ${args.join(' ')}`);
    process.stdout.write((await sendControl(socket, args)).stdout);
  }
  console.log('\n# Removing the namespaces and processes');
}

process.on('SIGINT', () => {
  cleanup();
  process.exit(130);
});
try {
  await main();
} catch (err) {
  console.error(`demo failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  cleanup();
}
