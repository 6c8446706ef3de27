// A protobuf codec for the messages of proto/v8box.proto. build.rs generates, per message, an
// encoder `enc_<Name>` and a decoder `dec_<Name>` (tables ENCODERS/DECODERS) that call the
// helpers here; SCHEMA holds the enums' value names.
// Messages are plain objects keyed by the fields' JSON names; a oneof group also gets a key of
// its own name whose value is the JSON name of the field that is set (`reply.result === 'bytes'`).
// 64-bit integers are JavaScript numbers (exact up to 2^53).

// Hand-written rather than a library: the isolate has no npm and no TextEncoder/TextDecoder
// (those are web APIs, not ECMAScript), and the native surface is fixed at three functions.

const WIRE_VARINT = 0, WIRE_I64 = 1, WIRE_LEN = 2, WIRE_I32 = 5;
const T_DOUBLE = 1, T_FLOAT = 2, T_INT64 = 3, T_UINT64 = 4, T_INT32 = 5, T_FIXED64 = 6,
  T_FIXED32 = 7, T_BOOL = 8, T_STRING = 9, T_MESSAGE = 11, T_BYTES = 12, T_UINT32 = 13,
  T_ENUM = 14, T_SFIXED32 = 15, T_SFIXED64 = 16, T_SINT32 = 17, T_SINT64 = 18;
const TWO_32 = 4294967296;

const F_NUMBER = 0, F_NAME = 1, F_TYPE = 2, F_REPEATED = 3, F_ONEOF = 4, F_TYPENAME = 5;

const scratch = new $DataView(new $ArrayBuffer(8));

// ---- UTF-8

// Writes `str` as UTF-8 into `out` from `p` (room for 3 bytes per UTF-16 unit); returns the end.
function utf8EncodeInto(out, p, str) {
  const n = str.length;
  for (let i = 0; i < n; i++) {
    let c = StringPrototypeCharCodeAt(str, i);
    if (c < 0x80) { out[p++] = c; continue; }
    if (c < 0x800) { out[p++] = 0xc0 | (c >> 6); out[p++] = 0x80 | (c & 63); continue; }
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < n) {
      const d = StringPrototypeCharCodeAt(str, i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
        i++;
        out[p++] = 0xf0 | (c >> 18); out[p++] = 0x80 | ((c >> 12) & 63);
        out[p++] = 0x80 | ((c >> 6) & 63); out[p++] = 0x80 | (c & 63);
        continue;
      }
    }
    if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // a lone surrogate is not UTF-8
    out[p++] = 0xe0 | (c >> 12); out[p++] = 0x80 | ((c >> 6) & 63); out[p++] = 0x80 | (c & 63);
  }
  return p;
}

function utf8Encode(str) {
  // Worst case 3 bytes per UTF-16 unit.
  const out = new $Uint8Array(str.length * 3);
  return TypedArrayPrototypeSubarray(out, 0, utf8EncodeInto(out, 0, str));
}

// 1 to 8 ASCII bytes from `b[s]` as one string: one call, where a string grown a character at a
// time cost two to three times as much (measured for 5 to 32 bytes).
function asciiChunk(b, s, n) {
  switch (n) {
    case 1: return StringFromCharCode(b[s]);
    case 2: return StringFromCharCode(b[s], b[s + 1]);
    case 3: return StringFromCharCode(b[s], b[s + 1], b[s + 2]);
    case 4: return StringFromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3]);
    case 5: return StringFromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4]);
    case 6: return StringFromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5]);
    case 7:
      return StringFromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6]);
    default:
      return StringFromCharCode(b[s], b[s + 1], b[s + 2], b[s + 3], b[s + 4], b[s + 5], b[s + 6],
        b[s + 7]);
  }
}

