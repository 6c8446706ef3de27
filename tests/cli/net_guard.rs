//! The network policy means what it says: no non-public destination (loopback, private,
//! link-local, documentation, this host's own addresses, ...) without a grant of that address
//! itself, judged on the address connected to; no request framing or routing set by a script;
//! no URL password in the audit log.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, TcpListener};
use std::sync::mpsc::{channel, Receiver};

use crate::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// An HTTP/1.1 server for these tests. Every request's head (request line and headers, as
/// received) is sent to `heads` *before* the answer is written, so once v8box has exited,
/// every request that reached the server is in `heads`.
struct Server {
    port: u16,
    heads: Receiver<String>,
}

impl Server {
    /// Serves on `ip` (a free port), or `None` if nothing can listen there. `/hello` answers
    /// 200 `reached`; `/r/N` redirects (302) to `redirects[N]`; anything else is a 404.
    fn start(ip: IpAddr, redirects: Vec<String>) -> Option<Server> {
        let listener = TcpListener::bind((ip, 0)).ok()?;
        let port = listener.local_addr().unwrap().port();
        let (tx, heads) = channel();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut head = String::new();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    head.push_str(&line);
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                let _ = tx.send(head);
                let (status, extra, payload) = if path == "/hello" {
                    ("200 OK", String::new(), "reached")
                } else if let Some(to) = path
                    .strip_prefix("/r/")
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|n| redirects.get(n))
                {
                    ("302 Found", format!("Location: {to}\r\n"), "")
                } else {
                    ("404 Not Found", String::new(), "nope")
                };
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                    payload.len()
                );
            }
        });
        Some(Server { port, heads })
    }

    fn loopback(redirects: Vec<String>) -> Server {
        Server::start([127, 0, 0, 1].into(), redirects).expect("a loopback server")
    }

    /// The heads of the requests that reached the server so far.
    fn received(&self) -> Vec<String> {
        self.heads.try_iter().collect()
    }
}

/// A name other than `localhost` that /etc/hosts points at 127.0.0.1 (`vm`, say), if any.
fn loopback_alias() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let name = hosts
        .lines()
        .filter(|l| l.split_whitespace().next() == Some("127.0.0.1"))
        .flat_map(|l| l.split_whitespace().skip(1))
        .take_while(|n| !n.starts_with('#'))
        .find(|n| *n != "localhost" && !n.contains("localhost"))
        .map(str::to_string);
    if name.is_none() {
        eprintln!("no loopback alias in /etc/hosts: the name cases are skipped");
    }
    name
}

/// A script that fetches each of `urls` in turn and prints `REACHED url status` or
/// `CODE url message`, one line each.
fn fetch_each(urls: &[String]) -> String {
    format!(
        "for (const url of {}) {{\n\
           try {{ const r = await sys.fetch(url); $print('REACHED', url, r.status); }}\n\
           catch (e) {{ $print(e.code, url, e.message); }}\n\
         }}",
        serde_json::to_string(urls).unwrap()
    )
}

/// The line of `out` about `url`.
fn line_for<'a>(out: &'a str, url: &str) -> &'a str {
    let pat = format!(" {url} ");
    out.lines()
        .find(|l| l.contains(&pat) || l.ends_with(&format!(" {url}")))
        .unwrap_or_else(|| panic!("no line for {url} in:\n{out}"))
}

#[test]
fn a_bare_allow_net_reaches_no_loopback_address_however_it_is_spelled() {
    let dir = tmp();
    let server = Server::loopback(Vec::new());
    let p = server.port;
    let mut urls: Vec<String> = [
        "127.0.0.1",
        "127.1",
        "0x7f000001",
        "2130706433",
        "0177.0.0.1",
        "127.0.0.2",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "localhost",
    ]
    .iter()
    .map(|h| format!("http://{h}:{p}/hello"))
    .collect();
    if let Some(alias) = loopback_alias() {
        urls.push(format!("http://{alias}:{p}/hello"));
    }
    let v6 = Server::start("::1".parse().unwrap(), Vec::new());
    if let Some(v6) = &v6 {
        urls.push(format!("http://[::1]:{}/hello", v6.port));
        urls.push(format!("http://[0:0:0:0:0:0:0:1]:{}/hello", v6.port));
    }
    let (code, out, err) = run_js(dir.path(), &["--allow-net"], &fetch_each(&urls));
    assert_eq!(code, 0, "{err}");
    for url in &urls {
        let line = line_for(&out, url);
        assert!(line.starts_with("PERMISSION_DENIED "), "{line}");
        assert!(line.contains("allow with --allow-net="), "{line}");
    }
    // Each literal is judged by the address it parses to, and the error names that address.
    for h in [
        "127.0.0.1",
        "127.1",
        "0x7f000001",
        "2130706433",
        "0177.0.0.1",
    ] {
        let line = line_for(&out, &format!("http://{h}:{p}/hello"));
        assert!(line.contains(&format!("net \"127.0.0.1:{p}\"")), "{line}");
        assert!(
            line.contains(&format!(
                "allow with --allow-net=127.0.0.1:{p} or [net] allow"
            )),
            "{line}"
        );
        assert!(line.contains("loopback"), "{line}");
    }
    assert_eq!(server.received(), Vec::<String>::new());
    if let Some(v6) = v6 {
        assert_eq!(v6.received(), Vec::<String>::new());
    }
}

