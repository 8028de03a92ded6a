// The VRRP speaker against Debian's keepalived 2.2.7, over a veth pair between two network
// namespaces (test/helpers/vrrp.ts): election by priority and by address, preemption and
// nopreempt, takeover times within the RFC bounds, priority 0 on stop, byte-compatible adverts
// (v2 PASS, v3 IPv4, v3 IPv6: the first advert equals keepalived's captured bytes), ARP for the
// VIP answered only while MASTER, and bad adverts ignored and counted. Root only.
import { execFileSync } from 'node:child_process';
import test from 'ava';
import { canUseNetns } from './helpers/netns.js';
import {
  addrs,
  ARPING,
  arping,
  arpReplies,
  capture,
  createBed,
  FIXTURE_MAC,
  KEEPALIVED,
  kaConf,
  NFT,
  PYTHON,
  sendAdvert,
  sleep,
  startKeepalived,
  startLvs,
  TCPDUMP,
  TSHARK,
  vrrpFrames,
  type Bed,
  type LvEvent,
} from './helpers/vrrp.js';

const why = !canUseNetns
  ? 'needs root and iproute2 (network namespaces)'
  : KEEPALIVED === null
    ? 'needs keepalived (apt-get install keepalived)'
    : TCPDUMP === null
      ? 'needs tcpdump'
      : null;
const netTest = why === null ? test.serial : test.skip;
if (why !== null) {
  test('VRRP interop tests skipped', (t) => {
    t.log(`skipped: ${why}`);
    t.pass();
  });
}

const V2_PASS = { authentication: { authType: 'PASS', authPass: 'secret12' } } as const;
const VIPS2 = ['10.200.0.100', '10.200.0.101'];
const KA_PASS = ['authentication {', '    auth_type PASS', '    auth_pass secret12', '}'];

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

const isState = (to: string) => (e: LvEvent) => e.ev === 'state' && e.to === to;

async function counters(lv: { call: (op: string) => Promise<LvEvent> }, name: string): Promise<Record<string, number>> {
  const r = await lv.call('status');
  const s = (r.status as { name: string; counters: Record<string, number> }[]).find((i) => i.name === name);
  return s?.counters ?? {};
}

