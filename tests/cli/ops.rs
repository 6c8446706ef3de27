//! The op table (`v8box::ops::table`, generated from proto/v8box.proto) against everything
//! that must agree with it: the `sys` library, js/v8box.d.ts, the docs, and quotas.

use v8box::ops::table::{Lane, OPS};

use crate::*;

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

/// How the script makes one call of each quota-able operation (`host.message` is the host's:
/// tests/api/sandbox.rs).
fn call_of(op: &str) -> Option<&'static str> {
    Some(match op {
        "fs.readFile" => "await sys.readFile('f.txt')",
        "fs.writeFile" => "await sys.writeFile('o.txt', 'x')",
        "fs.readDir" => "await sys.readDir('.')",
        "fs.stat" => "await sys.stat('f.txt')",
        "fs.remove" => "await sys.remove('f.txt')",
        "fs.mkdir" => "await sys.mkdir('d')",
        "fs.rename" => "await sys.rename('f.txt', 'g.txt')",
        "fs.copyFile" => "await sys.copyFile('f.txt', 'c.txt')",
        "env.get" => "sys.env.get('HOME')",
        "now" => "sys.now()",
        "randomBytes" => "sys.randomBytes(4)",
        "sleep" => "await sys.sleep(0)",
        "net.fetch" => "await sys.fetch('http://127.0.0.1:9/')",
        "host.send" => "await sys.host.send('c', 'x')",
        "host.listen" => "sys.host.onMessage('c', () => {})",
        "exit" => "sys.exit(0)",
        "stdin.read" => "await sys.stdin.readChunk()",
        _ => return None,
    })
}

const GRANTS: &str = "[fs]\nread = [\".\"]\nwrite = [\".\"]\n\n[net]\nallow = [\"127.0.0.1:9\"]\n\n[env]\nallow = [\"HOME\"]\n\n[host]\nchannels = [\"c\"]\n\n[stdin]\nallow = true\n";

#[test]
fn every_op_in_the_table_is_on_sys_typed_documented_and_refused_by_a_quota_of_zero() {
    // Reached from a script where the table says.
    let dir = tmp();
    let checks: Vec<String> = OPS
        .iter()
        .map(|o| format!("$print({:?}, typeof {});", o.name, o.js))
        .collect();
    let (code, out, err) = run_js(dir.path(), &[], &checks.join("\n"));
    assert_eq!(code, 0, "{err}");
    for (o, line) in OPS.iter().zip(out.lines()) {
        assert!(
            line == format!("{} function", o.name) || line == format!("{} object", o.name),
            "{} is not reachable as {}: {line}",
            o.name,
            o.js
        );
    }
    // Typed, and documented.
    let dts = read("js/v8box.d.ts");
    let audit = read("docs/AUDIT.md");
    let policy = read("docs/POLICY.md");
    let quota_keys = policy
        .split("Quota keys are operation names:")
        .nth(1)
        .and_then(|rest| rest.split("\n\n").next())
        .expect("docs/POLICY.md lists the quota keys");
    for o in OPS {
        let last = o.js.rsplit('.').next().unwrap();
        let typed = [
            format!("function {last}("),
            format!("const {last}:"),
            format!("class {last} "),
            format!(" {last}("),
        ];
        assert!(
            typed.iter().any(|t| dts.contains(t)),
            "{} ({}) is not typed in js/v8box.d.ts",
            o.name,
            o.js
        );
        let named = format!("`{}`", o.name);
        assert!(
            audit.contains(&named),
            "docs/AUDIT.md does not name {named}"
        );
        if o.quota {
            assert!(
                quota_keys.contains(&named),
                "docs/POLICY.md's quota keys do not name {named}"
            );
        }
    }
    // A quota of 0 refuses the first call.
    for o in OPS.iter().filter(|o| o.quota) {
        let Some(call) = call_of(o.name) else {
            assert_eq!(
                o.lane,
                Lane::Delivered,
                "tests/cli/ops.rs: say how to call {}",
                o.name
            );
            continue;
        };
        let dir = tmp();
        write(dir.path(), "f.txt", "data");
        let policy = format!("{GRANTS}\n[quotas.\"{}\"]\ncalls = 0\n", o.name);
        write(dir.path(), "policy.toml", &policy);
        let script =
            format!("try {{ {call}; $print('made'); }} catch (e) {{ $print(e.code, e.message); }}");
        let (code, out, err) = run_js(dir.path(), &["--policy=policy.toml"], &script);
        assert_eq!(code, 0, "{}: {err}", o.name);
        assert_eq!(
            out,
            format!(
                "QUOTA_EXCEEDED {}: quota of 0 calls used up ([quotas.\"{}\"] calls)\n",
                o.name, o.name
            ),
            "{}",
            o.name
        );
    }
}

#[test]
fn a_quota_on_now_counts_every_call() {
    let dir = tmp();
    write(dir.path(), "policy.toml", "[quotas.\"now\"]\ncalls = 1\n");
    let (code, out, err) = run_js(
        dir.path(),
        &["--policy=policy.toml"],
        "for (let i = 0; i < 3; i++) { try { sys.now(); $print('now', i); } catch (e) { $print(e.code); } }",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "now 0\nQUOTA_EXCEEDED\nQUOTA_EXCEEDED\n");
}

#[test]
fn a_quota_of_zero_exits_refuses_exit() {
    let dir = tmp();
    write(dir.path(), "policy.toml", "[quotas.exit]\ncalls = 0\n");
    let (code, out, err) = run_js(
        dir.path(),
        &["--policy=policy.toml"],
        "try { sys.exit(7); } catch (e) { $print(e.code); }\n$print('still running');",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "QUOTA_EXCEEDED\nstill running\n");
}

#[test]
fn a_quota_on_an_operation_that_is_not_counted_is_refused_by_policy_check() {
    let dir = tmp();
    write(dir.path(), "policy.toml", "[quotas.log]\ncalls = 1\n");
    let out = v8box(dir.path(), &["policy", "check", "policy.toml"]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("operation \"log\" cannot have a quota (console.log is not counted: it is not recorded)"),
        "{err}"
    );
}

#[test]
fn an_invalid_variable_name_is_refused_before_the_policy_is_asked() {
    let dir = tmp();
    let (code, out, err) = run_js(
        dir.path(),
        &["--allow-env", "--audit=audit.log"],
        "try { sys.env.get('A=B'); } catch (e) { $print(e.code); }",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "INVALID_ARGUMENT\n");
    let records = records(&dir.path().join("audit.log"));
    let call = records
        .iter()
        .find(|r| r["op"] == "env.get")
        .expect("an env.get record");
    assert_eq!(call["decision"], "deny", "{call}");
    assert_eq!(call["rule"], "invalid argument", "{call}");
    assert_eq!(call["outcome"], "INVALID_ARGUMENT", "{call}");
}
