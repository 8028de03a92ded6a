//! Running ipvsadm commands against the table: what ipvsadm would print and its exit status.

use super::format::{
    list_all, list_conn, list_daemons, list_service, list_timeout, save, Names, IPVS_VERSION,
};
use super::parse::{parse, Command, Usage};
use crate::ipvs::Ipvs;
use crate::time::Instant;

/// What a command printed and how it exited.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Outcome {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit status (0 success, 2 usage error, 255 kernel/table error, 1 listing error).
    pub status: i32,
}

impl Outcome {
    fn out(stdout: String) -> Outcome {
        Outcome { stdout, ..Outcome::default() }
    }
    fn err(message: &str, status: i32) -> Outcome {
        Outcome { stderr: format!("{message}\n"), status, ..Outcome::default() }
    }
}

impl From<Usage> for Outcome {
    fn from(u: Usage) -> Outcome {
        Outcome::err(&u.message, u.exit)
    }
}

/// The first line of `ipvsadm -v` and `-h`.
pub fn version_line() -> String {
    format!("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v{IPVS_VERSION})\n")
}

/// ipvsadm's `-h` text for a program name.
pub fn usage_text(p: &str) -> String {
    let mut s = version_line();
    s.push_str(&format!(
        "Usage:
  {p} -A|E virtual-service [-s scheduler] [-p [timeout]] [-M netmask] [--pe persistence_engine] [-b sched-flags]
  {p} -D virtual-service
  {p} -C
  {p} -R
  {p} -S [-n]
  {p} -a|e virtual-service -r server-address [options]
  {p} -d virtual-service -r server-address
  {p} -L|l [virtual-service] [options]
  {p} -Z [virtual-service]
  {p} --set tcp tcpfin udp
  {p} --start-daemon {{master|backup}} [daemon-options]
  {p} --stop-daemon {{master|backup}}
  {p} -h

"
    ));
    s.push_str(
        "Commands:
Either long or short options are allowed.
  --add-service     -A        add virtual service with options
  --edit-service    -E        edit virtual service with options
  --delete-service  -D        delete virtual service
  --clear           -C        clear the whole table
  --restore         -R        restore rules from stdin
  --save            -S        save rules to stdout
  --add-server      -a        add real server with options
  --edit-server     -e        edit real server with options
  --delete-server   -d        delete real server
  --list            -L|-l     list the table
  --zero            -Z        zero counters in a service or all services
  --set tcp tcpfin udp        set connection timeout values
  --start-daemon              start connection sync daemon
  --stop-daemon               stop connection sync daemon
  --help            -h        display this help message

virtual-service:
  --tcp-service|-t  service-address   service-address is host[:port]
  --udp-service|-u  service-address   service-address is host[:port]
  --sctp-service    service-address   service-address is host[:port]
  --fwmark-service|-f fwmark          fwmark is an integer greater than zero

Options:
  --ipv6         -6                   fwmark entry uses IPv6
  --scheduler    -s scheduler         one of rr|wrr|lc|wlc|lblc|lblcr|dh|sh|sed|nq|fo|ovf|mh,
                                      the default scheduler is wlc.
  --pe            engine              alternate persistence engine may be sip,
                                      not set by default.
  --persistent   -p [timeout]         persistent service
  --netmask      -M netmask           persistent granularity mask
  --real-server  -r server-address    server-address is host (and port)
  --gatewaying   -g                   gatewaying (direct routing) (default)
  --ipip         -i                   ipip encapsulation (tunneling)
  --masquerading -m                   masquerading (NAT)
  --tun-type      type                one of ipip|gue|gre,
                                      the default tunnel type is ipip.
  --tun-port      port                tunnel destination port
  --tun-nocsum                        tunnel encapsulation without checksum
  --tun-csum                          tunnel encapsulation with checksum
  --tun-remcsum                       tunnel encapsulation with remote checksum
  --weight       -w weight            capacity of real server
  --u-threshold  -x uthreshold        upper threshold of connections
  --l-threshold  -y lthreshold        lower threshold of connections
  --connection   -c                   output of current IPVS connections
  --timeout                           output of timeout (tcp tcpfin udp)
  --daemon                            output of daemon information
  --stats                             output of statistics information
  --rate                              output of rate information
  --exact                             expand numbers (display exact values)
  --thresholds                        output of thresholds information
  --persistent-conn                   output of persistent connection info
  --tun-info                          output of tunnel information
  --nosort                            disable sorting output of service/server entries
  --sort                              does nothing, for backwards compatibility
  --ops          -o                   one-packet scheduling
  --numeric      -n                   numeric output of addresses and ports
  --sched-flags  -b flags             scheduler flags (comma-separated)
Daemon Options:
  --syncid sid                        syncid for connection sync (default=255)
  --sync-maxlen length                Max sync message length (default=1472)
  --mcast-interface interface         multicast interface for connection sync
  --mcast-group address               IPv4/IPv6 group (default=224.0.0.81)
  --mcast-port port                   UDP port (default=8848)
  --mcast-ttl ttl                     Multicast TTL (default=1)
",
    );
    s
}

/// Where `execute` gets what the table alone does not hold.
pub struct Context<'a> {
    /// Program name for messages (`ipvsadm`, `lvsadm`).
    pub program: &'a str,
    /// Now, for deleting servers into the trash.
    pub now: Instant,
    /// Name resolution for listings without `-n`.
    pub names: &'a dyn Names,
    /// Size shown in the `-L` header.
    pub conn_tab_size: u32,
    /// Standard input for `-R`.
    pub stdin: Option<&'a str>,
}

