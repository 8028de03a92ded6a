// Health checks against real servers on loopback that stop and start: TCP, HTTP, HTTPS, SMTP,
// MISC_CHECK commands and notify scripts, with real timers and an in-memory director.
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Director, HealthMonitor, ManualClock, type HealthMonitorEvents, type VirtualServerHealth } from 'lvs';

const VIP = { protocol: 'tcp', address: '10.0.0.1:80', scheduler: 'rr' } as const;

/** Resolves with the first event matching `pred`, or rejects after `ms` (every wait is bounded). */
function once<K extends keyof HealthMonitorEvents>(
  m: HealthMonitor,
  event: K,
  pred: (...args: HealthMonitorEvents[K]) => boolean = () => true,
  ms = 10_000,
): Promise<HealthMonitorEvents[K][0]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      m.off(event, listener as never);
      reject(new Error(`no ${String(event)} event within ${ms} ms`));
    }, ms);
    const listener = (...args: HealthMonitorEvents[K]): void => {
      if (!pred(...args)) return;
      clearTimeout(timer);
      m.off(event, listener as never);
      resolve(args[0]);
    };
    m.on(event, listener as never);
  });
}

function pool(d: Director): string[] {
  return (d.list()[0]?.servers ?? []).map((s) => `${s.address}:${s.weight}`);
}

async function listen(server: net.Server, port = 0, host = '127.0.0.1'): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

function close(server: net.Server): Promise<void> {
  return new Promise((resolve) => {
    if ('closeAllConnections' in server) (server as http.Server).closeAllConnections();
    server.close(() => resolve());
  });
}

function tmpdir(t: { teardown(fn: () => void): void }): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lvs-hc-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function script(dir: string, name: string, body: string): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `#!/bin/sh\n${body}\n`, { mode: 0o755 });
  return file;
}

test('TCP_CHECK: a server that stops is removed, and re-added when it listens again', async (t) => {
  const director = await Director.open();
  let server = net.createServer((s) => s.destroy());
  const port = await listen(server);
  t.teardown(() => close(server));
  const rs = `127.0.0.1:${port}`;
  const monitor = new HealthMonitor(director, [
    {
      service: VIP,
      delayLoop: 0.2,
      delayBeforeRetry: 0.1,
      connectTimeout: 1,
      realServers: [{ address: rs, checkers: [{ type: 'TCP_CHECK' }] }],
    },
  ]);
  t.teardown(() => monitor.stop());
  const events: string[] = [];
  monitor.on('up', (e) => events.push(`up ${e.server}`));
  monitor.on('down', (e) => events.push(`down ${e.server}`));
  await monitor.start();
  t.deepEqual(pool(director), [`${rs}:1`]);
  await once(monitor, 'check', (e) => e.success);

  await close(server);
  const stopped = performance.now();
  await once(monitor, 'down');
  t.deepEqual(pool(director), []);
  // retry 1: two failed attempts (delay_loop, then delay_before_retry), with generous slack.
  t.true(performance.now() - stopped < 5_000);

  server = net.createServer((s) => s.destroy());
  await listen(server, port);
  await once(monitor, 'up');
  t.deepEqual(pool(director), [`${rs}:1`]);
  t.deepEqual(events, [`down ${rs}`, `up ${rs}`]);
});

