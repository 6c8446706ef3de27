//! The worker process's side: after `jail::enter`, it makes one isolate as the broker's `Start`
//! says and runs each request (`ToWorker`) on it, sending the script's `$send`, `$print` and
//! imports to the broker and waiting for the answers. It has no file, socket or process of its
//! own to use: everything goes through the channel.

use std::cell::RefCell;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

use super::channel::{Channel, ChannelError};
use super::wire::{self, pb};
use crate::worker::{
    JsError, MemoryWatch, TerminateHandle, TerminationReason, Worker, WorkerOptions,
};
use pb::{from_worker, to_worker, FromWorker, ToWorker};
use std::sync::{Arc, Mutex};

/// How often a worker with a heap limit compares its ArrayBuffer memory with the limit
/// (V8 counts some of it only at collections), as the watchdog does in thread mode.
const MEMORY_TICK: Duration = Duration::from_millis(5);

/// The channel's limit for broker -> worker messages (a module's source, a reply): the
/// broker's own limit on what it sends is `max_message_bytes`; this bounds what a worker
/// allocates for one frame.
pub const MAX_FROM_BROKER: usize = (1 << 30) + (1 << 20);

/// The worker side of the channel; any failure ends the process (the broker sees it closed).
struct Link {
    channel: Channel,
    /// `send_later`s since the last `flush`.
    unflushed: usize,
    /// Their answers, for the script's `$recv` before the request is `Done`.
    answers: Vec<Vec<u8>>,
}

impl Link {
    fn send(&mut self, msg: from_worker::Msg) {
        if self.channel.send(&FromWorker { msg: Some(msg) }).is_err() {
            std::process::exit(0);
        }
    }

    fn recv(&mut self) -> to_worker::Msg {
        match self.channel.recv::<ToWorker>() {
            Ok(ToWorker { msg: Some(m) }) => m,
            // The broker is gone, or talks nonsense: nothing to do but end.
            Ok(ToWorker { msg: None })
            | Err(ChannelError::Closed | ChannelError::Io(_))
            | Err(ChannelError::TooLong(_) | ChannelError::Malformed(_)) => std::process::exit(0),
        }
    }

    /// A call whose answer may come through `$recv`: sent without waiting (its answer, if the
    /// broker gave one at once, comes with the next `flush`).
    fn send_later(&mut self, bytes: &[u8]) -> Option<TerminationReason> {
        self.send(from_worker::Msg::SendLater(bytes.to_vec()));
        self.unflushed += 1;
        if self.unflushed >= wire::MAX_LATER {
            return self.flush();
        }
        None
    }

    /// Takes the answers of the `send_later`s so far into `answers`; the run's stop, if the
    /// broker says it was stopped.
    fn flush(&mut self) -> Option<TerminationReason> {
        if self.unflushed == 0 {
            return None;
        }
        self.send(from_worker::Msg::Flush(pb::Empty {}));
        self.unflushed = 0;
        match self.recv() {
            to_worker::Msg::Later(later) => {
                self.answers.extend(later.replies);
                wire::reason_of(later.stop)
            }
            _ => std::process::exit(2),
        }
    }
}

/// Serves the broker on `channel` until it closes the channel; `control` carries stop
/// requests (one byte each, a `wire::reason_code`) while a request runs. `jail` says which
/// layers of the jail hold, for the broker's record.
pub fn serve(
    channel: Channel,
    control: UnixStream,
    jail: super::jail::JailReport,
    warm_up: bool,
) -> ! {
    let link = Rc::new(RefCell::new(Link {
        channel,
        unflushed: 0,
        answers: Vec::new(),
    }));
    // V8 starts before the run is known: a pre-started worker (a pool's) is ready for it.
    let platform = crate::worker::check_platform();
    if warm_up && platform.is_ok() {
        // A pool's worker waits for its job: it pays the first isolate's one-time costs (V8's
        // shared read-only heap, the snapshot's pages) now, on an isolate it throws away.
        let options = WorkerOptions {
            snapshot: crate::runtime::prelude_snapshot(),
            ..WorkerOptions::default()
        };
        drop(Worker::with_options(options, |_| None));
    }
    let current = Current::default();
    listen_for_stops(control, current.clone());
    watch_memory(current.clone());
    let mut jail = Some(jail);
    let mut kept: Option<Worker> = None;
    loop {
        let start = match link.borrow_mut().recv() {
            to_worker::Msg::Start(s) => s,
            _ => std::process::exit(2),
        };
        // The jail's report and the probe go with the first run only.
        let (layers, warnings, probe) = match jail.take() {
            Some(j) => {
                #[cfg(debug_assertions)]
                let probe = super::probe::run_requested(&start.probe);
                #[cfg(not(debug_assertions))]
                let probe: Vec<String> = Vec::new();
                (j.layers, j.warnings, probe)
            }
            None => Default::default(),
        };
        if let Err(why) = &platform {
            link.borrow_mut().send(from_worker::Msg::Ready(pb::Ready {
                refused: why.clone(),
                jail: layers,
                warnings,
                probe,
                runs_hosted: 0,
            }));
            std::process::exit(0);
        }
        // The host's V8 flags, before the run's isolate is made (never a kept one, made under
        // other flags). They stay with the process, so the broker keeps no such worker.
        if !start.v8_flags.is_empty() {
            drop(kept.take());
            crate::worker::set_host_flags(&start.v8_flags);
        }
        let mut worker = make_worker(&link, &start, kept.take());
        let handle = worker.terminate_handle();
        current.set(Some(handle.clone()), worker.memory_watch());
        link.borrow_mut().send(from_worker::Msg::Ready(pb::Ready {
            refused: String::new(),
            jail: layers,
            warnings,
            probe,
            runs_hosted: worker.runs_hosted(),
        }));
        if serve_run(&link, &mut worker, &handle) {
            // Parked: the isolate waits for the next `Start`.
            current.set(None, None);
            kept = Some(worker);
        } else {
            std::process::exit(0);
        }
    }
}

