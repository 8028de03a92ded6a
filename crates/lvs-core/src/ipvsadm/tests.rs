//! ipvsadm compatibility: seed command lines, error messages and exit codes, exact output bytes.

use super::*;
use crate::ipvs::Ipvs;
use crate::model::{FwdMethod, Protocol, ServiceKey};
use crate::time::Instant;

fn ctx() -> Context<'static> {
    Context { program: "ipvsadm", now: Instant::ZERO, names: &NoNames, conn_tab_size: 4096, stdin: None }
}

fn sh(ipvs: &mut Ipvs, line: &str) -> Outcome {
    let args: Vec<&str> = line.split_whitespace().collect();
    run(ipvs, &args, &ctx())
}

fn ok(ipvs: &mut Ipvs, line: &str) -> String {
    let o = sh(ipvs, line);
    assert_eq!((o.status, o.stderr.as_str()), (0, ""), "{line}");
    o.stdout
}

fn err(ipvs: &mut Ipvs, line: &str) -> (i32, String) {
    let o = sh(ipvs, line);
    assert!(o.stdout.is_empty(), "{line}: {}", o.stdout);
    (o.status, o.stderr.trim_end().to_owned())
}

#[test]
fn seed_dr_tun_listing_is_byte_identical() {
    let mut ipvs = Ipvs::new();
    // Seed 000 (LVS-TUN article): VIP 10.10.36.11 with one DR and one TUN real server.
    ok(&mut ipvs, "-At 10.10.36.11:80 -s rr");
    ok(&mut ipvs, "-at 10.10.36.11:80 -r 10.10.36.4:80 -g -w 100");
    ok(&mut ipvs, "-at 10.10.36.11:80 -r 10.10.36.7:80 -i -w 100");
    assert_eq!(
        ok(&mut ipvs, "-Ln"),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port Scheduler Flags\n  \
         -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n\
         TCP  10.10.36.11:80 rr\n  \
         -> 10.10.36.4:80                Route   100    0          0         \n  \
         -> 10.10.36.7:80                Tunnel  100    0          0         \n"
    );
    assert_eq!(
        ok(&mut ipvs, "-Ln --stats"),
        "IP Virtual Server version 1.2.1 (size=4096)\n\
         Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n  \
         -> RemoteAddress:Port\n\
         TCP  10.10.36.11:80                      0        0        0        0        0\n  \
         -> 10.10.36.4:80                       0        0        0        0        0\n  \
         -> 10.10.36.7:80                       0        0        0        0        0\n"
    );
    assert_eq!(
        ok(&mut ipvs, "-S -n"),
        "-A -t 10.10.36.11:80 -s rr\n\
         -a -t 10.10.36.11:80 -r 10.10.36.4:80 -g -w 100\n\
         -a -t 10.10.36.11:80 -r 10.10.36.7:80 -i -w 100 --tun-type ipip\n"
    );
}

#[test]
fn seed_persistence_and_fwmark_commands() {
    let mut ipvs = Ipvs::new();
    // Seed 003: port-0 persistence, per-port persistence and fwmark grouping.
    for line in [
        "-A -t 192.168.10.101:0 -s rr -p 1800",
        "-a -t 192.168.10.101:0 -r 192.168.10.200 -g",
        "-a -t 192.168.10.101:0 -r 192.168.10.201 -g",
        "-A -t 192.168.10.101:80 -s rr -p 1800",
        "-A -t 192.168.10.101:22 -s rr -p 1800",
        "-a -t 192.168.10.101:22 -r 192.168.10.201 -g",
        "-A -f 10 -s rr -p 1800",
        "-a -f 10 -r 192.168.10.200",
        "-a -f 10 -r 192.168.10.201",
    ] {
        ok(&mut ipvs, line);
    }
    assert_eq!(
        ok(&mut ipvs, "-S -n"),
        "-A -t 192.168.10.101:0 -s rr -p 1800\n\
         -a -t 192.168.10.101:0 -r 192.168.10.200:0 -g -w 1\n\
         -a -t 192.168.10.101:0 -r 192.168.10.201:0 -g -w 1\n\
         -A -t 192.168.10.101:22 -s rr -p 1800\n\
         -a -t 192.168.10.101:22 -r 192.168.10.201:22 -g -w 1\n\
         -A -t 192.168.10.101:80 -s rr -p 1800\n\
         -A -f 10 -s rr -p 1800\n\
         -a -f 10 -r 192.168.10.200:0 -g -w 1\n\
         -a -f 10 -r 192.168.10.201:0 -g -w 1\n"
    );
    let list = ok(&mut ipvs, "-L -n");
    assert!(list.contains("\nTCP  192.168.10.101:0 rr persistent 1800\n"), "{list}");
    assert!(list.contains("\nFWM  10 rr persistent 1800\n"), "{list}");
    // ipvsadm older than 1.31 listed servers unsorted (newest first), as seed 003 shows; --nosort.
    let unsorted = ok(&mut ipvs, "-L -n --nosort -t 192.168.10.101:0");
    let order: Vec<&str> = unsorted.lines().filter(|l| l.starts_with("  -> 192")).collect();
    assert!(order[0].contains("192.168.10.201:0") && order[1].contains("192.168.10.200:0"), "{unsorted}");
}

