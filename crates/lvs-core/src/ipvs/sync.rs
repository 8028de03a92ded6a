//! Connection synchronization on the virtual server table: the master records connections and
//! templates after packets as `ip_vs_sync_conn` does, the backup applies received messages as
//! `ip_vs_proc_conn` does. The daemon state and outbox are in [`crate::sync`].

use super::{Fam, Ipvs, CTPL_ASSURED, NO_CONTROL};
use crate::conn::table::{flags as cf, Addr, Entry, V6};
use crate::conn::{ipproto, sctp, tcp, PacketMeta};
use crate::dest::DestId;
use crate::error::Result;
use crate::ipvsadm::{DaemonConfig, SyncRole};
use crate::model::{FwdMethod, ServiceKey};
use crate::sync::{Daemon, SyncStats, SyncSysctl, TEMPLATE_DEFAULT_TIMEOUT};
use crate::time::Instant;
use crate::wire::ipvs_sync::{flags as wf, ConnRepr, Message, Record, Records};
use std::net::IpAddr;

/// What a backup keeps of a record's flags: the kernel's backup mask without the sequence bits
/// (lvs rewrites no payloads, so it never has sequence data to adjust).
const KEEP: u32 = wf::BACKUP_MASK & !wf::SEQ_MASK;

/// TCP states a connection is synchronized in.
fn tcp_synced(s: u8) -> bool {
    matches!(s, tcp::ESTABLISHED | tcp::FIN_WAIT | tcp::CLOSE | tcp::CLOSE_WAIT | tcp::TIME_WAIT)
}

/// SCTP states a connection is synchronized in.
fn sctp_synced(s: u8) -> bool {
    matches!(
        s,
        sctp::ESTABLISHED
            | sctp::SHUTDOWN_SENT
            | sctp::SHUTDOWN_RECEIVED
            | sctp::SHUTDOWN_ACK_SENT
            | sctp::CLOSED
    )
}

/// `ip_vs_sync_conn_needed` without `sync_refresh_period` (lvs keeps it at its default, 0):
/// records `old_state` when the entry is to be sent.
fn needed<A: Addr>(e: &mut Entry<A>, pkts: u32, controlled: bool, s: &SyncSysctl) -> bool {
    let template = e.is_template();
    if !template {
        if s.persist_mode && controlled {
            return false;
        }
        let (synced, established) = match e.proto {
            ipproto::TCP => (tcp_synced(e.state), tcp::ESTABLISHED),
            ipproto::SCTP => (sctp_synced(e.state), sctp::ESTABLISHED),
            _ => (true, u8::MAX),
        };
        if !synced {
            return false;
        }
        let changed = established != u8::MAX && e.state != e.old_state;
        if changed && e.state != established {
            e.old_state = e.state;
            return true;
        }
        if !pkts_match(pkts, false, s) {
            return false;
        }
        e.old_state = e.state;
        return true;
    }
    if !pkts_match(pkts, true, s) {
        return false;
    }
    e.old_state = e.state;
    true
}

/// The packet-count rule: with a period, non-templates at `threshold`, `threshold + period`, …
/// (templates always); without one, only at `threshold`.
fn pkts_match(pkts: u32, template: bool, s: &SyncSysctl) -> bool {
    if s.period > 0 {
        template || pkts % s.period == s.threshold
    } else {
        pkts == s.threshold
    }
}

impl Ipvs {
    /// `--start-daemon`: starts a master or backup sync daemon (`mtu`: the interface MTU, for a
    /// backup's default maxlen). EEXIST "Daemon has already run" when that role runs already.
    pub fn start_daemon(&mut self, cfg: &DaemonConfig, mtu: Option<u32>) -> Result<Daemon> {
        let d = Daemon::resolve(cfg, mtu)?;
        self.sync.start(d.clone())?;
        Ok(d)
    }

    /// `--stop-daemon`: stops it (a master's unsent records are dropped). ESRCH "No daemon is
    /// running" when it does not run.
    pub fn stop_daemon(&mut self, role: SyncRole) -> Result<()> {
        self.sync.stop(role)
    }

    /// Running sync daemons, master first (`ipvsadm -L --daemon`).
    pub fn daemons(&self) -> Vec<Daemon> {
        self.sync.daemons()
    }

