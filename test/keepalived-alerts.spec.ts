// keepalived's SMTP alerts (notification_email / smtp_server / smtp_alert) from runKeepalived on an
// in-memory director: real TCP checks against loopback, a small SMTP server on 127.0.0.1 that
// records the dialogue, and SMTP servers that refuse or never answer.
import test, { type ExecutionContext } from 'ava';
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import {
  Director,
  formatKeepalivedAlert,
  KeepalivedAlerts,
  parseKeepalivedConfig,
  rfc822Date,
  runKeepalived,
  SmtpAlerter,
  smtpMessage,
  type VrrpSpeaker,
} from 'lvs';
import { sleep, until } from './helpers/stream.js';

interface Session {
  /** Command lines the client sent, outside DATA. */
  readonly lines: string[];
  /** What came between DATA's 354 and the final `.` line, with the terminating `.\r\n`. */
  data: string;
  closed: boolean;
}

type Mode = 'ok' | 'refuse' | 'silent';

/** A one-purpose SMTP server: `ok` accepts everything, `refuse` answers 554, `silent` never answers. */
async function smtpServer(t: ExecutionContext, mode: Mode): Promise<{ port: number; sessions: Session[] }> {
  const sessions: Session[] = [];
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const session: Session = { lines: [], data: '', closed: false };
    sessions.push(session);
    socket.setEncoding('latin1');
    socket.on('error', () => undefined);
    socket.on('close', () => {
      session.closed = true;
      sockets.delete(socket);
    });
    if (mode === 'silent') {
      socket.on('data', (chunk: string) => session.lines.push(...chunk.split('\r\n').filter((l) => l !== '')));
      return;
    }
    const reply = (ok: string): void => {
      socket.write(mode === 'refuse' ? '554 5.7.1 go away\r\n' : ok);
    };
    reply('220 mail.test ESMTP\r\n');
    let buffer = '';
    let inData = false;
    socket.on('data', (chunk: string) => {
      buffer += chunk;
      for (;;) {
        if (inData) {
          const end = buffer.indexOf('\r\n.\r\n');
          if (end === -1) return;
          session.data += buffer.slice(0, end + 5);
          buffer = buffer.slice(end + 5);
          inData = false;
          reply('250 2.0.0 queued\r\n');
          continue;
        }
        const end = buffer.indexOf('\r\n');
        if (end === -1) return;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        session.lines.push(line);
        const verb = line.split(/[ :]/)[0]?.toUpperCase();
        if (verb === 'HELO') reply('250-mail.test greets you\r\n250 HELP\r\n'); // a multi-line reply
        else if (verb === 'DATA') {
          reply('354 end with .\r\n');
          if (mode === 'ok') inData = true;
        } else if (verb === 'QUIT') {
          reply('221 bye\r\n');
          socket.end();
        } else reply('250 ok\r\n');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return { port: (server.address() as net.AddressInfo).port, sessions };
}

/** A closed port on `host`: bound once and released, so nothing listens there. */
async function closedPort(host: string): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((resolve) => s.listen(0, host, resolve));
  const p = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return p;
}

function globalDefs(smtpPort: number, extra = ''): string {
  return `global_defs {
    notification_email {
        ops@example.com
        oncall@example.com
    }
    notification_email_from lvs@example.com
    smtp_server 127.0.0.1 ${smtpPort}
    smtp_helo_name lb1.example.com
    smtp_connect_timeout 1
    router_id LVS_TEST
${extra}}
`;
}

function realServer(host: string, port: number, extra = ''): string {
  return `    real_server ${host} ${port} {
        weight 1
${extra}        TCP_CHECK {
            connect_timeout 0.5
            retry 0
            warmup 0
        }
    }
`;
}

function virtualServer(servers: string, extra = ''): string {
  return `virtual_server 127.0.0.10 80 {
    delay_loop 0.3
    lb_algo rr
    lb_kind NAT
    protocol TCP
${extra}${servers}}
`;
}

async function start(t: ExecutionContext, text: string) {
  const { config, diagnostics } = parseKeepalivedConfig({ text });
  t.deepEqual(
    diagnostics.filter((d) => d.severity !== 'warning'),
    [],
  );
  const director = await Director.open();
  t.teardown(() => director.close());
  const run = await runKeepalived(director, config);
  t.teardown(() => run.stop());
  const logs: string[] = [];
  run.on('log', (l) => logs.push(l));
  run.on('error', (e) => logs.push(`error: ${e.message}`));
  return { director, run, logs };
}

const DATE = /^Date: (Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}\r\n/;

/** The message keepalived sends after DATA, with the Date line checked and removed. */
function withoutDate(t: ExecutionContext, data: string): string {
  t.regex(data, DATE);
  return data.replace(DATE, '');
}

const DIALOGUE = [
  'HELO lb1.example.com',
  'MAIL FROM:<lvs@example.com>',
  'RCPT TO:<ops@example.com>',
  'RCPT TO:<oncall@example.com>',
  'DATA',
  'QUIT',
];

function message(subject: string, body: string): string {
  return (
    `From: lvs@example.com\r\nSubject: ${subject}\r\nX-Mailer: Keepalived\r\n` +
    `To: ops@example.com, oncall@example.com\r\n\r\n${body}\r\n\r\n.\r\n`
  );
}

test('a real server that goes down is mailed with keepalived\'s dialogue, headers, subject and body', async (t) => {
  t.timeout(30_000);
  const smtp = await smtpServer(t, 'ok');
  const down = await closedPort('127.0.0.2');
  const { director } = await start(t, globalDefs(smtp.port) + virtualServer(realServer('127.0.0.2', down)));
  t.true(await until(10_000, () => !director.save().includes(`127.0.0.2:${down}`)), director.save());
  t.true(await until(10_000, () => smtp.sessions.length === 1 && smtp.sessions[0]!.closed));
  await sleep(500); // nothing else may follow
  t.is(smtp.sessions.length, 1);
  const s = smtp.sessions[0]!;
  t.deepEqual(s.lines, DIALOGUE);
  t.is(
    withoutDate(t, s.data),
    message(
      `[LVS_TEST] Realserver [127.0.0.2]:tcp:${down} of virtual server [127.0.0.10]:tcp:80 - DOWN`,
      '=> TCP CHECK failed on service <=',
    ),
  );
});

test('losing quorum is mailed (virtual_server smtp_alert) before the real server that caused it', async (t) => {
  t.timeout(30_000);
  const smtp = await smtpServer(t, 'ok');
  const down = await closedPort('127.0.0.2');
  await start(t, globalDefs(smtp.port) + virtualServer(realServer('127.0.0.2', down), '    smtp_alert\n'));
  t.true(await until(10_000, () => smtp.sessions.length === 2 && smtp.sessions.every((s) => s.closed)));
  const [vs, rs] = smtp.sessions.map((s) => withoutDate(t, s.data));
  t.is(vs, message('[LVS_TEST] Virtualserver [127.0.0.10]:tcp:80 - DOWN', '=> Lost quorum 1+0=1 <= 0 <='));
  t.is(
    rs,
    message(
      `[LVS_TEST] Realserver [127.0.0.2]:tcp:${down} of virtual server [127.0.0.10]:tcp:80 - DOWN`,
      '=> TCP CHECK failed on service <=',
    ),
  );
});

test('recovery is mailed (quorum gained, then the real server up), also after a reload', async (t) => {
  t.timeout(30_000);
  const smtp = await smtpServer(t, 'ok');
  const port = await closedPort('127.0.0.2');
  const text = globalDefs(smtp.port) + virtualServer(realServer('127.0.0.2', port), '    smtp_alert\n');
  const { run } = await start(t, text);
  t.true(await until(10_000, () => smtp.sessions.length === 2 && smtp.sessions.every((s) => s.closed)));
  // Reloading keeps the server down; the new alerter mails what follows.
  await run.reload(parseKeepalivedConfig({ text }).config);
  const back = net.createServer((s) => s.on('error', () => undefined).end());
  await new Promise<void>((resolve) => back.listen(port, '127.0.0.2', resolve));
  t.teardown(() => back.close());
  t.true(await until(10_000, () => smtp.sessions.length === 4 && smtp.sessions.every((s) => s.closed)));
  const [vs, rs] = smtp.sessions.slice(2).map((s) => withoutDate(t, s.data));
  t.is(vs, message('[LVS_TEST] Virtualserver [127.0.0.10]:tcp:80 - UP', '=> Gained quorum 1+0=1 <= 1 <='));
  t.is(
    rs,
    message(
      `[LVS_TEST] Realserver [127.0.0.2]:tcp:${port} of virtual server [127.0.0.10]:tcp:80 - UP`,
      '=> TCP CHECK succeed on service <=',
    ),
  );
});

test('smtp_alert false on a real server suppresses its mail; its neighbour is still mailed', async (t) => {
  t.timeout(30_000);
  const smtp = await smtpServer(t, 'ok');
  const quiet = await closedPort('127.0.0.3');
  const loud = await closedPort('127.0.0.4');
  const { director } = await start(
    t,
    globalDefs(smtp.port) +
      virtualServer(realServer('127.0.0.3', quiet, '        smtp_alert false\n') + realServer('127.0.0.4', loud)),
  );
  t.true(
    await until(10_000, () => !director.save().includes('127.0.0.3:') && !director.save().includes('127.0.0.4:')),
    director.save(),
  );
  t.true(await until(10_000, () => smtp.sessions.length >= 1 && smtp.sessions[0]!.closed));
  await sleep(1_000);
  t.is(smtp.sessions.length, 1);
  t.regex(smtp.sessions[0]!.data, new RegExp(`Subject: \\[LVS_TEST\\] Realserver \\[127\\.0\\.0\\.4\\]:tcp:${loud} `));
});

test('an SMTP server answering 554 gets QUIT, is logged, and the checks go on', async (t) => {
  t.timeout(30_000);
  const smtp = await smtpServer(t, 'refuse');
  const down = await closedPort('127.0.0.2');
  const { director, logs } = await start(t, globalDefs(smtp.port) + virtualServer(realServer('127.0.0.2', down)));
  t.true(await until(10_000, () => !director.save().includes(`127.0.0.2:${down}`)), director.save());
  const where = `[127.0.0.1]:${smtp.port}`;
  t.true(
    await until(5_000, () =>
      logs.includes(`Error processing (E)SMTP cmd on SMTP server ${where}. SMTP status code = 554`),
    ),
    logs.join('\n'),
  );
  t.true(await until(5_000, () => smtp.sessions[0]?.closed === true));
  t.deepEqual(smtp.sessions[0]!.lines, ['QUIT']);
  t.false(logs.some((l) => l.startsWith('error:')), logs.join('\n'));
});

test('an SMTP server that never answers times out without holding up the checks or stop()', async (t) => {
  t.timeout(30_000);
  const smtp = await smtpServer(t, 'silent');
  const down = await closedPort('127.0.0.2');
  const { director, run, logs } = await start(t, globalDefs(smtp.port) + virtualServer(realServer('127.0.0.2', down)));
  t.true(await until(10_000, () => !director.save().includes(`127.0.0.2:${down}`)), director.save());
  const where = `[127.0.0.1]:${smtp.port}`;
  // smtp_connect_timeout 1: the greeting wait ends after 1 s, then QUIT gets another 1 s.
  t.true(await until(5_000, () => logs.includes(`Timeout reading data to remote SMTP server ${where}.`)), logs.join('\n'));
  t.true(await until(5_000, () => smtp.sessions[0]?.closed === true));
  t.deepEqual(smtp.sessions[0]!.lines, ['QUIT']);
  const stopped = Date.now();
  await run.stop();
  t.true(Date.now() - stopped < 5_000);
});

test('an SMTP server nobody listens on is logged as keepalived does', async (t) => {
  t.timeout(30_000);
  const port = await closedPort('127.0.0.1');
  const down = await closedPort('127.0.0.2');
  const { director, logs } = await start(t, globalDefs(port) + virtualServer(realServer('127.0.0.2', down)));
  t.true(await until(10_000, () => !director.save().includes(`127.0.0.2:${down}`)), director.save());
  t.true(await until(5_000, () => logs.includes(`SMTP connection ERROR to [127.0.0.1]:${port}.`)), logs.join('\n'));
});

test('nothing is sent without notification_email, or without smtp_server', async (t) => {
  t.timeout(30_000);
  const smtp = await smtpServer(t, 'ok');
  const noRcpt = new SmtpAlerter({ server: { host: '127.0.0.1', port: smtp.port }, to: [], from: 'a@b' });
  const noServer = new SmtpAlerter({ to: ['ops@example.com'], from: 'a@b' });
  t.false(noRcpt.enabled);
  t.false(noServer.enabled);
  noRcpt.send({ subject: 's', body: 'b' });
  noServer.send({ subject: 's', body: 'b' });
  // And through a configuration whose global_defs has no notification_email.
  const down = await closedPort('127.0.0.2');
  const text = `global_defs {\n    smtp_server 127.0.0.1 ${smtp.port}\n    router_id LVS_TEST\n}\n`;
  const { director } = await start(t, text + virtualServer(realServer('127.0.0.2', down)));
  t.true(await until(10_000, () => !director.save().includes(`127.0.0.2:${down}`)), director.save());
  await sleep(500);
  t.is(smtp.sessions.length, 0);
});

test('alerts go one at a time in order; an overflowing queue drops the oldest with a log line', async (t) => {
  t.timeout(30_000);
  const smtp = await smtpServer(t, 'ok');
  const alerter = new SmtpAlerter({
    server: { host: '127.0.0.1', port: smtp.port },
    to: ['ops@example.com'],
    from: 'lvs@example.com',
    maxQueue: 2,
  });
  t.teardown(() => alerter.close());
  const logs: string[] = [];
  alerter.on('log', (l) => logs.push(l));
  const sent: string[] = [];
  alerter.on('sent', (a) => sent.push(a.subject));
  for (const n of [1, 2, 3, 4]) alerter.send({ subject: `alert ${n}`, body: `=> ${n} <=` });
  t.deepEqual(logs, ["SMTP alert queue full (2): dropping alert 'alert 2'"]);
  await alerter.idle();
  t.deepEqual(sent, ['alert 1', 'alert 3', 'alert 4']);
  t.deepEqual(
    smtp.sessions.map((s) => /Subject: (.*)\r\n/.exec(s.data)?.[1]),
    ['alert 1', 'alert 3', 'alert 4'],
  );
});

test('VRRP alerts: keepalived\'s subjects and bodies', (t) => {
  const f = (state: 'MASTER' | 'BACKUP' | 'FAULT' | 'STOP' | 'INIT') =>
    formatKeepalivedAlert('LVS_DEVEL', { kind: 'vrrpInstance', instance: 'VI_1', state });
  t.deepEqual(f('MASTER'), {
    subject: '[LVS_DEVEL] VRRP Instance VI_1 - Entering MASTER state',
    body: '=> VRRP Instance is now owning VRRP VIPs <=',
  });
  t.deepEqual(f('BACKUP'), {
    subject: '[LVS_DEVEL] VRRP Instance VI_1 - Entering BACKUP state',
    body: '=> VRRP Instance is no longer owning VRRP VIPs <=',
  });
  t.deepEqual(f('FAULT'), {
    subject: '[LVS_DEVEL] VRRP Instance VI_1 - Entering FAULT state',
    body: '=> VRRP Instance is no longer owning VRRP VIPs <=',
  });
  t.deepEqual(f('STOP'), { subject: '[LVS_DEVEL] VRRP Instance VI_1 - Stopping', body: '=> VRRP Instance stopping <=' });
  t.is(f('INIT'), undefined);
  t.deepEqual(formatKeepalivedAlert('LVS_DEVEL', { kind: 'vrrpGroup', group: 'VG_1', state: 'MASTER' }), {
    subject: '[LVS_DEVEL] VRRP Group VG_1 - Entering MASTER state',
    body: '=> All VRRP group instances are now in MASTER state <=',
  });
  const date = new Date(2026, 10, 22, 5, 7, 9);
  t.is(
    smtpMessage({ from: 'a@b', to: ['x@y', 'z@w'] }, { subject: 's\r\nBcc: evil@x', body: 'b' }, date),
    `Date: ${rfc822Date(date)}\r\nFrom: a@b\r\nSubject: s Bcc: evil@x\r\nX-Mailer: Keepalived\r\nTo: x@y, z@w\r\n\r\nb\r\n\r\n.\r\n`,
  );
  t.regex(rfc822Date(date), /^Sun, 22 Nov 2026 05:07:09 [+-]\d{4}$/);
});

test('VRRP state changes are mailed per smtp_alert, once per state, sync groups when all members agree', async (t) => {
  t.timeout(30_000);
  const smtp = await smtpServer(t, 'ok');
  const { config } = parseKeepalivedConfig({
    text:
      globalDefs(smtp.port, '    no_email_faults\n') +
      `vrrp_sync_group VG_1 {
    group {
        VI_1
        VI_2
    }
    smtp_alert
}
vrrp_instance VI_1 {
    interface lo
    virtual_router_id 51
    smtp_alert
    virtual_ipaddress {
        10.0.0.1
    }
}
vrrp_instance VI_2 {
    interface lo
    virtual_router_id 52
    virtual_ipaddress {
        10.0.0.2
    }
}
`,
  }, { interfaceExists: () => true });
  const alerts = new KeepalivedAlerts(config);
  t.teardown(() => alerts.close());
  const speaker = new EventEmitter();
  alerts.watchVrrp(speaker as unknown as VrrpSpeaker);
  const change = (instance: string, from: string, to: string): boolean =>
    speaker.emit('state', { instance, from, to, priority: 100 });
  change('VI_1', 'INIT', 'BACKUP'); // VI_1 mailed; the group waits for VI_2
  change('VI_2', 'INIT', 'BACKUP'); // VI_2 has no smtp_alert; the group is now BACKUP
  change('VI_1', 'BACKUP', 'FAULT'); // no_email_faults
  change('VI_1', 'FAULT', 'BACKUP'); // BACKUP was the last mail: nothing
  change('VI_1', 'BACKUP', 'MASTER');
  change('VI_2', 'BACKUP', 'MASTER');
  await alerts.alerter.idle();
  t.deepEqual(
    smtp.sessions.map((s) => /Subject: (.*)\r\n/.exec(s.data)?.[1]),
    [
      '[LVS_TEST] VRRP Instance VI_1 - Entering BACKUP state',
      '[LVS_TEST] VRRP Group VG_1 - Entering BACKUP state',
      '[LVS_TEST] VRRP Instance VI_1 - Entering MASTER state',
      '[LVS_TEST] VRRP Group VG_1 - Entering MASTER state',
    ],
  );
});