#[test]
fn listing_variants_match_printf_formats() {
    let mut ipvs = Ipvs::new();
    ok(&mut ipvs, "-A -u [2001:db8::1]:53 -s sh -b sh-port,sh-fallback");
    ok(&mut ipvs, "-a -u [2001:db8::1]:53 -r [2001:db8::10]:5353 -m -w 2 -x 100 -y 50");
    ok(&mut ipvs, "-A -t 10.0.0.1:443 -s wlc -p -M 255.255.255.0");
    ok(&mut ipvs, "-a -t 10.0.0.1:443 -r 10.0.0.9 -i --tun-type gue --tun-port 6080 --tun-csum");
    ok(&mut ipvs, "-A -f 7 -6 -s rr -o");
    let all = ok(&mut ipvs, "-L -n");
    assert!(all.contains("\nTCP  10.0.0.1:443 wlc persistent 360 mask 255.255.255.0\n"), "{all}");
    assert!(all.contains("\nUDP  [2001:db8::1]:53 sh (sh-fallback,sh-port)\n"), "{all}");
    assert!(
        all.contains("\n  -> [2001:db8::10]:5353          Masq    2      0          0         \n"),
        "{all}"
    );
    assert!(all.contains("\nFWM  7 IPv6 rr ops\n"), "{all}");
    let thr = ok(&mut ipvs, "-L -n --thresholds -u [2001:db8::1]:53");
    assert_eq!(
        thr,
        "Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n  \
         -> RemoteAddress:Port\n\
         UDP  [2001:db8::1]:53 sh (sh-fallback,sh-port)\n  \
         -> [2001:db8::10]:5353          100        50         0          0         \n"
    );
    let tun = ok(&mut ipvs, "-L -n --tun-info -t 10.0.0.1:443");
    assert!(
        tun.contains(
            "  -> 10.0.0.9:443                 Tunnel  gue:6080:+c   1      0          0         \n"
        ),
        "{tun}"
    );
    let pc = ok(&mut ipvs, "-L -n --persistent-conn -t 10.0.0.1:443");
    assert!(
        pc.ends_with("  -> 10.0.0.9:443                 1         0           0          0         \n"),
        "{pc}"
    );
    assert_eq!(
        ok(&mut ipvs, "-S -n"),
        "-A -t 10.0.0.1:443 -s wlc -p 360 -M 255.255.255.0\n\
         -a -t 10.0.0.1:443 -r 10.0.0.9:443 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum\n\
         -A -u [2001:db8::1]:53 -s sh -b sh-fallback,sh-port\n\
         -a -u [2001:db8::1]:53 -r [2001:db8::10]:5353 -m -w 2\n\
         -A -f 7 -6 -s rr -o\n"
    );
}

