//! Entry points shared by the fuzz targets in `fuzz/` and by the test that replays their
//! corpus (`tests/api/fuzz_corpus.rs`), so CI checks every saved input on the same code path.
//! Each function panics when it finds a bug, which is what a fuzzer reports.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use prost::Message;

use crate::audit::AuditLog;
use crate::dispatch::{Dispatcher, Event, Shared};
use crate::policy::Policy;
use crate::proto::{reply, ErrorCode, Reply};

fn dispatcher() -> Dispatcher {
    // Deny everything but one env name, with a small message limit: random calls reach the
    // decoder, validation, the policy and quotas, never the real file system or network.
    let mut policy = Policy::deny_all();
    policy.limits.max_message_bytes = Some(1 << 16);
    policy.limits.max_calls_in_flight = Some(8);
    policy
        .grant(crate::policy::Permission::Env, "V8BOX_FUZZ", Path::new("/"))
        .expect("a valid grant");
    let (events, _) = crossbeam_channel::unbounded::<Event>();
    Dispatcher::new(
        Arc::new(Shared::new(policy, AuditLog::disabled())),
        events,
        Arc::new(|_, _| {}),
        Vec::new(),
        HashMap::new(),
        None,
    )
}

/// Any bytes as a `$send` message: the dispatcher answers with a well-formed `Reply` (or no
/// reply for calls that complete later), and never with an internal error.
pub fn dispatch_bytes(data: &[u8]) {
    thread_local!(static D: Dispatcher = dispatcher());
    D.with(|d| {
        if let Some(answer) = d.on_send(data) {
            let reply = Reply::decode(&answer[..]).expect("the dispatcher's reply decodes");
            if let Some(reply::Result::Error(e)) = &reply.result {
                assert_ne!(
                    e.code,
                    ErrorCode::Internal as i32,
                    "internal error for input: {}",
                    e.message
                );
            }
        }
    });
}

/// Any text as a policy file: an error or a policy whose normalized form reads back the same.
pub fn policy_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(policy) = Policy::from_toml(text, "fuzz.toml", Path::new("/base")) {
        let normalized = policy.normalized();
        let again = Policy::from_toml(&normalized, "normalized.toml", Path::new("/base"))
            .unwrap_or_else(|e| panic!("the normalized policy does not parse: {e}\n{normalized}"));
        assert_eq!(again.normalized(), normalized, "normalizing is not stable");
    }
}

/// Any bytes handed to `$send` by a script in a worker with the `sys` prelude: the worker
/// survives and keeps working.
pub fn script_send(data: &[u8]) {
    thread_local!(static W: std::cell::RefCell<crate::Worker> = std::cell::RefCell::new({
        let d = std::rc::Rc::new(dispatcher());
        let mut w = crate::Worker::new(move |bytes| d.on_send(bytes));
        w.load(crate::runtime::PRELUDE_NAME, crate::runtime::PRELUDE).expect("the prelude loads");
        w.load("fuzz.js", "const send = $send; $recv((bytes) => { globalThis.last = send(bytes); });")
            .expect("the fuzz script loads");
        w
    }));
    W.with(|w| {
        let mut w = w.borrow_mut();
        w.send_bytes(data)
            .expect("$send of any bytes does not throw");
        w.load(
            "probe.js",
            "if (typeof sys.now() !== 'number') throw new Error('sys broke');",
        )
        .expect("the worker still works");
    });
}
