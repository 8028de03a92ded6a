//! The TCP state machine of `ip_vs_proto_tcp.c` (Linux 6.12): the three transition tables (INPUT,
//! OUTPUT, INPUT-ONLY), the event index `rst > syn > fin > ack > none`, state names, default
//! timeouts and which states count as active.

use super::Dir;

/// `IP_VS_TCP_S_NONE`.
pub const NONE: u8 = 0;
/// `IP_VS_TCP_S_ESTABLISHED`.
pub const ESTABLISHED: u8 = 1;
/// `IP_VS_TCP_S_SYN_SENT`.
pub const SYN_SENT: u8 = 2;
/// `IP_VS_TCP_S_SYN_RECV`.
pub const SYN_RECV: u8 = 3;
/// `IP_VS_TCP_S_FIN_WAIT`.
pub const FIN_WAIT: u8 = 4;
/// `IP_VS_TCP_S_TIME_WAIT`.
pub const TIME_WAIT: u8 = 5;
/// `IP_VS_TCP_S_CLOSE`.
pub const CLOSE: u8 = 6;
/// `IP_VS_TCP_S_CLOSE_WAIT`.
pub const CLOSE_WAIT: u8 = 7;
/// `IP_VS_TCP_S_LAST_ACK`.
pub const LAST_ACK: u8 = 8;
/// `IP_VS_TCP_S_LISTEN`.
pub const LISTEN: u8 = 9;
/// `IP_VS_TCP_S_SYNACK`.
pub const SYNACK: u8 = 10;
/// Number of TCP states.
pub const STATE_COUNT: usize = 11;

/// The names `ipvsadm -Lc` prints (`tcp_state_name_table`).
pub const STATE_NAMES: [&str; STATE_COUNT] = [
    "NONE",
    "ESTABLISHED",
    "SYN_SENT",
    "SYN_RECV",
    "FIN_WAIT",
    "TIME_WAIT",
    "CLOSE",
    "CLOSE_WAIT",
    "LAST_ACK",
    "LISTEN",
    "SYNACK",
];

/// `tcp_timeouts[]` in seconds: NONE 2, ESTABLISHED 900, SYN_SENT 120, SYN_RECV 60, FIN_WAIT 120,
/// TIME_WAIT 120, CLOSE 10, CLOSE_WAIT 60, LAST_ACK 30, LISTEN 120, SYNACK 120.
pub const DEFAULT_TIMEOUTS: [u32; STATE_COUNT] = [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120];

/// TCP header flag bits as they appear in the flags byte (offset 13).
pub mod flags {
    /// FIN.
    pub const FIN: u8 = 0x01;
    /// SYN.
    pub const SYN: u8 = 0x02;
    /// RST.
    pub const RST: u8 = 0x04;
    /// PSH.
    pub const PSH: u8 = 0x08;
    /// ACK.
    pub const ACK: u8 = 0x10;
}

const ES: u8 = ESTABLISHED;
const SS: u8 = SYN_SENT;
const SR: u8 = SYN_RECV;
const FW: u8 = FIN_WAIT;
const TW: u8 = TIME_WAIT;
const CL: u8 = CLOSE;
const CW: u8 = CLOSE_WAIT;
const LA: u8 = LAST_ACK;
const LI: u8 = LISTEN;
const SA: u8 = SYNACK;

