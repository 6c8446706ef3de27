//! How `$print` shows values: strings as they are, typed arrays and arrays readably
//! (`Uint8Array(3) [1, 2, 3]`), other values as JavaScript's `String()` would.

/// Elements shown before `... N more items`.
const MAX_ITEMS: u32 = 100;
const MAX_DEPTH: u32 = 2;

pub(crate) fn format(scope: &mut v8::PinScope, value: v8::Local<v8::Value>) -> String {
    show(scope, value, 0, true)
}

fn show(scope: &mut v8::PinScope, value: v8::Local<v8::Value>, depth: u32, top: bool) -> String {
    if value.is_string() {
        let s = value.to_rust_string_lossy(scope);
        return if top { s } else { format!("'{s}'") };
    }
    if let Ok(ta) = v8::Local::<v8::TypedArray>::try_from(value) {
        let name = ta.get_constructor_name().to_rust_string_lossy(scope);
        let len = ta.length();
        let obj: v8::Local<v8::Object> = ta.into();
        return format!("{name}({len}) {}", items(scope, obj, len as u32, depth));
    }
    if let Ok(ab) = v8::Local::<v8::ArrayBuffer>::try_from(value) {
        return format!("ArrayBuffer {{ byteLength: {} }}", ab.byte_length());
    }
    if let Ok(arr) = v8::Local::<v8::Array>::try_from(value) {
        let len = arr.length();
        return items(scope, arr.into(), len, depth);
    }
    if value.is_symbol() {
        let sym = v8::Local::<v8::Symbol>::try_from(value).unwrap();
        let desc = sym.description(scope);
        let desc = if desc.is_undefined() {
            String::new()
        } else {
            desc.to_rust_string_lossy(scope)
        };
        return format!("Symbol({desc})");
    }
    if value.is_native_error() {
        let obj = v8::Local::<v8::Object>::try_from(value).unwrap();
        let key = v8::String::new(scope, "stack").unwrap();
        if let Some(stack) = obj.get(scope, key.into()).filter(|s| s.is_string()) {
            return stack.to_rust_string_lossy(scope);
        }
    }
    v8::tc_scope!(let tc, scope);
    match value.to_string(tc) {
        Some(s) => s.to_rust_string_lossy(tc),
        None => "[object]".to_string(),
    }
}

fn items(scope: &mut v8::PinScope, obj: v8::Local<v8::Object>, len: u32, depth: u32) -> String {
    if len == 0 {
        return "[]".into();
    }
    if depth >= MAX_DEPTH {
        return "[Array]".into();
    }
    let mut parts = Vec::new();
    for i in 0..len.min(MAX_ITEMS) {
        let item = obj
            .get_index(scope, i)
            .unwrap_or_else(|| v8::undefined(scope).into());
        parts.push(show(scope, item, depth + 1, false));
    }
    if len > MAX_ITEMS {
        parts.push(format!("... {} more items", len - MAX_ITEMS));
    }
    format!("[{}]", parts.join(", "))
}