const CHUNK = 4096;
const decodeUnits = new $Uint16Array(CHUNK + 2);
function utf8Decode(bytes, start = 0, end = TypedArrayPrototypeGetLength(bytes)) {
  // Short ASCII (names, paths, values): built directly; applying fromCharCode to a typed
  // array costs more than the whole string for these.
  if (end - start <= 32) {
    let i = start;
    while (i < end && bytes[i] < 0x80) i++;
    if (i === end) {
      let ascii = '';
      for (let s = start; s < end; s += 8) ascii += asciiChunk(bytes, s, MathMin(8, end - s));
      return ascii;
    }
  }
  let result = '';
  const units = decodeUnits;
  let u = 0;
  let i = start;
  while (i < end) {
    const b = bytes[i++];
    let c;
    if (b < 0x80) c = b;
    else if (b >= 0xc2 && b < 0xe0 && i < end && (bytes[i] & 0xc0) === 0x80) {
      c = ((b & 31) << 6) | (bytes[i++] & 63);
    } else if (b >= 0xe0 && b < 0xf0 && i + 1 < end && (bytes[i] & 0xc0) === 0x80 &&
               (bytes[i + 1] & 0xc0) === 0x80) {
      c = ((b & 15) << 12) | ((bytes[i] & 63) << 6) | (bytes[i + 1] & 63);
      i += 2;
      if (c < 0x800 || (c >= 0xd800 && c <= 0xdfff)) c = 0xfffd;
    } else if (b >= 0xf0 && b < 0xf5 && i + 2 < end && (bytes[i] & 0xc0) === 0x80 &&
               (bytes[i + 1] & 0xc0) === 0x80 && (bytes[i + 2] & 0xc0) === 0x80) {
      c = ((b & 7) << 18) | ((bytes[i] & 63) << 12) | ((bytes[i + 1] & 63) << 6) | (bytes[i + 2] & 63);
      i += 3;
      if (c < 0x10000 || c > 0x10ffff) c = 0xfffd;
    } else {
      c = 0xfffd;
    }
    if (c > 0xffff) {
      c -= 0x10000;
      units[u++] = 0xd800 + (c >> 10);
      units[u++] = 0xdc00 + (c & 1023);
    } else {
      units[u++] = c;
    }
    if (u >= CHUNK) {
      result += ReflectApply(StringFromCharCode, undefined, TypedArrayPrototypeSubarray(units, 0, u));
      u = 0;
    }
  }
  if (u > 0) result += ReflectApply(StringFromCharCode, undefined, TypedArrayPrototypeSubarray(units, 0, u));
  return result;
}

// ---- writing

// Writers and readers are class instances, not null-prototype objects: V8 keeps those in
// dictionary mode, which made every `w.pos` a slow lookup. Only own properties are read.
class Writer {
  constructor(size) {
    this.buf = new $Uint8Array(size);
    this.cap = size;
    this.pos = 0;
    // views[n]: `buf`'s first n bytes, made once per length (see `written`).
    this.views = [];
  }
}
ownKeysOnly(Writer);

class Reader {
  // `copy`: `buf` is reused for the next message, so bytes fields are copied out of it.
  constructor(buf, end, copy) {
    this.buf = buf;
    this.pos = 0;
    this.end = end;
    this.lo = 0;
    this.hi = 0;
    this.copy = copy;
  }
}
ownKeysOnly(Reader);

function reserve(w, n) {
  if (w.pos + n <= w.cap) return;
  let size = w.cap * 2;
  while (size < w.pos + n) size *= 2;
  const next = new $Uint8Array(size);
  TypedArrayPrototypeSet(next, TypedArrayPrototypeSubarray(w.buf, 0, w.pos));
  w.buf = next;
  w.cap = size;
  w.views = [];
}

// Messages up to this many bytes get a view kept per length: most calls are short, and a new
// view per message (`subarray`) cost more than encoding a small one.
const KEPT_VIEWS = 256;

/** The bytes written so far: a view on the writer's buffer. */
function written(w) {
  const n = w.pos;
  if (n > KEPT_VIEWS) return TypedArrayPrototypeSubarray(w.buf, 0, n);
  let view = w.views[n];
  if (view === undefined) {
    view = TypedArrayPrototypeSubarray(w.buf, 0, n);
    w.views[n] = view;
  }
  return view;
}

