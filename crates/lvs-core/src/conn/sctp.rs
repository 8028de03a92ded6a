//! The SCTP state machine of `ip_vs_proto_sctp.c`: fourteen states, ten chunk events and the
//! `sctp_states[3][10][14]` table (INPUT, OUTPUT, INPUT-ONLY), names and timeouts.

use super::Dir;

/// `IP_VS_SCTP_S_NONE`.
pub const NONE: u8 = 0;
/// `IP_VS_SCTP_S_INIT1`: first client INIT seen.
pub const INIT1: u8 = 1;
/// `IP_VS_SCTP_S_INIT`: a repeated client INIT.
pub const INIT: u8 = 2;
/// `IP_VS_SCTP_S_COOKIE_SENT`.
pub const COOKIE_SENT: u8 = 3;
/// `IP_VS_SCTP_S_COOKIE_REPLIED`.
pub const COOKIE_REPLIED: u8 = 4;
/// `IP_VS_SCTP_S_COOKIE_WAIT`.
pub const COOKIE_WAIT: u8 = 5;
/// `IP_VS_SCTP_S_COOKIE`.
pub const COOKIE: u8 = 6;
/// `IP_VS_SCTP_S_COOKIE_ECHOED`.
pub const COOKIE_ECHOED: u8 = 7;
/// `IP_VS_SCTP_S_ESTABLISHED`.
pub const ESTABLISHED: u8 = 8;
/// `IP_VS_SCTP_S_SHUTDOWN_SENT`.
pub const SHUTDOWN_SENT: u8 = 9;
/// `IP_VS_SCTP_S_SHUTDOWN_RECEIVED`.
pub const SHUTDOWN_RECEIVED: u8 = 10;
/// `IP_VS_SCTP_S_SHUTDOWN_ACK_SENT`.
pub const SHUTDOWN_ACK_SENT: u8 = 11;
/// `IP_VS_SCTP_S_REJECTED`.
pub const REJECTED: u8 = 12;
/// `IP_VS_SCTP_S_CLOSED`.
pub const CLOSED: u8 = 13;
/// Number of SCTP states.
pub const STATE_COUNT: usize = 14;

/// The names `ipvsadm -Lc` prints (`sctp_state_name_table`).
pub const STATE_NAMES: [&str; STATE_COUNT] = [
    "NONE",
    "INIT1",
    "INIT",
    "C-SENT",
    "C-REPLIED",
    "C-WAIT",
    "COOKIE",
    "C-ECHOED",
    "ESTABLISHED",
    "S-SENT",
    "S-RECEIVED",
    "S-ACK-SENT",
    "REJECTED",
    "CLOSED",
];

/// `IP_VS_SCTP_MAX_RTO` in seconds (60 + 1).
const MAX_RTO: u32 = 61;

/// `sctp_timeouts[]` in seconds: NONE 2, INIT1 4, REJECTED 4, ESTABLISHED 900, all others 61.
pub const DEFAULT_TIMEOUTS: [u32; STATE_COUNT] =
    [2, 4, MAX_RTO, MAX_RTO, MAX_RTO, MAX_RTO, MAX_RTO, MAX_RTO, 900, MAX_RTO, MAX_RTO, MAX_RTO, 4, MAX_RTO];

/// SCTP chunk types (RFC 9260 §3.2) the state machine distinguishes.
pub mod chunk {
    /// DATA.
    pub const DATA: u8 = 0;
    /// INIT.
    pub const INIT: u8 = 1;
    /// INIT ACK.
    pub const INIT_ACK: u8 = 2;
    /// SACK.
    pub const SACK: u8 = 3;
    /// HEARTBEAT.
    pub const HEARTBEAT: u8 = 4;
    /// HEARTBEAT ACK.
    pub const HEARTBEAT_ACK: u8 = 5;
    /// ABORT.
    pub const ABORT: u8 = 6;
    /// SHUTDOWN.
    pub const SHUTDOWN: u8 = 7;
    /// SHUTDOWN ACK.
    pub const SHUTDOWN_ACK: u8 = 8;
    /// ERROR.
    pub const ERROR: u8 = 9;
    /// COOKIE ECHO.
    pub const COOKIE_ECHO: u8 = 10;
    /// COOKIE ACK.
    pub const COOKIE_ACK: u8 = 11;
    /// ECNE.
    pub const ECN_ECNE: u8 = 12;
    /// CWR.
    pub const ECN_CWR: u8 = 13;
    /// SHUTDOWN COMPLETE.
    pub const SHUTDOWN_COMPLETE: u8 = 14;
}

