//! Turning a thrown JavaScript value into a `JsError`.

use super::error::JsError;

/// The exception a `TryCatch` caught (its message carries the location).
pub(crate) fn caught(tc: &mut v8::TryCatch<v8::HandleScope>) -> JsError {
    let Some(exception) = tc.exception() else {
        return JsError::plain("unknown error (no exception was caught)");
    };
    let message = tc.message();
    build(tc, exception, message)
}

/// A value that was thrown or rejected, e.g. from a promise.
pub(crate) fn from_value(scope: &mut v8::HandleScope, value: v8::Local<v8::Value>) -> JsError {
    build(scope, value, None)
}

fn build(
    scope: &mut v8::HandleScope,
    exception: v8::Local<v8::Value>,
    message: Option<v8::Local<v8::Message>>,
) -> JsError {
    let tc = &mut v8::TryCatch::new(scope);
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
    JsError {
        message: text,
        script,
        line,
        column,
        source_line,
        stack,
        termination: None,
    }
}

fn stack_of(scope: &mut v8::HandleScope, exception: v8::Local<v8::Value>) -> Option<String> {
    if !exception.is_native_error() {
        return None;
    }
    let obj = v8::Local::<v8::Object>::try_from(exception).ok()?;
    let key = v8::String::new(scope, "stack")?;
    let stack = obj.get(scope, key.into())?;
    stack.is_string().then(|| stack.to_rust_string_lossy(scope))
}