    /// The sync sysctls.
    pub fn sync_sysctl(&self) -> &SyncSysctl {
        &self.sync.sysctl
    }

    /// Changes the sync sysctls.
    pub fn sync_sysctl_mut(&mut self) -> &mut SyncSysctl {
        &mut self.sync.sysctl
    }

    /// Sync counters.
    pub fn sync_stats(&self) -> SyncStats {
        self.sync.stats
    }

    /// The next message the master daemon should send at `now`: a full one, or the partly
    /// filled one once it is 2 s old (at once with `flush`). `None` without a master daemon.
    pub fn sync_take(&mut self, now: Instant, flush: bool) -> Option<Vec<u8>> {
        let qlen = self.sync.sysctl.qlen_max;
        let crate::sync::SyncState { master, stats, .. } = &mut self.sync;
        master.as_mut()?.take(now.millis(), flush, qlen, stats)
    }

    /// After a client packet on a stored connection (`id`) or a one-packet one (`None`, never
    /// sent itself), with the master daemon running: sends the connection and then its
    /// template when their rules say so.
    pub(super) fn sync_after_packet<A: Fam>(&mut self, id: Option<u32>, control: u32, now_ms: u64) {
        if let Some(id) = id {
            let pkts = A::table(&self.conns).get(id).aux;
            self.sync_entry::<A>(id, pkts, now_ms);
        }
        if control == NO_CONTROL {
            return;
        }
        let table = A::table_mut(&mut self.conns);
        if !table.live(control).is_some_and(|t| t.is_template()) {
            return;
        }
        let t = table.get_mut(control);
        t.tpl_pkts = t.tpl_pkts.saturating_add(1);
        let pkts = t.tpl_pkts as u32;
        self.sync_entry::<A>(control, pkts, now_ms);
    }

    /// A template kept alive by `expire_later` is announced again (`ip_vs_conn_expire`).
    pub(super) fn sync_kept_template<A: Fam>(&mut self, id: u32, now_ms: u64) {
        if self.sync.master.is_some() {
            let pkts = self.sync.sysctl.threshold;
            self.sync_entry::<A>(id, pkts, now_ms);
        }
    }

    /// Appends one entry to the master's outbox if [`needed`].
    fn sync_entry<A: Fam>(&mut self, id: u32, pkts: u32, now_ms: u64) {
        let Ipvs { conns, dests, sync, sysctl, .. } = self;
        let Some(outbox) = sync.master.as_mut() else { return };
        let table = A::table_mut(conns);
        let controlled = {
            let e = table.get(id);
            !e.is_template()
                && e.control != NO_CONTROL
                && table.live(e.control).is_some_and(|t| t.is_template())
        };
        let e = table.get_mut(id);
        if e.flags & cf::ONE_PACKET != 0 || !needed(e, pkts, controlled, &sync.sysctl) {
            return;
        }
        let e = *e;
        let pe_data = table.pe_data(id);
        let fwmark = match dests.get(e.dest).map(|d| d.service) {
            Some(ServiceKey::Fwmark { mark, .. }) => mark,
            _ => 0,
        };
        let timeout = if e.is_template() { e.control } else { sysctl.timeouts.of(e.proto, e.state) };
        let rec = ConnRepr {
            protocol: e.proto,
            flags: (e.flags & cf::KERNEL_MASK) as u32,
            state: e.state as u16,
            caddr: e.caddr.to_ip(),
            cport: e.cport,
            vaddr: e.vaddr.to_ip(),
            vport: e.vport,
            daddr: e.daddr.to_ip(),
            dport: e.dport,
            fwmark,
            timeout,
            seq: None,
            pe_data,
            pe_name: pe_data.map(|_| crate::pe::SIP.as_bytes()),
        };
        outbox.add(&rec, &sync.sysctl, now_ms, &mut sync.stats);
    }

