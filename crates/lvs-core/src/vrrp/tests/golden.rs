//! Golden bytes: every VRRP message in the five keepalived captures parses and re-emits byte for
//! byte, checksums included; the malformed ones are refused; the injected invalid adverts are
//! dropped for the reason keepalived logged.

use super::*;
use crate::vrrp::{DropReason, State};
use crate::wire::vrrp::{Packet, MCAST_V4};
use crate::wire::Error;

fn checksum(msg: &[u8]) -> u16 {
    u16::from_be_bytes([msg[6], msg[7]])
}

/// Parses every VRRP message of a capture and re-emits it; returns the frame numbers that did
/// not parse.
fn round_trip(file: &[u8]) -> Vec<usize> {
    let mut refused = Vec::new();
    for (c, m) in vrrp_frames(file) {
        let packet = Packet::new_checked(m.payload.as_slice()).expect("header");
        match Repr::parse(&packet, m.src, m.dst) {
            Ok(repr) => {
                assert_eq!(repr.buffer_len(), m.payload.len(), "frame {}", c.number);
                let mut buf = vec![0xa5; repr.buffer_len()];
                repr.emit(&mut buf, m.src, m.dst);
                assert_eq!(buf, m.payload, "frame {} re-emits keepalived's bytes", c.number);
            }
            Err(Error) => refused.push(c.number),
        }
    }
    refused
}

#[test]
fn every_captured_advert_round_trips_byte_for_byte() {
    // The v2 capture's injected invalid adverts are still well-formed messages.
    assert_eq!(round_trip(V2_PASS), Vec::<usize>::new());
    // Frames 20 and 42 were injected with a v3 checksum that leaves out the pseudo-header.
    assert_eq!(round_trip(V3_V4), vec![20, 42]);
    assert_eq!(round_trip(V2_UNICAST), Vec::<usize>::new());
    assert_eq!(round_trip(V3_V6), Vec::<usize>::new());
    assert_eq!(round_trip(V2_TIEBREAK), Vec::<usize>::new());
    assert_eq!(vrrp_frames(V2_PASS).len(), 128);
    assert_eq!(vrrp_frames(V3_V4).len(), 54);
}

#[test]
fn keepalived_checksums_from_the_reference() {
    let v2 = vrrp_frames(V2_PASS);
    assert_eq!(checksum(&v2[0].1.payload), 0xc3f1);
    let last = &v2.last().expect("frames").1;
    assert_eq!(
        last.payload,
        [
            0x21, 0x33, 0x00, 0x02, 0x01, 0x01, 0x59, 0xf2, 0x0a, 0xc8, 0x00, 0x64, 0x0a, 0xc8, 0x00, 0x65,
            0x73, 0x65, 0x63, 0x72, 0x65, 0x74, 0x31, 0x32
        ]
    );
    assert_eq!(checksum(&vrrp_frames(V3_V4)[0].1.payload), 0x54ce);
    assert_eq!(checksum(&vrrp_frames(V2_UNICAST)[0].1.payload), 0xd487);
    assert_eq!(checksum(&vrrp_frames(V3_V6)[0].1.payload), 0x98f5);
}

#[test]
fn instances_build_keepalived_adverts() {
    // The instance's own advert for each fixture config equals keepalived's first advert.
    let cases =
        [(ka_v2(), V2_PASS, 150), (ka_v3(), V3_V4, 120), (ka_uc(), V2_UNICAST, 255), (ka_v6(), V3_V6, 100)];
    for (cfg, file, prio) in cases {
        let (c, m) = vrrp_frames(file).into_iter().next().expect("a frame");
        let vi = Instance::new(cfg).expect("config");
        assert_eq!(vi.advert(prio, m.dst), m.payload, "frame {} of {}", c.number, vi.config().name);
    }
    // Priority 0 on shutdown: 59f2 (v2) and ccce (v3 over the pseudo-header).
    let vi = Instance::new(ka_v2()).expect("config");
    assert_eq!(checksum(&vi.advert(0, IpAddr::V4(MCAST_V4))), 0x59f2);
    let vi = Instance::new(ka_v3()).expect("config");
    assert_eq!(checksum(&vi.advert(0, IpAddr::V4(MCAST_V4))), 0xccce);
}

#[test]
fn v3_checksum_worked_example_and_without_pseudo_header() {
    // keepalived.md §3.3: 0x54ce with the pseudo-header, 0x402a without.
    let repr = Repr {
        version: Version::V3,
        vrid: 52,
        priority: 120,
        auth: Auth::None,
        advert_int_cs: 50,
        addrs: vec![ip("10.200.0.110"), ip("10.200.0.111")],
    };
    let bytes = repr.to_bytes(ip("10.200.0.1"), ip("224.0.0.18"));
    assert_eq!(checksum(&bytes), 0x54ce);
    let mut old = bytes.clone();
    old[6..8].copy_from_slice(&0x402a_u16.to_be_bytes());
    assert_eq!(crate::wire::checksum::data(&old), 0xffff, "the message alone sums to 0x402a's complement");
    let packet = Packet::new_checked(old.as_slice()).expect("header");
    assert_eq!(Repr::parse(&packet, ip("10.200.0.1"), ip("224.0.0.18")), Err(Error));
    // The pseudo-header's destination matters: a unicast copy has another checksum.
    let unicast = repr.to_bytes(ip("10.200.0.1"), ip("10.200.0.2"));
    assert_ne!(checksum(&unicast), 0x54ce);
    let packet = Packet::new_checked(unicast.as_slice()).expect("header");
    assert!(Repr::parse(&packet, ip("10.200.0.1"), ip("10.200.0.2")).is_ok());
    assert!(Repr::parse(&packet, ip("10.200.0.1"), ip("224.0.0.18")).is_err());
}