#[test]
fn a_grant_of_the_address_itself_reaches_it_by_any_spelling_and_through_a_name() {
    let dir = tmp();
    let server = Server::loopback(Vec::new());
    let p = server.port;
    let alias = loopback_alias();
    let mut allow = format!("--allow-net=127.0.0.1:{p}");
    let mut reach: Vec<String> = ["127.0.0.1", "127.1", "0x7f000001", "0177.0.0.1"]
        .iter()
        .map(|h| format!("http://{h}:{p}/hello"))
        .collect();
    if let Some(alias) = &alias {
        allow.push_str(&format!(",{alias}:{p}"));
        reach.push(format!("http://{alias}:{p}/hello"));
    }
    // Not the address granted: another loopback address, the mapped IPv6 form, localhost.
    let refuse: Vec<String> = ["127.0.0.2", "[::ffff:127.0.0.1]", "localhost"]
        .iter()
        .map(|h| format!("http://{h}:{p}/hello"))
        .collect();
    let urls: Vec<String> = reach.iter().chain(&refuse).cloned().collect();
    let (code, out, err) = run_js(
        dir.path(),
        &["--audit=audit.log", &allow],
        &fetch_each(&urls),
    );
    assert_eq!(code, 0, "{err}");
    for url in &reach {
        assert_eq!(line_for(&out, url), format!("REACHED {url} 200"));
    }
    for url in &refuse {
        let line = line_for(&out, url);
        assert!(line.starts_with("PERMISSION_DENIED "), "{line}");
    }
    assert_eq!(server.received().len(), reach.len());
    if let Some(alias) = alias {
        // The name led to a non-public address: on record, with the grant that allowed it.
        let recs = records(&dir.path().join("audit.log"));
        let url = format!("http://{alias}:{p}/hello");
        let at = recs
            .iter()
            .position(|r| r["kind"] == "intent" && r["resource"] == url.as_str())
            .expect("the fetch's intent");
        let next = &recs[at + 1];
        assert_eq!(next["kind"], "call", "{next}");
        assert_eq!(next["op"], "net.fetch", "{next}");
        assert_eq!(
            next["resource"],
            format!("127.0.0.1:{p}").as_str(),
            "{next}"
        );
        assert_eq!(next["decision"], "allow", "{next}");
        assert_eq!(next["rule"], format!("--allow-net=127.0.0.1:{p}").as_str());
        assert_eq!(next["outcome"], "connect", "{next}");
    }
}

