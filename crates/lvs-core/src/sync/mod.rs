//! Connection synchronization (`ip_vs_sync.c`), the pure part: daemon settings with the kernel's
//! defaults, the sysctls that decide when a connection is sent, the master's outbox (records
//! packed into messages of at most `sync_maxlen` bytes, full ones queued, a partly filled one
//! flushed after 2 s) and the counters. The hooks into the connection table — which entries are
//! recorded after a packet, and how a received message creates or updates entries — are on
//! [`crate::Ipvs`] (`start_daemon`, `sync_take`, `sync_apply`). Sockets are the I/O layer's.

use crate::error::{Code, Error, Result};
use crate::ipvsadm::{DaemonConfig, SyncRole};
use crate::wire::ipvs_sync::{self as wire, ConnRepr, Message};
use std::collections::VecDeque;
use std::net::IpAddr;

/// A partly filled message goes out once it is this old (`IPVS_SYNC_FLUSH_TIME`, 2 s).
pub const FLUSH_TIME_MS: u64 = 2000;
/// Default bound of the master's queue of full messages (`sync_qlen_max`; the kernel derives it
/// from free memory).
pub const DEFAULT_QLEN_MAX: usize = 1024;
/// Template timeout a backup uses when a (v0) record carries none (3 minutes).
pub const TEMPLATE_DEFAULT_TIMEOUT: u32 = 180;

/// A running sync daemon's settings, defaults resolved as `start_sync_thread` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Daemon {
    /// Master (sends) or backup (receives).
    pub role: SyncRole,
    /// The multicast interface.
    pub mcast_interface: String,
    /// Sync id: written into every message by a master; a backup with a non-zero id ignores
    /// messages with another.
    pub syncid: u8,
    /// Largest message (UDP payload) in bytes.
    pub sync_maxlen: u16,
    /// Multicast group (224.0.0.81 by default).
    pub mcast_group: IpAddr,
    /// UDP port (8848 by default).
    pub mcast_port: u16,
    /// Multicast TTL (1 by default).
    pub mcast_ttl: u8,
}

impl Daemon {
    /// Resolves `--start-daemon` options. `mtu` is the interface MTU if known (a backup's
    /// default maxlen follows it, clamped to 1500..65535; a master's is always from 1500).
    pub fn resolve(cfg: &DaemonConfig, mtu: Option<u32>) -> Result<Daemon> {
        let group = cfg.mcast_group.unwrap_or(IpAddr::V4(wire::SYNC_GROUP));
        if !group.is_multicast() {
            return Err(Error::invalid("Invalid multicast group"));
        }
        if cfg.mcast_interface.is_empty() || cfg.mcast_interface.len() >= 16 {
            return Err(Error::invalid("Invalid multicast interface name"));
        }
        let hlen: u32 = if group.is_ipv6() { 40 + 8 } else { 20 + 8 };
        let (mtu, min) = match cfg.role {
            SyncRole::Backup => (mtu.unwrap_or(1500).clamp(1500, 65535), 1024),
            SyncRole::Master => (1500, 1),
        };
        let maxlen =
            if cfg.sync_maxlen != 0 { (cfg.sync_maxlen as u32).clamp(min, 65535 - hlen) } else { mtu - hlen };
        Ok(Daemon {
            role: cfg.role,
            mcast_interface: cfg.mcast_interface.clone(),
            syncid: cfg.syncid,
            sync_maxlen: maxlen as u16,
            mcast_group: group,
            mcast_port: if cfg.mcast_port == 0 { wire::SYNC_PORT } else { cfg.mcast_port },
            mcast_ttl: if cfg.mcast_ttl == 0 { 1 } else { cfg.mcast_ttl },
        })
    }

    /// The `ipvsadm -L --daemon` line (without the newline).
    pub fn listing(&self) -> String {
        let role = match self.role {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        };
        format!(
            "{role} sync daemon (mcast={}, syncid={}, maxlen={}, group={}, port={}, ttl={})",
            self.mcast_interface,
            self.syncid,
            self.sync_maxlen,
            self.mcast_group,
            self.mcast_port,
            self.mcast_ttl
        )
    }
}

/// The sync sysctls (`/proc/sys/net/ipv4/vs/sync_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncSysctl {
    /// `sync_version`: 1 (default) sends v1 messages, 0 the old v0 format (IPv4 only).
    pub version: u8,
    /// `sync_threshold` first value: a connection is sent at this many packets (default 3).
    pub threshold: u32,
    /// `sync_threshold` second value: and every this many packets after (default 50; 0 = once).
    pub period: u32,
    /// `sync_persist_mode`: connections controlled by a persistence template are not sent, only
    /// their templates.
    pub persist_mode: bool,
    /// `sync_qlen_max`: full messages the master may queue; records beyond are dropped.
    pub qlen_max: usize,
}

impl Default for SyncSysctl {
    fn default() -> Self {
        SyncSysctl { version: 1, threshold: 3, period: 50, persist_mode: false, qlen_max: DEFAULT_QLEN_MAX }
    }
}

