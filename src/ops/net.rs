//! `fetch`: one HTTP/1.1 exchange through `ureq`. Redirects are not followed by the client:
//! each hop's target is handed to `allow_hop` (which checks the policy and audits the hop)
//! and followed only when it is allowed. Every address a host resolves to is handed to an
//! `AddressCheck` before ureq may connect to it (`GuardedResolver`).

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::proto::{reply, ErrorCode, FetchResponse, Header};

use super::{Done, OpError};

const MAX_REDIRECTS: usize = 10;
const TIMEOUT: Duration = Duration::from_secs(30);

/// A validated HTTP request (see `parse`).
pub struct Request {
    /// The http or https URL to fetch.
    pub url: url::Url,
    /// The upper-case method (`GET`, `POST`, ...).
    pub method: String,
    /// Request headers, sent on every hop.
    pub headers: Vec<Header>,
    /// The request body (dropped when a redirect turns the request into a GET).
    pub body: Vec<u8>,
}

/// Validates what the script asked for: an http(s) URL and a method token.
pub fn parse(url: &str, method: &str) -> Result<(url::Url, String), OpError> {
    let parsed = url::Url::parse(url).map_err(|e| {
        OpError::new(
            ErrorCode::InvalidArgument,
            format!("fetch: invalid URL {:?}: {e}", shown_text(url)),
        )
    })?;
    if parsed.scheme() != "http" && parsed.scheme() != "https" {
        return Err(OpError::new(
            ErrorCode::InvalidArgument,
            format!(
                "fetch: only http and https URLs can be fetched, not {:?}",
                parsed.scheme()
            ),
        ));
    }
    let method = if method.is_empty() {
        "GET".to_string()
    } else {
        method.to_ascii_uppercase()
    };
    if !method.bytes().all(|b| b.is_ascii_alphabetic() || b == b'-') {
        return Err(OpError::new(
            ErrorCode::InvalidArgument,
            format!("fetch: invalid method {method:?}"),
        ));
    }
    Ok((parsed, method))
}

/// Request headers a script may not set, with why: v8box frames, routes and connects the
/// request itself. Names compare case-insensitively; every `Proxy-*` name is refused too.
const FORBIDDEN_HEADERS: &[(&str, &str)] = &[
    ("host", "v8box sets it from the URL"),
    ("connection", "v8box manages the connection"),
    ("keep-alive", "v8box manages the connection"),
    ("upgrade", "v8box speaks HTTP/1.1 only"),
    ("transfer-encoding", "v8box frames the body itself"),
    ("content-length", "v8box frames the body itself"),
    ("te", "v8box frames the body itself"),
    ("trailer", "v8box frames the body itself"),
    ("expect", "v8box sends the body at once"),
];

/// Refuses headers a script may not set (`FORBIDDEN_HEADERS`, `Proxy-*`) and those that are
/// not well formed, naming the header. The grammar is RFC 9110's (a name is a token; a value
/// is visible ASCII, spaces and tabs) — what ureq checks too, but ureq's check is private and
/// fails the request later, as a network error.
pub fn check_headers(headers: &[Header]) -> Result<(), OpError> {
    let invalid = |why: String| Err(OpError::new(ErrorCode::InvalidArgument, why));
    for h in headers {
        let name = h.name.as_str();
        let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if name.is_empty() || !name.bytes().all(tchar) {
            return invalid(format!(
                "fetch: invalid header name {name:?} (a header name is letters, digits and !#$%&'*+-.^_`|~)"
            ));
        }
        if !h
            .value
            .bytes()
            .all(|b| b == b' ' || b == b'\t' || (0x21..=0x7e).contains(&b))
        {
            return invalid(format!(
                "fetch: invalid value for header {name:?} (a value is visible ASCII, spaces and tabs: no CR, LF or other control characters)"
            ));
        }
        let lower = name.to_ascii_lowercase();
        let why = if lower.starts_with("proxy-") {
            Some("v8box uses no proxy")
        } else {
            FORBIDDEN_HEADERS
                .iter()
                .find(|(n, _)| *n == lower)
                .map(|(_, why)| *why)
        };
        if let Some(why) = why {
            return invalid(format!(
                "fetch: a script may not set the header {name:?} ({why})"
            ));
        }
    }
    Ok(())
}