netTest('v2 PASS: our adverts are keepalived\'s bytes, keepalived accepts them and stays BACKUP; ARP answered only while MASTER', async (t) => {
  t.timeout(60_000);
  // Our side takes keepalived's address and MAC from the capture, so the bytes must be identical.
  const bed = createBed(t, { lvAddr: '10.200.0.1', kaAddr: '10.200.0.2', lvMac: FIXTURE_MAC });
  const cap = await capture(t, bed, bed.ka);
  const lv = await startLvs(t, bed, {
    instances: [
      { name: 'VI_1', interface: 'veth0', virtualRouterId: 51, priority: 150, advertInt: 1, ...V2_PASS, virtualIpaddress: VIPS2 },
    ],
  });
  const master = await lv.waitFor(isState('MASTER'), 6000);
  const backupAt = lv.events.find(isState('BACKUP'))?.at ?? 0;
  // Startup as BACKUP, then MASTER after the master-down interval 3 + 106/256 s.
  const took = master.at - backupAt;
  t.true(took > 3000 && took < 4500, `master-down interval ${took} ms`);

  const ka = startKeepalived(t, bed, kaConf('VI_1', ['state BACKUP', 'virtual_router_id 51', 'priority 100', 'advert_int 1', ...KA_PASS], VIPS2));
  await ka.waitFor(/Entering BACKUP STATE/, 10_000);
  await sleep(5000);
  t.deepEqual(ka.grep(/Entering MASTER STATE|invalid|mismatch|checksum|wrong/), [], 'keepalived accepted every advert');
  t.false(addrs(bed.ka).includes('10.200.0.100'), 'keepalived did not take the VIPs');

  if (ARPING !== null) {
    t.deepEqual([...new Set(arping(bed.ka, '10.200.0.100'))], [FIXTURE_MAC], 'lvs answers ARP for the VIP as MASTER');
  }
  await lv.stop();
  await ka.waitFor(/Entering MASTER STATE/, 5000);
  await ka.stop();
  const frames = await cap.stop();
  const ours = vrrpFrames(frames).filter((f) => f.src === '10.200.0.1');
  t.true(ours.length >= 8, `adverts captured: ${ours.length}`);
  // keepalived 2.2.7's first advert for this configuration (keepalived.md §3.2).
  const want = hex(`45 c0 00 2c 00 01 00 00 ff 70 cf c5 0a c8 00 01 e0 00 00 12
                    21 33 96 02 01 01 c3 f1 0a c8 00 64 0a c8 00 65 73 65 63 72 65 74 31 32`);
  t.deepEqual(Buffer.concat([ours[0]!.ip, ours[0]!.vrrp]).toString('hex'), want.toString('hex'), 'first advert');
  t.deepEqual(
    ours.slice(0, 5).map((f) => f.ip.readUInt16BE(4)),
    [1, 2, 3, 4, 5],
    'IP IDs count up from 1',
  );
  // The priority-0 advert on stop: keepalived's bytes with checksum 59f2.
  const last = ours[ours.length - 1]!;
  t.is(last.vrrp.toString('hex'), '213300020101 59f2 0ac80064 0ac80065 7365637265743132'.replace(/\s/g, ''));
  // GARPs on becoming MASTER: 5 rounds for both VIPs from our MAC, before keepalived started.
  const garps = frames.filter((f) => f.data.readUInt16BE(12) === 0x0806 && f.data.subarray(28, 32).equals(f.data.subarray(38, 42)));
  t.true(garps.length >= 10, `gratuitous ARPs: ${garps.length}`);
});

netTest('election by priority: keepalived higher stays MASTER, lvs BACKUP and does not answer ARP for the VIP', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t);
  const ka = startKeepalived(t, bed, kaConf('VI_1', ['state MASTER', 'virtual_router_id 51', 'priority 200', 'advert_int 1', ...KA_PASS], VIPS2));
  await ka.waitFor(/Entering MASTER STATE/, 10_000);
  const cap = await capture(t, bed, bed.ka);
  const lv = await startLvs(t, bed, {
    instances: [{ name: 'VI_1', interface: 'veth0', virtualRouterId: 51, priority: 150, ...V2_PASS, virtualIpaddress: VIPS2 }],
  });
  await lv.waitFor(isState('BACKUP'), 5000);
  await sleep(5000);
  t.deepEqual(lv.events.filter(isState('MASTER')), [], 'lvs stays BACKUP under a higher master');
  t.deepEqual(ka.grep(/Entering BACKUP STATE(?! \(init\))/), [], 'keepalived stays MASTER');
  const c = await counters(lv, 'VI_1');
  t.true((c.adverts_received ?? 0) >= 4, `keepalived's adverts accepted: ${JSON.stringify(c)}`);
  t.is(c.drop_password, 0);
  if (ARPING !== null) {
    arping(bed.ka, '10.200.0.100');
  }
  const status = await lv.call('status');
  const engine = status.counters as Record<string, number>;
  t.is(engine.answered_arp, 0, 'a BACKUP never answers ARP for its VIPs');
  await lv.stop();
  const frames = await cap.stop();
  t.deepEqual(arpReplies(frames).filter((r) => r.mac === bed.lv.mac), [], 'no ARP reply from lvs on the wire');
  t.deepEqual(vrrpFrames(frames).filter((f) => f.src === bed.lv.addr), [], 'a BACKUP sends nothing, also not on stop');
  await ka.stop();
});