function writeVarint(w, v) {
  // v: a non-negative safe integer
  reserve(w, 10);
  while (v >= 128) {
    w.buf[w.pos++] = (v % 128) | 128;
    v = MathFloor(v / 128);
  }
  w.buf[w.pos++] = v;
}

// A field's tag, as build.rs computed its bytes.
function writeByte(w, b) {
  reserve(w, 1);
  w.buf[w.pos++] = b;
}

function writeByte2(w, b0, b1) {
  reserve(w, 2);
  w.buf[w.pos++] = b0;
  w.buf[w.pos++] = b1;
}

function writeVarint64(w, lo, hi) {
  reserve(w, 10);
  while (hi > 0 || lo > 127) {
    w.buf[w.pos++] = (lo & 127) | 128;
    lo = ((lo >>> 7) | (hi << 25)) >>> 0;
    hi >>>= 7;
  }
  w.buf[w.pos++] = lo;
}

function writeSigned(w, v) {
  if (v >= 0) writeVarint(w, v);
  else writeVarint64(w, v >>> 0, MathFloor(v / TWO_32) >>> 0);
}

function writeBytes(w, bytes) {
  const n = TypedArrayPrototypeGetLength(bytes);
  writeVarint(w, n);
  reserve(w, n);
  TypedArrayPrototypeSet(w.buf, bytes, w.pos);
  w.pos += n;
}

function writeFixed32(w, v) {
  reserve(w, 4);
  w.buf[w.pos++] = v & 255; w.buf[w.pos++] = (v >>> 8) & 255;
  w.buf[w.pos++] = (v >>> 16) & 255; w.buf[w.pos++] = (v >>> 24) & 255;
}

function varintSize(n) {
  let size = 1;
  while (n >= 128) { n = MathFloor(n / 128); size++; }
  return size;
}

// A length-delimited field written in place: one byte is kept for the length, and the body is
// moved up only when its length needs more.
function finishDelimited(w, start) {
  const n = w.pos - start;
  if (n < 128) { w.buf[start - 1] = n; return; }
  const extra = varintSize(n) - 1;
  reserve(w, extra);
  TypedArrayPrototypeCopyWithin(w.buf, start + extra, start, w.pos);
  w.pos = start - 1;
  writeVarint(w, n);
  w.pos += n;
}

function writeString(w, value) {
  const str = $String(value);
  reserve(w, str.length * 3 + 1);
  const start = ++w.pos;
  w.pos = utf8EncodeInto(w.buf, start, str);
  finishDelimited(w, start);
}

function writeSub(w, encodeBody, value) {
  reserve(w, 1);
  const start = ++w.pos;
  encodeBody(w, value);
  finishDelimited(w, start);
}

function writePacked(w, field, values) {
  writeVarint(w, field[F_NUMBER] * 8 + WIRE_LEN);
  reserve(w, 1);
  const start = ++w.pos;
  for (let j = 0; j < values.length; j++) writeScalar(w, field, values[j]);
  finishDelimited(w, start);
}

function toInteger(value, field) {
  const v = $Number(value);
  if (!NumberIsSafeInteger(v)) {
    throw new $TypeError(`field ${field[F_NAME]}: expected an integer, got ${$String(value)}`);
  }
  return v;
}

function asBytes(value, field) {
  if (value instanceof $Uint8Array) return value;
  if (value instanceof $ArrayBuffer) return new $Uint8Array(value);
  if (ArrayBufferIsView(value)) {
    if (value instanceof $DataView) {
      return new $Uint8Array(DataViewPrototypeGetBuffer(value), DataViewPrototypeGetByteOffset(value),
        DataViewPrototypeGetByteLength(value));
    }
    return new $Uint8Array(TypedArrayPrototypeGetBuffer(value), TypedArrayPrototypeGetByteOffset(value),
      TypedArrayPrototypeGetByteLength(value));
  }
  if (typeof value === 'string') return utf8Encode(value);
  throw new $TypeError(`field ${field[F_NAME]}: expected bytes (Uint8Array, ArrayBuffer or string)`);
}

