//! Network targets: a host (name or IP, normalized the way URLs normalize them — so
//! `2130706433`, `0x7f.1` and `127.0.0.1` are one host) with an optional port.

use std::fmt;

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
}
