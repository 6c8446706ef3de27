//! The three native functions a script sees: `$send`, `$recv` and `$print`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use v8::MapFnTo;

use super::inspect;
use super::snapshot_creator;
use super::state;

/// The natives in `snapshot_creator::NATIVES` order.
pub(crate) fn natives() -> [v8::FunctionCallback; 3] {
    [send.map_fn_to(), recv.map_fn_to(), print.map_fn_to()]
}

/// Installs `$send`, `$recv` and `$print` on the context's global object.
pub(crate) fn install(scope: &mut v8::PinScope, context: v8::Local<v8::Context>) {
    snapshot_creator::install(scope, context, natives());
}

/// `$noop()`: the cheapest possible native call, for benchmarks (see `WorkerOptions`).
pub(crate) fn install_noop(scope: &mut v8::PinScope, context: v8::Local<v8::Context>) {
    let global = context.global(scope);
    let f = v8::Function::new(
        scope,
        |_: &mut v8::PinScope, _: v8::FunctionCallbackArguments, _: v8::ReturnValue| {},
    )
    .unwrap();
    let key = v8::String::new(scope, "$noop").unwrap();
    global.set(scope, key.into(), f.into());
}

pub(crate) fn throw_type_error(scope: &mut v8::PinScope, message: &str) {
    let msg = v8::String::new(scope, message).unwrap();
    let exc = v8::Exception::type_error(scope, msg);
    scope.throw_exception(exc);
}

fn throw_error(scope: &mut v8::PinScope, message: &str) {
    let msg = v8::String::new(scope, message).unwrap();
    let exc = v8::Exception::error(scope, msg);
    scope.throw_exception(exc);
}

/// "a string", "an object (Array)", "undefined", ... for error messages.
pub(crate) fn describe(scope: &mut v8::PinScope, value: v8::Local<v8::Value>) -> String {
    if value.is_null() {
        return "null".into();
    }
    if value.is_undefined() {
        return "undefined".into();
    }
    let type_of = value.type_of(scope).to_rust_string_lossy(scope);
    if let Ok(obj) = v8::Local::<v8::Object>::try_from(value) {
        if !value.is_function() {
            let ctor = obj.get_constructor_name().to_rust_string_lossy(scope);
            return format!("an object ({ctor})");
        }
    }
    let article = if type_of.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {type_of}")
}

/// Where the bytes of an ArrayBuffer or of any view on one lie, without copying them and
/// without taking a reference on the backing store (the `Local` keeps the buffer alive).
fn bytes_of(value: v8::Local<v8::Value>) -> Option<(*const u8, usize)> {
    if let Ok(ab) = v8::Local::<v8::ArrayBuffer>::try_from(value) {
        let ptr = ab
            .data()
            .map_or(std::ptr::null(), |p| p.as_ptr() as *const u8);
        return Some((ptr, ab.byte_length()));
    }
    if let Ok(view) = v8::Local::<v8::ArrayBufferView>::try_from(value) {
        // A detached buffer reports length 0 (and may report no data).
        return Some((view.data() as *const u8, view.byte_length()));
    }
    None
}

/// The worker's state if the native function `name` was called from the current run's
/// context; otherwise throws (an earlier run's function, still alive in a kept isolate, must
/// not reach the host of the run now in it) and returns `None`.
fn current_run(scope: &mut v8::PinScope, name: &str) -> Option<state::SharedState> {
    let shared = state::get(scope);
    // Only a renewed worker has a context to compare with (a new isolate holds no other).
    let ours = match &shared.borrow().context {
        None => true,
        Some(run) => *run == scope.get_current_context(),
    };
    if ours {
        return Some(shared);
    }
    throw_error(
        scope,
        &format!("{name} belongs to a run that has ended; it reaches no host"),
    );
    None
}

pub(crate) fn send(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    mut rv: v8::ReturnValue,
) {
    let arg = args.get(0);
    let Some((ptr, len)) = bytes_of(arg) else {
        let what = describe(scope, arg);
        throw_type_error(
            scope,
            &format!("$send expects an ArrayBuffer, a TypedArray or a DataView, got {what}"),
        );
        return;
    };
    let Some(on_send) = current_run(scope, "$send").map(|st| st.borrow().on_send.clone()) else {
        return;
    };
    let Ok(mut on_send) = on_send.try_borrow_mut() else {
        throw_error(
            scope,
            "$send called while the host is still handling a $send",
        );
        return;
    };
    let bytes: &[u8] = if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: `ptr .. ptr + len` is the view's range inside its buffer's backing store
        // (V8 keeps a view's range inside its buffer). `arg` is a live `Local`, so the buffer
        // and its store stay alive, and no JavaScript runs (so nothing can detach, resize or
        // collect it) until `on_send` returns; the slice does not outlive this call.
        unsafe { std::slice::from_raw_parts(ptr, len) }
    };
    let reply = catch_unwind(AssertUnwindSafe(|| on_send(bytes)));
    drop(on_send);
    match reply {
        Ok(Some(reply)) => match write_reply_into(args.get(1), &reply) {
            Some(n) => rv.set_uint32(n),
            None => rv.set(super::reusing_allocator::array_buffer_of(scope, &reply).into()),
        },
        Ok(None) => rv.set_null(),
        Err(_) => throw_error(scope, "the host's $send handler failed (panicked)"),
    }
}

/// `$send(bytes, replyBuffer)`: a reply that fits in `replyBuffer` (an ArrayBuffer the caller
/// keeps and reuses) is written at its start and `$send` returns its length, so a small
/// synchronous reply costs no new ArrayBuffer (with the heap sandbox a new one, even 64
/// bytes, takes pages from V8's region allocator). `None`: no such buffer, or too short.
fn write_reply_into(arg: v8::Local<v8::Value>, reply: &[u8]) -> Option<u32> {
    let ab = v8::Local::<v8::ArrayBuffer>::try_from(arg).ok()?;
    let n = u32::try_from(reply.len()).ok()?;
    if ab.byte_length() < reply.len() {
        return None;
    }
    let data = ab.data()?;
    // SAFETY: the buffer is a live argument of this call and at least `reply.len()` long (a
    // detached one has length 0); no JavaScript runs until `$send` returns, so nothing can
    // detach, shrink or collect it meanwhile.
    unsafe { std::ptr::copy_nonoverlapping(reply.as_ptr(), data.as_ptr() as *mut u8, reply.len()) };
    Some(n)
}

pub(crate) fn recv(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue,
) {
    let arg = args.get(0);
    let Ok(f) = v8::Local::<v8::Function>::try_from(arg) else {
        let what = describe(scope, arg);
        throw_type_error(scope, &format!("$recv expects a function, got {what}"));
        return;
    };
    let Some(shared) = current_run(scope, "$recv") else {
        return;
    };
    let global = v8::Global::new(scope, f);
    shared.borrow_mut().recv = Some(global);
}

pub(crate) fn print(
    scope: &mut v8::PinScope,
    args: v8::FunctionCallbackArguments,
    _rv: v8::ReturnValue,
) {
    let Some(shared) = current_run(scope, "$print") else {
        return;
    };
    let mut line = String::new();
    for i in 0..args.length() {
        if i > 0 {
            line.push(' ');
        }
        line.push_str(&inspect::format(scope, args.get(i)));
    }
    let on_print = shared.borrow().on_print.clone();
    let Ok(mut on_print) = on_print.try_borrow_mut() else {
        return;
    };
    on_print(&line);
}
