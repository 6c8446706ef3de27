//! The I/O pool: threads, shared by every worker in the process, that run blocking operations
//! (files, HTTP) off the isolates' threads. Jobs come in through a crossbeam channel; each job
//! sends its own answer back to the worker that asked.

use std::sync::OnceLock;

use crossbeam_channel::{unbounded, Sender};

type Job = Box<dyn FnOnce() + Send + 'static>;

fn pool() -> &'static Sender<Job> {
    static POOL: OnceLock<Sender<Job>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = unbounded::<Job>();
        let threads = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .max(2)
            * 4;
        for i in 0..threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("v8box-io-{i}"))
                .spawn(move || {
                    for job in rx {
                        job();
                    }
                })
                .expect("spawn an I/O thread");
        }
        tx
    })
}

/// Runs `job` on an I/O thread. Jobs catch their own panics (see `dispatch`).
pub fn submit(job: impl FnOnce() + Send + 'static) {
    pool()
        .send(Box::new(job))
        .expect("the I/O pool lives as long as the process");
}
