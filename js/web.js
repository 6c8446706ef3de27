// The web-standard globals (DOMException, TextEncoder/TextDecoder, atob/btoa, structuredClone,
// queueMicrotask, crypto, performance, Event/EventTarget, AbortController/AbortSignal, URL and
// URLSearchParams, Headers/Request/Response/fetch), written for v8box after the WHATWG and W3C
// specifications. They are built on the `sys` library above: no new native function, and every
// builtin they use was captured first (primordials.js). Internal state lives in private class
// fields, which no script can reach or replace.

// ---- DOMException

const DOM_CODES = {
  __proto__: null,
  IndexSizeError: 1, HierarchyRequestError: 3, WrongDocumentError: 4, InvalidCharacterError: 5,
  NoModificationAllowedError: 7, NotFoundError: 8, NotSupportedError: 9, InvalidStateError: 11,
  SyntaxError: 12, InvalidModificationError: 13, NamespaceError: 14, InvalidAccessError: 15,
  TypeMismatchError: 17, SecurityError: 18, NetworkError: 19, AbortError: 20,
  URLMismatchError: 21, QuotaExceededError: 22, TimeoutError: 23, InvalidNodeTypeError: 24,
  DataCloneError: 25,
};

class DOMException extends $Error {
  #name;
  #message;
  constructor(message = '', options = 'Error') {
    message = $String(message);
    super(message);
    let name = 'Error';
    if (options !== null && typeof options === 'object') {
      if (options.name !== undefined) name = $String(options.name);
      if (options.cause !== undefined) defineValue(this, 'cause', options.cause, false);
    } else {
      name = $String(options);
    }
    this.#name = name;
    this.#message = message;
    // `message` is the prototype's getter's to give, as in browsers.
    ReflectDeleteProperty(this, 'message');
  }
  get name() { return this.#name; }
  get message() { return this.#message; }
  get code() { return DOM_CODES[this.#name] || 0; }
}
defineValue(DOMException.prototype, SymbolToStringTag, 'DOMException', false);
{
  const legacy = [
    ['INDEX_SIZE_ERR', 1], ['DOMSTRING_SIZE_ERR', 2], ['HIERARCHY_REQUEST_ERR', 3],
    ['WRONG_DOCUMENT_ERR', 4], ['INVALID_CHARACTER_ERR', 5], ['NO_DATA_ALLOWED_ERR', 6],
    ['NO_MODIFICATION_ALLOWED_ERR', 7], ['NOT_FOUND_ERR', 8], ['NOT_SUPPORTED_ERR', 9],
    ['INUSE_ATTRIBUTE_ERR', 10], ['INVALID_STATE_ERR', 11], ['SYNTAX_ERR', 12],
    ['INVALID_MODIFICATION_ERR', 13], ['NAMESPACE_ERR', 14], ['INVALID_ACCESS_ERR', 15],
    ['VALIDATION_ERR', 16], ['TYPE_MISMATCH_ERR', 17], ['SECURITY_ERR', 18], ['NETWORK_ERR', 19],
    ['ABORT_ERR', 20], ['URL_MISMATCH_ERR', 21], ['QUOTA_EXCEEDED_ERR', 22], ['TIMEOUT_ERR', 23],
    ['INVALID_NODE_TYPE_ERR', 24], ['DATA_CLONE_ERR', 25],
  ];
  for (let i = 0; i < legacy.length; i++) {
    const d = { __proto__: null, value: legacy[i][1], enumerable: true };
    ReflectDefineProperty(DOMException, legacy[i][0], d);
    ReflectDefineProperty(DOMException.prototype, legacy[i][0], d);
  }
}

function domError(message, name) {
  const e = new DOMException(message, name);
  return e;
}

// ---- conversions

// WebIDL USVString: a string with lone surrogates replaced by U+FFFD.
function usv(value) {
  return StringPrototypeToWellFormed(`${typeof value === 'symbol' ? $String(value) : value}`);
}
// WebIDL DOMString (a symbol throws, as WebIDL's ToString does).
function domString(value) {
  return `${value}`;
}

function isArrayBuffer(value) {
  if (value === null || typeof value !== 'object') return false;
  try { ArrayBufferPrototypeGetByteLength(value); return true; } catch { return false; }
}

// The bytes of a BufferSource (a view on the same memory), or undefined when it is not one.
function bufferSourceBytes(value) {
  if (isArrayBuffer(value)) return new $Uint8Array(value);
  if (ArrayBufferIsView(value)) return asBytes(value, [0, 'input']);
  if (value !== null && typeof value === 'object' && ObjectPrototypeToString(value) === '[object SharedArrayBuffer]') {
    return new $Uint8Array(value);
  }
  return undefined;
}

// ---- TextEncoder / TextDecoder (the Encoding Standard's UTF-8)

class TextEncoder {
  get encoding() { return 'utf-8'; }
  encode(input = '') {
    const bytes = utf8Encode(usv(input));
    return TypedArrayPrototypeSlice(bytes, 0);
  }
  encodeInto(source, destination) {
    const s = usv(source);
    if (!(destination instanceof $Uint8Array)) {
      throw new $TypeError("TextEncoder.encodeInto: the destination must be a Uint8Array");
    }
    const cap = TypedArrayPrototypeGetLength(destination);
    let read = 0, written = 0;
    const n = s.length;
    for (let i = 0; i < n; i++) {
      const c = StringPrototypeCodePointAt(s, i);
      const size = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
      if (written + size > cap) break;
      if (size === 1) destination[written] = c;
      else if (size === 2) {
        destination[written] = 0xc0 | (c >> 6);
        destination[written + 1] = 0x80 | (c & 63);
      } else if (size === 3) {
        destination[written] = 0xe0 | (c >> 12);
        destination[written + 1] = 0x80 | ((c >> 6) & 63);
        destination[written + 2] = 0x80 | (c & 63);
      } else {
        destination[written] = 0xf0 | (c >> 18);
        destination[written + 1] = 0x80 | ((c >> 12) & 63);
        destination[written + 2] = 0x80 | ((c >> 6) & 63);
        destination[written + 3] = 0x80 | (c & 63);
        i++;
        read++;
      }
      written += size;
      read++;
    }
    return { read, written };
  }
}
defineValue(TextEncoder.prototype, SymbolToStringTag, 'TextEncoder', false);

const UTF8_LABELS = {
  __proto__: null,
  'unicode-1-1-utf-8': true, 'unicode11utf8': true, 'unicode20utf8': true, 'utf-8': true,
  'utf8': true, 'x-unicode20utf8': true,
};

// Strips ASCII whitespace from both ends (the Encoding Standard's "get an encoding").
function trimAsciiWhitespace(s) {
  let a = 0, b = s.length;
  const ws = (c) => c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d || c === 0x20;
  while (a < b && ws(StringPrototypeCharCodeAt(s, a))) a++;
  while (b > a && ws(StringPrototypeCharCodeAt(s, b - 1))) b--;
  return StringPrototypeSlice(s, a, b);
}

const DECODE_CHUNK = 8192;
const decodeOut = new $Uint16Array(DECODE_CHUNK + 2);

// The state of a UTF-8 decoder between `stream` calls.
class Utf8State {
  constructor() {
    this.codePoint = 0;
    this.needed = 0;
    this.seen = 0;
    this.lower = 0x80;
    this.upper = 0xbf;
  }
}
ownKeysOnly(Utf8State);

// Decodes `bytes` with the Encoding Standard's UTF-8 decoder, continuing from `st`; at the
// end of the queue (`flush`) an unfinished sequence is an error. Each error is U+FFFD, or a
// TypeError when `fatal`. An invalid sequence is replaced by one U+FFFD per maximal subpart
// (a byte that cannot continue it is decoded again on its own).
function utf8DecodeWhatwg(st, bytes, flush, fatal) {
  let result = '';
  const out = decodeOut;
  let u = 0;
  let { codePoint, needed, seen, lower, upper } = st;
  const n = TypedArrayPrototypeGetLength(bytes);
  const error = () => {
    if (fatal) {
      st.codePoint = 0; st.needed = 0; st.seen = 0; st.lower = 0x80; st.upper = 0xbf;
      throw new $TypeError('The encoded data was not valid for encoding utf-8');
    }
    out[u++] = 0xfffd;
  };
  for (let i = 0; i < n;) {
    if (u >= DECODE_CHUNK) {
      result += ReflectApply(StringFromCharCode, undefined, TypedArrayPrototypeSubarray(out, 0, u));
      u = 0;
    }
    const b = bytes[i];
    if (needed === 0) {
      i++;
      if (b < 0x80) { out[u++] = b; continue; }
      if (b >= 0xc2 && b <= 0xdf) { needed = 1; codePoint = b & 0x1f; }
      else if (b >= 0xe0 && b <= 0xef) {
        if (b === 0xe0) lower = 0xa0;
        if (b === 0xed) upper = 0x9f;
        needed = 2; codePoint = b & 0xf;
      } else if (b >= 0xf0 && b <= 0xf4) {
        if (b === 0xf0) lower = 0x90;
        if (b === 0xf4) upper = 0x8f;
        needed = 3; codePoint = b & 0x7;
      } else error();
      continue;
    }
    if (b < lower || b > upper) {
      // Not consumed: it is decoded again as the start of what follows.
      codePoint = 0; needed = 0; seen = 0; lower = 0x80; upper = 0xbf;
      error();
      continue;
    }
    i++;
    lower = 0x80; upper = 0xbf;
    codePoint = (codePoint << 6) | (b & 0x3f);
    seen++;
    if (seen !== needed) continue;
    if (codePoint > 0xffff) {
      const c = codePoint - 0x10000;
      out[u++] = 0xd800 + (c >> 10);
      out[u++] = 0xdc00 + (c & 1023);
    } else {
      out[u++] = codePoint;
    }
    codePoint = 0; needed = 0; seen = 0;
  }
  if (flush && needed !== 0) {
    codePoint = 0; needed = 0; seen = 0; lower = 0x80; upper = 0xbf;
    error();
  }
  st.codePoint = codePoint; st.needed = needed; st.seen = seen; st.lower = lower; st.upper = upper;
  if (u > 0) result += ReflectApply(StringFromCharCode, undefined, TypedArrayPrototypeSubarray(out, 0, u));
  return result;
}

class TextDecoder {
  #fatal;
  #ignoreBOM;
  #state = new Utf8State();
  #streaming = false;
  #bomSeen = false;
  constructor(label = 'utf-8', options = undefined) {
    const name = StringPrototypeToLowerCase(trimAsciiWhitespace(domString(label)));
    if (UTF8_LABELS[name] !== true) {
      throw new $RangeError(`TextDecoder: the encoding label provided ('${label}') is not supported (v8box decodes UTF-8)`);
    }
    this.#fatal = !!option(options, 'fatal');
    this.#ignoreBOM = !!option(options, 'ignoreBOM');
  }
  get encoding() { return 'utf-8'; }
  get fatal() { return this.#fatal; }
  get ignoreBOM() { return this.#ignoreBOM; }
  decode(input = undefined, options = undefined) {
    let bytes;
    if (input === undefined) bytes = new $Uint8Array(0);
    else {
      bytes = bufferSourceBytes(input);
      if (bytes === undefined) {
        throw new $TypeError('TextDecoder.decode: the input must be an ArrayBuffer or an ArrayBufferView');
      }
    }
    if (!this.#streaming) {
      this.#state = new Utf8State();
      this.#bomSeen = false;
    }
    this.#streaming = !!option(options, 'stream');
    let s = utf8DecodeWhatwg(this.#state, bytes, !this.#streaming, this.#fatal);
    if (!this.#ignoreBOM && !this.#bomSeen && s.length > 0) {
      this.#bomSeen = true;
      if (StringPrototypeCharCodeAt(s, 0) === 0xfeff) s = StringPrototypeSlice(s, 1);
    }
    return s;
  }
}
defineValue(TextDecoder.prototype, SymbolToStringTag, 'TextDecoder', false);

// ---- atob / btoa (forgiving-base64)

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const B64_VALUE = new $Uint8Array(128);
TypedArrayPrototypeFill(B64_VALUE, 255);
for (let i = 0; i < 64; i++) B64_VALUE[StringPrototypeCharCodeAt(B64, i)] = i;

// A string of Latin-1 units from `codes` (a Uint16Array), in chunks.
function stringOfUnits(units, n) {
  let s = '';
  for (let i = 0; i < n; i += DECODE_CHUNK) {
    s += ReflectApply(StringFromCharCode, undefined, TypedArrayPrototypeSubarray(units, i, MathMin(n, i + DECODE_CHUNK)));
  }
  return s;
}

function btoa(data) {
  if (arguments.length === 0) throw new $TypeError("btoa: 1 argument required, but only 0 present");
  const s = domString(data);
  const n = s.length;
  const out = new $Uint16Array(((n + 2) / 3 | 0) * 4);
  let o = 0;
  const unit = (i) => {
    const c = StringPrototypeCharCodeAt(s, i);
    if (c > 0xff) throw domError('btoa: the string contains characters outside of the Latin1 range', 'InvalidCharacterError');
    return c;
  };
  let i = 0;
  for (; i + 2 < n; i += 3) {
    const v = (unit(i) << 16) | (unit(i + 1) << 8) | unit(i + 2);
    out[o++] = StringPrototypeCharCodeAt(B64, v >> 18);
    out[o++] = StringPrototypeCharCodeAt(B64, (v >> 12) & 63);
    out[o++] = StringPrototypeCharCodeAt(B64, (v >> 6) & 63);
    out[o++] = StringPrototypeCharCodeAt(B64, v & 63);
  }
  if (n - i === 1) {
    const v = unit(i) << 16;
    out[o++] = StringPrototypeCharCodeAt(B64, v >> 18);
    out[o++] = StringPrototypeCharCodeAt(B64, (v >> 12) & 63);
    out[o++] = 61; out[o++] = 61;
  } else if (n - i === 2) {
    const v = (unit(i) << 16) | (unit(i + 1) << 8);
    out[o++] = StringPrototypeCharCodeAt(B64, v >> 18);
    out[o++] = StringPrototypeCharCodeAt(B64, (v >> 12) & 63);
    out[o++] = StringPrototypeCharCodeAt(B64, (v >> 6) & 63);
    out[o++] = 61;
  }
  return stringOfUnits(out, o);
}

// Forgiving-base64 decode: the bytes, or undefined for a failure.
function base64Decode(s) {
  const n = s.length;
  const values = new $Uint8Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const c = StringPrototypeCharCodeAt(s, i);
    if (c === 0x09 || c === 0x0a || c === 0x0c || c === 0x0d || c === 0x20) continue;
    values[m++] = c < 128 ? B64_VALUE[c] : 255;
    if (c === 61) values[m - 1] = 254; // '='
  }
  if (m % 4 === 0 && m > 0 && values[m - 1] === 254) {
    m--;
    if (values[m - 1] === 254) m--;
  }
  if (m % 4 === 1) return undefined;
  for (let i = 0; i < m; i++) if (values[i] >= 64) return undefined;
  const out = new $Uint8Array((m * 3) >> 2);
  let o = 0, i = 0;
  for (; i + 3 < m; i += 4) {
    const v = (values[i] << 18) | (values[i + 1] << 12) | (values[i + 2] << 6) | values[i + 3];
    out[o++] = v >> 16; out[o++] = (v >> 8) & 255; out[o++] = v & 255;
  }
  if (m - i === 2) {
    out[o++] = (values[i] << 2) | (values[i + 1] >> 4);
  } else if (m - i === 3) {
    const v = (values[i] << 12) | (values[i + 1] << 6) | values[i + 2];
    out[o++] = v >> 10; out[o++] = (v >> 2) & 255;
  }
  return out;
}

function atob(data) {
  if (arguments.length === 0) throw new $TypeError("atob: 1 argument required, but only 0 present");
  const bytes = base64Decode(domString(data));
  if (bytes === undefined) throw domError('atob: the string to be decoded is not correctly encoded', 'InvalidCharacterError');
  const n = TypedArrayPrototypeGetLength(bytes);
  const units = new $Uint16Array(n);
  TypedArrayPrototypeSet(units, bytes);
  return stringOfUnits(units, n);
}

// ---- structuredClone

const TYPED_ARRAYS = {
  __proto__: null,
  Int8Array: $Int8Array, Uint8Array: $Uint8Array, Uint8ClampedArray: $Uint8ClampedArray,
  Int16Array: $Int16Array, Uint16Array: $Uint16Array, Int32Array: $Int32Array,
  Uint32Array: $Uint32Array, Float32Array: $Float32Array, Float64Array: $Float64Array,
  BigInt64Array: $BigInt64Array, BigUint64Array: $BigUint64Array,
};
if ($Float16Array !== undefined) TYPED_ARRAYS.Float16Array = $Float16Array;

const ERROR_TYPES = {
  __proto__: null,
  Error: $Error, EvalError: $EvalError, RangeError: $RangeError, ReferenceError: $ReferenceError,
  SyntaxError: $SyntaxError, TypeError: $TypeError, URIError: $URIError,
};

function brand(fn, value) {
  try { fn(value); return true; } catch { return false; }
}

function describe(value) {
  if (typeof value === 'symbol') return SymbolPrototypeToString(value);
  if (typeof value === 'function') {
    try { return FunctionPrototypeToString(value); } catch { return 'function'; }
  }
  return ObjectPrototypeToString(value);
}

function notCloneable(value) {
  return domError(`${describe(value)} could not be cloned.`, 'DataCloneError');
}

function cloneValue(value, memory) {
  if (typeof value === 'symbol' || typeof value === 'function') throw notCloneable(value);
  if (value === null || typeof value !== 'object') return value;
  const known = MapPrototypeGet(memory, value);
  if (known !== undefined) return known;
  let copy;
  const keep = (c) => { MapPrototypeSet(memory, value, c); return c; };
  if (ArrayIsArray(value)) {
    copy = keep(new $Array(value.length));
    const keys = ObjectKeys(value);
    for (let i = 0; i < keys.length; i++) defineValue(copy, keys[i], cloneValue(value[keys[i]], memory));
    return copy;
  }
  if (brand(DatePrototypeGetTime, value)) return keep(new $Date(DatePrototypeGetTime(value)));
  if (brand(RegExpPrototypeGetSource, value) && value !== $RegExp.prototype) {
    return keep(new $RegExp(RegExpPrototypeGetSource(value), RegExpPrototypeGetFlags(value)));
  }
  if (isArrayBuffer(value)) return keep(ArrayBufferPrototypeSlice(value, 0));
  const tag = TypedArrayPrototypeGetSymbolToStringTag(value);
  if (tag !== undefined) {
    const buffer = cloneValue(TypedArrayPrototypeGetBuffer(value), memory);
    const C = TYPED_ARRAYS[tag];
    return keep(new C(buffer, TypedArrayPrototypeGetByteOffset(value), TypedArrayPrototypeGetLength(value)));
  }
  if (brand(DataViewPrototypeGetByteLength, value)) {
    const buffer = cloneValue(DataViewPrototypeGetBuffer(value), memory);
    return keep(new $DataView(buffer, DataViewPrototypeGetByteOffset(value), DataViewPrototypeGetByteLength(value)));
  }
  if (brand(MapPrototypeGetSize, value)) {
    copy = keep(new $Map());
    const entries = [];
    const it = MapPrototypeEntries(value);
    for (let s = MapIteratorPrototypeNext(it); !s.done; s = MapIteratorPrototypeNext(it)) arrayAppend(entries, s.value);
    for (let i = 0; i < entries.length; i++) {
      MapPrototypeSet(copy, cloneValue(entries[i][0], memory), cloneValue(entries[i][1], memory));
    }
    return copy;
  }
  if (brand(SetPrototypeGetSize, value)) {
    copy = keep(new $Set());
    const items = [];
    const it = SetPrototypeValues(value);
    for (let s = SetIteratorPrototypeNext(it); !s.done; s = SetIteratorPrototypeNext(it)) arrayAppend(items, s.value);
    for (let i = 0; i < items.length; i++) SetPrototypeAdd(copy, cloneValue(items[i], memory));
    return copy;
  }
  if (brand(BooleanPrototypeValueOf, value)) return keep(new $Boolean(BooleanPrototypeValueOf(value)));
  if (brand(NumberPrototypeValueOf, value)) return keep(new $Number(NumberPrototypeValueOf(value)));
  if (brand(StringPrototypeValueOf, value)) return keep(new $String(StringPrototypeValueOf(value)));
  if (brand(BigIntPrototypeValueOf, value)) return keep($Object(BigIntPrototypeValueOf(value)));
  if (value instanceof $Error) {
    const name = value.name;
    const C = (typeof name === 'string' && ERROR_TYPES[name]) || $Error;
    const message = ObjectGetOwnPropertyDescriptor(value, 'message');
    copy = keep(message === undefined ? new C() : new C($String(value.message)));
    const stack = value.stack;
    if (typeof stack === 'string') defineValue(copy, 'stack', stack, false);
    if (ObjectGetOwnPropertyDescriptor(value, 'cause') !== undefined) {
      defineValue(copy, 'cause', cloneValue(value.cause, memory), false);
    }
    return copy;
  }
  if (value instanceof $Promise || value instanceof $WeakMap || value instanceof $WeakSet ||
      value instanceof EventTarget || value instanceof URL || value instanceof Headers) {
    throw notCloneable(value);
  }
  copy = keep({});
  const keys = ObjectKeys(value);
  for (let i = 0; i < keys.length; i++) defineValue(copy, keys[i], cloneValue(value[keys[i]], memory));
  return copy;
}

function structuredClone(value, options = undefined) {
  if (arguments.length === 0) throw new $TypeError('structuredClone: 1 argument required, but only 0 present');
  const transfer = option(options, 'transfer');
  if (transfer !== undefined && transfer !== null && transfer.length > 0) {
    throw domError('structuredClone: transferring is not supported by v8box', 'DataCloneError');
  }
  return cloneValue(value, new $Map());
}

// ---- queueMicrotask

const resolvedPromise = PromiseResolve(undefined);
function queueMicrotask(callback) {
  if (typeof callback !== 'function') throw new $TypeError('queueMicrotask: the callback must be a function');
  // An exception the callback throws is reported as an uncaught error of the run.
  PromisePrototypeThen(resolvedPromise, () => { ReflectApply(callback, undefined, []); });
}

// ---- crypto

const INTEGER_ARRAYS = {
  __proto__: null,
  Int8Array: true, Uint8Array: true, Uint8ClampedArray: true, Int16Array: true, Uint16Array: true,
  Int32Array: true, Uint32Array: true, BigInt64Array: true, BigUint64Array: true,
};

function getRandomValues(array) {
  const tag = ArrayBufferIsView(array) ? TypedArrayPrototypeGetSymbolToStringTag(array) : undefined;
  if (tag === undefined) {
    throw new $TypeError('crypto.getRandomValues: the argument must be an integer typed array');
  }
  if (INTEGER_ARRAYS[tag] !== true) {
    throw domError(`crypto.getRandomValues: a ${tag} cannot be filled (an integer typed array is needed)`, 'TypeMismatchError');
  }
  const n = TypedArrayPrototypeGetByteLength(array);
  if (n > 65536) {
    throw domError(`crypto.getRandomValues: the ArrayBufferView's byte length (${n}) exceeds the number of bytes of entropy available via this API (65536)`, 'QuotaExceededError');
  }
  if (n > 0) {
    TypedArrayPrototypeSet(asBytes(array, [0, 'array']), opRandomBytes({ length: n }).data);
  }
  return array;
}

const HEX = [];
for (let i = 0; i < 256; i++) arrayAppend(HEX, StringPrototypePadStart(NumberPrototypeToString(i, 16), 2, '0'));

function randomUUID() {
  const b = opRandomBytes({ length: 16 }).data;
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  let s = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) s += '-';
    s += HEX[b[i]];
  }
  return s;
}

const INTERNAL = $Symbol('v8box.internal');

class Crypto {
  constructor(key) {
    if (key !== INTERNAL) throw new $TypeError('Illegal constructor');
  }
  getRandomValues(array) { return getRandomValues(array); }
  randomUUID() { return randomUUID(); }
}
defineValue(Crypto.prototype, SymbolToStringTag, 'Crypto', false);

// ---- performance

let timeOrigin;
function clock() {
  const t = opNow({});
  // The run's start on the wall clock, read once: performance.now() counts from it.
  if (timeOrigin === undefined) timeOrigin = t.unixMs - t.monotonicMs;
  return t;
}
class Performance {
  constructor(key) {
    if (key !== INTERNAL) throw new $TypeError('Illegal constructor');
  }
  now() { return clock().monotonicMs; }
  get timeOrigin() {
    if (timeOrigin === undefined) clock();
    return timeOrigin;
  }
  toJSON() { return { timeOrigin: this.timeOrigin }; }
}
defineValue(Performance.prototype, SymbolToStringTag, 'Performance', false);

// ---- Event / EventTarget (the DOM Standard, for targets outside any tree)

class Event {
  #type;
  #bubbles;
  #cancelable;
  #composed;
  #timeStamp;
  #canceled = false;
  #stop = false;
  #stopImmediate = false;
  #dispatching = false;
  #inPassive = false;
  #target = null;
  #currentTarget = null;
  #phase = 0;
  constructor(type, init = undefined) {
    if (arguments.length === 0) throw new $TypeError("Event: 1 argument required, but only 0 present");
    this.#type = domString(type);
    this.#bubbles = !!option(init, 'bubbles');
    this.#cancelable = !!option(init, 'cancelable');
    this.#composed = !!option(init, 'composed');
    this.#timeStamp = timeOrigin === undefined ? 0 : clock().monotonicMs;
  }
  get type() { return this.#type; }
  get bubbles() { return this.#bubbles; }
  get cancelable() { return this.#cancelable; }
  get composed() { return this.#composed; }
  get target() { return this.#target; }
  get srcElement() { return this.#target; }
  get currentTarget() { return this.#currentTarget; }
  get eventPhase() { return this.#phase; }
  get timeStamp() { return this.#timeStamp; }
  get isTrusted() { return false; }
  get defaultPrevented() { return this.#canceled; }
  get returnValue() { return !this.#canceled; }
  set returnValue(v) { if (!v) this.preventDefault(); }
  get cancelBubble() { return this.#stop; }
  set cancelBubble(v) { if (v) this.#stop = true; }
  composedPath() { return this.#dispatching && this.#target !== null ? [this.#target] : []; }
  preventDefault() {
    if (this.#cancelable && !this.#inPassive) this.#canceled = true;
  }
  stopPropagation() { this.#stop = true; }
  stopImmediatePropagation() { this.#stop = true; this.#stopImmediate = true; }
  static {
    // Used by EventTarget's dispatch, which the DOM Standard lets reach an event's flags.
    eventBeginDispatch = (event, target) => {
      if (event.#dispatching) throw domError('dispatchEvent: the event is already being dispatched', 'InvalidStateError');
      event.#dispatching = true;
      event.#target = target;
      event.#currentTarget = target;
      event.#phase = 2;
      event.#stop = false;
      event.#stopImmediate = false;
    };
    eventEndDispatch = (event) => {
      event.#dispatching = false;
      event.#currentTarget = null;
      event.#phase = 0;
      event.#stop = false;
      event.#stopImmediate = false;
      event.#inPassive = false;
      return !event.#canceled;
    };
    eventStopped = (event) => event.#stopImmediate;
    eventSetPassive = (event, passive) => { event.#inPassive = passive; };
  }
}
var eventBeginDispatch, eventEndDispatch, eventStopped, eventSetPassive;
{
  const phases = [['NONE', 0], ['CAPTURING_PHASE', 1], ['AT_TARGET', 2], ['BUBBLING_PHASE', 3]];
  for (let i = 0; i < phases.length; i++) {
    const d = { __proto__: null, value: phases[i][1], enumerable: true };
    ReflectDefineProperty(Event, phases[i][0], d);
    ReflectDefineProperty(Event.prototype, phases[i][0], d);
  }
}
defineValue(Event.prototype, SymbolToStringTag, 'Event', false);

class Listener {
  constructor(callback, capture, once, passive) {
    this.callback = callback;
    this.capture = capture;
    this.once = once;
    this.passive = passive;
    this.removed = false;
  }
}
ownKeysOnly(Listener);

function flattenOptions(options) {
  if (typeof options === 'boolean') return { capture: options, once: false, passive: false, signal: undefined };
  if (options === null || typeof options !== 'object') return { capture: false, once: false, passive: false, signal: undefined };
  return {
    capture: !!options.capture,
    once: !!options.once,
    passive: !!options.passive,
    signal: options.signal,
  };
}

// Reports an exception a listener threw without stopping the dispatch: it ends the run as an
// uncaught error (as in Deno), after the other listeners ran.
function reportException(e) {
  PromisePrototypeThen(resolvedPromise, () => { throw e; });
}

class EventTarget {
  #listeners = new $Map();
  addEventListener(type, callback, options = undefined) {
    if (arguments.length < 2) throw new $TypeError('addEventListener: 2 arguments required');
    type = domString(type);
    const o = flattenOptions(options);
    if (callback === null || callback === undefined) return;
    if (typeof callback !== 'function' && typeof callback !== 'object') {
      throw new $TypeError('addEventListener: the listener must be a function or an object with handleEvent');
    }
    if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
      throw new $TypeError("addEventListener: the 'signal' option must be an AbortSignal");
    }
    if (o.signal !== undefined && o.signal.aborted) return;
    let list = MapPrototypeGet(this.#listeners, type);
    if (list === undefined) {
      list = [];
      MapPrototypeSet(this.#listeners, type, list);
    }
    for (let i = 0; i < list.length; i++) {
      if (list[i].callback === callback && list[i].capture === o.capture) return;
    }
    const l = new Listener(callback, o.capture, o.once, o.passive);
    arrayAppend(list, l);
    if (o.signal !== undefined) {
      signalAddAlgorithm(o.signal, () => removeListener(this, type, l));
    }
  }
  removeEventListener(type, callback, options = undefined) {
    type = domString(type);
    const capture = flattenOptions(options).capture;
    const list = MapPrototypeGet(this.#listeners, type);
    if (list === undefined) return;
    for (let i = 0; i < list.length; i++) {
      if (list[i].callback === callback && list[i].capture === capture) {
        removeListener(this, type, list[i]);
        return;
      }
    }
  }
  dispatchEvent(event) {
    if (!(event instanceof Event)) throw new $TypeError("dispatchEvent: the argument must be an Event");
    eventBeginDispatch(event, this);
    try {
      const list = MapPrototypeGet(this.#listeners, event.type);
      if (list !== undefined) {
        const copy = ArrayPrototypeSlice(list);
        // At the target, capturing listeners run first, then the others (each in order).
        for (let pass = 0; pass < 2; pass++) {
          for (let i = 0; i < copy.length; i++) {
            const l = copy[i];
            if (l.removed || l.capture !== (pass === 0)) continue;
            if (l.once) removeListener(this, event.type, l);
            eventSetPassive(event, l.passive);
            try {
              if (typeof l.callback === 'function') ReflectApply(l.callback, this, [event]);
              else {
                const handle = l.callback.handleEvent;
                if (typeof handle !== 'function') throw new $TypeError("the listener's handleEvent is not a function");
                ReflectApply(handle, l.callback, [event]);
              }
            } catch (e) {
              reportException(e);
            }
            eventSetPassive(event, false);
            if (eventStopped(event)) break;
          }
          if (eventStopped(event)) break;
        }
      }
    } finally {
      return eventEndDispatch(event);
    }
  }
  static {
    removeListener = (target, type, l) => {
      l.removed = true;
      const list = MapPrototypeGet(target.#listeners, type);
      if (list === undefined) return;
      const i = ArrayPrototypeIndexOf(list, l);
      if (i >= 0) ArrayPrototypeSplice(list, i, 1);
    };
  }
}
var removeListener;
defineValue(EventTarget.prototype, SymbolToStringTag, 'EventTarget', false);

// `target.on<type>`: an event handler, a listener registered where it was first set.
function defineEventHandler(proto, type) {
  const handlers = new $WeakMap();
  ReflectDefineProperty(proto, `on${type}`, {
    __proto__: null,
    configurable: true,
    enumerable: true,
    get() {
      const h = WeakMapPrototypeGet(handlers, this);
      return h === undefined ? null : h.fn;
    },
    set(fn) {
      let h = WeakMapPrototypeGet(handlers, this);
      if (h === undefined) {
        h = { __proto__: null, fn: null };
        WeakMapPrototypeSet(handlers, this, h);
        const listener = function (event) {
          if (typeof h.fn === 'function') {
            const r = ReflectApply(h.fn, this, [event]);
            if (r === false) event.preventDefault();
          }
        };
        ReflectApply(EventTarget.prototype.addEventListener, this, [type, listener]);
      }
      h.fn = typeof fn === 'function' ? fn : null;
    },
  });
}

// ---- AbortController / AbortSignal

class AbortSignal extends EventTarget {
  #aborted = false;
  #reason = undefined;
  #algorithms = [];
  constructor(key) {
    if (key !== INTERNAL) throw new $TypeError('Illegal constructor');
    super();
  }
  get aborted() { return this.#aborted; }
  get reason() { return this.#reason; }
  throwIfAborted() {
    if (this.#aborted) throw this.#reason;
  }
  static abort(reason = undefined) {
    const s = new AbortSignal(INTERNAL);
    s.#aborted = true;
    s.#reason = reason === undefined ? domError('signal is aborted without reason', 'AbortError') : reason;
    return s;
  }
  static timeout(ms) {
    const n = $Number(ms);
    if (!NumberIsFinite(n) || n < 0) throw new $TypeError('AbortSignal.timeout: the delay must be a non-negative number');
    const s = new AbortSignal(INTERNAL);
    // The timer does not keep the run alive (as in browsers and Deno).
    startUnrefTimer(() => signalAbort(s, domError('signal timed out', 'TimeoutError')), n);
    return s;
  }
  static any(signals) {
    const s = new AbortSignal(INTERNAL);
    const list = [];
    for (const signal of signals) {
      if (!(signal instanceof AbortSignal)) throw new $TypeError('AbortSignal.any: every item must be an AbortSignal');
      arrayAppend(list, signal);
    }
    for (let i = 0; i < list.length; i++) {
      if (list[i].#aborted) {
        s.#aborted = true;
        s.#reason = list[i].#reason;
        return s;
      }
    }
    for (let i = 0; i < list.length; i++) {
      signalAddAlgorithm(list[i], () => signalAbort(s, list[i].#reason));
    }
    return s;
  }
  static {
    signalAbort = (signal, reason) => {
      if (signal.#aborted) return;
      signal.#aborted = true;
      signal.#reason = reason === undefined ? domError('signal is aborted without reason', 'AbortError') : reason;
      const algorithms = signal.#algorithms;
      signal.#algorithms = [];
      for (let i = 0; i < algorithms.length; i++) {
        try { algorithms[i](); } catch (e) { reportException(e); }
      }
      signal.dispatchEvent(new Event('abort'));
    };
    signalAddAlgorithm = (signal, fn) => {
      if (!signal.#aborted) arrayAppend(signal.#algorithms, fn);
    };
  }
}
var signalAbort, signalAddAlgorithm;
defineEventHandler(AbortSignal.prototype, 'abort');
defineValue(AbortSignal.prototype, SymbolToStringTag, 'AbortSignal', false);

class AbortController {
  #signal = new AbortSignal(INTERNAL);
  get signal() { return this.#signal; }
  abort(reason = undefined) { signalAbort(this.#signal, reason); }
}
defineValue(AbortController.prototype, SymbolToStringTag, 'AbortController', false);

// ---- URLSearchParams (application/x-www-form-urlencoded, the URL Standard)

function hexValue(c) {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

// Percent-decodes `s` (with '+' as a space) and decodes the bytes as UTF-8 with replacement.
function formDecode(s) {
  const bytes = utf8Encode(s);
  const n = TypedArrayPrototypeGetLength(bytes);
  let o = 0;
  for (let i = 0; i < n; i++) {
    let b = bytes[i];
    if (b === 0x2b) b = 0x20;
    else if (b === 0x25 && i + 2 < n) {
      const h = hexValue(bytes[i + 1]), l = hexValue(bytes[i + 2]);
      if (h >= 0 && l >= 0) { b = (h << 4) | l; i += 2; }
    }
    bytes[o++] = b;
  }
  return utf8DecodeWhatwg(new Utf8State(), TypedArrayPrototypeSubarray(bytes, 0, o), true, false);
}

function formParse(input) {
  const list = [];
  const n = input.length;
  let start = 0;
  while (start <= n) {
    let end = StringPrototypeIndexOf(input, '&', start);
    if (end < 0) end = n;
    if (end > start) {
      const part = StringPrototypeSlice(input, start, end);
      const eq = StringPrototypeIndexOf(part, '=');
      const name = eq < 0 ? part : StringPrototypeSlice(part, 0, eq);
      const value = eq < 0 ? '' : StringPrototypeSlice(part, eq + 1);
      arrayAppend(list, [formDecode(name), formDecode(value)]);
    }
    start = end + 1;
  }
  return list;
}

const HEX_UPPER = '0123456789ABCDEF';
function formEncode(s) {
  const bytes = utf8Encode(s);
  const n = TypedArrayPrototypeGetLength(bytes);
  let out = '';
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a) ||
        b === 0x2a || b === 0x2d || b === 0x2e || b === 0x5f) {
      out += StringFromCharCode(b);
    } else if (b === 0x20) out += '+';
    else out += `%${HEX_UPPER[b >> 4]}${HEX_UPPER[b & 15]}`;
  }
  return out;
}

function formSerialize(list) {
  let out = '';
  for (let i = 0; i < list.length; i++) {
    if (i > 0) out += '&';
    out += `${formEncode(list[i][0])}=${formEncode(list[i][1])}`;
  }
  return out;
}

// Items of an iterable, through its own iterator (a sequence in WebIDL).
function sequence(iterable, what) {
  const method = iterable[SymbolIterator];
  if (typeof method !== 'function') throw new $TypeError(`${what}: the value is not iterable`);
  const it = ReflectApply(method, iterable, []);
  const next = it.next;
  const out = [];
  for (;;) {
    const step = ReflectApply(next, it, []);
    if (step === null || typeof step !== 'object') throw new $TypeError(`${what}: the iterator's result is not an object`);
    if (step.done) return out;
    arrayAppend(out, step.value);
  }
}

// An iterator over a live list (the WebIDL pair iterator), made by `fn(index)`.
class ListIterator {
  #source;
  #kind;
  #index = 0;
  constructor(source, kind) {
    this.#source = source;
    this.#kind = kind;
  }
  next() {
    const list = this.#source();
    if (this.#index >= list.length) return { value: undefined, done: true };
    const pair = list[this.#index++];
    const kind = this.#kind;
    return { value: kind === 'key' ? pair[0] : kind === 'value' ? pair[1] : [pair[0], pair[1]], done: false };
  }
  [SymbolIterator]() { return this; }
}
defineValue(ListIterator.prototype, SymbolToStringTag, 'Iterator', false);

class URLSearchParams {
  #list = [];
  #url = null;
  constructor(init = undefined) {
    if (init === undefined || init === null) return;
    if (typeof init === 'object' || typeof init === 'function') {
      if (init instanceof URLSearchParams) {
        const other = init.#list;
        for (let i = 0; i < other.length; i++) arrayAppend(this.#list, [other[i][0], other[i][1]]);
        return;
      }
      if (typeof init[SymbolIterator] === 'function') {
        const pairs = sequence(init, 'URLSearchParams');
        for (let i = 0; i < pairs.length; i++) {
          const pair = sequence(pairs[i], 'URLSearchParams');
          if (pair.length !== 2) throw new $TypeError('URLSearchParams: each pair must have exactly two items');
          arrayAppend(this.#list, [usv(pair[0]), usv(pair[1])]);
        }
        return;
      }
      const keys = ReflectOwnKeys(init);
      for (let i = 0; i < keys.length; i++) {
        const k = keys[i];
        const d = ObjectGetOwnPropertyDescriptor(init, k);
        if (d === undefined || !d.enumerable || typeof k === 'symbol') continue;
        arrayAppend(this.#list, [usv(k), usv(init[k])]);
      }
      return;
    }
    let s = usv(init);
    if (StringPrototypeCharCodeAt(s, 0) === 0x3f) s = StringPrototypeSlice(s, 1);
    this.#list = formParse(s);
  }
  get size() { return this.#list.length; }
  append(name, value) {
    arrayAppend(this.#list, [usv(name), usv(value)]);
    this.#update();
  }
  delete(name, value = undefined) {
    name = usv(name);
    if (value !== undefined) value = usv(value);
    const kept = [];
    for (let i = 0; i < this.#list.length; i++) {
      const p = this.#list[i];
      if (p[0] === name && (value === undefined || p[1] === value)) continue;
      arrayAppend(kept, p);
    }
    this.#list = kept;
    this.#update();
  }
  get(name) {
    name = usv(name);
    for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === name) return this.#list[i][1];
    return null;
  }
  getAll(name) {
    name = usv(name);
    const out = [];
    for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === name) arrayAppend(out, this.#list[i][1]);
    return out;
  }
  has(name, value = undefined) {
    name = usv(name);
    if (value !== undefined) value = usv(value);
    for (let i = 0; i < this.#list.length; i++) {
      const p = this.#list[i];
      if (p[0] === name && (value === undefined || p[1] === value)) return true;
    }
    return false;
  }
  set(name, value) {
    name = usv(name);
    value = usv(value);
    const kept = [];
    let found = false;
    for (let i = 0; i < this.#list.length; i++) {
      const p = this.#list[i];
      if (p[0] !== name) arrayAppend(kept, p);
      else if (!found) { found = true; arrayAppend(kept, [name, value]); }
    }
    if (!found) arrayAppend(kept, [name, value]);
    this.#list = kept;
    this.#update();
  }
  sort() {
    // Stable, by UTF-16 code units of the names.
    ArrayPrototypeSort(this.#list, (a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    this.#update();
  }
  forEach(callback, thisArg = undefined) {
    if (typeof callback !== 'function') throw new $TypeError('URLSearchParams.forEach: the callback must be a function');
    for (let i = 0; i < this.#list.length; i++) {
      ReflectApply(callback, thisArg, [this.#list[i][1], this.#list[i][0], this]);
    }
  }
  keys() { return new ListIterator(() => this.#list, 'key'); }
  values() { return new ListIterator(() => this.#list, 'value'); }
  entries() { return new ListIterator(() => this.#list, 'entry'); }
  [SymbolIterator]() { return this.entries(); }
  toString() { return formSerialize(this.#list); }
  #update() {
    if (this.#url !== null) urlSetQuery(this.#url, formSerialize(this.#list));
  }
  static {
    paramsLink = (params, url, query) => {
      params.#url = url;
      params.#list = formParse(query);
    };
    paramsReparse = (params, query) => { params.#list = formParse(query); };
    paramsList = (params) => params.#list;
  }
}
var paramsLink, paramsReparse, paramsList;
defineValue(URLSearchParams.prototype, SymbolToStringTag, 'URLSearchParams', false);

// ---- URL (parsed by the host's `url` crate: the pure, unaudited `url` operation)

function urlCall(input, base, setter, value) {
  return opUrl({
    input, base: base === undefined ? '' : base, hasBase: base !== undefined, setter, value,
  });
}

class URL {
  #r;
  #params = null;
  constructor(url, base = undefined) {
    if (arguments.length === 0) throw new $TypeError("URL: 1 argument required, but only 0 present");
    const input = usv(url);
    const b = base === undefined ? undefined : usv(base);
    const r = urlCall(input, b, '', '');
    if (!r.valid) {
      throw new $TypeError(b === undefined ? `Invalid URL: '${input}'` : `Invalid URL: '${input}' with base '${b}'`);
    }
    this.#r = r;
  }
  static canParse(url, base = undefined) {
    return urlCall(usv(url), base === undefined ? undefined : usv(base), '', '').valid;
  }
  static parse(url, base = undefined) {
    try { return new URL(url, base); } catch { return null; }
  }
  #set(setter, value) {
    const r = urlCall(this.#r.href, undefined, setter, usv(value));
    if (!r.valid) {
      if (setter === 'href') throw new $TypeError(`Invalid URL: '${usv(value)}'`);
      return;
    }
    this.#r = r;
    if (this.#params !== null && (setter === 'href' || setter === 'search')) {
      paramsReparse(this.#params, StringPrototypeSlice(r.search, 1));
    }
  }
  get href() { return this.#r.href; }
  set href(v) { this.#set('href', v); }
  get origin() { return this.#r.origin; }
  get protocol() { return this.#r.protocol; }
  set protocol(v) { this.#set('protocol', v); }
  get username() { return this.#r.username; }
  set username(v) { this.#set('username', v); }
  get password() { return this.#r.password; }
  set password(v) { this.#set('password', v); }
  get host() { return this.#r.host; }
  set host(v) { this.#set('host', v); }
  get hostname() { return this.#r.hostname; }
  set hostname(v) { this.#set('hostname', v); }
  get port() { return this.#r.port; }
  set port(v) { this.#set('port', v); }
  get pathname() { return this.#r.pathname; }
  set pathname(v) { this.#set('pathname', v); }
  get search() { return this.#r.search; }
  set search(v) { this.#set('search', v); }
  get hash() { return this.#r.hash; }
  set hash(v) { this.#set('hash', v); }
  get searchParams() {
    if (this.#params === null) {
      this.#params = new URLSearchParams();
      paramsLink(this.#params, this, StringPrototypeSlice(this.#r.search, 1));
    }
    return this.#params;
  }
  toString() { return this.#r.href; }
  toJSON() { return this.#r.href; }
  static {
    urlSetQuery = (url, query) => {
      // The serialized list is already percent-encoded; an empty one removes the query.
      const r = urlCall(url.#r.href, undefined, 'search', query);
      if (r.valid) url.#r = r;
    };
  }
}
var urlSetQuery;
defineValue(URL.prototype, SymbolToStringTag, 'URL', false);

// ---- Headers, Request, Response, fetch (the Fetch Standard, over sys.fetch)

// RFC 9110 token characters.
function isToken(s) {
  if (s.length === 0) return false;
  for (let i = 0; i < s.length; i++) {
    const c = StringPrototypeCharCodeAt(s, i);
    if (c >= 0x30 && c <= 0x39) continue;
    if ((c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a) continue;
    if (StringPrototypeIndexOf("!#$%&'*+-.^_`|~", StringFromCharCode(c)) >= 0) continue;
    return false;
  }
  return true;
}

function isHttpWhitespace(c) { return c === 0x09 || c === 0x0a || c === 0x0d || c === 0x20; }

// A header value normalized (leading and trailing HTTP whitespace removed) and checked.
function headerValue(value) {
  const s = domString(value);
  let a = 0, b = s.length;
  while (a < b && isHttpWhitespace(StringPrototypeCharCodeAt(s, a))) a++;
  while (b > a && isHttpWhitespace(StringPrototypeCharCodeAt(s, b - 1))) b--;
  const v = StringPrototypeSlice(s, a, b);
  for (let i = 0; i < v.length; i++) {
    const c = StringPrototypeCharCodeAt(v, i);
    if (c === 0 || c === 0x0a || c === 0x0d || c > 0xff) throw new $TypeError(`Headers: invalid header value ${JSONStringify(v)}`);
  }
  return v;
}

function headerName(name) {
  const s = domString(name);
  if (!isToken(s)) throw new $TypeError(`Headers: invalid header name ${JSONStringify(s)}`);
  return StringPrototypeToLowerCase(s);
}

class Headers {
  // [lower-case name, value] in the order they were added.
  #list = [];
  #immutable = false;
  constructor(init = undefined) {
    if (init === undefined || init === null) return;
    if (typeof init !== 'object' && typeof init !== 'function') throw new $TypeError('Headers: init must be an object or a sequence of pairs');
    if (init instanceof Headers) {
      const other = init.#list;
      for (let i = 0; i < other.length; i++) arrayAppend(this.#list, [other[i][0], other[i][1]]);
      return;
    }
    if (typeof init[SymbolIterator] === 'function') {
      const pairs = sequence(init, 'Headers');
      for (let i = 0; i < pairs.length; i++) {
        const pair = sequence(pairs[i], 'Headers');
        if (pair.length !== 2) throw new $TypeError('Headers: each header must be a [name, value] pair');
        this.append(pair[0], pair[1]);
      }
      return;
    }
    const keys = ReflectOwnKeys(init);
    for (let i = 0; i < keys.length; i++) {
      const d = ObjectGetOwnPropertyDescriptor(init, keys[i]);
      if (d === undefined || !d.enumerable || typeof keys[i] === 'symbol') continue;
      this.append(keys[i], init[keys[i]]);
    }
  }
  #guard() {
    if (this.#immutable) throw new $TypeError('Headers: these headers are immutable');
  }
  append(name, value) {
    const n = headerName(name), v = headerValue(value);
    this.#guard();
    arrayAppend(this.#list, [n, v]);
  }
  delete(name) {
    const n = headerName(name);
    this.#guard();
    const kept = [];
    for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] !== n) arrayAppend(kept, this.#list[i]);
    this.#list = kept;
  }
  get(name) {
    const n = headerName(name);
    let out = null;
    for (let i = 0; i < this.#list.length; i++) {
      if (this.#list[i][0] === n) out = out === null ? this.#list[i][1] : `${out}, ${this.#list[i][1]}`;
    }
    return out;
  }
  getSetCookie() {
    const out = [];
    for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === 'set-cookie') arrayAppend(out, this.#list[i][1]);
    return out;
  }
  has(name) {
    const n = headerName(name);
    for (let i = 0; i < this.#list.length; i++) if (this.#list[i][0] === n) return true;
    return false;
  }
  set(name, value) {
    const n = headerName(name), v = headerValue(value);
    this.#guard();
    const kept = [];
    let found = false;
    for (let i = 0; i < this.#list.length; i++) {
      if (this.#list[i][0] !== n) arrayAppend(kept, this.#list[i]);
      else if (!found) { found = true; arrayAppend(kept, [n, v]); }
    }
    if (!found) arrayAppend(kept, [n, v]);
    this.#list = kept;
  }
  // The Fetch Standard's "sort and combine": names sorted, values of one name joined by ", "
  // (but each set-cookie on its own).
  #sorted() {
    const names = [];
    const seen = new $Set();
    for (let i = 0; i < this.#list.length; i++) {
      const n = this.#list[i][0];
      if (!SetPrototypeHas(seen, n)) { SetPrototypeAdd(seen, n); arrayAppend(names, n); }
    }
    ArrayPrototypeSort(names, (a, b) => (a < b ? -1 : a > b ? 1 : 0));
    const out = [];
    for (let i = 0; i < names.length; i++) {
      if (names[i] === 'set-cookie') {
        const cookies = this.getSetCookie();
        for (let j = 0; j < cookies.length; j++) arrayAppend(out, ['set-cookie', cookies[j]]);
      } else {
        arrayAppend(out, [names[i], this.get(names[i])]);
      }
    }
    return out;
  }
  forEach(callback, thisArg = undefined) {
    if (typeof callback !== 'function') throw new $TypeError('Headers.forEach: the callback must be a function');
    const list = this.#sorted();
    for (let i = 0; i < list.length; i++) ReflectApply(callback, thisArg, [list[i][1], list[i][0], this]);
  }
  keys() { return new ListIterator(() => this.#sorted(), 'key'); }
  values() { return new ListIterator(() => this.#sorted(), 'value'); }
  entries() { return new ListIterator(() => this.#sorted(), 'entry'); }
  [SymbolIterator]() { return this.entries(); }
  static {
    headersList = (h) => h.#list;
    headersFreeze = (h) => { h.#immutable = true; return h; };
    headersSorted = (h) => h.#sorted();
  }
}
var headersList, headersFreeze, headersSorted;
defineValue(Headers.prototype, SymbolToStringTag, 'Headers', false);

// A body's bytes and its content type, from a BodyInit.
function extractBody(body) {
  if (typeof body === 'string') return [utf8Encode(body), 'text/plain;charset=UTF-8'];
  if (body instanceof URLSearchParams) {
    return [utf8Encode(body.toString()), 'application/x-www-form-urlencoded;charset=UTF-8'];
  }
  const bytes = bufferSourceBytes(body);
  if (bytes !== undefined) return [TypedArrayPrototypeSlice(bytes, 0), null];
  return [utf8Encode(usv(body)), 'text/plain;charset=UTF-8'];
}

// The body mixin's readers, over a body held as bytes (`null`: no body).
function consumeBody(holder, bytes, used, what) {
  if (used) return PromiseReject(new $TypeError(`${what}: the body has already been read`));
  return PromiseResolve(bytes === null ? new $Uint8Array(0) : bytes);
}

function bytesToArrayBuffer(bytes) {
  return ArrayBufferPrototypeSlice(TypedArrayPrototypeGetBuffer(bytes), TypedArrayPrototypeGetByteOffset(bytes),
    TypedArrayPrototypeGetByteOffset(bytes) + TypedArrayPrototypeGetByteLength(bytes));
}

const BODY_READERS = {
  text: (bytes) => utf8DecodeWhatwg(new Utf8State(), skipBom(bytes), true, false),
  json: (bytes) => JSONParse(utf8DecodeWhatwg(new Utf8State(), skipBom(bytes), true, false)),
  arrayBuffer: (bytes) => bytesToArrayBuffer(bytes),
  bytes: (bytes) => TypedArrayPrototypeSlice(bytes, 0),
};

function skipBom(bytes) {
  return TypedArrayPrototypeGetLength(bytes) >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf
    ? TypedArrayPrototypeSubarray(bytes, 3) : bytes;
}

const NULL_BODY_STATUS = { __proto__: null, 101: true, 103: true, 204: true, 205: true, 304: true };

class Response {
  #status = 200;
  #statusText = '';
  #headers;
  #body = null;
  #bodyUsed = false;
  #url = '';
  #type = 'default';
  #redirected = false;
  constructor(body = null, init = undefined) {
    const status = option(init, 'status') === undefined ? 200 : $Number(option(init, 'status'));
    if (!NumberIsSafeInteger(status) || status < 200 || status > 599) {
      throw new $RangeError(`Response: the status must be in the range 200 to 599, got ${status}`);
    }
    const statusText = option(init, 'statusText') === undefined ? '' : domString(option(init, 'statusText'));
    this.#status = status;
    this.#statusText = statusText;
    this.#headers = new Headers(option(init, 'headers'));
    if (body !== null && body !== undefined) {
      if (NULL_BODY_STATUS[status]) throw new $TypeError(`Response: a response with status ${status} cannot have a body`);
      const [bytes, type] = extractBody(body);
      this.#body = bytes;
      if (type !== null && !this.#headers.has('content-type')) this.#headers.append('content-type', type);
    }
  }
  static json(data, init = undefined) {
    const text = JSONStringify(data);
    if (text === undefined) throw new $TypeError('Response.json: the data is not JSON-serializable');
    const r = new Response(text, init);
    r.#headers.set('content-type', 'application/json');
    return r;
  }
  static error() {
    const r = new Response(null, { status: 200 });
    r.#status = 0;
    r.#type = 'error';
    headersFreeze(r.#headers);
    return r;
  }
  static redirect(url, status = 302) {
    const parsed = new URL(url);
    if (status !== 301 && status !== 302 && status !== 303 && status !== 307 && status !== 308) {
      throw new $RangeError(`Response.redirect: ${status} is not a redirect status`);
    }
    const r = new Response(null, { status });
    r.#headers.set('location', parsed.href);
    headersFreeze(r.#headers);
    return r;
  }
  get type() { return this.#type; }
  get url() { return this.#url; }
  get redirected() { return this.#redirected; }
  get status() { return this.#status; }
  get ok() { return this.#status >= 200 && this.#status <= 299; }
  get statusText() { return this.#statusText; }
  get headers() { return this.#headers; }
  get bodyUsed() { return this.#bodyUsed; }
  clone() {
    if (this.#bodyUsed) throw new $TypeError('Response.clone: the body has already been read');
    const r = new Response(null, { status: 200 });
    r.#status = this.#status;
    r.#statusText = this.#statusText;
    r.#headers = new Headers(this.#headers);
    if (this.#type !== 'default') headersFreeze(r.#headers);
    r.#body = this.#body === null ? null : TypedArrayPrototypeSlice(this.#body, 0);
    r.#url = this.#url;
    r.#type = this.#type;
    r.#redirected = this.#redirected;
    return r;
  }
  #read(kind) {
    const used = this.#bodyUsed;
    if (this.#body !== null) this.#bodyUsed = true;
    return PromisePrototypeThen(consumeBody(this, this.#body, used, `Response.${kind}`), BODY_READERS[kind]);
  }
  text() { return this.#read('text'); }
  json() { return this.#read('json'); }
  arrayBuffer() { return this.#read('arrayBuffer'); }
  bytes() { return this.#read('bytes'); }
  static {
    responseFromFetch = (r, requestUrl) => {
      const res = new Response(null, { status: 200 });
      res.#status = r.status;
      res.#statusText = r.statusText;
      for (let i = 0; i < r.headers.length; i++) {
        arrayAppend(headersList(res.#headers), [StringPrototypeToLowerCase(r.headers[i].name), r.headers[i].value]);
      }
      headersFreeze(res.#headers);
      res.#body = NULL_BODY_STATUS[r.status] ? null : r.body;
      res.#url = r.url;
      res.#type = 'basic';
      res.#redirected = r.url !== requestUrl;
      return res;
    };
  }
}
var responseFromFetch;
defineValue(Response.prototype, SymbolToStringTag, 'Response', false);

const METHODS = { __proto__: null, delete: 'DELETE', get: 'GET', head: 'HEAD', options: 'OPTIONS', post: 'POST', put: 'PUT', patch: 'PATCH' };

class Request {
  #method = 'GET';
  #url;
  #headers;
  #body = null;
  #bodyUsed = false;
  #signal;
  #redirect = 'follow';
  constructor(input, init = undefined) {
    if (arguments.length === 0) throw new $TypeError("Request: 1 argument required, but only 0 present");
    let signal = null;
    if (input instanceof Request) {
      if (input.#bodyUsed) throw new $TypeError('Request: the body of the given request has already been read');
      this.#url = input.#url;
      this.#method = input.#method;
      this.#headers = new Headers(input.#headers);
      this.#body = input.#body;
      this.#redirect = input.#redirect;
      signal = input.#signal;
    } else {
      let parsed;
      try {
        parsed = new URL(input);
      } catch {
        throw new $TypeError(`Request: invalid URL ${JSONStringify(usv(input))} (v8box has no base URL: give an absolute URL)`);
      }
      if (parsed.username !== '' || parsed.password !== '') {
        throw new $TypeError('Request: a URL with credentials cannot be fetched');
      }
      this.#url = parsed.href;
      this.#headers = new Headers();
    }
    const method = option(init, 'method');
    if (method !== undefined) {
      const m = domString(method);
      if (!isToken(m)) throw new $TypeError(`Request: ${JSONStringify(m)} is not a valid HTTP method`);
      const lower = StringPrototypeToLowerCase(m);
      if (lower === 'connect' || lower === 'trace' || lower === 'track') {
        throw new $TypeError(`Request: the method ${m} is forbidden`);
      }
      this.#method = METHODS[lower] !== undefined && lower !== 'patch' ? METHODS[lower] : m;
    }
    const headers = option(init, 'headers');
    if (headers !== undefined) this.#headers = new Headers(headers);
    if (init !== undefined && init !== null && init.signal !== undefined) {
      signal = init.signal;
      if (signal !== null && !(signal instanceof AbortSignal)) throw new $TypeError("Request: 'signal' must be an AbortSignal");
    }
    const redirect = option(init, 'redirect');
    if (redirect !== undefined) {
      if (redirect !== 'follow') throw new $TypeError(`Request: redirect '${redirect}' is not supported (v8box follows redirects, checking each hop)`);
      this.#redirect = 'follow';
    }
    // A signal of its own that follows the given one (as the Fetch Standard's Request has).
    this.#signal = signal === null ? new AbortController().signal : AbortSignal.any([signal]);
    const body = option(init, 'body');
    if (body !== undefined && body !== null) {
      if (this.#method === 'GET' || this.#method === 'HEAD') {
        throw new $TypeError(`Request: a ${this.#method} request cannot have a body`);
      }
      const [bytes, type] = extractBody(body);
      this.#body = bytes;
      if (type !== null && !this.#headers.has('content-type')) this.#headers.append('content-type', type);
    }
  }
  get method() { return this.#method; }
  get url() { return this.#url; }
  get headers() { return this.#headers; }
  get signal() { return this.#signal; }
  get redirect() { return this.#redirect; }
  get bodyUsed() { return this.#bodyUsed; }
  clone() {
    if (this.#bodyUsed) throw new $TypeError('Request.clone: the body has already been read');
    return new Request(this);
  }
  #read(kind) {
    const used = this.#bodyUsed;
    if (this.#body !== null) this.#bodyUsed = true;
    return PromisePrototypeThen(consumeBody(this, this.#body, used, `Request.${kind}`), BODY_READERS[kind]);
  }
  text() { return this.#read('text'); }
  json() { return this.#read('json'); }
  arrayBuffer() { return this.#read('arrayBuffer'); }
  bytes() { return this.#read('bytes'); }
  static {
    requestParts = (r) => {
      if (r.#bodyUsed) throw new $TypeError('fetch: the request body has already been read');
      if (r.#body !== null) r.#bodyUsed = true;
      return r.#body;
    };
  }
}
var requestParts;
defineValue(Request.prototype, SymbolToStringTag, 'Request', false);

// Headers v8box sets itself (sys.fetch refuses them): a web fetch leaves them out, as a
// browser leaves out the forbidden request headers.
const HOST_SET_HEADERS = {
  __proto__: null, host: true, connection: true, 'keep-alive': true, upgrade: true,
  'transfer-encoding': true, 'content-length': true, te: true, trailer: true, expect: true,
};

function webFetch(input, init = undefined) {
  let request;
  try {
    request = new Request(input, init);
  } catch (e) {
    return PromiseReject(e);
  }
  const signal = request.signal;
  if (signal.aborted) return PromiseReject(signal.reason);
  let body;
  try {
    body = requestParts(request);
  } catch (e) {
    return PromiseReject(e);
  }
  const headers = [];
  const list = headersSorted(request.headers);
  for (let i = 0; i < list.length; i++) {
    const n = list[i][0];
    if (HOST_SET_HEADERS[n] === true || StringPrototypeSlice(n, 0, 6) === 'proxy-') continue;
    arrayAppend(headers, { name: n, value: list[i][1] });
  }
  const url = request.url;
  return new $Promise((resolve, reject) => {
    // An abort settles the promise at once; the host's call still runs to its end (recorded).
    signalAddAlgorithm(signal, () => reject(signal.reason));
    const call = opFetch({
      url, method: request.method, headers, body: body === null ? new $Uint8Array(0) : body,
    }, (r) => responseFromFetch(r, url));
    PromisePrototypeThen(call, resolve, (e) => {
      if (e !== null && typeof e === 'object' && e.code === 'NETWORK') {
        const t = new $TypeError(`fetch failed: ${e.message}`, { cause: e });
        const stack = e.stack;
        const nl = typeof stack === 'string' ? StringPrototypeIndexOf(stack, '\n') : -1;
        // The frames of the call (see callAsync), not of the reply's arrival.
        if (nl >= 0) defineValue(t, 'stack', `TypeError: fetch failed: ${e.message}${StringPrototypeSlice(stack, nl)}`, false);
        reject(t);
      } else reject(e);
    });
  });
}
ReflectDefineProperty(webFetch, 'name', { __proto__: null, value: 'fetch', configurable: true });

// ---- how console.log shows them

function inspectEntries(name, pairs, sep) {
  const parts = [];
  for (let i = 0; i < pairs.length; i++) arrayAppend(parts, `${quote(pairs[i][0])}${sep}${quote(pairs[i][1])}`);
  return parts.length === 0 ? `${name} {}` : `${name} { ${ArrayPrototypeJoin(parts, ', ')} }`;
}
defineValue(URL.prototype, kInspect, function () {
  const keys = ['href', 'origin', 'protocol', 'username', 'password', 'host', 'hostname', 'port', 'pathname', 'hash', 'search'];
  const parts = [];
  for (let i = 0; i < keys.length; i++) arrayAppend(parts, `${keys[i]}: ${quote(this[keys[i]])}`);
  return `URL { ${ArrayPrototypeJoin(parts, ', ')} }`;
}, false);
defineValue(URLSearchParams.prototype, kInspect, function () {
  return inspectEntries('URLSearchParams', paramsList(this), ' => ');
}, false);
defineValue(Headers.prototype, kInspect, function () {
  return inspectEntries('Headers', headersSorted(this), ': ');
}, false);
defineValue(Response.prototype, kInspect, function () {
  return `Response { status: ${this.status}, statusText: ${quote(this.statusText)}, url: ${quote(this.url)}, bodyUsed: ${this.bodyUsed} }`;
}, false);
defineValue(Request.prototype, kInspect, function () {
  return `Request { method: ${quote(this.method)}, url: ${quote(this.url)} }`;
}, false);
defineValue(Event.prototype, kInspect, function () {
  return `${this[SymbolToStringTag]} { type: ${quote(this.type)}, defaultPrevented: ${this.defaultPrevented} }`;
}, false);
defineValue(AbortSignal.prototype, kInspect, function () {
  return `AbortSignal { aborted: ${this.aborted} }`;
}, false);

// ---- the globals (writable and configurable, not enumerable, as in browsers and Deno)

const WEB_GLOBALS = {
  __proto__: null,
  DOMException, TextEncoder, TextDecoder, atob, btoa, structuredClone, queueMicrotask,
  Event, EventTarget, AbortController, AbortSignal, URL, URLSearchParams, Headers, Request,
  Response, fetch: webFetch,
  crypto: new Crypto(INTERNAL), Crypto,
  performance: new Performance(INTERNAL), Performance,
};
{
  const names = ObjectKeys(WEB_GLOBALS);
  for (let i = 0; i < names.length; i++) defineValue(globalThis, names[i], WEB_GLOBALS[names[i]], false);
}
