// keepalived.conf support: the lexer and parser on small configurations, `lvsd -t` against the real
// keepalived 2.2.7 (`keepalived -t`, the oracle) on every sample, VRRP fixture and seed configuration,
// and `lvsd --dump-rules` against the ipvsadm rules those configurations produce.
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkKeepalivedConfig, keepalivedToIpvsadm, parseKeepalivedConfig } from 'lvs';
import { canUseNetns, netns } from './helpers/netns.js';

const lvsdPath = fileURLToPath(new URL('../packages/lvs/dist/bin/lvsd.js', import.meta.url));
const seedDir = fileURLToPath(new URL('./fixtures/keepalived/', import.meta.url));
const samplesDir = '/work/shared/fixtures/keepalived-samples';
const vrrpDir = '/work/shared/fixtures/vrrp';

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'ka-conf-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes a config to a temp file and checks it like `keepalived -t` (no interface or script checks). */
function check(t: ExecutionContext, text: string, configId = 'testhost') {
  const file = join(tempDir(t), 'keepalived.conf');
  writeFileSync(file, text);
  const r = checkKeepalivedConfig(file, { configId, interfaceExists: () => true, scriptRunnable: () => false });
  return { ...r, messages: r.messages.map((m) => m.replace(`(${file}: `, '(')) };
}

function parse(text: string, configId = 'testhost') {
  return parseKeepalivedConfig({ text, path: '/nonexistent-dir/keepalived.conf' }, { configId });
}

const instance = (body: string): string =>
  `vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n virtual_ipaddress {\n  10.0.0.100/24\n }\n${body}}\n`;

test('braces on the keyword line, on their own line, or a whole block on one line are equivalent', (t) => {
  const a = parse('global_defs { router_id r1 }\n' + instance(' authentication { auth_type PASS\n auth_pass "se cret" }\n'));
  const b = parse('global_defs\n{\n router_id r1\n}\n' + instance(' authentication\n {\n  auth_type PASS\n  auth_pass "se cret"\n }\n'));
  t.deepEqual(a.diagnostics, []);
  t.deepEqual(b.diagnostics, []);
  t.is(a.config.globalDefs.routerId, 'r1');
  t.deepEqual(a.config.vrrpInstances[0]?.authentication, { authType: 'PASS', authPass: 'se cret' });
  t.deepEqual(b.config.vrrpInstances[0]?.authentication, a.config.vrrpInstances[0]?.authentication);
});

test('comments (#, !) end a line outside quotes; \\# is a literal #', (t) => {
  const { config, diagnostics } = parse(
    'global_defs {\n router_id a\\#b   # trailing comment\n notification_email_from "x#y@z" ! other\n}\n! whole line\n',
  );
  t.deepEqual(diagnostics, []);
  t.is(config.globalDefs.routerId, 'a#b');
  t.is(config.globalDefs.notificationEmailFrom, 'x#y@z');
});

test('script keywords use script quoting: both quote kinds, joined text, user and group', (t) => {
  const { config } = parse(
    `vrrp_script chk {\n script "bash -c '</dev/tcp/127.0.0.1/80'" nobody nogroup\n interval 2\n weight -4\n fall 2\n rise 3\n}\n` +
      instance(' track_script {\n  chk\n  chk weight 10 reverse\n }\n notify_master "/bin/echo a  b" \n'),
  );
  const s = config.vrrpScripts[0];
  t.deepEqual(s?.script, {
    command: "bash -c '</dev/tcp/127.0.0.1/80'",
    argv: ['bash', '-c', '</dev/tcp/127.0.0.1/80'], // single quotes group words and are removed
    shell: false,
    user: 'nobody',
    group: 'nogroup',
  });
  t.like(s, { interval: 2000, timeout: 2000, weight: -4, rise: 3, fall: 2 });
  t.deepEqual(config.vrrpInstances[0]?.trackScripts, [
    { name: 'chk', weight: -4, reverse: false },
    { name: 'chk', weight: 10, reverse: true },
  ]);
  t.deepEqual(config.vrrpInstances[0]?.notifyMaster?.argv, ['/bin/echo', 'a', 'b']);
});