    /// Applies one received sync message at `now`, as the backup daemon does
    /// (`ip_vs_process_message`): messages of another sync id (when the backup's is not 0) are
    /// ignored; a malformed message, or the rest of one after a malformed record, is dropped and
    /// counted. Each record creates or updates a connection or template bound to the local real
    /// server with the master's state and timeout. Records whose service or server does not exist
    /// here are counted in `conns_no_dest` and not stored (the kernel keeps them unbound, and
    /// binds them on a later update once the server exists). Does nothing without a backup
    /// daemon.
    pub fn sync_apply(&mut self, msg: &[u8], now: Instant) {
        let Some(backup) = self.sync.backup.as_ref() else { return };
        let my_id = backup.syncid;
        self.sync.stats.msgs_received += 1;
        let Ok(m) = Message::new_checked(msg) else {
            self.sync.stats.malformed += 1;
            return;
        };
        if my_id != 0 && m.syncid() != my_id {
            self.sync.stats.syncid_ignored += 1;
            return;
        }
        for rec in Records::new(&m) {
            match rec {
                Ok(Record::Conn(c)) => self.proc_conn(&c, now.millis()),
                Ok(Record::Skipped(_)) => self.sync.stats.conns_rejected += 1,
                Err(_) => {
                    self.sync.stats.malformed += 1;
                    return;
                }
            }
        }
    }

    /// `ip_vs_proc_sync_conn` checks + `ip_vs_proc_conn`.
    fn proc_conn(&mut self, c: &ConnRepr<'_>, now_ms: u64) {
        let flags = (c.flags & KEEP) | wf::SYNC;
        let template = flags & wf::TEMPLATE != 0;
        let valid_state = match c.protocol {
            _ if template => true,
            ipproto::TCP => (c.state as usize) < tcp::STATE_COUNT,
            ipproto::SCTP => (c.state as usize) < sctp::STATE_COUNT,
            ipproto::UDP => c.state == 0,
            _ => false,
        };
        // One-packet entries are never stored; lvs has no client-port-less (FTP) connections.
        if !valid_state || c.flags & (wf::ONE_PACKET | wf::NO_CPORT) != 0 {
            self.sync.stats.conns_rejected += 1;
            return;
        }
        match (c.caddr, c.vaddr, c.daddr) {
            (IpAddr::V4(ca), IpAddr::V4(va), IpAddr::V4(da)) => {
                self.proc_af::<u32>(c, flags, u32::from(ca), u32::from(va), u32::from(da), now_ms)
            }
            (IpAddr::V6(ca), IpAddr::V6(va), IpAddr::V6(da)) => {
                self.proc_af::<V6>(c, flags, ca.octets(), va.octets(), da.octets(), now_ms)
            }
            _ => self.sync.stats.conns_rejected += 1,
        }
    }

    fn proc_af<A: Fam>(&mut self, c: &ConnRepr<'_>, flags: u32, ca: A, va: A, da: A, now_ms: u64) {
        let template = flags & wf::TEMPLATE != 0;
        // Persistence-engine data needs an engine of that name (`ip_vs_conn_fill_param_sync`);
        // only templates are keyed by it.
        let pe = match c.pe_data {
            Some(d) if c.pe_name == Some(crate::pe::SIP.as_bytes()) => Some(d).filter(|_| template),
            Some(_) => {
                self.sync.stats.conns_rejected += 1;
                return;
            }
            None => None,
        };
        let table = A::table(&self.conns);
        let mut found = if let Some(d) = pe {
            table.lookup_template_pe(c.protocol, ca, va, c.vport, d)
        } else if template {
            table.lookup_template(c.protocol, ca, va, c.vport)
        } else {
            table.lookup_in(c.protocol, ca, c.cport, va, c.vport)
        };
        if let Some(id) = found.filter(|_| !template) {
            let e = table.get(id);
            if e.dport != c.dport || e.daddr != da {
                if flags & wf::INACTIVE != 0 {
                    // The expiry notice of a connection the master has already replaced.
                    self.sync.stats.conns_rejected += 1;
                    return;
                }
                self.drop_entry::<A>(id, now_ms);
                found = None;
            }
        }
        let state = if template { c.state as u8 & CTPL_ASSURED } else { c.state as u8 };
        let timeout = match c.timeout {
            0 if template => TEMPLATE_DEFAULT_TIMEOUT,
            0 => self.sysctl.timeouts.of(c.protocol, state),
            t => t.min(crate::model::MAX_TIMEOUT),
        };
        let id = match found {
            Some(id) => {
                let Ipvs { conns, dests, .. } = self;
                let e = A::table_mut(conns).get_mut(id);
                let upd = (wf::INACTIVE) as u16;
                if !template && (e.flags ^ flags as u16) & upd != 0 {
                    if let Some(d) = dests.get_mut(e.dest) {
                        if flags & wf::INACTIVE != 0 {
                            d.activeconns = d.activeconns.saturating_sub(1);
                        } else {
                            d.activeconns += 1;
                        }
                    }
                }
                e.flags = (flags as u16 & upd) | (e.flags & !upd);
                self.sync.stats.conns_updated += 1;
                id
            }
            None => {
                let Some(did) = self.sync_find_dest(c, flags) else {
                    self.sync.stats.conns_no_dest += 1;
                    return;
                };
                match self.sync_new_entry::<A>(c, flags, ca, va, da, did, pe) {
                    Some(id) => id,
                    None => {
                        self.conns.refused += 1;
                        self.sync.stats.conns_table_full += 1;
                        return;
                    }
                }
            }
        };
        let threshold = self.sync.sysctl.threshold;
        let table = A::table_mut(&mut self.conns);
        let e = table.get_mut(id);
        e.state = state;
        e.old_state = state;
        if template {
            e.control = timeout;
            e.tpl_pkts = threshold.min(u8::MAX as u32) as u8;
        } else {
            e.aux = threshold;
        }
        table.rearm(id, now_ms + timeout as u64 * 1000);
    }

