//! What a worker keeps inside its isolate (in an isolate slot), so that the native callbacks
//! V8 calls — which receive only a scope — can reach the host's closures and the module map.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// The host's handler for `$send`: bytes in, an optional synchronous reply out.
pub(crate) type SendFn = Box<dyn FnMut(&[u8]) -> Option<Vec<u8>>>;
/// Where `$print` output goes.
pub(crate) type PrintFn = Box<dyn FnMut(&str)>;

pub(crate) struct State {
    /// The context of the run now in a renewed worker (`Worker::renew`), whose isolate may
    /// still hold functions of an earlier run's context: the native functions and callbacks
    /// serve only calls from this one. `None` in a worker that was never renewed (its isolate
    /// has had no other context), so the check costs nothing there.
    pub(crate) context: Option<v8::Global<v8::Context>>,
    pub(crate) on_send: Rc<RefCell<SendFn>>,
    pub(crate) on_print: Rc<RefCell<PrintFn>>,
    /// The function registered with `$recv`.
    pub(crate) recv: Option<v8::Global<v8::Function>>,
    /// Errors nothing handled yet, in the order they happened (reported oldest first).
    pub(crate) unhandled: Vec<Unhandled>,
    pub(crate) modules: ModuleMap,
    /// Resolves imports: static ones of `Worker::load_main_module` and every `import()`.
    pub(crate) resolver: Option<Rc<RefCell<super::modules::Resolver>>>,
}

/// An error that nothing handled.
pub(crate) enum Unhandled {
    /// A promise rejected with no handler (yet); dropped if a handler is added later.
    Rejection {
        promise: v8::Global<v8::Promise>,
        reason: v8::Global<v8::Value>,
    },
    /// An exception thrown by JavaScript that V8 ran on its own (a FinalizationRegistry's
    /// clean-up callback), which no `TryCatch` of ours saw.
    Uncaught(v8::Global<v8::Value>),
}

impl Unhandled {
    /// Whether this is the rejection of `promise`.
    pub(crate) fn is_rejection_of(
        &self,
        scope: &mut v8::PinScope,
        promise: v8::Local<v8::Promise>,
    ) -> bool {
        match self {
            Unhandled::Rejection { promise: p, .. } => v8::Local::new(scope, p) == promise,
            Unhandled::Uncaught(_) => false,
        }
    }
}

impl State {
    /// The state of a new run: nothing registered yet.
    pub(crate) fn new(on_send: SendFn, on_print: PrintFn) -> State {
        State {
            context: None,
            on_send: Rc::new(RefCell::new(on_send)),
            on_print: Rc::new(RefCell::new(on_print)),
            recv: None,
            unhandled: Vec::new(),
            modules: ModuleMap::default(),
            resolver: None,
        }
    }
}

#[derive(Default)]
pub(crate) struct ModuleMap {
    /// Every module compiled in this worker, by its name.
    pub(crate) by_name: HashMap<String, v8::Global<v8::Module>>,
    /// Module name by script id (to name the referrer of an import).
    pub(crate) names: HashMap<i32, String>,
    /// (referrer's script id, specifier, JSON) → module, filled before instantiation.
    pub(crate) resolved: HashMap<(i32, String, bool), v8::Global<v8::Module>>,
    /// Synthetic modules (JSON, CommonJS) by identity hash: what their evaluation makes.
    pub(crate) synthetic: HashMap<i32, Vec<Synthetic>>,
    /// `import()` calls not yet loaded.
    pub(crate) dynamic: Vec<DynamicImport>,
    /// `import()` calls whose module is still evaluating (top-level await).
    pub(crate) dynamic_pending: Vec<DynamicPending>,
    /// Evaluation promises of main modules whose top-level await has not settled.
    pub(crate) pending: Vec<v8::Global<v8::Promise>>,
}

pub(crate) struct Synthetic {
    pub(crate) module: v8::Global<v8::Module>,
    pub(crate) kind: super::modules::ModuleKind,
    pub(crate) name: String,
    pub(crate) source: String,
}

pub(crate) struct DynamicImport {
    pub(crate) resolver: v8::Global<v8::PromiseResolver>,
    pub(crate) specifier: String,
    pub(crate) referrer: String,
    /// `with { type: "json" }`, or why the attributes are refused.
    pub(crate) json: Result<bool, String>,
}

pub(crate) struct DynamicPending {
    pub(crate) promise: v8::Global<v8::Promise>,
    pub(crate) module: v8::Global<v8::Module>,
    pub(crate) resolver: v8::Global<v8::PromiseResolver>,
}

pub(crate) type SharedState = Rc<RefCell<State>>;

pub(crate) fn get(isolate: &v8::Isolate) -> SharedState {
    isolate
        .get_slot::<SharedState>()
        .expect("every v8box isolate carries its State")
        .clone()
}
