// The `sys` library: the friendly API over the three native functions. Every system call is a
// `Call` message passed to `$send`; answers arrive as `Reply` messages, either as `$send`'s
// return value (quick calls, and every refusal) or later through the `$recv` callback.

const CALL = 'v8box.v1.Call';
const REPLY = 'v8box.v1.Reply';

let nextCallId = 1;
// call id → { resolve, reject, map } for calls in flight, or { timer } for armed timers.
const pending = new $Map();

// ---- errors

class SysError extends $Error {}
defineValue(SysError.prototype, 'name', 'SysError', false);

const ERROR_CLASSES = { __proto__: null };
const errors = { SysError };
function defineError(name, code) {
  const C = class extends SysError {};
  ReflectDefineProperty(C, 'name', { __proto__: null, value: name, configurable: true });
  defineValue(C.prototype, 'name', name, false);
  defineValue(C.prototype, 'code', code, false);
  ERROR_CLASSES[code] = C;
  errors[name] = C;
}
defineError('PermissionDenied', 'PERMISSION_DENIED');
defineError('NotFound', 'NOT_FOUND');
defineError('AlreadyExists', 'ALREADY_EXISTS');
defineError('InvalidArgument', 'INVALID_ARGUMENT');
defineError('QuotaExceeded', 'QUOTA_EXCEEDED');
defineError('TooLarge', 'TOO_LARGE');
defineError('Io', 'IO');
defineError('Network', 'NETWORK');
defineError('Internal', 'INTERNAL');
defineError('Unsupported', 'UNSUPPORTED');

function errorFrom(error) {
  const C = ERROR_CLASSES[error.code] || ERROR_CLASSES.INTERNAL;
  const e = new C(error.message);
  // Keep the caller's frames, not the library's.
  if (ErrorCaptureStackTrace) ErrorCaptureStackTrace(e, errorFrom);
  return e;
}

// ---- calls

// Where `$send` writes a reply that fits (and returns its length): one buffer for the run,
// decoded before anything else runs, so a quick call's reply costs no new ArrayBuffer. Longer
// replies come as an ArrayBuffer of their own, as before.
const REPLY_BUFFER_BYTES = 4096;
const replyBuffer = new $ArrayBuffer(REPLY_BUFFER_BYTES);
const replyView = new $Uint8Array(replyBuffer);

function send(op, payload, id) {
  return NativeSend(encodeCall(id, op, payload), replyBuffer);
}

// A reply's result, where the whole Reply is not needed: `{ name, value }` (see `member`).
// `answer`: what `send` returned (not null).
function answerOf(answer) {
  if (typeof answer === 'number') return decodeMemberOfReused(REPLY, replyView, answer);
  return decodeMember(REPLY, new $Uint8Array(answer));
}

function unwrap(answer) {
  if (answer.name === 'error') throw errorFrom(answer.value);
  return answer.value;
}

// A call the host answers at once (through `$send`'s return value).
function callSync(op, payload) {
  const answer = send(op, payload, nextCallId++);
  if (answer === null) throw new errors.Internal(`${op}: the host gave no answer`);
  return unwrap(answerOf(answer));
}

// Settles a pending call with a reply's result (`answer`: `{ name, value }`).
function settle(entry, answer) {
  if (answer.name === 'error') {
    const e = errorFrom(answer.value);
    if (entry.site !== undefined) {
      // Answered later (the I/O pool): the frames of the call, not of the reply's arrival.
      const frames = entry.site.stack;
      const nl = typeof frames === 'string' ? StringPrototypeIndexOf(frames, '\n') : -1;
      if (nl >= 0) defineValue(e, 'stack', `${ErrorPrototypeToString(e)}${StringPrototypeSlice(frames, nl)}`, false);
    }
    entry.reject(e);
    return;
  }
  let value = answer.value;
  if (entry.map !== undefined) {
    try {
      value = entry.map(value);
    } catch (e) {
      entry.reject(e);
      return;
    }
  }
  entry.resolve(value);
}

// A call that may take time: a Promise, settled when the reply arrives through `$recv`
// (or at once when the host refuses it). `map` turns the reply's result into the value.
// (A class, not a null-prototype object: V8 keeps those in dictionary mode.)
class Pending {
  constructor(resolve, reject, map, timer) {
    this.resolve = resolve;
    this.reject = reject;
    this.map = map;
    this.timer = timer;
    // For a call answered later: where the script made it (`stack`), as Deno keeps it.
    this.site = undefined;
  }
}
ownKeysOnly(Pending);