test('@ID lines are kept only for the config id, @^ID only for others', (t) => {
  const text = instance('@high priority 170\n@low priority 85\n@^high advert_int 3\n');
  t.like(parse(text, 'high').config.vrrpInstances[0], { priority: 170, advertInt: 1000 });
  t.like(parse(text, 'low').config.vrrpInstances[0], { priority: 85, advertInt: 3000 });
  t.like(parse(text, 'other').config.vrrpInstances[0], { priority: 100, advertInt: 3000 });
});

test('$NAME=value parameters are substituted as $NAME and ${NAME}', (t) => {
  const { config, diagnostics } = parse('$VIP=10.1.1.1\n$PORT=80\nvirtual_server $VIP ${PORT} {\n protocol TCP\n lb_algo rr\n lb_kind DR\n real_server 10.2.2.2 80 {\n }\n}\n');
  t.deepEqual(diagnostics, []);
  t.deepEqual(config.virtualServers[0]?.key, { kind: 'address', address: '10.1.1.1', port: 80 });
});

test('include with globs and braces, relative to the including file; no match is reported but not an error', (t) => {
  const dir = tempDir(t);
  mkdirSync(join(dir, 'conf.d'));
  writeFileSync(join(dir, 'conf.d', 'a.conf'), 'vrrp_script a {\n script /bin/true\n}\n');
  writeFileSync(join(dir, 'conf.d', 'b.conf'), 'vrrp_script b {\n script /bin/true\n}\n');
  writeFileSync(join(dir, 'conf.d', 'c.inc'), 'vrrp_script c {\n script /bin/true\n}\n');
  writeFileSync(join(dir, 'main.conf'), 'include conf.d/*.conf\ninclude conf.d/{c,d}.inc\ninclude nothing/*.conf\n');
  const { config, diagnostics } = parseKeepalivedConfig(join(dir, 'main.conf'), { configId: 'x' });
  t.deepEqual(config.vrrpScripts.map((s) => s.name), ['a', 'b', 'c']);
  t.is(config.vrrpScripts[0]?.source.file, join(dir, 'conf.d', 'a.conf'));
  t.deepEqual(diagnostics.map((d) => d.text), [`(${join(dir, 'main.conf')}: Line 3) Config files missing 'nothing/*.conf'.`]);
  t.is(checkKeepalivedConfig(join(dir, 'main.conf'), { scriptRunnable: () => false }).exitCode, 0);
});

test('lb_algo / lb_kind aliases, defaults and inheritance down to the checkers', (t) => {
  const { config, diagnostics } = parse(
    'virtual_server 10.0.0.1 80 {\n delay_loop 6\n lb_algo wrr\n lb_kind DR\n protocol TCP\n connect_timeout 4\n' +
      ' real_server 10.0.0.2 8080 {\n  weight 3\n  retry 5\n  TCP_CHECK {\n   connect_port 81\n  }\n  HTTP_GET {\n   url {\n    path /h\n    status_code 200-299 404\n   }\n   delay_before_retry 2.5\n  }\n  MISC_CHECK {\n   misc_path "/bin/check a"\n  }\n }\n}\n',
  );
  t.deepEqual(diagnostics, []);
  const vs = config.virtualServers[0];
  t.like(vs, { lvsSched: 'wrr', lvsMethod: { kind: 'DR' }, protocol: 'TCP', delayLoop: 6000, quorum: 1 });
  const rs = vs?.realServers[0];
  t.like(rs, { port: 80, weight: 3, inhibitOnFailure: false }, 'DR real servers take the VS port');
  t.like(rs?.checkers[0], { type: 'TCP_CHECK', connectIp: '10.0.0.2', connectPort: 81, connectTimeout: 4000, retry: 5, delayBeforeRetry: 1000, delayLoop: 6000, warmup: 6000 });
  t.like(rs?.checkers[1], { type: 'HTTP_GET', connectPort: 80, retry: 5, delayBeforeRetry: 2500, httpProtocol: '1.0' });
  t.deepEqual(rs?.checkers[1]?.type === 'HTTP_GET' ? rs.checkers[1].urls[0]?.statusCodes : [], [[200, 299], [404, 404]]);
  t.like(rs?.checkers[2], { type: 'MISC_CHECK', retry: 5, miscTimeout: 6000, miscDynamic: false });
});