// Events (`enum ipvs_sctp_event_t`).
const EV_DATA: u8 = 0;
const EV_INIT: u8 = 1;
const EV_INIT_ACK: u8 = 2;
const EV_COOKIE_ECHO: u8 = 3;
const EV_COOKIE_ACK: u8 = 4;
const EV_SHUTDOWN: u8 = 5;
const EV_SHUTDOWN_ACK: u8 = 6;
const EV_SHUTDOWN_COMPLETE: u8 = 7;
const EV_ERROR: u8 = 8;
const EV_ABORT: u8 = 9;

/// `sctp_events[]`: chunk type → event; types past SHUTDOWN COMPLETE count as DATA.
const EVENTS: [u8; 15] = [
    EV_DATA,              // DATA
    EV_INIT,              // INIT
    EV_INIT_ACK,          // INIT ACK
    EV_DATA,              // SACK
    EV_DATA,              // HEARTBEAT
    EV_DATA,              // HEARTBEAT ACK
    EV_ABORT,             // ABORT
    EV_SHUTDOWN,          // SHUTDOWN
    EV_SHUTDOWN_ACK,      // SHUTDOWN ACK
    EV_ERROR,             // ERROR
    EV_COOKIE_ECHO,       // COOKIE ECHO
    EV_COOKIE_ACK,        // COOKIE ACK
    EV_DATA,              // ECNE
    EV_DATA,              // CWR
    EV_SHUTDOWN_COMPLETE, // SHUTDOWN COMPLETE
];

/// The event of a packet: its first chunk, except that an ABORT bundled right after a COOKIE ECHO
/// or COOKIE ACK is honoured (`set_sctp_state`).
#[inline]
pub fn event(first_chunk: u8, abort_follows: bool) -> u8 {
    let ty = if abort_follows && matches!(first_chunk, chunk::COOKIE_ECHO | chunk::COOKIE_ACK) {
        chunk::ABORT
    } else {
        first_chunk
    };
    EVENTS.get(ty as usize).copied().unwrap_or(EV_DATA)
}

const I1: u8 = INIT1;
const IN: u8 = INIT;
const CS: u8 = COOKIE_SENT;
const CR: u8 = COOKIE_REPLIED;
const CW: u8 = COOKIE_WAIT;
const CO: u8 = COOKIE;
const CE: u8 = COOKIE_ECHOED;
const ES: u8 = ESTABLISHED;
const SS: u8 = SHUTDOWN_SENT;
const SR: u8 = SHUTDOWN_RECEIVED;
const SA: u8 = SHUTDOWN_ACK_SENT;
const RJ: u8 = REJECTED;
const CL: u8 = CLOSED;

