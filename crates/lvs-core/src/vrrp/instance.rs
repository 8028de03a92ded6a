//! One VRRP instance: keepalived 2.2.7's state machine (`vrrp_state_backup`,
//! `vrrp_state_master_rx`, `vrrp_state_master_tx`, `vrrp_state_become_master`,
//! `vrrp_state_leave_master`, fault handling) and its receive checks (`vrrp_check_packet`) in
//! their order, with their log texts.

use super::config::InstanceConfig;
use super::{due, Action, Received, State};
use crate::error::Error;
use crate::time::Instant;
use crate::wire::vrrp::{addr_len, Auth, Packet, Repr, Version, PROTOCOL, TTL, TYPE_ADVERTISEMENT};
use std::cmp::Ordering;
use std::net::IpAddr;
use std::time::Duration;

/// IP protocol number of IPsec AH.
const PROTOCOL_AH: u8 = 51;
/// Delayed GARP bursts kept at once; more are dropped (the pending ones already cover them), so a
/// flood of lower-priority adverts cannot grow memory.
const MAX_PENDING_GARPS: usize = 8;
/// Timer events handled by one `poll`, so a clock jump cannot loop for long.
const MAX_POLL_STEPS: usize = 64;

/// Why a received message was dropped. The first group is silent in keepalived; the others log
/// keepalived's message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Not VRRP (IP protocol neither 112 nor 51). Silent.
    NotVrrp,
    /// Shorter than the 8-byte VRRP header. Silent.
    Truncated,
    /// From the other address family than the instance. Silent.
    Family,
    /// For another VRID. Silent (keepalived logs it only with `log_unknown_vrids`).
    OtherVrid,
    /// The instance is not running (INIT, FAULT or STOP). Silent.
    NotListening,
    /// An AH header although the instance does not use AH.
    AuthHeader,
    /// The VRRP length does not match its address count (`vrrp packet too short/long`).
    Length,
    /// Multicast advert with a TTL / hop limit other than 255.
    Ttl,
    /// Another VRRP version.
    Version,
    /// An authentication type other than 0, 1 and 2.
    AuthType,
    /// Another authentication type than ours.
    AuthMismatch,
    /// Wrong password.
    Password,
    /// v2: another advertisement interval.
    Interval,
    /// Not an advertisement.
    Type,
    /// Another VIP count.
    AddrCount,
    /// The IP length disagrees with the bytes received.
    IpLength,
    /// Bad checksum.
    Checksum,
    /// Multicast advert to a unicast instance or the reverse.
    Cast,
    /// One of our VIPs is missing from the advert.
    Vips,
    /// A unicast advert from an address that is not a peer (`check_unicast_src`).
    UnicastSource,
}

impl DropReason {
    /// Every reason, in the order of [`Counters::dropped`] slots.
    pub const ALL: [DropReason; 20] = [
        DropReason::NotVrrp,
        DropReason::Truncated,
        DropReason::Family,
        DropReason::OtherVrid,
        DropReason::NotListening,
        DropReason::AuthHeader,
        DropReason::Length,
        DropReason::Ttl,
        DropReason::Version,
        DropReason::AuthType,
        DropReason::AuthMismatch,
        DropReason::Password,
        DropReason::Interval,
        DropReason::Type,
        DropReason::AddrCount,
        DropReason::IpLength,
        DropReason::Checksum,
        DropReason::Cast,
        DropReason::Vips,
        DropReason::UnicastSource,
    ];

