//! ES modules: compile a module graph with the host's resolver, instantiate, evaluate.
//!
//! V8's resolve callback is a plain `extern "C"` function with no user data, so the graph is
//! walked and every import resolved (by calling the host's resolver) *before* instantiation;
//! the callback then only looks the answer up in the worker's module map. JSON and CommonJS
//! modules are synthetic modules (their value is made when they are evaluated). `import()` is
//! queued by V8's callback and loaded, with the same resolver, once the JavaScript that asked
//! returns (`run_dynamic`, after every entry into JavaScript).

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

/// What a module's source is: JavaScript of an ES module, JSON text (`with { type: "json" }`),
/// or a CommonJS file's body (compiled as a sloppy-mode function of `exports`, `require`,
/// `module`, `__filename`, `__dirname`, which the module exports as its default).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleKind {
    /// An ES module's source text.
    Esm,
    /// JSON text: the module's default export is the parsed value.
    Json,
    /// A CommonJS module's body: the module's default export is the wrapper function.
    CommonJs,
}

/// One import to resolve: `specifier` as written, imported from the module (or script) named
/// `referrer`; `json` with `with { type: "json" }`.
#[derive(Debug)]
pub struct ImportRequest<'a> {
    /// The specifier as written.
    pub specifier: &'a str,
    /// The importing module's name.
    pub referrer: &'a str,
    /// The import asked for a JSON module (`with { type: "json" }`).
    pub json: bool,
}

/// A resolved import: the module's name (its identity in the worker), source and kind.
#[derive(Debug, Clone)]
pub struct ImportedModule {
    /// The module's name: one module per name in a worker.
    pub name: String,
    /// Its source.
    pub source: String,
    /// How the source is compiled.
    pub kind: ModuleKind,
}

/// Resolves imports, for static imports and `import()` alike.
pub type Resolver = Box<dyn FnMut(&ImportRequest) -> Result<ImportedModule, String>>;

/// Why a graph could not be made: an exception the `TryCatch` holds (a syntax error), or a
/// resolution's message.
enum Failure {
    Caught,
    Failed(JsError),
}

/// The `type` of an import's attributes (`stride` entries per attribute: 3 from a module's
/// requests, 2 from `import()`); an error for any other attribute or type.
fn attribute_json(
    scope: &mut v8::PinScope,
    attrs: v8::Local<v8::FixedArray>,
    stride: usize,
) -> Result<bool, String> {
    let mut json = false;
    let mut i = 0;
    while i + 1 < attrs.length() {
        let key = attrs
            .get(scope, i)
            .and_then(|d| v8::Local::<v8::Value>::try_from(d).ok());
        let value = attrs
            .get(scope, i + 1)
            .and_then(|d| v8::Local::<v8::Value>::try_from(d).ok());
        let key = key
            .map(|k| k.to_rust_string_lossy(scope))
            .unwrap_or_default();
        let value = value
            .map(|v| v.to_rust_string_lossy(scope))
            .unwrap_or_default();
        if key != "type" {
            return Err(format!(
                "unsupported import attribute \"{key}\" (v8box knows only type: \"json\")"
            ));
        }
        if value != "json" {
            return Err(format!(
                "unsupported import attribute type \"{value}\" (v8box knows only type: \"json\")"
            ));
        }
        json = true;
        i += stride;
    }
    Ok(json)
}