    /// `ip_vs_find_dest`: the service of the record (firewall mark first), then its server at
    /// `daddr:dport` (port 0 for non-NAT servers of a firewall-mark service).
    fn sync_find_dest(&self, c: &ConnRepr<'_>, flags: u32) -> Option<DestId> {
        let pkt = PacketMeta {
            protocol: c.protocol,
            saddr: c.caddr,
            sport: c.cport,
            daddr: c.vaddr,
            dport: c.vport,
            tcp_flags: 0,
            sctp_chunk: 0,
            sctp_abort_follows: false,
            len: 0,
            fwmark: c.fwmark,
        };
        let si = self.find_service(&pkt)?;
        let masq = flags & wf::FWD_MASK == FwdMethod::Masq.conn_flag();
        let port = if c.fwmark != 0 && !masq { 0 } else { c.dport };
        let svc = &self.services[si];
        let find = |p: u16| {
            svc.order
                .iter()
                .copied()
                .find(|&id| self.dests.get(id).is_some_and(|d| d.addr == c.daddr && d.port == p))
        };
        find(port).or_else(|| find(port ^ c.dport))
    }

    /// `ip_vs_conn_new` + `ip_vs_bind_dest` for a synchronized entry: the forwarding method (and
    /// NOOUTPUT) come from the local server, a connection keeps the master's INACTIVE.
    #[allow(clippy::too_many_arguments)]
    fn sync_new_entry<A: Fam>(
        &mut self,
        c: &ConnRepr<'_>,
        flags: u32,
        ca: A,
        va: A,
        da: A,
        did: DestId,
        pe: Option<&[u8]>,
    ) -> Option<u32> {
        if !self.conns.has_room() {
            return None;
        }
        let template = flags & wf::TEMPLATE != 0;
        let d = self.dests.get(did)?;
        let mut dflags = super::conn_flags(d.fwd) as u32;
        if !template {
            dflags &= !wf::INACTIVE;
        }
        let f = ((flags & !(wf::FWD_MASK | wf::NOOUTPUT)) | dflags) as u16;
        let e = Entry::new(c.protocol, ca, c.cport, va, c.vport, da, c.dport, did, f);
        let table = A::table_mut(&mut self.conns);
        let id = match pe {
            Some(d) => table.insert_pe(e, d)?,
            None => table.insert(e)?,
        };
        let d = self.dests.get_mut(did)?;
        d.refs += 1;
        if template {
            d.persistconns += 1;
        } else {
            d.bind_conn();
            if f & cf::INACTIVE == 0 {
                d.activeconns += 1;
            }
        }
        self.sync.stats.conns_created += 1;
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::tcp::flags::{ACK, FIN, SYN};
    use crate::conn::{InVerdict, PacketMeta};
    use crate::model::{DestConfig, Protocol, ServiceConfig};
    use std::net::SocketAddr;

    const VIP: &str = "10.0.0.100:80";

    fn sa(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn key(vip: &str) -> ServiceKey {
        let v = sa(vip);
        ServiceKey::Addr { protocol: Protocol::Tcp, addr: v.ip(), port: v.port() }
    }

    /// A director with one DR service on `vip` and `servers`, and a sync daemon of `role`.
    fn director(vip: &str, servers: &[&str], persistent: Option<u32>, role: SyncRole) -> Ipvs {
        let mut ipvs = Ipvs::new();
        let mut svc = ServiceConfig::new(key(vip));
        svc.scheduler = "rr".into();
        svc.persistent = persistent;
        if sa(vip).is_ipv6() {
            svc.netmask = crate::addr::Netmask::V6(128);
        }
        ipvs.add_service(svc).unwrap();
        for s in servers {
            let mut d = DestConfig::new(s.parse().unwrap());
            d.fwd = FwdMethod::Route;
            ipvs.add_dest(&key(vip), &d).unwrap();
        }
        let cfg = DaemonConfig {
            role,
            mcast_interface: "eth0".into(),
            syncid: 7,
            sync_maxlen: 0,
            mcast_group: None,
            mcast_port: 0,
            mcast_ttl: 0,
        };
        ipvs.start_daemon(&cfg, None).unwrap();
        ipvs
    }

    fn send(ipvs: &mut Ipvs, client: &str, vip: &str, flags: u8, ms: u64) -> InVerdict {
        ipvs.process_in(&PacketMeta::tcp(sa(client), sa(vip), flags), Instant::from_millis(ms))
    }

    fn records(msg: &[u8]) -> Vec<ConnRepr<'_>> {
        let m = Message::new_checked(msg).unwrap();
        Records::new(&m)
            .map(|r| match r.unwrap() {
                Record::Conn(c) => c,
                Record::Skipped(t) => panic!("skipped {t}"),
            })
            .collect()
    }

    #[test]
    fn master_sends_at_the_threshold_and_on_closing_state_changes() {
        let mut m = director(VIP, &["10.0.0.11"], None, SyncRole::Master);
        let c = "10.0.0.2:40000";
        send(&mut m, c, VIP, SYN, 0);
        send(&mut m, c, VIP, ACK, 1);
        assert_eq!(m.sync_take(Instant::from_millis(1), true), None, "2 packets: not yet");
        send(&mut m, c, VIP, ACK, 2);
        assert_eq!(m.sync_take(Instant::from_millis(3), false), None, "held until 2 s old");
        let msg = m.sync_take(Instant::from_millis(2002), false).unwrap();
        let m1 = Message::new_checked(&msg[..]).unwrap();
        assert!(m1.is_v1());
        assert_eq!((m1.syncid(), m1.nr_conns()), (7, 1));
        let r = records(&msg)[0];
        assert_eq!(
            (r.protocol, r.state, r.cport, r.vport, r.timeout),
            (6, tcp::ESTABLISHED as u16, 40000, 80, 900)
        );
        assert_eq!((r.daddr, r.flags & wf::FWD_MASK), ("10.0.0.11".parse().unwrap(), 3));
        assert_eq!(r.flags & wf::INACTIVE, 0, "active");
        // Packets 4..52 send nothing, the 53rd does; a FIN (state change to FIN_WAIT) at once.
        for i in 4..=52 {
            send(&mut m, c, VIP, ACK, 10 + i);
        }
        assert_eq!(m.sync_take(Instant::from_millis(100), true), None);
        send(&mut m, c, VIP, ACK, 100);
        assert_eq!(records(&m.sync_take(Instant::from_millis(100), true).unwrap()).len(), 1);
        send(&mut m, c, VIP, ACK | FIN, 101);
        let msg = m.sync_take(Instant::from_millis(101), true).unwrap();
        let r = records(&msg)[0];
        assert_eq!(r.state, tcp::FIN_WAIT as u16);
        assert_eq!(r.timeout, 120);
        assert_eq!(m.sync_stats().conns_queued, 3);
    }

    #[test]
    fn backup_takes_over_established_connections_and_persistence() {
        let servers = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];
        let mut m = director(VIP, &servers, Some(300), SyncRole::Master);
        let mut b = director(VIP, &servers, Some(300), SyncRole::Backup);
        let c = "10.0.0.2:40000";
        for (i, f) in [SYN, ACK, ACK].into_iter().enumerate() {
            send(&mut m, c, VIP, f, i as u64);
        }
        let msg = m.sync_take(Instant::from_millis(5), true).unwrap();
        let recs = records(&msg);
        // The template on every packet (sync_period > 0), the connection at the 3rd.
        let tpl: Vec<_> = recs.iter().filter(|r| r.flags & wf::TEMPLATE != 0).collect();
        assert_eq!((recs.len(), tpl.len()), (4, 3));
        assert_eq!((tpl[0].cport, tpl[0].vport, tpl[0].timeout), (0, 80, 300));
        assert_eq!(recs[2].flags & wf::TEMPLATE, 0);
        let master_rs = recs[2].daddr;
        b.sync_apply(&msg, Instant::from_millis(10));
        assert_eq!((b.sync_stats().conns_created, b.sync_stats().conns_updated), (2, 2));
        let conns = b.connections(Instant::from_millis(10));
        let conn = conns.iter().find(|i| !i.template).unwrap();
        assert_eq!((conn.state, conn.daddr, conn.fwd), ("ESTABLISHED", master_rs, FwdMethod::Route));
        assert_ne!(conn.flags & wf::SYNC, 0);
        assert_eq!(conn.expires.as_secs(), 900);
        let tpl = conns.iter().find(|i| i.template).unwrap();
        assert_eq!((tpl.state, tpl.daddr, tpl.expires.as_secs()), ("ASSURED", master_rs, 300));
        b.check_conns();
        let d = b.dest(conn.dest).unwrap();
        assert_eq!((d.activeconns, d.inactconns(), d.persistconns), (1, 0, 1));
        // After failover a mid-stream ACK continues the connection to the same server.
        let v = send(&mut b, c, VIP, ACK, 20);
        let f = v.forward().unwrap();
        assert_eq!((f.created, f.daddr), (false, master_rs));
        // A new connection from the same client sticks to the same server through the template.
        let v = send(&mut b, "10.0.0.2:40001", VIP, SYN, 21);
        assert_eq!(v.forward().unwrap().daddr, master_rs);
        // Applying the same message again updates in place.
        b.sync_apply(&msg, Instant::from_millis(30));
        assert_eq!(b.sync_stats().conns_updated, 6);
        b.check_conns();
    }

