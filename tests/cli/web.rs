//! The web-standard globals (js/web.js) as a script sees them, on the specifications' edge
//! cases: each test prints what the globals give and compares it with what the Encoding, URL,
//! Fetch, DOM and HTML Standards say.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use crate::*;

fn run_ok(flags: &[&str], script: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let (code, out, err) = run_js(dir.path(), flags, script);
    assert_eq!(code, 0, "stdout:\n{out}\nstderr:\n{err}");
    out.lines().map(str::to_string).collect()
}

#[test]
fn text_decoder_replaces_invalid_utf8_by_maximal_subparts_and_streams() {
    let out = run_ok(
        &[],
        r#"
        const show = (s) => [...s].map((c) => c === '\uFFFD' ? '?' : c).join('');
        const d = new TextDecoder();
        // Encoding Standard: one U+FFFD per maximal subpart; a byte that cannot continue a
        // sequence starts the next one.
        console.log(show(d.decode(new Uint8Array([0xf0, 0x90, 0x80, 0x41, 0xe0, 0x80, 0xff, 0xc3]))));
        console.log(show(d.decode(new Uint8Array([0xed, 0xa0, 0x80, 0xf4, 0x90, 0x80, 0x80, 0xc0, 0xaf]))));
        console.log(d.decode(new TextEncoder().encode('héllo wörld ✓ 😀')));
        const euro = new TextEncoder().encode('€x');
        console.log([d.decode(euro.subarray(0, 1), { stream: true }),
                     d.decode(euro.subarray(1, 2), { stream: true }),
                     d.decode(euro.subarray(2))].join('|'));
        console.log(show(d.decode(euro.subarray(0, 2))));
        try { new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array([0x61, 0xc3])); }
        catch (e) { console.log(e.name); }
        const bom = new Uint8Array([0xef, 0xbb, 0xbf, 0x41]);
        console.log(d.decode(bom).length, new TextDecoder('utf-8', { ignoreBOM: true }).decode(bom).length);
        console.log(new TextDecoder(' UTF8 ').encoding, new TextDecoder().fatal);
        try { new TextDecoder('latin1'); } catch (e) { console.log(e.name); }
        // 300 KB of non-ASCII text: no stack overflow, nothing garbled.
        const big = 'é'.repeat(150000);
        console.log(d.decode(new TextEncoder().encode(big)) === big);
        console.log(d.decode(new DataView(new Uint8Array([104, 105]).buffer)), d.decode().length);
        const into = new TextEncoder().encodeInto('a€😀', new Uint8Array(5));
        console.log(into.read, into.written, new TextEncoder().encode('\uD800').join(','));
        "#,
    );
    assert_eq!(
        out,
        [
            "?A????",
            "?????????",
            "héllo wörld ✓ 😀",
            "||€x",
            "?",
            "TypeError",
            "1 2",
            "utf-8 false",
            "RangeError",
            "true",
            "hi 0",
            "2 4 239,191,189",
        ]
    );
}

#[test]
fn atob_btoa_follow_forgiving_base64() {
    let out = run_ok(
        &[],
        r#"
        console.log(btoa(''), btoa('a'), btoa('ab'), btoa('abc'), btoa('\xff\xfe'));
        console.log(atob('YQ'), atob('YWI='), atob(' Y W J j \n'), atob('').length, atob('//8=').charCodeAt(0));
        for (const bad of ['a', 'ab=', 'YQ===', 'Y!==', 'YQ=a']) {
          try { atob(bad); console.log('accepted', bad); }
          catch (e) { console.log(e.name, e.code, e instanceof DOMException); }
        }
        try { btoa('€'); } catch (e) { console.log(e.name); }
        "#,
    );
    assert_eq!(
        out,
        [
            " YQ== YWI= YWJj //4=",
            "a ab abc 0 255",
            "InvalidCharacterError 5 true",
            "InvalidCharacterError 5 true",
            "InvalidCharacterError 5 true",
            "InvalidCharacterError 5 true",
            "InvalidCharacterError 5 true",
            "InvalidCharacterError",
        ]
    );
}

