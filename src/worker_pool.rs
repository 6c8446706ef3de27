//! `WorkerPool`: N threads running many scripts concurrently, one isolate at a time per
//! thread. A job is a script and its policy; its result carries the exit status, the audit
//! records and the captured output. A job that times out or exhausts its heap ends with that
//! status; its thread goes on with the next job.

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Receiver, Sender};

use crate::audit::AuditLog;
use crate::dispatch::{OutputFn, Stream};
use crate::isolation::Isolation;
use crate::loader::Imports;
use crate::policy::Policy;
use crate::runtime::{self, Exit, Main, RunOptions, WarmWorker};
use crate::sandbox::CAPTURE_LIMIT_BYTES;

/// A script to run in the pool.
#[derive(Debug, Clone)]
pub struct Job {
    /// Names the script in errors and in the audit log.
    pub name: String,
    /// The script's source text.
    pub source: String,
    /// ES module (true) or classic script (false).
    pub module: bool,
    /// What the script may do.
    pub policy: Policy,
    /// `sys.args`.
    pub args: Vec<String>,
}

impl Job {
    /// A module job. Its imports load, as audited system calls, from the folders `policy`
    /// makes module roots (`Permission::Module`, `[modules] root`) or grants reading; a job has
    /// no module root of its own.
    pub fn module(name: &str, source: &str, policy: Policy) -> Job {
        Job {
            name: name.into(),
            source: source.into(),
            module: true,
            policy,
            args: Vec::new(),
        }
    }
}

/// What became of a job.
#[derive(Debug, Clone)]
pub struct JobResult {
    /// The job's name.
    pub name: String,
    /// How the run ended.
    pub exit: Exit,
    /// The job's audit records (JSON lines, their own hash chain).
    pub audit: Vec<String>,
    /// Lines the script printed to stdout (kept up to `CAPTURE_LIMIT_BYTES` with stderr).
    pub stdout: Vec<String>,
    /// Lines the script printed to stderr (kept up to `CAPTURE_LIMIT_BYTES` with stdout).
    pub stderr: Vec<String>,
}

type Task = (Job, Sender<JobResult>);

/// Threads that run jobs.
pub struct WorkerPool {
    tasks: Option<Sender<Task>>,
    threads: Vec<JoinHandle<()>>,
}

fn run_job(
    job: Job,
    thread: usize,
    isolation: &Isolation,
    warm: Option<&mut WarmWorker>,
) -> JobResult {
    let (audit, sink) = AuditLog::in_memory(&format!("pool-{thread}"));
    let output: Arc<Mutex<(Vec<String>, Vec<String>, usize)>> = Arc::default();
    let out = output.clone();
    let print: OutputFn = Arc::new(move |stream, line| {
        let mut o = out.lock().unwrap_or_else(|p| p.into_inner());
        if o.2 + line.len() > CAPTURE_LIMIT_BYTES {
            return;
        }
        o.2 += line.len();
        match stream {
            Stream::Stdout => o.0.push(line.to_string()),
            Stream::Stderr => o.1.push(line.to_string()),
        }
    });
    let mut options = RunOptions::new(job.policy);
    options.audit = audit;
    options.output = Some(print);
    options.args = job.args;
    options.isolation = isolation.clone();
    let main = if job.module {
        Main::Module {
            name: job.name.clone(),
            source: job.source,
            resolve: Imports::Files,
        }
    } else {
        Main::Script {
            name: job.name.clone(),
            source: job.source,
        }
    };
    let exit = match warm {
        Some(warm) => runtime::run_warm(main, options, warm),
        None => runtime::run(main, options),
    };
    let (stdout, stderr, _) =
        std::mem::take(&mut *output.lock().unwrap_or_else(|p| p.into_inner()));
    JobResult {
        name: job.name,
        exit,
        audit: sink.lines(),
        stdout,
        stderr,
    }
}

impl WorkerPool {
    /// A pool of `threads` threads (at least one); every job gets a new worker.
    pub fn new(threads: usize) -> WorkerPool {
        WorkerPool::spawn(threads, false, Isolation::Thread)
    }

