//! Running many scripts on a pool of threads; some run out of time or memory, the rest finish.
//!
//!     cargo run --example pool

use v8box::{Job, Policy, WorkerPool};

fn main() {
    let pool = WorkerPool::new(2);
    let mut policy = Policy::deny_all();
    policy.limits.timeout_ms = Some(500);
    policy.limits.max_heap_mb = Some(64);
    let jobs: Vec<Job> = (0..20)
        .map(|i| {
            let source = match i {
                5 => "while (true) {}".to_string(),
                9 => "const a = []; while (true) a.push(new Array(1e5).fill(1));".to_string(),
                _ => format!(
                    "let s = 0; for (let k = 0; k < {i} * 1e5; k++) s += k; console.log('sum', s);"
                ),
            };
            Job::module(&format!("job{i}.js"), &source, policy.clone())
        })
        .collect();
    for result in pool.run_all(jobs) {
        println!(
            "{:<10} {:<12} {:<40} {} audit records",
            result.name,
            result.exit.reason(),
            result.stdout.join(" | "),
            result.audit.len()
        );
    }
}