#[test]
fn large_numbers_are_abbreviated_unless_exact() {
    let mut out = String::new();
    for v in [99_999_999u64, 100_000_000, 1_234_567_890, 123_456_789_012, 123_456_789_012_345] {
        super::format::tests_support::largenum(&mut out, v, false);
        out.push('|');
    }
    assert_eq!(out, " 99999999|  100000K|    1234M|     123G|     123T|");
    let mut exact = String::new();
    super::format::tests_support::largenum(&mut exact, 1_234_567_890, true);
    super::format::tests_support::largenum(&mut exact, 5, true);
    assert_eq!(exact, " 1234567890        5");
}

#[test]
fn usage_errors_and_exit_codes_are_ipvsadm_s() {
    let mut ipvs = Ipvs::new();
    let try_help = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.";
    assert_eq!(err(&mut ipvs, "-n -L"), (255, try_help.into()), "the command must come first");
    assert_eq!(err(&mut ipvs, "--bogus"), (255, try_help.into()));
    assert_eq!(err(&mut ipvs, "-L --bogus"), (255, "--bogus: unknown option".into()));
    assert_eq!(err(&mut ipvs, "-A -t"), (255, "-t: missing argument".into()));
    assert_eq!(
        err(&mut ipvs, "-A -t 10.0.0.1:0 -s rr"),
        (2, "Zero port specified for non-persistent service".into())
    );
    assert_eq!(
        err(&mut ipvs, "-A -t 10.0.0.1:80 -o"),
        (2, "One-Packet Scheduling is only for UDP virtual services".into())
    );
    assert_eq!(
        err(&mut ipvs, "-A -s rr"),
        (2, "You need to supply the 'service-address' option for the 'add-service' command".into())
    );
    assert_eq!(
        err(&mut ipvs, "-D -t 10.0.0.1:80 -s rr"),
        (2, "Illegal 'scheduler' option with the 'delete-service' command".into())
    );
    assert_eq!(
        err(&mut ipvs, "-L -c --timeout"),
        (2, "The option 'timeout' conflicts with the 'connection' option in the 'list' command".into())
    );
    assert_eq!(err(&mut ipvs, "-L -c --stats"), (2, "options conflicts in the list command".into()));
    assert_eq!(
        err(&mut ipvs, "-A -t 10.0.0.1:80 -s rr -s wrr"),
        (2, "multiple 'scheduler' options specified".into())
    );
    assert_eq!(err(&mut ipvs, "-A -t 10.0.0.1:80 -L"), (2, "invalid option `-L'".into()));
    assert_eq!(err(&mut ipvs, "--set 1 2"), (2, "--set option requires 3 timeout values".into()));
    assert_eq!(err(&mut ipvs, "-A -t 10.0.0.1:80 extra"), (2, "unexpected argument extra".into()));
    assert_eq!(err(&mut ipvs, "-A -t 10.0.0.1:80 -p 0"), (2, "invalid timeout value `0' specified".into()));
    assert_eq!(
        err(&mut ipvs, "-A -t 300.0.0.1:80"),
        (2, "illegal virtual server address[:port] specified".into())
    );
    assert_eq!(err(&mut ipvs, "-A -6 -f 1"), (2, "-6 used before -f".into()));
    assert_eq!(
        err(&mut ipvs, "-a -t 192.168.10.100:80 -r [::1]"),
        (2, "illegal real server address[:port] specified".into()),
        "brackets need a port"
    );
    assert_eq!(
        err(&mut ipvs, "-A -t 10.0.0.1:80 -s rr -b mh-port"),
        (2, "incompatible scheduler flag `mh-port'".into())
    );
    assert_eq!(
        err(&mut ipvs, "-A -t 10.0.0.1:80 -b sh-port"),
        (2, "incompatible scheduler flag `sh-port'".into()),
        "default wlc"
    );
    // A seed typo: an en dash instead of "-m" is a stray argument for ipvsadm too.
    ok(&mut ipvs, "-A -t 192.168.10.100:80 -s rr");
    assert_eq!(
        err(&mut ipvs, "-a -t 192.168.10.100:80 -r 192.168.1.101 \u{2013}m"),
        (2, "unexpected argument \u{2013}m".into())
    );
    assert_eq!(
        err(&mut ipvs, "-a -t 192.168.10.100:80 -r 192.168.1.101 -w 65536"),
        (2, "illegal weight specified".into())
    );
    assert_eq!(
        err(&mut ipvs, "-a -t 192.168.10.100:80 -r 192.168.1.101 -m --tun-type gre"),
        (2, "Tunnel options conflict with forward method".into())
    );
    assert_eq!(
        err(&mut ipvs, "-a -t 192.168.10.100:80 -r 192.168.1.101 -i --tun-type gue"),
        (2, "You need to supply the 'tun-port' option for the 'gue' tunnel type".into())
    );
    assert_eq!(
        err(&mut ipvs, "-a -t 192.168.10.100:80 -r ::1 -m"),
        (2, "Different address family is allowed only for tunneling servers".into())
    );
    // Table errors: ipvs_strerror text, exit 255.
    ok(&mut ipvs, "-a -t 192.168.10.100:80 -r 192.168.1.101 -m");
    assert_eq!(
        err(&mut ipvs, "-a -t 192.168.10.100:80 -r 192.168.1.101 -m"),
        (255, "Destination already exists".into())
    );
    assert_eq!(err(&mut ipvs, "-A -t 192.168.10.100:80"), (255, "Service already exists".into()));
    assert_eq!(err(&mut ipvs, "-D -t 192.168.10.9:80"), (255, "No such service".into()));
    assert_eq!(err(&mut ipvs, "-d -t 192.168.10.9:80 -r 1.2.3.4"), (255, "Service not defined".into()));
    assert_eq!(err(&mut ipvs, "-e -t 192.168.10.100:80 -r 1.2.3.4"), (255, "No such destination".into()));
    assert_eq!(
        err(&mut ipvs, "-A -t 192.168.10.9:80 -s bogus"),
        (255, "Scheduler or persistence engine not found".into())
    );
    assert_eq!(err(&mut ipvs, "-L -t 192.168.10.9:80"), (1, "No such service".into()));
    // None of the failures changed the table.
    assert_eq!(
        ok(&mut ipvs, "-S -n"),
        "-A -t 192.168.10.100:80 -s rr\n-a -t 192.168.10.100:80 -r 192.168.1.101:80 -m -w 1\n"
    );
}