    /// A pool whose jobs run where `isolation` says: with `Isolation::Process`, each job in a
    /// jailed worker process of its own (docs/SECURITY.md), and each thread keeps one such
    /// process started ahead — jailed, V8 started, waiting — so that a job does not wait for
    /// a process to start (a zygote; `isolation::Prestarted`).
    pub fn with_isolation(threads: usize, isolation: Isolation) -> WorkerPool {
        WorkerPool::spawn(threads, false, isolation)
    }

    /// Like `new`, but each thread keeps its isolate from one job to the next
    /// (`runtime::WarmWorker`): a job starts in a fresh context of a kept isolate, which skips
    /// most of a start-up. Jobs with a heap limit still get new isolates. Meant for jobs of one
    /// trust domain: the jobs of a thread share V8's compiled-code caches and its heap
    /// (docs/SECURITY.md).
    pub fn with_warm_workers(threads: usize) -> WorkerPool {
        WorkerPool::spawn(threads, true, Isolation::Thread)
    }

    /// `with_warm_workers` where `isolation` says: with `Isolation::Process`, each thread keeps
    /// its jailed worker process from one job to the next, with the isolate parked between
    /// jobs and renewed for each (a fresh context, as on a thread). One trust domain, as
    /// `with_warm_workers`.
    pub fn with_warm_workers_in(threads: usize, isolation: Isolation) -> WorkerPool {
        WorkerPool::spawn(threads, true, isolation)
    }

    fn spawn(threads: usize, keep_isolates: bool, isolation: Isolation) -> WorkerPool {
        let (tx, rx) = unbounded::<Task>();
        let threads = (0..threads.max(1))
            .map(|i| {
                let rx: Receiver<Task> = rx.clone();
                let isolation = isolation.clone();
                // A process per job: the thread's `WarmWorker` holds the next one's process.
                let keep = keep_isolates || isolation != Isolation::Thread;
                std::thread::Builder::new()
                    .name(format!("v8box-pool-{i}"))
                    .spawn(move || {
                        let mut warm = if keep_isolates {
                            WarmWorker::keeping_processes()
                        } else {
                            WarmWorker::new()
                        };
                        if let Isolation::Process { exe } = &isolation {
                            warm.prestart(exe);
                        }
                        for (job, reply) in rx {
                            let name = job.name.clone();
                            let result =
                                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                                    run_job(job, i, &isolation, keep.then_some(&mut warm))
                                }))
                                .unwrap_or_else(|_| JobResult {
                                    name,
                                    exit: Exit::Error(crate::JsError::plain_message(
                                        "the job panicked",
                                    )),
                                    audit: Vec::new(),
                                    stdout: Vec::new(),
                                    stderr: Vec::new(),
                                });
                            let _ = reply.send(result);
                            // The next job's process starts once this one is answered.
                            if let Isolation::Process { exe } = &isolation {
                                warm.prestart(exe);
                            }
                        }
                    })
                    .expect("spawn a pool thread")
            })
            .collect();
        WorkerPool {
            tasks: Some(tx),
            threads,
        }
    }

    /// Queues a job; its result arrives on the returned receiver.
    pub fn submit(&self, job: Job) -> Receiver<JobResult> {
        let (tx, rx) = bounded(1);
        self.tasks
            .as_ref()
            .expect("pool is open")
            .send((job, tx))
            .expect("pool threads are alive");
        rx
    }

    /// Runs every job and returns the results in the jobs' order.
    pub fn run_all(&self, jobs: Vec<Job>) -> Vec<JobResult> {
        let pending: Vec<_> = jobs.into_iter().map(|j| self.submit(j)).collect();
        pending
            .into_iter()
            .map(|rx| rx.recv().expect("every job answers"))
            .collect()
    }
}

impl Drop for WorkerPool {
    /// Finishes the queued jobs, then joins the threads.
    fn drop(&mut self) {
        self.tasks.take();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