#[test]
fn a_granted_name_that_resolves_to_loopback_is_refused_and_the_refusal_is_on_record() {
    let Some(alias) = loopback_alias() else {
        return;
    };
    let dir = tmp();
    let server = Server::loopback(Vec::new());
    let p = server.port;
    let name_url = format!("http://{alias}:{p}/hello");
    let localhost_url = format!("http://localhost:{p}/hello");
    let (code, out, err) = run_js(
        dir.path(),
        &[
            "--audit=audit.log",
            &format!("--allow-net={alias}:{p},localhost:{p}"),
        ],
        &fetch_each(&[name_url.clone(), localhost_url.clone()]),
    );
    assert_eq!(code, 0, "{err}");
    // A grant of localhost reaches the loopback addresses through localhost only.
    assert_eq!(
        line_for(&out, &localhost_url),
        format!("REACHED {localhost_url} 200")
    );
    let line = line_for(&out, &name_url);
    assert!(line.starts_with("PERMISSION_DENIED "), "{line}");
    for part in [
        format!("net \"127.0.0.1:{p}\""),
        format!("{alias} resolves to 127.0.0.1"),
        "loopback".to_string(),
        format!("allow with --allow-net=127.0.0.1:{p} or [net] allow"),
    ] {
        assert!(line.contains(&part), "{part:?} missing from: {line}");
    }
    assert_eq!(server.received().len(), 1, "only localhost reached it");

    let log = dir.path().join("audit.log");
    let recs = records(&log);
    let at = recs
        .iter()
        .position(|r| r["kind"] == "intent" && r["resource"] == name_url.as_str())
        .expect("the fetch's intent");
    let (intent, refusal, outcome) = (&recs[at], &recs[at + 1], &recs[at + 2]);
    assert_eq!(intent["decision"], "allow");
    assert_eq!(refusal["kind"], "call", "{refusal}");
    assert_eq!(refusal["resource"], format!("127.0.0.1:{p}").as_str());
    assert_eq!(refusal["decision"], "deny", "{refusal}");
    assert_eq!(refusal["rule"], "default deny", "{refusal}");
    assert_eq!(refusal["outcome"], "PERMISSION_DENIED", "{refusal}");
    assert_eq!(outcome["kind"], "outcome", "{outcome}");
    assert_eq!(outcome["ref"], intent["seq"], "{outcome}");
    assert_eq!(outcome["outcome"], "PERMISSION_DENIED", "{outcome}");
    // The refusal is a decision a policy replay can weigh: granting the address changes it.
    write(
        dir.path(),
        "p.toml",
        &format!("[net]\nallow = [\"{alias}:{p}\", \"localhost:{p}\", \"127.0.0.1:{p}\"]\n"),
    );
    let out = v8box(
        dir.path(),
        &["policy", "test", "p.toml", "--audit", "audit.log"],
    );
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{shown}");
    assert!(
        shown.contains(&format!("\"127.0.0.1:{p}\": deny → allow")),
        "{shown}"
    );
    assert!(shown.contains("1 of "), "{shown}");
}

#[test]
fn this_hosts_own_addresses_are_refused_unless_granted_literally() {
    let own: Vec<IpAddr> = if_addrs::get_if_addrs()
        .unwrap()
        .into_iter()
        .map(|i| i.ip())
        .filter(|ip| !ip.is_loopback())
        .collect();
    let servers: Vec<(IpAddr, Server)> = own
        .into_iter()
        .filter_map(|ip| Some((ip, Server::start(ip, Vec::new())?)))
        .collect();
    if servers.is_empty() {
        eprintln!("no address of this host besides loopback can be listened on: skipped");
        return;
    }
    let dir = tmp();
    let url = |ip: &IpAddr, port: u16| match ip {
        IpAddr::V4(v4) => format!("http://{v4}:{port}/hello"),
        IpAddr::V6(v6) => format!("http://[{v6}]:{port}/hello"),
    };
    let urls: Vec<String> = servers.iter().map(|(ip, s)| url(ip, s.port)).collect();
    let (code, out, err) = run_js(dir.path(), &["--allow-net"], &fetch_each(&urls));
    assert_eq!(code, 0, "{err}");
    for u in &urls {
        let line = line_for(&out, u);
        assert!(line.starts_with("PERMISSION_DENIED "), "{line}");
    }
    for (_, s) in &servers {
        assert_eq!(s.received(), Vec::<String>::new());
    }
    // Granted literally, each is reached.
    let grants: Vec<String> = servers
        .iter()
        .map(|(ip, s)| match ip {
            IpAddr::V4(v4) => format!("{v4}:{}", s.port),
            IpAddr::V6(v6) => format!("[{v6}]:{}", s.port),
        })
        .collect();
    let allow = format!("--allow-net={}", grants.join(","));
    let (code, out, err) = run_js(dir.path(), &[&allow], &fetch_each(&urls));
    assert_eq!(code, 0, "{err}");
    for u in &urls {
        assert_eq!(line_for(&out, u), format!("REACHED {u} 200"));
    }
}

