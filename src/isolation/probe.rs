//! Debug builds only: the jail's own test. After the jail is entered, the worker attempts the
//! operations `V8BOX_JAIL_PROBE` lists (set in the broker's environment by a test; the worker
//! gets it in `Start`, never from a script or a policy) and reports each result, so a test can
//! show that code running inside the worker gets nothing: the stand-in for an exploit of V8.
//! `V8BOX_JAIL_PROBE` is `;`-separated: `open:PATH`, `write:PATH`, `connect:HOST:PORT`,
//! `exec:PATH`, `ptrace:parent`; and `misbehave:garbage|length|segv|balloon|flood|unflushed`,
//! which makes the worker, at the script's first `$send`, write a frame that is no message,
//! announce a frame longer than any, crash, take memory without end (outside V8, deaf to any
//! stop), send more calls without waiting than the protocol allows, or end its request before
//! the answers of such a call — a taken-over worker, for the broker's tests. Release builds compile
//! none of this.

#![cfg(debug_assertions)]

use std::ffi::CString;
use std::io::Write;

/// The broker's variable (debug builds) that asks for a probe.
pub const PROBE_ENV: &str = "V8BOX_JAIL_PROBE";

/// Runs each attempt in `spec`: one line per attempt, `allowed` or `denied (why)`.
pub fn run_requested(spec: &str) -> Vec<String> {
    spec.split(';')
        .filter(|s| !s.is_empty() && !s.starts_with("misbehave:"))
        .map(|attempt| {
            let result = match attempt.split_once(':') {
                Some(("open", path)) => std::fs::File::open(path)
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Some(("write", path)) => std::fs::OpenOptions::new()
                    .append(true)
                    .open(path)
                    .and_then(|mut f| f.write_all(b"probe\n"))
                    .map_err(|e| e.to_string()),
                Some(("connect", addr)) => std::net::TcpStream::connect(addr)
                    .map(drop)
                    .map_err(|e| e.to_string()),
                Some(("exec", path)) => exec(path),
                Some(("ptrace", "parent")) => ptrace_parent(),
                _ => Err("unknown probe".to_string()),
            };
            match result {
                Ok(()) => format!("{attempt}: allowed"),
                Err(why) => format!("{attempt}: denied ({why})"),
            }
        })
        .collect()
}

/// `execve(path)` in this process: on success the probe's process becomes `path`, and the
/// broker sees it end without `Ready` (the test reads that as allowed).
fn exec(path: &str) -> Result<(), String> {
    let path = CString::new(path).map_err(|e| e.to_string())?;
    let argv = [path.as_ptr(), std::ptr::null()];
    let envp = [std::ptr::null()];
    // SAFETY: `path` is a NUL-terminated string and both arrays end with a null pointer; they
    // outlive the call, which returns only on failure.
    unsafe { libc::execve(path.as_ptr(), argv.as_ptr(), envp.as_ptr()) };
    Err(std::io::Error::last_os_error().to_string())
}

fn ptrace_parent() -> Result<(), String> {
    // SAFETY: PTRACE_ATTACH takes a pid and no pointers; on success the parent is stopped,
    // which the probe undoes at once with PTRACE_DETACH.
    unsafe {
        let ppid = libc::getppid();
        if libc::ptrace(libc::PTRACE_ATTACH, ppid, 0, 0) == 0 {
            libc::ptrace(libc::PTRACE_DETACH, ppid, 0, 0);
            return Ok(());
        }
    }
    Err(std::io::Error::last_os_error().to_string())
}

/// How the worker should misbehave at the script's first `$send`, if the probe asks.
pub fn misbehaviour(spec: &str) -> Option<String> {
    spec.split(';')
        .find_map(|s| s.strip_prefix("misbehave:"))
        .map(str::to_string)
}

/// Misbehaves as `how` says, on the channel's raw writer.
pub fn misbehave(how: &str, out: &mut dyn Write) {
    match how {
        "garbage" => {
            let _ = out.write_all(&[5, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff]);
        }
        "length" => {
            let _ = out.write_all(&u32::MAX.to_le_bytes());
        }
        "flood" | "unflushed" => {
            use prost::Message;
            let frame = |msg: super::wire::pb::from_worker::Msg| {
                let body = super::wire::pb::FromWorker { msg: Some(msg) }.encode_to_vec();
                let mut frame = (body.len() as u32).to_le_bytes().to_vec();
                frame.extend(body);
                frame
            };
            let now = crate::proto::Call {
                id: 1,
                op: Some(crate::proto::call::Op::Now(crate::proto::Now {})),
            }
            .encode_to_vec();
            let sends = if how == "flood" {
                super::wire::MAX_LATER + 1
            } else {
                1
            };
            for _ in 0..sends {
                let _ = out.write_all(&frame(super::wire::pb::from_worker::Msg::SendLater(
                    now.clone(),
                )));
            }
            let done = super::wire::pb::Done {
                result: Some(super::wire::pb::done::Result::Value(true)),
                ..Default::default()
            };
            let _ = out.write_all(&frame(super::wire::pb::from_worker::Msg::Done(done)));
        }
        // Only the kernel's memory limit (or a kill) ends this.
        "balloon" => loop {
            std::hint::black_box(Box::leak(vec![1u8; 1 << 20].into_boxed_slice()));
        },
        // SAFETY: restores SIGSEGV's default action (Rust's handler would return from a
        // raised one) and raises it in this process, which ends it.
        _ => unsafe {
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
            libc::raise(libc::SIGSEGV);
        },
    }
}
