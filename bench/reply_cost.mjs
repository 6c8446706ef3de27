// What B3's target against Deno leaves for v8box's own work (docs/BENCHMARKS.md, item 15).
//
// A v8box sync call must make a new ArrayBuffer for its reply (`$send`'s contract) and a view
// to read it. This times those two allocations against a whole `Deno.env.get` call, in Deno's
// own V8, in turns (9 rounds of 1,000,000 each), and prints the median of the per-round ratios:
//
//   deno run --allow-env --v8-flags=--no-concurrent-array-buffer-sweeping bench/reply_cost.mjs
//
// (the flag is the one v8box sets at start-up; without it a buffer costs about three times more).
const N = 1_000_000;
function envGet() {
  let x;
  for (let i = 0; i < N; i++) x = Deno.env.get("HOME");
  return x;
}
function replyAndView() {
  let x;
  for (let i = 0; i < N; i++) x = new Uint8Array(new ArrayBuffer(64));
  return x;
}
const times = { envGet: [], replyAndView: [] };
for (let round = 0; round < 9; round++) {
  for (const [name, f] of [["envGet", envGet], ["replyAndView", replyAndView]]) {
    const t = performance.now();
    f();
    times[name].push(performance.now() - t);
  }
}
const median = (a) => a.slice().sort((x, y) => x - y)[a.length >> 1];
const ratios = times.replyAndView.map((t, i) => t / times.envGet[i]);
console.log(
  `ms per 1,000,000: Deno.env.get ${median(times.envGet).toFixed(1)}, ` +
    `new ArrayBuffer(64) + Uint8Array view ${median(times.replyAndView).toFixed(1)}; ` +
    `buffer and view / Deno.env.get: ${median(ratios).toFixed(2)}`,
);