/// Makes the module `found` describes (compiled, or a synthetic module for JSON and
/// CommonJS), registered under its name.
fn make(
    scope: &mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>,
    shared: &state::SharedState,
    found: &ImportedModule,
) -> Result<(v8::Global<v8::Module>, Option<v8::Global<v8::Module>>), Failure> {
    let module = match found.kind {
        ModuleKind::Esm => match compile(scope, &found.name, &found.source) {
            Ok(m) => m,
            Err(e) if scope.has_caught() => {
                let _ = e;
                return Err(Failure::Caught);
            }
            Err(e) => return Err(Failure::Failed(e)),
        },
        ModuleKind::Json | ModuleKind::CommonJs => {
            let name = v8::String::new(scope, &found.name).unwrap();
            let default = v8::String::new(scope, "default").unwrap();
            let m = v8::Module::create_synthetic_module(scope, name, &[default], synthetic_steps);
            let hash = m.get_identity_hash().get();
            let global = v8::Global::new(scope, m);
            shared
                .borrow_mut()
                .modules
                .synthetic
                .entry(hash)
                .or_default()
                .push(state::Synthetic {
                    module: global,
                    kind: found.kind,
                    name: found.name.clone(),
                    source: found.source.clone(),
                });
            m
        }
    };
    let global = register(scope, &mut shared.borrow_mut().modules, &found.name, module);
    let queued = module.is_source_text_module().then(|| global.clone());
    Ok((global, queued))
}

/// Resolves, compiles and registers every module `root` imports, directly or not.
fn walk(
    scope: &mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>,
    shared: &state::SharedState,
    root: v8::Global<v8::Module>,
    resolve: &mut dyn FnMut(&ImportRequest) -> Result<ImportedModule, String>,
) -> Result<(), Failure> {
    let mut queue = vec![root];
    while let Some(global) = queue.pop() {
        let module = v8::Local::new(scope, &global);
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
            let at = |why: String| {
                let loc = module.source_offset_to_location(request.get_source_offset());
                Failure::Failed(JsError {
                    script: Some(referrer.clone()),
                    line: Some(loc.get_line_number() as usize + 1),
                    column: Some(loc.get_column_number() as usize + 1),
                    ..JsError::plain(why)
                })
            };
            let attrs = request.get_import_attributes();
            let json = attribute_json(scope, attrs, 3).map_err(|why| {
                at(format!(
                    "import \"{specifier}\" imported from \"{referrer}\": {why}"
                ))
            })?;
            let found = resolve(&ImportRequest {
                specifier: &specifier,
                referrer: &referrer,
                json,
            })
            .map_err(at)?;
            let existing = shared.borrow().modules.by_name.get(&found.name).cloned();
            let dep = match existing {
                Some(global) => global,
                None => {
                    let (dep, queued) = make(scope, shared, &found)?;
                    queue.extend(queued);
                    dep
                }
            };
            shared
                .borrow_mut()
                .modules
                .resolved
                .insert((referrer_id, specifier, json), dep);
        }
    }
    Ok(())
}

pub(crate) fn load(
    scope: &mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>,
    name: &str,
    source: &str,
    resolve: &mut dyn FnMut(&ImportRequest) -> Result<ImportedModule, String>,
) -> Result<Evaluation, JsError> {
    let shared = state::get(scope);
    let main = compile(scope, name, source)?;
    let root = register(scope, &mut shared.borrow_mut().modules, name, main);
    match walk(scope, &shared, root, resolve) {
        Ok(()) => {}
        Err(Failure::Caught) => return Err(exception::caught(scope)),
        Err(Failure::Failed(e)) => return Err(e),
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

/// The evaluation of a synthetic module: a JSON module's value, a CommonJS module's wrapper.
fn synthetic_steps<'s>(
    context: v8::Local<'s, v8::Context>,
    module: v8::Local<v8::Module>,
) -> Option<v8::Local<'s, v8::Value>> {
    // SAFETY: V8 calls this synchronously while it evaluates the module, inside `context`.
    v8::callback_scope!(unsafe scope, context);
    let shared = state::get(scope);
    let found = {
        let st = shared.borrow();
        st.modules
            .synthetic
            .get(&module.get_identity_hash().get())
            .and_then(|all| {
                all.iter()
                    .find(|s| v8::Local::new(scope, &s.module) == module)
                    .map(|s| (s.kind, s.name.clone(), s.source.clone()))
            })
    };
    let (kind, name, source) = found?;
    let Some(text) = v8::String::new(scope, &source) else {
        let msg = v8::String::new(scope, &format!("{name}: source is too large for V8")).unwrap();
        let exc = v8::Exception::error(scope, msg);
        scope.throw_exception(exc);
        return None;
    };
    let value: v8::Local<v8::Value> = match kind {
        ModuleKind::Json => v8::json::parse(scope, text)?,
        _ => {
            let origin = origin(scope, &name, false);
            let mut src = v8::script_compiler::Source::new(text, Some(&origin));
            let params = ["exports", "require", "module", "__filename", "__dirname"]
                .map(|p| v8::String::new(scope, p).unwrap());
            let f = v8::script_compiler::compile_function(
                scope,
                &mut src,
                &params,
                &[],
                v8::script_compiler::CompileOptions::NoCompileOptions,
                v8::script_compiler::NoCacheReason::NoReason,
            )?;
            f.into()
        }
    };
    let default = v8::String::new(scope, "default").unwrap();
    module.set_synthetic_module_export(scope, default, value)?;
    Some(v8::undefined(scope).into())
}

