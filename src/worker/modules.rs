//! ES modules: compile a module graph with the host's resolver, instantiate, evaluate.
//!
//! V8's resolve callback is a plain `extern "C"` function with no user data, so the graph is
//! walked and every import resolved (by calling the host's resolver) *before* instantiation;
//! the callback then only looks the answer up in the worker's module map.

use super::error::JsError;
use super::exception;
use super::state::{self, ModuleMap};

pub(crate) fn origin<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    name: &str,
    is_module: bool,
) -> v8::ScriptOrigin<'s> {
    let name = v8::String::new(scope, name).unwrap();
    v8::ScriptOrigin::new(
        scope,
        name.into(),
        0,
        0,
        false,
        0,
        None,
        false,
        false,
        is_module,
        None,
    )
}

fn compile<'s>(
    scope: &mut v8::PinnedRef<'s, v8::TryCatch<v8::HandleScope>>,
    name: &str,
    source: &str,
) -> Result<v8::Local<'s, v8::Module>, JsError> {
    let Some(code) = v8::String::new(scope, source) else {
        return Err(JsError::plain(format!(
            "{name}: source is too large for V8"
        )));
    };
    let origin = origin(scope, name, true);
    let mut source = v8::script_compiler::Source::new(code, Some(&origin));
    match v8::script_compiler::compile_module(scope, &mut source) {
        Some(m) => Ok(m),
        None => Err(exception::caught(scope)),
    }
}

fn register(
    scope: &mut v8::PinScope,
    map: &mut ModuleMap,
    name: &str,
    module: v8::Local<v8::Module>,
) -> v8::Global<v8::Module> {
    let global = v8::Global::new(scope, module);
    if let Some(id) = module.script_id() {
        map.names.insert(id, name.to_string());
    }
    map.by_name.insert(name.to_string(), global.clone());
    global
}

/// What became of a main module's evaluation.
pub enum Evaluation {
    /// Finished (including its top-level await).
    Done,
    /// Top-level await is still waiting on something.
    Pending,
}

pub(crate) fn load(
    scope: &mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>,
    name: &str,
    source: &str,
    resolve: &mut dyn FnMut(&str, &str) -> Result<(String, String), String>,
) -> Result<Evaluation, JsError> {
    let shared = state::get(scope);
    let main = compile(scope, name, source)?;
    register(scope, &mut shared.borrow_mut().modules, name, main);

    let mut queue = vec![main];
    while let Some(module) = queue.pop() {
        let referrer_id = module.script_id().unwrap_or_default();
        let referrer = shared
            .borrow()
            .modules
            .names
            .get(&referrer_id)
            .cloned()
            .unwrap_or_default();
        let requests = module.get_module_requests();
        for i in 0..requests.length() {
            let request = requests.get(scope, i).unwrap();
            let request = v8::Local::<v8::ModuleRequest>::try_from(request).unwrap();
            let specifier = request.get_specifier().to_rust_string_lossy(scope);
            let (dep_name, dep_source) = match resolve(&specifier, &referrer) {
                Ok(found) => found,
                Err(why) => {
                    let loc = module.source_offset_to_location(request.get_source_offset());
                    return Err(JsError {
                        script: Some(referrer.clone()),
                        line: Some(loc.get_line_number() as usize + 1),
                        column: Some(loc.get_column_number() as usize + 1),
                        ..JsError::plain(why)
                    });
                }
            };
            let existing = shared.borrow().modules.by_name.get(&dep_name).cloned();
            let dep = match existing {
                Some(global) => global,
                None => {
                    let dep = compile(scope, &dep_name, &dep_source)?;
                    queue.push(dep);
                    register(scope, &mut shared.borrow_mut().modules, &dep_name, dep)
                }
            };
            shared
                .borrow_mut()
                .modules
                .resolved
                .insert((referrer_id, specifier), dep);
        }
    }

    if main.instantiate_module(scope, resolve_callback) != Some(true) {
        return Err(exception::caught(scope));
    }
    let Some(result) = main.evaluate(scope) else {
        return Err(exception::caught(scope));
    };
    let Ok(promise) = v8::Local::<v8::Promise>::try_from(result) else {
        return Ok(Evaluation::Done);
    };
    scope.perform_microtask_checkpoint();
    settle(scope, promise, &shared)
}

/// Reads a main module's evaluation promise; a rejection becomes the module's error.
fn settle(
    scope: &mut v8::PinScope,
    promise: v8::Local<v8::Promise>,
    shared: &state::SharedState,
) -> Result<Evaluation, JsError> {
    match promise.state() {
        v8::PromiseState::Fulfilled => Ok(Evaluation::Done),
        v8::PromiseState::Pending => {
            let global = v8::Global::new(scope, promise);
            shared.borrow_mut().modules.pending.push(global);
            Ok(Evaluation::Pending)
        }
        v8::PromiseState::Rejected => {
            forget_rejection(scope, shared, promise);
            let value = promise.result(scope);
            Err(exception::from_value(scope, value))
        }
    }
}

/// A rejection reported as a module's error is not also an unhandled rejection.
fn forget_rejection(
    scope: &mut v8::PinScope,
    shared: &state::SharedState,
    promise: v8::Local<v8::Promise>,
) {
    let mut st = shared.borrow_mut();
    st.unhandled.retain(|u| !u.is_rejection_of(scope, promise));
}

/// Checks the main modules still waiting on top-level await: `Ok(true)` while any is pending.
pub(crate) fn poll_pending(scope: &mut v8::PinScope) -> Result<bool, JsError> {
    let shared = state::get(scope);
    let pending = std::mem::take(&mut shared.borrow_mut().modules.pending);
    let mut any_pending = false;
    let mut error = None;
    for global in pending {
        let promise = v8::Local::new(scope, &global);
        match settle(scope, promise, &shared) {
            Ok(Evaluation::Pending) => any_pending = true,
            Ok(Evaluation::Done) => {}
            Err(e) => {
                error.get_or_insert(e);
            }
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(any_pending),
    }
}

fn resolve_callback<'s>(
    context: v8::Local<'s, v8::Context>,
    specifier: v8::Local<'s, v8::String>,
    _import_attributes: v8::Local<'s, v8::FixedArray>,
    referrer: v8::Local<'s, v8::Module>,
) -> Option<v8::Local<'s, v8::Module>> {
    // SAFETY: V8 calls this synchronously during `instantiate_module`, inside that context.
    v8::callback_scope!(unsafe scope, context);
    let specifier = specifier.to_rust_string_lossy(scope);
    let shared = state::get(scope);
    let found = referrer.script_id().and_then(|id| {
        shared
            .borrow()
            .modules
            .resolved
            .get(&(id, specifier.clone()))
            .cloned()
    });
    match found {
        Some(global) => Some(v8::Local::new(scope, global)),
        None => {
            let msg =
                v8::String::new(scope, &format!("Cannot resolve module \"{specifier}\"")).unwrap();
            let exc = v8::Exception::error(scope, msg);
            scope.throw_exception(exc);
            None
        }
    }
}
