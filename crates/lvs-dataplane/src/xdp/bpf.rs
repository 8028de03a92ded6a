//! The XDP side of the AF_XDP path, through the bpf(2) system call alone (no libbpf): two maps,
//! a hand-assembled program that chooses per frame between the engine and the kernel, and a
//! bpf_link that attaches it to an interface and detaches it when closed (also when the process
//! dies, so a crash never leaves an interface black-holed).
//!
//! The program's choice, per frame:
//! * not IPv4 / IPv6 (ARP, LLDP, …), or shorter than its IP header → the kernel (`XDP_PASS`);
//! * destination address in the address map: a VIP → the engine, a host address → the kernel;
//! * otherwise multicast / broadcast (by destination MAC) → the kernel; unicast → the engine
//!   (NAT replies from real servers and other transit traffic, which the host does not route
//!   while lvs runs).
//!
//! "The engine" is `bpf_redirect_map(&xsks, rx_queue_index, XDP_PASS)`: the AF_XDP socket bound
//! to that queue, or the kernel when the queue has none.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

const BPF_MAP_CREATE: libc::c_long = 0;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_MAP_TYPE_HASH: u32 = 1;
const BPF_MAP_TYPE_XSKMAP: u32 = 17;
const BPF_PROG_TYPE_XDP: u32 = 6;
const BPF_XDP: u32 = 37;

/// `XDP_FLAGS_SKB_MODE`: generic XDP, after the kernel built the skb (any device).
pub(crate) const XDP_FLAGS_SKB_MODE: u32 = 1 << 1;
/// `XDP_FLAGS_DRV_MODE`: native XDP in the driver, before any skb (veth, most NICs).
pub(crate) const XDP_FLAGS_DRV_MODE: u32 = 1 << 2;

/// Address map value: a VIP (frames to it go to the engine).
pub(crate) const ADDR_VIP: u32 = 1;
/// Address map value: a host address (frames to it go to the kernel).
pub(crate) const ADDR_LOCAL: u32 = 2;

/// Addresses the map holds at most (VIPs plus host addresses).
pub(crate) const ADDR_MAP_ENTRIES: u32 = 16384;

#[repr(C)]
struct MapCreateAttr {
    map_type: u32,
    key_size: u32,
    value_size: u32,
    max_entries: u32,
    map_flags: u32,
    inner_map_fd: u32,
    numa_node: u32,
    map_name: [u8; 16],
}

#[repr(C)]
struct MapElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

#[repr(C)]
struct LinkCreateAttr {
    prog_fd: u32,
    target_ifindex: u32,
    attach_type: u32,
    flags: u32,
}

/// One bpf(2) call; the attribute struct is passed with its exact size (the kernel zero-fills
/// the rest of its `union bpf_attr`).
fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] struct of the layout the kernel expects
    // for `cmd`, and its size is passed alongside; pointers inside it outlive the call.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr as *mut T, std::mem::size_of::<T>()) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_from(r: libc::c_long) -> io::Result<OwnedFd> {
    let fd = RawFd::try_from(r).map_err(|_| io::Error::other("bpf(2) returned an invalid descriptor"))?;
    // SAFETY: the kernel just returned this new descriptor and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

fn name16(name: &str) -> [u8; 16] {
    let mut out = [0u8; 16];
    for (o, b) in out.iter_mut().zip(name.bytes().take(15)) {
        *o = b;
    }
    out
}

/// A BPF map (closed on drop).
#[derive(Debug)]
pub(crate) struct Map {
    fd: OwnedFd,
}

impl Map {
    fn create(
        map_type: u32,
        key_size: u32,
        value_size: u32,
        max_entries: u32,
        name: &str,
    ) -> io::Result<Map> {
        let mut attr = MapCreateAttr {
            map_type,
            key_size,
            value_size,
            max_entries,
            map_flags: 0,
            inner_map_fd: 0,
            numa_node: 0,
            map_name: name16(name),
        };
        Ok(Map { fd: fd_from(bpf(BPF_MAP_CREATE, &mut attr)?)? })
    }

