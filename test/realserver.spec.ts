// setupRealServer inside a namespace the test creates: the VIP and ARP settings the seeds'
// realserver.sh applies, and an exact undo.
import test from 'ava';
import { canUseNetns, netns } from './helpers/netns.js';

const maybe = canUseNetns ? test : test.skip;

function script(body: string): string {
  return `import { setupRealServer } from 'lvs';\n${body}`;
}

maybe('DR real server: VIP on lo without ARP, restored afterwards', (t) => {
  const ns = netns(t, 'rs');
  const sysctl = (name: string) => ns.run('cat', [`/proc/sys/net/ipv4/conf/${name}`]).trim();
  ns.run('sh', ['-c', 'echo 0 > /proc/sys/net/ipv4/conf/all/arp_announce; echo 1 > /proc/sys/net/ipv4/conf/lo/arp_announce']);
  const out = ns.run(
    'node',
    [
      '--input-type=module',
      '-e',
      script(`
        const rs = await setupRealServer({ vip: ['10.10.36.11', 'fd00::11'], method: 'dr' });
        const { execFileSync } = await import('node:child_process');
        const { readFileSync } = await import('node:fs');
        console.log(execFileSync('ip', ['-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' }));
        console.log('during', ['lo/arp_ignore', 'lo/arp_announce', 'all/arp_ignore', 'all/arp_announce']
          .map((p) => readFileSync('/proc/sys/net/ipv4/conf/' + p, 'utf8').trim()).join(','));
        await rs.teardown();
        console.log(execFileSync('ip', ['-o', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' }));
      `),
    ],
  );
  const [during, after] = out.split(/^during .*$/m) as [string, string];
  t.regex(during, /inet 10\.10\.36\.11\/32 brd 10\.10\.36\.11 scope global lo:0/);
  t.regex(during, /inet6 fd00::11\/128/);
  t.regex(out, /^during 1,2,1,2$/m);
  t.notRegex(after, /10\.10\.36\.11|fd00::11/);
  t.is(sysctl('all/arp_announce'), '0', 'previous value restored, not zeroed blindly');
  t.is(sysctl('lo/arp_announce'), '1');
  t.is(sysctl('lo/arp_ignore'), '0');
});

maybe('bad input and a missing tunnel device are clear errors that change nothing', (t) => {
  const ns = netns(t, 'rsbad');
  const out = ns.run('node', [
    '--input-type=module',
    '-e',
    script(`
      for (const opts of [{ vip: 'not-an-ip', method: 'dr' }, { vip: [], method: 'dr' }, { vip: '10.0.0.1', method: 'tunnel' }]) {
        try { await setupRealServer(opts); console.log('no error'); }
        catch (e) { console.log(e.name, e.code, e.message); }
      }
    `),
  ]);
  const lines = out.trim().split('\n');
  t.regex(lines[0] ?? '', /^LvsError EINVAL invalid VIP `not-an-ip'/);
  t.regex(lines[1] ?? '', /^LvsError EINVAL at least one VIP/);
  // This kernel has no ipip module, so there is no tunl0.
  t.regex(lines[2] ?? '', /^LvsError ENOTSUP no tunl0 device/);
  t.is(ns.run('cat', ['/proc/sys/net/ipv4/conf/all/arp_ignore']).trim(), '0');
  t.notRegex(ns.run('ip', ['-o', 'addr', 'show', 'dev', 'lo']), /10\.0\.0\.1/);
});
