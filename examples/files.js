// Files: run with
//   cargo run --release -- run --allow-read=examples/data,/tmp/v8box-example --allow-write=/tmp/v8box-example examples/files.js
const text = await sys.readTextFile('examples/data/greeting.txt');
console.log('read:', text.trim());

await sys.mkdir('/tmp/v8box-example', { recursive: true });
await sys.writeFile('/tmp/v8box-example/copy.txt', text);
await sys.writeFile('/tmp/v8box-example/copy.txt', 'appended line\n', { append: true });
const info = await sys.stat('/tmp/v8box-example/copy.txt');
console.log('wrote', info.size, 'bytes; folder holds', (await sys.readDir('/tmp/v8box-example')).map((e) => e.name));