    #[test]
    fn unknown_service_syncid_and_malformed_messages() {
        let mut m = director(VIP, &["10.0.0.11"], None, SyncRole::Master);
        for (i, f) in [SYN, ACK, ACK].into_iter().enumerate() {
            send(&mut m, "10.0.0.2:1234", VIP, f, i as u64);
        }
        let msg = m.sync_take(Instant::ZERO, true).unwrap();
        // A backup without that service stores nothing.
        let mut b = director("10.0.0.200:80", &["10.0.0.11"], None, SyncRole::Backup);
        b.sync_apply(&msg, Instant::ZERO);
        assert_eq!((b.sync_stats().conns_no_dest, b.connections(Instant::ZERO).len()), (1, 0));
        // Another sync id is ignored; sync id 0 on the backup accepts all.
        let mut other = msg.clone();
        other[1] = 8;
        let mut b = director(VIP, &["10.0.0.11"], None, SyncRole::Backup);
        b.sync_apply(&other, Instant::ZERO);
        assert_eq!((b.sync_stats().syncid_ignored, b.connections(Instant::ZERO).len()), (1, 0));
        // Garbage, truncations and bit flips: counted, never a panic, the table stays consistent.
        b.sync_apply(&[], Instant::ZERO);
        b.sync_apply(&[0, 7, 0, 2], Instant::ZERO);
        for cut in 0..msg.len() {
            let mut t = msg[..cut].to_vec();
            if t.len() >= 4 {
                let n = t.len() as u16;
                t[2..4].copy_from_slice(&n.to_be_bytes());
            }
            b.sync_apply(&t, Instant::ZERO);
        }
        let mut rng = crate::rng::Rng::new(3);
        for _ in 0..2000 {
            let mut t = msg.clone();
            let at = 8 + rng.below((t.len() - 8) as u32) as usize;
            t[at] = rng.below(256) as u8;
            b.sync_apply(&t, Instant::ZERO);
        }
        assert!(b.sync_stats().malformed > 0);
        b.check_conns();
        // An invalid state is rejected.
        let mut bad = msg.clone();
        bad[8 + 8..8 + 10].copy_from_slice(&99u16.to_be_bytes());
        let before = b.sync_stats().conns_rejected;
        b.sync_apply(&bad, Instant::ZERO);
        assert_eq!(b.sync_stats().conns_rejected, before + 1);
    }