impl SyncSysctl {
    /// Sets `sync_threshold` (`threshold < period` unless `period` is 0, as the kernel checks).
    pub fn set_threshold(&mut self, threshold: u32, period: u32) -> Result<()> {
        if period > 0 && threshold >= period {
            return Err(Error::invalid("sync_threshold must be below sync_period"));
        }
        self.threshold = threshold;
        self.period = period;
        Ok(())
    }
}

/// Counters of the sync daemons.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Records written into the master's messages.
    pub conns_queued: u64,
    /// Messages completed by the master (queued for sending).
    pub msgs_queued: u64,
    /// Records lost because the queue was at `qlen_max`.
    pub queue_full: u64,
    /// Messages the backup received.
    pub msgs_received: u64,
    /// Messages ignored for another sync id.
    pub syncid_ignored: u64,
    /// Messages (or their rest) dropped as malformed.
    pub malformed: u64,
    /// Records that created an entry.
    pub conns_created: u64,
    /// Records that updated an entry.
    pub conns_updated: u64,
    /// Records skipped: unsupported protocol, invalid state, one-packet, unknown mandatory option,
    /// or the expiry notice of a connection already replaced.
    pub conns_rejected: u64,
    /// Records whose service or real server does not exist here (not stored: see
    /// [`crate::Ipvs::sync_apply`]).
    pub conns_no_dest: u64,
    /// Records refused because the connection table was full.
    pub conns_table_full: u64,
}

/// The master's messages: the one being filled and the full ones waiting to be sent.
#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) daemon: Daemon,
    /// The message being filled (empty when none); its header is rewritten on every record.
    cur: Vec<u8>,
    cur_v1: bool,
    nr: u8,
    firstuse: u64,
    queue: VecDeque<Vec<u8>>,
}

impl Outbox {
    pub(crate) fn new(daemon: Daemon) -> Outbox {
        Outbox { daemon, cur: Vec::new(), cur_v1: true, nr: 0, firstuse: 0, queue: VecDeque::new() }
    }

    /// Moves the current message to the queue (dropped when the queue is full).
    fn close(&mut self, qlen_max: usize, stats: &mut SyncStats) {
        if self.cur.is_empty() {
            return;
        }
        let msg = std::mem::take(&mut self.cur);
        if self.queue.len() < qlen_max {
            self.queue.push_back(msg);
            stats.msgs_queued += 1;
        } else {
            stats.queue_full += self.nr as u64;
        }
        self.nr = 0;
    }

    /// Appends one record (`ip_vs_sync_conn`): v1 records are padded to 4 bytes; a message that
    /// has no room, is of the other version, or holds 255 records is closed first.
    pub(crate) fn add(
        &mut self,
        rec: &ConnRepr<'_>,
        sysctl: &SyncSysctl,
        now_ms: u64,
        stats: &mut SyncStats,
    ) {
        let v1 = sysctl.version != 0;
        if !v1 && rec.is_v6() {
            return;
        }
        let maxlen = self.daemon.sync_maxlen as usize;
        let len = if v1 { rec.buffer_len() } else { rec.v0_len() };
        let pad = if v1 { (4 - (self.cur.len() & 3)) & 3 } else { 0 };
        if !self.cur.is_empty()
            && (self.cur.len() + pad + len > maxlen || self.cur_v1 != v1 || self.nr == 255)
        {
            self.close(sysctl.qlen_max, stats);
        }
        if self.cur.is_empty() {
            let hl = if v1 { wire::HEADER_LEN } else { wire::V0_HEADER_LEN };
            self.cur.resize(hl, 0);
            self.cur_v1 = v1;
            self.firstuse = now_ms;
        }
        let pad = if v1 { (4 - (self.cur.len() & 3)) & 3 } else { 0 };
        let at = self.cur.len() + pad;
        self.cur.resize(at + len, 0);
        if v1 {
            rec.emit(&mut self.cur[at..]);
        } else {
            rec.emit_v0(&mut self.cur[at..]);
        }
        self.nr += 1;
        let size = self.cur.len() as u16;
        let mut m = Message::new_unchecked(&mut self.cur[..]);
        if v1 {
            m.set_v1_header(self.daemon.syncid, size, self.nr);
        } else {
            m.set_v0_header(self.daemon.syncid, size, self.nr);
        }
        stats.conns_queued += 1;
    }

    /// The next message to send: a queued one, else the current one once it is
    /// [`FLUSH_TIME_MS`] old (or at once with `flush`).
    pub(crate) fn take(
        &mut self,
        now_ms: u64,
        flush: bool,
        qlen_max: usize,
        stats: &mut SyncStats,
    ) -> Option<Vec<u8>> {
        if self.queue.is_empty()
            && !self.cur.is_empty()
            && (flush || now_ms.saturating_sub(self.firstuse) >= FLUSH_TIME_MS)
        {
            self.close(qlen_max.max(1), stats);
        }
        self.queue.pop_front()
    }
}

/// The daemons and their state, kept in the virtual server table.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    pub(crate) master: Option<Outbox>,
    pub(crate) backup: Option<Daemon>,
    pub(crate) sysctl: SyncSysctl,
    pub(crate) stats: SyncStats,
}

