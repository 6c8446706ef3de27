//! The `sys` library through `v8box run`: every operation allowed and denied, escapes,
//! quotas, bad messages, concurrency, fetch, a script that tampers with builtins, exit codes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

use crate::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn with_no_flags_every_operation_is_denied_but_print_console_clock_and_timers_work() {
    let dir = tmp();
    write(dir.path(), "secret.txt", "s");
    let (code, out, err) = run_js(
        dir.path(),
        &[],
        r#"
        const attempts = {
          readFile: () => sys.readFile('secret.txt'),
          readTextFile: () => sys.readTextFile('secret.txt'),
          writeFile: () => sys.writeFile('x.txt', 'x'),
          readDir: () => sys.readDir('.'),
          stat: () => sys.stat('secret.txt'),
          remove: () => sys.remove('secret.txt'),
          mkdir: () => sys.mkdir('d'),
          rename: () => sys.rename('secret.txt', 'moved.txt'),
          env: async () => sys.env.get('HOME'),
          fetch: () => sys.fetch('http://127.0.0.1:9/'),
          hostSend: () => sys.host.send('events', 'x'),
          onMessage: async () => sys.host.onMessage('events', () => {}),
        };
        for (const [name, attempt] of Object.entries(attempts)) {
          try { await attempt(); $print(name, 'ALLOWED'); }
          catch (e) { $print(name, e.name, e.code, e instanceof sys.errors.PermissionDenied); }
        }
        $print('now', typeof sys.now(), 'random', sys.randomBytes(3).length);
        await new Promise(r => setTimeout(r, 1));
        await sys.sleep(1);
        console.log('console works');
        "#,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 14, "{out}");
    for line in &lines[..12] {
        assert!(
            line.ends_with("PermissionDenied PERMISSION_DENIED true"),
            "{line}"
        );
    }
    assert_eq!(lines[12], "now number random 3");
    assert_eq!(lines[13], "console works");
    assert!(dir.path().join("secret.txt").exists());
    assert!(!dir.path().join("x.txt").exists());
}

#[test]
fn a_denial_names_operation_resource_and_the_flag_that_would_allow_it() {
    let dir = tmp();
    let (code, _, err) = run_js(dir.path(), &[], "await sys.readFile('/etc/passwd');");
    assert_eq!(code, 1);
    assert!(
        err.contains(r#"PermissionDenied: read "/etc/passwd" (allow with --allow-read=/etc/passwd or [fs] read)"#),
        "{err}"
    );
    assert!(err.contains("main.js:1"), "{err}");
}

#[test]
fn file_operations_work_when_allowed() {
    let dir = tmp();
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=.", "--allow-write=."],
        r#"
        await sys.mkdir('a/b/c', { recursive: true });
        try { await sys.mkdir('a'); } catch (e) { $print('mkdir again:', e.code); }
        await sys.writeFile('a/b/c/f.txt', 'one');
        await sys.writeFile('a/b/c/f.txt', ' two', { append: true });
        await sys.writeFile('bin', new Uint8Array([0, 1, 2, 255]));
        $print(await sys.readTextFile('a/b/c/f.txt'));
        $print(await sys.readFile('bin'));
        const st = await sys.stat('a/b/c/f.txt');
        $print(st.isFile, st.isDirectory, st.size, st.mtime instanceof Date);
        $print((await sys.readDir('a/b/c')).map(e => e.name + (e.isFile ? ':file' : ':dir')).join(' '));
        await sys.rename('a/b/c/f.txt', 'a/g.txt');
        $print((await sys.readDir('a')).map(e => e.name).join(' '));
        try { await sys.remove('a'); } catch (e) { $print('remove non-empty:', e.code); }
        await sys.remove('a', { recursive: true });
        try { await sys.stat('a'); } catch (e) { $print('gone:', e.name, e.code); }
        "#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "mkdir again: ALREADY_EXISTS\none two\nUint8Array(4) [0, 1, 2, 255]\ntrue false 7 true\nf.txt:file\nb g.txt\nremove non-empty: IO\ngone: NotFound NOT_FOUND\n"
    );
}

#[test]
fn read_and_write_grants_are_separate_and_scoped() {
    let dir = tmp();
    write(dir.path(), "in/data.txt", "data");
    std::fs::create_dir_all(dir.path().join("out")).unwrap();
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=in", "--allow-write=out"],
        r#"
        const tryIt = async (label, f) => { try { await f(); $print(label, 'ok'); } catch (e) { $print(label, e.code); } };
        await tryIt('read in', () => sys.readFile('in/data.txt'));
        await tryIt('write in', () => sys.writeFile('in/x', 'x'));
        await tryIt('write out', () => sys.writeFile('out/x', 'x'));
        await tryIt('read out', () => sys.readFile('out/x'));
        await tryIt('rename in->out', () => sys.rename('in/data.txt', 'out/data.txt'));
        await tryIt('read sibling', () => sys.readFile('main.js'));
        "#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "read in ok\nwrite in PERMISSION_DENIED\nwrite out ok\nread out PERMISSION_DENIED\nrename in->out PERMISSION_DENIED\nread sibling PERMISSION_DENIED\n"
    );
}