function enumNumber(value, field) {
  if (typeof value === 'number') return value;
  const values = SCHEMA.enums[field[F_TYPENAME]];
  const keys = ObjectKeys(values);
  for (let i = 0; i < keys.length; i++) {
    if (values[keys[i]] === value) return $Number(keys[i]);
  }
  throw new $TypeError(`field ${field[F_NAME]}: unknown ${field[F_TYPENAME]} value ${$String(value)}`);
}

function writeScalar(w, field, value) {
  switch (field[F_TYPE]) {
    case T_DOUBLE:
      reserve(w, 8);
      DataViewPrototypeSetFloat64(scratch, 0, $Number(value), true);
      for (let i = 0; i < 8; i++) w.buf[w.pos++] = scratchByte(i);
      return;
    case T_FLOAT:
      reserve(w, 4);
      DataViewPrototypeSetFloat32(scratch, 0, $Number(value), true);
      for (let i = 0; i < 4; i++) w.buf[w.pos++] = scratchByte(i);
      return;
    case T_BOOL: writeVarint(w, value ? 1 : 0); return;
    case T_STRING: writeBytes(w, utf8Encode($String(value))); return;
    case T_BYTES: writeBytes(w, asBytes(value, field)); return;
    case T_ENUM: writeSigned(w, enumNumber(value, field)); return;
    case T_UINT32: case T_UINT64: {
      const v = toInteger(value, field);
      if (v < 0) throw new $RangeError(`field ${field[F_NAME]}: expected an unsigned integer`);
      writeVarint(w, v);
      return;
    }
    case T_INT32: case T_INT64: writeSigned(w, toInteger(value, field)); return;
    case T_SINT32: case T_SINT64: {
      const v = toInteger(value, field);
      writeVarint(w, v >= 0 ? v * 2 : -v * 2 - 1);
      return;
    }
    case T_FIXED32: case T_SFIXED32: writeFixed32(w, toInteger(value, field)); return;
    case T_FIXED64: case T_SFIXED64: {
      const v = toInteger(value, field);
      writeFixed32(w, v >>> 0);
      writeFixed32(w, MathFloor(v / TWO_32) >>> 0);
      return;
    }
  }
  throw new $TypeError(`field ${field[F_NAME]}: unsupported type ${field[F_TYPE]}`);
}

const scratchBytes = new $Uint8Array(DataViewPrototypeGetBuffer(scratch));
function scratchByte(i) { return scratchBytes[i]; }

function isDefault(field, value) {
  if (value === undefined || value === null) return true;
  switch (field[F_TYPE]) {
    case T_STRING: return value === '';
    case T_BYTES: return typeof value === 'string' ? value === '' : TypedArrayPrototypeGetLength(asBytes(value, field)) === 0;
    case T_BOOL: return !value;
    case T_MESSAGE: return false;
    case T_ENUM: return enumNumber(value, field) === 0;
    default: return $Number(value) === 0 && !(1 / $Number(value) < 0);
  }
}

// One writer is reused for every message (the encoding is handed to `$send` before the next
// one starts); a nested `encode` (from a getter, say) gets a fresh one.
let spareWriter = new Writer(256);

function encodeWith(body, a, b, c) {
  let w = spareWriter;
  spareWriter = null;
  if (w === null) w = new Writer(256);
  w.pos = 0;
  try {
    body(w, a, b, c);
    return written(w);
  } finally {
    // A writer grown past 64 KiB by one big message is not kept.
    spareWriter = w.cap > 65536 ? new Writer(256) : w;
  }
}

/** Encodes `obj` as the message `typeName` (e.g. "v8box.v1.Call"); returns a Uint8Array. The
 * result is valid until the next `encode`: copy it to keep it. */
function encode(typeName, obj) {
  const encodeBody = ENCODERS[typeName];
  if (encodeBody === undefined) throw new $TypeError(`unknown message type ${typeName}`);
  return encodeWith(encodeBody, obj);
}

