// One script, the same work in v8box, Deno and Node (B4). Usage: RUNTIME work.mjs CASE DIR
// Prints `CASE MS`: the time the work took, measured inside the runtime.
const rt = typeof sys !== 'undefined' ? 'v8box' : typeof Deno !== 'undefined' ? 'deno' : 'node';
let readFile, writeFile, envGet, now, args;
if (rt === 'v8box') {
  readFile = sys.readFile; writeFile = sys.writeFile; envGet = sys.env.get; now = sys.now; args = sys.args;
} else if (rt === 'deno') {
  readFile = Deno.readFile; writeFile = Deno.writeFile; envGet = (n) => Deno.env.get(n);
  now = () => performance.now(); args = Deno.args;
} else {
  const fs = await import('node:fs/promises');
  readFile = fs.readFile; writeFile = fs.writeFile; envGet = (n) => process.env[n];
  now = () => performance.now(); args = process.argv.slice(2);
}
const [which, dir] = args;
const log = (ms) => (rt === 'v8box' ? $print : console.log)(`${which} ${ms.toFixed(1)}`);
const file = `${dir}/one-kib.txt`;
const start = now();
if (which === 'reads-sequential') {
  for (let i = 0; i < 100000; i++) await readFile(file);
} else if (which === 'reads-64-in-flight') {
  let next = 0;
  const lane = async () => { while (next++ < 100000) await readFile(file); };
  await Promise.all(Array.from({ length: 64 }, lane));
} else if (which === 'write-10k-files') {
  const data = new Uint8Array(100).fill(120);
  for (let i = 0; i < 10000; i++) await writeFile(`${dir}/out/f${i}.txt`, data);
} else if (which === 'timers-10k') {
  await Promise.all(Array.from({ length: 10000 }, () => new Promise((r) => setTimeout(r, 0))));
} else if (which === 'env-get-100k') {
  // B3: a synchronous system call, 100,000 times.
  for (let i = 0; i < 100000; i++) envGet('HOME');
} else if (which === 'hello') {
  // start-up: nothing to do
} else {
  throw new Error(`unknown case ${which}`);
}
log(now() - start);