#[test]
fn url_parses_with_a_base_and_its_setters_and_search_params_stay_linked() {
    let out = run_ok(
        &[],
        r#"
        const u = new URL('../c?x=1&y=2#f', 'https://user:pw@a.example:8080/b/d/e');
        console.log(u.href);
        console.log(u.origin, u.protocol, u.username, u.password, u.host, u.hostname, u.port, u.pathname, u.search, u.hash);
        console.log(new URL('HTTP://EXAMPLE.com:80/./a/../b/%7e?q=a b#h h').href);
        console.log(new URL('http://ÉXAMPLE.com').hostname, new URL('http://[0:0::1]/').host);
        u.searchParams.append('z', 'a b&c');
        console.log(u.search);
        u.search = '?q=1';
        console.log(u.searchParams.get('q'), u.searchParams.get('x'));
        u.port = '443'; u.protocol = 'http'; u.hash = ''; u.pathname = '/p q';
        u.username = ''; u.password = ''; u.hostname = 'b.example';
        console.log(String(u), JSON.stringify({ u }));
        u.port = 'nope'; u.protocol = '%';
        console.log(u.href);
        u.searchParams.delete('q');
        console.log(u.href);
        try { u.href = 'not a url'; } catch (e) { console.log(e.name); }
        try { new URL('/relative'); } catch (e) { console.log(e.name, e.message); }
        console.log(URL.canParse('/x'), URL.canParse('/x', 'http://h'), URL.parse('nope'), URL.parse('x', 'http://h/a/').href);
        console.log(new URL('blob:https://h/id').origin, new URL('file:///tmp/a').origin);
        "#,
    );
    assert_eq!(
        out,
        [
            "https://user:pw@a.example:8080/b/c?x=1&y=2#f",
            "https://a.example:8080 https: user pw a.example:8080 a.example 8080 /b/c ?x=1&y=2 #f",
            "http://example.com/b/%7e?q=a%20b#h%20h",
            "xn--xample-9ua.com [::1]",
            "?x=1&y=2&z=a+b%26c",
            "1 null",
            r#"http://b.example/p%20q?q=1 {"u":"http://b.example/p%20q?q=1"}"#,
            "http://b.example/p%20q?q=1",
            "http://b.example/p%20q",
            "TypeError",
            "TypeError Invalid URL: '/relative'",
            "false true null http://h/a/x",
            "https://h null",
        ]
    );
}

#[test]
fn url_search_params_parse_and_serialize_as_form_urlencoded() {
    let out = run_ok(
        &[],
        r#"
        const p = new URLSearchParams('?a=1&a=2&b=%zz&c=%E2%82%AC+x&&=&d');
        console.log(JSON.stringify([...p]), p.size);
        console.log(p.getAll('a').join(), p.get('b'), p.get('c'), p.get('none'), p.has('d'), p.has('a', '3'));
        p.sort(); p.delete('a', '1'); p.set('c', '~ *');
        console.log(p.toString());
        console.log(new URLSearchParams({ x: 'y z', '€': '\uD800' }).toString());
        console.log(new URLSearchParams([['k', 'v'], ['k', 'w']]).toString(), new URLSearchParams(new URLSearchParams('q=1')).get('q'));
        try { new URLSearchParams([['only one']]); } catch (e) { console.log(e.name); }
        const seen = [];
        new URLSearchParams('b=2&a=1').forEach((v, k) => seen.push(k + v));
        console.log(seen.join(), [...new URLSearchParams('x=1&y=2').keys()].join());
        "#,
    );
    assert_eq!(
        out,
        [
            r#"[["a","1"],["a","2"],["b","%zz"],["c","€ x"],["",""],["d",""]]"#,
            "6",
        ]
        .join(" ")
        .lines()
        .map(str::to_string)
        .chain(
            [
                "1,2 %zz € x null true false",
                "=&a=2&b=%25zz&c=%7E+*&d=",
                "x=y+z&%E2%82%AC=%EF%BF%BD",
                "k=v&k=w 1",
                "TypeError",
                "b2,a1 x,y",
            ]
            .map(str::to_string)
        )
        .collect::<Vec<_>>()
    );
}

