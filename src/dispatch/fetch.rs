//! `net.fetch`: validating a fetch, and the decisions it makes while it runs — each redirect
//! hop, and each address it connects to that is not public — each recorded on its own.

use std::sync::Arc;

use super::plan::{Plan, Run, Target};
use super::{info, Dispatcher, Shared};
use crate::audit::{CallInfo, Parts};
use crate::ops::{self, table::NET_FETCH, OpError};
use crate::policy::{NetTarget, Permission, Policy};
use crate::proto::{self, ErrorCode};

impl Dispatcher {
    /// The plan of a fetch: its URL, method and headers validated, its target decided.
    pub(super) fn fetch_plan(&self, f: proto::Fetch) -> Plan {
        let n = f.body.len() as u64;
        let invalid = |e: OpError| {
            // Not a URL v8box would fetch: shown with anything that looks like credentials hidden.
            let mut plan = Plan::invalid(ops::net::shown_text(&f.url), e);
            plan.bytes_in = n;
            plan
        };
        let (url, method) = match ops::net::parse(&f.url, &f.method) {
            Ok(x) => x,
            Err(e) => return invalid(e),
        };
        let target = match NetTarget::from_url(&url) {
            Ok(t) => t,
            Err(m) => return invalid(OpError::new(ErrorCode::InvalidArgument, m)),
        };
        let parts = Parts::Net {
            scheme: url.scheme().to_string(),
            host: target.host.clone(),
            port: target.port,
        };
        let targets = match ops::net::check_headers(&f.headers) {
            Ok(()) => Ok(smallvec::smallvec![Target::Net(target)]),
            Err(e) => Err(e),
        };
        let shown = ops::net::shown(&url);
        let request = ops::net::Request {
            url,
            method,
            headers: f.headers,
            body: f.body,
        };
        // Room for the reply's envelope (status, headers); a smaller limit allows no body.
        let max = (self.shared.max_message_bytes as u64).saturating_sub(4096);
        let allow_address = address_check(self.shared.clone());
        let job = move |s: &Shared, _| {
            // Each redirect hop is decided and audited like a call of its own.
            let allow_hop = |next: &url::Url| -> Result<(), OpError> {
                let hop_start = s.clock();
                let shown = ops::net::shown(next);
                let target =
                    NetTarget::from_url(next).map_err(|m| OpError::new(ErrorCode::Network, m))?;
                // A hop is a request of its own: none goes out once the log has failed.
                if let Some(why) = s.audit.failure() {
                    return Err(OpError::new(
                        ErrorCode::Io,
                        format!("redirect to {shown}: not followed: {why}"),
                    ));
                }
                let d = s.policy.check_net(&target);
                let allowed = d.allowed;
                let info =
                    with_net_parts(info(NET_FETCH.name, shown, d, 0), next.scheme(), &target);
                if allowed {
                    s.record_on_pool(info, "redirect", hop_start);
                    Ok(())
                } else {
                    let e = net_denied(&s.policy, &target);
                    let e = OpError::new(
                        e.code,
                        format!("redirect to {}: {}", info.resource, e.message),
                    );
                    s.record_on_pool(info, e.code.name(), hop_start);
                    Err(e)
                }
            };
            ops::net::fetch(request, max, &allow_hop, allow_address)
        };
        let mut plan = Plan::new(shown, targets, Run::Pool(None, Box::new(job)));
        plan.parts = parts;
        plan.bytes_in = n;
        plan.charge_in = true;
        plan
    }
}

/// `info` (a `net.fetch` record) with the fields that identify its target, which no cut of its
/// URL can remove: `scheme`, `host` and `port`, as the policy decided them.
pub(super) fn with_net_parts(info: CallInfo, scheme: &str, target: &NetTarget) -> CallInfo {
    CallInfo {
        parts: Parts::Net {
            scheme: scheme.to_string(),
            host: target.host.clone(),
            port: target.port,
        },
        ..info
    }
}

/// A fetch's denial: `net "127.0.0.1:8080" (allow with --allow-net=127.0.0.1:8080 or [net]
/// allow)`, saying first why the target needed a grant of its own when it did (and that a
/// grant of every host does not cover it, when there is one).
pub(super) fn net_denied(policy: &Policy, target: &NetTarget) -> OpError {
    let shown = target.to_string();
    let why = match (target.not_public(), policy.all_hosts_rule()) {
        (Some(why), Some(all)) => format!("{why}, which {all} does not cover; "),
        (Some(why), None) => format!("{why}; "),
        (None, _) => String::new(),
    };
    OpError::new(
        ErrorCode::PermissionDenied,
        format!(
            "net \"{shown}\" ({why}{})",
            Policy::hint(Permission::Net, &shown)
        ),
    )
}

/// The check of every address a fetch connects to (`ops::net::AddressCheck`): an address that
/// is not public, or is one of this host's, needs a grant naming it (`Policy::check_address`).
/// Such a decision is recorded as a `call` of `net.fetch` on the address (`127.0.0.1:8080`),
/// outcome `connect` or the error, unless the URL named the address itself and it was allowed
/// (then the URL's own record says it all). Public addresses are not recorded.
fn address_check(shared: Arc<Shared>) -> ops::net::AddressCheck {
    Arc::new(
        move |scheme: &str, host: &str, addr: std::net::SocketAddr, own: bool| {
            let started = shared.clock();
            let Some((d, why)) = shared.policy.check_address(addr, own) else {
                return Ok(());
            };
            let target = NetTarget::of_address(addr);
            let shown = target.to_string();
            let literal = host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok();
            let error = (!d.allowed).then(|| {
                let how = if literal {
                    format!("{} is {why}", addr.ip())
                } else {
                    format!("{host} resolves to {}, which is {why}", addr.ip())
                };
                OpError::new(
                    ErrorCode::PermissionDenied,
                    format!(
                        "net \"{shown}\" ({how}; {})",
                        Policy::hint(Permission::Net, &shown)
                    ),
                )
            });
            if literal && error.is_none() {
                return Ok(());
            }
            // A connection that must be on record is not made once the log has failed.
            if let Some(failure) = shared.audit.failure() {
                return Err(OpError::new(
                    ErrorCode::Io,
                    format!("net \"{shown}\": not connected: {failure}"),
                ));
            }
            let outcome = error.as_ref().map_or("connect", |e| e.code.name());
            let info = with_net_parts(info(NET_FETCH.name, shown, d, 0), scheme, &target);
            shared.record_on_pool(info, outcome, started);
            error.map_or(Ok(()), Err)
        },
    )
}