    /// The XSKMAP: RX queue index → AF_XDP socket.
    pub(crate) fn xsks(queues: u32) -> io::Result<Map> {
        Map::create(BPF_MAP_TYPE_XSKMAP, 4, 4, queues.max(1), "lvs_xsks")
    }

    /// The address map: 16-byte address (IPv4 as `::ffff:a.b.c.d`) → [`ADDR_VIP`] / [`ADDR_LOCAL`].
    pub(crate) fn addrs() -> io::Result<Map> {
        Map::create(BPF_MAP_TYPE_HASH, 16, 4, ADDR_MAP_ENTRIES, "lvs_addrs")
    }

    fn update(&self, key: &[u8], value: &[u8]) -> io::Result<()> {
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            _pad: 0,
            key: key.as_ptr() as u64,
            value: value.as_ptr() as u64,
            flags: 0, // BPF_ANY
        };
        bpf(BPF_MAP_UPDATE_ELEM, &mut attr).map(|_| ())
    }

    /// Puts AF_XDP socket `fd` at `queue` of an XSKMAP.
    pub(crate) fn set_xsk(&self, queue: u32, fd: RawFd) -> io::Result<()> {
        self.update(&queue.to_ne_bytes(), &(fd as u32).to_ne_bytes())
    }

    /// Sets the class of `addr` in the address map.
    pub(crate) fn set_addr(&self, addr: IpAddr, class: u32) -> io::Result<()> {
        self.update(&addr_key(addr), &class.to_ne_bytes())
    }

    /// Removes `addr` from the address map (absent is not an error).
    pub(crate) fn remove_addr(&self, addr: IpAddr) -> io::Result<()> {
        let key = addr_key(addr);
        let mut attr = MapElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            _pad: 0,
            key: key.as_ptr() as u64,
            value: 0,
            flags: 0,
        };
        match bpf(BPF_MAP_DELETE_ELEM, &mut attr) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
            r => r.map(|_| ()),
        }
    }

    fn raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

/// The address map key: IPv6 as is, IPv4 mapped (`::ffff:a.b.c.d`), as the program builds it.
pub(crate) fn addr_key(addr: IpAddr) -> [u8; 16] {
    match addr {
        IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        IpAddr::V6(a) => a.octets(),
    }
}

/// One eBPF instruction (`struct bpf_insn`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    code: u8,
    regs: u8,
    off: i16,
    imm: i32,
}

impl Insn {
    const fn new(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, regs: (src << 4) | (dst & 0x0f), off, imm }
    }

    /// The 8 bytes the kernel reads (on a little-endian host: dst in the low nibble).
    pub(crate) fn to_bytes(self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.code;
        b[1] = self.regs;
        b[2..4].copy_from_slice(&self.off.to_ne_bytes());
        b[4..8].copy_from_slice(&self.imm.to_ne_bytes());
        b
    }
}

// Registers.
const R0: u8 = 0;
const R1: u8 = 1;
const R2: u8 = 2;
const R3: u8 = 3;
const R4: u8 = 4;
const R5: u8 = 5;
const R6: u8 = 6;
const R7: u8 = 7;
const R8: u8 = 8;
const R9: u8 = 9;
const FP: u8 = 10;

// Opcodes (class | size/op | mode/source).
const MOV64_IMM: u8 = 0xb7;
const MOV64_REG: u8 = 0xbf;
const ADD64_IMM: u8 = 0x07;
const AND64_IMM: u8 = 0x57;
const LDX_W: u8 = 0x61;
const LDX_H: u8 = 0x69;
const LDX_B: u8 = 0x71;
const LDX_DW: u8 = 0x79;
const STX_W: u8 = 0x63;
const STX_DW: u8 = 0x7b;
const ST_W: u8 = 0x62;
const ST_DW: u8 = 0x7a;
const LD_IMM64: u8 = 0x18;
const JA: u8 = 0x05;
const JEQ_IMM: u8 = 0x15;
const JNE_IMM: u8 = 0x55;
const JGT_REG: u8 = 0x2d;
const JSET_IMM: u8 = 0x45;
const CALL: u8 = 0x85;
const EXIT: u8 = 0x95;