#[test]
fn every_redirect_hop_is_checked_on_the_address_it_connects_to() {
    let dir = tmp();
    let target = Server::loopback(Vec::new());
    let pb = target.port;
    let alias = loopback_alias();
    let mut redirects = vec![
        format!("http://127.0.0.1:{pb}/hello"),
        format!("http://[::ffff:127.0.0.1]:{pb}/hello"),
        format!("http://0x7f000001:{pb}/hello"),
    ];
    if let Some(alias) = &alias {
        redirects.push(format!("http://{alias}:{pb}/hello"));
    }
    let first = Server::loopback(redirects.clone());
    let pa = first.port;
    let hop = |n: usize| format!("http://127.0.0.1:{pa}/r/{n}");

    // Every host is allowed by the policy file, but that covers public hosts only: no hop to a
    // loopback address (in any spelling) is followed.
    write(dir.path(), "all.toml", "[net]\nallow = true\n");
    let urls: Vec<String> = (0..3).map(hop).collect();
    let (code, out, err) = run_js(
        dir.path(),
        &["--policy=all.toml", &format!("--allow-net=127.0.0.1:{pa}")],
        &fetch_each(&urls),
    );
    assert_eq!(code, 0, "{err}");
    for u in &urls {
        let line = line_for(&out, u);
        assert!(line.starts_with("PERMISSION_DENIED "), "{line}");
        assert!(line.contains("redirect to "), "{line}");
    }
    assert_eq!(target.received(), Vec::<String>::new());

    // A hop to a granted name is still checked on the address that name resolves to.
    if let Some(alias) = &alias {
        let u = hop(3);
        let (code, out, err) = run_js(
            dir.path(),
            &[
                "--audit=audit.log",
                &format!("--allow-net=127.0.0.1:{pa},{alias}:{pb}"),
            ],
            &fetch_each(&[u.clone()]),
        );
        assert_eq!(code, 0, "{err}");
        let line = line_for(&out, &u);
        assert!(line.starts_with("PERMISSION_DENIED "), "{line}");
        assert!(
            line.contains(&format!(
                "allow with --allow-net=127.0.0.1:{pb} or [net] allow"
            )),
            "{line}"
        );
        assert_eq!(target.received(), Vec::<String>::new());
        let recs = records(&dir.path().join("audit.log"));
        let hop_at = recs
            .iter()
            .position(|r| r["outcome"] == "redirect")
            .expect("the hop's record");
        let refusal = &recs[hop_at + 1];
        assert_eq!(refusal["resource"], format!("127.0.0.1:{pb}").as_str());
        assert_eq!(refusal["decision"], "deny", "{refusal}");
    }

    // Granted literally, the same hop (spelled in hex) is followed.
    let (code, out, err) = run_js(
        dir.path(),
        &[&format!("--allow-net=127.0.0.1:{pa},127.0.0.1:{pb}")],
        &fetch_each(&[hop(2)]),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(line_for(&out, &hop(2)), format!("REACHED {} 200", hop(2)));
    assert_eq!(target.received().len(), 1);
}

#[test]
fn a_script_cannot_set_framing_or_routing_headers() {
    let dir = tmp();
    let server = Server::loopback(Vec::new());
    let p = server.port;
    let forbidden = [
        "Host",
        "host",
        "HOST",
        "Connection",
        "Transfer-Encoding",
        "Content-Length",
        "Upgrade",
        "Proxy-Authorization",
        "proxy-connection",
        "Proxy-Anything",
        "Keep-Alive",
        "TE",
        "Trailer",
        "Expect",
    ];
    let script = format!(
        "const url = 'http://127.0.0.1:{p}/hello';\n\
         for (const name of {}) {{\n\
           for (const headers of [{{ [name]: 'x' }}, [[name, 'x']]]) {{\n\
             try {{ await sys.fetch(url, {{ method: 'POST', body: 'b', headers }}); $print('SENT', name); }}\n\
             catch (e) {{ $print(e.code, name, e.message); }}\n\
           }}\n\
         }}\n\
         for (const [name, value] of [['X-Bad\\r\\nHost', 'evil'], ['X-Ok', 'a\\r\\nHost: evil'], ['', 'v'], ['X:y', 'v']]) {{\n\
           try {{ await sys.fetch(url, {{ headers: [[name, value]] }}); $print('SENT', JSON.stringify(name)); }}\n\
           catch (e) {{ $print(e.code, JSON.stringify(name)); }}\n\
         }}\n\
         const r = await sys.fetch(url, {{ headers: {{ 'X-Ok': 'fine' }} }});\n\
         $print('ok', r.status);",
        serde_json::to_string(&forbidden).unwrap()
    );
    let (code, out, err) = run_js(
        dir.path(),
        &["--audit=audit.log", &format!("--allow-net=127.0.0.1:{p}")],
        &script,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), forbidden.len() * 2 + 5, "{out}");
    for (i, name) in forbidden.iter().enumerate() {
        for line in &lines[i * 2..i * 2 + 2] {
            assert!(
                line.starts_with(&format!("INVALID_ARGUMENT {name} fetch: ")),
                "{line}"
            );
            assert!(line.contains(&format!("\"{name}\"")), "{line}");
        }
    }
    for line in &lines[forbidden.len() * 2..forbidden.len() * 2 + 4] {
        assert!(line.starts_with("INVALID_ARGUMENT "), "{line}");
    }
    assert_eq!(lines.last(), Some(&"ok 200"));
    // Only the last request went out, with v8box's own Host.
    let heads = server.received();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let head = heads[0].to_ascii_lowercase();
    assert!(
        head.contains(&format!("\r\nhost: 127.0.0.1:{p}\r\n")),
        "{head}"
    );
    assert!(head.contains("\r\nx-ok: fine\r\n"), "{head}");
    assert!(!head.contains("evil"), "{head}");
    // The refusals are on record as invalid arguments, not as policy decisions.
    let recs = records(&dir.path().join("audit.log"));
    let refused = recs
        .iter()
        .filter(|r| r["op"] == "net.fetch" && r["rule"] == "invalid argument")
        .count();
    assert_eq!(refused, forbidden.len() * 2 + 4);
}