    #[test]
    fn ipv6_records_and_v0_messages() {
        let vip6 = "[2001:db8::100]:80";
        let mut m = director(vip6, &["2001:db8::11"], None, SyncRole::Master);
        let mut b = director(vip6, &["2001:db8::11"], None, SyncRole::Backup);
        for (i, f) in [SYN, ACK, ACK].into_iter().enumerate() {
            send(&mut m, "[2001:db8::2]:5555", vip6, f, i as u64);
        }
        let msg = m.sync_take(Instant::ZERO, true).unwrap();
        assert_eq!(msg.len(), 8 + 72);
        b.sync_apply(&msg, Instant::ZERO);
        let c = &b.connections(Instant::ZERO)[0];
        assert_eq!((c.state, c.caddr), ("ESTABLISHED", "2001:db8::2".parse::<IpAddr>().unwrap()));

        // sync_version 0: IPv4 only, 24-byte records; the backup uses its own timeouts.
        let mut m = director(VIP, &["10.0.0.11"], None, SyncRole::Master);
        m.sync_sysctl_mut().version = 0;
        let mut b = director(VIP, &["10.0.0.11"], None, SyncRole::Backup);
        b.set_timeouts(600, 0, 0).unwrap();
        for (i, f) in [SYN, ACK, ACK].into_iter().enumerate() {
            send(&mut m, "10.0.0.2:1", VIP, f, i as u64);
        }
        let msg = m.sync_take(Instant::ZERO, true).unwrap();
        assert_eq!((msg.len(), msg[0]), (4 + 24, 1));
        b.sync_apply(&msg, Instant::ZERO);
        let c = &b.connections(Instant::ZERO)[0];
        assert_eq!((c.state, c.expires.as_secs()), ("ESTABLISHED", 600));
    }