/// `import()`: queued, and loaded once the JavaScript that asked returns (`run_dynamic`).
pub(crate) fn dynamic_import<'s>(
    scope: &mut v8::PinScope<'s, '_>,
    _options: v8::Local<'s, v8::Data>,
    resource: v8::Local<'s, v8::Value>,
    specifier: v8::Local<'s, v8::String>,
    attrs: v8::Local<'s, v8::FixedArray>,
) -> Option<v8::Local<'s, v8::Promise>> {
    let resolver = v8::PromiseResolver::new(scope)?;
    let promise = resolver.get_promise(scope);
    let specifier = specifier.to_rust_string_lossy(scope);
    let referrer = if resource.is_null_or_undefined() {
        String::new()
    } else {
        resource.to_rust_string_lossy(scope)
    };
    let json = attribute_json(scope, attrs, 2);
    let entry = state::DynamicImport {
        resolver: v8::Global::new(scope, resolver),
        specifier,
        referrer,
        json,
    };
    state::get(scope).borrow_mut().modules.dynamic.push(entry);
    Some(promise)
}

fn reject_with_message(
    scope: &mut v8::PinScope,
    resolver: v8::Local<v8::PromiseResolver>,
    message: &str,
) {
    let msg = v8::String::new(scope, message).unwrap();
    let exc = v8::Exception::type_error(scope, msg);
    resolver.reject(scope, exc);
}

