//! deno_core peer for bench/cost.sh: three ops shaped like Deno's own, called N times each from
//! a JS loop that times itself. Prints `case ns_per_call` lines.
//!
//!   deno_core_peer <N> [case...]     cases: env now sleep
use deno_core::{extension, op2, JsRuntime, OpState, RuntimeOptions};
use std::time::Instant;

/// Deno's `--allow-env=NAME` grant, as `deno_runtime`'s permission container keeps it.
struct EnvPermission {
    allowed: Vec<String>,
}

struct Clock(Instant);

/// Shaped like Deno's `op_get_env` (runtime/ops/os): validate the key, check the permission
/// held in the op state, read the variable.
#[op2]
#[string]
fn op_get_env(
    state: &mut OpState,
    #[string] key: String,
) -> Result<Option<String>, deno_core::error::AnyError> {
    if key.is_empty() {
        return Err(deno_core::error::type_error("Key is an empty string."));
    }
    if key.contains(&['=', '\0'] as &[char]) {
        return Err(deno_core::error::type_error(format!(
            "Key contains invalid characters: {key:?}"
        )));
    }
    if !state.borrow::<EnvPermission>().allowed.iter().any(|k| *k == key) {
        return Err(deno_core::error::custom_error(
            "NotCapable",
            format!("Requires env access to \"{key}\""),
        ));
    }
    Ok(std::env::var(&key).ok())
}

/// A fast op returning a number (V8's fast API call): milliseconds since start, like
/// `performance.now()` in Deno.
#[op2(fast)]
fn op_now(state: &mut OpState) -> f64 {
    state.borrow::<Clock>().0.elapsed().as_secs_f64() * 1000.0
}

/// An async op: a timer of `ms` milliseconds on tokio's clock; 0 ms yields to the event loop
/// once (tokio's timer wheel would round 0 up to its 1 ms tick).
#[op2(async)]
async fn op_sleep(#[number] ms: u64) {
    if ms == 0 {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

extension!(
    peer,
    ops = [op_get_env, op_now, op_sleep],
    state = |state| {
        state.put(EnvPermission { allowed: vec!["HOME".into()] });
        state.put(Clock(Instant::now()));
    }
);

const SCRIPT: &str = r#"
const { op_get_env, op_now, op_sleep } = Deno.core.ops;
const N = globalThis.__N;
const out = [];
async function bench(name, f) {
  await f(20000); // warm-up: let the loop be optimized
  const t0 = op_now();
  await f(N);
  const t1 = op_now();
  out.push(`${name} ${((t1 - t0) * 1e6 / N).toFixed(1)}`);
}
function env(n) { let s = 0; for (let i = 0; i < n; i++) s += op_get_env("HOME").length; return s; }
function now(n) { let s = 0; for (let i = 0; i < n; i++) s += op_now(); return s; }
async function sleep(n) { for (let i = 0; i < n; i++) await op_sleep(0); }
(async () => {
  for (const c of globalThis.__CASES) {
    if (c === "env") await bench("env", env);
    else if (c === "now") await bench("now", now);
    else if (c === "sleep") await bench("sleep", sleep);
    else throw new Error("unknown case " + c);
  }
  Deno.core.print(out.join("\n") + "\n");
})();
"#;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let mut cases: Vec<String> = args.collect();
    if cases.is_empty() {
        cases = vec!["env".into(), "now".into(), "sleep".into()];
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut runtime = JsRuntime::new(RuntimeOptions {
            extensions: vec![peer::init_ops()],
            ..Default::default()
        });
        let setup = format!(
            "globalThis.__N = {n}; globalThis.__CASES = {};",
            serde_json_like(&cases)
        );
        runtime.execute_script("<setup>", setup).unwrap();
        runtime.execute_script("<bench>", SCRIPT.to_string()).unwrap();
        runtime.run_event_loop(Default::default()).await.unwrap();
    });
}

fn serde_json_like(cases: &[String]) -> String {
    let quoted: Vec<String> = cases.iter().map(|c| format!("{c:?}")).collect();
    format!("[{}]", quoted.join(","))
}
