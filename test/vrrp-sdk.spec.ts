// The VRRP part of the SDK without privileges: errors for directors without interfaces and for
// bad options, and keepalived's command-line splitting for notify scripts.
import test from 'ava';
import { Director, LvsError, splitCommand } from '../packages/lvs/dist/index.js';

test('startVrrp needs a director on real interfaces', async (t) => {
  const d = await Director.open();
  const err = t.throws(
    () => d.startVrrp([{ name: 'VI_1', interface: 'eth0', virtualRouterId: 51, virtualIpaddress: ['10.0.0.100'] }]),
    { instanceOf: LvsError },
  );
  t.is(err?.code, 'ENOTSUP');
  d.close();
});

test('bad instance options are refused with the instance named', async (t) => {
  const d = await Director.open();
  const vr = (over: object) => () =>
    d.startVrrp([{ name: 'VI_9', interface: 'eth0', virtualRouterId: 51, virtualIpaddress: ['10.0.0.100'], ...over }]);
  t.regex(t.throws(vr({ virtualRouterId: 0 }), { instanceOf: LvsError })?.message ?? '', /\(VI_9\) virtualRouterId/);
  t.regex(t.throws(vr({ priority: 256 }), { instanceOf: LvsError })?.message ?? '', /\(VI_9\) priority/);
  t.regex(t.throws(vr({ state: 'PRIMARY' }), { instanceOf: LvsError })?.message ?? '', /\(VI_9\) state must be MASTER or BACKUP/);
  t.regex(
    t.throws(vr({ trackScript: ['chk'] }), { instanceOf: LvsError })?.message ?? '',
    /\(VI_9\) track_script chk: no such vrrp_script/,
  );
  d.close();
});

test('notify command lines are split as keepalived splits them', (t) => {
  t.deepEqual(splitCommand('/usr/local/bin/notify.sh master  "two words" \'x y\'z'), [
    '/usr/local/bin/notify.sh',
    'master',
    'two words',
    'x yz',
  ]);
  t.deepEqual(splitCommand('  '), []);
  t.deepEqual(splitCommand('""'), ['']);
});