netTest('preemption: a higher-priority lvs takes over from keepalived within the master-down interval; priority 0 on stop hands back after the skew time', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t);
  const ka = startKeepalived(t, bed, kaConf('VI_1', ['state MASTER', 'virtual_router_id 51', 'priority 100', 'advert_int 1', ...KA_PASS], VIPS2));
  await ka.waitFor(/Entering MASTER STATE/, 10_000);
  await ka.waitFor(/setting VIPs/, 5000);
  const cap = await capture(t, bed, bed.ka);
  const lv = await startLvs(t, bed, {
    instances: [{ name: 'VI_1', interface: 'veth0', virtualRouterId: 51, priority: 150, ...V2_PASS, virtualIpaddress: VIPS2 }],
  });
  const backup = await lv.waitFor(isState('BACKUP'), 5000);
  const master = await lv.waitFor(isState('MASTER'), 6000);
  // keepalived keeps advertising priority 100; a preempting backup ignores them and takes over
  // when its master-down timer (3 + 106/256 s) runs out.
  const took = master.at - backup.at;
  t.true(took >= 3300 && took <= 4500, `takeover after ${took} ms`);
  await ka.waitFor(/Master received advert from 10\.200\.0\.2 with higher priority 150, ours 100/, 3000);
  await ka.waitFor(/Entering BACKUP STATE(?! \(init\))/, 3000);
  await sleep(300);
  t.false(addrs(bed.ka).includes('10.200.0.100'), 'keepalived removed the VIPs');
  if (ARPING !== null) t.deepEqual([...new Set(arping(bed.ka, '10.200.0.101'))], [bed.lv.mac], 'lvs answers ARP now');

  const stopAt = Date.now();
  await lv.stop();
  await ka.waitFor(/Backup received priority 0 advertisement/, 3000, stopAt);
  await ka.waitFor(/Entering MASTER STATE/, 3000, stopAt);
  await ka.stop('SIGKILL');
  const frames = vrrpFrames(await cap.stop());
  const zero = frames.findIndex((f) => f.src === bed.lv.addr && f.priority === 0);
  t.true(zero >= 0, `lvs sent priority 0 on stop: ${frames.map((f) => `${f.time.toFixed(3)} ${f.src} ${f.priority}`).join(', ')}`);
  const next = frames.slice(zero + 1).find((f) => f.src === bed.ka.addr);
  // Skew time of priority 100: (256 - 100) / 256 s = 609 ms.
  const skew = (next!.time - frames[zero]!.time) * 1000;
  t.true(skew > 450 && skew < 1200, `keepalived took over ${skew.toFixed(0)} ms after the priority-0 advert`);
});

netTest('nopreempt: lvs stays BACKUP under a lower master and takes over within the master-down interval after it dies', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t);
  const ka = startKeepalived(t, bed, kaConf('VI_1', ['state MASTER', 'virtual_router_id 51', 'priority 100', 'advert_int 1', ...KA_PASS], VIPS2));
  await ka.waitFor(/Entering MASTER STATE/, 10_000);
  const cap = await capture(t, bed, bed.ka);
  const lv = await startLvs(t, bed, {
    instances: [
      { name: 'VI_1', interface: 'veth0', virtualRouterId: 51, priority: 150, nopreempt: true, ...V2_PASS, virtualIpaddress: VIPS2 },
    ],
  });
  await lv.waitFor(isState('BACKUP'), 5000);
  await sleep(6000);
  t.deepEqual(lv.events.filter(isState('MASTER')), [], 'nopreempt: no takeover from a running lower master');
  // A crash: no priority-0 advert, the backup must notice the silence.
  await ka.crash();
  await lv.waitFor(isState('MASTER'), 6000);
  await sleep(500);
  await lv.stop();
  const frames = vrrpFrames(await cap.stop());
  const lastKa = frames.filter((f) => f.src === bed.ka.addr).pop()!;
  const firstLv = frames.find((f) => f.src === bed.lv.addr)!;
  const gap = (firstLv.time - lastKa.time) * 1000;
  // Master_Down_Interval = 3 × 1 s + (256 − 150)/256 s = 3414 ms (+ up to one advert interval of phase).
  t.true(gap >= 3300 && gap <= 4500, `takeover ${gap.toFixed(0)} ms after the last advert`);
});