const PSEUDO_MAP_FD: u8 = 1;
const HELPER_MAP_LOOKUP_ELEM: i32 = 1;
const HELPER_REDIRECT_MAP: i32 = 51;
const XDP_PASS: i32 = 2;

/// A tiny assembler: instructions with symbolic jump targets, resolved by [`Asm::finish`].
struct Asm {
    insns: Vec<Insn>,
    /// (instruction index, label) of every jump to patch.
    fixups: Vec<(usize, &'static str)>,
    labels: Vec<(&'static str, usize)>,
}

impl Asm {
    fn new() -> Asm {
        Asm { insns: Vec::new(), fixups: Vec::new(), labels: Vec::new() }
    }
    fn i(&mut self, code: u8, dst: u8, src: u8, off: i16, imm: i32) -> &mut Self {
        self.insns.push(Insn::new(code, dst, src, off, imm));
        self
    }
    fn jmp(&mut self, code: u8, dst: u8, src: u8, imm: i32, label: &'static str) -> &mut Self {
        self.fixups.push((self.insns.len(), label));
        self.i(code, dst, src, 0, imm)
    }
    fn label(&mut self, name: &'static str) -> &mut Self {
        self.labels.push((name, self.insns.len()));
        self
    }
    fn ld_map(&mut self, dst: u8, map_fd: i32) -> &mut Self {
        self.i(LD_IMM64, dst, PSEUDO_MAP_FD, 0, map_fd).i(0, 0, 0, 0, 0)
    }
    /// The program with every jump resolved; `None` names a label that was never placed.
    fn finish(mut self) -> Result<Vec<Insn>, &'static str> {
        for &(at, label) in &self.fixups {
            let target = self.labels.iter().find(|(n, _)| *n == label).map(|&(_, t)| t).ok_or(label)?;
            self.insns[at].off = (target as i64 - at as i64 - 1) as i16;
        }
        Ok(self.insns)
    }
}

/// An EtherType as a 16-bit load from the frame reads it on this host.
fn ethertype(t: u16) -> i32 {
    i32::from(u16::from_ne_bytes(t.to_be_bytes()))
}

/// The program (see the module documentation), with the two maps' descriptors built in.
pub(crate) fn program(xsks_fd: i32, addrs_fd: i32) -> io::Result<Vec<Insn>> {
    let mut a = Asm::new();
    // r6 = ctx; r7 = data (then the L3 header); r8 = data_end.
    a.i(MOV64_REG, R6, R1, 0, 0)
        .i(LDX_W, R7, R6, 0, 0)
        .i(LDX_W, R8, R6, 4, 0)
        .i(MOV64_REG, R4, R7, 0, 0)
        .i(ADD64_IMM, R4, 0, 0, 14)
        .jmp(JGT_REG, R4, R8, 0, "pass")
        // r9 = the group bit of the destination MAC (multicast / broadcast).
        .i(LDX_B, R9, R7, 0, 0)
        .i(AND64_IMM, R9, 0, 0, 1)
        .i(LDX_H, R5, R7, 12, 0)
        // 802.1Q: skip one tag (the EtherType moves 4 bytes on).
        .jmp(JNE_IMM, R5, 0, ethertype(0x8100), "untagged")
        .i(ADD64_IMM, R7, 0, 0, 4)
        .i(MOV64_REG, R4, R7, 0, 0)
        .i(ADD64_IMM, R4, 0, 0, 14)
        .jmp(JGT_REG, R4, R8, 0, "pass")
        .i(LDX_H, R5, R7, 12, 0)
        .label("untagged")
        .i(ADD64_IMM, R7, 0, 0, 14)
        .jmp(JEQ_IMM, R5, 0, ethertype(0x0800), "ipv4")
        .jmp(JEQ_IMM, R5, 0, ethertype(0x86dd), "ipv6")
        .jmp(JA, 0, 0, 0, "pass")
        // IPv4: key ::ffff:daddr at fp-16.
        .label("ipv4")
        .i(MOV64_REG, R4, R7, 0, 0)
        .i(ADD64_IMM, R4, 0, 0, 20)
        .jmp(JGT_REG, R4, R8, 0, "pass")
        .i(ST_DW, FP, 0, -16, 0)
        .i(ST_W, FP, 0, -8, i32::from_ne_bytes([0, 0, 0xff, 0xff]))
        .i(LDX_W, R5, R7, 16, 0)
        .i(STX_W, FP, R5, -4, 0)
        .jmp(JA, 0, 0, 0, "lookup")
        // IPv6: key = daddr at fp-16.
        .label("ipv6")
        .i(MOV64_REG, R4, R7, 0, 0)
        .i(ADD64_IMM, R4, 0, 0, 40)
        .jmp(JGT_REG, R4, R8, 0, "pass")
        .i(LDX_DW, R5, R7, 24, 0)
        .i(STX_DW, FP, R5, -16, 0)
        .i(LDX_DW, R5, R7, 32, 0)
        .i(STX_DW, FP, R5, -8, 0)
        .label("lookup")
        .ld_map(R1, addrs_fd)
        .i(MOV64_REG, R2, FP, 0, 0)
        .i(ADD64_IMM, R2, 0, 0, -16)
        .i(CALL, 0, 0, 0, HELPER_MAP_LOOKUP_ELEM)
        .jmp(JEQ_IMM, R0, 0, 0, "unknown")
        .i(LDX_W, R5, R0, 0, 0)
        .jmp(JSET_IMM, R5, 0, ADDR_VIP as i32, "engine")
        .jmp(JA, 0, 0, 0, "pass")
        // Not a known address: unicast is transit (NAT replies) for the engine.
        .label("unknown")
        .jmp(JNE_IMM, R9, 0, 0, "pass")
        .label("engine")
        .ld_map(R1, xsks_fd)
        .i(LDX_W, R2, R6, 16, 0) // rx_queue_index
        .i(MOV64_IMM, R3, 0, 0, XDP_PASS)
        .i(CALL, 0, 0, 0, HELPER_REDIRECT_MAP)
        .i(EXIT, 0, 0, 0, 0)
        .label("pass")
        .i(MOV64_IMM, R0, 0, 0, XDP_PASS)
        .i(EXIT, 0, 0, 0, 0);
    a.finish().map_err(|label| io::Error::other(format!("XDP program: jump to unknown label `{label}`")))
}

/// A loaded program (closed on drop; the kernel frees it once no link holds it).
#[derive(Debug)]
pub(crate) struct Program {
    fd: OwnedFd,
}

impl Program {
    /// Loads `insns` as an XDP program; a verifier rejection carries the verifier's log.
    pub(crate) fn load(insns: &[Insn]) -> io::Result<Program> {
        let bytes: Vec<u8> = insns.iter().flat_map(|i| i.to_bytes()).collect();
        let license = b"GPL\0";
        let mut log = vec![0u8; 1 << 16];
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_XDP,
            insn_cnt: insns.len() as u32,
            insns: bytes.as_ptr() as u64,
            license: license.as_ptr() as u64,
            log_level: 1,
            log_size: log.len() as u32,
            log_buf: log.as_mut_ptr() as u64,
            kern_version: 0,
            prog_flags: 0,
            prog_name: name16("lvs_xdp"),
            prog_ifindex: 0,
            expected_attach_type: BPF_XDP,
        };
        match bpf(BPF_PROG_LOAD, &mut attr) {
            Ok(fd) => Ok(Program { fd: fd_from(fd)? }),
            Err(e) => {
                let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                let text = String::from_utf8_lossy(&log[..end]);
                let tail: String = text.lines().rev().take(6).collect::<Vec<_>>().join(" | ");
                Err(io::Error::new(e.kind(), format!("loading the XDP program: {e}; verifier: {tail}")))
            }
        }
    }

