//! The AF_XDP receive/transmit path (opt-in, `RuntimeOptions::xdp`).
//!
//! With AF_PACKET every received frame costs the kernel an skb, the receive path and a copy into
//! the ring, and the kernel also processes the frame itself. Here an XDP program (see [`bpf`])
//! runs in the driver before any skb exists and redirects the frames lvs handles (to a VIP, and
//! unicast transit such as NAT replies) into AF_XDP sockets ([`xsk`]), whose frames live in this
//! process's memory; everything else (ARP, multicast, traffic to the host's own addresses)
//! continues to the kernel as before. ARP and neighbour discovery still reach the engine through
//! a filtered AF_PACKET tap ([`attach_arp_nd_filter`]), so the kernel and the engine both see
//! them, exactly as with AF_PACKET rings.
//!
//! What the kernel no longer sees: frames redirected to lvs. The engine cannot hand those "to
//! the host" (there is no path back), so `pass_transit` is refused and frames the engine hands
//! to the host (LVS "local" real servers) are dropped.

pub(crate) mod bpf;
pub mod xsk;

use bpf::{Link, Map, Program, ADDR_LOCAL, ADDR_MAP_ENTRIES, ADDR_VIP};
use std::collections::BTreeMap;
use std::io;
use std::net::IpAddr;
use std::os::fd::RawFd;

pub use xsk::{XskConfig, XskCounters, XskRx, XskTx};

/// How the XDP program runs on an interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver, before any skb (`XDP_FLAGS_DRV_MODE`).
    Native,
    /// After the kernel built the skb (`XDP_FLAGS_SKB_MODE`): works everywhere, saves less.
    Generic,
}

/// One interface with the program attached.
#[derive(Debug)]
struct Attached {
    ifindex: u32,
    name: String,
    xsks: Map,
    // Dropped first: closing the link detaches the program.
    link: Link,
    _prog: Program,
}

/// The XDP programs of a runtime and the address map they share. Dropping it detaches them.
#[derive(Debug)]
pub struct XdpAttachments {
    addrs: Map,
    classes: BTreeMap<IpAddr, u32>,
    ifaces: Vec<Attached>,
}

impl XdpAttachments {
    /// Creates the (empty) address map.
    pub fn new() -> io::Result<XdpAttachments> {
        let addrs = Map::addrs().map_err(|e| context("creating the BPF address map", e))?;
        Ok(XdpAttachments { addrs, classes: BTreeMap::new(), ifaces: Vec::new() })
    }

    /// Loads the program for interface `name` with an XSKMAP of `queues` entries and attaches it
    /// (native mode, generic when the driver has none).
    pub fn attach(&mut self, name: &str, ifindex: u32, queues: u32) -> io::Result<XdpMode> {
        let ctx = |what: &str, e| context(&format!("{what} on `{name}`"), e);
        let xsks = Map::xsks(queues).map_err(|e| ctx("creating the XSKMAP", e))?;
        let prog = Program::for_maps(&xsks, &self.addrs).map_err(|e| ctx("loading the XDP program", e))?;
        let link = Link::attach(&prog, ifindex).map_err(|e| ctx("attaching the XDP program", e))?;
        let mode = if link.mode == bpf::XDP_FLAGS_DRV_MODE { XdpMode::Native } else { XdpMode::Generic };
        self.ifaces.push(Attached { ifindex, name: name.to_owned(), xsks, link, _prog: prog });
        Ok(mode)
    }

    /// Directs queue `queue` of interface `ifindex` to AF_XDP socket `fd`.
    pub fn add_socket(&self, ifindex: u32, queue: u32, fd: RawFd) -> io::Result<()> {
        let a = self.ifaces.iter().find(|a| a.ifindex == ifindex).ok_or_else(|| {
            io::Error::new(io::ErrorKind::NotFound, format!("no XDP program on interface {ifindex}"))
        })?;
        a.xsks
            .set_xsk(queue, fd)
            .map_err(|e| context(&format!("adding queue {queue} of `{}` to the XSKMAP", a.name), e))
    }

    /// The mode of each attached interface, by name.
    pub fn modes(&self) -> Vec<(String, XdpMode)> {
        self.ifaces
            .iter()
            .map(|a| {
                let m =
                    if a.link.mode == bpf::XDP_FLAGS_DRV_MODE { XdpMode::Native } else { XdpMode::Generic };
                (a.name.clone(), m)
            })
            .collect()
    }

    /// Makes the address map say: `vips` go to the engine, `host` addresses (the kernel's own)
    /// to the kernel; a VIP that is also a host address goes to the engine. Only the difference
    /// to the previous call touches the map.
    pub fn set_addresses(&mut self, vips: &[IpAddr], host: &[IpAddr]) -> io::Result<()> {
        let mut want: BTreeMap<IpAddr, u32> = host.iter().map(|&a| (a, ADDR_LOCAL)).collect();
        want.extend(vips.iter().map(|&a| (a, ADDR_VIP)));
        if want.len() > ADDR_MAP_ENTRIES as usize {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} addresses exceed the XDP address map ({ADDR_MAP_ENTRIES})", want.len()),
            ));
        }
        if want == self.classes {
            return Ok(());
        }
        for a in self.classes.keys().filter(|a| !want.contains_key(a)) {
            self.addrs.remove_addr(*a).map_err(|e| context("updating the BPF address map", e))?;
        }
        for (a, c) in &want {
            if self.classes.get(a) != Some(c) {
                self.addrs.set_addr(*a, *c).map_err(|e| context("updating the BPF address map", e))?;
            }
        }
        self.classes = want;
        Ok(())
    }
}