#[test]
fn structured_clone_copies_the_common_types_and_cycles_and_refuses_functions() {
    let out = run_ok(
        &[],
        r#"
        const src = { n: -0, big: 10n, s: 'x', d: new Date(0), r: /a+/gi, m: new Map([[1, { k: 1 }]]),
          set: new Set(['a']), ab: new Uint8Array([1, 2, 3]).buffer, u16: new Uint16Array([1, 2, 3]).subarray(1),
          dv: new DataView(new ArrayBuffer(4), 1, 2), e: new RangeError('bad', { cause: { why: 1 } }),
          arr: [1, , 3], boxed: new String('b') };
        src.self = src;
        const c = structuredClone(src);
        console.log(c !== src, c.self === c, Object.is(c.n, -0), c.big, c.d.getTime(), c.r.source, c.r.flags);
        console.log(c.m.get(1).k, c.m.get(1) !== src.m.get(1), c.set.has('a'), c.ab.byteLength, c.ab !== src.ab);
        console.log(c.u16 instanceof Uint16Array, c.u16.join(), c.u16.byteOffset, c.dv.byteOffset, c.dv.byteLength);
        console.log(c.e instanceof RangeError, c.e.message, c.e.cause.why, 1 in c.arr, c.arr.length, c.boxed instanceof String);
        for (const bad of [() => 1, Symbol('s'), { f() {} }, Promise.resolve()]) {
          try { structuredClone(bad); console.log('cloned'); }
          catch (e) { console.log(e.name, e.code, e instanceof DOMException); }
        }
        "#,
    );
    assert_eq!(
        out,
        [
            "true true true 10n 0 a+ gi",
            "1 true true 3 true",
            "true 2,3 2 1 2",
            "true bad 1 false 3 true",
            "DataCloneError 25 true",
            "DataCloneError 25 true",
            "DataCloneError 25 true",
            "DataCloneError 25 true",
        ]
    );
}

#[test]
fn crypto_performance_and_queue_microtask() {
    let out = run_ok(
        &[],
        r#"
        const uuid = crypto.randomUUID();
        console.log(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(uuid), uuid !== crypto.randomUUID());
        const a = new Uint32Array(16384);
        console.log(crypto.getRandomValues(a) === a, a.some((x) => x !== 0));
        for (const bad of [new Float32Array(1), new Float64Array(1), new Uint8Array(65537), new DataView(new ArrayBuffer(1)), [1]]) {
          try { crypto.getRandomValues(bad); console.log('filled'); } catch (e) { console.log(e.name); }
        }
        const t0 = performance.now();
        await new Promise((r) => setTimeout(r, 5));
        const t1 = performance.now();
        console.log(t0 >= 0, t1 > t0, Math.abs(performance.timeOrigin + t1 - Date.now()) < 1000);
        const order = [];
        queueMicrotask(() => order.push('micro'));
        order.push('sync');
        await null;
        console.log(order.join());
        try { queueMicrotask(1); } catch (e) { console.log(e.name); }
        "#,
    );
    assert_eq!(
        out,
        [
            "true true",
            "true true",
            "TypeMismatchError",
            "TypeMismatchError",
            "QuotaExceededError",
            "TypeError",
            "TypeError",
            "true true true",
            "sync,micro",
            "TypeError",
        ]
    );
}