    /// Loads [`program`] for the two maps.
    pub(crate) fn for_maps(xsks: &Map, addrs: &Map) -> io::Result<Program> {
        Program::load(&program(xsks.raw_fd(), addrs.raw_fd())?)
    }
}

/// An attachment of a program to an interface; dropping it detaches the program.
#[derive(Debug)]
pub(crate) struct Link {
    _fd: OwnedFd,
    /// `XDP_FLAGS_DRV_MODE` or `XDP_FLAGS_SKB_MODE`.
    pub(crate) mode: u32,
}

impl Link {
    /// Attaches `prog` to interface `ifindex` in native (driver) mode, or in generic (skb) mode
    /// when the driver has no XDP support. Fails with `EBUSY` when another program is attached.
    pub(crate) fn attach(prog: &Program, ifindex: u32) -> io::Result<Link> {
        let try_mode = |mode: u32| {
            let mut attr = LinkCreateAttr {
                prog_fd: prog.fd.as_raw_fd() as u32,
                target_ifindex: ifindex,
                attach_type: BPF_XDP,
                flags: mode,
            };
            bpf(BPF_LINK_CREATE, &mut attr).and_then(fd_from).map(|fd| Link { _fd: fd, mode })
        };
        match try_mode(XDP_FLAGS_DRV_MODE) {
            Ok(l) => Ok(l),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP) | Some(libc::EINVAL)) => {
                try_mode(XDP_FLAGS_SKB_MODE)
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_jump_lands_inside_the_program() {
        let p = program(3, 4).unwrap();
        for (at, i) in p.iter().enumerate() {
            if i.code & 0x07 == 0x05 && i.code != CALL && i.code != EXIT {
                let target = at as i64 + 1 + i64::from(i.off);
                assert!(target > at as i64 && (target as usize) < p.len(), "jump at {at} to {target}");
            }
        }
        assert_eq!(p.last().map(|i| i.code), Some(EXIT));
    }

    #[test]
    fn map_loads_and_encoding_are_as_the_kernel_reads_them() {
        let p = program(7, 9).unwrap();
        // The address map load: ld_imm64 r1 with BPF_PSEUDO_MAP_FD (src nibble 1), imm = fd.
        let at = p.iter().position(|i| i.code == LD_IMM64).unwrap();
        assert_eq!(p[at].to_bytes(), [0x18, 0x11, 0, 0, 9, 0, 0, 0]);
        assert_eq!(p[at + 1].to_bytes(), [0; 8]);
        // `r2 = *(u32 *)(r6 + 16)`: ctx->rx_queue_index.
        assert!(p.iter().any(|i| i.to_bytes() == [0x61, 0x62, 16, 0, 0, 0, 0, 0]));
    }

    #[test]
    fn a_jump_to_a_missing_label_is_an_error() {
        let mut a = Asm::new();
        a.jmp(JA, 0, 0, 0, "nowhere").i(EXIT, 0, 0, 0, 0);
        assert_eq!(a.finish(), Err("nowhere"));
    }

    #[test]
    fn address_keys_map_ipv4_into_ipv6() {
        let k = addr_key("10.1.2.3".parse().unwrap());
        assert_eq!(k, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3]);
        let k6 = addr_key("2001:db8::1".parse().unwrap());
        assert_eq!(k6[..2], [0x20, 0x01]);
    }
}