/// Loads what `import()` asked for since the last call, and settles the promises of those
/// whose evaluation has finished; runs the microtasks that settling queued. Called after
/// every entry into JavaScript.
pub(crate) fn run_dynamic(scope: &mut v8::PinnedRef<v8::TryCatch<v8::HandleScope>>) {
    let shared = state::get(scope);
    loop {
        let queued = std::mem::take(&mut shared.borrow_mut().modules.dynamic);
        let pending_before = shared.borrow().modules.dynamic_pending.len();
        if queued.is_empty() && pending_before == 0 {
            return;
        }
        let mut changed = !queued.is_empty();
        for entry in queued {
            if scope.is_execution_terminating() {
                return;
            }
            let resolver = v8::Local::new(scope, &entry.resolver);
            let json = match entry.json {
                Ok(json) => json,
                Err(why) => {
                    let msg = format!(
                        "import(\"{}\") from \"{}\": {why}",
                        entry.specifier, entry.referrer
                    );
                    reject_with_message(scope, resolver, &msg);
                    continue;
                }
            };
            let resolve = shared.borrow().resolver.clone();
            let Some(resolve) = resolve else {
                reject_with_message(
                    scope,
                    resolver,
                    &format!(
                        "import(\"{}\"): this worker has no module resolver",
                        entry.specifier
                    ),
                );
                continue;
            };
            let request = ImportRequest {
                specifier: &entry.specifier,
                referrer: &entry.referrer,
                json,
            };
            let found = (resolve.borrow_mut())(&request);
            let found = match found {
                Ok(f) => f,
                Err(why) => {
                    reject_with_message(scope, resolver, &why);
                    continue;
                }
            };
            let existing = shared.borrow().modules.by_name.get(&found.name).cloned();
            let made = match existing {
                Some(global) => Ok(global),
                None => make(scope, &shared, &found).and_then(|(global, queued)| {
                    match queued {
                        Some(root) => {
                            let mut f = |r: &ImportRequest| (resolve.borrow_mut())(r);
                            walk(scope, &shared, root, &mut f)
                        }
                        None => Ok(()),
                    }
                    .map(|_| global)
                }),
            };
            let module = match made {
                Ok(m) => v8::Local::new(scope, m),
                Err(Failure::Failed(e)) => {
                    reject_with_message(scope, resolver, &e.message);
                    continue;
                }
                Err(Failure::Caught) => {
                    let exc = scope
                        .exception()
                        .unwrap_or_else(|| v8::undefined(scope).into());
                    scope.reset();
                    resolver.reject(scope, exc);
                    continue;
                }
            };
            if module.get_status() == v8::ModuleStatus::Uninstantiated
                && module.instantiate_module(scope, resolve_callback) != Some(true)
            {
                let exc = scope
                    .exception()
                    .unwrap_or_else(|| v8::undefined(scope).into());
                scope.reset();
                resolver.reject(scope, exc);
                continue;
            }
            let Some(result) = module.evaluate(scope) else {
                if scope.is_execution_terminating() {
                    return;
                }
                let exc = scope
                    .exception()
                    .unwrap_or_else(|| v8::undefined(scope).into());
                scope.reset();
                resolver.reject(scope, exc);
                continue;
            };
            let promise = match v8::Local::<v8::Promise>::try_from(result) {
                Ok(p) => p,
                Err(_) => {
                    let ns = module.get_module_namespace();
                    resolver.resolve(scope, ns);
                    continue;
                }
            };
            let entry = state::DynamicPending {
                promise: v8::Global::new(scope, promise),
                module: v8::Global::new(scope, module),
                resolver: v8::Global::new(scope, resolver),
            };
            shared.borrow_mut().modules.dynamic_pending.push(entry);
        }
        let pending = std::mem::take(&mut shared.borrow_mut().modules.dynamic_pending);
        for p in pending {
            let promise = v8::Local::new(scope, &p.promise);
            let resolver = v8::Local::new(scope, &p.resolver);
            match promise.state() {
                v8::PromiseState::Pending => shared.borrow_mut().modules.dynamic_pending.push(p),
                v8::PromiseState::Fulfilled => {
                    let module = v8::Local::new(scope, &p.module);
                    let ns = module.get_module_namespace();
                    resolver.resolve(scope, ns);
                    changed = true;
                }
                v8::PromiseState::Rejected => {
                    let value = promise.result(scope);
                    resolver.reject(scope, value);
                    changed = true;
                }
            }
        }
        if scope.is_execution_terminating() {
            return;
        }
        scope.perform_microtask_checkpoint();
        if !changed {
            return;
        }
    }
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
    import_attributes: v8::Local<'s, v8::FixedArray>,
    referrer: v8::Local<'s, v8::Module>,
) -> Option<v8::Local<'s, v8::Module>> {
    // SAFETY: V8 calls this synchronously during `instantiate_module`, inside that context.
    v8::callback_scope!(unsafe scope, context);
    let specifier = specifier.to_rust_string_lossy(scope);
    let json = attribute_json(scope, import_attributes, 3).unwrap_or(false);
    let shared = state::get(scope);
    let found = referrer.script_id().and_then(|id| {
        shared
            .borrow()
            .modules
            .resolved
            .get(&(id, specifier.clone(), json))
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