impl SyncState {
    pub(crate) fn start(&mut self, d: Daemon) -> Result<()> {
        let exists = || Error::new(Code::Exists, "Daemon has already run");
        match d.role {
            SyncRole::Master if self.master.is_some() => Err(exists()),
            SyncRole::Backup if self.backup.is_some() => Err(exists()),
            SyncRole::Master => {
                self.master = Some(Outbox::new(d));
                Ok(())
            }
            SyncRole::Backup => {
                self.backup = Some(d);
                Ok(())
            }
        }
    }

    pub(crate) fn stop(&mut self, role: SyncRole) -> Result<()> {
        let stopped = match role {
            SyncRole::Master => self.master.take().is_some(),
            SyncRole::Backup => self.backup.take().is_some(),
        };
        if stopped {
            Ok(())
        } else {
            Err(Error::new(Code::NoService, "No daemon is running"))
        }
    }

    /// Running daemons, master first (ipvsadm's order).
    pub(crate) fn daemons(&self) -> Vec<Daemon> {
        self.master.iter().map(|o| o.daemon.clone()).chain(self.backup.iter().cloned()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(role: SyncRole) -> DaemonConfig {
        DaemonConfig {
            role,
            mcast_interface: "eth0".into(),
            syncid: 0,
            sync_maxlen: 0,
            mcast_group: None,
            mcast_port: 0,
            mcast_ttl: 0,
        }
    }

    #[test]
    fn defaults_like_start_sync_thread() {
        let m = Daemon::resolve(&cfg(SyncRole::Master), Some(9000)).unwrap();
        assert_eq!(
            m.listing(),
            "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)"
        );
        let b = Daemon::resolve(&cfg(SyncRole::Backup), Some(9000)).unwrap();
        assert_eq!(b.sync_maxlen, 8972, "a backup follows the interface MTU");
        let mut c = cfg(SyncRole::Backup);
        c.sync_maxlen = 100;
        assert_eq!(Daemon::resolve(&c, None).unwrap().sync_maxlen, 1024, "backup minimum");
        c.mcast_group = Some("ff02::1:81".parse().unwrap());
        c.sync_maxlen = 0;
        assert_eq!(Daemon::resolve(&c, None).unwrap().sync_maxlen, 1452);
        c.mcast_group = Some("10.0.0.1".parse().unwrap());
        assert!(Daemon::resolve(&c, None).is_err());
    }

    #[test]
    fn start_stop_errors() {
        let mut s = SyncState::default();
        s.start(Daemon::resolve(&cfg(SyncRole::Master), None).unwrap()).unwrap();
        let again = s.start(Daemon::resolve(&cfg(SyncRole::Master), None).unwrap()).unwrap_err();
        assert_eq!((again.code().errno(), again.message()), ("EEXIST", "Daemon has already run"));
        s.start(Daemon::resolve(&cfg(SyncRole::Backup), None).unwrap()).unwrap();
        assert_eq!(s.daemons().len(), 2);
        s.stop(SyncRole::Backup).unwrap();
        let none = s.stop(SyncRole::Backup).unwrap_err();
        assert_eq!((none.code().errno(), none.message()), ("ESRCH", "No daemon is running"));
    }

    #[test]
    fn outbox_packs_up_to_maxlen_and_flushes_after_two_seconds() {
        let mut c = cfg(SyncRole::Master);
        c.sync_maxlen = 8 + 36 * 3;
        let mut o = Outbox::new(Daemon::resolve(&c, None).unwrap());
        let (sysctl, mut st) = (SyncSysctl::default(), SyncStats::default());
        let a = |s: &str| s.parse::<IpAddr>().unwrap();
        let rec = ConnRepr {
            protocol: 6,
            flags: 3,
            state: 1,
            caddr: a("10.0.0.2"),
            cport: 1,
            vaddr: a("10.0.0.100"),
            vport: 80,
            daddr: a("10.0.0.11"),
            dport: 80,
            fwmark: 0,
            timeout: 900,
            seq: None,
            pe_data: None,
            pe_name: None,
        };
        for i in 0..4 {
            o.add(&ConnRepr { cport: i, ..rec }, &sysctl, 100, &mut st);
        }
        let full = o.take(100, false, sysctl.qlen_max, &mut st).unwrap();
        assert_eq!(full.len(), 8 + 36 * 3);
        assert_eq!(Message::new_checked(&full[..]).unwrap().nr_conns(), 3);
        assert_eq!(o.take(2099, false, sysctl.qlen_max, &mut st), None, "the 4th waits for 2 s");
        let last = o.take(2100, false, sysctl.qlen_max, &mut st).unwrap();
        assert_eq!(Message::new_checked(&last[..]).unwrap().nr_conns(), 1);
        assert_eq!((st.conns_queued, st.msgs_queued), (4, 2));
        // A full queue drops records and counts them.
        for i in 0..7 {
            o.add(
                &ConnRepr { cport: i, ..rec },
                &SyncSysctl { qlen_max: 1, ..SyncSysctl::default() },
                0,
                &mut st,
            );
        }
        assert_eq!(st.queue_full, 3);
    }
}
