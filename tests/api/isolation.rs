//! Hosts choose where a run's isolate lives: `SandboxBuilder::isolation` and
//! `WorkerPool::with_isolation` with `Isolation::Process`, here the `v8box` binary as the
//! worker executable (it calls `isolation::worker_entry` first).

use std::time::Duration;

use v8box::isolation::Isolation;
use v8box::policy::Permission;
use v8box::{Exit, Job, Policy, Sandbox, WorkerPool};

fn process() -> Isolation {
    Isolation::Process {
        exe: env!("CARGO_BIN_EXE_v8box").into(),
    }
}

/// An audit log in memory, readable while the sandbox holds the writer.
#[derive(Clone, Default)]
struct SharedLog(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_sandbox_runs_its_script_in_a_jailed_process_and_answers_requests() {
    let log = SharedLog::default();
    let sandbox = Sandbox::builder()
        .isolation(process())
        .allow(Permission::Host, "rpc")
        .unwrap()
        .channel("rpc")
        .capture_output(true)
        .audit_writer(log.clone())
        .build()
        .unwrap();
    let mut run = sandbox.run_module(
        "echo.js",
        "sys.host.onMessage('rpc', (data) => new TextEncoder().encode(\
           new TextDecoder().decode(data).toUpperCase()));\n\
         $print('listening');",
    );
    let answer = run
        .request("rpc", b"hello".to_vec(), Duration::from_secs(10))
        .unwrap();
    assert_eq!(&answer[..], b"HELLO");
    run.close_channels();
    assert_eq!(run.wait(), Exit::Ok);
    assert_eq!(run.stdout(), vec!["listening".to_string()]);
    drop(run);
    drop(sandbox);
    // It ran in a worker process behind seccomp, not on the sandbox's thread.
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let start = text.lines().find(|l| l.contains("\"run.start\"")).unwrap();
    assert!(start.contains("\"mode\":\"process\""), "{start}");
    assert!(start.contains("seccomp"), "{start}");
}

#[test]
fn a_pools_jobs_each_run_in_a_process_of_their_own() {
    let pool = WorkerPool::with_isolation(2, process());
    let jobs: Vec<Job> = (0..6)
        .map(|i| {
            Job::module(
                &format!("job{i}.js"),
                &format!("$print(String({i} * 7));"),
                Policy::deny_all(),
            )
        })
        .collect();
    let results = pool.run_all(jobs);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.exit, Exit::Ok, "{}: {:?}", r.name, r.stderr);
        assert_eq!(r.stdout, vec![(i * 7).to_string()]);
        let start = r
            .audit
            .iter()
            .find(|l| l.contains("\"run.start\""))
            .unwrap();
        assert!(start.contains("\"mode\":\"process\""), "{start}");
        assert!(start.contains("seccomp"), "{start}");
    }
}

#[test]
fn a_warm_pool_keeps_its_worker_process_and_gives_each_job_a_fresh_context() {
    let pool = WorkerPool::with_warm_workers_in(1, process());
    let job = |i: usize| {
        Job::module(
            &format!("job{i}.js"),
            "$print(String(typeof globalThis.left)); globalThis.left = 1;",
            Policy::deny_all(),
        )
    };
    let results = pool.run_all((0..3).map(job).collect());
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.exit, Exit::Ok, "{}: {:?}", r.name, r.stderr);
        // Nothing of the job before is visible in this one's context.
        assert_eq!(r.stdout, vec!["undefined".to_string()]);
        let start = r
            .audit
            .iter()
            .find(|l| l.contains("\"run.start\""))
            .unwrap();
        assert!(start.contains("\"mode\":\"process\""), "{start}");
        // The same isolate in the same process: its nth run.
        assert!(
            start.contains(&format!("\"isolate_run\":{}", i + 1)),
            "{start}"
        );
    }
}

/// How deep a script can recurse under `flags`, in a worker process of its own.
fn recursion_depth_in_a_worker(flags: &[&str]) -> usize {
    let sandbox = Sandbox::builder()
        .isolation(process())
        .v8_flags(flags)
        .capture_output(true)
        .build()
        .unwrap();
    let mut run = sandbox.run_script(
        "depth.js",
        "let depth = 0;\n\
         function down() { depth++; down(); }\n\
         try { down(); } catch (e) { $print(String(depth)); }",
    );
    assert_eq!(run.wait(), Exit::Ok);
    run.stdout()[0].parse().unwrap()
}

#[test]
fn v8_flags_reach_the_worker_process() {
    // A stack of 100 KiB against V8's default of about 1 MiB: far fewer frames fit.
    let default = recursion_depth_in_a_worker(&[]);
    let small = recursion_depth_in_a_worker(&["--stack-size=100"]);
    assert!(
        small * 4 < default,
        "--stack-size=100 allowed {small} frames, the default {default}"
    );
}
