//! Replays of the keepalived captures: the peer's frames go into an [`Instance`] configured like
//! the keepalived that was captured, at their captured times, and the instance must send what
//! keepalived sent (same bytes, within 20 ms) and announce its VIPs when keepalived did.

use super::*;
use crate::vrrp::State;

/// Milliseconds added to capture times so the instance can start before the first frame.
const BASE: u64 = 100_000;
/// Timing tolerance against the capture (keepalived's own scheduling jitter is a few ms).
const TOLERANCE_MS: u64 = 20;

fn t_ms(time_us: u64) -> u64 {
    BASE + (time_us + 500) / 1000
}

enum Event {
    Rx(u64, IpMessage),
    Shutdown(u64),
}

impl Event {
    fn time(&self) -> u64 {
        match self {
            Event::Rx(t, _) | Event::Shutdown(t) => *t,
        }
    }
}

/// Runs timers due up to `until`.
fn drain(vi: &mut Instance, until: u64, out: &mut Vec<(u64, Action)>) {
    for _ in 0..100_000 {
        match vi.next_deadline() {
            Some(d) if d.millis() <= until => {
                out.extend(vi.poll(d).into_iter().map(|a| (d.millis(), a)));
            }
            _ => return,
        }
    }
    panic!("timers never settle");
}

/// Starts `vi` at `start`, feeds the events and runs the timers until `until`.
fn run(vi: &mut Instance, start: u64, mut events: Vec<Event>, until: u64) -> Vec<(u64, Action)> {
    let mut out: Vec<(u64, Action)> = vi.start(at(start)).into_iter().map(|a| (start, a)).collect();
    events.retain(|e| e.time() >= start && e.time() <= until);
    events.sort_by_key(Event::time);
    for e in events {
        drain(vi, e.time(), &mut out);
        let actions = match &e {
            Event::Rx(t, m) => vi.receive(at(*t), &m.received()),
            Event::Shutdown(t) => vi.shutdown(at(*t)),
        };
        out.extend(actions.into_iter().map(|a| (e.time(), a)));
    }
    drain(vi, until, &mut out);
    out
}

/// The peer's frames (every VRRP frame not from `ours`) as receive events.
fn peer_events(file: &[u8], ours: IpAddr) -> Vec<Event> {
    vrrp_frames(file)
        .into_iter()
        .filter(|(_, m)| m.src != ours)
        .map(|(c, m)| Event::Rx(t_ms(c.time_us), m))
        .collect()
}

/// Asserts that the adverts sent are keepalived's frames from `ours` within `[from, until]`.
fn assert_adverts(out: &[(u64, Action)], file: &[u8], ours: IpAddr, from: u64, until: u64) {
    let expected: Vec<(u64, IpAddr, Vec<u8>, usize)> = vrrp_frames(file)
        .into_iter()
        .filter(|(c, m)| m.src == ours && (from..=until).contains(&t_ms(c.time_us)))
        .map(|(c, m)| (t_ms(c.time_us), m.dst, m.payload, c.number))
        .collect();
    let sent: Vec<(u64, IpAddr, &[u8])> = out
        .iter()
        .filter_map(|(t, a)| match a {
            Action::Send { dst, message } => Some((*t, *dst, message.as_slice())),
            _ => None,
        })
        .collect();
    assert!(!expected.is_empty(), "keepalived sent adverts in the window");
    let times = |v: Vec<u64>| v.iter().map(|t| *t as i64 - BASE as i64).collect::<Vec<_>>();
    assert_eq!(
        sent.len(),
        expected.len(),
        "adverts sent at {:?}, keepalived at {:?}",
        times(sent.iter().map(|s| s.0).collect()),
        times(expected.iter().map(|e| e.0).collect())
    );
    for ((t, dst, bytes), (et, edst, ebytes, number)) in sent.iter().zip(&expected) {
        assert_eq!(*bytes, ebytes.as_slice(), "frame {number}: bytes");
        assert_eq!(dst, edst, "frame {number}: destination");
        assert!(
            t.abs_diff(*et) <= TOLERANCE_MS,
            "frame {number}: sent at {} ms, keepalived at {} ms",
            t - BASE,
            et - BASE
        );
    }
}

