//! Conversions of the connection-sync daemon settings and counters.

use crate::error::{invalid, Result};
use lvs_core::ipvsadm::{DaemonConfig, SyncRole};
use lvs_core::sync::{Daemon, SyncStats};
use napi_derive::napi;

/// `startDaemon` options (ipvsadm `--start-daemon` and its daemon options).
#[napi(object)]
#[derive(Debug, Clone)]
pub struct DaemonSpec {
    /// `'master'` or `'backup'`.
    #[napi(ts_type = "'master' | 'backup'")]
    pub state: String,
    /// Multicast interface (default `eth0`).
    pub mcast_interface: Option<String>,
    /// Sync id 0..255 (default 0).
    pub sync_id: Option<u32>,
    /// Largest message (default from the MTU: 1472 for IPv4).
    pub sync_maxlen: Option<u32>,
    /// Multicast group (default 224.0.0.81).
    pub mcast_group: Option<String>,
    /// UDP port (default 8848).
    pub mcast_port: Option<u32>,
    /// Multicast TTL (default 1).
    pub mcast_ttl: Option<u32>,
}

/// A running sync daemon.
#[napi(object)]
#[derive(Debug, Clone)]
pub struct DaemonInfo {
    /// `'master'` or `'backup'`.
    #[napi(ts_type = "'master' | 'backup'")]
    pub state: String,
    /// Multicast interface.
    pub mcast_interface: String,
    /// Sync id.
    pub sync_id: u32,
    /// Largest message.
    pub sync_maxlen: u32,
    /// Multicast group.
    pub mcast_group: String,
    /// UDP port.
    pub mcast_port: u32,
    /// Multicast TTL.
    pub mcast_ttl: u32,
}

/// `'master'` / `'backup'`.
pub fn role(state: &str) -> Result<SyncRole> {
    match state {
        "master" => Ok(SyncRole::Master),
        "backup" => Ok(SyncRole::Backup),
        other => Err(invalid(format!("unknown sync daemon state `{other}' (expected master or backup)"))),
    }
}

fn ranged(v: Option<u32>, name: &str, min: u32, max: u32) -> Result<u32> {
    match v {
        None => Ok(0),
        Some(x) if (min..=max).contains(&x) => Ok(x),
        Some(x) => Err(invalid(format!("{name} {x} is out of range {min}..{max}"))),
    }
}

impl DaemonSpec {
    /// The core's `--start-daemon` settings (ranges as ipvsadm checks them).
    pub fn config(&self) -> Result<DaemonConfig> {
        let group = match self.mcast_group.as_deref() {
            None => None,
            Some(g) => Some(g.parse().map_err(|_| invalid(format!("invalid multicast group `{g}'")))?),
        };
        Ok(DaemonConfig {
            role: role(&self.state)?,
            mcast_interface: self.mcast_interface.clone().unwrap_or_else(|| "eth0".to_owned()),
            syncid: ranged(self.sync_id, "syncId", 0, 255)? as u8,
            sync_maxlen: ranged(self.sync_maxlen, "syncMaxlen", 1, 65507)? as u16,
            mcast_group: group,
            mcast_port: ranged(self.mcast_port, "mcastPort", 1, 65535)? as u16,
            mcast_ttl: ranged(self.mcast_ttl, "mcastTtl", 1, 255)? as u8,
        })
    }
}

/// A running daemon for JavaScript.
pub fn daemon_info(d: &Daemon) -> DaemonInfo {
    DaemonInfo {
        state: match d.role {
            SyncRole::Master => "master",
            SyncRole::Backup => "backup",
        }
        .to_owned(),
        mcast_interface: d.mcast_interface.clone(),
        sync_id: d.syncid as u32,
        sync_maxlen: d.sync_maxlen as u32,
        mcast_group: d.mcast_group.to_string(),
        mcast_port: d.mcast_port as u32,
        mcast_ttl: d.mcast_ttl as u32,
    }
}

/// Sync counters by name (core counters, then the sockets').
pub fn stats_entries(
    s: &SyncStats,
    io: Option<&lvs_dataplane::sync::SyncIoStatus>,
) -> Vec<(&'static str, u64)> {
    let mut v = vec![
        ("connsQueued", s.conns_queued),
        ("msgsQueued", s.msgs_queued),
        ("queueFull", s.queue_full),
        ("msgsReceived", s.msgs_received),
        ("syncidIgnored", s.syncid_ignored),
        ("malformed", s.malformed),
        ("connsCreated", s.conns_created),
        ("connsUpdated", s.conns_updated),
        ("connsRejected", s.conns_rejected),
        ("connsNoDest", s.conns_no_dest),
        ("connsTableFull", s.conns_table_full),
    ];
    if let Some(io) = io {
        v.extend([
            ("sent", io.sent),
            ("sendErrors", io.send_errors),
            ("received", io.received),
            ("socketErrors", io.errors),
        ]);
    }
    v
}