// `top`: the library's function the script called through (its frames are not shown).
function callAsync(op, payload, map, top) {
  return new $Promise((resolve, reject) => {
    const id = nextCallId++;
    const entry = new Pending(resolve, reject, map, undefined);
    const answer = send(op, payload, id);
    if (answer !== null) settle(entry, answerOf(answer));
    else {
      const site = { __proto__: null, stack: undefined };
      ErrorCaptureStackTrace(site, top === undefined ? callAsync : top);
      entry.site = site;
      MapPrototypeSet(pending, id, entry);
    }
  });
}

// channel → handler, and messages that arrived before their channel had one.
const hostListeners = new $Map();
const hostBacklog = new $Map();

function deliverHostMessage(message) {
  const listener = MapPrototypeGet(hostListeners, message.channel);
  if (listener === undefined) {
    let backlog = MapPrototypeGet(hostBacklog, message.channel);
    if (backlog === undefined) {
      backlog = [];
      MapPrototypeSet(hostBacklog, message.channel, backlog);
    }
    arrayAppend(backlog, message);
    return;
  }
  ReflectApply(listener, undefined, [message]);
}

function onRecv(buffer) {
  handleReply(decode(REPLY, new $Uint8Array(buffer)));
}

// What a fired `sleep` settles with.
const TIMER_OK = ObjectFreeze(member('ok', ObjectFreeze({ __proto__: null })));

function handleReply(reply) {
  if (reply.id === 0) {
    if (reply.result === 'hostMessage') deliverHostMessage(reply.hostMessage);
    else if (reply.result === 'batch') {
      const replies = reply.batch.replies;
      for (let i = 0; i < replies.length; i++) handleReply(replies[i]);
    } else if (reply.result === 'timersFired') {
      const ids = reply.timersFired.callIds;
      for (let i = 0; i < ids.length; i++) settleCall(ids[i], TIMER_OK);
    }
    return;
  }
  settleCall(reply.id, member(reply.result, reply[reply.result]));
}

// Settles the call `id` (or fires its timer) with `answer` (`{ name, value }`).
function settleCall(id, answer) {
  const entry = MapPrototypeGet(pending, id);
  if (entry === undefined) return; // cancelled meanwhile
  MapPrototypeDelete(pending, id);
  if (entry.timer !== undefined) fireTimer(entry.timer);
  else settle(entry, answer);
}
NativeRecv(onRecv);

// ---- arguments

function checkString(value, what) {
  if (typeof value !== 'string') {
    throw new $TypeError(`${what} must be a string, got ${value === null ? 'null' : typeof value}`);
  }
  return value;
}

function toBytes(data, what) {
  if (typeof data === 'string') return utf8Encode(data);
  if (data instanceof $ArrayBuffer || ArrayBufferIsView(data)) return asBytes(data, [0, what]);
  throw new $TypeError(`${what} must be a string, a Uint8Array or an ArrayBuffer`);
}

function option(options, name) {
  return options !== undefined && options !== null ? options[name] : undefined;
}

// ---- file system

function readFile(path) {
  return opReadFile({ path: checkString(path, 'path') }, (r) => r.data);
}

function readTextFile(path) {
  return opReadFile({ path: checkString(path, 'path') }, (r) => utf8Decode(r.data));
}

function writeFile(path, data, options) {
  return opWriteFile({
    path: checkString(path, 'path'),
    data: toBytes(data, 'data'),
    append: !!option(options, 'append'),
  }, () => undefined);
}

function readDir(path) {
  return opReadDir({ path: checkString(path, 'path') }, (r) => {
    const out = [];
    for (let i = 0; i < r.entries.length; i++) {
      const e = r.entries[i];
      arrayAppend(out, { name: e.name, isFile: e.isFile, isDirectory: e.isDir, isSymlink: e.isSymlink });
    }
    return out;
  });
}

function stat(path) {
  return opStat({ path: checkString(path, 'path') }, (r) => ({
    isFile: r.isFile,
    isDirectory: r.isDir,
    isSymlink: r.isSymlink,
    size: r.size,
    mtime: new $Date(r.mtimeMs),
    mode: r.mode,
  }));
}

