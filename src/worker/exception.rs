//! Turning a thrown JavaScript value into a `JsError`.

use super::error::JsError;

/// The exception a `TryCatch` caught (its message carries the location).
pub(crate) fn caught(tc: &mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>) -> JsError {
    let Some(exception) = tc.exception() else {
        return JsError::plain("unknown error (no exception was caught)");
    };
    let message = tc.message();
    build(tc, exception, message)
}

/// A value that was thrown or rejected, e.g. from a promise.
pub(crate) fn from_value(scope: &mut v8::PinScope, value: v8::Local<v8::Value>) -> JsError {
    build(scope, value, None)
}

fn build(
    scope: &mut v8::PinScope,
    exception: v8::Local<v8::Value>,
    message: Option<v8::Local<v8::Message>>,
) -> JsError {
    v8::tc_scope!(let tc, scope);
    let message = message.unwrap_or_else(|| v8::Exception::create_message(tc, exception));
    let text = message.get(tc).to_rust_string_lossy(tc);
    let text = text.strip_prefix("Uncaught ").unwrap_or(&text).to_string();
    let script = message
        .get_script_resource_name(tc)
        .filter(|v| !v.is_undefined() && !v.is_null())
        .map(|v| v.to_rust_string_lossy(tc));
    let line = message.get_line_number(tc).filter(|&l| l > 0);
    let column = line.map(|_| message.get_start_column() + 1);
    let source_line = message
        .get_source_line(tc)
        .map(|s| s.to_rust_string_lossy(tc));
    let stack = stack_of(tc, exception);
    let mut error = JsError {
        message: text,
        script,
        line,
        column,
        source_line,
        stack,
        termination: None,
    };
    point_at_user_code(&mut error);
    error
}

/// Scripts and modules whose names start with this are v8box's own (the `sys` prelude).
pub(crate) const INTERNAL_PREFIX: &str = "v8box:";

/// An error raised inside the `sys` library is about the user's call: point at the first
/// stack frame outside the library, and drop the library's frames from the stack.
fn point_at_user_code(error: &mut JsError) {
    let internal = error
        .script
        .as_deref()
        .is_some_and(|s| s.starts_with(INTERNAL_PREFIX));
    let Some(stack) = &error.stack else { return };
    let is_internal =
        |frame: &str| frame.contains(INTERNAL_PREFIX) || frame.contains("(<anonymous>)");
    if internal {
        let user_frame = stack
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("at ") && !is_internal(l))
            .find_map(parse_frame_location);
        if let Some((script, line, column)) = user_frame {
            error.script = Some(script);
            error.line = Some(line);
            error.column = Some(column);
            error.source_line = None;
        }
    }
    let kept: Vec<&str> = stack
        .lines()
        .filter(|l| !(l.trim_start().starts_with("at ") && is_internal(l)))
        .collect();
    error.stack = Some(kept.join("\n"));
}

/// `at f (file.js:3:7)` or `at file.js:3:7` → (file.js, 3, 7).
fn parse_frame_location(frame: &str) -> Option<(String, usize, usize)> {
    let loc = frame.strip_prefix("at ")?;
    let loc = match (loc.rfind('('), loc.ends_with(')')) {
        (Some(i), true) => &loc[i + 1..loc.len() - 1],
        _ => loc,
    };
    let mut parts = loc.rsplitn(3, ':');
    let column = parts.next()?.parse().ok()?;
    let line = parts.next()?.parse().ok()?;
    let script = parts.next()?.to_string();
    Some((script, line, column))
}

fn stack_of(scope: &mut v8::PinScope, exception: v8::Local<v8::Value>) -> Option<String> {
    if !exception.is_native_error() {
        return None;
    }
    let obj = v8::Local::<v8::Object>::try_from(exception).ok()?;
    let key = v8::String::new(scope, "stack")?;
    let stack = obj.get(scope, key.into())?;
    stack.is_string().then(|| stack.to_rust_string_lossy(scope))
}
