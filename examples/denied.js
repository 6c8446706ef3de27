// Default deny: run with no flags and see what a denial says.
//   cargo run --release -- run examples/denied.js
try {
  await sys.readTextFile('/etc/passwd');
} catch (e) {
  console.log(String(e));
  console.log('code:', e.code, '| instanceof PermissionDenied:', e instanceof sys.errors.PermissionDenied);
}