    /// A stable snake_case name (for counters exported to JavaScript).
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::NotVrrp => "not_vrrp",
            DropReason::Truncated => "truncated",
            DropReason::Family => "family",
            DropReason::OtherVrid => "other_vrid",
            DropReason::NotListening => "not_listening",
            DropReason::AuthHeader => "auth_header",
            DropReason::Length => "length",
            DropReason::Ttl => "ttl",
            DropReason::Version => "version",
            DropReason::AuthType => "auth_type",
            DropReason::AuthMismatch => "auth_mismatch",
            DropReason::Password => "password",
            DropReason::Interval => "interval",
            DropReason::Type => "type",
            DropReason::AddrCount => "addr_count",
            DropReason::IpLength => "ip_length",
            DropReason::Checksum => "checksum",
            DropReason::Cast => "cast",
            DropReason::Vips => "vips",
            DropReason::UnicastSource => "unicast_source",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

/// What an instance has received and sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Messages handed to [`Instance::receive`].
    pub received: u64,
    /// Adverts that passed the checks of type, version, length and checksum (keepalived's
    /// `advert_rcvd`).
    pub adverts_received: u64,
    /// Adverts sent (one per interval, whatever the number of unicast peers).
    pub adverts_sent: u64,
    /// Valid priority-0 adverts received.
    pub priority_zero_received: u64,
    /// Priority-0 adverts sent.
    pub priority_zero_sent: u64,
    /// Transitions to MASTER.
    pub become_master: u64,
    /// Transitions out of MASTER.
    pub release_master: u64,
    dropped: [u64; DropReason::ALL.len()],
}

impl Counters {
    /// Messages dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.dropped[reason.index()]
    }
    /// Messages dropped for any reason.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.iter().sum()
    }
}

/// One VRRP instance, driven by the caller's clock. See the [module](super) documentation.
#[derive(Debug, Clone)]
pub struct Instance {
    cfg: InstanceConfig,
    warnings: Vec<String>,
    state: State,
    /// Lowered from 255 to 254 when another owner shows up.
    base_priority: u8,
    delta: i32,
    effective: u8,
    /// v3: the interval learnt from the master (centiseconds); the local one otherwise.
    master_adver_int_cs: u16,
    /// BACKUP: the master-down timer; MASTER: the next advert.
    timer: Option<Instant>,
    /// `preempt_delay` running: lower-priority adverts are accepted until then.
    preempt_until: Option<Instant>,
    master_addr: Option<IpAddr>,
    own_fault: bool,
    group_fault: bool,
    /// In a sync group: a down-timer expiry only asks the group to go MASTER.
    sync_gated: bool,
    wants_master: bool,
    /// Delayed GARP bursts. Like keepalived's timer threads they survive leaving MASTER and go out
    /// only if the instance is MASTER again when they fire (the fixture capture has one).
    garps: Vec<(Instant, u32)>,
    refresh_at: Option<Instant>,
    counters: Counters,
}

impl Instance {
    /// An instance in INIT. The configuration is validated ([`InstanceConfig::validate`]), and the
    /// settings keepalived resets with a warning are reset (the warnings are logged by `start`).
    ///
    /// ```
    /// use lvs_core::time::Instant;
    /// use lvs_core::vrrp::{Action, Instance, InstanceConfig, State};
    /// let cfg = InstanceConfig::new("VI_1", 51, vec!["10.200.0.100".parse().unwrap()], "10.200.0.1".parse().unwrap());
    /// let mut vi = Instance::new(cfg).unwrap();
    /// vi.start(Instant::ZERO);
    /// assert_eq!(vi.state(), State::Backup);
    /// assert_eq!(vi.next_deadline(), Some(Instant::from_millis(3609))); // 3 s + (256 - 100) / 256 s
    /// let actions = vi.poll(Instant::from_millis(3609));
    /// assert_eq!(vi.state(), State::Master);
    /// assert!(actions.contains(&Action::ClaimVips));
    /// ```
    pub fn new(cfg: InstanceConfig) -> Result<Instance, Error> {
        cfg.validate()?;
        let (cfg, warnings) = cfg.normalized();
        Ok(Instance {
            warnings,
            state: State::Init,
            base_priority: cfg.priority,
            delta: 0,
            effective: cfg.priority,
            master_adver_int_cs: cfg.advert_int_cs,
            timer: None,
            preempt_until: None,
            master_addr: None,
            own_fault: false,
            group_fault: false,
            sync_gated: false,
            wants_master: false,
            garps: Vec::new(),
            refresh_at: None,
            counters: Counters::default(),
            cfg,
        })
    }