test('keepalived errors: nb_get_retry (rc 5), unknown keyword with its line, missing keyword defaults', (t) => {
  const r = check(t, 'virtual_server 10.0.0.1 80 {\n real_server 10.0.0.2 80 {\n  HTTP_GET {\n   url {\n    path /\n   }\n   nb_get_retry 3\n  }\n  bogus 1\n }\n}\n');
  t.is(r.exitCode, 5);
  t.deepEqual(r.messages, [
    "(Line 7) nb_get_retry is deprecated - please use 'retry'",
    "(Line 9) Unknown keyword 'bogus'",
    'Virtual server [10.0.0.1]:none:80: no protocol set - defaulting to UDP',
    "Virtual server [10.0.0.1]:udp:80: no scheduler set, setting default 'wlc'",
    'Virtual server [10.0.0.1]:udp:80: no forwarding method set, setting default NAT',
  ]);
  const tcp = check(t, 'virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n real_server 10.0.0.2 80 {\n  TCP_CHECK {\n   nb_get_retry 3\n  }\n }\n}\n');
  t.deepEqual(tcp, { exitCode: 5, messages: ["(Line 7) Unknown keyword 'nb_get_retry'"] }, 'TCP_CHECK never had nb_get_retry');
});

test('missing and extra braces are reported like keepalived', (t) => {
  t.deepEqual(check(t, 'global_defs {\n router_id x\n}\n}\n'), {
    exitCode: 5,
    messages: ["(Line 4) Extra '}' found", "(Line 4) Unknown keyword '}'"],
  });
  t.deepEqual(check(t, 'global_defs {\n router_id x\n'), { exitCode: 5, messages: ["There are 1 missing '}'s or extra '{'s"] });
  const ok = check(t, 'global_defs {\n router_id x\n}\n');
  t.deepEqual(ok, { exitCode: 0, messages: [] });
});

test('a missing file is reported and exits 0, as keepalived -t does', (t) => {
  const file = join(tempDir(t), 'none.conf');
  t.deepEqual(checkKeepalivedConfig(file), { exitCode: 0, messages: [`Config files missing '${file}'.`] });
});

test('scripts without enable_script_security: rc 6; not found: disabled (rc 5); security enabled: rc 0', (t) => {
  const conf = (extra: string, script: string): string =>
    `global_defs {\n${extra}}\nvrrp_script chk {\n script "${script}"\n}\n` + instance(' track_script {\n  chk\n }\n');
  const run = (text: string) => {
    const file = join(tempDir(t), 'k.conf');
    writeFileSync(file, text);
    return checkKeepalivedConfig(file, { interfaceExists: () => true });
  };
  t.deepEqual(run(conf('', '/bin/true')), {
    exitCode: 6,
    messages: ['SECURITY VIOLATION - scripts are being executed but script_security not enabled.'],
  });
  t.deepEqual(run(conf(' enable_script_security\n', '/bin/true')), { exitCode: 0, messages: [] });
  t.deepEqual(run(conf('', '/nonexistent/script')), {
    exitCode: 5,
    messages: ['Disabling track script chk since not found/accessible'],
  });
});