/// Asserts that the GARP bursts are keepalived's: ARP frames closer than 5 ms form one burst of
/// rounds × VIPs frames.
fn assert_garps(out: &[(u64, Action)], file: &[u8], vips: u32) {
    let mut bursts: Vec<(u64, u32)> = Vec::new();
    let mut last = 0;
    for c in read_pcap(file).into_iter().filter(|c| matches!(c.kind, Kind::Arp)) {
        match bursts.last_mut() {
            Some(b) if c.time_us - last < 5_000 => b.1 += 1,
            _ => bursts.push((t_ms(c.time_us), 1)),
        }
        last = c.time_us;
    }
    let ours: Vec<(u64, u32)> = out
        .iter()
        .filter_map(|(t, a)| match a {
            Action::Garp { rounds } => Some((*t, rounds * vips)),
            _ => None,
        })
        .collect();
    assert!(!bursts.is_empty(), "keepalived sent GARPs");
    assert_eq!(ours.len(), bursts.len(), "GARP bursts {ours:?}, keepalived {bursts:?}");
    for ((t, n), (et, en)) in ours.iter().zip(&bursts) {
        assert_eq!(n, en, "burst at {} ms", et - BASE);
        assert!(t.abs_diff(*et) <= TOLERANCE_MS, "burst at {} ms, keepalived at {} ms", t - BASE, et - BASE);
    }
}

/// The transitions, with times relative to the capture's first frame.
fn transitions(out: &[(u64, Action)]) -> Vec<(i64, State)> {
    out.iter()
        .filter_map(|(t, a)| match a {
            Action::Transition { to, .. } => Some((*t as i64 - BASE as i64, *to)),
            _ => None,
        })
        .collect()
}

fn last_time(file: &[u8]) -> u64 {
    t_ms(read_pcap(file).last().expect("frames").time_us)
}

fn frame_time(file: &[u8], number: usize) -> u64 {
    t_ms(read_pcap(file)[number - 1].time_us)
}

#[test]
fn replay_v2_pass_multicast() {
    let ours = ip("10.200.0.1");
    let mut events = peer_events(V2_PASS, ours);
    let end = last_time(V2_PASS);
    events.push(Event::Shutdown(end)); // frame 208 is the SIGTERM advert
    let mut vi = Instance::new(ka_v2()).expect("config");
    // keepalived started 3.414 s (3 s + 106/256 s) before its first advert (frame 1).
    let out = run(&mut vi, BASE - 3414, events, end);
    assert_adverts(&out, V2_PASS, ours, 0, end);
    assert_garps(&out, V2_PASS, 2);
    let states: Vec<State> = transitions(&out).iter().map(|(_, s)| *s).collect();
    use State::*;
    assert_eq!(states, [Backup, Master, Backup, Master, Backup, Master, Stop]);
    let times: Vec<i64> = transitions(&out).iter().map(|(t, _)| *t).collect();
    // Backup at the first prio-200 advert (31.44 s); master 3.414 s after the last (36.44 s);
    // backup at 50.94 s; master 414 ms after the prio-0 advert at 53.106 s.
    assert_eq!(&times[2..6], [31_442, 39_858, 50_945, 53_520]);
    let logs: Vec<&str> = out
        .iter()
        .filter_map(|(_, a)| if let Action::Log(l) = a { Some(l.as_str()) } else { None })
        .collect();
    for line in [
        "(VI_1) Entering BACKUP STATE (init)",
        "(VI_1) Master received advert from 10.200.0.2 with higher priority 200, ours 150",
        "(VI_1) Received advert from 10.200.0.2 with lower priority 100, ours 150, forcing new election",
        "(VI_1) Backup received priority 0 advertisement",
        "(VI_1) invalid TTL/HL. Received 64 and expect 255",
        "(VI_1) sent 0 priority",
    ] {
        assert!(logs.contains(&line), "missing log line {line:?}");
    }
    assert_eq!(vi.state(), State::Stop);
}