    #[test]
    fn persist_mode_sends_only_templates() {
        let mut m = director(VIP, &["10.0.0.11"], Some(60), SyncRole::Master);
        m.sync_sysctl_mut().persist_mode = true;
        for (i, f) in [SYN, ACK, ACK].into_iter().enumerate() {
            send(&mut m, "10.0.0.2:1", VIP, f, i as u64);
        }
        let msg = m.sync_take(Instant::ZERO, true).unwrap();
        let recs = records(&msg);
        // The template goes out on every packet (period > 0), the connection never.
        assert_eq!(recs.len(), 3);
        assert!(recs.iter().all(|r| r.flags & wf::TEMPLATE != 0));
    }

    #[test]
    fn sip_templates_carry_the_call_id_both_ways() {
        let vip = "10.0.0.100:5060";
        let k = ServiceKey::Addr { protocol: Protocol::Udp, addr: sa(vip).ip(), port: 5060 };
        let servers = ["10.0.0.11", "10.0.0.12", "10.0.0.13"];
        let make = |role| {
            let mut ipvs = director(VIP, &[], None, role);
            let mut svc = ServiceConfig::new(k);
            svc.scheduler = "rr".into();
            svc.persistent = Some(120);
            svc.pe = Some("sip".into());
            ipvs.add_service(svc).unwrap();
            for s in servers {
                ipvs.add_dest(&k, &DestConfig::new(s.parse().unwrap())).unwrap();
            }
            ipvs
        };
        let (mut m, mut b) = (make(SyncRole::Master), make(SyncRole::Backup));
        let invite = |call: &str| {
            format!("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nCall-ID: {call}\r\n\r\n")
        };
        let send = |ipvs: &mut Ipvs, client: &str, call: &str, ms: u64| {
            let p = PacketMeta::new(ipproto::UDP, sa(client), sa(vip));
            let body = invite(call);
            let v = ipvs.process_in_payload(
                &p,
                crate::pe::Payload::new(body.as_bytes(), 28),
                Instant::from_millis(ms),
            );
            v.forward().map(|f| f.daddr)
        };
        let first = send(&mut m, "10.0.0.2:5060", "one@10.0.0.2", 0).unwrap();
        let second = send(&mut m, "10.0.0.2:5062", "two@10.0.0.2", 0).unwrap();
        assert_ne!(first, second);
        let msg = m.sync_take(Instant::from_millis(1), true).unwrap();
        let recs = records(&msg);
        let tpls: Vec<_> = recs.iter().filter(|r| r.flags & wf::TEMPLATE != 0).collect();
        assert_eq!(tpls.len(), 2);
        assert_eq!((tpls[0].pe_name, tpls[0].pe_data), (Some(&b"sip"[..]), Some(&b"one@10.0.0.2"[..])));
        assert!(recs.iter().filter(|r| r.flags & wf::TEMPLATE == 0).all(|r| r.pe_data.is_none()));
        b.sync_apply(&msg, Instant::from_millis(2));
        let bt: Vec<_> = b.connections(Instant::from_millis(2)).into_iter().filter(|c| c.template).collect();
        assert_eq!(bt.len(), 2);
        assert!(bt.iter().all(|t| t.pe_name == Some("sip")));
        // After failover each call keeps its server, whatever port it comes from.
        assert_eq!(send(&mut b, "10.0.0.2:6000", "two@10.0.0.2", 10), Some(second));
        assert_eq!(send(&mut b, "10.0.0.2:6001", "one@10.0.0.2", 10), Some(first));
        // Applying it again updates the same templates.
        b.sync_apply(&msg, Instant::from_millis(20));
        assert_eq!(b.connections(Instant::from_millis(20)).iter().filter(|c| c.template).count(), 2);
        b.check_conns();
        // Engine data under an unknown engine name is rejected.
        let mut bad = msg.clone();
        if let Some(at) = bad.windows(3).position(|w| w == b"sip") {
            bad[at] = b'x';
        }
        let before = b.sync_stats().conns_rejected;
        let mut fresh = make(SyncRole::Backup);
        fresh.sync_apply(&bad, Instant::ZERO);
        assert_eq!(fresh.sync_stats().conns_rejected, 1);
        assert_eq!(b.sync_stats().conns_rejected, before);
        fresh.check_conns();
    }