#[test]
fn passwords_in_urls_never_reach_the_audit_log() {
    let dir = tmp();
    let server = Server::loopback(Vec::new());
    let p = server.port;
    let redirector = Server::loopback(vec![
        format!("http://bob:hop-secret@127.0.0.1:{p}/hello"),
        "http://carol:denied-hop-secret@denied.example/".to_string(),
    ]);
    let pr = redirector.port;
    // A port nobody listens on (any more): the connection is refused.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let transport = format!("http://alice:transport-secret@127.0.0.1:{closed}/");
    let urls = [
        transport.clone(),
        format!("http://alice:first-secret@127.0.0.1:{p}/hello"),
        format!("http://alice:first-secret@127.0.0.1:{pr}/r/0"),
        format!("http://alice:first-secret@127.0.0.1:{pr}/r/1"),
        format!("http://alice:first-secret@127.0.0.1:{pr}/missing"),
        "http://alice:denied-secret@denied.example/".to_string(),
        "http://alice:invalid-secret@127.0.0.1:99999/".to_string(),
        "http:alice:schemeonly-secret@127.0.0.1:99999/".to_string(),
        format!("http://justauser@127.0.0.1:{p}/hello"),
    ];
    let (code, out, err) = run_js(
        dir.path(),
        &[
            "--audit=audit.log",
            &format!("--allow-net=127.0.0.1:{p},127.0.0.1:{pr},127.0.0.1:{closed}"),
        ],
        &fetch_each(&urls),
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        line_for(&out, &urls[1]),
        format!("REACHED {} 200", urls[1]),
        "{out}"
    );
    // The errors show the URL's credentials hidden too (past the URL the script printed).
    let line = line_for(&out, &transport);
    let message = &line[line.find(&transport).unwrap() + transport.len()..];
    assert!(line.starts_with("NETWORK "), "{line}");
    assert!(
        message.contains(&format!("fetch http://***@127.0.0.1:{closed}/: ")),
        "{line}"
    );
    assert!(!message.contains("secret"), "{line}");
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    for secret in ["secret", "alice", "bob", "carol", "justauser"] {
        assert!(
            !log.contains(secret),
            "{secret:?} is in the audit log:\n{log}"
        );
    }
    // What was redacted is visible as such, and the rest of the URL is kept.
    assert!(
        log.contains(&format!("\"http://***@127.0.0.1:{p}/hello\"")),
        "{log}"
    );
    assert!(log.contains("\"http://***@denied.example/\""), "{log}");
    assert!(log.contains("\"http://***@127.0.0.1:99999/\""), "{log}");
    assert!(log.contains("\"http:***@127.0.0.1:99999/\""), "{log}");
    // No error the script sees repeats a password it did not write itself.
    for secret in ["hop-secret", "denied-hop-secret"] {
        assert!(!out.contains(secret), "{secret:?} in: {out}");
    }
    let verify = v8box(dir.path(), &["audit", "verify", "audit.log"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify.stdout));
    // The credentials still went with the request (as Basic authorization).
    let heads = server.received();
    assert!(
        heads
            .iter()
            .any(|h| h.to_ascii_lowercase().contains("authorization: basic ")),
        "{heads:?}"
    );
}
