//! `JsError`: what a script's uncaught exception (or its termination) looks like to the host.

use std::fmt;

/// Why a worker stopped executing JavaScript before it finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TerminationReason {
    /// `TerminateHandle::terminate()` was called.
    Terminated,
    /// A wall-clock limit ran out (set by the runtime's watchdog).
    Timeout,
    /// The heap reached its limit; the script was stopped before V8 ran out of memory.
    HeapLimit,
    /// The script asked to end the run (`sys.exit(code)`).
    Exit,
}

impl fmt::Display for TerminationReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TerminationReason::Terminated => "terminated",
            TerminationReason::Timeout => "timeout",
            TerminationReason::HeapLimit => "heap limit",
            TerminationReason::Exit => "exit",
        })
    }
}

/// A JavaScript error that reached the host: an uncaught exception, a syntax error, a failed
/// module resolution, or the termination of the script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsError {
    /// The message, e.g. `Error: boom` or `SyntaxError: Unexpected token '}'`.
    pub message: String,
    /// The script (file or module name) the error points at, when known.
    pub script: Option<String>,
    /// 1-based line number, when known.
    pub line: Option<usize>,
    /// 1-based column number, when known.
    pub column: Option<usize>,
    /// The source line the error points at, when known.
    pub source_line: Option<String>,
    /// The JavaScript stack (`error.stack`), when the thrown value had one.
    pub stack: Option<String>,
    /// Set when the script did not fail by itself but was stopped.
    pub termination: Option<TerminationReason>,
}

impl JsError {
    /// An error with only a message (no location or stack).
    pub fn plain_message(message: impl Into<String>) -> JsError {
        JsError::plain(message)
    }

    pub(crate) fn plain(message: impl Into<String>) -> JsError {
        JsError {
            message: message.into(),
            script: None,
            line: None,
            column: None,
            source_line: None,
            stack: None,
            termination: None,
        }
    }

    pub(crate) fn terminated(reason: TerminationReason) -> JsError {
        let message = match reason {
            TerminationReason::Terminated => "execution terminated".to_string(),
            TerminationReason::Timeout => "execution terminated: timeout".to_string(),
            TerminationReason::HeapLimit => {
                "execution terminated: heap limit reached (the script allocated too much memory)"
                    .to_string()
            }
            TerminationReason::Exit => "execution terminated: exit".to_string(),
        };
        JsError {
            termination: Some(reason),
            ..JsError::plain(message)
        }
    }

    /// The same error, marked as a termination for `reason`.
    pub fn with_termination(mut self, reason: TerminationReason) -> JsError {
        self.termination = Some(reason);
        self
    }

    /// `file:line:column` of the error, as far as it is known.
    pub fn location(&self) -> Option<String> {
        let script = self.script.as_deref()?;
        Some(match (self.line, self.column) {
            (Some(l), Some(c)) => format!("{script}:{l}:{c}"),
            (Some(l), None) => format!("{script}:{l}"),
            _ => script.to_string(),
        })
    }

    /// True when the script was stopped (terminate, timeout, heap limit, exit).
    pub fn is_termination(&self) -> bool {
        self.termination.is_some()
    }
}

impl fmt::Display for JsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.location() {
            Some(loc) => write!(f, "{loc}: {}", self.message)?,
            None => write!(f, "{}", self.message)?,
        }
        // The line the error points at, with a caret under its column (as Deno shows it).
        if let (Some(src), Some(col)) = (&self.source_line, self.column) {
            // A tab keeps its width above the caret.
            let pad: String = src
                .chars()
                .take(col.saturating_sub(1))
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            write!(f, "\n    {src}\n    {pad}^")?;
        }
        // The stack's first line repeats the message; print its frames, and each error of its
        // `cause` chain (`Caused by: ...`, with that error's frames).
        for line in self.stack.as_deref().unwrap_or("").lines() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("at ") {
                write!(f, "\n    {trimmed}")?;
            } else if line.starts_with("Caused by: ") {
                write!(f, "\n{line}")?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for JsError {}
