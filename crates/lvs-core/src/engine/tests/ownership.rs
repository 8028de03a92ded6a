//! Managed addresses (VRRP VIPs): answered and balanced only while claimed, announced in
//! keepalived's GARP form.

use super::*;
use crate::conn::tcp::flags;
use crate::wire::arp::Operation;
use crate::wire::{ArpPacket, ArpRepr};
use std::net::Ipv4Addr;

fn who_has(target: &str) -> Vec<u8> {
    let repr = ArpRepr {
        operation: Operation::Request,
        source_hardware_addr: R0,
        source_protocol_addr: "10.0.0.254".parse().expect("v4"),
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target.parse::<Ipv4Addr>().expect("v4"),
    };
    let mut f = vec![0u8; 42];
    EthernetRepr {
        src_addr: R0,
        dst_addr: EthernetAddress::BROADCAST,
        ethertype: EtherType::Arp,
        vlan: None,
    }
    .emit(&mut EthernetFrame::new_unchecked(&mut f[..]));
    repr.emit(&mut ArpPacket::new_unchecked(&mut f[14..]));
    f
}

fn syn_to(vip: &str, sport: u16) -> Vec<u8> {
    Pkt::v4(CLIENT4, vip).eth(R0, D0).tcp(sport, 80).flags(flags::SYN).wire()
}

fn dr_engine() -> Engine {
    engine(ipvs_with(Protocol::Tcp, VIP4, 80, &[(RS1_4, None, FwdMethod::Route)]))
}

#[test]
fn a_managed_vip_is_served_only_while_claimed() {
    let mut e = dr_engine();
    let vip = ip(VIP4);
    e.set_vip_ownership(&[vip], &[]);
    assert!(e.vips().is_empty(), "a backup's VIP is not claimed, service or not");
    let (o, out) = run(&mut e, 1, &who_has(VIP4), T0);
    assert_eq!(o, Outcome::ToHost, "ARP for a standby VIP is not answered");
    assert!(out.iter().all(|f| f.to_host));
    let (o, out) = run(&mut e, 1, &syn_to(VIP4, 40000), T0);
    assert_eq!(o, Outcome::Dropped(DropCause::Standby));
    assert!(out.is_empty());
    assert_eq!(e.counters().drop_standby, 1);
    assert!(e.ipvs().connections(T0).is_empty(), "nothing scheduled while standby");

    // MASTER: claimed, answered and balanced.
    e.set_vip_ownership(&[vip], &[vip]);
    assert_eq!(e.vips(), &[vip]);
    let (o, _) = run(&mut e, 1, &who_has(VIP4), T0);
    assert_eq!(o, Outcome::Answered);
    let (o, out) = run(&mut e, 1, &syn_to(VIP4, 40001), T0);
    assert_eq!(o, Outcome::Forwarded);
    assert_eq!(single(&out, 2)[..6], RS1.0, "direct routing to the real server");

    // Back to BACKUP.
    e.set_vip_ownership(&[vip], &[]);
    assert_eq!(run(&mut e, 1, &who_has(VIP4), T0).0, Outcome::ToHost);
    assert_eq!(run(&mut e, 1, &syn_to(VIP4, 40002), T0).0, Outcome::Dropped(DropCause::Standby));
    assert_eq!(e.counters().drop_standby, 2);
    assert_eq!(e.counters().answered_arp, 1);

    // Ownership handed back: the service address is a plain VIP again.
    e.set_vip_ownership(&[], &[]);
    assert_eq!(run(&mut e, 1, &who_has(VIP4), T0).0, Outcome::Answered);
}

#[test]
fn a_claimed_address_without_a_service_is_answered() {
    // A NAT gateway VIP: no service uses it, the master still answers for it.
    let mut e = dr_engine();
    let gw = ip("10.0.0.200");
    assert_eq!(run(&mut e, 1, &who_has("10.0.0.200"), T0).0, Outcome::ToHost);
    e.set_vip_ownership(&[gw], &[gw]);
    assert_eq!(e.vips(), &[ip(VIP4), gw]);
    assert_eq!(run(&mut e, 1, &who_has("10.0.0.200"), T0).0, Outcome::Answered);
    // Unmanaged service VIPs are untouched by the ownership of other addresses.
    assert_eq!(run(&mut e, 1, &who_has(VIP4), T0).0, Outcome::Answered);
    assert_eq!(e.managed_vips(), &[gw]);
    assert_eq!(e.claimed_vips(), &[gw]);
}