test('HTTP_GET: exact request bytes, MD5 of the body truncated to Content-Length', async (t) => {
  const director = await Director.open();
  const requests: string[] = [];
  let body = 'okEXTRA';
  const server = net.createServer((s) => {
    // The checker closes once it has Content-Length bytes: a reset may follow, and is no failure.
    s.on('error', () => undefined);
    let req = '';
    s.on('data', (d) => {
      req += d.toString('latin1');
      if (!req.includes('\r\n\r\n')) return;
      requests.push(req);
      s.end(`HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n${body}`);
    });
  });
  const port = await listen(server);
  t.teardown(() => close(server));
  const digest = createHash('md5').update('ok').digest('hex'); // 444bcb3a3fcf8389296c49467f27e1d6
  t.is(digest, '444bcb3a3fcf8389296c49467f27e1d6');
  const monitor = new HealthMonitor(director, [
    {
      service: VIP,
      delayLoop: 0.2,
      retry: 0,
      realServers: [
        {
          address: `127.0.0.1:${port}`,
          checkers: [
            { type: 'HTTP_GET', urls: [{ path: '/health', digest }] },
            { type: 'HTTP_GET', httpProtocol: '1.1', virtualhost: 'www.example.test', urls: [{ path: '/x', digest }] },
          ],
        },
      ],
    },
  ]);
  t.teardown(() => monitor.stop());
  await monitor.start();
  await Promise.all([
    once(monitor, 'check', (e) => e.checker === 0 && e.success),
    once(monitor, 'check', (e) => e.checker === 1 && e.success),
  ]);
  t.true(requests.includes(`GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 127.0.0.1:${port}\r\n\r\n`));
  t.true(
    requests.includes(
      'GET /x HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: www.example.test\r\n\r\n',
    ),
  );
  // A different body: digest mismatch, the server goes down.
  const downEvent = once(monitor, 'down');
  const failedCheck = once(monitor, 'check', (e) => !e.success);
  body = 'no';
  t.regex((await failedCheck).reason ?? '', /MD5 digest/);
  await downEvent;
  t.deepEqual(pool(director), []);
});

test('HTTP_GET with inhibit_on_failure: a 500 sets weight 0, a 200 restores it; a stopped server too', async (t) => {
  const director = await Director.open();
  let status = 200;
  const app = () =>
    http.createServer((_req, res) => {
      res.writeHead(status, { 'content-type': 'text/plain' });
      res.end('fine');
    });
  let server = app();
  const port = await listen(server);
  t.teardown(() => close(server));
  const rs = `127.0.0.1:${port}`;
  const monitor = new HealthMonitor(director, [
    {
      service: VIP,
      delayLoop: 0.2,
      delayBeforeRetry: 0.1,
      connectTimeout: 1,
      realServers: [
        {
          address: rs,
          weight: 5,
          inhibitOnFailure: true,
          checkers: [{ type: 'HTTP_GET', urls: [{ path: '/', statusCode: ['200-299'] }] }],
        },
      ],
    },
  ]);
  t.teardown(() => monitor.stop());
  const order: string[] = [];
  monitor.on('up', () => order.push('up'));
  monitor.on('down', () => order.push('down'));
  await monitor.start();
  await once(monitor, 'check', (e) => e.success);
  status = 500;
  await once(monitor, 'down');
  t.deepEqual(pool(director), [`${rs}:0`]);
  status = 200;
  await once(monitor, 'up');
  t.deepEqual(pool(director), [`${rs}:5`]);
  await close(server);
  await once(monitor, 'down');
  t.deepEqual(pool(director), [`${rs}:0`]);
  server = app();
  await listen(server, port);
  await once(monitor, 'up');
  t.deepEqual(pool(director), [`${rs}:5`]);
  t.deepEqual(order, ['down', 'up', 'down', 'up']);
});

test('HTTP_GET url rotation with keepalived timing: one url per delay_loop, retries, re-verification', async (t) => {
  const director = await Director.open();
  const clock = new ManualClock();
  const seen: [string, number][] = [];
  const failing = new Set<string>();
  const server = http.createServer((req, res) => {
    seen.push([req.url ?? '', clock.now()]);
    res.writeHead(failing.has(req.url ?? '') ? 503 : 200);
    res.end('x');
  });
  const port = await listen(server);
  t.teardown(() => close(server));
  const monitor = new HealthMonitor(
    director,
    [
      {
        service: VIP,
        delayLoop: 10,
        delayBeforeRetry: 3,
        retry: 1,
        realServers: [
          { address: `127.0.0.1:${port}`, checkers: [{ type: 'HTTP_GET', urls: [{ path: '/a' }, { path: '/b' }, { path: '/c' }] }] },
        ],
      },
    ],
    { clock, random: () => 0 },
  );
  t.teardown(() => monitor.stop());
  const events: string[] = [];
  monitor.on('up', () => events.push(`up @${clock.now()}`));
  monitor.on('down', () => events.push(`down @${clock.now()}`));
  await monitor.start();
  // Fire the timer due at `at`, then wait (bounded, real time) for that attempt to finish.
  const step = async (at: number): Promise<void> => {
    const done = once(monitor, 'check');
    await clock.advance(at - clock.now());
    await done;
  };
  await step(1_000); // /a
  await step(11_000); // /b
  await step(21_000); // /c: all three passed
  failing.add('/a');
  await step(31_000); // /a fails: retry 1 after delay_before_retry
  await step(34_000); // /a fails again: down, then polled every max(dbr, delay_loop)
  failing.delete('/a');
  await step(44_000); // /a answers: re-verify every url, starting again from the first
  await step(54_000); // /a
  await step(64_000); // /b
  await step(74_000); // /c: up
  t.deepEqual(seen, [
    ['/a', 1000],
    ['/b', 11000],
    ['/c', 21000],
    ['/a', 31000],
    ['/a', 34000],
    ['/a', 44000],
    ['/a', 54000],
    ['/b', 64000],
    ['/c', 74000],
  ]);
  t.deepEqual(events, ['down @34000', 'up @74000']);
});