#[test]
fn events_and_abort_signals() {
    let out = run_ok(
        &[],
        r#"
        const t = new EventTarget();
        const log = [];
        t.addEventListener('e', () => log.push('once'), { once: true });
        t.addEventListener('e', (ev) => { log.push(`bubble:${ev.eventPhase}:${ev.target === t}`); });
        t.addEventListener('e', (ev) => { log.push('capture'); ev.preventDefault(); }, { capture: true });
        const f = () => log.push('dup');
        t.addEventListener('e', f); t.addEventListener('e', f);
        t.addEventListener('e', { handleEvent(ev) { log.push(`obj:${this !== t}`); } });
        const ac = new AbortController();
        t.addEventListener('e', () => log.push('removed by signal'), { signal: ac.signal });
        ac.abort();
        console.log(t.dispatchEvent(new Event('e', { cancelable: true })), log.join());
        log.length = 0;
        const ev = new Event('e');
        console.log(t.dispatchEvent(ev), ev.defaultPrevented, ev.eventPhase, ev.currentTarget, log.join());
        t.addEventListener('p', (ev) => ev.preventDefault(), { passive: true });
        t.addEventListener('s', (ev) => { ev.stopImmediatePropagation(); log.push('first'); });
        t.addEventListener('s', () => log.push('second'));
        log.length = 0;
        console.log(t.dispatchEvent(new Event('p', { cancelable: true })), t.dispatchEvent(new Event('s')), log.join());

        const c = new AbortController();
        c.signal.onabort = (e) => console.log('onabort', e.type, c.signal.aborted);
        c.abort();
        console.log(c.signal.reason instanceof DOMException, c.signal.reason.name, c.signal.reason.message);
        try { c.signal.throwIfAborted(); } catch (e) { console.log('thrown', e === c.signal.reason); }
        c.abort('again');
        console.log(c.signal.reason.name, AbortSignal.abort('why').reason);
        const a1 = new AbortController(), a2 = new AbortController();
        const any = AbortSignal.any([a1.signal, a2.signal]);
        any.addEventListener('abort', () => console.log('any', any.reason));
        a2.abort('second');
        a1.abort('first');
        console.log(AbortSignal.any([AbortSignal.abort('pre')]).reason);
        const timeout = AbortSignal.timeout(1);
        // (Its timer does not keep the run alive: a later timer does, and fires after it.)
        await new Promise((r) => { timeout.addEventListener('abort', r); setTimeout(() => {}, 5); });
        console.log(timeout.reason.name, timeout.reason.code);
        try { new AbortSignal(); } catch (e) { console.log(e.name); }
        // A long timeout does not keep the run alive.
        AbortSignal.timeout(600000);
        "#,
    );
    assert_eq!(
        out,
        [
            "false capture,once,bubble:2:true,dup,obj:true",
            "true false 0 null capture,bubble:2:true,dup,obj:true",
            "true true first",
            "onabort abort true",
            "true AbortError signal is aborted without reason",
            "thrown true",
            "AbortError why",
            "any second",
            "pre",
            "TimeoutError 23",
            "TypeError",
        ]
    );
}

#[test]
fn dom_exception_is_an_error_with_name_and_code() {
    let out = run_ok(
        &[],
        r#"
        const e = new DOMException('it broke', 'NotFoundError');
        console.log(e instanceof Error, e.name, e.message, e.code, String(e), Object.prototype.toString.call(e));
        console.log(new DOMException().name, new DOMException('x', 'Custom').code, DOMException.ABORT_ERR);
        console.log(e.stack.split('\n')[0]);
        "#,
    );
    assert_eq!(
        out,
        [
            "true NotFoundError it broke 8 NotFoundError: it broke [object DOMException]",
            "Error 0 20",
            "NotFoundError: it broke",
        ]
    );
}