/** Drops VRRP at input on both sides (nftables), so both become MASTER, or lets it through again. */
function isolate(bed: Bed, on: boolean): void {
  const nft = NFT ?? 'nft';
  for (const s of [bed.ka, bed.lv]) {
    if (on) {
      s.run(nft, ['add', 'table', 'ip', 'vrblock']);
      s.run(nft, ['add', 'chain', 'ip', 'vrblock', 'in', '{ type filter hook input priority 0 ; }']);
      s.run(nft, ['add', 'rule', 'ip', 'vrblock', 'in', 'ip', 'protocol', '112', 'drop']);
    } else {
      s.run(nft, ['delete', 'table', 'ip', 'vrblock']);
    }
  }
}

for (const lvHigher of [true, false]) {
  (NFT === null ? test.skip : netTest)(`tie-break on equal priority: the ${lvHigher ? 'higher address (lvs) stays' : 'lower address (lvs) yields'}`, async (t) => {
    t.timeout(60_000);
    const bed = createBed(t, lvHigher ? {} : { lvAddr: '10.200.0.1', kaAddr: '10.200.0.2' });
    // Both become MASTER while they cannot hear each other, then meet.
    isolate(bed, true);
    const ka = startKeepalived(t, bed, kaConf('VI_1', ['state BACKUP', 'virtual_router_id 51', 'priority 100', 'advert_int 1'], VIPS2));
    const lv = await startLvs(t, bed, {
      instances: [{ name: 'VI_1', interface: 'veth0', virtualRouterId: 51, priority: 100, virtualIpaddress: VIPS2 }],
    });
    await ka.waitFor(/Entering MASTER STATE/, 10_000);
    await lv.waitFor(isState('MASTER'), 10_000);
    const met = Date.now();
    isolate(bed, false);
    if (lvHigher) {
      await ka.waitFor(new RegExp(`Master received advert from ${bed.lv.addr.replace(/\./g, '\\.')} with same priority 100 but higher IP address than ours`), 5000, met);
      await ka.waitFor(/Entering BACKUP STATE(?! \(init\))/, 3000, met);
      await sleep(2500);
      t.deepEqual(lv.events.filter((e) => e.ev === 'state' && e.at >= met), [], 'lvs stays MASTER');
    } else {
      await lv.waitFor(isState('BACKUP'), 5000, met);
      await sleep(2500);
      t.deepEqual(ka.grep(/Entering BACKUP STATE(?! \(init\))/), [], 'keepalived stays MASTER');
      t.deepEqual(lv.events.filter((e) => e.ev === 'state' && e.at >= met).map((e) => e.to), ['BACKUP']);
    }
    await lv.stop();
    await ka.stop();
  });
}