function remove(path, options) {
  return opRemove({
    path: checkString(path, 'path'), recursive: !!option(options, 'recursive'),
  }, () => undefined);
}

function mkdir(path, options) {
  return opMkdir({
    path: checkString(path, 'path'), recursive: !!option(options, 'recursive'),
  }, () => undefined);
}

function rename(from, to) {
  return opRename({
    from: checkString(from, 'from'), to: checkString(to, 'to'),
  }, () => undefined);
}

function copyFile(from, to) {
  return opCopyFile({ from: checkString(from, 'from'), to: checkString(to, 'to') }, () => undefined);
}

// ---- environment, clock, randomness

function envGet(name) {
  const r = opEnvGet({ name: checkString(name, 'name') });
  return r.present ? r.value : undefined;
}

function now() {
  return opNow({}).unixMs;
}

function randomBytes(length) {
  const n = $Number(length);
  if (!NumberIsSafeInteger(n) || n < 0) throw new $RangeError('randomBytes: length must be a non-negative integer');
  return opRandomBytes({ length: n }).data;
}

function clampMs(ms) {
  const n = $Number(ms);
  return NumberIsFinite(n) && n > 0 ? n : 0;
}

function sleep(ms) {
  return opSleep({ ms: clampMs(ms) }, () => undefined);
}

// ---- timers (each armed timer is one pending Sleep call)

let nextTimerId = 1;
const timers = new $Map();

function armTimer(timer) {
  const id = nextCallId++;
  timer.callId = id;
  const answer = send('sleep', { ms: timer.ms, unref: timer.unref }, id);
  if (answer !== null) unwrap(answerOf(answer));
  MapPrototypeSet(pending, id, new Pending(undefined, undefined, undefined, timer));
}

function fireTimer(timer) {
  if (!MapPrototypeHas(timers, timer.id)) return;
  if (timer.repeat) armTimer(timer);
  else MapPrototypeDelete(timers, timer.id);
  ReflectApply(timer.fn, globalThis, timer.args);
}

class Timer {
  constructor(id, fn, args, repeat, ms, unref) {
    this.id = id;
    this.fn = fn;
    this.args = args;
    this.repeat = repeat;
    this.ms = ms;
    this.callId = 0;
    // Does not keep the run alive (AbortSignal.timeout's timer).
    this.unref = unref;
  }
}
ownKeysOnly(Timer);

function startTimer(fn, ms, args, repeat) {
  if (typeof fn !== 'function') {
    throw new $TypeError(`${repeat ? 'setInterval' : 'setTimeout'}: the callback must be a function`);
  }
  const timer = new Timer(nextTimerId++, fn, args, repeat, clampMs(ms), false);
  MapPrototypeSet(timers, timer.id, timer);
  armTimer(timer);
  return timer.id;
}

// A one-shot timer that does not keep the run alive.
function startUnrefTimer(fn, ms) {
  const timer = new Timer(nextTimerId++, fn, [], false, clampMs(ms), true);
  MapPrototypeSet(timers, timer.id, timer);
  armTimer(timer);
  return timer.id;
}

function setTimeout(fn, ms, ...args) { return startTimer(fn, ms, args, false); }
function setInterval(fn, ms, ...args) { return startTimer(fn, ms, args, true); }

function clearTimer(id) {
  const timer = MapPrototypeGet(timers, id);
  if (timer === undefined) return;
  MapPrototypeDelete(timers, id);
  MapPrototypeDelete(pending, timer.callId);
  opCancel({ callId: timer.callId });
}

// ---- network

function headerList(headers) {
  const list = [];
  if (headers === undefined || headers === null) return list;
  if (ArrayIsArray(headers)) {
    for (let i = 0; i < headers.length; i++) {
      arrayAppend(list, { name: $String(headers[i][0]), value: $String(headers[i][1]) });
    }
    return list;
  }
  const keys = ObjectKeys(headers);
  for (let i = 0; i < keys.length; i++) {
    arrayAppend(list, { name: keys[i], value: $String(headers[keys[i]]) });
  }
  return list;
}

