// High availability the way the seeds run it, with lvsd in keepalived's place: two directors run
// `lvsd -f keepalived.conf` (VRRP for the VIP, TCP_CHECK health checks, lvs_sync_daemon tied to
// the VRRP instance), LVS/DR to two real servers. The MASTER balances a long-lived TCP stream and
// new HTTP requests; a real server that stops is taken out and put back; the MASTER is killed and
// the BACKUP takes the VIP within VRRP's master-down interval, and the stream continues on the
// synced connection without a reset; a MASTER that stops cleanly resigns with priority 0.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { canUseNetns } from './helpers/netns.js';
import { ECHO_PORT, ECHO_SERVER, lastServer, sleep, STREAM_CLIENT, until } from './helpers/stream.js';
import { createTopology, type Host, type ProcessHandle, type Topology } from './helpers/topology.js';

const maybe = canUseNetns ? test.serial : test.skip;
const bin = (name: string) => fileURLToPath(new URL(`../packages/lvs/dist/bin/${name}.js`, import.meta.url));
/** The seeds' keepalived.conf shape: VRRP instance, sync daemon, DR virtual servers with TCP_CHECK. */
function keepalivedConf(topo: Topology, state: 'MASTER' | 'BACKUP', priority: number): string {
  const vs = (port: number) => `
virtual_server ${topo.vip.v4} ${port} {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    protocol TCP
${topo.realServers
  .map(
    (rs) => `    real_server ${rs.ipv4} ${port} {
        weight 1
        TCP_CHECK {
            connect_port ${port}
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }`,
  )
  .join('\n')}
}`;
  return `! lvs HA test (${state})
global_defs {
    router_id lvs_${state.toLowerCase()}
    lvs_sync_daemon eth0 VI_1 id 42
}

vrrp_instance VI_1 {
    state ${state}
    interface eth0
    virtual_router_id 51
    priority ${priority}
    advert_int 1
    authentication {
        auth_type PASS
        auth_pass lvs-ha
    }
    virtual_ipaddress {
        ${topo.vip.v4}/24
    }
}
${vs(ECHO_PORT)}
${vs(topo.httpPort)}
`;
}

interface Lvsd {
  readonly proc: ProcessHandle;
  /** The keepalived.conf it runs. */
  readonly file: string;
  lvsadm(args: string): string;
}

async function startLvsd(t: Parameters<typeof createTopology>[0], topo: Topology, host: Host, conf: string): Promise<Lvsd> {
  const dir = mkdtempSync(join(tmpdir(), 'lvs-ha-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'keepalived.conf');
  writeFileSync(file, conf);
  const socket = join(dir, 'lvsadm.sock');
  const proc = topo.spawn(host, process.execPath, [bin('lvsd'), '-f', file, '--control-socket', socket]);
  await topo.waitFor(proc, /balancing on eth0/, 15_000);
  const lvsadm = (args: string) =>
    execFileSync(process.execPath, [bin('lvsadm'), ...args.split(' ')], {
      env: { ...process.env, LVSADM_SOCKET: socket },
      encoding: 'utf8',
      timeout: 10_000,
    });
  return { proc, file, lvsadm };
}

const realServerLines = (listing: string, port: number): string[] =>
  listing.split('\n').filter((l) => l.includes('->') && l.includes(`:${port} `) && !l.includes('RemoteAddress'));

maybe('lvsd -f: VRRP failover with connection sync keeps an established stream; checks remove and re-add servers', async (t) => {
  t.timeout(150_000);
  const topo = await createTopology(t, { layout: 'dr', directorVip: 'none', secondDirector: true, realServers: 2 });
  const d2 = topo.director2;
  if (!d2) throw new Error('no second director');
  const echo: ProcessHandle[] = [];
  for (const rs of topo.realServers) {
    const p = topo.spawn(rs, process.execPath, ['-e', ECHO_SERVER, rs.name]);
    await topo.waitFor(p, /listening/, 10_000);
    echo.push(p);
  }
  const master = await startLvsd(t, topo, topo.director, keepalivedConf(topo, 'MASTER', 150));
  const backup = await startLvsd(t, topo, d2, keepalivedConf(topo, 'BACKUP', 100));

  // Election: the higher priority wins (both start as BACKUP and the master-down timer decides).
  await topo.waitFor(master.proc, /\(VI_1\) Entering MASTER STATE/, 15_000);
  await sleep(1500);
  t.false(/Entering MASTER STATE/.test(backup.proc.output()), backup.proc.output());
  t.regex(master.lvsadm('-L --daemon'), /^master sync daemon \(mcast=eth0, syncid=42/);
  t.regex(backup.lvsadm('-L --daemon'), /^backup sync daemon \(mcast=eth0, syncid=42/);

  // Repeated requests go through the MASTER to both real servers.
  const before = await topo.http(4);
  t.deepEqual([...new Set(before.map((a) => a.server))].sort(), ['rs1', 'rs2'], JSON.stringify(before));

  // Health checks: rs2's echo service stops → removed from the echo service only; back → re-added.
  const rs2 = topo.realServers[1] as Host;
  await echo[1]?.stop(1000);
  t.true(await until(10_000, () => realServerLines(master.lvsadm('-Ln'), ECHO_PORT).length === 1), master.lvsadm('-Ln'));
  t.is(realServerLines(master.lvsadm('-Ln'), topo.httpPort).length, 2);
  const again = topo.spawn(rs2, process.execPath, ['-e', ECHO_SERVER, rs2.name]);
  await topo.waitFor(again, /listening/, 10_000);
  t.true(await until(10_000, () => realServerLines(master.lvsadm('-Ln'), ECHO_PORT).length === 2), master.lvsadm('-Ln'));

  // SIGHUP reloads the file, as with keepalived: the HTTP service's scheduler changes in place.
  writeFileSync(master.file, keepalivedConf(topo, 'MASTER', 150).replace(/lb_algo rr(?![\s\S]*lb_algo rr)/, 'lb_algo wlc'));
  master.proc.child.kill('SIGHUP');
  await topo.waitFor(master.proc, /lvsd: configuration reloaded/, 10_000);
  t.regex(master.lvsadm('-Ln'), new RegExp(`TCP  ${topo.vip.v4.replace(/\./g, '\\.')}:${topo.httpPort} wlc`));
  t.is(realServerLines(master.lvsadm('-Ln'), ECHO_PORT).length, 2);

  // A long-lived stream through the MASTER; the BACKUP learns it through the sync daemon.
  const stream = topo.spawn(topo.client, process.execPath, ['-e', STREAM_CLIENT, topo.vip.v4]);
  await topo.waitFor(stream, /rs\d:line3\n/, 10_000);
  const server = /(rs\d):line3/.exec(stream.output())?.[1];
  const serverIp = topo.realServers.find((h) => h.name === server)?.ipv4;
  t.truthy(serverIp);
  const synced = new RegExp(`TCP\\s+\\S+\\s+ESTABLISHED\\s+${topo.client.ipv4}:\\d+\\s+${topo.vip.v4}:${ECHO_PORT}\\s+${serverIp}:${ECHO_PORT}`);
  t.true(await until(10_000, () => synced.test(backup.lvsadm('-L -n -c'))), backup.lvsadm('-L -n -c'));

  // Hard failure of the MASTER: no priority-0 advert, the BACKUP waits the master-down interval
  // (3 × 1 s + (256 − 100)/256 s = 3.61 s) and takes over.
  const killedAt = Date.now();
  master.proc.child.kill('SIGKILL');
  await master.proc.exited;
  await topo.waitFor(backup.proc, /\(VI_1\) Entering MASTER STATE/, 10_000);
  const takeover = Date.now() - killedAt;
  t.true(takeover >= 2500 && takeover <= 3610 + 1500, `takeover after ${takeover} ms`);
  t.regex(backup.lvsadm('-L --daemon'), /^master sync daemon/);

  // The stream goes on, on the same real server, without a reset.
  const lines = () => (stream.output().match(/line\d+/g) ?? []).length;
  const seen = lines();
  t.true(await until(15_000, () => lines() >= seen + 20), stream.output().slice(-400));
  const out = stream.output();
  t.false(/ERROR|CLOSED/.test(out), out.slice(-400));
  // The echo server prefixes each chunk it answers with its name: the last chunk is still the same server's.
  t.is(lastServer(out), server);
  // New requests are served by the new MASTER.
  const after = await topo.http(4);
  t.true(after.every((a) => a.server !== null), JSON.stringify(after));

  // The old MASTER comes back (priority 150 preempts), then stops cleanly: it resigns with
  // priority 0 and the BACKUP takes over after only its skew time.
  const back = await startLvsd(t, topo, topo.director, keepalivedConf(topo, 'MASTER', 150));
  await topo.waitFor(back.proc, /\(VI_1\) Entering MASTER STATE/, 15_000);
  await topo.waitFor(backup.proc, /\(VI_1\) Entering BACKUP STATE/, 5_000);
  const outputBefore = backup.proc.output().length;
  const stoppedAt = Date.now();
  await back.proc.stop(5000);
  t.true(
    await until(3_000, () => /\(VI_1\) Entering MASTER STATE/.test(backup.proc.output().slice(outputBefore))),
    backup.proc.output().slice(-600),
  );
  t.true(Date.now() - stoppedAt < 3_000, 'priority 0 makes the backup take over without the full master-down wait');
});
