//! Per-verdict and per-reason packet counters (Katran's `XDP_TOTAL` / `PASS` / `DROP` / `TX` stats,
//! one level finer).

macro_rules! counters {
    ($( $(#[$m:meta])* $name:ident ),* $(,)?) => {
        /// Packet counters. Every received frame adds one to exactly one verdict counter: a
        /// `fwd_*` (sent, or parked for neighbour resolution, which also counts `queued`), an
        /// `answered_*`, `to_host` (with one `to_host_*` reason), or a `drop_*` other than
        /// `drop_neigh_failed` (which counts parked packets dropped later); the exception is a
        /// frame whose transmit the sink refused, counted in `tx_ring_full` only. Frames the engine
        /// generates are counted by kind, and everything sent in `tx_frames` / `tx_bytes`.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct Counters {
            $( $(#[$m])* pub $name: u64, )*
        }

        impl Counters {
            /// The counter names, in declaration order.
            pub const NAMES: &'static [&'static str] = &[ $( stringify!($name) ),* ];

            /// `(name, value)` pairs in declaration order.
            pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [ $( (stringify!($name), self.$name) ),* ].into_iter()
            }

            /// The value of the counter named `name`.
            pub fn get(&self, name: &str) -> Option<u64> {
                self.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
            }
        }
    };
}

counters! {
    /// Frames received.
    rx_frames,
    /// Bytes received (whole frames).
    rx_bytes,
    /// Frames sent (forwarded, answers, generated, released from the neighbour queue).
    tx_frames,
    /// Bytes sent.
    tx_bytes,
    /// Frames the sink had no room for (TX ring full).
    tx_ring_full,

    /// Client packets sent to a NAT real server.
    fwd_nat,
    /// Client packets sent to a direct-routing real server.
    fwd_dr,
    /// Client packets tunnelled to a real server (IPIP, GUE or GRE).
    fwd_tunnel,
    /// Client packets forwarded to their original destination (bypass connections).
    fwd_bypass,
    /// NAT replies rewritten to the VIP and sent to the client.
    fwd_nat_reply,
    /// ICMP errors about a connection forwarded to its real server.
    fwd_icmp_in,
    /// ICMP errors from a NAT real server translated and sent to the client.
    fwd_icmp_out,
    /// ICMP errors about a tunnelled packet (addressed to the director, quoting our IPIP, GUE or
    /// GRE packet) re-originated to the client.
    fwd_icmp_tunnel,
    /// Outer IPv4 fragments sent for tunnelled packets without DF that did not fit the path.
    tx_fragments,

    /// ARP requests for a VIP answered.
    answered_arp,
    /// Neighbour solicitations for a VIP answered.
    answered_ns,
    /// ICMP / ICMPv6 echo requests to a VIP answered.
    answered_echo,

    /// Frames handed to the host stack, total.
    to_host,
    /// ... connections to a local real server (`Local` method).
    to_host_local_dest,
    /// ... addressed to one of the director's own addresses, or broadcast / multicast.
    to_host_own,
    /// ... IPVS: not TCP, UDP or SCTP (ICMP other than echo and errors, GRE, ...).
    to_host_unsupported_protocol,
    /// ... IPVS: no connection and no service for it.
    to_host_no_service,
    /// ... IPVS: no connection and not a connection opener.
    to_host_not_schedulable,
    /// ... IPVS: active FTP data (source port 20).
    to_host_ftp_data,
    /// ... IPVS: port-21 service, other port, no server.
    to_host_ftp_service,
    /// ... ICMP errors to a VIP that belong to no connection.
    to_host_icmp_no_conn,
    /// ... ARP and neighbour discovery frames not answered here.
    to_host_neigh,
    /// ... EtherTypes other than IPv4, IPv6 and ARP.
    to_host_other_ethertype,
    /// ... transit packets, with `pass_transit`.
    to_host_transit,

    /// Packets parked until a neighbour answers.
    queued,
    /// Parked packets sent after the answer.
    released,

    /// Too short, inconsistent lengths, bad version, bad options.
    drop_malformed,
    /// IPv4 header, ICMP or (with `verify_l4_checksums`) transport checksum wrong.
    drop_bad_checksum,
    /// Unicast to another MAC (promiscuous capture), or our own frame seen again.
    drop_not_for_us,
    /// Received on an interface index the configuration does not have.
    drop_unknown_interface,
    /// VLAN tag different from the interface's.
    drop_vlan_mismatch,
    /// IPv4 fragments and IPv6 packets with a fragment header (no reassembly).
    drop_fragment,
    /// TTL / hop limit would reach 0 (ICMP time exceeded sent).
    drop_ttl_exceeded,
    /// Larger than the path MTU with DF / IPv6 (ICMP fragmentation needed / packet too big sent),
    /// or too big to fragment.
    drop_too_big,
    /// No route to the destination.
    drop_no_route,
    /// Neighbour queue for the next hop full, or too many addresses being resolved.
    drop_neigh_queue_full,
    /// Parked packets dropped because the neighbour never answered.
    drop_neigh_failed,
    /// Transit packets that are not NAT replies (the director is not a router).
    drop_transit,
    /// IPVS: the connection's real server was deleted.
    drop_dest_unavailable,
    /// IPVS: the connection table is full.
    drop_conn_table_full,
    /// IPVS: inconsistent packet (address families differ).
    drop_ipvs_malformed,
    /// IPVS: a new connection to a `--pe sip` service without a usable SIP Call-ID.
    drop_pe_no_data,
    /// IPVS rejected (no real server available, port-0 service not persistent): ICMP port
    /// unreachable sent.
    drop_rejected,
    /// Unsupported packets to a VIP that are dropped rather than passed (ICMP errors quoting
    /// non-first fragments, ...).
    drop_unsupported,
    /// Packets to a managed address (VRRP VIP) while this director is not its master.
    drop_standby,

    /// ICMP / ICMPv6 errors the director generated: port unreachable.
    icmp_port_unreachable_sent,
    /// ... time exceeded.
    icmp_time_exceeded_sent,
    /// ... fragmentation needed / packet too big.
    icmp_too_big_sent,
    /// ARP requests and neighbour solicitations sent (first, retries and refresh probes).
    neigh_solicit_sent,
    /// Gratuitous ARPs and unsolicited neighbour advertisements sent by `announce`.
    neigh_announce_sent,
    /// Neighbour entries created or refreshed from ARP / ND.
    neigh_learned,
    /// Neighbour answers not learned because the table was full.
    neigh_table_full,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_line_up() {
        let c = Counters { rx_frames: 3, drop_fragment: 2, ..Counters::default() };
        assert_eq!(c.get("rx_frames"), Some(3));
        assert_eq!(c.get("drop_fragment"), Some(2));
        assert_eq!(c.get("nope"), None);
        assert_eq!(c.iter().count(), Counters::NAMES.len());
        assert_eq!(c.iter().map(|(_, v)| v).sum::<u64>(), 5);
    }
}