function fetch(url, options) {
  const body = option(options, 'body');
  return opFetch({
    url: checkString(url, 'url'),
    method: option(options, 'method') === undefined ? 'GET' : $String(option(options, 'method')),
    headers: headerList(option(options, 'headers')),
    body: body === undefined || body === null ? new $Uint8Array(0) : toBytes(body, 'body'),
  }, (r) => {
    const headers = {};
    for (let i = 0; i < r.headers.length; i++) {
      defineValue(headers, StringPrototypeToLowerCase(r.headers[i].name), r.headers[i].value);
    }
    const responseBody = r.body;
    return {
      status: r.status,
      ok: r.status >= 200 && r.status < 300,
      url: r.url,
      headers,
      body: responseBody,
      text() { return $Promise.resolve(utf8Decode(responseBody)); },
      json() { return $Promise.resolve(JSONParse(utf8Decode(responseBody))); },
    };
  });
}

// ---- host channels

function hostSend(channel, data) {
  return opHostSend({
    channel: checkString(channel, 'channel'), data: toBytes(data, 'data'), replyTo: 0,
  }, () => undefined);
}

function listen(channel, listener) {
  opHostListen({ channel });
  MapPrototypeSet(hostListeners, channel, listener);
  const backlog = MapPrototypeGet(hostBacklog, channel);
  if (backlog !== undefined) {
    MapPrototypeDelete(hostBacklog, channel);
    for (let i = 0; i < backlog.length; i++) listener(backlog[i]);
  }
}

// An answer the host can no longer take: it stopped waiting (NOT_FOUND), or it was told why
// (IO: the audit log failed). Any other failure is the script's to see.
function ignoreUndeliverable(e) {
  if (e === null || typeof e !== 'object' || (e.code !== 'NOT_FOUND' && e.code !== 'IO')) throw e;
}

// Messages the host sends on `channel` call fn(data, channel). A request from the host
// (`RunHandle::request`) is answered with fn's return value (bytes or string, or a promise).
function hostOnMessage(channel, fn) {
  checkString(channel, 'channel');
  if (typeof fn !== 'function') throw new $TypeError('host.onMessage: the handler must be a function');
  listen(channel, (message) => {
    const result = ReflectApply(fn, undefined, [message.data, message.channel]);
    if (message.requestId === 0) return;
    const answer = (value) => {
      const sent = opHostSend({
        channel: message.channel,
        data: value === undefined || value === null ? new $Uint8Array(0) : toBytes(value, 'reply'),
        replyTo: message.requestId,
      }, () => undefined);
      // The script made no call it could catch here: an answer the host can no longer take
      // does not end its run.
      PromisePrototypeThen(sent, undefined, ignoreUndeliverable);
    };
    if (result instanceof $Promise) PromisePrototypeThen(result, answer);
    else answer(result);
  });
}

// ---- process

let cachedArgs;
function args() {
  if (cachedArgs === undefined) cachedArgs = ObjectFreeze(ArrayPrototypeSlice(opArgs({}).values));
  return cachedArgs;
}

function exit(code = 0) {
  const n = $Number(code);
  opExit({ code: NumberIsSafeInteger(n) ? n : 1 });
  // The host stops the script while handling `exit`; nothing below should run.
  throw new errors.Internal('exit: the host did not stop the script');
}

// ---- console

function quote(s) {
  return `'${s}'`;
}

// The library's own classes (js/web.js) show themselves through this method.
const kInspect = $Symbol('v8box.inspect');

