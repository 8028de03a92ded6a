#!/usr/bin/env node
// The lvs forwarder for benches/net/run.sh (its LVS_FORWARDER slot): a UDP service on the VIP,
// round robin over the two sink addresses, DR or NAT as LVS_BENCH_MODE says, over AF_XDP when
// LVS_BENCH_XDP=1; runs until SIGTERM.
//   LVS_FORWARDER='node benches/net/lvs-forwarder.mjs' benches/net/run.sh --only gen,kernel,nft,lvs-dr,lvs-nat,lvs-dr-xdp
import { Director } from 'lvs';

const env = process.env;
const vip = env.LVS_BENCH_VIP;
const method = env.LVS_BENCH_MODE === 'nat' ? 'masq' : 'route';
// The host stack need not see VIP traffic at all: AF_PACKET taps run before netdev ingress, so
// dropping there leaves lvs its copy and spares the kernel routing (and dropping) every packet.
// With XDP the kernel never sees those frames.
const xdp = env.LVS_BENCH_XDP === '1';
if (env.LVS_BENCH_INGRESS_DROP !== '0' && !xdp) {
  const { execFileSync } = await import('node:child_process');
  const nft = ['/usr/sbin/nft', '/sbin/nft'].find((p) => (() => { try { execFileSync(p, ['--version']); return true; } catch { return false; } })());
  const vipAddr = vip.slice(0, vip.lastIndexOf(':'));
  if (nft) {
    execFileSync(nft, ['-f', '-'], {
      input: [
        'table netdev lvs_bench {',
        '  chain in {',
        `    type filter hook ingress device "${env.LVS_BENCH_IN}" priority 0;`,
        `    ip daddr ${vipAddr} drop`,
        '  }',
        '}',
        '',
      ].join('\n'),
    });
  }
}
const director = await Director.open({
  interfaces: [env.LVS_BENCH_IN, env.LVS_BENCH_OUT],
  workers: Number(env.LVS_BENCH_WORKERS ?? 1),
  xdp,
});
director.addService({ protocol: 'udp', address: vip, scheduler: 'rr' });
for (const rs of (env.LVS_BENCH_REAL ?? '').split(' ').filter(Boolean)) {
  director.addServer({ protocol: 'udp', address: vip }, { address: rs, method });
}
console.error(`ready: lvs ${env.LVS_BENCH_MODE}${xdp ? ' (AF_XDP)' : ''} on ${env.LVS_BENCH_IN} -> ${env.LVS_BENCH_OUT}`);
const stop = async () => {
  const c = director.counters();
  const nonzero = Object.entries(c).filter(([, v]) => v !== 0n).map(([k, v]) => `${k}=${v}`);
  console.error(`counters: ${nonzero.join(' ')}`);
  if (env.LVS_BENCH_COUNTERS) (await import('node:fs')).writeFileSync(env.LVS_BENCH_COUNTERS, nonzero.join('\n'));
  director.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
setInterval(() => {}, 1 << 30);