#[test]
fn a_standby_address_inside_a_mark_rule_prefix_is_not_balanced() {
    let mut cfg = config();
    cfg.mark_rules.push(MarkRule::new("10.0.0.96/28".parse().expect("prefix"), 7));
    let mut ipvs = Ipvs::new();
    let key = ServiceKey::Fwmark { mark: 7, family: crate::model::Family::Inet };
    ipvs.add_service(ServiceConfig::new(key)).expect("service");
    let mut d = DestConfig::new(ip(RS1_4));
    d.fwd = FwdMethod::Route;
    ipvs.add_dest(&key, &d).expect("dest");
    let mut e = engine_with(cfg, ipvs);
    e.set_vip_ownership(&[ip("10.0.0.101")], &[]);
    assert_eq!(run(&mut e, 1, &syn_to("10.0.0.101", 40000), T0).0, Outcome::Dropped(DropCause::Standby));
    assert_eq!(run(&mut e, 1, &syn_to("10.0.0.102", 40000), T0).0, Outcome::Forwarded, "others are");
}

#[test]
fn neighbour_solicitations_for_a_standby_ipv6_vip_are_not_answered() {
    let mut e = engine(ipvs_with(Protocol::Tcp, VIP6, 80, &[]));
    let mut body = ip(VIP6).to_string().parse::<std::net::Ipv6Addr>().expect("v6").octets().to_vec();
    body.extend_from_slice(&[1, 1]);
    body.extend_from_slice(&R0.0);
    let ns = Pkt::v6("2001:db8::fe", "ff02::1:ff00:100")
        .eth(R0, EthernetAddress([0x33, 0x33, 0xff, 0x00, 0x01, 0x00]))
        .ttl(255)
        .icmp(135, 0, 0)
        .payload(&body)
        .wire();
    e.set_vip_ownership(&[ip(VIP6)], &[]);
    assert_eq!(run(&mut e, 1, &ns, T0).0, Outcome::ToHost);
    let mut out = Vec::new();
    assert_eq!(e.announce(&mut out), 0, "standby VIPs are not announced");
    e.set_vip_ownership(&[ip(VIP6)], &[ip(VIP6)]);
    assert_eq!(run(&mut e, 1, &ns, T0).0, Outcome::Answered);
}

#[test]
fn announce_addrs_sends_keepalived_garps_in_order_for_claimed_addresses_only() {
    // keepalived 2.2.7's GARP for 10.200.0.100 from 5a:89:80:ea:fa:da (keepalived.md §3.8).
    let captured: [u8; 42] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x5a, 0x89, 0x80, 0xea, 0xfa, 0xda, 0x08, 0x06, 0x00, 0x01, 0x08,
        0x00, 0x06, 0x04, 0x00, 0x01, 0x5a, 0x89, 0x80, 0xea, 0xfa, 0xda, 0x0a, 0xc8, 0x00, 0x64, 0xff, 0xff,
        0xff, 0xff, 0xff, 0xff, 0x0a, 0xc8, 0x00, 0x64,
    ];
    let m = EthernetAddress([0x5a, 0x89, 0x80, 0xea, 0xfa, 0xda]);
    let cfg = EngineConfig {
        interfaces: vec![
            Interface::new(3, "veth0", m, 1500).with_addr(ip("10.200.0.1"), 24),
            Interface::new(4, "other", mac(9, 9), 1500).with_addr(ip("10.9.0.1"), 24),
        ],
        ..EngineConfig::default()
    };
    let mut e = Engine::new(cfg, Ipvs::new()).expect("engine");
    let (v1, v2) = (ip("10.200.0.100"), ip("10.200.0.101"));
    e.set_vip_ownership(&[v1, v2], &[]);
    let mut out = Vec::new();
    assert_eq!(e.announce_addrs(&mut out, &[v1, v2]), 0, "nothing for addresses not held");
    e.set_vip_ownership(&[v1, v2], &[v1, v2]);
    for _ in 0..2 {
        assert_eq!(e.announce_addrs(&mut out, &[v1, v2]), 2);
    }
    assert_eq!(out.len(), 4);
    let mut second = captured;
    second[31] = 0x65;
    second[41] = 0x65;
    for (i, f) in out.iter().enumerate() {
        assert_eq!(f.ifindex, 3, "only on the VIPs' subnet");
        assert_frame(&f.data, if i % 2 == 0 { &captured } else { &second }, "GARP round");
    }
    assert_eq!(e.counters().neigh_announce_sent, 4);
}