netTest('v3 IPv4: our adverts are keepalived\'s bytes (checksum with the pseudo-header) and keepalived accepts them', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t, { lvAddr: '10.200.0.1', kaAddr: '10.200.0.2' });
  const cap = await capture(t, bed, bed.ka);
  const lv = await startLvs(t, bed, {
    instances: [
      { name: 'VI_3', interface: 'veth0', version: 3, virtualRouterId: 52, priority: 120, advertInt: 0.5, virtualIpaddress: ['10.200.0.110/24', '10.200.0.111/24'] },
    ],
  });
  await lv.waitFor(isState('MASTER'), 6000);
  const ka = startKeepalived(t, bed, kaConf('VI_3', ['version 3', 'state BACKUP', 'virtual_router_id 52', 'priority 100', 'advert_int 0.5'], ['10.200.0.110/24', '10.200.0.111/24']));
  await ka.waitFor(/Entering BACKUP STATE/, 10_000);
  await sleep(4000);
  t.deepEqual(ka.grep(/Entering MASTER STATE|Invalid|checksum|mismatch/), [], 'keepalived accepted every advert');
  await ka.stop();
  await lv.stop();
  const ours = vrrpFrames(await cap.stop()).filter((f) => f.src === '10.200.0.1');
  if (TSHARK !== null) {
    // Wireshark's own decoder agrees: VRRPv3, checksum good (status 1), priority 120 then 0 on stop.
    const fields = execFileSync(TSHARK, ['-r', cap.file, '-Y', 'vrrp && ip.src == 10.200.0.1', '-T', 'fields', '-e', 'vrrp.version', '-e', 'vrrp.prio', '-e', 'vrrp.checksum.status'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    const rows = [...new Set(fields.trim().split('\n'))];
    t.deepEqual(rows, ['3\t120\t1', '3\t0\t1'], fields);
  }
  t.is(
    Buffer.concat([ours[0]!.ip, ours[0]!.vrrp]).toString('hex'),
    '45c000240001000 0ff70cfcd0ac80001e0000012 3134780200 3254ce0ac8006e0ac8006f'.replace(/\s/g, ''),
  );
  const cadence = (ours[5]!.time - ours[1]!.time) / 4;
  t.true(cadence > 0.45 && cadence < 0.6, `advert every ${cadence.toFixed(3)} s`);
});

netTest('v3 IPv6: adverts from the link-local address are keepalived\'s bytes and keepalived accepts them', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t, { lvMac: FIXTURE_MAC });
  const cap = await capture(t, bed, bed.ka);
  const lv = await startLvs(t, bed, {
    instances: [{ name: 'VI_6', interface: 'veth0', virtualRouterId: 55, priority: 100, virtualIpaddress: ['fd00:200::100/64'] }],
  });
  await lv.waitFor(isState('MASTER'), 6000);
  const ka = startKeepalived(t, bed, kaConf('VI_6', ['state BACKUP', 'virtual_router_id 55', 'priority 50', 'advert_int 1'], ['fd00:200::100/64']));
  await ka.waitFor(/Entering BACKUP STATE/, 10_000);
  await sleep(4500);
  t.deepEqual(ka.grep(/Entering MASTER STATE|Invalid|checksum|mismatch/), [], 'keepalived accepted every advert');
  t.false(addrs(bed.ka).includes('fd00:200::100'));
  await ka.stop();
  await lv.stop();
  const ours = vrrpFrames(await cap.stop()).filter((f) => f.src === 'fe80000000000000588980fffeeafada');
  t.true(ours.length >= 4, `adverts from fe80::5889:80ff:feea:fada: ${ours.length}`);
  const f = ours[0]!;
  t.is(f.ttl, 255, 'hop limit 255');
  t.is(f.ip.readUInt32BE(0) >>> 20, 0x6c0, 'version 6, traffic class 0xc0');
  t.is(f.ip.subarray(24, 40).toString('hex'), 'ff020000000000000000000000000012');
  t.is(f.vrrp.toString('hex'), '3137640100 6498f5fd000200000000000000000000000100'.replace(/\s/g, ''));
});