function inspect(value, depth, seen, top) {
  switch (typeof value) {
    case 'string': return top ? value : quote(value);
    case 'number': return value === 0 && 1 / value < 0 ? '-0' : $String(value);
    case 'boolean': case 'undefined': return $String(value);
    case 'bigint': return `${BigIntPrototypeToString(value)}n`;
    case 'symbol': return SymbolPrototypeToString(value);
    case 'function': {
      const name = value.name;
      return `[Function: ${typeof name === 'string' && name !== '' ? name : '(anonymous)'}]`;
    }
  }
  if (value === null) return 'null';
  if (WeakSetPrototypeHas(seen, value)) return '[Circular]';
  const custom = value[kInspect];
  if (typeof custom === 'function') {
    return ReflectApply(custom, value, []);
  }
  if (value instanceof $Error) {
    const stack = value.stack;
    return typeof stack === 'string' ? stack : ErrorPrototypeToString(value);
  }
  if (value instanceof $Date) {
    return NumberIsFinite(DatePrototypeGetTime(value)) ? DatePrototypeToISOString(value) : 'Invalid Date';
  }
  if (value instanceof $ArrayBuffer) return `ArrayBuffer { byteLength: ${ArrayBufferPrototypeGetByteLength(value)} }`;
  if (value instanceof $RegExp) {
    try { return `/${RegExpPrototypeGetSource(value)}/${RegExpPrototypeGetFlags(value)}`; } catch { /* not a RegExp */ }
  }
  if (depth > 2) return ArrayIsArray(value) ? '[Array]' : '[Object]';
  WeakSetPrototypeAdd(seen, value);
  const parts = [];
  let open = '{', close = '}', prefix = '';
  if (ArrayBufferIsView(value) && !(value instanceof $DataView)) {
    const n = TypedArrayPrototypeGetLength(value);
    for (let i = 0; i < n && i < 100; i++) arrayAppend(parts, inspect(value[i], depth + 1, seen, false));
    if (n > 100) arrayAppend(parts, `... ${n - 100} more items`);
    return `${TypedArrayPrototypeGetSymbolToStringTag(value)}(${n}) [${ArrayPrototypeJoin(parts, ', ')}]`;
  }
  if (ArrayIsArray(value)) {
    const n = value.length;
    for (let i = 0; i < n && i < 100; i++) arrayAppend(parts, inspect(value[i], depth + 1, seen, false));
    if (n > 100) arrayAppend(parts, `... ${n - 100} more items`);
    return `[${ArrayPrototypeJoin(parts, ', ')}]`;
  }
  if (value instanceof $Map) {
    const it = MapPrototypeEntries(value);
    for (let step = MapIteratorPrototypeNext(it); !step.done; step = MapIteratorPrototypeNext(it)) {
      arrayAppend(parts, `${inspect(step.value[0], depth + 1, seen, false)} => ${inspect(step.value[1], depth + 1, seen, false)}`);
    }
    prefix = `Map(${parts.length}) `;
  } else if (value instanceof $Set) {
    const it = SetPrototypeValues(value);
    for (let step = SetIteratorPrototypeNext(it); !step.done; step = SetIteratorPrototypeNext(it)) {
      arrayAppend(parts, inspect(step.value, depth + 1, seen, false));
    }
    prefix = `Set(${parts.length}) `;
  } else {
    const keys = ObjectKeys(value);
    for (let i = 0; i < keys.length; i++) {
      arrayAppend(parts, `${keys[i]}: ${inspect(value[keys[i]], depth + 1, seen, false)}`);
    }
    const proto = ReflectGetPrototypeOf(value);
    const ctor = proto !== null && ObjectPrototypeHasOwnProperty(proto, 'constructor') ? proto.constructor : undefined;
    if (proto === null) prefix = '[Object: null prototype] ';
    else if (typeof ctor === 'function' && ctor !== $Object && typeof ctor.name === 'string' && ctor.name !== '') prefix = `${ctor.name} `;
  }
  if (parts.length === 0) return `${prefix}${open}${close}`;
  return `${prefix}${open} ${ArrayPrototypeJoin(parts, ', ')} ${close}`;
}

// `%s` as Node and Deno show it: strings as they are, other primitives as String() (bigints
// with their `n`, -0 as -0), objects inspected.
function formatString(value, seen) {
  if (typeof value === 'string') return value;
  if (typeof value === 'bigint') return `${BigIntPrototypeToString(value)}n`;
  if (typeof value === 'symbol') return SymbolPrototypeToString(value);
  if (value !== null && (typeof value === 'object' || typeof value === 'function')) return inspect(value, 1, seen, false);
  return inspect(value, 0, seen, true);
}

function formatNumber(value, integer) {
  if (typeof value === 'bigint') return `${BigIntPrototypeToString(value)}n`;
  if (typeof value === 'symbol') return 'NaN';
  if (integer) return $String(NumberParseInt(value));
  const n = $Number(value);
  return n === 0 && 1 / n < 0 ? '-0' : $String(n);
}

