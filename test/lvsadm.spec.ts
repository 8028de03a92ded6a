// The lvsadm command against a director serving its control socket, as an operator would use it.
import test from 'ava';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Director, LvsError } from 'lvs';

const lvsadmPath = fileURLToPath(new URL('../packages/lvs/dist/bin/lvsadm.js', import.meta.url));

interface Run {
  stdout: string;
  stderr: string;
  status: number;
}

function lvsadm(socket: string, args: string[], input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [lvsadmPath, ...args],
      { env: { ...process.env, LVSADM_SOCKET: socket }, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code: unknown = err ? (err as { code?: unknown }).code : 0;
        resolve({ stdout, stderr, status: typeof code === 'number' ? code : -1 });
      },
    );
    // lvsadm may exit before reading stdin; the EPIPE that follows is not the test's concern.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(input ?? '');
  });
}

function tempSocket(): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'lvsadm-test-'));
  return { path: join(dir, 'ctl', 'lvsadm.sock'), cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

test('lvsadm runs the seed commands against a serving director and prints ipvsadm output', async (t) => {
  const { path, cleanup } = tempSocket();
  t.teardown(cleanup);
  const director = await Director.open();
  const control = await director.serve({ path });
  t.teardown(() => control.close());
  t.is(statSync(path).mode & 0o777, 0o600, 'owner-only socket');

  t.deepEqual(await lvsadm(path, ['-At', '10.10.36.11:80', '-s', 'rr']), { stdout: '', stderr: '', status: 0 });
  t.is((await lvsadm(path, ['-at', '10.10.36.11:80', '-r', '10.10.36.4:80', '-g', '-w', '1'])).status, 0);
  t.is((await lvsadm(path, ['-at', '10.10.36.11:80', '-r', '10.10.36.7:80', '-i', '-w', '1'])).status, 0);
  const list = await lvsadm(path, ['-Ln']);
  t.is(list.status, 0);
  t.is(list.stdout, director.exec('-Ln').stdout);
  t.true(list.stdout.includes('  -> 10.10.36.7:80                Tunnel  1      0          0         \n'));

  const dup = await lvsadm(path, ['-A', '-t', '10.10.36.11:80']);
  t.deepEqual(dup, { stdout: '', stderr: 'Service already exists\n', status: 255 });
  const usage = await lvsadm(path, ['-n', '-L']);
  t.deepEqual(usage, { stdout: '', stderr: "Try `lvsadm -h' or 'lvsadm --help' for more information.\n", status: 255 });
  t.is((await lvsadm(path, ['-A', '-t', '10.0.0.1:0'])).status, 2);

  // Save, clear, restore through stdin.
  const saved = (await lvsadm(path, ['-S', '-n'])).stdout;
  t.is((await lvsadm(path, ['-C'])).status, 0);
  t.deepEqual(director.list(), []);
  t.is((await lvsadm(path, ['-R'], saved)).status, 0);
  t.is(director.save(), saved);
  const badRestore = await lvsadm(path, ['-R'], '-A -t 10.1.1.1:80\n-a -t 10.1.1.1:80 -r 10.2.2.2 -w -3\n');
  t.is(badRestore.status, 2);
  t.is(badRestore.stderr, 'line 2: illegal weight specified\n');
  t.is(director.save(), saved, 'a failed restore changes nothing');
});

test('lvsadm says clearly when no director is running', async (t) => {
  const { path, cleanup } = tempSocket();
  t.teardown(cleanup);
  const r = await lvsadm(path, ['-Ln']);
  t.is(r.status, 2);
  t.regex(r.stderr, /no director is running at .*lvsadm\.sock/);
});

test('a second director cannot take a live socket; a stale one is replaced', async (t) => {
  const { path, cleanup } = tempSocket();
  t.teardown(cleanup);
  const a = await Director.open();
  const control = await a.serve({ path });
  const b = await Director.open();
  await t.throwsAsync(() => b.serve({ path }), { instanceOf: LvsError, code: 'EEXIST' });
  await control.close();
  await b.serve({ path });
  t.is((await lvsadm(path, ['-Ln'])).status, 0);
  b.close();
  t.throws(() => statSync(path), { code: 'ENOENT' }, 'closing the director removes its socket');
});

test('lvsadm --sysctl lists, reads and sets the net.ipv4.vs settings like sysctl', async (t) => {
  const { path, cleanup } = tempSocket();
  t.teardown(cleanup);
  const director = await Director.open();
  const control = await director.serve({ path });
  t.teardown(() => control.close());

  const list = await lvsadm(path, ['--sysctl']);
  t.is(list.status, 0);
  t.true(list.stdout.includes('net.ipv4.vs.expire_nodest_conn = 0\n'));
  t.true(list.stdout.includes('net.ipv4.vs.sync_threshold = 3\t50\n'));
  t.deepEqual(await lvsadm(path, ['--sysctl', 'net.ipv4.vs.expire_nodest_conn=1', 'sync_threshold=5 100', 'conntrack']), {
    stdout: 'net.ipv4.vs.expire_nodest_conn = 1\nnet.ipv4.vs.sync_threshold = 5\t100\nnet.ipv4.vs.conntrack = 0\n',
    stderr: '',
    status: 0,
  });
  t.is(director.sysctl().expire_nodest_conn, 1);
  // A bad setting among good ones changes nothing.
  const bad = await lvsadm(path, ['--sysctl', 'sloppy_tcp=1', 'sync_version=7']);
  t.deepEqual(bad, { stdout: '', stderr: 'sysctl: net.ipv4.vs.sync_version: 7 is out of range 0..1\n', status: 255 });
  t.is(director.sysctl().sloppy_tcp, 0);
  t.is((await lvsadm(path, ['--sysctl', 'net.ipv4.vs.nope'])).stderr, 'sysctl: net.ipv4.vs.nope: no such sysctl\n');
});