#[test]
fn parse_refuses_malformed_messages() {
    let good = vrrp_frames(V2_PASS)[0].1.clone();
    let parse = |bytes: &[u8], src: &str| {
        let packet = Packet::new_checked(bytes).map_err(|_| Error)?;
        Repr::parse(&packet, ip(src), ip("224.0.0.18"))
    };
    assert!(parse(&good.payload, "10.200.0.1").is_ok());
    assert!(parse(&good.payload[..7], "10.200.0.1").is_err(), "shorter than the header");
    assert!(parse(&good.payload[..23], "10.200.0.1").is_err(), "auth data cut");
    let mut longer = good.payload.clone();
    longer.push(0);
    assert!(parse(&longer, "10.200.0.1").is_err(), "a trailing byte");
    let mut bad = good.payload.clone();
    bad[8] ^= 1;
    assert!(parse(&bad, "10.200.0.1").is_err(), "checksum");
    let mut bad = good.payload.clone();
    bad[0] = 0x22; // type 2
    assert!(parse(&bad, "10.200.0.1").is_err(), "not an advertisement");
    let mut bad = good.payload.clone();
    bad[4] = 3; // auth type 3
    assert!(parse(&bad, "10.200.0.1").is_err(), "unknown auth type");
    assert!(parse(&good.payload, "fe80::1").is_err(), "v2 over IPv6 / family mismatch");
}

/// The README's frame guide: frames 155-169 of the v2 capture, fed to a MASTER configured as
/// `ka_v2.conf`, each dropped with keepalived's log line (VRID 52 silently).
#[test]
fn injected_invalid_adverts_are_dropped_for_keepalived_reasons() {
    let (mut vi, _) = started(ka_v2(), 0);
    vi.poll(at(3414));
    assert_eq!(vi.state(), State::Master);
    let frames = vrrp_frames(V2_PASS);
    let cases: [(usize, Option<&str>, DropReason); 8] = [
        (155, Some("(VI_1) invalid TTL/HL. Received 64 and expect 255"), DropReason::Ttl),
        (157, Some("(VI_1) received an invalid passwd!"), DropReason::Password),
        (159, Some("(VI_1) received a 0 auth, expecting 1!"), DropReason::AuthMismatch),
        (161, Some("(VI_1) advertisement interval mismatch mine=1 sec rcv'd=2 sec"), DropReason::Interval),
        (163, Some("(VI_1) received an unexpected ip number count 1, expected 2!"), DropReason::AddrCount),
        (
            165,
            Some("(VI_1) ip address associated with VRID 51 not present in MASTER advert : 10.200.0.101"),
            DropReason::Vips,
        ),
        (167, Some("(VI_1) wrong version. Received 3 and expect 2"), DropReason::Version),
        (169, None, DropReason::OtherVrid),
    ];
    let mut now = 4000;
    for (number, log, reason) in cases {
        let (_, m) = frames.iter().find(|(c, _)| c.number == number).expect("frame in capture");
        let before = vi.counters().dropped(reason);
        now += 100;
        let actions = vi.receive(at(now), &m.received());
        assert_eq!(logs(&actions), log.into_iter().collect::<Vec<_>>(), "frame {number}");
        assert!(sends(&actions).is_empty(), "frame {number}: no reaction");
        assert_eq!(vi.counters().dropped(reason), before + 1, "frame {number}");
        assert_eq!(vi.state(), State::Master, "frame {number}: every one is prio 200 but invalid");
    }
    assert_eq!(vi.counters().adverts_received, 1, "only the VIP-mismatch one passed the checksum stage");
}

#[test]
fn v3_advert_without_pseudo_header_is_dropped() {
    let (mut vi, _) = started(ka_v3(), 0);
    vi.poll(at(1765));
    assert_eq!(vi.state(), State::Master);
    let frames = vrrp_frames(V3_V4);
    for number in [20, 42] {
        let (_, m) = frames.iter().find(|(c, _)| c.number == number).expect("frame");
        let actions = vi.receive(at(2000), &m.received());
        assert_eq!(logs(&actions), ["(VI_3) Invalid VRRPv3 checksum"]);
        assert_eq!(vi.state(), State::Master);
    }
    assert_eq!(vi.counters().dropped(DropReason::Checksum), 2);
    // A v3 advert to a v2 instance is refused on the version.
    let (mut v2, _) = started(ka_v2(), 0);
    let (_, m) = frames.iter().find(|(c, _)| c.number == 22).expect("frame");
    let mut m = m.clone();
    m.payload[1] = 51;
    let actions = v2.receive(at(10), &m.received());
    assert_eq!(logs(&actions), ["(VI_1) wrong version. Received 3 and expect 2"]);
    assert_eq!(v2.counters().dropped(DropReason::Version), 1);
}
