//! Network targets: a host (name or IP, normalized the way URLs normalize them — so
//! `2130706433`, `0x7f.1` and `127.0.0.1` are one host) with an optional port; and which
//! addresses are public (`non_public`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use ipnet::{Ipv4Net, Ipv6Net};

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(segments: [u16; 8], len: u8) -> Ipv6Net {
    let [a, b, c, d, e, f, g, h] = segments;
    Ipv6Net::new_assert(Ipv6Addr::new(a, b, c, d, e, f, g, h), len)
}

/// The IPv4 ranges that are not public: every block of IANA's IPv4 Special-Purpose Address
/// Registry that is not globally reachable, with 192.0.0.0/24 and 192.88.99.0/24 refused whole,
/// plus multicast. The first that contains an address names it (so the broadcast address is
/// not called reserved).
const V4_NOT_PUBLIC: &[(Ipv4Net, &str)] = &[
    (v4(0, 0, 0, 0, 8), "\"this network\", 0.0.0.0/8"),
    (v4(10, 0, 0, 0, 8), "private, 10.0.0.0/8"),
    (
        v4(100, 64, 0, 0, 10),
        "shared address space (CGNAT), 100.64.0.0/10",
    ),
    (v4(127, 0, 0, 0, 8), "loopback, 127.0.0.0/8"),
    (v4(169, 254, 0, 0, 16), "link-local, 169.254.0.0/16"),
    (v4(172, 16, 0, 0, 12), "private, 172.16.0.0/12"),
    (
        v4(192, 0, 0, 0, 24),
        "IETF protocol assignments, 192.0.0.0/24",
    ),
    (v4(192, 0, 2, 0, 24), "documentation, 192.0.2.0/24"),
    (v4(192, 88, 99, 0, 24), "6to4 relay anycast, 192.88.99.0/24"),
    (v4(192, 168, 0, 0, 16), "private, 192.168.0.0/16"),
    (v4(198, 18, 0, 0, 15), "benchmarking, 198.18.0.0/15"),
    (v4(198, 51, 100, 0, 24), "documentation, 198.51.100.0/24"),
    (v4(203, 0, 113, 0, 24), "documentation, 203.0.113.0/24"),
    (v4(224, 0, 0, 0, 4), "multicast, 224.0.0.0/4"),
    (v4(255, 255, 255, 255, 32), "broadcast, 255.255.255.255"),
    (v4(240, 0, 0, 0, 4), "reserved, 240.0.0.0/4"),
];

/// The IPv6 ranges that are not public, by name. IPv4-mapped (`::ffff:0:0/96`) and 6to4
/// (`2002::/16`) addresses are judged by the IPv4 address they carry, before this list; and
/// whatever lies outside 2000::/3 (the only global unicast space IANA has allocated) is not
/// public either, listed here or not.
const V6_NOT_PUBLIC: &[(Ipv6Net, &str)] = &[
    (v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "unspecified, ::"),
    (v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "loopback, ::1"),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "IPv4-compatible (deprecated), ::/96",
    ),
    (
        v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96),
        "IPv4-translated, ::ffff:0:0:0/96",
    ),
    (
        v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96),
        "NAT64, 64:ff9b::/96",
    ),
    (
        v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "local-use NAT64, 64:ff9b:1::/48",
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "discard-only, 100::/64",
    ),
    (v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32), "Teredo, 2001::/32"),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "IETF protocol assignments, 2001::/23",
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "documentation, 2001:db8::/32",
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "documentation, 3fff::/20",
    ),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "segment routing (SRv6), 5f00::/16",
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "unique local, fc00::/7",
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "link-local, fe80::/10",
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "site-local (deprecated), fec0::/10",
    ),
    (v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "multicast, ff00::/8"),
];

const V6_GLOBAL_UNICAST: Ipv6Net = v6([0x2000, 0, 0, 0, 0, 0, 0, 0], 3);
const V6_6TO4: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);

/// Why `ip` is not a public address — the range it lies in, as `loopback, 127.0.0.0/8` — or
/// `None` for a public one. A fetch reaches a non-public address only when a grant names that
/// address itself (docs/POLICY.md). IPv4-mapped and 6to4 addresses are judged by the IPv4
/// address inside (`::ffff:127.0.0.1` is loopback); every other IPv6 address outside
/// 2000::/3 is not public.
///
/// Written out rather than taken from the standard library, whose `is_global` is unstable, and
/// whose stable tests miss CGNAT, benchmarking, the reserved block and most of IPv6's.
pub fn non_public(ip: IpAddr) -> Option<String> {
    match ip {
        IpAddr::V4(ip) => non_public_v4(ip).map(str::to_string),
        IpAddr::V6(ip) => {
            if let Some(inner) = ip.to_ipv4_mapped() {
                return non_public_v4(inner)
                    .map(|why| format!("{why}, as the IPv4-mapped ::ffff:{inner}"));
            }
            if V6_6TO4.contains(&ip) {
                let s = ip.segments();
                let inner = Ipv4Addr::from((u32::from(s[1]) << 16) | u32::from(s[2]));
                return non_public_v4(inner)
                    .map(|why| format!("{why}, inside the 6to4 address (2002::/16)"));
            }
            if let Some((_, why)) = V6_NOT_PUBLIC.iter().find(|(net, _)| net.contains(&ip)) {
                return Some(why.to_string());
            }
            if !V6_GLOBAL_UNICAST.contains(&ip) {
                return Some("not global unicast, outside 2000::/3".into());
            }
            None
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    V4_NOT_PUBLIC
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, why)| *why)
}

