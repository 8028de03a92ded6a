//! Host and service names for listings without `-n`, from `/etc/hosts` and `/etc/services` only:
//! ipvsadm asks the resolver, but a director must never block on DNS to print its table.

use lvs_core::ipvsadm::Names;
use lvs_core::model::Protocol;
use std::collections::HashMap;
use std::net::IpAddr;

/// Names read once from the files.
#[derive(Debug, Default)]
pub struct FileNames {
    hosts: HashMap<IpAddr, String>,
    services: HashMap<(u16, &'static str), String>,
}

impl FileNames {
    /// Reads `/etc/hosts` and `/etc/services`; missing or unreadable files give no names.
    pub fn load() -> FileNames {
        let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
        FileNames::parse(&read("/etc/hosts"), &read("/etc/services"))
    }

    /// Parses the two files' contents.
    pub fn parse(hosts: &str, services: &str) -> FileNames {
        let mut n = FileNames::default();
        for line in hosts.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            if let (Some(addr), Some(name)) = (words.next(), words.next()) {
                if let Ok(a) = addr.parse::<IpAddr>() {
                    n.hosts.entry(a).or_insert_with(|| name.to_owned());
                }
            }
        }
        for line in services.lines() {
            let line = line.split('#').next().unwrap_or_default();
            let mut words = line.split_whitespace();
            let (Some(name), Some(port_proto)) = (words.next(), words.next()) else { continue };
            let Some((port, proto)) = port_proto.split_once('/') else { continue };
            let proto = match proto {
                "tcp" => "tcp",
                "udp" => "udp",
                "sctp" => "sctp",
                _ => continue,
            };
            if let Ok(port) = port.parse::<u16>() {
                n.services.entry((port, proto)).or_insert_with(|| name.to_owned());
            }
        }
        n
    }
}

impl Names for FileNames {
    fn host(&self, addr: IpAddr) -> Option<String> {
        self.hosts.get(&addr).cloned()
    }
    fn service(&self, port: u16, protocol: Protocol) -> Option<String> {
        let proto = match protocol {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        };
        self.services.get(&(port, proto)).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_name_wins_and_comments_are_ignored() {
        let n = FileNames::parse(
            "127.0.0.1 localhost lh\n# 10.0.0.1 commented\n10.0.0.2 web1 # trailing\n10.0.0.2 other\n",
            "http 80/tcp www # World Wide Web\nhttp 80/udp\ndomain 53/udp\nbad line\n",
        );
        assert_eq!(n.host("127.0.0.1".parse().unwrap()).as_deref(), Some("localhost"));
        assert_eq!(n.host("10.0.0.2".parse().unwrap()).as_deref(), Some("web1"));
        assert_eq!(n.host("10.0.0.1".parse().unwrap()), None);
        assert_eq!(n.service(80, Protocol::Tcp).as_deref(), Some("http"));
        assert_eq!(n.service(53, Protocol::Udp).as_deref(), Some("domain"));
        assert_eq!(n.service(53, Protocol::Tcp), None);
    }
}