/// `tcp_states[]` of Linux 6.12 (reference §4.3), `[direction][event][state]`; events are
/// syn, fin, ack, rst; columns NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE
/// CLOSE_WAIT LAST_ACK LISTEN SYNACK.
#[rustfmt::skip]
const TABLE: [[[u8; STATE_COUNT]; 4]; 3] = [
    // INPUT
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
    ],
    // OUTPUT
    [
        /* syn */ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
        /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
        /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// `tcp_states_dos[]`, the table `secure_tcp` switches to (reference §4.3, §4.6; the table itself
/// is in `ip_vs_proto_tcp.c`): input SYNs lead to SYNACK, and a NAT connection stays in SYNACK on
/// client ACKs until the real server's ACK shows the handshake really completed.
#[rustfmt::skip]
const TABLE_DOS: [[[u8; STATE_COUNT]; 4]; 3] = [
    // INPUT
    [
        /* syn */ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
        /* fin */ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
        /* ack */ [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
    // OUTPUT
    [
        /* syn */ [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
        /* fin */ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
        /* rst */ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
    ],
    // INPUT-ONLY
    [
        /* syn */ [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
        /* fin */ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
        /* ack */ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
        /* rst */ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
    ],
];

/// `tcp_state_idx`: rst → 3, else syn → 0, else fin → 1, else ack → 2, else none.
#[inline]
pub fn event(tcp_flags: u8) -> Option<usize> {
    if tcp_flags & flags::RST != 0 {
        Some(3)
    } else if tcp_flags & flags::SYN != 0 {
        Some(0)
    } else if tcp_flags & flags::FIN != 0 {
        Some(1)
    } else if tcp_flags & flags::ACK != 0 {
        Some(2)
    } else {
        None
    }
}

/// `set_tcp_state`'s choice of the next state: a packet with none of RST/SYN/FIN/ACK goes to CLOSE.
/// `dir` must already be [`Dir::InputOnly`] for input packets of NOOUTPUT connections.
#[inline]
pub fn next_state(dir: Dir, tcp_flags: u8, state: u8) -> u8 {
    lookup(&TABLE, dir, tcp_flags, state)
}

/// [`next_state`] with the `tcp_states_dos` table (`secure_tcp` in force).
#[inline]
pub fn next_state_dos(dir: Dir, tcp_flags: u8, state: u8) -> u8 {
    lookup(&TABLE_DOS, dir, tcp_flags, state)
}

#[inline]
fn lookup(table: &[[[u8; STATE_COUNT]; 4]; 3], dir: Dir, tcp_flags: u8, state: u8) -> u8 {
    match event(tcp_flags) {
        None => CLOSE,
        Some(ev) => table[dir as usize][ev][(state as usize).min(STATE_COUNT - 1)],
    }
}

/// `tcp_state_active_table` of Linux 6.12: ESTABLISHED, SYN_SENT, SYN_RECV and SYNACK are active.
#[inline]
pub fn is_active(state: u8) -> bool {
    matches!(state, ESTABLISHED | SYN_SENT | SYN_RECV | SYNACK)
}

/// The name of a state (`ERR!` for values out of range, as the kernel prints).
pub fn state_name(state: u8) -> &'static str {
    STATE_NAMES.get(state as usize).copied().unwrap_or("ERR!")
}

#[cfg(test)]
mod tests {
    use super::flags::*;
    use super::*;

    /// Walks `(direction, flags)` steps from NONE and returns the visited state names.
    fn walk(steps: &[(Dir, u8)]) -> Vec<&'static str> {
        let mut s = NONE;
        steps
            .iter()
            .map(|&(d, f)| {
                s = next_state(d, f, s);
                state_name(s)
            })
            .collect()
    }

    #[test]
    fn dr_lifecycle_uses_input_only_table() {
        // Reference §4.3 "Typical lifecycles": DR/TUN: SYN→SYN_RECV, ACK→ESTABLISHED, client
        // FIN→FIN_WAIT, and stays FIN_WAIT on later ACKs.
        let io = Dir::InputOnly;
        assert_eq!(
            walk(&[(io, SYN), (io, ACK), (io, ACK | PSH), (io, FIN | ACK), (io, ACK)]),
            ["SYN_RECV", "ESTABLISHED", "ESTABLISHED", "FIN_WAIT", "FIN_WAIT"]
        );
    }

    #[test]
    fn nat_lifecycle_through_close_wait_and_time_wait() {
        // Reference §4.3: NAT: SYN→SYN_RECV, SYN+ACK (output)→SYN_RECV, ACK→ESTABLISHED, client
        // FIN→CLOSE_WAIT, server FIN→TIME_WAIT.
        let (i, o) = (Dir::Input, Dir::Output);
        assert_eq!(
            walk(&[(i, SYN), (o, SYN | ACK), (i, ACK), (i, FIN | ACK), (o, FIN | ACK), (i, ACK)]),
            ["SYN_RECV", "SYN_RECV", "ESTABLISHED", "CLOSE_WAIT", "TIME_WAIT", "TIME_WAIT"]
        );
        // Server closes first: ES + output fin → FIN_WAIT, then client FIN → TIME_WAIT.
        assert_eq!(
            walk(&[(i, SYN), (o, SYN | ACK), (i, ACK), (o, FIN), (i, FIN)]),
            ["SYN_RECV", "SYN_RECV", "ESTABLISHED", "FIN_WAIT", "TIME_WAIT"]
        );
    }

    #[test]
    fn rst_wins_over_syn_and_none_flag_goes_to_close() {
        // Event index: rst > syn > fin > ack; no flag at all → CLOSE (set_tcp_state's default).
        assert_eq!(event(SYN | RST), Some(3));
        assert_eq!(event(SYN | FIN | ACK), Some(0));
        assert_eq!(event(FIN | ACK), Some(1));
        assert_eq!(event(PSH), None);
        assert_eq!(next_state(Dir::Input, PSH, ESTABLISHED), CLOSE);
        assert_eq!(next_state(Dir::Input, RST, ESTABLISHED), CLOSE);
        // RST in SYN_RECV keeps SYN_RECV on INPUT, but INPUT-ONLY SYNACK + rst → CLOSE.
        assert_eq!(next_state(Dir::Input, RST | ACK, SYN_RECV), SYN_RECV);
        assert_eq!(next_state(Dir::InputOnly, RST, SYNACK), CLOSE);
        assert_eq!(next_state(Dir::Input, RST, SYNACK), SYN_RECV);
        // Output RST in TIME_WAIT stays TIME_WAIT.
        assert_eq!(next_state(Dir::Output, RST, TIME_WAIT), TIME_WAIT);
    }

    #[test]
    fn rows_that_differ_between_input_and_input_only() {
        // fin on ESTABLISHED: INPUT → CLOSE_WAIT, INPUT-ONLY → FIN_WAIT.
        assert_eq!(next_state(Dir::Input, FIN, ESTABLISHED), CLOSE_WAIT);
        assert_eq!(next_state(Dir::InputOnly, FIN, ESTABLISHED), FIN_WAIT);
        // fin on FIN_WAIT: INPUT → TIME_WAIT, INPUT-ONLY → FIN_WAIT.
        assert_eq!(next_state(Dir::Input, FIN, FIN_WAIT), TIME_WAIT);
        assert_eq!(next_state(Dir::InputOnly, FIN, FIN_WAIT), FIN_WAIT);
        // ack on NONE (sloppy_tcp first packet) → ESTABLISHED in both input tables.
        assert_eq!(next_state(Dir::Input, ACK, NONE), ESTABLISHED);
        assert_eq!(next_state(Dir::InputOnly, ACK, NONE), ESTABLISHED);
        // A new SYN on TIME_WAIT / CLOSE restarts as SYN_RECV.
        assert_eq!(next_state(Dir::Input, SYN, TIME_WAIT), SYN_RECV);
        assert_eq!(next_state(Dir::InputOnly, SYN, CLOSE), SYN_RECV);
        // LAST_ACK + input ack → CLOSE; output LISTEN + ack → ESTABLISHED.
        assert_eq!(next_state(Dir::Input, ACK, LAST_ACK), CLOSE);
        assert_eq!(next_state(Dir::Output, ACK, LISTEN), ESTABLISHED);
    }

    #[test]
    fn active_states_are_linux_6_12() {
        let active: Vec<&str> = (0..STATE_COUNT as u8).filter(|&s| is_active(s)).map(state_name).collect();
        assert_eq!(active, ["ESTABLISHED", "SYN_SENT", "SYN_RECV", "SYNACK"]);
        assert_eq!(state_name(11), "ERR!");
        assert_eq!(DEFAULT_TIMEOUTS[ESTABLISHED as usize], 900);
        assert_eq!(DEFAULT_TIMEOUTS[FIN_WAIT as usize], 120);
        assert_eq!(DEFAULT_TIMEOUTS[CLOSE as usize], 10);
    }

    /// The three tables of reference §4.3 as printed there (columns sNO .. sSA, rows syn fin ack
    /// rst), so that every one of the 3 × 4 × 11 cells is checked against the reference text.
    const REFERENCE_TABLES: [(Dir, &str); 3] = [
        (
            Dir::Input,
            "sSR  sES  sES  sSR  sSR  sSR  sSR  sSR  sSR  sSR  sSR
             sCL  sCW  sSS  sTW  sTW  sTW  sCL  sCW  sLA  sLI  sTW
             sES  sES  sSS  sES  sFW  sTW  sCL  sCW  sCL  sLI  sES
             sCL  sCL  sCL  sSR  sCL  sCL  sCL  sCL  sLA  sLI  sSR",
        ),
        (
            Dir::Output,
            "sSS  sES  sSS  sSR  sSS  sSS  sSS  sSS  sSS  sLI  sSR
             sTW  sFW  sSS  sTW  sFW  sTW  sCL  sTW  sLA  sLI  sTW
             sES  sES  sSS  sES  sFW  sTW  sCL  sCW  sLA  sES  sES
             sCL  sCL  sSS  sCL  sCL  sTW  sCL  sCL  sCL  sCL  sCL",
        ),
        (
            Dir::InputOnly,
            "sSR  sES  sES  sSR  sSR  sSR  sSR  sSR  sSR  sSR  sSR
             sCL  sFW  sSS  sTW  sFW  sTW  sCL  sCW  sLA  sLI  sTW
             sES  sES  sSS  sES  sFW  sTW  sCL  sCW  sCL  sLI  sES
             sCL  sCL  sCL  sSR  sCL  sCL  sCL  sCL  sLA  sLI  sCL",
        ),
    ];

    /// The reference's short names (`sNO` ...) in state-number order.
    const SHORT: [&str; STATE_COUNT] =
        ["sNO", "sES", "sSS", "sSR", "sFW", "sTW", "sCL", "sCW", "sLA", "sLI", "sSA"];

    /// Checks every cell of three direction tables written as the reference prints them: rows syn,
    /// fin, ack, rst; each packet carries exactly that one flag.
    fn assert_tables(tables: [(Dir, &str); 3], next: fn(Dir, u8, u8) -> u8) {
        let row_flags = [SYN, FIN, ACK, RST];
        let mut checked = 0;
        for (dir, text) in tables {
            let rows: Vec<Vec<&str>> = text.lines().map(|l| l.split_whitespace().collect()).collect();
            assert_eq!(rows.len(), 4);
            for (row, &flag) in rows.iter().zip(&row_flags) {
                assert_eq!(row.len(), STATE_COUNT);
                for (state, want) in row.iter().enumerate() {
                    let got = next(dir, flag, state as u8);
                    assert_eq!(
                        SHORT[got as usize], *want,
                        "{dir:?} flag {flag:#x} from {}",
                        STATE_NAMES[state]
                    );
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 3 * 4 * 11);
    }

    #[test]
    fn every_transition_cell_matches_the_reference_tables() {
        assert_tables(REFERENCE_TABLES, next_state);
        // The event index (rst > syn > fin > ack) picks the row when several flags are set.
        for state in 0..STATE_COUNT as u8 {
            for dir in [Dir::Input, Dir::Output, Dir::InputOnly] {
                assert_eq!(next_state(dir, SYN | RST, state), next_state(dir, RST, state));
                assert_eq!(next_state(dir, SYN | FIN | ACK, state), next_state(dir, SYN, state));
                assert_eq!(next_state(dir, FIN | ACK, state), next_state(dir, FIN, state));
                assert_eq!(next_state(dir, ACK | PSH, state), next_state(dir, ACK, state));
                assert_eq!(next_state(dir, PSH, state), CLOSE);
            }
        }
    }

    #[test]
    fn all_state_names_and_default_timeouts() {
        // §4.3: names printed exactly "NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE
        // CLOSE_WAIT LAST_ACK LISTEN SYNACK"; tcp_timeouts[]: NONE 2 s, ESTABLISHED 900 s,
        // SYN_SENT 120 s, SYN_RECV 60 s, FIN_WAIT 120 s, TIME_WAIT 120 s, CLOSE 10 s, CLOSE_WAIT
        // 60 s, LAST_ACK 30 s, LISTEN 120 s, SYNACK 120 s.
        let names: Vec<&str> = (0..STATE_COUNT as u8).map(state_name).collect();
        assert_eq!(
            names.join(" "),
            "NONE ESTABLISHED SYN_SENT SYN_RECV FIN_WAIT TIME_WAIT CLOSE CLOSE_WAIT LAST_ACK LISTEN SYNACK"
        );
        let by_name: Vec<(&str, u32)> = STATE_NAMES.iter().copied().zip(DEFAULT_TIMEOUTS).collect();
        assert_eq!(
            by_name,
            [
                ("NONE", 2),
                ("ESTABLISHED", 900),
                ("SYN_SENT", 120),
                ("SYN_RECV", 60),
                ("FIN_WAIT", 120),
                ("TIME_WAIT", 120),
                ("CLOSE", 10),
                ("CLOSE_WAIT", 60),
                ("LAST_ACK", 30),
                ("LISTEN", 120),
                ("SYNACK", 120),
            ]
        );
        // The numbering of §4.3 (NONE 0 ... SYNACK 10).
        assert_eq!(
            [
                NONE,
                ESTABLISHED,
                SYN_SENT,
                SYN_RECV,
                FIN_WAIT,
                TIME_WAIT,
                CLOSE,
                CLOSE_WAIT,
                LAST_ACK,
                LISTEN,
                SYNACK
            ],
            [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
        );
    }

    /// `tcp_states_dos[]` as printed in `ip_vs_proto_tcp.c` (the reference §4.3 points there).
    const REFERENCE_DOS_TABLES: [(Dir, &str); 3] = [
        (
            Dir::Input,
            "sSR  sES  sES  sSR  sSR  sSR  sSR  sSR  sSR  sSR  sSA
             sCL  sCW  sSS  sTW  sTW  sTW  sCL  sCW  sLA  sLI  sSA
             sES  sES  sSS  sSR  sFW  sTW  sCL  sCW  sCL  sLI  sSA
             sCL  sCL  sCL  sSR  sCL  sCL  sCL  sCL  sLA  sLI  sCL",
        ),
        (
            Dir::Output,
            "sSS  sES  sSS  sSA  sSS  sSS  sSS  sSS  sSS  sLI  sSA
             sTW  sFW  sSS  sTW  sFW  sTW  sCL  sTW  sLA  sLI  sTW
             sES  sES  sSS  sES  sFW  sTW  sCL  sCW  sLA  sES  sES
             sCL  sCL  sSS  sCL  sCL  sTW  sCL  sCL  sCL  sCL  sCL",
        ),
        (
            Dir::InputOnly,
            "sSA  sES  sES  sSR  sSA  sSA  sSA  sSA  sSA  sSA  sSA
             sCL  sFW  sSS  sTW  sFW  sTW  sCL  sCW  sLA  sLI  sTW
             sES  sES  sSS  sES  sFW  sTW  sCL  sCW  sCL  sLI  sES
             sCL  sCL  sCL  sSR  sCL  sCL  sCL  sCL  sLA  sLI  sCL",
        ),
    ];

    #[test]
    fn every_secure_tcp_transition_cell_matches_tcp_states_dos() {
        assert_tables(REFERENCE_DOS_TABLES, next_state_dos);
        // Same event index and flagless rule as the normal table.
        assert_eq!(next_state_dos(Dir::Input, SYN | RST, SYNACK), CLOSE);
        assert_eq!(next_state_dos(Dir::Input, PSH, ESTABLISHED), CLOSE);
        // NAT handshake: SYN → SYN_RECV, server SYN+ACK → SYNACK, client ACK keeps SYNACK, the
        // server's ACK establishes. DR: SYN → SYNACK, ACK → ESTABLISHED.
        let mut s = NONE;
        let mut names = vec![];
        for (d, f) in [(Dir::Input, SYN), (Dir::Output, SYN | ACK), (Dir::Input, ACK), (Dir::Output, ACK)] {
            s = next_state_dos(d, f, s);
            names.push(state_name(s));
        }
        assert_eq!(names, ["SYN_RECV", "SYNACK", "SYNACK", "ESTABLISHED"]);
        assert_eq!(next_state_dos(Dir::InputOnly, SYN, NONE), SYNACK);
        assert_eq!(next_state_dos(Dir::InputOnly, ACK, SYNACK), ESTABLISHED);
    }
}