    /// Starts the instance: MASTER at once if `initial_master` and priority 255, FAULT if a fault is
    /// set, otherwise BACKUP with the full master-down interval (after releasing any VIPs, as
    /// keepalived does). Does nothing unless in INIT.
    pub fn start(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state != State::Init {
            return out;
        }
        out.extend(self.warnings.iter().cloned().map(Action::Log));
        if self.faulted() {
            self.enter(State::Fault, "", &mut out);
        } else if self.cfg.initial_master && self.base_priority == 255 && !self.sync_gated {
            self.become_master(now, &mut out);
        } else {
            self.release_vips(&mut out);
            self.enter(State::Backup, " (init)", &mut out);
            self.timer = Some(if self.cfg.initial_master && self.base_priority == 255 {
                now
            } else {
                now + self.master_down()
            });
        }
        out
    }

    /// Handles a received message: drops it for the first failed check, in keepalived's order,
    /// then applies the BACKUP or MASTER receive rules.
    pub fn receive(&mut self, now: Instant, rx: &Received<'_>) -> Vec<Action> {
        let mut out = Vec::new();
        self.counters.received += 1;
        if let Err(reason) = self.dispatch(rx) {
            self.drop(reason);
            return out;
        }
        let packet = Packet::new_unchecked(rx.message);
        match self.state {
            State::Backup => self.backup_rx(now, rx, &packet, &mut out),
            State::Master => {
                self.master_rx(now, rx, &packet, &mut out);
                // keepalived re-arms the advert timer after every message for our VRID, valid or not
                // (the fixture capture shows adverts moving to 1 s after each injected invalid one).
                if self.state == State::Master && !self.cfg.lower_prio_no_advert {
                    self.timer = Some(now + self.adver_int());
                }
            }
            State::Init | State::Fault | State::Stop => {}
        }
        out
    }

    /// Runs the timers due at `now`: BACKUP takes over when the master-down timer expires, MASTER
    /// advertises, and delayed GARP bursts go out.
    pub fn poll(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        for _ in 0..MAX_POLL_STEPS {
            if let Some(i) = self.garps.iter().position(|(t, _)| *t <= now) {
                let (_, rounds) = self.garps.remove(i);
                self.garp(rounds, &mut out);
                continue;
            }
            if !due(self.timer, now) {
                break;
            }
            match self.state {
                State::Backup => {
                    self.log("Receive advertisement timeout", &mut out);
                    if self.sync_gated {
                        self.wants_master = true;
                        self.timer = Some(now + self.master_down());
                    } else {
                        self.become_master(now, &mut out);
                    }
                }
                State::Master => {
                    self.advertise(self.effective, &mut out);
                    if self.refresh_at.is_some_and(|t| now > t) {
                        self.garp(self.cfg.garp_master_refresh_repeat, &mut out);
                        self.refresh_at = Some(now + ms(self.cfg.garp_master_refresh_ms));
                    }
                    self.timer = Some(now + self.adver_int());
                }
                State::Init | State::Fault | State::Stop => self.timer = None,
            }
        }
        out
    }

