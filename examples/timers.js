// Timers and the clock (always allowed):
//   cargo run --release -- run examples/timers.js
const start = sys.now();
let ticks = 0;
const interval = setInterval(() => {
  ticks += 1;
  if (ticks === 3) clearInterval(interval);
}, 10);
await sys.sleep(50);
console.log(`${ticks} ticks in about ${Math.round(sys.now() - start)} ms; random:`, sys.randomBytes(4));