#[test]
fn option_spellings_and_defaults() {
    let p = |line: &str| parse("ipvsadm", &line.split_whitespace().collect::<Vec<_>>()).unwrap();
    let Command::AddService(c) = p("--add-service --tcp-service=10.0.0.1:80 --persistent") else { panic!() };
    assert_eq!((c.scheduler.as_str(), c.persistent), ("wlc", Some(360)));
    let Command::AddService(c) = p("-At 10.0.0.1:80 -p1800 -srr") else { panic!() };
    assert_eq!((c.scheduler.as_str(), c.persistent), ("rr", Some(1800)));
    let Command::AddService(c) = p("-A -t 10.0.0.1:80 -p -s rr") else { panic!() };
    assert_eq!(c.persistent, Some(360), "-p followed by an option takes no value");
    let Command::AddDest(k, d) = p("-a -t 10.0.0.1:80 -r 192.168.0.2:8080 -g -w 3") else { panic!() };
    assert_eq!(k, ServiceKey::Addr { protocol: Protocol::Tcp, addr: "10.0.0.1".parse().unwrap(), port: 80 });
    assert_eq!((d.port, d.fwd, d.weight), (Some(80), FwdMethod::Route, 3), "DR forces the service port");
    let Command::AddDest(_, d) = p("-a -t 10.0.0.1:80 -r 192.168.0.2:8080 -m") else { panic!() };
    assert_eq!(d.port, Some(8080));
    let Command::AddDest(_, d) = p("-a -t 10.0.0.1:80 -r 192.168.0.2") else { panic!() };
    assert_eq!((d.port, d.fwd, d.weight), (Some(80), FwdMethod::Route, 1));
    assert_eq!(
        p("-Ln"),
        Command::List(ListOptions {
            format: Format { numeric: true, ..Format::default() },
            ..Default::default()
        })
    );
    assert_eq!(p("--set 900 120 300"), Command::SetTimeout { tcp: 900, tcpfin: 120, udp: 300 });
    let Command::StartDaemon(dc) = p("--start-daemon master --syncid 5") else { panic!() };
    assert_eq!((dc.mcast_interface.as_str(), dc.syncid, dc.role), ("eth0", 5, SyncRole::Master));
    let Command::AddService(c) = p("-A -f 1 -6 -M 64 -p") else { panic!() };
    assert_eq!(c.netmask.to_string(), "64");
    let Command::AddService(c) = p("-A -t 10.0.0.1:80 -p -M 0xffffff00") else { panic!() };
    assert_eq!(c.netmask.to_string(), "255.255.255.0", "inet_aton forms");
    assert_eq!(p("-h"), Command::Help);
    assert_eq!(p("-v"), Command::Version);
}