(PYTHON === null ? test.skip : netTest)('bad adverts (TTL 64, wrong password, interval mismatch) are ignored and counted; a valid higher one is obeyed', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t);
  const lv = await startLvs(t, bed, {
    instances: [{ name: 'VI_1', interface: 'veth0', virtualRouterId: 51, priority: 150, ...V2_PASS, virtualIpaddress: VIPS2 }],
  });
  await lv.waitFor(isState('MASTER'), 6000);
  const since = Date.now();
  const bad = { vrid: 51, priority: 200, password: 'secret12', vips: VIPS2, count: 2 };
  sendAdvert(bed.ka, { ...bad, ttl: 64 });
  sendAdvert(bed.ka, { ...bad, password: 'wrongpw1' });
  sendAdvert(bed.ka, { ...bad, advertInt: 2 });
  sendAdvert(bed.ka, { ...bad, authType: 0, password: '' });
  sendAdvert(bed.ka, { ...bad, vips: ['10.200.0.100'] });
  sendAdvert(bed.ka, { ...bad, vrid: 52 });
  await sleep(500);
  t.deepEqual(lv.events.filter((e) => e.ev === 'state' && e.at >= since), [], 'still MASTER');
  const c = await counters(lv, 'VI_1');
  t.like(c, { drop_ttl: 2, drop_password: 2, drop_interval: 2, drop_auth_mismatch: 2, drop_addr_count: 2, drop_unknown_vrid: 2 });
  const logs = lv.events.filter((e) => e.ev === 'log' && e.at >= since).map((e) => String(e.message));
  t.true(logs.some((l) => /invalid TTL\/HL\. Received 64 and expect 255/.test(l)), logs.join('\n'));
  t.true(logs.some((l) => /received an invalid passwd!/.test(l)), logs.join('\n'));
  t.true(logs.some((l) => /advertisement interval mismatch mine=1 sec rcv'd=2 sec/.test(l)), logs.join('\n'));
  // The same sender with a valid advert is obeyed: the injected adverts were otherwise sound.
  const valid = Date.now();
  sendAdvert(bed.ka, { ...bad, count: 3 });
  await lv.waitFor(isState('BACKUP'), 3000, valid);
  const back = await lv.waitFor(isState('MASTER'), 6000, valid);
  t.true(back.at - valid > 3000, 'MASTER again only after the master-down interval');
  await lv.stop();
});

netTest('track_script weights and faults, notify scripts with keepalived\'s arguments, setPriorityDelta', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t);
  const flag = `${bed.dir}/healthy`;
  const notes = `${bed.dir}/notify.log`;
  const lv = await startLvs(t, bed, {
    instances: [
      {
        name: 'VI_1',
        interface: 'veth0',
        virtualRouterId: 51,
        priority: 150,
        virtualIpaddress: VIPS2,
        trackScript: ['chk_flag', { name: 'chk_fail', weight: -20 }],
        notify: ['/bin/sh', '-c', `echo "$*" >> ${notes}`, 'notify'],
        notifyMaster: `/bin/sh -c "echo master >> ${notes}"`,
      },
    ],
    options: {
      scripts: {
        chk_flag: { script: ['/usr/bin/test', '-e', flag], interval: 1, weight: 0, fall: 2 },
        chk_fail: { script: '/bin/false', interval: 1 },
      },
    },
  });
  // chk_fail fails at once: priority 150 - 20; chk_flag fails (no file): weight 0 means FAULT.
  await lv.waitFor(isState('FAULT'), 5000);
  const since = Date.now();
  (await import('node:fs')).writeFileSync(flag, '');
  await lv.waitFor(isState('BACKUP'), 5000, since);
  const master = await lv.waitFor(isState('MASTER'), 6000, since);
  t.is(master.priority, 130, 'priority 150 minus the failing script\'s weight 20');
  await lv.call('delta', { name: 'VI_1', delta: 7 });
  await sleep(200);
  const s = await lv.call('status');
  t.is((s.status as { priority: number }[])[0]!.priority, 157);
  const unknown = await lv.call('delta', { name: 'nope', delta: 1 });
  t.is(unknown.code, 'ENOENT');
  // Two failures in a row (fall 2) put it back into FAULT.
  const gone = Date.now();
  (await import('node:fs')).rmSync(flag);
  await lv.waitFor(isState('FAULT'), 5000, gone);
  await lv.stop();
  await sleep(300);
  const log = (await import('node:fs')).readFileSync(notes, 'utf8');
  // `sh -c 'echo "$*"' notify ARGS…`: $0 is `notify`, the rest are keepalived's four arguments.
  t.regex(log, /^INSTANCE VI_1 MASTER 130$/m, log);
  t.regex(log, /^master$/m);
  t.regex(log, /^INSTANCE VI_1 FAULT \d+$/m);
  t.regex(log, /^INSTANCE VI_1 STOP \d+$/m);
});