test('SSL_GET against an HTTPS server with a self-signed certificate (generated by openssl)', async (t) => {
  const dir = tmpdir(t);
  const key = path.join(dir, 'key.pem');
  const cert = path.join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=lvs-test', '-days', '1', '-keyout', key, '-out', cert], {
    stdio: 'ignore',
    timeout: 30_000,
  });
  let healthy = true;
  const server = https.createServer({ key: fs.readFileSync(key), cert: fs.readFileSync(cert) }, (_req, res) => {
    res.writeHead(healthy ? 200 : 404);
    res.end('secure');
  });
  const port = await listen(server);
  t.teardown(() => close(server));
  const director = await Director.open();
  const monitor = new HealthMonitor(director, [
    {
      service: VIP,
      delayLoop: 0.2,
      retry: 0,
      realServers: [
        {
          address: `127.0.0.1:${port}`,
          checkers: [
            {
              type: 'SSL_GET',
              enableSni: true,
              virtualhost: 'www.example.test',
              urls: [{ path: '/', digest: createHash('md5').update('secure').digest('hex') }],
            },
          ],
        },
      ],
    },
  ]);
  t.teardown(() => monitor.stop());
  await monitor.start();
  await once(monitor, 'check', (e) => e.success);
  const downEvent = once(monitor, 'down');
  const failedCheck = once(monitor, 'check', (e) => !e.success);
  healthy = false;
  t.regex((await failedCheck).reason ?? '', /HTTP status code 404/);
  await downEvent;
  healthy = true;
  await once(monitor, 'up');
  t.is(pool(director).length, 1);
});

test('SMTP_CHECK: 220 greeting, HELO, 250, QUIT', async (t) => {
  const dialogue: string[] = [];
  let greeting = '220 mail.test ESMTP';
  const server = net.createServer((s) => {
    // The checker may close before the server's last line is written (EPIPE/ECONNRESET).
    s.on('error', () => undefined);
    s.write(`220-first line\r\n${greeting}\r\n`);
    s.on('data', (d) => {
      const line = d.toString().trim();
      dialogue.push(line);
      if (line.startsWith('HELO')) s.write('250 hello\r\n');
      else if (line === 'QUIT') s.end('221 bye\r\n');
    });
  });
  const port = await listen(server);
  t.teardown(() => close(server));
  const director = await Director.open();
  const monitor = new HealthMonitor(director, [
    {
      service: VIP,
      delayLoop: 0.2,
      retry: 0,
      realServers: [{ address: `127.0.0.1:${port}`, checkers: [{ type: 'SMTP_CHECK', heloName: 'lvs.test' }] }],
    },
  ]);
  t.teardown(() => monitor.stop());
  await monitor.start();
  await once(monitor, 'check', (e) => e.success);
  t.deepEqual(dialogue.slice(0, 2), ['HELO lvs.test', 'QUIT']);
  greeting = '554 go away';
  const failed = await once(monitor, 'check', (e) => !e.success);
  t.regex(failed.reason ?? '', /SMTP greeting 554/);
});