#[test]
fn restore_is_atomic_and_names_the_bad_line() {
    let mut ipvs = Ipvs::new();
    ok(&mut ipvs, "-A -t 10.0.0.1:80 -s rr");
    let text = "-A -t 10.0.0.2:80 -s wrr\n\n-a -t 10.0.0.2:80 -r 192.168.0.1 -m\nipvsadm -a -t 10.0.0.2:80 -r 192.168.0.1 -m\n";
    let e = restore(&mut ipvs, text, &ctx()).unwrap_err();
    assert_eq!((e.line, e.message.as_str(), e.status), (4, "Destination already exists", 255));
    assert_eq!(ok(&mut ipvs, "-S -n"), "-A -t 10.0.0.1:80 -s rr\n", "nothing applied");
    let e = restore(&mut ipvs, "-A -t 10.0.0.3:80\n-a -t 10.0.0.3:80 -r 1.2.3.4 -w x\n", &ctx()).unwrap_err();
    assert_eq!((e.line, e.message.as_str(), e.status), (2, "illegal weight specified", 2));
    let saved = "-A -t 10.0.0.2:80 -s rr\n-a -t 10.0.0.2:80 -r 192.168.0.1:80 -m -w 1\n-a -t 10.0.0.2:80 -r 192.168.0.2:80 -g -w 5\n";
    restore(&mut ipvs, saved, &ctx()).unwrap();
    assert_eq!(ok(&mut ipvs, "-S -n"), format!("-A -t 10.0.0.1:80 -s rr\n{saved}"));
    // Through the command line too.
    let mut fresh = Ipvs::new();
    let c = Context { stdin: Some(saved), ..ctx() };
    assert_eq!(run(&mut fresh, &["-R"], &c).status, 0);
    assert_eq!(ok(&mut fresh, "-S -n"), saved);
}

#[test]
fn help_version_and_bare_invocation() {
    let mut ipvs = Ipvs::new();
    assert_eq!(ok(&mut ipvs, "-v"), "ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\n");
    let help = ok(&mut ipvs, "--help");
    assert!(help.contains("  ipvsadm -A|E virtual-service [-s scheduler]"));
    let bare = run(&mut ipvs, &[], &ctx());
    assert!(bare.stdout.starts_with("IP Virtual Server version 1.2.1 (size=4096)\n"));
}

#[test]
fn names_are_used_without_numeric() {
    struct Fake;
    impl Names for Fake {
        fn host(&self, a: std::net::IpAddr) -> Option<String> {
            (a.to_string() == "10.0.0.1").then(|| "www.example".into())
        }
        fn service(&self, port: u16, _: Protocol) -> Option<String> {
            (port == 80).then(|| "http".into())
        }
    }
    let mut ipvs = Ipvs::new();
    ok(&mut ipvs, "-A -t 10.0.0.1:80 -s rr");
    ok(&mut ipvs, "-a -t 10.0.0.1:80 -r 10.0.0.2 -g");
    let c = Context { names: &Fake, ..ctx() };
    let out = run(&mut ipvs, &["-L"], &c).stdout;
    assert!(out.contains("\nTCP  www.example:http rr\n  -> 10.0.0.2:http"), "{out}");
    assert_eq!(
        run(&mut ipvs, &["-S"], &c).stdout,
        "-A -t www.example:http -s rr\n-a -t www.example:http -r 10.0.0.2:http -g -w 1\n"
    );
}