    /// When [`Instance::poll`] next has work, if ever.
    pub fn next_deadline(&self) -> Option<Instant> {
        let garp = self.garps.iter().map(|(t, _)| *t).min();
        match (self.timer, garp) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Sets the sum of the tracking weights. The effective priority is base + delta clamped to
    /// 1..=254; an address owner (255) keeps 255. In BACKUP the pending down timer moves by the
    /// change of the master-down interval.
    pub fn set_priority_delta(&mut self, _now: Instant, delta: i32) -> Vec<Action> {
        let mut out = Vec::new();
        self.delta = delta;
        let old = self.effective;
        let new = self.compute_effective();
        if new == old {
            return out;
        }
        let old_down = self.master_down();
        self.effective = new;
        self.log(&format!("Changing effective priority from {old} to {new}"), &mut out);
        if self.state == State::Backup {
            let new_down = self.master_down();
            self.timer = self.timer.map(|t| {
                if new_down >= old_down {
                    t + (new_down - old_down)
                } else {
                    t - (old_down - new_down)
                }
            });
        }
        out
    }

    /// Sets or clears a fault (a tracked interface or script down). MASTER sends a priority-0
    /// advert and releases the VIPs; when the fault clears the instance returns to BACKUP.
    pub fn set_fault(&mut self, now: Instant, fault: bool) -> Vec<Action> {
        self.own_fault = fault;
        let mut out = Vec::new();
        self.apply_fault(now, &mut out);
        out
    }

    /// Stops the instance. A MASTER sends a priority-0 advert and releases the VIPs first; other
    /// states send nothing.
    pub fn shutdown(&mut self, _now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Stop {
            return out;
        }
        if self.state == State::Master {
            self.resign(&mut out);
            self.counters.release_master += 1;
        }
        self.enter(State::Stop, "", &mut out);
        self.timer = None;
        self.garps.clear();
        self.refresh_at = None;
        out
    }

    /// The state.
    pub fn state(&self) -> State {
        self.state
    }
    /// The priority advertised: base + tracking delta, clamped (see
    /// [`Instance::set_priority_delta`]).
    pub fn effective_priority(&self) -> u8 {
        self.effective
    }
    /// The current master: our own source in MASTER, the last advertiser heard in BACKUP.
    pub fn master(&self) -> Option<IpAddr> {
        match self.state {
            State::Master => Some(self.cfg.src),
            State::Backup => self.master_addr,
            _ => None,
        }
    }
    /// The interval in use for the master-down timer, in centiseconds: a v3 backup's is the
    /// master's.
    pub fn master_adver_int_cs(&self) -> u16 {
        self.master_adver_int_cs
    }
    /// The configuration, after keepalived's resets.
    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }
    /// The counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }
    /// The advert this instance sends to `dst` with `priority` (checksum included).
    pub fn advert(&self, priority: u8, dst: IpAddr) -> Vec<u8> {
        Repr {
            version: self.cfg.version,
            vrid: self.cfg.vrid,
            priority,
            auth: self.cfg.auth,
            advert_int_cs: self.cfg.advert_int_cs,
            addrs: self.cfg.vips.clone(),
        }
        .to_bytes(self.cfg.src, dst)
    }

    // --- sync-group hooks ---