// console.log's arguments as one line: a first string argument may hold format specifiers
// (%s %d %i %f %o %O %c %%), each taking the next argument; the rest are inspected.
function format(args) {
  const parts = [];
  const seen = new $WeakSet();
  let next = 0;
  if (typeof args[0] === 'string' && args.length > 1) {
    const f = args[0];
    next = 1;
    let out = '';
    let last = 0;
    for (let i = 0; i < f.length - 1; i++) {
      if (StringPrototypeCharCodeAt(f, i) !== 37) continue; // '%'
      const c = f[i + 1];
      if (c === '%') {
        out += StringPrototypeSlice(f, last, i) + '%';
        last = i + 2;
        i++;
        continue;
      }
      if (next >= args.length) continue;
      let piece;
      switch (c) {
        case 's': piece = formatString(args[next], seen); break;
        case 'd': piece = formatNumber(args[next], false); break;
        case 'i': piece = formatNumber(args[next], true); break;
        case 'f': piece = typeof args[next] === 'symbol' ? 'NaN' : $String(NumberParseFloat(args[next])); break;
        case 'o': case 'O': piece = inspect(args[next], 0, seen, false); break;
        case 'c': piece = ''; break; // CSS: nothing to show in a terminal
        default: continue;
      }
      next++;
      out += StringPrototypeSlice(f, last, i) + piece;
      last = i + 2;
      i++;
    }
    arrayAppend(parts, out + StringPrototypeSlice(f, last));
  }
  for (let i = next; i < args.length; i++) arrayAppend(parts, inspect(args[i], 0, seen, true));
  return ArrayPrototypeJoin(parts, ' ');
}

function logger(level) {
  return function (...args) {
    opLog({ level, message: format(args) });
  };
}

const console = {
  log: logger('LEVEL_LOG'),
  info: logger('LEVEL_INFO'),
  debug: logger('LEVEL_DEBUG'),
  warn: logger('LEVEL_WARN'),
  error: logger('LEVEL_ERROR'),
};

// ---- stdin (with --allow-stdin)

const STDIN_CHUNK = 65536;
const SymbolAsyncIterator = $Symbol.asyncIterator;

// The next chunk of stdin, or null at its end.
function stdinChunk() {
  return opStdinRead({ maxBytes: STDIN_CHUNK }, (r) => (r.data.length === 0 ? null : r.data));
}

// Everything left on stdin, as one Uint8Array.
async function stdinRead() {
  const chunks = [];
  let total = 0;
  for (;;) {
    const c = await stdinChunk();
    if (c === null) break;
    chunks[chunks.length] = c;
    total += c.length;
  }
  const out = new $Uint8Array(total);
  let at = 0;
  for (let i = 0; i < chunks.length; i++) {
    TypedArrayPrototypeSet(out, chunks[i], at);
    at += chunks[i].length;
  }
  return out;
}

const stdin = ObjectFreeze({
  read: stdinRead,
  async text() { return utf8Decode(await stdinRead()); },
  readChunk: stdinChunk,
  [SymbolAsyncIterator]() {
    return {
      __proto__: null,
      async next() {
        const c = await stdinChunk();
        return c === null ? { done: true, value: undefined } : { done: false, value: c };
      },
      [SymbolAsyncIterator]() { return this; },
    };
  },
});

// ---- the globals

const sys = ObjectFreeze({
  readFile,
  readTextFile,
  writeFile,
  readDir,
  stat,
  remove,
  mkdir,
  rename,
  copyFile,
  env: ObjectFreeze({ get: envGet }),
  stdin,
  now,
  randomBytes,
  sleep,
  fetch,
  host: ObjectFreeze({ send: hostSend, onMessage: hostOnMessage }),
  get args() { return args(); },
  exit,
  errors: ObjectFreeze(errors),
});
ObjectFreeze(SysError);
ObjectFreeze(SysError.prototype);

ReflectDefineProperty(globalThis, 'sys', {
  __proto__: null, value: sys, writable: false, enumerable: false, configurable: false,
});
defineValue(globalThis, 'console', console, false);
defineValue(globalThis, 'setTimeout', setTimeout, false);
defineValue(globalThis, 'clearTimeout', clearTimer, false);
defineValue(globalThis, 'setInterval', setInterval, false);
defineValue(globalThis, 'clearInterval', clearTimer, false);
