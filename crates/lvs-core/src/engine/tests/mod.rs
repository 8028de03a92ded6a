//! Engine tests: a two-interface director, golden packets for every forwarding method, neighbour
//! resolution, ICMP, firewall marks and robustness.
//!
//! Topology (all neighbours pre-seeded unless a test says otherwise):
//!
//! ```text
//! clients 198.51.100.7 / 2001:db8:ff::7
//!     |  via router R0 10.0.0.254 / 2001:db8::fe
//! eth0 (1) 10.0.0.1/24, 2001:db8::1/64          VIPs 10.0.0.100, 2001:db8::100
//! eth1 (2) 192.168.1.1/24, 2001:db8:1::1/64     RS1 .11 / ::11, RS2 .12 / ::12
//!     |  via router R1 192.168.1.254 / 2001:db8:1::fe
//! tunnel real servers 172.16.0.5 / 2001:db8:2::5
//! ```

mod builder;
mod golden;
mod icmp;
mod l2;
mod misc;
mod ownership;
mod tunnel;

use super::*;
use crate::model::{DestConfig, FwdMethod, Protocol, ServiceConfig, ServiceKey};
pub(crate) use builder::Pkt;

pub(crate) const fn mac(last: u8, mid: u8) -> EthernetAddress {
    EthernetAddress([2, 0, 0, 0, mid, last])
}

/// The director on eth0 and eth1.
pub(crate) const D0: EthernetAddress = mac(0x01, 0);
pub(crate) const D1: EthernetAddress = mac(0x01, 1);
/// The client-side router.
pub(crate) const R0: EthernetAddress = mac(0xfe, 0);
/// The server-side router.
pub(crate) const R1: EthernetAddress = mac(0xfe, 1);
/// Real servers.
pub(crate) const RS1: EthernetAddress = mac(0x11, 1);
pub(crate) const RS2: EthernetAddress = mac(0x12, 1);

pub(crate) const CLIENT4: &str = "198.51.100.7";
pub(crate) const CLIENT6: &str = "2001:db8:ff::7";
pub(crate) const VIP4: &str = "10.0.0.100";
pub(crate) const VIP6: &str = "2001:db8::100";
pub(crate) const RS1_4: &str = "192.168.1.11";
pub(crate) const RS1_6: &str = "2001:db8:1::11";
pub(crate) const RS2_4: &str = "192.168.1.12";
pub(crate) const TUN4: &str = "172.16.0.5";
pub(crate) const TUN6: &str = "2001:db8:2::5";
pub(crate) const D1_4: &str = "192.168.1.1";
pub(crate) const D1_6: &str = "2001:db8:1::1";

pub(crate) const T0: Instant = Instant::from_millis(1000);

pub(crate) fn ip(s: &str) -> IpAddr {
    s.parse().expect("address")
}

pub(crate) fn config() -> EngineConfig {
    EngineConfig {
        interfaces: vec![
            Interface::new(1, "eth0", D0, 1500)
                .with_addr(ip("10.0.0.1"), 24)
                .with_addr(ip("2001:db8::1"), 64),
            Interface::new(2, "eth1", D1, 1500).with_addr(ip(D1_4), 24).with_addr(ip(D1_6), 64),
        ],
        routes: vec![
            Route::new("0.0.0.0/0".parse().expect("p"), Some(ip("10.0.0.254")), 1),
            Route::new("::/0".parse().expect("p"), Some(ip("2001:db8::fe")), 1),
            Route::new("172.16.0.0/16".parse().expect("p"), Some(ip("192.168.1.254")), 2),
            Route::new("2001:db8:2::/48".parse().expect("p"), Some(ip("2001:db8:1::fe")), 2),
        ],
        ..EngineConfig::default()
    }
}

/// An engine over `ipvs` with every neighbour of the topology known at `T0`.
pub(crate) fn engine_with(cfg: EngineConfig, ipvs: Ipvs) -> Engine {
    let mut e = Engine::new(cfg, ipvs).expect("engine");
    let mut sink = Vec::new();
    for (ifindex, addr, m) in [
        (1, "10.0.0.254", R0),
        (1, "2001:db8::fe", R0),
        (2, "192.168.1.254", R1),
        (2, "2001:db8:1::fe", R1),
        (2, RS1_4, RS1),
        (2, RS1_6, RS1),
        (2, RS2_4, RS2),
        (2, "2001:db8:1::12", RS2),
    ] {
        assert!(e.add_neighbour(ifindex, ip(addr), m, T0, &mut sink));
    }
    assert!(sink.is_empty());
    e
}

pub(crate) fn engine(ipvs: Ipvs) -> Engine {
    engine_with(config(), ipvs)
}

/// A virtual server table with one `rr` service `proto vip:port` and the given real servers
/// `(address, port, method)`.
pub(crate) fn ipvs_with(
    proto: Protocol,
    vip: &str,
    port: u16,
    dests: &[(&str, Option<u16>, FwdMethod)],
) -> Ipvs {
    let mut ipvs = Ipvs::new();
    let key = ServiceKey::Addr { protocol: proto, addr: ip(vip), port };
    let mut cfg = ServiceConfig::new(key);
    cfg.scheduler = "rr".into();
    ipvs.add_service(cfg).expect("service");
    for &(addr, port, fwd) in dests {
        let mut d = DestConfig::new(ip(addr));
        d.port = port;
        d.fwd = fwd;
        ipvs.add_dest(&key, &d).expect("dest");
    }
    ipvs
}

/// Runs one frame; returns the outcome and every frame produced.
pub(crate) fn run(e: &mut Engine, ifindex: u32, frame: &[u8], now: Instant) -> (Outcome, Vec<TxFrame>) {
    let mut out = Vec::new();
    let o = e.process(ifindex, frame, now, &mut out);
    (o, out)
}

/// The single frame sent on the wire, checked to leave `ifindex`.
#[track_caller]
pub(crate) fn single(out: &[TxFrame], ifindex: u32) -> &[u8] {
    let wire: Vec<&TxFrame> = out.iter().filter(|f| !f.to_host).collect();
    assert_eq!(wire.len(), 1, "expected one frame, got {out:?}");
    assert_eq!(wire[0].ifindex, ifindex, "egress interface");
    &wire[0].data
}

/// Byte-for-byte comparison with a readable failure.
#[track_caller]
pub(crate) fn assert_frame(got: &[u8], want: &[u8], what: &str) {
    if got != want {
        let first = got.iter().zip(want).position(|(a, b)| a != b).unwrap_or(got.len().min(want.len()));
        panic!(
            "{what}: frames differ at byte {first} (lengths {} vs {})\n got: {:02x?}\nwant: {:02x?}",
            got.len(),
            want.len(),
            got,
            want
        );
    }
}
