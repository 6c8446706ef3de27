// v8box's side of bench/cost.sh: the same three calls as bench/deno_core_peer (a sync env read,
// a clock read, an async timer of 0 ms), each N times from a loop, timed inside the run.
// Usage: v8box run --allow-env=HOME bench/cost.mjs N [case...]   (cases: env now sleep)
// Prints `case ns_per_call` lines.
const [nArg, ...rest] = sys.args;
const N = Number(nArg ?? 100000);
const cases = rest.length ? rest : ['env', 'now', 'sleep'];
const out = [];
function env(n) { let s = 0; for (let i = 0; i < n; i++) s += sys.env.get('HOME').length; return s; }
function now(n) { let s = 0; for (let i = 0; i < n; i++) s += sys.now(); return s; }
async function sleep(n) { for (let i = 0; i < n; i++) await sys.sleep(0); }
const run = { env, now, sleep };
for (const c of cases) {
  const f = run[c];
  if (f === undefined) throw new Error(`unknown case ${c}`);
  await f(20000); // warm-up: let the loop be optimized
  const t0 = sys.now();
  await f(N);
  const t1 = sys.now();
  out.push(`${c} ${((t1 - t0) * 1e6 / N).toFixed(1)}`);
}
$print(out.join('\n'));