#[test]
fn escape_attempts_are_denied() {
    let dir = tmp();
    let outside = tmp();
    write(outside.path(), "secret.txt", "top secret");
    write(dir.path(), "box/ok.txt", "fine");
    std::os::unix::fs::symlink(
        outside.path().join("secret.txt"),
        dir.path().join("box/link"),
    )
    .unwrap();
    std::os::unix::fs::symlink(outside.path(), dir.path().join("box/dirlink")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("box/abs")).unwrap();
    let secret = outside.path().join("secret.txt").display().to_string();
    let script = format!(
        r#"
        const attempts = [
          'box/../main.js', 'box/../../{name}', 'box/./../main.js', '{secret}', 'box/link',
          'box/dirlink/secret.txt', 'box/abs', 'box//..//main.js', 'box/dirlink/.', '/proc/self/environ',
          'box/a\u0000b', 'box/' + 'x'.repeat(5000), '/BOX/ok.txt',
        ];
        for (const p of attempts) {{
          try {{ const d = await sys.readTextFile(p); $print('READ', JSON.stringify(p), d); }}
          catch (e) {{ $print(e.code); }}
        }}
        $print(await sys.readTextFile('box/ok.txt'));
        "#,
        name = outside.path().file_name().unwrap().to_string_lossy(),
        secret = secret
    );
    let (code, out, err) = run_js(dir.path(), &["--allow-read=box"], &script);
    assert_eq!(code, 0, "{err}");
    assert!(!out.contains("READ"), "{out}");
    assert!(!out.contains("top secret"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 14, "{out}");
    for (i, line) in lines[..13].iter().enumerate() {
        let expected: &[&str] = match i {
            10 => &["INVALID_ARGUMENT"],                    // NUL byte
            11 => &["INVALID_ARGUMENT", "IO", "NOT_FOUND"], // name too long
            _ => &["PERMISSION_DENIED"],
        };
        assert!(expected.contains(line), "attempt {i}: {line}\n{out}");
    }
    assert_eq!(lines[13], "fine");
}

#[test]
fn env_and_host_channels_follow_their_grants() {
    let dir = tmp();
    write(
        dir.path(),
        "main.js",
        r#"
        $print(sys.env.get('V8BOX_TEST_VAR'), sys.env.get('V8BOX_UNSET_VAR'));
        $print(JSON.stringify(sys.env.get('V8BOX_LATIN1_VAR')));
        for (const name of ['HOME', 'V8BOX_*', 'A=B', '']) {
          try { sys.env.get(name); $print('allowed', name); } catch (e) { $print(e.code); }
        }
        try { await sys.host.send('other', 'x'); } catch (e) { $print(e.code); }
        try { await sys.host.send('events', 'x'); } catch (e) { $print(e.code, e.message); }
    "#,
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_v8box"))
        .args([
            "run",
            "--allow-env=V8BOX_TEST_VAR,V8BOX_UNSET_VAR,V8BOX_LATIN1_VAR",
            "--allow-host=events",
            "main.js",
        ])
        .current_dir(dir.path())
        .env("V8BOX_TEST_VAR", "value-1")
        // Not UTF-8 (Latin-1 "café"): the invalid byte becomes U+FFFD, the rest is kept.
        .env(
            "V8BOX_LATIN1_VAR",
            <std::ffi::OsString as std::os::unix::ffi::OsStringExt>::from_vec(b"caf\xe9!".to_vec()),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "value-1 undefined\n\"caf\u{fffd}!\"\nPERMISSION_DENIED\nPERMISSION_DENIED\nINVALID_ARGUMENT\nINVALID_ARGUMENT\nPERMISSION_DENIED\nUNSUPPORTED host.send: no host application receives channel \"events\"\n"
    );
}

#[test]
fn quotas_limit_calls_and_bytes() {
    let dir = tmp();
    write(dir.path(), "f.txt", "0123456789");
    write(
        dir.path(),
        "policy.toml",
        "[fs]\nread = [\".\"]\nwrite = [\".\"]\n\n[quotas.\"fs.readFile\"]\ncalls = 2\n\n[quotas.\"fs.writeFile\"]\nbytes = 15\n",
    );
    let (code, out, err) = run_js(
        dir.path(),
        &["--policy=policy.toml"],
        r#"
        for (let i = 0; i < 3; i++) {
          try { await sys.readFile('f.txt'); $print('read', i); } catch (e) { $print(e.code, e.message); }
        }
        for (const data of ['0123456789', '01234', 'x']) {
          try { await sys.writeFile('o.txt', data); $print('wrote', data.length); } catch (e) { $print(e.code); }
        }
        "#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "read 0\nread 1\nQUOTA_EXCEEDED fs.readFile: quota of 2 calls used up ([quotas.\"fs.readFile\"] calls)\nwrote 10\nwrote 5\nQUOTA_EXCEEDED\n"
    );
}

#[test]
fn malformed_oversized_and_unknown_messages_get_error_replies_and_the_worker_lives() {
    let dir = tmp();
    let policy = small_message_policy(dir.path());
    let (code, out, err) = run_js(
        dir.path(),
        &[policy, "--audit=audit.log"],
        r#"
        const codec = (bytes) => {
          const r = new Uint8Array($send(new Uint8Array(bytes)));
          return r;
        };
        // The reply is a v8box.v1.Reply: field 2 (error) holds field 1 (code) and 2 (message).
        const errorOf = (reply) => {
          let i = 0; const len = reply.length;
          while (i < len) {
            const tag = reply[i++];
            if (tag === 0x08) { while (reply[i++] & 0x80); continue; }
            if (tag === 0x12) { i++; if (reply[i] === 0x08) return reply[i + 1]; }
            break;
          }
          return -1;
        };
        $print('malformed', errorOf(codec([0xff, 0xff, 0xff])));
        $print('oversized', errorOf(codec(new Array(2000).fill(1))));
        $print('unknown op', errorOf(codec([0x08, 0x05, 0xfa, 0x3e, 0x00])));
        $print('empty', errorOf(codec([])));
        $print('still alive', sys.now() > 0);
        "#,
    );
    assert_eq!(code, 0, "{err}");
    // Codes: INVALID_ARGUMENT = 4, TOO_LARGE = 6, UNSUPPORTED = 10.
    assert_eq!(
        out,
        "malformed 4\noversized 6\nunknown op 10\nempty 10\nstill alive true\n"
    );
    // Each refusal is on record, with what refused it.
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    let refused: Vec<(String, String, u64)> = log
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|r| r["kind"] == "refused")
        .map(|r| {
            assert_eq!(
                (&r["op"], &r["decision"]),
                (&"message".into(), &"deny".into())
            );
            (
                r["outcome"].as_str().unwrap().to_string(),
                r["rule"].as_str().unwrap().to_string(),
                r["bytes_in"].as_u64().unwrap(),
            )
        })
        .collect();
    let expected = [
        ("INVALID_ARGUMENT", "not a v8box.v1.Call", 3),
        ("TOO_LARGE", "[limits] max_message_bytes = 1024", 2000),
        ("UNSUPPORTED", "unknown operation", 5),
        ("UNSUPPORTED", "unknown operation", 0),
    ];
    let expected: Vec<(String, String, u64)> = expected
        .iter()
        .map(|(o, r, n)| (o.to_string(), r.to_string(), *n))
        .collect();
    assert_eq!(refused, expected);
}

#[test]
fn a_message_limit_smaller_than_a_replys_envelope_allows_no_bytes() {
    let dir = tmp();
    write(
        dir.path(),
        "policy.toml",
        "[limits]\nmax_message_bytes = 40\n",
    );
    write(dir.path(), "f", "0123456789");
    let (code, out, err) = run_js(
        dir.path(),
        &["--policy=policy.toml", "--allow-read"],
        "try { $print(await sys.readFile('f')); } catch (e) { $print(e.code, e.message); }",
    );
    assert_eq!(code, 0, "{err}");
    let abs = dir.path().join("f").canonicalize().unwrap();
    assert_eq!(
        out,
        format!(
            "TOO_LARGE readFile \"{}\": the file is larger than the 0 bytes a reply may carry (raise [limits] max_message_bytes)\n",
            abs.display()
        )
    );
}

#[test]
fn a_thousand_reads_in_flight_resolve_correctly() {
    let dir = tmp();
    for i in 0..10 {
        write(dir.path(), &format!("d/{i}.txt"), &format!("content {i}"));
    }
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=d"],
        r#"
        const reads = [];
        for (let i = 0; i < 1000; i++) reads.push(sys.readTextFile(`d/${i % 10}.txt`));
        const texts = await Promise.all(reads);
        let wrong = 0;
        texts.forEach((t, i) => { if (t !== `content ${i % 10}`) wrong++; });
        $print(texts.length, wrong);
        "#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1000 0\n");
}

#[test]
fn too_many_calls_in_flight_get_a_clear_error() {
    let dir = tmp();
    // Larger than a read done inside `$send`, so each read waits on the I/O pool.
    write(dir.path(), "f", &"x".repeat(100 * 1024));
    write(dir.path(), "small", "abc");
    write(
        dir.path(),
        "policy.toml",
        "[fs]\nread = [\".\"]\n[limits]\nmax_calls_in_flight = 5\n",
    );
    let (code, out, err) = run_js(
        dir.path(),
        &["--policy=policy.toml"],
        r#"
        const big = Array.from({ length: 8 }, () => sys.readFile('f'));
        // Five reads wait; a small file is read at once, so it needs no slot of its own.
        const small = await sys.readTextFile('small');
        const results = await Promise.allSettled(big);
        $print(results.filter(r => r.status === 'fulfilled').length,
               results.filter(r => r.status === 'rejected' && r.reason.code === 'QUOTA_EXCEEDED').length);
        $print(results.find(r => r.status === 'rejected').reason.message);
        $print(small);
        "#,
    );
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "5 3");
    assert!(lines[1].contains("max_calls_in_flight = 5"), "{out}");
    assert_eq!(lines[2], "abc");
}

/// A tiny HTTP/1.1 server on loopback for the fetch tests; serves `count` connections.
fn serve(count: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(count) {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            let mut custom = String::new();
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                if h == "\r\n" || h.is_empty() {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(v) = lower.strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap();
                }
                if let Some(v) = lower.strip_prefix("x-test:") {
                    custom = v.trim().to_string();
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let mut parts = request_line.split_whitespace();
            let method = parts.next().unwrap_or("").to_string();
            let path = parts.next().unwrap_or("").to_string();
            let (status, extra, payload) = match path.as_str() {
                "/hello" => (
                    "200 OK",
                    String::new(),
                    "hello from the test server".to_string(),
                ),
                "/echo" => (
                    "201 Created",
                    String::new(),
                    format!("{method} {} {custom}", String::from_utf8_lossy(&body)),
                ),
                "/to-hello" => (
                    "302 Found",
                    format!("Location: http://127.0.0.1:{port}/hello\r\n"),
                    String::new(),
                ),
                "/to-elsewhere" => (
                    "302 Found",
                    format!("Location: http://localhost:{port}/hello\r\n"),
                    String::new(),
                ),
                _ => ("404 Not Found", String::new(), "nope".to_string()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\n{extra}Content-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{payload}",
                payload.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

#[test]
fn fetch_against_a_loopback_server() {
    let dir = tmp();
    let port = serve(8);
    let script = format!(
        r#"
        const base = 'http://127.0.0.1:{port}';
        let r = await sys.fetch(base + '/hello');
        $print(r.status, r.ok, r.headers['content-type'], await r.text());
        r = await sys.fetch(base + '/echo', {{ method: 'POST', body: 'payload', headers: {{ 'X-Test': 'yes' }} }});
        $print(r.status, await r.text());
        r = await sys.fetch(base + '/missing');
        $print(r.status, r.ok);
        r = await sys.fetch(base + '/to-hello');
        $print('redirect', r.status, r.url.endsWith('/hello'));
        try {{ await sys.fetch(base + '/to-elsewhere'); $print('followed!'); }}
        catch (e) {{ $print(e.code, e.message.includes('localhost')); }}
        for (const url of ['http://localhost:{port}/hello', 'http://2130706433:{port}/hello', 'http://[::1]:{port}/', 'http://127.0.0.1:1/x']) {{
          try {{ await sys.fetch(url); $print('ALLOWED', url); }} catch (e) {{ $print(e.code); }}
        }}
        try {{ await sys.fetch('file:///etc/passwd'); }} catch (e) {{ $print(e.code); }}
        "#
    );
    let allow = format!("--allow-net=127.0.0.1:{port}");
    let (code, out, err) = run_js(dir.path(), &[&allow], &script);
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        format!(
            "200 true text/plain hello from the test server\n201 POST payload yes\n404 false\nredirect 200 true\nPERMISSION_DENIED true\nPERMISSION_DENIED\nALLOWED http://2130706433:{port}/hello\nPERMISSION_DENIED\nPERMISSION_DENIED\nINVALID_ARGUMENT\n"
        )
    );
}

#[test]
fn a_script_that_replaces_builtins_breaks_only_itself() {
    let dir = tmp();
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=.", "--allow-write=."],
        r#"
        const print = $print;
        Promise.prototype.then = function () { throw new Error('hijacked then'); };
        Array.prototype.push = function () { throw new Error('hijacked push'); };
        Object.defineProperty(Array.prototype, '0', { set() { throw new Error('hijacked index'); }, configurable: true });
        Object.defineProperty(Object.prototype, 'get', { get() { throw new Error('hijacked get'); }, configurable: true });
        // Keys the library's own objects assign (a call's answer, its pending entry, the codec's
        // reader and writer, a timer):
        for (const key of ['name', 'value', 'pos', 'buf', 'resolve', 'timer', 'callId']) {
          Object.defineProperty(Object.prototype, key, { __proto__: null,
            get() { return 'hijacked'; }, set() { throw new Error(`hijacked ${key}`); }, configurable: true,
          });
        }
        globalThis.Uint8Array = function () { throw new Error('hijacked Uint8Array'); };
        globalThis.JSON = { stringify() { throw new Error('hijacked JSON'); }, parse() { throw new Error('hijacked JSON'); } };
        globalThis.$send = () => { throw new Error('hijacked $send'); };
        globalThis.$recv = () => { throw new Error('hijacked $recv'); };
        await sys.writeFile('t.txt', 'still works');
        print(await sys.readTextFile('t.txt'));
        print((await sys.readDir('.')).length > 0, sys.now() > 0);
        await sys.sleep(1);
        await new Promise((resolve) => setTimeout(resolve, 1));
        console.log('console', [1, 2]);
        try { sys.env.get('HOME'); } catch (e) { print(e.code); }
        "#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "still works\ntrue true\nconsole [1, 2]\nPERMISSION_DENIED\n"
    );
}

#[test]
fn sys_is_frozen_and_the_globals_are_as_documented() {
    let dir = tmp();
    let (code, out, err) = run_js(
        dir.path(),
        &[],
        r#"
        $print(Object.isFrozen(sys), Object.isFrozen(sys.errors), Object.isFrozen(sys.env));
        try { sys.readFile = null; } catch (e) { $print(e.name); }
        const d = Object.getOwnPropertyDescriptor(globalThis, 'sys');
        $print(d.writable, d.configurable);
        $print(['console', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'].map(n => typeof globalThis[n]).join());
        "#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "true true true\nTypeError\nfalse false\nobject,function,function,function,function\n"
    );
}

#[test]
fn console_warn_and_error_go_to_stderr() {
    let dir = tmp();
    let (code, out, err) =
        run_js(dir.path(), &[], "console.log('out', 1); console.info('info'); console.warn('warn'); console.error('err', { a: [1] });");
    assert_eq!(code, 0);
    assert_eq!(out, "out 1\ninfo\n");
    assert_eq!(err, "warn\nerr { a: [1] }\n");
}

#[test]
fn timers_fire_in_order_and_can_be_cleared() {
    let dir = tmp();
    let (code, out, err) = run_js(
        dir.path(),
        &[],
        r#"
        const log = [];
        setTimeout(() => log.push('t20'), 20);
        setTimeout(() => log.push('t0'), 0);
        const never = setTimeout(() => log.push('NEVER'), 10);
        clearTimeout(never);
        let n = 0;
        const iv = setInterval(() => { log.push('i' + (++n)); if (n === 3) clearInterval(iv); }, 1);
        setTimeout((a, b) => log.push(a + b), 5, 'ar', 'gs');
        await sys.sleep(40);
        $print(log.join(' '));
        "#,
    );
    assert_eq!(code, 0, "{err}");
    let out = out.trim();
    assert!(out.starts_with("t0 "), "{out}");
    assert!(out.ends_with("t20"), "{out}");
    assert!(!out.contains("NEVER"), "{out}");
    for part in ["i1", "i2", "i3", "args"] {
        assert!(out.contains(part), "{out}");
    }
    assert!(!out.contains("i4"), "{out}");
}

#[test]
fn args_reach_the_script() {
    let dir = tmp();
    write(
        dir.path(),
        "main.js",
        "$print(JSON.stringify(sys.args), Object.isFrozen(sys.args));",
    );
    let out = v8box(dir.path(), &["run", "main.js", "a", "--b", "c d"]);
    assert_eq!(text(&out.stdout), "[\"a\",\"--b\",\"c d\"] true\n");
}

#[test]
fn exit_codes() {
    let dir = tmp();
    let cases: [(&str, &[&str], i32); 8] = [
        ("$print('fine')", &[], 0),
        ("throw new Error('x')", &[], 1),
        ("Promise.reject(new Error('unhandled'))", &[], 1),
        ("sys.exit(7); $print('not reached')", &[], 7),
        ("setTimeout(() => sys.exit(9), 1)", &[], 9),
        ("while (true) {}", &["--timeout=200"], 3),
        (
            "const a = []; while (true) a.push(new Array(1e5).fill(1));",
            &["--max-heap=64"],
            4,
        ),
        ("$print(1)", &["--policy=missing.toml"], 2),
    ];
    for (script, flags, expected) in cases {
        let (code, out, err) = run_js(dir.path(), flags, script);
        assert_eq!(code, expected, "{script}: stdout {out} stderr {err}");
        assert!(!out.contains("not reached"));
    }
}

#[test]
fn an_unhandled_rejection_prints_its_location_and_exits_1() {
    let dir = tmp();
    let (code, _, err) = run_js(
        dir.path(),
        &[],
        "async function f() {\n  throw new TypeError('late failure');\n}\nf();\n",
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("Uncaught (in promise) TypeError: late failure"),
        "{err}"
    );
    assert!(err.contains("main.js:2"), "{err}");
}

#[test]
fn a_bad_policy_file_exits_2_naming_the_line() {
    let dir = tmp();
    write(
        dir.path(),
        "p.toml",
        "[fs]\nread = [\".\"]\nwrit = [\".\"]\n",
    );
    let (code, _, err) = run_js(dir.path(), &["--policy=p.toml"], "$print(1)");
    assert_eq!(code, 2);
    assert!(err.contains("p.toml:3:1") && err.contains("writ"), "{err}");
}

#[test]
fn policy_paths_resolve_against_the_policy_file_folder() {
    let dir = tmp();
    write(
        dir.path(),
        "conf/policy.toml",
        "[fs]\nread = [\"../data\"]\n",
    );
    write(dir.path(), "data/x.txt", "from data");
    let (code, out, err) = run_js(
        dir.path(),
        &["--policy=conf/policy.toml"],
        "$print(await sys.readTextFile('data/x.txt'))",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "from data\n");
}

#[test]
fn copy_file_needs_read_on_from_and_write_on_to_and_records_both_paths() {
    let dir = tmp();
    write(dir.path(), "in/a.txt", "copied bytes");
    std::fs::create_dir(dir.path().join("out")).unwrap();
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=in", "--allow-write=out", "--audit=audit.log"],
        r#"
        await sys.copyFile('in/a.txt', 'out/b.txt');
        $print(await sys.readTextFile('in/a.txt') === 'copied bytes');
        for (const [from, to] of [['out/b.txt', 'out/c.txt'], ['in/a.txt', 'in/d.txt']]) {
          try { await sys.copyFile(from, to); } catch (e) { $print(e.code, e.message.split(' ')[0]); }
        }
        "#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        "true\nPERMISSION_DENIED read\nPERMISSION_DENIED write\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/b.txt")).unwrap(),
        "copied bytes"
    );
    assert!(!dir.path().join("out/c.txt").exists() && !dir.path().join("in/d.txt").exists());
    let records = records(&dir.path().join("audit.log"));
    let copies: Vec<_> = records
        .iter()
        .filter(|r| r["op"] == "fs.copyFile")
        .collect();
    let kinds: Vec<_> = copies.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["intent", "outcome", "call", "call"], "{copies:?}");
    let root = dir.path().canonicalize().unwrap();
    let first = copies[0];
    assert_eq!(
        first["from"],
        root.join("in/a.txt").display().to_string(),
        "{first}"
    );
    assert_eq!(
        first["to"],
        root.join("out/b.txt").display().to_string(),
        "{first}"
    );
    assert_eq!(copies[1]["outcome"], "ok", "{}", copies[1]);
    assert_eq!(copies[1]["bytes_out"], 12, "{}", copies[1]);
    assert_eq!(copies[2]["decision"], "deny", "{}", copies[2]);
}

#[test]
fn bytes_answered_at_once_are_the_callers_own_and_survive_later_calls() {
    // Quick answers are decoded from one reply buffer the library reuses: the bytes a call
    // returns must not change when the next call's answer is written there.
    let dir = tmp();
    write(dir.path(), "a.txt", "aaaa");
    write(dir.path(), "b.txt", "bbbbbbbb");
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-read=."],
        r#"
        const r1 = sys.randomBytes(32), copy1 = Array.from(r1);
        const r2 = sys.randomBytes(32);
        const a = await sys.readFile('a.txt');
        const b = await sys.readFile('b.txt');
        for (let i = 0; i < 100; i++) sys.randomBytes(32);
        $print(Array.from(r1).join() === copy1.join(), r1.join() !== r2.join(),
               new TextDecoder().decode(a), new TextDecoder().decode(b), a.length);
        "#,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim(), "true true aaaa bbbbbbbb 4", "{err}");
}
