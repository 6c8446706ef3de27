// The smallest v8box script: print a line through the host.
const bytes = new Uint8Array([1, 2, 3]);
$print("hello from v8box, V8 says 2 + 2 =", 2 + 2);
$print(bytes);