/// `url` as the audit log and error messages show it: a user name and password, if any, are
/// replaced by `***` (`http://***@host/`).
pub fn shown(url: &url::Url) -> String {
    if url.username().is_empty() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    // Both fail only for URLs that cannot have credentials, which then have none.
    let _ = shown.set_password(None);
    let _ = shown.set_username("***");
    shown.to_string()
}

/// `text`, which did not parse as an http(s) URL, as the audit log and error messages show it:
/// whatever precedes the last `@` in what would be its authority (after the scheme's `:` and
/// any slashes, up to the next `/`, `\`, `?` or `#`) is replaced by `***`. This errs on the
/// side of hiding: an `@` there is the only way a URL carries credentials.
pub fn shown_text(text: &str) -> String {
    let Some(colon) = text.find(':') else {
        return text.to_string();
    };
    let rest = &text[colon + 1..];
    let after = rest.trim_start_matches(['/', '\\']);
    let authority = &after[..after.find(['/', '\\', '?', '#']).unwrap_or(after.len())];
    match authority.rfind('@') {
        Some(at) => {
            let prefix = &text[..text.len() - after.len()];
            format!("{prefix}***{}", &after[at..])
        }
        None => text.to_string(),
    }
}

/// Decides whether a connection may be made to an address: given the scheme of the URL being
/// fetched (`http`, `https`; for the record), the host as the URL names it (`example.com`,
/// `127.0.0.1`, `[::1]`), the address it led to, and whether that address is
/// one of this host's. It audits what it decides; an error refuses the address.
pub type AddressCheck =
    Arc<dyn Fn(&str, &str, SocketAddr, bool) -> Result<(), OpError> + Send + Sync + 'static>;

/// Marks an address refused by `AddressCheck` in the error ureq returns; the refusal itself is
/// in `GuardedResolver::refusal`.
const REFUSED: &str = "v8box refused the address";

/// This host's own interface addresses (`if-addrs`: getifaddrs), IPv4-mapped ones made plain.
fn own_addresses() -> std::io::Result<Vec<IpAddr>> {
    Ok(if_addrs::get_if_addrs()?
        .into_iter()
        .map(|i| i.ip().to_canonical())
        .collect())
}

/// Resolves a host once and hands ureq only the addresses that `check` allows, so that the
/// connection goes to an address that was checked (no DNS rebinding between check and
/// connect). `localhost` is not looked up at all: it is 127.0.0.1 and ::1.
struct GuardedResolver {
    check: AddressCheck,
    /// The scheme of the hop being resolved (`http`, `https`), for the check's record.
    scheme: Arc<Mutex<String>>,
    /// Why the last resolution was refused (taken by `fetch` to answer with).
    refusal: Arc<Mutex<Option<OpError>>>,
}

impl GuardedResolver {
    fn addresses(&self, netloc: &str) -> Result<Vec<SocketAddr>, OpError> {
        let network = |why: String| OpError::new(ErrorCode::Network, why);
        let (host, port) = netloc
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h, p.parse::<u16>().ok()?)))
            .ok_or_else(|| network(format!("no port in {netloc:?}")))?;
        if host == "localhost" {
            return Ok(vec![
                SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
                SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
            ]);
        }
        let found: Vec<SocketAddr> = netloc
            .to_socket_addrs()
            .map_err(|e| network(format!("resolving {host}: {e}")))?
            .collect();
        let own = own_addresses().map_err(|e| {
            network(format!(
                "cannot list this host's addresses to check {host}'s against them: {e}"
            ))
        })?;
        let mut allowed = Vec::new();
        let mut refused = None;
        for addr in found {
            let is_own = own.contains(&addr.ip().to_canonical());
            let scheme = self
                .scheme
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            match (self.check)(&scheme, host, addr, is_own) {
                Ok(()) => allowed.push(addr),
                Err(e) => {
                    refused.get_or_insert(e);
                }
            }
        }
        match refused {
            Some(e) if allowed.is_empty() => Err(e),
            _ => Ok(allowed),
        }
    }
}

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        self.addresses(netloc).map_err(|e| {
            *self.refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, REFUSED)
        })
    }
}

