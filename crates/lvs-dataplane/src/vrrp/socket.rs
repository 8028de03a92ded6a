//! Raw IP sockets for VRRP (protocol 112) on one interface, as keepalived opens them.
//!
//! * IPv4: `IP_HDRINCL`, so the header is exactly keepalived's (TOS 0xc0, our ID sequence, no
//!   DF, TTL 255, the instance's source address); joined to 224.0.0.18 on the interface, loop
//!   off; received datagrams come with their IP header, which gives TTL, addresses and lengths.
//! * IPv6: hop limit 255 and traffic class 0xc0 by socket option, the source chosen per message
//!   with `IPV6_PKTINFO`; joined to ff02::12; hop limit and destination of received messages
//!   come as ancillary data. The VRRP checksum (RFC 2460 pseudo-header) is written by
//!   `lvs_core::wire::vrrp` and verified there, so `IPV6_CHECKSUM` is not set: the kernel then
//!   neither fills nor checks it, and the bytes on the wire are the ones the core emitted.
//!
//! Both are bound to the device (`SO_BINDTODEVICE`) and non-blocking.

use lvs_core::wire::{ChecksumCapabilities, IpProtocol, Ipv4Packet, Ipv4Repr};
use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// IP protocol number of VRRP.
pub const PROTO_VRRP: i32 = 112;
/// TOS / traffic class of adverts (precedence 6, internetwork control).
pub const TOS: u8 = 0xc0;
/// TTL / hop limit of adverts.
pub const TTL: u8 = 255;
const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// Room for any VRRP datagram (255 IPv6 addresses: 8 + 4080 bytes) with its IPv4 header.
const RECV_BUF: usize = 4200;

/// A received VRRP datagram: the facts of the IP header the checks need, and where the VRRP
/// message sits in the receive buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Datagram {
    /// IP source.
    pub src: IpAddr,
    /// IP destination.
    pub dst: IpAddr,
    /// TTL / hop limit.
    pub ttl: u8,
    /// IP protocol (112).
    pub protocol: u8,
    /// IP payload length as the header states it.
    pub ip_payload_len: usize,
    /// The VRRP message is `buf[start..end]`.
    pub start: usize,
    /// End of the message.
    pub end: usize,
}

/// A VRRP raw socket for one address family on one interface.
#[derive(Debug)]
pub struct VrrpSocket {
    fd: OwnedFd,
    ifindex: u32,
    v6: bool,
    buf: Vec<u8>,
}

fn check(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn setopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T, what: &str) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of `size_of::<T>()` bytes for the duration of the call.
    let rc = unsafe {
        libc::setsockopt(fd, level, name, (value as *const T).cast(), size_of::<T>() as libc::socklen_t)
    };
    check(rc).map(|_| ()).map_err(|e| io::Error::new(e.kind(), format!("{what}: {e}")))
}

fn sockaddr_v4(a: Ipv4Addr) -> libc::sockaddr_in {
    // SAFETY: sockaddr_in is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in = unsafe { zeroed() };
    sa.sin_family = libc::AF_INET as libc::sa_family_t;
    sa.sin_addr.s_addr = u32::from(a).to_be();
    sa
}

fn sockaddr_v6(a: Ipv6Addr, scope: u32) -> libc::sockaddr_in6 {
    // SAFETY: sockaddr_in6 is plain old data; all-zero is a valid value.
    let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
    sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
    sa.sin6_addr.s6_addr = a.octets();
    sa.sin6_scope_id = scope;
    sa
}

/// Builds keepalived's IPv4 header for an advert: TOS 0xc0, `ident`, no DF, TTL 255, protocol 112,
/// checksum filled.
pub fn ipv4_header(src: Ipv4Addr, dst: Ipv4Addr, ident: u16, payload_len: usize) -> [u8; 20] {
    let mut h = [0u8; 20];
    Ipv4Repr {
        src_addr: src,
        dst_addr: dst,
        protocol: IpProtocol::from(PROTO_VRRP as u8),
        payload_len,
        ttl: TTL,
        tos: TOS,
        ident,
        dont_frag: false,
        more_frags: false,
        frag_offset: 0,
    }
    .emit(&mut Ipv4Packet::new_unchecked(&mut h[..]), &ChecksumCapabilities::default());
    h
}

/// Reads a raw IPv4 datagram (header included) as the kernel hands it to a raw socket.
pub fn parse_ipv4(buf: &[u8]) -> Option<Datagram> {
    let p = Ipv4Packet::new_checked(buf).ok()?;
    let hl = usize::from(p.header_len());
    let total = usize::from(p.total_len()).min(buf.len());
    Some(Datagram {
        src: IpAddr::V4(p.src_addr()),
        dst: IpAddr::V4(p.dst_addr()),
        ttl: p.ttl(),
        protocol: p.protocol().into(),
        ip_payload_len: usize::from(p.total_len()).saturating_sub(hl),
        start: hl,
        end: total.max(hl),
    })
}