test('keywords lvs does not implement are parsed and reported, never dropped silently', (t) => {
  const { config, diagnostics } = parse(instance(' use_vmac\n') + 'static_routes {\n 10.9.0.0/16 via 10.0.0.1 dev eth0\n}\n');
  t.deepEqual(
    diagnostics.map((d) => [d.severity, d.text]),
    [
      ['warning', "(/nonexistent-dir/keepalived.conf: Line 7) 'vrrp_instance/use_vmac' is not supported by lvs - ignoring"],
      ['warning', "(/nonexistent-dir/keepalived.conf: Line 10) 'static_routes' is not supported by lvs - ignoring"],
    ],
  );
  t.deepEqual(config.unsupported.map((u) => u.keyword), ['vrrp_instance/use_vmac', 'static_routes']);
});

test('malformed input never throws: binary junk, unbalanced quotes, huge numbers', (t) => {
  for (const text of ['\u0000\u0001{{{}}}"', 'virtual_server "10.0.0.1 80 {\n', 'vrrp_instance X {\n priority 99999999999999999999\n virtual_router_id -1\n}\n']) {
    const r = parse(text);
    t.true(Array.isArray(r.diagnostics));
    t.true(r.diagnostics.some((d) => d.severity === 'error'));
  }
});

test('dump rules: alpha servers are left out unless inhibit_on_failure (weight 0); quorum down adds the sorry server', async (t) => {
  const base = (rs: string, extra = ''): string =>
    `virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_algo rr\n lb_kind NAT\n${extra}${rs}}\n`;
  const rs = (ip: string, body = ''): string => ` real_server ${ip} 8080 {\n${body} }\n`;
  const rules = async (text: string): Promise<string> => keepalivedToIpvsadm(parse(text).config);
  t.is(
    // alpha: the server's checkers start failed (a server without checkers has none to fail).
    await rules(base(rs('10.0.0.2', '  alpha\n  TCP_CHECK {\n  }\n') + rs('10.0.0.3', '  alpha\n  inhibit_on_failure\n  TCP_CHECK {\n  }\n') + rs('10.0.0.4'))),
    '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.3:8080 -m -w 0\n-a -t 10.0.0.1:80 -r 10.0.0.4:8080 -m -w 1\n',
  );
  t.is(
    await rules(base(rs('10.0.0.2', '  TCP_CHECK {\n  }\n'), ' alpha\n sorry_server 10.0.0.9 8080\n')),
    '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.9:8080 -m -w 1\n',
  );
  t.is(
    await rules(base(rs('10.0.0.2'), ' sorry_server 10.0.0.9 8080\n sorry_server_inhibit\n')),
    '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:8080 -m -w 1\n-a -t 10.0.0.1:80 -r 10.0.0.9:8080 -m -w 0\n',
  );
});