#[test]
fn replay_v3_ipv4_learns_the_masters_interval() {
    let ours = ip("10.200.0.1");
    let mut events = peer_events(V3_V4, ours);
    let end = last_time(V3_V4);
    events.push(Event::Shutdown(end));
    let mut vi = Instance::new(ka_v3()).expect("config");
    // 3 × 0.5 s + 136/256 × 0.5 s = 1765 ms before its first advert.
    let out = run(&mut vi, BASE - 1765, events, end);
    assert_adverts(&out, V3_V4, ours, 0, end);
    let times: Vec<(i64, State)> = transitions(&out);
    // Takeover 3.531 s (3 × 1 s learnt + 136/256 s) after the last prio-200 advert (frame 25).
    let last_peer = (frame_time(V3_V4, 25) - BASE) as i64;
    assert_eq!(times[3], (last_peer + 3531, State::Master));
    let logs: Vec<&str> = out
        .iter()
        .filter_map(|(_, a)| if let Action::Log(l) = a { Some(l.as_str()) } else { None })
        .collect();
    assert!(logs.contains(&"(VI_3) advertisement interval updated from 500ms to 1000ms by new master"));
    assert!(logs.contains(&"(VI_3) changing advert interval from 1000ms to locally configured 500ms"));
    assert!(logs.contains(&"(VI_3) Invalid VRRPv3 checksum"));
}

#[test]
fn replay_v2_unicast_owner() {
    let ours = ip("10.200.0.1");
    let end = last_time(V2_UNICAST);
    let mut vi = Instance::new(ka_uc()).expect("config");
    // Priority 255 with `state BACKUP`: 3 s + 1/256 s.
    let out = run(&mut vi, BASE - 3003, vec![Event::Shutdown(end)], end);
    assert_adverts(&out, V2_UNICAST, ours, 0, end);
}

#[test]
fn replay_v3_ipv6() {
    let ours = ip("fe80::5889:80ff:feea:fada");
    let end = last_time(V3_V6);
    let mut vi = Instance::new(ka_v6()).expect("config");
    // `state MASTER` with priority 100 waits like a backup: 3 s + 156/256 s.
    let out = run(&mut vi, BASE - 3609, vec![], end);
    assert_adverts(&out, V3_V6, ours, 0, end);
}

#[test]
fn replay_tiebreak_both_directions() {
    // 10.200.0.1 (frames 12-13) yields to the same priority from the higher 10.200.0.2 (frame 14).
    let ours = ip("10.200.0.1");
    let start = frame_time(V2_TIEBREAK, 12) - 3609;
    let stop = frame_time(V2_TIEBREAK, 14) + 2000; // it was stopped, silently, before taking over
    let mut vi = Instance::new(ka_eq("10.200.0.1")).expect("config");
    let mut events = peer_events(V2_TIEBREAK, ours);
    events.push(Event::Shutdown(stop));
    let out = run(&mut vi, start, events, stop);
    assert_adverts(&out, V2_TIEBREAK, ours, start, stop);
    assert!(out.iter().any(|(_, a)| *a
        == Action::Log(
            "(VI_EQ) Master received advert from 10.200.0.2 with same priority 100 but higher IP address than ours".into()
        )));

    // 10.200.0.3 (frames 15-20) answers the same priority from the lower 10.200.0.2 (frame 17) with
    // an advert at once and stays MASTER.
    let ours = ip("10.200.0.3");
    let start = frame_time(V2_TIEBREAK, 15) - 3609;
    let end = last_time(V2_TIEBREAK);
    let mut vi = Instance::new(ka_eq("10.200.0.3")).expect("config");
    let mut events = peer_events(V2_TIEBREAK, ours);
    events.retain(|e| e.time() > start);
    events.push(Event::Shutdown(end));
    let out = run(&mut vi, start, events, end);
    assert_adverts(&out, V2_TIEBREAK, ours, start, end);
    assert_eq!(
        transitions(&out).iter().map(|(_, s)| *s).collect::<Vec<_>>(),
        [State::Backup, State::Master, State::Stop]
    );
}
