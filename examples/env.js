// Environment variables, one name at a time:
//   cargo run --release -- run --allow-env=HOME examples/env.js
console.log('HOME is', sys.env.get('HOME'));
try {
  sys.env.get('PATH');
} catch (e) {
  console.log(String(e));
}
