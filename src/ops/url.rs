//! WHATWG URL parsing and setters, by the `url` crate (which implements the URL Standard):
//! a pure operation, answered at once with no policy check and no audit record (it reads and
//! changes nothing outside the isolate; docs/AUDIT.md).

use url::{quirks, Url};

use crate::proto::{Url as UrlCall, UrlRecord};

/// `call.input` parsed (against `call.base` when `has_base`), then `call.setter` applied.
pub fn parse(call: &UrlCall) -> UrlRecord {
    let parsed = if call.has_base {
        Url::parse(&call.base).and_then(|base| base.join(&call.input))
    } else {
        Url::parse(&call.input)
    };
    let Ok(mut url) = parsed else {
        return UrlRecord::default();
    };
    let v = call.value.as_str();
    // A setter given a value it refuses leaves the URL as it was (the Standard's setters do
    // nothing then; only `href` throws, which the caller learns from `valid`).
    let ok = match call.setter.as_str() {
        "" => true,
        "href" => quirks::set_href(&mut url, v).is_ok(),
        "protocol" => kept(quirks::set_protocol(&mut url, v)),
        "username" => kept(quirks::set_username(&mut url, v)),
        "password" => kept(quirks::set_password(&mut url, v)),
        "host" => kept(quirks::set_host(&mut url, v)),
        "hostname" => kept(quirks::set_hostname(&mut url, v)),
        "port" => kept(quirks::set_port(&mut url, v)),
        "pathname" => {
            quirks::set_pathname(&mut url, v);
            true
        }
        "search" => {
            quirks::set_search(&mut url, v);
            true
        }
        "hash" => {
            quirks::set_hash(&mut url, v);
            true
        }
        _ => false,
    };
    if !ok {
        return UrlRecord::default();
    }
    record(&url)
}

/// A setter's refusal of its value is no error: the URL is kept as it was.
fn kept(_: Result<(), ()>) -> bool {
    true
}

fn record(url: &Url) -> UrlRecord {
    UrlRecord {
        valid: true,
        href: quirks::href(url).to_string(),
        origin: quirks::origin(url),
        protocol: quirks::protocol(url).to_string(),
        username: quirks::username(url).to_string(),
        password: quirks::password(url).to_string(),
        host: quirks::host(url).to_string(),
        hostname: quirks::hostname(url).to_string(),
        port: quirks::port(url).to_string(),
        pathname: quirks::pathname(url).to_string(),
        search: quirks::search(url).to_string(),
        hash: quirks::hash(url).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(input: &str, base: Option<&str>, setter: &str, value: &str) -> UrlCall {
        UrlCall {
            input: input.into(),
            base: base.unwrap_or("").into(),
            has_base: base.is_some(),
            setter: setter.into(),
            value: value.into(),
        }
    }

    #[test]
    fn parses_against_a_base_and_sets_components() {
        let r = parse(&call("../c?x=1#f", Some("https://a.example/b/d/e"), "", ""));
        assert_eq!(r.href, "https://a.example/b/c?x=1#f");
        let r = parse(&call("https://a.example/", None, "port", "8080"));
        assert_eq!(r.host, "a.example:8080");
        assert!(!parse(&call("nope", None, "", "")).valid);
        assert!(!parse(&call("/x", Some("nope"), "", "")).valid);
    }
}
