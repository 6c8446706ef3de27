// HTTP through the host. Start any local server, e.g. `python3 -m http.server 8000`, then:
//   cargo run --release -- run --allow-net=127.0.0.1:8000 examples/fetch.js
const response = await sys.fetch('http://127.0.0.1:8000/');
console.log(response.status, response.headers['content-type']);
console.log((await response.text()).slice(0, 200));
