//! `JsError` and `TerminationReason` as the worker protocol carries them.

use crate::worker::{JsError, TerminationReason};

pub mod pb {
    #![allow(missing_docs)]
    include!(concat!(env!("OUT_DIR"), "/v8box.worker.rs"));
}

/// How many `send_later`s a worker may make before it asks for their answers (`flush`): what
/// the broker keeps for it meanwhile is at most this many quick replies.
pub const MAX_LATER: usize = 256;

/// A termination reason as one byte (0: none): in `Done.stopped`, `JsError.termination` and
/// on the control socket.
pub fn reason_code(r: Option<TerminationReason>) -> u8 {
    match r {
        None => 0,
        Some(TerminationReason::Terminated) => 1,
        Some(TerminationReason::Timeout) => 2,
        Some(TerminationReason::HeapLimit) => 3,
        Some(TerminationReason::Exit) => 4,
    }
}

/// The reason a byte stands for; `None` for 0 and for anything unknown.
pub fn reason_of(code: u32) -> Option<TerminationReason> {
    Some(match code {
        1 => TerminationReason::Terminated,
        2 => TerminationReason::Timeout,
        3 => TerminationReason::HeapLimit,
        4 => TerminationReason::Exit,
        _ => return None,
    })
}

pub fn to_wire(e: &JsError) -> pb::JsError {
    pb::JsError {
        message: e.message.clone(),
        script: e.script.clone(),
        line: e.line.map(|l| l as u64),
        column: e.column.map(|c| c as u64),
        source_line: e.source_line.clone(),
        stack: e.stack.clone(),
        termination: reason_code(e.termination) as u32,
    }
}

/// The error as the worker described it; nothing in it is trusted beyond being text that is
/// printed (escaped, where the CLI prints it) and a termination reason.
pub fn from_wire(e: pb::JsError) -> JsError {
    let mut err = JsError::plain_message(e.message);
    err.script = e.script;
    err.line = e.line.map(|l| l as usize);
    err.column = e.column.map(|c| c as usize);
    err.source_line = e.source_line;
    err.stack = e.stack;
    err.termination = reason_of(e.termination);
    err
}

/// A module's kind as `Source.kind` carries it.
pub fn kind_code(kind: crate::worker::ModuleKind) -> u32 {
    match kind {
        crate::worker::ModuleKind::Esm => 0,
        crate::worker::ModuleKind::Json => 1,
        crate::worker::ModuleKind::CommonJs => 2,
    }
}

/// The kind a `Source.kind` stands for; `None` for anything unknown.
pub fn kind_of(code: u32) -> Option<crate::worker::ModuleKind> {
    Some(match code {
        0 => crate::worker::ModuleKind::Esm,
        1 => crate::worker::ModuleKind::Json,
        2 => crate::worker::ModuleKind::CommonJs,
        _ => return None,
    })
}