impl VrrpSocket {
    /// Opens the socket for `v6` (or IPv4) on interface `ifname` (index `ifindex`) and joins the
    /// VRRP group there.
    pub fn open(ifname: &str, ifindex: u32, v6: bool) -> io::Result<VrrpSocket> {
        let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
        // SAFETY: plain socket(2) call; the result is checked and owned below.
        let raw = check(unsafe {
            libc::socket(family, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, PROTO_VRRP)
        })
        .map_err(|e| io::Error::new(e.kind(), format!("VRRP socket on `{ifname}`: {e}")))?;
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        let name = CString::new(ifname)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "bad interface name"))?;
        // SAFETY: `name` is a NUL-terminated string of the given length for the duration of the call.
        check(unsafe {
            libc::setsockopt(
                s,
                libc::SOL_SOCKET,
                libc::SO_BINDTODEVICE,
                name.as_ptr().cast(),
                name.as_bytes_with_nul().len() as libc::socklen_t,
            )
        })
        .map_err(|e| io::Error::new(e.kind(), format!("SO_BINDTODEVICE `{ifname}`: {e}")))?;
        let one: libc::c_int = 1;
        let zero: libc::c_int = 0;
        if v6 {
            let hops: libc::c_int = TTL.into();
            let tclass: libc::c_int = TOS.into();
            let index = ifindex as libc::c_int;
            setopt(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &hops, "IPV6_MULTICAST_HOPS")?;
            setopt(s, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &hops, "IPV6_UNICAST_HOPS")?;
            setopt(s, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &tclass, "IPV6_TCLASS")?;
            setopt(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &zero, "IPV6_MULTICAST_LOOP")?;
            setopt(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &index, "IPV6_MULTICAST_IF")?;
            setopt(s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &one, "IPV6_RECVHOPLIMIT")?;
            setopt(s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one, "IPV6_RECVPKTINFO")?;
            let mreq = libc::ipv6_mreq {
                ipv6mr_multiaddr: libc::in6_addr { s6_addr: MCAST_V6.octets() },
                ipv6mr_interface: ifindex,
            };
            setopt(s, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &mreq, "join ff02::12")?;
        } else {
            setopt(s, libc::IPPROTO_IP, libc::IP_HDRINCL, &one, "IP_HDRINCL")?;
            setopt(s, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &zero, "IP_MULTICAST_LOOP")?;
            let mreq = libc::ip_mreqn {
                imr_multiaddr: libc::in_addr { s_addr: u32::from(MCAST_V4).to_be() },
                imr_address: libc::in_addr { s_addr: 0 },
                imr_ifindex: ifindex as libc::c_int,
            };
            setopt(s, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq, "IP_MULTICAST_IF")?;
            setopt(s, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &mreq, "join 224.0.0.18")?;
        }
        Ok(VrrpSocket { fd, ifindex, v6, buf: vec![0; RECV_BUF] })
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// IPv6 (else IPv4).
    pub fn is_v6(&self) -> bool {
        self.v6
    }

    /// The descriptor, for poll(2).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Sends one VRRP message from `src` to `dst` (same family as the socket). IPv4 packets get
    /// keepalived's header with identification `ident`; IPv6 ignores it.
    pub fn send(&self, src: IpAddr, dst: IpAddr, ident: u16, message: &[u8]) -> io::Result<()> {
        let s = self.fd.as_raw_fd();
        let rc = match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) if !self.v6 => {
                let mut pkt = Vec::with_capacity(20 + message.len());
                pkt.extend_from_slice(&ipv4_header(src, dst, ident, message.len()));
                pkt.extend_from_slice(message);
                let sa = sockaddr_v4(dst);
                // SAFETY: `pkt` and `sa` are valid for the stated lengths during the call.
                unsafe {
                    libc::sendto(
                        s,
                        pkt.as_ptr().cast(),
                        pkt.len(),
                        0,
                        (&sa as *const libc::sockaddr_in).cast(),
                        size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    )
                }
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) if self.v6 => {
                let mut sa = sockaddr_v6(dst, self.ifindex);
                let info = libc::in6_pktinfo {
                    ipi6_addr: libc::in6_addr { s6_addr: src.octets() },
                    ipi6_ifindex: self.ifindex,
                };
                // u64 words keep the control buffer aligned for cmsghdr.
                let mut control = [0u64; 8];
                let mut iov =
                    libc::iovec { iov_base: message.as_ptr() as *mut libc::c_void, iov_len: message.len() };
                // SAFETY: msghdr is plain old data; every pointer set below outlives the sendmsg
                // call, and the control buffer is large and aligned enough for one in6_pktinfo
                // cmsg (checked against CMSG_SPACE).
                unsafe {
                    let space = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as usize;
                    if space > size_of::<[u64; 8]>() {
                        return Err(io::Error::other("control buffer too small"));
                    }
                    let mut msg: libc::msghdr = zeroed();
                    msg.msg_name = (&mut sa as *mut libc::sockaddr_in6).cast();
                    msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
                    msg.msg_iov = &mut iov;
                    msg.msg_iovlen = 1;
                    msg.msg_control = control.as_mut_ptr().cast();
                    msg.msg_controllen = space as _;
                    let cmsg = libc::CMSG_FIRSTHDR(&msg);
                    (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
                    (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
                    (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
                    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>(), info);
                    libc::sendmsg(s, &msg, 0)
                }
            }
            _ => return Err(io::Error::new(io::ErrorKind::InvalidInput, "address family mismatch")),
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Receives one datagram without waiting: `Ok(None)` when nothing is queued. The message is
    /// `self.buffer()[d.start..d.end]`. An IPv4 datagram without a sound IP header comes back as
    /// `Err(InvalidData)` (the caller skips it).
    pub fn recv(&mut self) -> io::Result<Option<Datagram>> {
        let s = self.fd.as_raw_fd();
        if !self.v6 {
            // SAFETY: `buf` is valid for writes of its length during the call.
            let n = unsafe { libc::recv(s, self.buf.as_mut_ptr().cast(), self.buf.len(), 0) };
            if n < 0 {
                let e = io::Error::last_os_error();
                return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
            }
            return parse_ipv4(&self.buf[..n as usize])
                .map(Some)
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "malformed IPv4 header"));
        }
        // SAFETY: sockaddr_in6 is plain old data.
        let mut from: libc::sockaddr_in6 = unsafe { zeroed() };
        let mut control = [0u64; 16];
        let mut iov = libc::iovec { iov_base: self.buf.as_mut_ptr().cast(), iov_len: self.buf.len() };
        let (mut hops, mut dst) = (None, None);
        // SAFETY: msghdr is plain old data; the name, iovec and control buffers outlive the call;
        // the cmsg walk stays within `msg_controllen` as the CMSG macros guarantee, and the data
        // is read unaligned at the types the kernel documents for these cmsg types.
        let n = unsafe {
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = (&mut from as *mut libc::sockaddr_in6).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = size_of::<[u64; 16]>() as _;
            let n = libc::recvmsg(s, &mut msg, 0);
            if n >= 0 {
                let mut c = libc::CMSG_FIRSTHDR(&msg);
                while !c.is_null() {
                    if (*c).cmsg_level == libc::IPPROTO_IPV6 {
                        if (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                            hops = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>()));
                        } else if (*c).cmsg_type == libc::IPV6_PKTINFO {
                            let info =
                                std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>());
                            dst = Some(Ipv6Addr::from(info.ipi6_addr.s6_addr));
                        }
                    }
                    c = libc::CMSG_NXTHDR(&msg, c);
                }
            }
            n
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(None) } else { Err(e) };
        }
        let n = n as usize;
        Ok(Some(Datagram {
            src: IpAddr::V6(Ipv6Addr::from(from.sin6_addr.s6_addr)),
            dst: IpAddr::V6(dst.unwrap_or(Ipv6Addr::UNSPECIFIED)),
            ttl: hops.map_or(0, |h| h.clamp(0, 255) as u8),
            protocol: PROTO_VRRP as u8,
            ip_payload_len: n,
            start: 0,
            end: n,
        }))
    }

    /// The receive buffer the last [`recv`](Self::recv) filled.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_header_is_keepalived_s() {
        // keepalived 2.2.7, VRRPv2 advert of 24 bytes, first of the run (fixtures/vrrp, keepalived.md §3.2).
        let h = ipv4_header(Ipv4Addr::new(10, 200, 0, 1), Ipv4Addr::new(224, 0, 0, 18), 1, 24);
        let want = [
            0x45, 0xc0, 0x00, 0x2c, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xcf, 0xc5, 0x0a, 0xc8, 0x00, 0x01,
            0xe0, 0x00, 0x00, 0x12,
        ];
        assert_eq!(h, want);
        // The unicast advert to 10.200.0.2 (20 bytes of VRRP).
        let h = ipv4_header(Ipv4Addr::new(10, 200, 0, 1), Ipv4Addr::new(10, 200, 0, 2), 1, 20);
        assert_eq!(&h[10..12], &[0xa5, 0x12]);
    }

    #[test]
    fn raw_ipv4_datagrams_are_read_defensively() {
        let mut pkt = ipv4_header(Ipv4Addr::new(10, 0, 0, 2), Ipv4Addr::new(224, 0, 0, 18), 7, 4).to_vec();
        pkt.extend_from_slice(&[1, 2, 3, 4]);
        pkt[8] = 64;
        let d = parse_ipv4(&pkt).expect("datagram");
        assert_eq!((d.ttl, d.protocol, d.ip_payload_len, d.start, d.end), (64, 112, 4, 20, 24));
        assert_eq!(d.src, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        // Truncated: the message ends where the bytes end, the stated length is kept for the checks.
        let d = parse_ipv4(&pkt[..22]);
        assert!(d.is_none() || d.is_some_and(|d| d.end <= 22));
        assert!(parse_ipv4(&pkt[..10]).is_none());
        for n in 0..pkt.len() {
            let _ = parse_ipv4(&pkt[..n]);
        }
    }
}