function lvsd(args: string[], ns?: string) {
  const cmd = ns ? ['ip', ['netns', 'exec', ns, process.execPath, lvsdPath, ...args]] as const : [process.execPath, [lvsdPath, ...args]] as const;
  const r = spawnSync(cmd[0], [...cmd[1]], { encoding: 'utf8', timeout: 30_000 });
  return { status: r.status ?? -1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

const expectedRules: Record<string, string> = {
  'seed-000-tun.conf':
    '-A -t 10.10.36.11:80 -s rr\n-a -t 10.10.36.11:80 -r 10.10.36.4:80 -i -w 100 --tun-type ipip\n-a -t 10.10.36.11:80 -r 10.10.36.7:80 -i -w 100 --tun-type ipip\n',
  'seed-000-mixed.conf':
    '-A -t 10.10.36.11:80 -s rr\n-a -t 10.10.36.11:80 -r 10.10.36.4:80 -g -w 100\n-a -t 10.10.36.11:80 -r 10.10.36.7:80 -i -w 100 --tun-type ipip\n',
  'seed-001-dr.conf':
    '-A -t 192.168.0.239:8898 -s rr -p 50\n-a -t 192.168.0.239:8898 -r 192.168.0.236:8898 -g -w 1\n-a -t 192.168.0.239:8898 -r 192.168.0.238:8898 -g -w 1\n',
  'seed-002-master.conf':
    '-A -t 192.168.60.200:8080 -s rr\n-a -t 192.168.60.200:8080 -r 192.168.60.121:8080 -g -w 1\n-a -t 192.168.60.200:8080 -r 192.168.60.122:8080 -g -w 1\n',
  'seed-002-backup.conf':
    '-A -t 192.168.60.200:8080 -s rr\n-a -t 192.168.60.200:8080 -r 192.168.60.121:8080 -g -w 1\n-a -t 192.168.60.200:8080 -r 192.168.60.122:8080 -g -w 1\n',
  'keepalived.conf.fwmark': '-A -f 1 -s rr -p 900\n-a -f 1 -r 192.168.201.100:0 -m -w 1\n-a -f 1 -r 192.168.201.101:0 -m -w 1\n',
  // alpha: every real server starts down, so quorum 7 is lost; there is no sorry server.
  'keepalived.conf.quorum': '-A -t 10.0.1.1:80 -s wrr -p 900\n',
  'keepalived.conf.inhibit': '-A -t 10.10.10.2:1358 -s rr -p 50\n-a -t 10.10.10.2:1358 -r 192.168.200.2:1358 -m -w 1\n',
  // quorum is up at start, so the sorry server is not in the table.
  'keepalived.conf.sample': '-A -t 10.10.10.2:1358 -s rr -p 50\n-a -t 10.10.10.2:1358 -r 192.168.200.2:1358 -m -w 1\n',
};

test('lvsd --dump-rules prints the ipvsadm -S -n rules of the seed and sample configurations', (t) => {
  for (const [name, rules] of Object.entries(expectedRules)) {
    const file = name.startsWith('seed') ? join(seedDir, name) : join(samplesDir, name);
    const r = lvsd(['--dump-rules', '-f', file]);
    t.is(r.status, 0, `${name}: ${r.stderr}`);
    t.is(r.stdout, rules, name);
  }
  const group = lvsd(['--dump-rules', '--use-file', join(samplesDir, 'keepalived.conf.virtual_server_group')]);
  const services = group.stdout.split('\n').filter((l) => l.startsWith('-A'));
  t.deepEqual(services, [
    '-A -t 192.168.200.1:1358 -s rr -p 50',
    ...[3, 4, 5, 6, 7, 8, 9, 10].map((n) => `-A -t 192.168.200.${n}:80 -s rr -p 50`),
    '-A -t 10.0.0.1:8080 -s rr -p 50',
    '-A -t 10.0.0.2:80 -s rr -p 50',
    '-A -f 1 -s rr -p 50',
    '-A -f 2 -s rr -p 50',
  ]);
  t.is(group.stdout.split('\n').filter((l) => l.startsWith('-a')).length, services.length * 2, 'each service gets both real servers');
});

test('lvsd -t exit codes and messages; -f refuses a missing file; -i is the config id', (t) => {
  const missing = lvsd(['-t', '-f', '/nonexistent/keepalived.conf']);
  t.deepEqual(missing, { status: 0, stdout: '', stderr: "Config files missing '/nonexistent/keepalived.conf'.\n" });
  const conditional = join(samplesDir, 'keepalived.conf.conditional_conf');
  const none = lvsd(['-t', '-f', conditional, '-i', 'nomatch']);
  t.is(none.status, 5);
  t.true(none.stderr.includes(`(${conditional}: Line 13) No script set for vrrp_script check_VI_0 - removing\n`));
  t.is(lvsd([`--config-test=${conditional}`, '--config-id', 'high']).status, 0);
  // Running (-f without -t) needs a readable file; the real runs are in test/ha.spec.ts.
  const run = lvsd(['-f', '/nonexistent/keepalived.conf']);
  t.is(run.status, 1);
  t.regex(run.stderr, /Config files missing '\/nonexistent\/keepalived.conf'\.\nlvsd: cannot run/);
});

// ---- the oracle: keepalived -t on the same files, in a namespace with the interfaces they name ----

const keepalivedBin = spawnSync('sh', ['-c', 'command -v keepalived'], { encoding: 'utf8' }).stdout.trim();

function oracleFiles(): string[] {
  const pick = (dir: string, re: RegExp): string[] =>
    readdirSync(dir)
      .filter((f) => re.test(f))
      .sort()
      .map((f) => join(dir, f));
  return [...pick(samplesDir, /^keepalived\.conf\./), ...pick(vrrpDir, /\.conf$/), ...pick(seedDir, /\.conf$/)];
}

/** (line, text) pairs, without the file name keepalived adds in some processes and not others. */
function problems(stderr: string): string[] {
  const out = new Set<string>();
  for (const line of stderr.split('\n')) {
    if (!line || line.includes('is not supported by lvs')) continue;
    out.add(line.replace(/^\((?:[^:()]*: )?Line (\d+)\) /, '(Line $1) '));
  }
  return [...out].sort();
}

test('lvsd -t gives keepalived -t verdicts and messages on every sample, VRRP fixture and seed', (t) => {
  if (!keepalivedBin) return t.pass('keepalived is not on the PATH: oracle comparison skipped');
  if (!canUseNetns) return t.pass('needs root for a network namespace: oracle comparison skipped');
  const ns = netns(t, 'ka');
  // The interfaces the configurations name; veth pairs stay inside the namespace.
  for (const ifname of ['eth0', 'eth1', 'eth2', 'eth3', 'eth0.1', 'veth0', 'em1', 'ens33']) {
    ns.run('ip', ['link', 'add', ifname, 'type', 'veth', 'peer', 'name', `p${ifname}`]);
    ns.run('ip', ['link', 'set', ifname, 'up']);
  }
  const files = oracleFiles();
  t.true(files.length >= 31, 'all samples, VRRP configs and seeds are present');
  const runs: [string, string[]][] = [
    ...files.map((f): [string, string[]] => [basename(f), ['-t', '-f', f]]),
    ['conditional -i high', ['-t', '-f', join(samplesDir, 'keepalived.conf.conditional_conf'), '-i', 'high']],
    ['conditional -i low', ['-t', '-f', join(samplesDir, 'keepalived.conf.conditional_conf'), '-i', 'low']],
  ];
  for (const [label, args] of runs) {
    const ka = ns.try(keepalivedBin, args);
    const ours = lvsd(args, ns.name);
    t.is(ours.status, ka.status, `${label}: exit code (keepalived said ${ka.stderr})`);
    t.deepEqual(problems(ours.stderr), problems(ka.stderr), `${label}: messages`);
  }
});

test('smtp_alert defaults: smtp_alert_checker / smtp_alert_vrrp, then an explicit global smtp_alert, then true for real servers only', (t) => {
  const conf = (globals: string): ReturnType<typeof parse>['config'] =>
    parse(
      `global_defs {\n${globals}}\n` +
        instance('') +
        'virtual_server 10.0.0.1 80 {\n protocol TCP\n real_server 10.0.0.2 80 {\n }\n real_server 10.0.0.3 80 {\n  smtp_alert false\n }\n}\n',
    ).config;
  const alerts = (c: ReturnType<typeof conf>) => [
    c.virtualServers[0]?.smtpAlert,
    c.virtualServers[0]?.realServers.map((r) => r.smtpAlert),
    c.vrrpInstances[0]?.smtpAlert,
  ];
  t.deepEqual(alerts(conf('')), [false, [true, false], false]);
  t.deepEqual(alerts(conf(' smtp_alert false\n')), [false, [false, false], false]);
  t.deepEqual(alerts(conf(' smtp_alert\n')), [true, [true, false], true]);
  t.deepEqual(alerts(conf(' smtp_alert false\n smtp_alert_checker\n smtp_alert_vrrp\n')), [true, [true, false], true]);
  t.deepEqual(alerts(conf(' smtp_alert_checker false\n')), [false, [false, false], false]);
  const flags = conf(' no_email_faults\n no_checker_emails\n').globalDefs;
  t.like(flags, { noEmailFaults: true, noCheckerEmails: true });
});