/// A host and, for a grant, optionally a port (`None` covers every port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetTarget {
    /// The normalized host: a lowercase name, an IPv4 address, or a bracketed IPv6 address.
    pub host: String,
    /// The port; `None` in a grant covers every port.
    pub port: Option<u16>,
}

impl fmt::Display for NetTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}:{p}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

fn normalize_host(host: &str) -> Result<String, String> {
    match url::Host::parse(host) {
        Ok(url::Host::Domain(d)) => Ok(d.to_ascii_lowercase()),
        Ok(url::Host::Ipv4(ip)) => Ok(ip.to_string()),
        Ok(url::Host::Ipv6(ip)) => Ok(format!("[{ip}]")),
        Err(e) => Err(format!("invalid host {host:?}: {e}")),
    }
}

impl NetTarget {
    /// Parses a grant: `host`, `host:port`, `[v6]` or `[v6]:port`.
    pub fn parse(text: &str) -> Result<NetTarget, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("empty host".into());
        }
        if text.contains("://") {
            let suggestion = url::Url::parse(text)
                .ok()
                .and_then(|u| NetTarget::from_url(&u).ok())
                .map(|t| format!(" (write {:?})", t.to_string()))
                .unwrap_or_default();
            return Err(format!(
                "expected HOST[:PORT], not a URL: {text:?}{suggestion}"
            ));
        }
        if text.contains('*') {
            return Err(format!(
                "{text:?}: wildcards are not supported; grant each host by name (a grant of a \
                 host does not cover its subdomains)"
            ));
        }
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or_else(|| format!("invalid host {text:?}: missing ']'"))?;
            let port = match after {
                "" => None,
                p => Some(
                    p.strip_prefix(':')
                        .ok_or_else(|| format!("invalid host {text:?}"))?,
                ),
            };
            (format!("[{inside}]"), port)
        } else {
            match text.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (text.to_string(), None),
            }
        };
        let port = match port {
            Some(p) => Some(
                p.parse::<u16>()
                    .map_err(|_| format!("invalid port in {text:?}"))?,
            ),
            None => None,
        };
        Ok(NetTarget {
            host: normalize_host(&host)?,
            port,
        })
    }

    /// The target a URL points at (its port made explicit).
    pub fn from_url(url: &url::Url) -> Result<NetTarget, String> {
        let host = match url.host() {
            Some(url::Host::Domain(d)) => d.to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
            None => return Err(format!("URL {url} has no host")),
        };
        Ok(NetTarget {
            host,
            port: url.port_or_known_default(),
        })
    }

    /// The target of a connection to `addr` (its host the address, as a grant would spell it).
    pub fn of_address(addr: SocketAddr) -> NetTarget {
        let host = match addr.ip() {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        NetTarget {
            host,
            port: Some(addr.port()),
        }
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        let inner = self.host.trim_start_matches('[').trim_end_matches(']');
        inner.parse().ok()
    }

    /// Why this target needs a grant that names it (a grant of every host does not cover it):
    /// `localhost`, or an IP address that is not public. `None` for public addresses and other
    /// names (whose addresses are checked when connecting).
    pub fn not_public(&self) -> Option<String> {
        if self.host == "localhost" {
            return Some("localhost is this host's loopback".into());
        }
        let ip = self.ip()?;
        non_public(ip).map(|why| format!("{ip} is not a public address ({why})"))
    }

    /// Whether this grant covers `target` (same host; same port unless the grant has none).
    pub fn covers(&self, target: &NetTarget) -> bool {
        self.host == target.host && (self.port.is_none() || self.port == target.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_normalize_like_urls() {
        let t = NetTarget::parse("127.0.0.1:8080").unwrap();
        let u = url::Url::parse("http://2130706433:8080/x").unwrap();
        assert!(t.covers(&NetTarget::from_url(&u).unwrap()));
        let u = url::Url::parse("http://0x7f.0.0.1:8080/").unwrap();
        assert!(t.covers(&NetTarget::from_url(&u).unwrap()));
        let v6 = NetTarget::parse("[::1]:80").unwrap();
        assert_eq!(v6.to_string(), "[::1]:80");
        let u = url::Url::parse("http://[::1]/").unwrap();
        assert!(v6.covers(&NetTarget::from_url(&u).unwrap()));
        assert!(!NetTarget::parse("example.com:443")
            .unwrap()
            .covers(&NetTarget::parse("example.com:80").unwrap()));
        assert!(NetTarget::parse("Example.COM")
            .unwrap()
            .covers(&NetTarget::parse("example.com:80").unwrap()));
    }

    fn why(ip: &str) -> Option<String> {
        non_public(ip.parse().unwrap())
    }

    #[test]
    fn every_special_purpose_address_is_not_public_and_says_why() {
        for (ip, range) in [
            ("0.0.0.0", "0.0.0.0/8"),
            ("0.1.2.3", "0.0.0.0/8"),
            ("10.0.0.1", "10.0.0.0/8"),
            ("10.255.255.255", "10.0.0.0/8"),
            ("100.64.0.0", "CGNAT"),
            ("100.127.255.255", "CGNAT"),
            ("127.0.0.1", "loopback"),
            ("127.255.255.254", "loopback"),
            ("169.254.169.254", "link-local"),
            ("172.16.0.1", "172.16.0.0/12"),
            ("172.31.255.255", "172.16.0.0/12"),
            ("192.0.0.9", "192.0.0.0/24"),
            ("192.0.2.2", "documentation"),
            ("192.88.99.1", "6to4 relay"),
            ("192.168.1.1", "192.168.0.0/16"),
            ("198.18.0.1", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("198.51.100.7", "documentation"),
            ("203.0.113.7", "documentation"),
            ("224.0.0.1", "multicast"),
            ("239.255.255.250", "multicast"),
            ("240.0.0.1", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("::", "unspecified"),
            ("::1", "loopback, ::1"),
            ("::127.0.0.1", "IPv4-compatible"),
            ("::8.8.8.8", "IPv4-compatible"),
            (
                "::ffff:127.0.0.1",
                "loopback, 127.0.0.0/8, as the IPv4-mapped ::ffff:127.0.0.1",
            ),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "link-local"),
            ("::ffff:0.0.0.0", "0.0.0.0/8"),
            ("::ffff:0:127.0.0.1", "IPv4-translated"),
            ("64:ff9b::7f00:1", "NAT64"),
            ("64:ff9b::808:808", "NAT64"),
            ("64:ff9b:1::1", "NAT64"),
            ("100::1", "discard"),
            ("2001::1", "Teredo"),
            ("2001:2::1", "2001::/23"),
            ("2001:db8::1", "documentation"),
            ("2002:7f00:1::", "loopback, 127.0.0.0/8, inside the 6to4"),
            ("2002:c0a8:101::1", "192.168.0.0/16, inside the 6to4"),
            ("2002:a9fe:a9fe::", "link-local"),
            ("3fff::1", "documentation"),
            ("5f00::1", "SRv6"),
            ("fc00::1", "unique local"),
            ("fd00::2", "unique local"),
            ("fe80::1", "link-local, fe80::/10"),
            ("fec0::1", "site-local"),
            ("ff02::1", "multicast"),
            ("4000::1", "outside 2000::/3"),
            ("1::1", "outside 2000::/3"),
        ] {
            let why = why(ip).unwrap_or_else(|| panic!("{ip} was taken for public"));
            assert!(why.contains(range), "{ip}: {why}");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in [
            "1.1.1.1",
            "8.8.8.8",
            "93.184.216.34",
            "9.255.255.255",
            "11.0.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "126.255.255.255",
            "128.0.0.0",
            "169.253.255.255",
            "172.15.255.255",
            "172.32.0.0",
            "192.0.1.255",
            "192.0.3.0",
            "192.167.255.255",
            "192.169.0.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "2002:808:808::1",
            "2001:4860:4860::8888",
            "2606:2800:220:1::1",
            "2001:200::1",
        ] {
            assert_eq!(why(ip), None, "{ip}");
        }
    }

    #[test]
    fn localhost_and_non_public_literals_need_a_grant_of_their_own() {
        let t = |s: &str| NetTarget::parse(s).unwrap();
        assert!(t("localhost:80").not_public().is_some());
        assert!(t("127.0.0.1").not_public().unwrap().contains("loopback"));
        assert!(t("[::ffff:127.0.0.1]:8080").not_public().is_some());
        assert!(t("[fd00::2]").not_public().is_some());
        assert_eq!(t("example.com").not_public(), None);
        assert_eq!(t("8.8.8.8:53").not_public(), None);
        assert_eq!(t("[2606:2800:220:1::1]").not_public(), None);
        // A connection's target is spelled the way a grant is normalized.
        let addr: SocketAddr = "[::ffff:127.0.0.1]:8080".parse().unwrap();
        assert!(t("[::ffff:7f00:1]:8080").covers(&NetTarget::of_address(addr)));
        let addr: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        assert!(t("127.0.0.1").covers(&NetTarget::of_address(addr)));
    }
}
