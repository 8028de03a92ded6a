//! UDP (`ip_vs_proto_udp.c`): one state, `UDP`, refreshed by every packet in either direction; a
//! reply (output packet) assures the controlling persistence template. UDP connections never count
//! as active.

/// `IP_VS_UDP_S_NORMAL`, the only state.
pub const NORMAL: u8 = 0;

/// The name `ipvsadm -Lc` prints.
pub const STATE_NAME: &str = "UDP";

/// `udp_timeouts[IP_VS_UDP_S_NORMAL]`: 5 minutes.
pub const DEFAULT_TIMEOUT: u32 = 300;

/// The name of a state.
pub fn state_name(state: u8) -> &'static str {
    if state == NORMAL {
        STATE_NAME
    } else {
        "ERR!"
    }
}
