//! `fetch`: one HTTP/1.1 exchange through `ureq`. Redirects are not followed by the client:
//! each hop's target is handed to `allow_hop` (which checks the policy and audits the hop)
//! and followed only when it is allowed.

use std::io::Read;
use std::time::Duration;

use crate::proto::{reply, ErrorCode, FetchResponse, Header};

use super::{Done, OpError};

const MAX_REDIRECTS: usize = 10;
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Request {
    pub url: url::Url,
    pub method: String,
    pub headers: Vec<Header>,
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

pub fn fetch(
    request: Request,
    max_bytes: u64,
    allow_hop: &dyn Fn(&url::Url) -> Result<(), OpError>,
) -> Done {
    let agent = ureq::AgentBuilder::new()
        .redirects(0)
        .timeout(TIMEOUT)
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
                return Done::err(OpError::new(
                    ErrorCode::Network,
                    format!("fetch {url}: {t}"),
                ));
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
                format!("fetch {url}: the response body is larger than {max_bytes} bytes"),
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
