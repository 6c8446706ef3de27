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
    let mut text = text.strip_prefix("Uncaught ").unwrap_or(&text).to_string();
    if exception.is_object() && !exception.is_native_error() {
        // V8 says `#<Object>`: show it as console.log would.
        text = super::inspect::thrown(tc, exception);
    }
    let script = message
        .get_script_resource_name(tc)
        .filter(|v| !v.is_undefined() && !v.is_null())
        .map(|v| v.to_rust_string_lossy(tc));
    let line = message.get_line_number(tc).filter(|&l| l > 0);
    let column = line.map(|_| message.get_start_column() + 1);
    let source_line = message
        .get_source_line(tc)
        .map(|s| s.to_rust_string_lossy(tc));
    let stack = stack_of(tc, exception).map(|s| {
        let here = v8::Local::new(tc, exception);
        s + &causes(tc, here)
    });
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

/// How many `cause`s are shown below an error.
const MAX_CAUSES: usize = 8;

/// `\nCaused by: TypeError: inner\n    at ...` for each error in `error.cause`'s chain (own
/// data properties only: no getter of the script's runs), the library's frames left out.
fn causes<'s>(scope: &mut v8::PinScope<'s, '_>, error: v8::Local<'s, v8::Value>) -> String {
    let mut out = String::new();
    let mut seen: Vec<v8::Local<'s, v8::Value>> = vec![error];
    let mut current = error;
    for _ in 0..MAX_CAUSES {
        let Some(cause) = own_data(scope, current, "cause") else {
            break;
        };
        if seen.iter().any(|s| s.strict_equals(cause)) {
            out.push_str("\nCaused by: [Circular]");
            break;
        }
        seen.push(cause);
        match stack_of(scope, cause) {
            Some(stack) => {
                for (i, line) in stack.lines().enumerate() {
                    let frame = line.trim_start().starts_with("at ");
                    if frame && line.contains(INTERNAL_PREFIX) {
                        continue;
                    }
                    out.push('\n');
                    if i == 0 {
                        out.push_str("Caused by: ");
                    }
                    out.push_str(line);
                }
            }
            None => {
                out.push_str("\nCaused by: ");
                out.push_str(&super::inspect::thrown(scope, cause));
            }
        }
        current = cause;
    }
    out
}

/// `value[name]` when it is an own data property of an object that is not a Proxy.
fn own_data<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    value: v8::Local<'s, v8::Value>,
    name: &str,
) -> Option<v8::Local<'s, v8::Value>> {
    if value.is_proxy() || !value.is_object() {
        return None;
    }
    let obj = v8::Local::<v8::Object>::try_from(value).ok()?;
    let key = v8::String::new(scope, name)?;
    let desc = obj.get_own_property_descriptor(scope, key.into())?;
    let desc = v8::Local::<v8::Object>::try_from(desc).ok()?;
    let value_key = v8::String::new(scope, "value")?;
    if desc.has_own_property(scope, value_key.into()) != Some(true) {
        return None;
    }
    desc.get(scope, value_key.into())
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