/// `sctp_states[direction][event][state]` (columns NONE INIT1 INIT C-SENT C-REPLIED C-WAIT COOKIE
/// C-ECHOED ESTABLISHED S-SENT S-RECEIVED S-ACK-SENT REJECTED CLOSED).
#[rustfmt::skip]
const TABLE: [[[u8; STATE_COUNT]; 10]; 3] = [
    // INPUT
    [
        /* d   */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* i   */ [I1, IN, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, IN, IN],
        /* i_a */ [CW, CW, CW, CS, CR, CO, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_e */ [CR, IN, IN, CR, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_a */ [ES, I1, IN, CS, CR, CW, CO, ES, ES, SS, SR, SA, RJ, CL],
        /* s   */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        /* s_a */ [CL, IN, IN, CS, CR, CW, CO, CE, ES, CL, SR, CL, RJ, CL],
        /* s_c */ [CL, CL, CL, CS, CR, CW, CO, CE, ES, SS, SR, CL, RJ, CL],
        /* err */ [CL, I1, IN, CS, CR, CW, CO, CL, ES, SS, SR, SA, RJ, CL],
        /* ab  */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // OUTPUT
    [
        /* d   */ [ES, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* i   */ [CW, CW, CW, CW, CW, CW, CW, CW, ES, CW, CW, CW, CW, CW],
        /* i_a */ [CS, CS, CS, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_e */ [CE, CE, CE, CE, CE, CE, CE, CE, ES, SS, SR, SA, RJ, CL],
        /* c_a */ [ES, ES, ES, ES, ES, ES, ES, ES, ES, SS, SR, SA, RJ, CL],
        /* s   */ [SS, SS, SS, SS, SS, SS, SS, SS, SS, SS, SR, SA, RJ, CL],
        /* s_a */ [SA, SA, SA, SA, SA, CW, CO, CE, ES, SA, SA, SA, RJ, CL],
        /* s_c */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* err */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* ab  */ [CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /* d   */ [ES, I1, IN, CS, CR, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* i   */ [I1, IN, IN, IN, IN, IN, CO, CE, ES, SS, SR, SA, IN, IN],
        /* i_a */ [CE, CE, CE, CE, CE, CE, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_e */ [ES, ES, ES, ES, ES, ES, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* c_a */ [ES, I1, IN, ES, ES, CW, ES, ES, ES, SS, SR, SA, RJ, CL],
        /* s   */ [SR, I1, IN, CS, CR, CW, CO, CE, SR, SS, SR, SA, RJ, CL],
        /* s_a */ [CL, IN, IN, CS, CR, CW, CO, CE, CL, CL, SR, CL, RJ, CL],
        /* s_c */ [CL, CL, CL, CL, CL, CW, CO, CE, ES, SS, CL, CL, RJ, CL],
        /* err */ [CL, I1, IN, CS, CR, CW, CO, CE, ES, SS, SR, SA, RJ, CL],
        /* ab  */ [CL, CL, CL, CL, CL, RJ, CL, CL, CL, CL, CL, CL, CL, CL],
    ],
];

/// The next state for a packet whose first chunk is `first_chunk`.
#[inline]
pub fn next_state(dir: Dir, first_chunk: u8, abort_follows: bool, state: u8) -> u8 {
    let ev = event(first_chunk, abort_follows) as usize;
    TABLE[dir as usize][ev][(state as usize).min(STATE_COUNT - 1)]
}

/// Only ESTABLISHED counts as an active connection.
#[inline]
pub fn is_active(state: u8) -> bool {
    state == ESTABLISHED
}

/// The name of a state (`ERR!` out of range).
pub fn state_name(state: u8) -> &'static str {
    STATE_NAMES.get(state as usize).copied().unwrap_or("ERR!")
}

#[cfg(test)]
mod tests {
    use super::chunk::{
        ABORT, COOKIE_ACK, COOKIE_ECHO, DATA, HEARTBEAT, INIT_ACK, SACK, SHUTDOWN, SHUTDOWN_ACK,
        SHUTDOWN_COMPLETE,
    };
    use super::*;

    const C_INIT: u8 = chunk::INIT;

    fn walk(steps: &[(Dir, u8)]) -> Vec<&'static str> {
        let mut s = NONE;
        steps
            .iter()
            .map(|&(d, c)| {
                s = next_state(d, c, false, s);
                state_name(s)
            })
            .collect()
    }

    #[test]
    fn nat_association_setup_and_shutdown() {
        // Client INIT, server INIT-ACK, client COOKIE-ECHO, server COOKIE-ACK: the states as seen
        // by the real server (comment block of ip_vs_proto_sctp.c): INIT1, C-SENT, C-REPLIED, then
        // ESTABLISHED; client SHUTDOWN → S-RECEIVED, server SHUTDOWN-ACK → S-ACK-SENT, client
        // SHUTDOWN-COMPLETE → CLOSED.
        let (i, o) = (Dir::Input, Dir::Output);
        assert_eq!(
            walk(&[
                (i, C_INIT),
                (o, INIT_ACK),
                (i, COOKIE_ECHO),
                (o, COOKIE_ACK),
                (i, DATA),
                (o, SACK),
                (i, SHUTDOWN),
                (o, SHUTDOWN_ACK),
                (i, SHUTDOWN_COMPLETE),
            ]),
            [
                "INIT1",
                "C-SENT",
                "C-REPLIED",
                "ESTABLISHED",
                "ESTABLISHED",
                "ESTABLISHED",
                "S-RECEIVED",
                "S-ACK-SENT",
                "CLOSED"
            ]
        );
    }

    #[test]
    fn dr_association_uses_input_only() {
        // Without replies: INIT → INIT1, COOKIE-ECHO → ESTABLISHED (INPUT-ONLY c_e row), a second
        // INIT before that → INIT.
        let io = Dir::InputOnly;
        assert_eq!(
            walk(&[(io, C_INIT), (io, C_INIT), (io, COOKIE_ECHO), (io, DATA)]),
            ["INIT1", "INIT", "ESTABLISHED", "ESTABLISHED"]
        );
        assert_eq!(
            walk(&[(io, C_INIT), (io, COOKIE_ECHO), (io, SHUTDOWN), (io, SHUTDOWN_COMPLETE)]),
            ["INIT1", "ESTABLISHED", "S-RECEIVED", "CLOSED"]
        );
    }

    #[test]
    fn abort_events() {
        // ABORT while the server's INIT is outstanding (C-WAIT) → REJECTED; elsewhere → CLOSED.
        assert_eq!(next_state(Dir::Input, ABORT, false, COOKIE_WAIT), REJECTED);
        assert_eq!(next_state(Dir::Input, ABORT, false, ESTABLISHED), CLOSED);
        assert_eq!(next_state(Dir::Output, ABORT, false, INIT1), REJECTED);
        // An ABORT bundled after COOKIE-ECHO is the event; after DATA it is not looked at.
        assert_eq!(event(COOKIE_ECHO, true), EV_ABORT);
        assert_eq!(event(COOKIE_ACK, true), EV_ABORT);
        assert_eq!(event(DATA, true), EV_DATA);
        assert_eq!(next_state(Dir::Input, COOKIE_ECHO, true, COOKIE_SENT), CLOSED);
        // Unknown chunk types (AUTH 15, I-DATA 64, FORWARD-TSN 192) count as DATA.
        assert_eq!(event(15, false), EV_DATA);
        assert_eq!(event(192, false), EV_DATA);
        // HEARTBEAT on NONE (sloppy_sctp) → ESTABLISHED.
        assert_eq!(next_state(Dir::Input, HEARTBEAT, false, NONE), ESTABLISHED);
    }

    #[test]
    fn names_and_timeouts() {
        assert_eq!(state_name(COOKIE_SENT), "C-SENT");
        assert_eq!(state_name(SHUTDOWN_ACK_SENT), "S-ACK-SENT");
        assert_eq!(state_name(14), "ERR!");
        assert_eq!(DEFAULT_TIMEOUTS[NONE as usize], 2);
        assert_eq!(DEFAULT_TIMEOUTS[INIT1 as usize], 4);
        assert_eq!(DEFAULT_TIMEOUTS[REJECTED as usize], 4);
        assert_eq!(DEFAULT_TIMEOUTS[ESTABLISHED as usize], 900);
        assert_eq!(DEFAULT_TIMEOUTS[CLOSED as usize], 61);
        assert!(is_active(ESTABLISHED) && !is_active(SHUTDOWN_SENT));
    }

    #[test]
    fn all_state_names_and_default_timeouts() {
        // §4.5: NONE "NONE", INIT1 "INIT1", INIT "INIT", COOKIE_SENT "C-SENT", COOKIE_REPLIED
        // "C-REPLIED", COOKIE_WAIT "C-WAIT", COOKIE "COOKIE", COOKIE_ECHOED "C-ECHOED", ESTABLISHED
        // "ESTABLISHED", SHUTDOWN_SENT "S-SENT", SHUTDOWN_RECEIVED "S-RECEIVED", SHUTDOWN_ACK_SENT
        // "S-ACK-SENT", REJECTED "REJECTED", CLOSED "CLOSED". Timeouts: NONE 2 s, INIT1 4 s,
        // REJECTED 4 s, ESTABLISHED 900 s, all others IP_VS_SCTP_MAX_RTO = 61 s.
        let states = [
            (NONE, "NONE", 2),
            (INIT1, "INIT1", 4),
            (INIT, "INIT", 61),
            (COOKIE_SENT, "C-SENT", 61),
            (COOKIE_REPLIED, "C-REPLIED", 61),
            (COOKIE_WAIT, "C-WAIT", 61),
            (COOKIE, "COOKIE", 61),
            (COOKIE_ECHOED, "C-ECHOED", 61),
            (ESTABLISHED, "ESTABLISHED", 900),
            (SHUTDOWN_SENT, "S-SENT", 61),
            (SHUTDOWN_RECEIVED, "S-RECEIVED", 61),
            (SHUTDOWN_ACK_SENT, "S-ACK-SENT", 61),
            (REJECTED, "REJECTED", 4),
            (CLOSED, "CLOSED", 61),
        ];
        assert_eq!(states.len(), STATE_COUNT);
        for (i, (state, name, timeout)) in states.into_iter().enumerate() {
            assert_eq!(state as usize, i, "{name} numbering");
            assert_eq!(state_name(state), name);
            assert_eq!(DEFAULT_TIMEOUTS[i], timeout, "{name} timeout");
            // §4.4: only ESTABLISHED is active.
            assert_eq!(is_active(state), name == "ESTABLISHED");
        }
    }
}