// Call's `op` members: name -> a function writing that member (generated).
const CALL_OPS = MEMBERS_v8box_v1_Call;

function writeCall(w, id, writeOp, payload) {
  if (id !== 0) { writeVarint(w, 8); writeVarint(w, toInteger(id, FD_v8box_v1_Call_id)); }
  writeOp(w, payload);
}

/** Encodes the `Call` `{ id, [op]: payload }` without building that object; valid until the
 * next encoding, like `encode`'s result. */
function encodeCall(id, op, payload) {
  const writeOp = CALL_OPS[op];
  if (writeOp === undefined) throw new $TypeError(`unknown operation ${op}`);
  return encodeWith(writeCall, id, writeOp, payload);
}

// ---- reading

function fail(what) {
  throw new $TypeError(`malformed protobuf message: ${what}`);
}

function readVarint(r) {
  // Returns [lo, hi] as unsigned 32-bit halves.
  let lo = 0, hi = 0, shift = 0, b;
  const buf = r.buf;
  do {
    if (r.pos >= r.end) fail('truncated varint');
    b = buf[r.pos++];
    if (shift < 28) lo |= (b & 127) << shift;
    else if (shift === 28) { lo |= (b & 15) << 28; hi |= (b & 127) >> 4; }
    else if (shift < 64) hi |= (b & 127) << (shift - 32);
    shift += 7;
    if (shift > 70) fail('varint too long');
  } while (b & 128);
  r.lo = lo >>> 0;
  r.hi = hi >>> 0;
}

function readUnsigned(r) {
  readVarint(r);
  return r.hi * TWO_32 + r.lo;
}

function readFixed32(r) {
  if (r.pos + 4 > r.end) fail('truncated fixed32');
  const b = r.buf, p = r.pos;
  r.pos += 4;
  return (b[p] | (b[p + 1] << 8) | (b[p + 2] << 16) | (b[p + 3] << 24)) >>> 0;
}

// Readers of one scalar type each: build.rs calls them directly for these types, where
// `readScalar` switches on a field's descriptor.
function readDouble(r) {
  if (r.pos + 8 > r.end) fail('truncated double');
  for (let i = 0; i < 8; i++) scratchBytes[i] = r.buf[r.pos + i];
  r.pos += 8;
  return DataViewPrototypeGetFloat64(scratch, 0, true);
}

function readBool(r) {
  readVarint(r);
  return r.lo !== 0 || r.hi !== 0;
}

function readUint32(r) {
  readVarint(r);
  return r.lo;
}

function readScalar(r, field) {
  switch (field[F_TYPE]) {
    case T_DOUBLE: return readDouble(r);
    case T_FLOAT: {
      if (r.pos + 4 > r.end) fail('truncated float');
      for (let i = 0; i < 4; i++) scratchBytes[i] = r.buf[r.pos + i];
      r.pos += 4;
      return DataViewPrototypeGetFloat32(scratch, 0, true);
    }
    case T_BOOL: return readBool(r);
    case T_UINT32: return readUint32(r);
    case T_UINT64: return readUnsigned(r);
    case T_INT32: readVarint(r); return r.lo | 0;
    case T_ENUM: {
      readVarint(r);
      const n = r.lo | 0;
      const name = SCHEMA.enums[field[F_TYPENAME]][n];
      return name === undefined ? n : name;
    }
    case T_INT64: readVarint(r); return r.hi & 0x80000000 ? -((~r.hi >>> 0) * TWO_32 + (~r.lo >>> 0) + 1) : r.hi * TWO_32 + r.lo;
    case T_SINT32: readVarint(r); return (r.lo >>> 1) ^ -(r.lo & 1);
    case T_SINT64: {
      const n = readUnsigned(r);
      return n % 2 === 0 ? n / 2 : -(n + 1) / 2;
    }
    case T_FIXED32: return readFixed32(r);
    case T_SFIXED32: return readFixed32(r) | 0;
    case T_FIXED64: { const lo = readFixed32(r); return readFixed32(r) * TWO_32 + lo; }
    case T_SFIXED64: { const lo = readFixed32(r); const hi = readFixed32(r) | 0; return hi * TWO_32 + lo; }
  }
  fail(`unsupported type ${field[F_TYPE]}`);
}