fn context(what: &str, e: io::Error) -> io::Error {
    io::Error::new(e.kind(), format!("XDP: {what}: {e}"))
}

/// Number of RX queues of interface `name` (from sysfs; at least 1).
pub fn rx_queues(name: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{name}/queues"))
        .map(|d| d.flatten().filter(|e| e.file_name().to_string_lossy().starts_with("rx-")).count() as u32)
        .unwrap_or(1)
        .max(1)
}

/// The host's own addresses (every interface), which the XDP program leaves to the kernel.
pub fn host_addresses() -> io::Result<Vec<IpAddr>> {
    Ok(crate::iface::addresses()?.into_iter().map(|(_, a, _)| a).collect())
}

/// Classic BPF for an AF_PACKET socket: accept ARP, and ICMPv6 router / neighbour discovery
/// (types 133–137) in an untagged IPv6 header without extension headers; drop the rest.
const ARP_ND_FILTER: [libc::sock_filter; 9] = {
    const fn f(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
        libc::sock_filter { code, jt, jf, k }
    }
    const LDH_ABS: u16 = 0x28;
    const LDB_ABS: u16 = 0x30;
    const JEQ_K: u16 = 0x15;
    const JGE_K: u16 = 0x35;
    const JGT_K: u16 = 0x25;
    const RET_K: u16 = 0x06;
    [
        f(LDH_ABS, 0, 0, 12),     // 0: EtherType
        f(JEQ_K, 6, 0, 0x0806),   // 1: ARP → accept (8)
        f(JEQ_K, 0, 6, 0x86dd),   // 2: not IPv6 → drop (9)
        f(LDB_ABS, 0, 0, 20),     // 3: next header
        f(JEQ_K, 0, 4, 58),       // 4: not ICMPv6 → drop
        f(LDB_ABS, 0, 0, 54),     // 5: ICMPv6 type
        f(JGE_K, 0, 2, 133),      // 6: below 133 → drop
        f(JGT_K, 1, 0, 137),      // 7: above 137 → drop
        f(RET_K, 0, 0, 0x4_0000), // 8: accept
    ]
};

/// Attaches [`ARP_ND_FILTER`] (plus its final "drop") to packet socket `fd`.
pub fn attach_arp_nd_filter(fd: RawFd) -> io::Result<()> {
    let mut prog: Vec<libc::sock_filter> = ARP_ND_FILTER.to_vec();
    prog.push(libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0 }); // 9: drop
    let fprog = libc::sock_fprog { len: prog.len() as u16, filter: prog.as_mut_ptr() };
    // SAFETY: `fprog` points at `prog`, alive for the call; the kernel copies the program.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(context("attaching the ARP/ND filter", io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the classic BPF filter over a frame (the few opcodes it uses).
    fn run(frame: &[u8]) -> u32 {
        let mut prog = ARP_ND_FILTER.to_vec();
        prog.push(libc::sock_filter { code: 0x06, jt: 0, jf: 0, k: 0 });
        let (mut pc, mut a) = (0usize, 0u32);
        loop {
            let i = prog[pc];
            let k = i.k as usize;
            let jump = |c: bool| if c { i.jt as usize } else { i.jf as usize };
            pc += 1;
            match i.code {
                0x28 => a = frame.get(k..k + 2).map_or(0, |b| u32::from(u16::from_be_bytes([b[0], b[1]]))),
                0x30 => a = frame.get(k).map_or(0, |&b| u32::from(b)),
                0x15 => pc += jump(a == i.k),
                0x35 => pc += jump(a >= i.k),
                0x25 => pc += jump(a > i.k),
                0x06 => return i.k,
                c => panic!("opcode {c:#x}"),
            }
        }
    }

    fn frame(ethertype: u16, next_header: u8, icmp_type: u8) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        f[20] = next_header;
        f[54] = icmp_type;
        f
    }

    #[test]
    fn the_tap_filter_takes_arp_and_neighbour_discovery_only() {
        assert_ne!(run(&frame(0x0806, 0, 0)), 0);
        for t in 133..=137 {
            assert_ne!(run(&frame(0x86dd, 58, t)), 0, "ICMPv6 type {t}");
        }
        assert_eq!(run(&frame(0x86dd, 58, 128)), 0); // echo request
        assert_eq!(run(&frame(0x86dd, 58, 138)), 0);
        assert_eq!(run(&frame(0x86dd, 17, 135)), 0); // UDP
        assert_eq!(run(&frame(0x0800, 1, 0)), 0);
    }
}