netTest('sync group: one member in FAULT takes the other along, both come back together', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t);
  const lv = await startLvs(t, bed, {
    instances: [
      { name: 'VI_1', interface: 'veth0', virtualRouterId: 51, priority: 150, virtualIpaddress: ['10.200.0.100'] },
      { name: 'VI_2', interface: 'veth0', virtualRouterId: 52, priority: 150, virtualIpaddress: ['10.200.0.101'] },
    ],
    options: { syncGroups: [{ name: 'G1', group: ['VI_1', 'VI_2'] }] },
  });
  await lv.waitFor((e) => isState('MASTER')(e) && e.instance === 'VI_1', 6000);
  await lv.waitFor((e) => isState('MASTER')(e) && e.instance === 'VI_2', 6000);
  const since = Date.now();
  await lv.call('fault', { name: 'VI_2', fault: true });
  await lv.waitFor((e) => isState('FAULT')(e) && e.instance === 'VI_1', 3000, since);
  await lv.waitFor((e) => isState('FAULT')(e) && e.instance === 'VI_2', 3000, since);
  const back = Date.now();
  await lv.call('fault', { name: 'VI_2', fault: false });
  await lv.waitFor((e) => isState('MASTER')(e) && e.instance === 'VI_1', 6000, back);
  await lv.waitFor((e) => isState('MASTER')(e) && e.instance === 'VI_2', 6000, back);
  await lv.stop();
  t.pass();
});

netTest('track_interface: an unweighted interface down means FAULT, a weighted one moves the priority; the own link too', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t);
  // Two links in the lvs namespace to track (veth pairs inside it: this kernel has no dummy
  // module), besides the instance's own veth0; they go with the namespace.
  for (const name of ['trk0', 'trk1']) {
    bed.lv.run('ip', ['link', 'add', name, 'type', 'veth', 'peer', 'name', `${name}p`]);
    bed.lv.run('ip', ['link', 'set', `${name}p`, 'up']);
    bed.lv.run('ip', ['link', 'set', name, 'up']);
  }
  const lv = await startLvs(t, bed, {
    instances: [
      {
        name: 'VI_1',
        interface: 'veth0',
        virtualRouterId: 51,
        priority: 150,
        virtualIpaddress: ['10.200.0.100'],
        trackInterface: ['trk0', { name: 'trk1', weight: -30 }],
      },
    ],
  });
  await lv.waitFor(isState('MASTER'), 6000);
  const status = async () => ((await lv.call('status')).status as { state: string; priority: number }[])[0];
  t.is((await status())?.priority, 150);
  // The weighted link goes down: priority 150 - 30, still MASTER (nobody else advertises).
  bed.lv.run('ip', ['link', 'set', 'trk1', 'down']);
  let s = await status();
  for (let i = 0; i < 30 && s?.priority !== 120; i++) {
    await sleep(100);
    s = await status();
  }
  t.deepEqual([s?.state, s?.priority], ['MASTER', 120]);
  // The unweighted link goes down: FAULT; back up: BACKUP, then MASTER again.
  let since = Date.now();
  bed.lv.run('ip', ['link', 'set', 'trk0', 'down']);
  await lv.waitFor(isState('FAULT'), 3000, since);
  since = Date.now();
  bed.lv.run('ip', ['link', 'set', 'trk0', 'up']);
  await lv.waitFor(isState('BACKUP'), 3000, since);
  await lv.waitFor(isState('MASTER'), 6000, since);
  // The instance's own interface losing its carrier (the peer end goes down) is a fault too.
  since = Date.now();
  bed.ka.run('ip', ['link', 'set', 'veth0', 'down']);
  await lv.waitFor(isState('FAULT'), 3000, since);
  await lv.stop();
  t.pass();
});

