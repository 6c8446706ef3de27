//! `fetch`: one HTTP/1.1 exchange through `ureq`. Redirects are not followed by the client:
//! each hop's target is handed to `allow_hop` (which checks the policy and audits the hop)
//! and followed only when it is allowed.

use std::io::Read;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
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
            format!("fetch: invalid URL {url:?}: {e}"),
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

/// Marks the resolver's refusals, so they become PERMISSION_DENIED rather than NETWORK errors.
const REFUSED: &str = "v8box refused the address";

/// Whether `ip` is an address a host *name* must not lead to: loopback, unspecified or
/// link-local (where cloud metadata services live). A grant of the address itself, or of
/// `localhost`, still reaches it.
pub fn is_guarded(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback() || v4.is_unspecified() || v4.is_link_local(),
        IpAddr::V6(v6) => {
            v6.is_loopback()
                || v6.is_unspecified()
                || (v6.segments()[0] & 0xffc0) == 0xfe80
                || v6
                    .to_ipv4_mapped()
                    .is_some_and(|v4| is_guarded(IpAddr::V4(v4)))
        }
    }
}

/// Resolves names once and refuses a name that resolves to a guarded address, so DNS cannot
/// turn an allowed public name into a way to the host's own services (DNS rebinding). The
/// connection uses exactly the addresses checked here.
struct GuardedResolver {
    /// Off when the policy allows every host (`--allow-net` with no value): then nothing is
    /// out of bounds, the host's own services included.
    enabled: bool,
}

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> std::io::Result<Vec<SocketAddr>> {
        let addrs: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        let host = netloc.rsplit_once(':').map_or(netloc, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let literal = host.parse::<IpAddr>().is_ok();
        if self.enabled && !literal && !host.eq_ignore_ascii_case("localhost") {
            if let Some(bad) = addrs.iter().find(|a| is_guarded(a.ip())) {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "{REFUSED}: {host} resolves to {} (loopback, unspecified or link-local); \
                         allow the address itself to reach it",
                        bad.ip()
                    ),
                ));
            }
        }
        Ok(addrs)
    }
}

/// Performs `request`, following up to 10 redirects that `allow_hop` permits; fails with
/// `TooLarge` when the response body exceeds `max_bytes`.
pub fn fetch(
    request: Request,
    max_bytes: u64,
    allow_hop: &dyn Fn(&url::Url) -> Result<(), OpError>,
    guard_names: bool,
) -> Done {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(TIMEOUT)
        .resolver(GuardedResolver {
            enabled: guard_names,
        })
        .build();
    let mut url = request.url;
    let mut method = request.method;
    let mut body = request.body;
    for hop in 0..=MAX_REDIRECTS {
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
                let text = t.to_string();
                let code = if text.contains(REFUSED) {
                    ErrorCode::PermissionDenied
                } else {
                    ErrorCode::Network
                };
                return Done::err(OpError::new(code, format!("fetch {url}: {text}")));
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
                            format!("fetch {url}: bad redirect location {location:?}: {e}"),
                        ))
                    }
                };
                if hop == MAX_REDIRECTS {
                    return Done::err(OpError::new(
                        ErrorCode::Network,
                        format!("fetch {url}: more than {MAX_REDIRECTS} redirects"),
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
        let mut data = Vec::new();
        if let Err(e) = response
            .into_reader()
            .take(max_bytes + 1)
            .read_to_end(&mut data)
        {
            return Done::err(OpError::new(
                ErrorCode::Network,
                format!("fetch {url}: reading the body: {e}"),
            ));
        }
        if data.len() as u64 > max_bytes {
            return Done::err(OpError::new(
                ErrorCode::TooLarge,
                format!("fetch {url}: the response body is larger than the {max_bytes} bytes a reply may carry (raise [limits] max_message_bytes)"),
            ));
        }
        let n = data.len() as u64;
        return Done::ok(
            reply::Result::FetchResponse(FetchResponse {
                status: status as u32,
                headers,
                body: data,
                url: final_url,
            }),
            n,
        );
    }
    unreachable!("the loop returns on its last hop")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_may_not_lead_to_loopback_or_link_local_addresses() {
        for ip in [
            "127.0.0.1",
            "127.1.2.3",
            "0.0.0.0",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(is_guarded(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "10.0.0.1", "2606:2800:220:1::1"] {
            assert!(!is_guarded(ip.parse().unwrap()), "{ip}");
        }
        use ureq::Resolver;
        let guarded = GuardedResolver { enabled: true };
        assert!(guarded.resolve("127.0.0.1:80").is_ok());
        assert!(guarded.resolve("localhost:80").is_ok());
    }
}