impl std::fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("program", &self.program)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// Parses and runs one command line (`args` without the program name). With no arguments at all,
/// lists the table, as ipvsadm does.
pub fn run(ipvs: &mut Ipvs, args: &[&str], ctx: &Context<'_>) -> Outcome {
    if args.is_empty() {
        return Outcome::out(list_all(ipvs, &Default::default(), ctx.names, ctx.conn_tab_size));
    }
    match parse(ctx.program, args) {
        Ok(cmd) => execute(ipvs, cmd, ctx),
        Err(u) => u.into(),
    }
}

/// Runs a parsed command.
pub fn execute(ipvs: &mut Ipvs, cmd: Command, ctx: &Context<'_>) -> Outcome {
    let table = |r: crate::Result<()>| match r {
        Ok(()) => Outcome::default(),
        Err(e) => Outcome::err(e.message(), 255),
    };
    match cmd {
        Command::Help => Outcome::out(usage_text(ctx.program)),
        Command::Version => Outcome::out(version_line()),
        Command::AddService(c) => table(ipvs.add_service(c)),
        Command::EditService(c) => table(ipvs.edit_service(c)),
        Command::DelService(k) => table(ipvs.del_service(&k, ctx.now)),
        Command::Flush => {
            ipvs.clear(ctx.now);
            Outcome::default()
        }
        Command::AddDest(k, d) => table(ipvs.add_dest(&k, &d)),
        Command::EditDest(k, d) => table(ipvs.edit_dest(&k, &d)),
        Command::DelDest(k, addr, port) => table(ipvs.del_dest(&k, addr, Some(port), ctx.now)),
        Command::Zero(k) => table(ipvs.zero(k.as_ref())),
        Command::Save { numeric } => Outcome::out(save(ipvs, numeric, ctx.names)),
        Command::Restore => match ctx.stdin {
            Some(text) => match restore(ipvs, text, ctx) {
                Ok(()) => Outcome::default(),
                Err(e) => Outcome::err(&e.to_string(), e.status),
            },
            None => Outcome::err("no input to restore from", 2),
        },
        Command::List(l) => {
            if let Some(key) = l.service {
                return match list_service(ipvs, &key, &l.format, ctx.names) {
                    Some(text) => Outcome::out(text),
                    None => Outcome::err("No such service", 1),
                };
            }
            if l.connections {
                return Outcome::out(list_conn(&ipvs.connections(ctx.now), &l.format, ctx.names));
            }
            if l.timeout {
                let (tcp, tcpfin, udp) = ipvs.timeouts();
                return Outcome::out(list_timeout(tcp, tcpfin, udp));
            }
            if l.daemon {
                return Outcome::out(list_daemons(&ipvs.daemons()));
            }
            Outcome::out(list_all(ipvs, &l.format, ctx.names, ctx.conn_tab_size))
        }
        Command::SetTimeout { tcp, tcpfin, udp } => table(ipvs.set_timeouts(tcp, tcpfin, udp)),
        Command::StartDaemon(c) => table(ipvs.start_daemon(&c, None).map(drop)),
        Command::StopDaemon { role } => table(ipvs.stop_daemon(role)),
    }
}

/// A line of a restore that failed, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreError {
    /// 1-based line number.
    pub line: usize,
    /// ipvsadm's message for the line.
    pub message: String,
    /// The exit status ipvsadm would use.
    pub status: i32,
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RestoreError {}

/// Splits a restore line into words like ipvsadm's `config_stream`: whitespace-separated, with
/// any word equal to `ipvsadm` dropped.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().filter(|w| *w != "ipvsadm").collect()
}

/// `ipvsadm -R`, but atomic: every line is parsed and tried on a copy of the configuration first;
/// on any error nothing is applied and the error names the line. Blank lines are skipped.
pub fn restore(ipvs: &mut Ipvs, text: &str, ctx: &Context<'_>) -> Result<(), RestoreError> {
    let mut commands = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let w = words(line);
        if w.is_empty() {
            continue;
        }
        let cmd = parse(ctx.program, &w).map_err(|u| RestoreError {
            line: i + 1,
            message: u.message,
            status: u.exit,
        })?;
        if matches!(cmd, Command::Restore) {
            // ipvsadm refuses to recurse into another restore.
            return Err(RestoreError {
                line: i + 1,
                message: format!("Try `{0} -h' or '{0} --help' for more information.", ctx.program),
                status: 255,
            });
        }
        commands.push((i + 1, cmd));
    }
    let mut shadow = config_copy(ipvs);
    for (line, cmd) in &commands {
        let o = execute(&mut shadow, cmd.clone(), ctx);
        if o.status != 0 {
            return Err(RestoreError {
                line: *line,
                message: o.stderr.trim_end().to_owned(),
                status: o.status,
            });
        }
    }
    for (_, cmd) in commands {
        execute(ipvs, cmd, ctx);
    }
    Ok(())
}

/// A table with the same services and real servers (in the same list order) and nothing else:
/// enough to predict whether commands succeed.
fn config_copy(ipvs: &Ipvs) -> Ipvs {
    let mut copy = Ipvs::new();
    for svc in ipvs.services() {
        let key = svc.config().key;
        // Adding a copy cannot fail: the original passed the same checks.
        let _ = copy.add_service(svc.config().clone());
        let dests: Vec<_> = ipvs.dest_list(svc).iter().map(|(_, d)| d).collect();
        for d in dests.into_iter().rev() {
            let mut c = crate::model::DestConfig::new(d.addr);
            c.port = Some(d.port);
            c.fwd = d.fwd;
            c.weight = d.weight;
            c.u_threshold = d.u_threshold;
            c.l_threshold = d.l_threshold;
            c.tunnel = d.tunnel;
            let _ = copy.add_dest(&key, &c);
        }
    }
    copy
}