test('MISC_CHECK: exit codes, misc_dynamic weights (code - 2), and a timed-out script killed', async (t) => {
  const dir = tmpdir(t);
  const codeFile = path.join(dir, 'code');
  fs.writeFileSync(codeFile, '0');
  const check = script(dir, 'check.sh', `exit $(cat "${codeFile}")`);
  const pidFile = path.join(dir, 'pid');
  const hang = script(dir, 'hang.sh', `echo $$ > "${pidFile}"\nexec sleep 30`);
  const director = await Director.open();
  const monitor = new HealthMonitor(director, [
    {
      service: VIP,
      delayLoop: 0.2,
      realServers: [
        { address: '192.168.1.1:80', weight: 4, checkers: [{ type: 'MISC_CHECK', path: `${check} "unused arg"`, dynamic: true }] },
        { address: '192.168.1.2:80', checkers: [{ type: 'MISC_CHECK', path: [hang], timeout: 1 }] },
      ],
    },
  ]);
  t.teardown(() => monitor.stop());
  await monitor.start();
  t.deepEqual(pool(director), ['192.168.1.1:80:4', '192.168.1.2:80:1']);
  fs.writeFileSync(codeFile, '12');
  const w = await once(monitor, 'weight');
  t.deepEqual([w.from, w.to], [4, 10]);
  t.true(pool(director).includes('192.168.1.1:80:10'));
  fs.writeFileSync(codeFile, '1'); // with misc_dynamic, 1 is failure (retry 0 by default: down at once)
  await once(monitor, 'down', (e) => e.server === '192.168.1.1:80');
  t.false(pool(director).some((s) => s.startsWith('192.168.1.1:')));
  fs.writeFileSync(codeFile, '0'); // 0 restores the configured weight
  await once(monitor, 'up', (e) => e.server === '192.168.1.1:80');
  t.true(pool(director).includes('192.168.1.1:80:4'));

  const timedOut = await once(monitor, 'check', (e) => e.server === '192.168.1.2:80');
  t.is(timedOut.reason, 'timed out');
  const pid = Number(fs.readFileSync(pidFile, 'utf8'));
  t.throws(() => process.kill(pid, 0)); // SIGTERM reached it
  t.false(pool(director).some((s) => s.startsWith('192.168.1.2:')));
});

test('notify scripts, the LVS notify FIFO lines, and omega at release', async (t) => {
  const dir = tmpdir(t);
  const out = path.join(dir, 'notes');
  const note = script(dir, 'note.sh', `echo "$@" >> "${out}"`);
  const fifo = path.join(dir, 'fifo');
  execFileSync('mkfifo', [fifo]);
  const reader = fs.openSync(fifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  t.teardown(() => fs.closeSync(reader));
  let healthy = true;
  const director = await Director.open();
  const vs: VirtualServerHealth = {
    service: VIP,
    delayLoop: 0.2,
    retry: 0,
    omega: true,
    quorumUp: `${note} quorum up`,
    quorumDown: [note, 'quorum', 'down'],
    realServers: [
      {
        address: '192.168.1.1:8080',
        notifyUp: `${note} rs 'up here'`,
        notifyDown: `${note} rs down`,
        checkers: [{ type: 'JS', check: () => healthy }],
      },
    ],
  };
  const monitor = new HealthMonitor(director, [vs], { notifyFifo: fifo });
  t.teardown(() => monitor.stop());
  await monitor.start();
  healthy = false;
  await once(monitor, 'down');
  healthy = true;
  await once(monitor, 'up');
  await monitor.stop({ release: true });
  t.deepEqual(director.list(), []);
  const lines = () => (fs.existsSync(out) ? fs.readFileSync(out, 'utf8').trim().split('\n') : []);
  // Scripts started on state changes run detached; wait (bounded) for the last to write.
  for (let i = 0; i < 50 && lines().length < 6; i++) await new Promise((r) => setTimeout(r, 100));
  // Detached scripts finish in any order (and ava compares Sets in order): compare sorted lines.
  t.deepEqual(lines().sort(), ['quorum down', 'quorum down', 'quorum up', 'rs down', 'rs down', 'rs up here']);
  const buf = Buffer.alloc(4096);
  const n = fs.readSync(reader, buf);
  t.deepEqual(buf.subarray(0, n).toString().trim().split('\n'), [
    'RS [192.168.1.1]:tcp:8080 [10.0.0.1]:tcp:80 DOWN',
    'VS [10.0.0.1]:tcp:80 DOWN',
    'RS [192.168.1.1]:tcp:8080 [10.0.0.1]:tcp:80 UP',
    'VS [10.0.0.1]:tcp:80 UP',
    'RS [192.168.1.1]:tcp:8080 [10.0.0.1]:tcp:80 DOWN',
    'VS [10.0.0.1]:tcp:80 DOWN',
  ]);
});