function defaultOf(field) {
  if (field[F_REPEATED]) return [];
  switch (field[F_TYPE]) {
    case T_STRING: return '';
    case T_BYTES: return new $Uint8Array(0);
    case T_BOOL: return false;
    case T_MESSAGE: return null;
    case T_ENUM: { const name = SCHEMA.enums[field[F_TYPENAME]][0]; return name === undefined ? 0 : name; }
    default: return 0;
  }
}

function skip(r, wire) {
  switch (wire) {
    case WIRE_VARINT: readVarint(r); return;
    case WIRE_I64: r.pos += 8; break;
    case WIRE_I32: r.pos += 4; break;
    case WIRE_LEN: r.pos += readUnsigned(r); break;
    default: fail(`unsupported wire type ${wire}`);
  }
  if (r.pos > r.end) fail('truncated field');
}

function readLength(r) {
  const n = readUnsigned(r);
  if (r.pos + n > r.end) fail('truncated field');
  return n;
}

function readSub(r, decodeBody) {
  const n = readLength(r);
  const end = r.end;
  r.end = r.pos + n;
  const value = decodeBody(r);
  r.end = end;
  return value;
}

function readString(r) {
  const n = readLength(r);
  const value = utf8Decode(r.buf, r.pos, r.pos + n);
  r.pos += n;
  return value;
}

function readBytes(r) {
  const n = readLength(r);
  const value = r.copy ? TypedArrayPrototypeSlice(r.buf, r.pos, r.pos + n)
    : TypedArrayPrototypeSubarray(r.buf, r.pos, r.pos + n);
  r.pos += n;
  return value;
}

function readPacked(r, field, list) {
  const n = readLength(r);
  const end = r.end;
  r.end = r.pos + n;
  while (r.pos < r.end) arrayAppend(list, readScalar(r, field));
  r.end = end;
}

// A field the decoder has no case for: a known field with the wrong wire type fails, an
// unknown one is skipped (as protobuf requires).
function skipField(r, names) {
  const number = r.lo >>> 3;
  if (r.hi !== 0 || number === 0) fail('invalid field number');
  if (names[number] !== undefined) fail(`field ${names[number]}: wrong wire type`);
  skip(r, r.lo & 7);
}

// The member of a message's oneof group that is set (`name` undefined if none is). A literal,
// not a class: its keys are defined, never assigned, so no setter a script puts on
// Object.prototype sees them; and every member shares one shape.
function member(name, value) {
  return { name, value };
}

/** Decodes `bytes` (Uint8Array) as the message `typeName`, which has one oneof group, and
 * returns only its member that is set: `{ name, value }`. Checks as `decode` does. */
function decodeMember(typeName, bytes) {
  const decodeBody = MEMBER_DECODERS[typeName];
  if (decodeBody === undefined) fail(`no oneof decoder for message type ${typeName}`);
  return decodeBody(new Reader(bytes, TypedArrayPrototypeGetLength(bytes), false));
}

/** As `decodeMember`, of the first `length` bytes of `buf` (Uint8Array), a buffer that is
 * reused: bytes fields are copies, not views into it. */
function decodeMemberOfReused(typeName, buf, length) {
  const decodeBody = MEMBER_DECODERS[typeName];
  if (decodeBody === undefined) fail(`no oneof decoder for message type ${typeName}`);
  if (length > TypedArrayPrototypeGetLength(buf)) fail('length past the buffer');
  return decodeBody(new Reader(buf, length, true));
}

/** Decodes `bytes` (Uint8Array) as the message `typeName`. Bytes fields are views into `bytes`. */
function decode(typeName, bytes) {
  const decodeBody = DECODERS[typeName];
  if (decodeBody === undefined) fail(`unknown message type ${typeName}`);
  return decodeBody(new Reader(bytes, TypedArrayPrototypeGetLength(bytes), false));
}