    pub(crate) fn set_sync_gated(&mut self, gated: bool) {
        self.sync_gated = gated;
    }
    pub(crate) fn wants_master(&self) -> bool {
        self.wants_master
    }
    pub(crate) fn own_fault(&self) -> bool {
        self.own_fault
    }
    /// Takes over now (the group agreed), from BACKUP only.
    pub(crate) fn force_master(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Backup {
            self.become_master(now, &mut out);
        }
        out
    }
    /// Yields now (another member yielded), from MASTER only.
    pub(crate) fn force_backup(&mut self, now: Instant) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            self.leave_master(now, &mut out);
        }
        out
    }
    pub(crate) fn set_group_fault(&mut self, now: Instant, fault: bool) -> Vec<Action> {
        self.group_fault = fault;
        let mut out = Vec::new();
        self.apply_fault(now, &mut out);
        out
    }

    // --- receive ---

    /// The checks before an instance looks at a message (keepalived's dispatcher).
    fn dispatch(&self, rx: &Received<'_>) -> Result<(), DropReason> {
        if rx.protocol != PROTOCOL && rx.protocol != PROTOCOL_AH {
            return Err(DropReason::NotVrrp);
        }
        let packet = Packet::new_checked(rx.message).map_err(|_| DropReason::Truncated)?;
        if rx.src.is_ipv6() != self.cfg.src.is_ipv6() || rx.dst.is_ipv6() != self.cfg.src.is_ipv6() {
            return Err(DropReason::Family);
        }
        if packet.vrid() != self.cfg.vrid {
            return Err(DropReason::OtherVrid);
        }
        match self.state {
            State::Backup | State::Master => Ok(()),
            State::Init | State::Fault | State::Stop => Err(DropReason::NotListening),
        }
    }

    /// `vrrp_check_packet`: the checks in keepalived's order, each failure logged in its words.
    fn check(
        &mut self,
        rx: &Received<'_>,
        packet: &Packet<&[u8]>,
        check_addr: bool,
        out: &mut Vec<Action>,
    ) -> Result<(), DropReason> {
        let result = self.check_inner(rx, packet, check_addr);
        match result {
            Ok(()) => {
                if packet.priority() == 0 {
                    self.counters.priority_zero_received += 1;
                }
                Ok(())
            }
            Err((reason, message)) => {
                if let Some(m) = message {
                    self.log(&m, out);
                }
                self.drop(reason);
                Err(reason)
            }
        }
    }

    fn check_inner(
        &mut self,
        rx: &Received<'_>,
        packet: &Packet<&[u8]>,
        check_addr: bool,
    ) -> Result<(), (DropReason, Option<String>)> {
        let fail = |reason, text: String| Err((reason, Some(text)));
        let cfg = &self.cfg;
        let ours = cfg.version.number();
        if rx.protocol == PROTOCOL_AH {
            return fail(DropReason::AuthHeader, "Received AH header but auth type not AH".into());
        }
        let alen = addr_len(&cfg.src);
        let expected = packet.expected_len(alen);
        let len = rx.ip_payload_len.min(rx.message.len());
        if len != expected {
            let how = if len > expected { "long" } else { "short" };
            return fail(
                DropReason::Length,
                format!("vrrp packet too {how}, length {len} and expect {expected}"),
            );
        }
        if cfg.unicast_peers.is_empty() && rx.ttl != TTL {
            return fail(DropReason::Ttl, format!("invalid TTL/HL. Received {} and expect {TTL}", rx.ttl));
        }
        if packet.version() != ours {
            return fail(
                DropReason::Version,
                format!("wrong version. Received {} and expect {ours}", packet.version()),
            );
        }
        if cfg.version == Version::V2 {
            let theirs = packet.auth_type();
            if theirs > 2 {
                return fail(DropReason::AuthType, format!("Invalid auth type: {theirs}"));
            }
            if theirs != cfg.auth.type_number() {
                return fail(
                    DropReason::AuthMismatch,
                    format!("received a {theirs} auth, expecting {}!", cfg.auth.type_number()),
                );
            }
            if let Auth::Pass(password) = &cfg.auth {
                if !packet.auth_data().is_some_and(|d| constant_time_eq(&d, password)) {
                    return fail(DropReason::Password, "received an invalid passwd!".into());
                }
            }
            if u32::from(cfg.advert_int_cs) != u32::from(packet.adver_int_v2()) * 100 {
                return fail(
                    DropReason::Interval,
                    format!(
                        "advertisement interval mismatch mine={} sec rcv'd={} sec",
                        cfg.advert_int_cs / 100,
                        packet.adver_int_v2()
                    ),
                );
            }
        }
        if packet.msg_type() != TYPE_ADVERTISEMENT {
            return fail(
                DropReason::Type,
                format!("Invalid packet type. {} and expect {TYPE_ADVERTISEMENT}", packet.msg_type()),
            );
        }
        if check_addr && usize::from(packet.addr_count()) != cfg.vips.len() {
            return fail(
                DropReason::AddrCount,
                format!(
                    "received an unexpected ip number count {}, expected {}!",
                    packet.addr_count(),
                    cfg.vips.len()
                ),
            );
        }
        if rx.message.len() != rx.ip_payload_len {
            return fail(
                DropReason::IpLength,
                format!(
                    "ip_tot_len mismatch against received length. {} and received {}",
                    rx.ip_payload_len,
                    rx.message.len()
                ),
            );
        }
        if !packet.verify_checksum(&rx.src, &rx.dst) {
            return fail(DropReason::Checksum, format!("Invalid VRRPv{ours} checksum"));
        }
        if rx.dst.is_multicast() != cfg.unicast_peers.is_empty() {
            let (want, got) = if cfg.unicast_peers.is_empty() { ("mult", "un") } else { ("un", "mult") };
            return fail(
                DropReason::Cast,
                format!("Expected {want}icast packet but received {got}icast packet"),
            );
        }
        self.counters.adverts_received += 1;
        let cfg = &self.cfg;
        if check_addr {
            let count = usize::from(packet.addr_count());
            let missing =
                cfg.vips.iter().find(|vip| !(0..count).any(|i| packet.addr(i, alen) == Some(**vip)));
            if let Some(vip) = missing {
                return fail(
                    DropReason::Vips,
                    format!(
                        "ip address associated with VRID {} not present in MASTER advert : {vip}",
                        cfg.vrid
                    ),
                );
            }
            if cfg.check_unicast_src && !cfg.unicast_peers.is_empty() && !cfg.unicast_peers.contains(&rx.src)
            {
                return fail(
                    DropReason::UnicastSource,
                    format!("unicast source address {} not a unicast peer", rx.src),
                );
            }
        }
        Ok(())
    }

    /// `vrrp_state_backup`.
    fn backup_rx(&mut self, now: Instant, rx: &Received<'_>, packet: &Packet<&[u8]>, out: &mut Vec<Action>) {
        let check_addr = !(self.cfg.skip_check_adv_addr && self.master_addr == Some(rx.src));
        if self.check(rx, packet, check_addr, out).is_err() {
            return;
        }
        let prio = packet.priority();
        let preempt_pending = self.cfg.preempt_delay_ms > 0 && self.preempt_until.is_none_or(|t| t > now);
        if prio == 0 {
            self.log("Backup received priority 0 advertisement", out);
            self.timer = Some(now + self.skew());
        } else if self.cfg.nopreempt || prio >= self.effective || preempt_pending {
            if self.cfg.version == Version::V3 {
                self.learn_interval(packet.max_adver_int_v3(), "master", out);
            }
            self.timer = Some(now + self.master_down());
            self.master_addr = Some(rx.src);
            if self.cfg.preempt_delay_ms > 0 {
                if prio >= self.effective {
                    if self.preempt_until.take().is_some() {
                        self.log("stop preempt delay", out);
                    }
                } else if self.preempt_until.is_none() {
                    let d = self.cfg.preempt_delay_ms;
                    self.log(&format!("start preempt delay ({}.{:06})", d / 1000, (d % 1000) * 1000), out);
                    self.preempt_until = Some(now + ms(d));
                }
            }
            self.wants_master = false;
        } else {
            self.log(&format!("received lower priority ({prio}) advert from {} - discarding", rx.src), out);
            self.master_addr = Some(rx.src);
        }
    }

    /// `vrrp_state_master_rx`.
    fn master_rx(&mut self, now: Instant, rx: &Received<'_>, packet: &Packet<&[u8]>, out: &mut Vec<Action>) {
        if self.check(rx, packet, true, out).is_err() {
            return;
        }
        let prio = packet.priority();
        let cmp = rx.src.cmp(&self.cfg.src);
        let higher = prio > self.effective || (prio == self.effective && cmp == Ordering::Greater);
        if prio == 0 || (self.cfg.higher_prio_send_advert && higher) {
            self.advertise(self.effective, out);
            if prio == 0 {
                self.log("Master received priority 0 message", out);
                return;
            }
        }
        if prio == self.effective {
            if cmp == Ordering::Equal {
                self.log(
                    "WARNING - equal priority advert received from remote host with our IP address.",
                    out,
                );
            } else if self.effective == 255 {
                self.log(
                    "CONFIGURATION ERROR: local instance and a remote instance are both configured as address owner, please fix - reducing local priority",
                    out,
                );
                self.base_priority = 254;
                self.effective = self.compute_effective();
            }
        }
        if prio < self.effective || (prio == self.effective && cmp == Ordering::Less) {
            let election = if self.cfg.lower_prio_no_advert { "" } else { ", forcing new election" };
            self.log(
                &format!(
                    "Received advert from {} with lower priority {prio}, ours {}{election}",
                    rx.src, self.effective
                ),
                out,
            );
            if !self.cfg.lower_prio_no_advert {
                self.advertise(self.effective, out);
            }
            if self.cfg.garp_lower_prio_repeat > 0 {
                self.garp(self.cfg.garp_lower_prio_repeat, out);
                if self.cfg.garp_lower_prio_delay_ms > 0 {
                    self.schedule_garp(
                        now + ms(self.cfg.garp_lower_prio_delay_ms),
                        self.cfg.garp_lower_prio_repeat,
                    );
                }
            }
        } else if prio > self.effective || (prio == self.effective && cmp == Ordering::Greater) {
            if prio > self.effective {
                self.log(
                    &format!(
                        "Master received advert from {} with higher priority {prio}, ours {}",
                        rx.src, self.effective
                    ),
                    out,
                );
            } else {
                self.log(
                    &format!(
                        "Master received advert from {} with same priority {prio} but higher IP address than ours",
                        rx.src
                    ),
                    out,
                );
            }
            if self.cfg.version == Version::V3 {
                self.learn_interval(packet.max_adver_int_v3(), "new master", out);
            }
            self.master_addr = Some(rx.src);
            self.leave_master(now, out);
        }
    }

    fn learn_interval(&mut self, cs: u16, by: &str, out: &mut Vec<Action>) {
        if cs != self.master_adver_int_cs {
            let text = format!(
                "advertisement interval updated from {}ms to {}ms by {by}",
                u32::from(self.master_adver_int_cs) * 10,
                u32::from(cs) * 10
            );
            self.log(&text, out);
            self.master_adver_int_cs = cs;
        }
    }

    // --- transitions ---

    /// `vrrp_state_master_tx` + `vrrp_state_become_master`: advert first (so the old master
    /// yields before our GARPs), then the VIPs, then a GARP burst; the second burst later.
    fn become_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.advertise(self.effective, out);
        self.enter(State::Master, "", out);
        if self.master_adver_int_cs != self.cfg.advert_int_cs {
            let text = format!(
                "changing advert interval from {}ms to locally configured {}ms",
                u32::from(self.master_adver_int_cs) * 10,
                u32::from(self.cfg.advert_int_cs) * 10
            );
            self.log(&text, out);
            self.master_adver_int_cs = self.cfg.advert_int_cs;
        }
        out.push(Action::ClaimVips);
        self.log("setting VIPs.", out);
        self.garp(self.cfg.garp_master_repeat, out);
        if self.cfg.garp_master_refresh_ms > 0 {
            self.refresh_at = Some(now + ms(self.cfg.garp_master_refresh_ms));
        }
        if self.cfg.garp_master_delay_ms > 0 {
            self.schedule_garp(now + ms(self.cfg.garp_master_delay_ms), self.cfg.garp_master_repeat);
        }
        self.timer = Some(now + self.adver_int());
        self.wants_master = false;
        self.master_addr = Some(self.cfg.src);
        self.counters.become_master += 1;
    }

    /// `vrrp_state_leave_master` to BACKUP: no farewell advert, VIPs released, full down timer.
    fn leave_master(&mut self, now: Instant, out: &mut Vec<Action>) {
        self.enter(State::Backup, "", out);
        self.preempt_until = None;
        self.release_vips(out);
        self.refresh_at = None;
        self.timer = Some(now + self.master_down());
        self.wants_master = false;
        self.counters.release_master += 1;
    }

    fn apply_fault(&mut self, now: Instant, out: &mut Vec<Action>) {
        let faulted = self.faulted();
        match self.state {
            State::Master if faulted => {
                self.enter(State::Fault, "", out);
                self.resign(out);
                self.timer = None;
                self.refresh_at = None;
                self.wants_master = false;
                self.counters.release_master += 1;
            }
            State::Backup if faulted => {
                self.enter(State::Fault, "", out);
                self.timer = None;
                self.wants_master = false;
            }
            State::Fault if !faulted => {
                self.enter(State::Backup, "", out);
                self.preempt_until = None;
                self.master_adver_int_cs = self.cfg.advert_int_cs;
                self.timer = Some(now + self.master_down());
            }
            _ => {}
        }
    }

    /// A MASTER's goodbye: priority-0 advert, then the VIPs go.
    fn resign(&mut self, out: &mut Vec<Action>) {
        self.advertise(0, out);
        self.log("sent 0 priority", out);
        self.release_vips(out);
    }

    fn enter(&mut self, to: State, suffix: &str, out: &mut Vec<Action>) {
        let from = self.state;
        self.state = to;
        out.push(Action::Transition { from, to });
        if to != State::Stop {
            self.log(&format!("Entering {} STATE{suffix}", to.name()), out);
        }
    }

    fn release_vips(&self, out: &mut Vec<Action>) {
        out.push(Action::ReleaseVips);
        self.log("removing VIPs.", out);
    }

    /// One advert per destination: the multicast group, or each unicast peer.
    fn advertise(&mut self, priority: u8, out: &mut Vec<Action>) {
        if self.cfg.unicast_peers.is_empty() {
            let dst = self.cfg.mcast_group;
            out.push(Action::Send { dst, message: self.advert(priority, dst) });
        } else {
            for &dst in &self.cfg.unicast_peers {
                out.push(Action::Send { dst, message: self.advert(priority, dst) });
            }
        }
        self.counters.adverts_sent += 1;
        if priority == 0 {
            self.counters.priority_zero_sent += 1;
        }
    }

    fn garp(&self, rounds: u32, out: &mut Vec<Action>) {
        if rounds > 0 && !self.cfg.vips.is_empty() && self.state == State::Master {
            out.push(Action::Garp { rounds });
        }
    }

    fn schedule_garp(&mut self, at: Instant, rounds: u32) {
        if self.garps.len() < MAX_PENDING_GARPS {
            self.garps.push((at, rounds));
        }
    }

    // --- timers and priority ---

    fn faulted(&self) -> bool {
        self.own_fault || self.group_fault
    }

    fn compute_effective(&self) -> u8 {
        if self.base_priority == 255 {
            return 255;
        }
        (i64::from(self.base_priority) + i64::from(self.delta)).clamp(1, 254) as u8
    }

    fn adver_int(&self) -> Duration {
        Duration::from_millis(u64::from(self.cfg.advert_int_cs) * 10)
    }

    /// Skew_Time in microseconds: v2 `(256 − prio)/256` s whatever the interval (RFC 3768); v3
    /// scaled by the master's interval (RFC 5798).
    fn skew_us(&self) -> u64 {
        let share = 256 - u64::from(self.effective);
        match self.cfg.version {
            Version::V2 => share * 1_000_000 / 256,
            Version::V3 => share * u64::from(self.master_adver_int_cs) * 10_000 / 256,
        }
    }

    fn skew(&self) -> Duration {
        Duration::from_millis(self.skew_us() / 1000)
    }

    /// Master_Down_Interval = down_timer_adverts × Master_Adver_Interval + Skew_Time, computed in
    /// microseconds as keepalived does and truncated to our millisecond clock.
    fn master_down(&self) -> Duration {
        let int_us = u64::from(self.master_adver_int_cs) * 10_000;
        Duration::from_millis((u64::from(self.cfg.down_timer_adverts) * int_us + self.skew_us()) / 1000)
    }

    fn drop(&mut self, reason: DropReason) {
        self.counters.dropped[reason.index()] += 1;
    }

    fn log(&self, text: &str, out: &mut Vec<Action>) {
        out.push(Action::Log(format!("({}) {text}", self.cfg.name)));
    }
}

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

/// Compares without an early exit, as keepalived's `memcmp_constant_time`.
fn constant_time_eq(a: &[u8; 8], b: &[u8; 8]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
