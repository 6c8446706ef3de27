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

/// A thrown value that is not an Error, as `console.log` shows it: `{ code: 42 }`,
/// `[1, 2]`, `'text'` as it is. Only own enumerable data properties are read (an accessor
/// shows as `[Getter]`, a Proxy as `[Proxy]`): describing a value runs none of the script's code.
pub(crate) fn thrown(scope: &mut v8::PinScope, value: v8::Local<v8::Value>) -> String {
    if value.is_string() {
        return value.to_rust_string_lossy(scope);
    }
    shown(scope, value, 0)
}

fn shown(scope: &mut v8::PinScope, value: v8::Local<v8::Value>, depth: u32) -> String {
    if value.is_proxy() {
        return "[Proxy]".into();
    }
    if value.is_string() {
        return format!("'{}'", value.to_rust_string_lossy(scope));
    }
    if value.is_function() {
        return "[Function]".into();
    }
    if value.is_native_error()
        || value.is_array_buffer_view()
        || value.is_array_buffer()
        || value.is_symbol()
        || !value.is_object()
    {
        return show(scope, value, depth, false);
    }
    let obj = v8::Local::<v8::Object>::try_from(value).unwrap();
    let is_array = value.is_array();
    if depth >= MAX_DEPTH {
        return if is_array { "[Array]" } else { "[Object]" }.into();
    }
    let args = v8::GetPropertyNamesArgsBuilder::new()
        .mode(v8::KeyCollectionMode::OwnOnly)
        .property_filter(v8::PropertyFilter::ONLY_ENUMERABLE | v8::PropertyFilter::SKIP_SYMBOLS)
        .key_conversion(v8::KeyConversionMode::ConvertToString)
        .build();
    let Some(names) = obj.get_own_property_names(scope, args) else {
        return "[Object]".into();
    };
    let mut parts = Vec::new();
    let value_key = v8::String::new(scope, "value").unwrap();
    for i in 0..names.length().min(MAX_ITEMS) {
        let Some(name) = names.get_index(scope, i) else {
            continue;
        };
        let Ok(key) = v8::Local::<v8::Name>::try_from(name) else {
            continue;
        };
        let text = name.to_rust_string_lossy(scope);
        let shown_value = match obj
            .get_own_property_descriptor(scope, key)
            .and_then(|d| v8::Local::<v8::Object>::try_from(d).ok())
        {
            Some(desc) if desc.has_own_property(scope, value_key.into()) == Some(true) => {
                match desc.get(scope, value_key.into()) {
                    Some(v) => shown(scope, v, depth + 1),
                    None => "undefined".into(),
                }
            }
            Some(_) => "[Getter]".into(),
            None => continue,
        };
        if is_array {
            parts.push(shown_value);
        } else {
            parts.push(format!("{text}: {shown_value}"));
        }
    }
    if names.length() > MAX_ITEMS {
        parts.push(format!("... {} more items", names.length() - MAX_ITEMS));
    }
    if is_array {
        return format!("[{}]", parts.join(", "));
    }
    let ctor = obj.get_constructor_name().to_rust_string_lossy(scope);
    let prefix = if ctor.is_empty() || ctor == "Object" {
        String::new()
    } else {
        format!("{ctor} ")
    };
    if parts.is_empty() {
        format!("{prefix}{{}}")
    } else {
        format!("{prefix}{{ {} }}", parts.join(", "))
    }
}