/// The run's stop handle and memory watch, for the threads that outlive runs.
#[derive(Default, Clone)]
struct Current(Arc<Mutex<(Option<TerminateHandle>, Option<MemoryWatch>)>>);

impl Current {
    fn set(&self, handle: Option<TerminateHandle>, watch: Option<MemoryWatch>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = (handle, watch);
    }
    fn handle(&self) -> Option<TerminateHandle> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }
    fn watch(&self) -> Option<MemoryWatch> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).1.clone()
    }
}

/// The run's isolate: `kept`, renewed with a fresh context when its settings allow
/// (`Worker::can_renew`), else a new one; its `$send`, `$print` and imports go to the broker.
fn make_worker(link: &Rc<RefCell<Link>>, start: &pb::Start, kept: Option<Worker>) -> Worker {
    let options = WorkerOptions {
        max_heap_bytes: (start.max_heap_bytes > 0).then_some(start.max_heap_bytes as usize),
        deny_code_generation: start.deny_code_generation,
        snapshot: if start.use_snapshot {
            crate::runtime::prelude_snapshot()
        } else {
            None
        },
        ..WorkerOptions::default()
    };
    let max_message = start.max_message_bytes as usize;
    let sender = link.clone();
    // The worker's own stop handle, for a reply that says the run was stopped meanwhile.
    let stopper: Rc<RefCell<Option<TerminateHandle>>> = Rc::new(RefCell::new(None));
    let stop_on_reply = stopper.clone();
    #[cfg(debug_assertions)]
    let misbehave = super::probe::misbehaviour(&start.probe);
    let on_send = move |bytes: &[u8]| -> Option<Vec<u8>> {
        let mut link = sender.borrow_mut();
        #[cfg(debug_assertions)]
        if let Some(how) = &misbehave {
            super::probe::misbehave(how, link.channel.raw_writer());
        }
        if bytes.len() <= max_message && crate::ops::table::answered_later(bytes) {
            if let (Some(reason), Some(handle)) =
                (link.send_later(bytes), stop_on_reply.borrow().as_ref())
            {
                handle.terminate_for(reason);
            }
            return None;
        }
        if bytes.len() > max_message {
            // Not sent: the broker refuses it by its size and first bytes (the call id).
            let head = bytes[..bytes.len().min(16)].to_vec();
            link.send(from_worker::Msg::Oversized(pb::Oversized {
                length: bytes.len() as u64,
                head,
            }));
        } else {
            link.send(from_worker::Msg::Send(bytes.to_vec()));
        }
        match link.recv() {
            to_worker::Msg::SendReply(r) => {
                if let (Some(reason), Some(handle)) =
                    (wire::reason_of(r.stop), stop_on_reply.borrow().as_ref())
                {
                    handle.terminate_for(reason);
                }
                r.reply
            }
            _ => std::process::exit(2),
        }
    };
    let renewed = kept.and_then(|mut w| w.renew(&options, on_send.clone()).then_some(w));
    let mut worker = match renewed {
        Some(w) => w,
        None => Worker::with_options(options, on_send),
    };
    let printer = link.clone();
    worker.set_print_handler(move |line| {
        printer
            .borrow_mut()
            .send(from_worker::Msg::Print(line.to_string()))
    });
    // Every import — a static one while the main module loads, an `import()` while any
    // request runs JavaScript — is the broker's to answer.
    let resolver = link.clone();
    worker.set_resolver(Box::new(move |request| {
        let mut link = resolver.borrow_mut();
        link.send(from_worker::Msg::Resolve(pb::Resolve {
            specifier: request.specifier.to_string(),
            referrer: request.referrer.to_string(),
            json: request.json,
        }));
        match link.recv() {
            to_worker::Msg::Resolved(r) => match r.result {
                Some(pb::resolved::Result::Module(m)) => match wire::kind_of(m.kind) {
                    Some(kind) => Ok(crate::worker::ImportedModule {
                        name: m.name,
                        source: m.source,
                        kind,
                    }),
                    None => std::process::exit(2),
                },
                Some(pb::resolved::Result::Error(e)) => Err(e),
                None => Err("the broker answered nothing".into()),
            },
            _ => std::process::exit(2),
        }
    }));
    *stopper.borrow_mut() = Some(worker.terminate_handle());
    worker
}