netTest('unicast: adverts go to the peer with TTL 255 and keepalived\'s bytes; keepalived in unicast mode accepts them', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t, { lvAddr: '10.200.0.1', kaAddr: '10.200.0.2' });
  const cap = await capture(t, bed, bed.ka);
  const lv = await startLvs(t, bed, {
    instances: [
      { name: 'VI_U', interface: 'veth0', virtualRouterId: 53, state: 'MASTER', unicastSrcIp: '10.200.0.1', unicastPeer: ['10.200.0.2'], virtualIpaddress: ['10.200.0.120/24'] },
    ],
  });
  // state MASTER with the default priority 255 (address owner): MASTER at once.
  const master = await lv.waitFor(isState('MASTER'), 2000);
  t.true(master.at - (lv.events.find((e) => e.ev === 'ready')?.at ?? 0) < 1000, 'the owner takes over at once');
  const ka = startKeepalived(
    t,
    bed,
    kaConf('VI_U', ['state BACKUP', 'virtual_router_id 53', 'priority 100', 'unicast_src_ip 10.200.0.2', 'unicast_peer {', '    10.200.0.1', '}'], ['10.200.0.120/24']),
  );
  await ka.waitFor(/Entering BACKUP STATE/, 10_000);
  await sleep(4500);
  t.deepEqual(ka.grep(/Entering MASTER STATE|invalid|mismatch|checksum/), [], 'keepalived accepted every unicast advert');
  await ka.stop();
  await lv.stop();
  const ours = vrrpFrames(await cap.stop()).filter((f) => f.src === '10.200.0.1');
  // keepalived 2.2.7's unicast advert for this configuration (keepalived.md §3.2, checksum d487).
  t.is(
    Buffer.concat([ours[0]!.ip, ours[0]!.vrrp]).toString('hex'),
    '45c00028000100 00ff70a5120ac800010ac80002 2135ff010001d4870ac800780000000000000000'.replace(/\s/g, ''),
  );
  t.true(ours.every((f) => f.ttl === 255));
});

(ARPING === null ? test.skip : netTest)('the VIP is served only while MASTER: ARP answered and traffic taken, then neither (dropped and counted) in FAULT, then again', async (t) => {
  t.timeout(60_000);
  const bed = createBed(t);
  const lv = await startLvs(t, bed, {
    instances: [{ name: 'VI_1', interface: 'veth0', virtualRouterId: 51, priority: 150, virtualIpaddress: ['10.200.0.100'] }],
  });
  await lv.waitFor(isState('MASTER'), 6000);
  // Three UDP datagrams to the VIP from the other namespace (its kernel resolves and caches the MAC).
  const udp = (): void => {
    bed.ka.run(process.execPath, [
      '-e',
      `const s = require('node:dgram').createSocket('udp4'); let n = 0;
       const go = () => s.send('x', 9, '10.200.0.100', () => (++n < 3 ? setTimeout(go, 100) : s.close())); go();`,
    ]);
  };
  const engine = async (): Promise<Record<string, number>> => (await lv.call('status')).counters as Record<string, number>;
  t.deepEqual([...new Set(arping(bed.ka, '10.200.0.100'))], [bed.lv.mac], 'the MASTER answers ARP for its VIP (no service needed)');
  udp();
  await sleep(300);
  t.true((await engine()).to_host_no_service! >= 3, 'VIP traffic taken (no service: handed to the host)');
  const since = Date.now();
  await lv.call('fault', { name: 'VI_1', fault: true });
  await lv.waitFor(isState('FAULT'), 3000, since);
  t.deepEqual(arping(bed.ka, '10.200.0.100'), [], 'no ARP answer while not MASTER');
  udp();
  await sleep(300);
  t.true((await engine()).drop_standby! >= 3, 'traffic to the cached MAC dropped and counted');
  await lv.call('fault', { name: 'VI_1', fault: false });
  await lv.waitFor(isState('MASTER'), 6000, since);
  t.deepEqual([...new Set(arping(bed.ka, '10.200.0.100'))], [bed.lv.mac], 'served again');
  await lv.stop();
});