#[test]
fn console_log_format_specifiers() {
    let out = run_ok(
        &[],
        r#"
        console.log('%s is %d years, %i, %f, %o and %O%c|%%|%x', 'Bob', '42', 42.9, '1.5', [1, 'a'], { b: 2 }, 'color: red');
        console.log('%s %s %d', 5n, { a: 1 }, 10n, 'rest', 7);
        console.log('%s and %s', 'only one');
        console.log('100%', 'literal');
        "#,
    );
    assert_eq!(
        out,
        [
            "Bob is 42 years, 42, 1.5, [1, 'a'] and { b: 2 }|%|%x",
            "5n { a: 1 } 10n rest 7",
            "only one and %s",
            "100% literal",
        ]
    );
}

#[test]
fn headers_request_and_response_without_the_network() {
    let out = run_ok(
        &[],
        r#"
        const h = new Headers({ 'Content-Type': 'text/plain', 'X-A': ' 1 ' });
        h.append('x-a', '2'); h.append('Set-Cookie', 'a=1'); h.append('set-cookie', 'b=2');
        console.log(h.get('X-A'), h.get('content-type'), h.has('X-a'), h.get('nope'), JSON.stringify([...h]));
        h.set('X-A', '3'); h.delete('content-type');
        const seen = []; h.forEach((v, k) => seen.push(`${k}=${v}`));
        console.log(seen.join(';'), h.getSetCookie().join('|'));
        for (const bad of [() => h.append('bad name', 'x'), () => h.set('x', 'a\nb')]) {
          try { bad(); } catch (e) { console.log(e.name); }
        }
        const r = new Response('{"a":1}', { status: 201, statusText: 'Made', headers: [['X-B', 'b']] });
        console.log(r.status, r.ok, r.statusText, r.headers.get('x-b'), r.headers.get('content-type'), r.bodyUsed);
        console.log(JSON.stringify(await r.json()), r.bodyUsed);
        try { await r.text(); } catch (e) { console.log(e.name); }
        console.log(new Response(null, { status: 404 }).ok, await new Response(new Uint8Array([104, 105])).text());
        console.log(await Response.json({ k: [1] }).text(), Response.json(1).headers.get('content-type'));
        console.log(new Uint8Array(await new Response('ab').arrayBuffer()).join(), (await new Response('ab').bytes()).join());
        for (const bad of [() => new Response('x', { status: 204 }), () => new Response('x', { status: 99 })]) {
          try { bad(); } catch (e) { console.log(e.name); }
        }
        const req = new Request('http://h.example/p', { method: 'post', body: new URLSearchParams('a=1 2') });
        console.log(req.method, req.url, req.headers.get('content-type'), await req.text());
        try { new Request('http://h/', { body: 'x' }); } catch (e) { console.log(e.name); }
        try { new Request('relative'); } catch (e) { console.log(e.name); }
        "#,
    );
    assert_eq!(
        out,
        [
            r#"1, 2 text/plain true null [["content-type","text/plain"],["set-cookie","a=1"],["set-cookie","b=2"],["x-a","1, 2"]]"#,
            "set-cookie=a=1;set-cookie=b=2;x-a=3 a=1|b=2",
            "TypeError",
            "TypeError",
            "201 true Made b text/plain;charset=UTF-8 false",
            r#"{"a":1} true"#,
            "TypeError",
            "false hi",
            r#"{"k":[1]} application/json"#,
            "97,98 97,98",
            "TypeError",
            "RangeError",
            "POST http://h.example/p application/x-www-form-urlencoded;charset=UTF-8 a=1+2",
            "TypeError",
            "TypeError",
        ]
    );
}