    #[test]
    fn one_packet_connections_are_never_synced() {
        // §2.3: OPS connections are never synced; templates never carry the flag, so the template
        // of a persistent -o service is. sync_threshold 1 50 (§4.6: sync when in_pkts % period ==
        // threshold) makes any other UDP connection go out on its first datagram.
        let udp =
            |port| ServiceKey::Addr { protocol: Protocol::Udp, addr: "10.0.0.100".parse().unwrap(), port };
        let mut m = director(VIP, &[], None, SyncRole::Master);
        m.sync_sysctl_mut().set_threshold(1, 50).unwrap();
        for (port, one_packet, persistent) in [(53, true, None), (54, false, None), (55, true, Some(300))] {
            let mut svc = ServiceConfig::new(udp(port));
            svc.scheduler = "rr".into();
            svc.one_packet = one_packet;
            svc.persistent = persistent;
            m.add_service(svc).unwrap();
            m.add_dest(&udp(port), &DestConfig::new("10.0.0.11".parse().unwrap())).unwrap();
        }
        let dgram = |port: u16| PacketMeta::udp(sa("10.0.0.2:4000"), sa(&format!("10.0.0.100:{port}")));
        for i in 0..60 {
            let v = m.process_in(&dgram(53), Instant::from_millis(i));
            assert!(v.forward().unwrap().conn.is_none());
        }
        assert_eq!(m.sync_take(Instant::from_millis(60), true), None, "60 OPS datagrams: nothing");
        assert_eq!(m.sync_stats().conns_queued, 0);
        // Control: the same datagram to the service without -o is synced at once.
        m.process_in(&dgram(54), Instant::from_millis(61));
        let msg = m.sync_take(Instant::from_millis(61), true).unwrap();
        let r = records(&msg);
        assert_eq!((r.len(), r[0].protocol, r[0].vport, r[0].flags & wf::ONE_PACKET), (1, 17, 54, 0));
        // Persistent -o: only the template, never its one-packet connections.
        for i in 0..5 {
            m.process_in(&dgram(55), Instant::from_millis(70 + i));
        }
        let msg = m.sync_take(Instant::from_millis(80), true).unwrap();
        let r = records(&msg);
        assert!(!r.is_empty());
        assert!(r.iter().all(|c| c.flags & wf::TEMPLATE != 0 && c.vport == 55 && c.cport == 0), "{r:?}");
    }
}