/// Serves one run's requests; at `Park`, parks the isolate and returns whether it is kept.
fn serve_run(link: &Rc<RefCell<Link>>, worker: &mut Worker, handle: &TerminateHandle) -> bool {
    loop {
        let request = link.borrow_mut().recv();
        let result: Result<bool, JsError> = match request {
            to_worker::Msg::Load(s) => worker.load(&s.name, &s.source).map(|_| true),
            to_worker::Msg::LoadModule(s) => {
                worker.load_main_module(&s.name, &s.source).map(|_| true)
            }
            to_worker::Msg::PollModules(_) => worker.poll_modules(),
            to_worker::Msg::Deliver(bytes) => worker.send_vec(bytes).map(|_| true),
            to_worker::Msg::RunPlatformTasks(_) => worker.run_platform_tasks(),
            to_worker::Msg::Park(_) => {
                let kept = worker.is_renewable() && worker.park();
                link.borrow_mut().send(from_worker::Msg::Done(pb::Done {
                    result: Some(pb::done::Result::Value(kept)),
                    ..pb::Done::default()
                }));
                return kept;
            }
            _ => std::process::exit(2),
        };
        let result = deliver_answers(link, worker, handle, result);
        let mut unhandled = Vec::new();
        if result.is_ok() {
            while let Some(e) = worker.take_unhandled_rejection() {
                unhandled.push(wire::to_wire(&e));
            }
        }
        let done = pb::Done {
            result: Some(match result {
                Ok(v) => pb::done::Result::Value(v),
                Err(e) => pb::done::Result::Error(wire::to_wire(&e)),
            }),
            background_work: worker.has_background_work(),
            unhandled,
            stopped: wire::reason_code(handle.reason()) as u32,
        };
        link.borrow_mut().send(from_worker::Msg::Done(done));
    }
}

/// Before a request is `Done`: the answers of its `send_later`s go to the script's `$recv`
/// (all that came together in one call, as the broker's event loop batches them), and so on
/// for the calls those make, until none is left; the request's own result unless that fails.
fn deliver_answers(
    link: &Rc<RefCell<Link>>,
    worker: &mut Worker,
    handle: &TerminateHandle,
    mut result: Result<bool, JsError>,
) -> Result<bool, JsError> {
    loop {
        let stop = link.borrow_mut().flush();
        if let Some(reason) = stop {
            handle.terminate_for(reason);
        }
        let mut answers = std::mem::take(&mut link.borrow_mut().answers);
        if answers.is_empty() || result.is_err() || handle.reason().is_some() {
            return result;
        }
        let delivery = match answers.len() {
            1 => answers.pop().expect("one answer"),
            _ => crate::proto::batch_of(&answers),
        };
        if let Err(e) = worker.send_vec(delivery) {
            result = Err(e);
        }
    }
}

/// With a heap limit, the run's isolate compares its ArrayBuffer memory with the limit every
/// `MEMORY_TICK` (V8 counts some of it only at collections), as the watchdog does in thread
/// mode.
fn watch_memory(current: Current) {
    std::thread::spawn(move || loop {
        std::thread::sleep(MEMORY_TICK);
        if let Some(watch) = current.watch() {
            watch.poke();
        }
    });
}

/// A thread that stops the script when the broker asks (its watchdog: a timeout; `sys.exit`;
/// the host), while the isolate's thread runs JavaScript.
fn listen_for_stops(mut control: UnixStream, current: Current) {
    std::thread::spawn(move || {
        let mut byte = [0u8; 1];
        while let Ok(1) = control.read(&mut byte) {
            if let (Some(reason), Some(handle)) =
                (wire::reason_of(byte[0] as u32), current.handle())
            {
                handle.terminate_for(reason);
            }
        }
    });
}