/// What went wrong in transport, without the URL ureq's own text starts with (it would show
/// the URL's credentials; the caller names the URL, shown).
fn transport_text(t: &ureq::Transport) -> String {
    let mut text = t.kind().to_string();
    if let Some(message) = t.message() {
        text.push_str(": ");
        text.push_str(message);
    }
    if let Some(source) = std::error::Error::source(t) {
        text.push_str(&format!(": {source}"));
    }
    text
}

/// Performs `request`, following up to 10 redirects that `allow_hop` permits, and connecting
/// (on every hop) only to addresses that `allow_address` permits; fails with `TooLarge` when
/// the response body exceeds `max_bytes`.
pub fn fetch(
    request: Request,
    max_bytes: u64,
    allow_hop: &dyn Fn(&url::Url) -> Result<(), OpError>,
    allow_address: AddressCheck,
) -> Done {
    let refusal = Arc::new(Mutex::new(None));
    let scheme = Arc::new(Mutex::new(String::new()));
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(TIMEOUT)
        // A proxy would be connected to instead of the addresses checked.
        .try_proxy_from_env(false)
        .resolver(GuardedResolver {
            check: allow_address,
            scheme: scheme.clone(),
            refusal: refusal.clone(),
        })
        .build();
    let mut url = request.url;
    let mut method = request.method;
    let mut body = request.body;
    for hop in 0..=MAX_REDIRECTS {
        url.scheme()
            .clone_into(&mut scheme.lock().unwrap_or_else(|p| p.into_inner()));
        let mut req = agent.request_url(&method, &url);
        for h in &request.headers {
            req = req.set(&h.name, &h.value);
        }
        let result = if body.is_empty() && (method == "GET" || method == "HEAD") {
            req.call()
        } else {
            req.send_bytes(&body)
        };
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(ureq::Error::Transport(t)) => {
                let refused = refusal.lock().unwrap_or_else(|p| p.into_inner()).take();
                let (code, text) = match refused {
                    Some(e) => (e.code, e.message),
                    None => (ErrorCode::Network, transport_text(&t)),
                };
                return Done::err(OpError::new(code, format!("fetch {}: {text}", shown(&url))));
            }
        };
        let status = response.status();
        if (300..400).contains(&status) && status != 304 {
            if let Some(location) = response.header("location") {
                let next = match url.join(location) {
                    Ok(n) => n,
                    Err(e) => {
                        return Done::err(OpError::new(
                            ErrorCode::Network,
                            format!(
                                "fetch {}: bad redirect location {:?}: {e}",
                                shown(&url),
                                shown_text(location)
                            ),
                        ))
                    }
                };
                if hop == MAX_REDIRECTS {
                    return Done::err(OpError::new(
                        ErrorCode::Network,
                        format!("fetch {}: more than {MAX_REDIRECTS} redirects", shown(&url)),
                    ));
                }
                if let Err(e) = allow_hop(&next) {
                    return Done::err(e);
                }
                if status == 303 || ((status == 301 || status == 302) && method == "POST") {
                    method = "GET".into();
                    body = Vec::new();
                }
                url = next;
                continue;
            }
        }
        let headers: Vec<Header> = response
            .headers_names()
            .into_iter()
            .flat_map(|name| {
                response
                    .all(&name)
                    .into_iter()
                    .map(|v| Header {
                        name: name.clone(),
                        value: v.to_string(),
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        let final_url = response.get_url().to_string();
        let status_text = response.status_text().to_string();
        let mut data = Vec::new();
        if let Err(e) = response
            .into_reader()
            .take(max_bytes + 1)
            .read_to_end(&mut data)
        {
            return Done::err(OpError::new(
                ErrorCode::Network,
                format!("fetch {}: reading the body: {e}", shown(&url)),
            ));
        }
        if data.len() as u64 > max_bytes {
            return Done::err(OpError::new(
                ErrorCode::TooLarge,
                format!("fetch {}: the response body is larger than the {max_bytes} bytes a reply may carry (raise [limits] max_message_bytes)", shown(&url)),
            ));
        }
        let n = data.len() as u64;
        return Done::ok(
            reply::Result::FetchResponse(FetchResponse {
                status: status as u32,
                headers,
                body: data,
                url: final_url,
                status_text,
            }),
            n,
        );
    }
    unreachable!("the loop returns on its last hop")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn framing_routing_and_malformed_headers_are_refused_by_name() {
        for name in [
            "Host",
            "hOsT",
            "Content-Length",
            "Proxy-Authorization",
            "proxy-x",
        ] {
            let e = check_headers(&[header("X-Ok", "1"), header(name, "v")]).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidArgument);
            assert!(e.message.contains(&format!("{name:?}")), "{}", e.message);
        }
        for (name, value) in [("X:y", "v"), ("", "v"), ("X y", "v"), ("X", "a\r\nHost: h")] {
            assert!(check_headers(&[header(name, value)]).is_err(), "{name:?}");
        }
        assert!(check_headers(&[
            header("Authorization", "Bearer a.b"),
            header("X-Proxyish", "v")
        ])
        .is_ok());
    }

    #[test]
    fn credentials_are_hidden_in_what_is_shown() {
        let u = |s: &str| shown(&url::Url::parse(s).unwrap());
        assert_eq!(u("http://user:pw@h:8080/p?q#f"), "http://***@h:8080/p?q#f");
        assert_eq!(u("http://user@h/"), "http://***@h/");
        assert_eq!(u("http://:pw@h/"), "http://***@h/");
        assert_eq!(u("http://h/a@b"), "http://h/a@b");
        assert_eq!(
            shown_text("http://u:pw@h:99999/x@y"),
            "http://***@h:99999/x@y"
        );
        assert_eq!(shown_text("http:u:pw@h:99999"), "http:***@h:99999");
        assert_eq!(shown_text("http:\\\\u:p@w@h"), "http:\\\\***@h");
        assert_eq!(shown_text("http://h:99999/a@b"), "http://h:99999/a@b");
        assert_eq!(shown_text("no url"), "no url");
    }

    #[test]
    fn the_resolver_hands_over_only_addresses_the_check_allows() {
        use ureq::Resolver;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let resolver = GuardedResolver {
            check: Arc::new(move |scheme, host, addr, own| {
                assert_eq!(scheme, "http");
                log.lock().unwrap().push((host.to_string(), addr, own));
                if addr.ip().is_loopback() && addr.port() != 1 {
                    Err(OpError::new(ErrorCode::PermissionDenied, "no"))
                } else {
                    Ok(())
                }
            }),
            scheme: Arc::new(Mutex::new("http".into())),
            refusal: Arc::new(Mutex::new(None)),
        };
        // localhost is 127.0.0.1 and ::1 without a lookup, and needs no check.
        let addrs = resolver.resolve("localhost:80").unwrap();
        assert_eq!(
            addrs,
            ["127.0.0.1:80".parse().unwrap(), "[::1]:80".parse().unwrap()]
        );
        assert!(seen.lock().unwrap().is_empty());
        // A refused address is never handed over; the refusal is kept for the answer.
        assert!(resolver.resolve("127.0.0.1:80").is_err());
        let kept = resolver.refusal.lock().unwrap().take().unwrap();
        assert_eq!(kept.code, ErrorCode::PermissionDenied);
        assert_eq!(
            resolver.resolve("[::1]:1").unwrap(),
            ["[::1]:1".parse().unwrap()]
        );
        {
            let seen = seen.lock().unwrap();
            assert_eq!(
                seen[0],
                ("127.0.0.1".into(), "127.0.0.1:80".parse().unwrap(), true)
            );
            assert_eq!(seen[1].0, "[::1]");
        }
        // This host's own addresses are marked as such, and others are not.
        for interface in if_addrs::get_if_addrs().unwrap() {
            let addr = SocketAddr::new(interface.ip(), 80);
            let netloc = match addr.ip() {
                IpAddr::V4(ip) => format!("{ip}:80"),
                IpAddr::V6(ip) => format!("[{ip}]:80"),
            };
            let _ = resolver.resolve(&netloc);
            let last = seen.lock().unwrap().last().cloned().unwrap();
            assert_eq!((last.1, last.2), (addr, true), "{netloc}");
        }
        let _ = resolver.resolve("[2001:db8::7]:80");
        assert!(!seen.lock().unwrap().last().unwrap().2);
    }
}
