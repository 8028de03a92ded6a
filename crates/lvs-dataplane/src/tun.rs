//! Layer-3 TUN devices (`/dev/net/tun`, `IFF_TUN | IFF_NO_PI`) and the few
//! interface ioctls the tunnel tools need (flags, MTU, hardware address).
//!
//! A packet written to a TUN device enters the network stack of the
//! namespace as if it had been received on that interface; a packet the stack
//! routes to the device can be read from it. Without `IFF_NO_PI` each packet
//! would carry a 4-byte prefix; with it, the kernel takes the protocol from
//! the IP version nibble.

use std::ffi::CString;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// An open TUN device. The device exists while this value lives (it is not
/// made persistent) and disappears with it.
#[derive(Debug)]
pub struct TunDevice {
    fd: OwnedFd,
    name: String,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn last_error(context: impl std::fmt::Display) -> io::Error {
    let err = io::Error::last_os_error();
    io::Error::new(err.kind(), format!("{context}: {err}"))
}

/// An `ifreq` carrying `name` (checked: 1..IFNAMSIZ-1 bytes, no NUL).
fn ifreq_for(name: &str) -> io::Result<libc::ifreq> {
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(invalid(format!(
            "interface name `{name}` must be 1..{} bytes without NUL",
            libc::IFNAMSIZ - 1
        )));
    }
    // SAFETY: ifreq is plain old data; all-zero is a valid value.
    let mut req: libc::ifreq = unsafe { MaybeUninit::zeroed().assume_init() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = *src as libc::c_char;
    }
    Ok(req)
}

/// A throw-away AF_INET datagram socket for interface ioctls.
fn ioctl_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(last_error("socket(AF_INET, SOCK_DGRAM) for interface ioctls"));
    }
    // SAFETY: `raw` is a fresh descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// Runs one `SIOC*IF*` ioctl on `req`.
fn if_ioctl(request: libc::c_ulong, req: &mut libc::ifreq, what: &str, name: &str) -> io::Result<()> {
    let sock = ioctl_socket()?;
    // SAFETY: `req` is a valid ifreq with a NUL-terminated name (shorter than
    // IFNAMSIZ, rest zeroed); the interface ioctls used here read or write
    // only members of that ifreq.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, req as *mut libc::ifreq) };
    if rc != 0 {
        return Err(last_error(format_args!("{what} on `{name}`")));
    }
    Ok(())
}

/// The Ethernet address of interface `name` (in the calling thread's network
/// namespace).
pub fn hardware_address(name: &str) -> io::Result<[u8; 6]> {
    let mut req = ifreq_for(name)?;
    if_ioctl(libc::SIOCGIFHWADDR, &mut req, "SIOCGIFHWADDR", name)?;
    // SAFETY: SIOCGIFHWADDR succeeded, so the kernel wrote ifru_hwaddr.
    let sa = unsafe { req.ifr_ifru.ifru_hwaddr };
    let mut mac = [0u8; 6];
    for (m, b) in mac.iter_mut().zip(sa.sa_data.iter()) {
        *m = *b as u8;
    }
    Ok(mac)
}

/// Sets interface `name` administratively up.
pub fn set_up(name: &str) -> io::Result<()> {
    let mut req = ifreq_for(name)?;
    if_ioctl(libc::SIOCGIFFLAGS, &mut req, "SIOCGIFFLAGS", name)?;
    // SAFETY: SIOCGIFFLAGS succeeded, so ifru_flags holds the current flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    if_ioctl(libc::SIOCSIFFLAGS, &mut req, "SIOCSIFFLAGS (up)", name)
}

/// Sets the MTU of interface `name`.
pub fn set_mtu(name: &str, mtu: u32) -> io::Result<()> {
    let mut req = ifreq_for(name)?;
    req.ifr_ifru.ifru_mtu =
        libc::c_int::try_from(mtu).map_err(|_| invalid(format!("MTU {mtu} out of range")))?;
    if_ioctl(libc::SIOCSIFMTU, &mut req, "SIOCSIFMTU", name)
}

impl TunDevice {
    /// Creates (or attaches to) TUN device `name` with `IFF_TUN | IFF_NO_PI`,
    /// in the calling thread's network namespace. The descriptor is
    /// non-blocking; [`read_timeout`](Self::read_timeout) waits with `poll`.
    pub fn create(name: &str) -> io::Result<TunDevice> {
        let mut req = ifreq_for(name)?;
        req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        let path = CString::new("/dev/net/tun").map_err(|e| invalid(e.to_string()))?;
        // SAFETY: `path` is a valid NUL-terminated string for the call.
        let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK) };
        if raw < 0 {
            let err = io::Error::last_os_error();
            let hint = match err.raw_os_error() {
                Some(libc::ENOENT) => " (no /dev/net/tun: load the tun module or create the node)",
                Some(libc::EACCES) | Some(libc::EPERM) => " (needs CAP_NET_ADMIN)",
                _ => "",
            };
            return Err(io::Error::new(err.kind(), format!("open /dev/net/tun{hint}: {err}")));
        }
        // SAFETY: `raw` is a fresh descriptor nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: TUNSETIFF reads the name and flags of a valid ifreq and may
        // write the chosen name back into it.
        let rc = unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF as _, &mut req as *mut libc::ifreq) };
        if rc != 0 {
            return Err(last_error(format_args!("TUNSETIFF `{name}` (IFF_TUN|IFF_NO_PI)")));
        }
        let bytes: Vec<u8> = req.ifr_name.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
        let name = String::from_utf8_lossy(&bytes).into_owned();
        Ok(TunDevice { fd, name })
    }

    /// The device name the kernel gave.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Writes one IP packet (IPv4 or IPv6 header first) into the stack.
    pub fn write_packet(&self, packet: &[u8]) -> io::Result<()> {
        // SAFETY: `packet` is a valid readable buffer of `packet.len()` bytes.
        let n = unsafe { libc::write(self.fd.as_raw_fd(), packet.as_ptr().cast(), packet.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n as usize != packet.len() {
            return Err(io::Error::other(format!("short write to {}: {n} of {}", self.name, packet.len())));
        }
        Ok(())
    }

    /// Reads one packet the stack routed to the device, waiting up to
    /// `timeout`. `Ok(None)`: nothing arrived in time.
    pub fn read_timeout(&self, buf: &mut [u8], timeout: Duration) -> io::Result<Option<usize>> {
        let fd = self.fd.as_raw_fd();
        let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
        if rc < 0 {
            let err = io::Error::last_os_error();
            return if err.kind() == io::ErrorKind::Interrupted { Ok(None) } else { Err(err) };
        }
        if rc == 0 {
            return Ok(None);
        }
        // SAFETY: `buf` is a valid writable buffer of `buf.len()` bytes.
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            let err = io::Error::last_os_error();
            return match err.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted => Ok(None),
                _ => Err(err),
            };
        }
        Ok(Some(n as usize))
    }
}

impl AsRawFd for TunDevice {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_before_any_syscall() {
        for bad in ["", "this-name-is-far-too-long", "a\0b"] {
            assert_eq!(TunDevice::create(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput, "{bad:?}");
            assert_eq!(hardware_address(bad).unwrap_err().kind(), io::ErrorKind::InvalidInput);
        }
        assert!(set_mtu("lo", u32::MAX).is_err());
    }
}