/// Serves `count` connections on loopback; each answers with what it received (method, path,
/// the headers whose names start with `x-` or are content-type, and the body).
fn echo_server(count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            let mut seen = Vec::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                let lower = h.trim_end().to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if lower.starts_with("x-") || lower.starts_with("content-type") {
                    seen.push(lower);
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or("");
            let path = parts.next().unwrap_or("");
            let (status, payload) = if path == "/missing" {
                ("404 Not Here", "gone".to_string())
            } else {
                (
                    "200 OK",
                    format!(
                        "{method} {path} [{}] {}",
                        seen.join("; "),
                        String::from_utf8_lossy(&body)
                    ),
                )
            };
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nX-Reply: yes\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                payload.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

#[test]
fn fetch_with_headers_request_and_response_over_sys_fetch() {
    let port = echo_server(4);
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let script = format!(
        r#"
        const base = 'http://127.0.0.1:{port}';
        const r = await fetch(`${{base}}/a?q=1`, {{ method: 'PUT', headers: {{ 'X-One': '1', 'Content-Length': '99' }}, body: 'héllo' }});
        console.log(r.status, r.ok, r.statusText, r.url, r.headers.get('X-Reply'), r.redirected, r.type);
        console.log(await r.text());
        try {{ r.headers.set('x', 'y'); }} catch (e) {{ console.log(e.name); }}
        const form = await fetch(new Request(`${{base}}/form`, {{ method: 'POST', body: new URLSearchParams({{ k: 'v w' }}) }}));
        console.log(await form.text());
        const bytes = await fetch(new URL('/bytes', base), {{ method: 'POST', body: new Uint8Array([104, 105]).buffer, headers: new Headers([['x-two', '2']]) }});
        console.log((await bytes.bytes()).length, (await fetch(`${{base}}/missing`)).status);
        const ac = new AbortController();
        ac.abort();
        try {{ await fetch(`${{base}}/never`, {{ signal: ac.signal }}); }} catch (e) {{ console.log(e.name); }}
        try {{ await fetch('http://127.0.0.1:9/denied'); }} catch (e) {{ console.log(e.name); }}
        "#
    );
    let log_flag = format!("--audit={}", log.display());
    let allow = format!("--allow-net=127.0.0.1:{port}");
    let (code, out, err) = run_js(dir.path(), &[&allow, &log_flag], &script);
    assert_eq!(code, 0, "{out}\n{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        [
            format!("200 true OK http://127.0.0.1:{port}/a?q=1 yes false basic").as_str(),
            "PUT /a?q=1 [content-type: text/plain;charset=utf-8; x-one: 1] héllo",
            "TypeError",
            "POST /form [content-type: application/x-www-form-urlencoded;charset=utf-8] k=v+w",
            "25 404",
            "AbortError",
            "PermissionDenied",
        ]
    );
    // The same operation as sys.fetch: policy-checked and audited, one record per request.
    let fetches: Vec<_> = records(&log)
        .into_iter()
        .filter(|r| r["op"] == "net.fetch" && r["kind"] != "intent")
        .collect();
    assert_eq!(fetches.len(), 5, "{fetches:?}");
    assert_eq!(fetches[4]["decision"], "deny", "{fetches:?}");
    // No record for the pure `url` operation.
    assert!(!records(&log).iter().any(|r| r["op"] == "url"));
}

#[test]
fn the_globals_keep_working_when_a_script_replaces_builtins() {
    let out = run_ok(
        &[],
        r#"
        Array.prototype.push = () => { throw new Error('push replaced'); };
        Map.prototype.get = () => { throw new Error('get replaced'); };
        String.prototype.toWellFormed = () => 'replaced';
        String.prototype.slice = () => 'replaced';
        Promise.prototype.then = () => { throw new Error('then replaced'); };
        JSON.stringify = () => 'replaced';
        Uint8Array.prototype.slice = () => { throw new Error('slice replaced'); };
        Object.defineProperty(Object.prototype, 'value', { set() { throw new Error('setter'); } });
        const u = new URL('/a?b=c d', 'https://h.example');
        u.searchParams.append('e', 'f');
        const h = new Headers({ A: '1' });
        $print(u.href, h.get('a'), new TextDecoder().decode(new TextEncoder().encode('é')), atob(btoa('x')),
          structuredClone(new Map([[1, 2]])).size);
        "#,
    );
    assert_eq!(out, ["https://h.example/a?b=c+d&e=f 1 é x 1"]);
}
