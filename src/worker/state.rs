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
    /// Promises rejected with no handler (yet), in order.
    pub(crate) rejections: Vec<(v8::Global<v8::Promise>, v8::Global<v8::Value>)>,
    /// Exceptions thrown by JavaScript that V8 ran on its own (a FinalizationRegistry's
    /// clean-up callback), which no `TryCatch` of ours saw; in order.
    pub(crate) uncaught: Vec<v8::Global<v8::Value>>,
    pub(crate) modules: ModuleMap,
}

impl State {
    /// The state of a new run: nothing registered yet.
    pub(crate) fn new(on_send: SendFn, on_print: PrintFn) -> State {
        State {
            context: None,
            on_send: Rc::new(RefCell::new(on_send)),
            on_print: Rc::new(RefCell::new(on_print)),
            recv: None,
            rejections: Vec::new(),
            uncaught: Vec::new(),
            modules: ModuleMap::default(),
        }
    }
}

#[derive(Default)]
pub(crate) struct ModuleMap {
    /// Every module compiled in this worker, by its name.
    pub(crate) by_name: HashMap<String, v8::Global<v8::Module>>,
    /// Module name by script id (to name the referrer of an import).
    pub(crate) names: HashMap<i32, String>,
    /// (referrer's script id, specifier) → module, filled before instantiation.
    pub(crate) resolved: HashMap<(i32, String), v8::Global<v8::Module>>,
    /// Evaluation promises of main modules whose top-level await has not settled.
    pub(crate) pending: Vec<v8::Global<v8::Promise>>,
}

pub(crate) type SharedState = Rc<RefCell<State>>;

pub(crate) fn get(isolate: &v8::Isolate) -> SharedState {
    isolate
        .get_slot::<SharedState>()
        .expect("every v8box isolate carries its State")
        .clone()
}
