// A protobuf codec driven by SCHEMA, the table build.rs generates from proto/v8box.proto.
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

function wireTypeOf(type) {
  switch (type) {
    case T_DOUBLE: case T_FIXED64: case T_SFIXED64: return WIRE_I64;
    case T_FLOAT: case T_FIXED32: case T_SFIXED32: return WIRE_I32;
    case T_STRING: case T_BYTES: case T_MESSAGE: return WIRE_LEN;
    default: return WIRE_VARINT;
  }
}

const scratch = new $DataView(new $ArrayBuffer(8));

// ---- UTF-8

function utf8Encode(str) {
  const n = str.length;
  // Worst case 3 bytes per UTF-16 unit.
  const out = new $Uint8Array(n * 3);
  let p = 0;
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
  return TypedArrayPrototypeSubarray(out, 0, p);
}

const CHUNK = 4096;
const decodeUnits = new $Uint16Array(CHUNK + 2);
function utf8Decode(bytes, start = 0, end = TypedArrayPrototypeGetLength(bytes)) {
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

function newWriter() {
  return { __proto__: null, buf: new $Uint8Array(64), pos: 0 };
}

function reserve(w, n) {
  const len = TypedArrayPrototypeGetLength(w.buf);
  if (w.pos + n <= len) return;
  let size = len * 2;
  while (size < w.pos + n) size *= 2;
  const next = new $Uint8Array(size);
  TypedArrayPrototypeSet(next, TypedArrayPrototypeSubarray(w.buf, 0, w.pos));
  w.buf = next;
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
  if (field[F_ONEOF] !== null) return false; // a set oneof member is always written
  switch (field[F_TYPE]) {
    case T_STRING: return value === '';
    case T_BYTES: return typeof value === 'string' ? value === '' : TypedArrayPrototypeGetLength(asBytes(value, field)) === 0;
    case T_BOOL: return !value;
    case T_MESSAGE: return false;
    case T_ENUM: return enumNumber(value, field) === 0;
    default: return $Number(value) === 0 && !(1 / $Number(value) < 0);
  }
}

function writeMessage(w, typeName, obj) {
  const fields = SCHEMA.messages[typeName];
  if (fields === undefined) throw new $TypeError(`unknown message type ${typeName}`);
  for (let i = 0; i < fields.length; i++) {
    const field = fields[i];
    const value = obj[field[F_NAME]];
    if (field[F_REPEATED]) {
      if (value === undefined || value === null) continue;
      const n = value.length;
      if (field[F_TYPE] === T_MESSAGE || field[F_TYPE] === T_STRING || field[F_TYPE] === T_BYTES) {
        for (let j = 0; j < n; j++) writeField(w, field, value[j]);
      } else if (n > 0) {
        // packed
        const inner = newWriter();
        for (let j = 0; j < n; j++) writeScalar(inner, field, value[j]);
        writeVarint(w, field[F_NUMBER] * 8 + WIRE_LEN);
        writeBytes(w, TypedArrayPrototypeSubarray(inner.buf, 0, inner.pos));
      }
      continue;
    }
    if (isDefault(field, value)) continue;
    writeField(w, field, value);
  }
}

function writeField(w, field, value) {
  writeVarint(w, field[F_NUMBER] * 8 + wireTypeOf(field[F_TYPE]));
  if (field[F_TYPE] === T_MESSAGE) {
    const inner = newWriter();
    writeMessage(inner, field[F_TYPENAME], value);
    writeBytes(w, TypedArrayPrototypeSubarray(inner.buf, 0, inner.pos));
  } else {
    writeScalar(w, field, value);
  }
}

/** Encodes `obj` as the message `typeName` (e.g. "v8box.v1.Call"); returns a Uint8Array. */
function encode(typeName, obj) {
  const w = newWriter();
  writeMessage(w, typeName, obj);
  return TypedArrayPrototypeSubarray(w.buf, 0, w.pos);
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

function readScalar(r, field) {
  switch (field[F_TYPE]) {
    case T_DOUBLE: {
      if (r.pos + 8 > r.end) fail('truncated double');
      for (let i = 0; i < 8; i++) scratchBytes[i] = r.buf[r.pos + i];
      r.pos += 8;
      return DataViewPrototypeGetFloat64(scratch, 0, true);
    }
    case T_FLOAT: {
      if (r.pos + 4 > r.end) fail('truncated float');
      for (let i = 0; i < 4; i++) scratchBytes[i] = r.buf[r.pos + i];
      r.pos += 4;
      return DataViewPrototypeGetFloat32(scratch, 0, true);
    }
    case T_BOOL: readVarint(r); return r.lo !== 0 || r.hi !== 0;
    case T_UINT32: readVarint(r); return r.lo;
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

const fieldIndexCache = new $Map();
function fieldsByNumber(typeName) {
  let index = MapPrototypeGet(fieldIndexCache, typeName);
  if (index === undefined) {
    index = new $Map();
    const fields = SCHEMA.messages[typeName];
    for (let i = 0; i < fields.length; i++) MapPrototypeSet(index, fields[i][F_NUMBER], fields[i]);
    MapPrototypeSet(fieldIndexCache, typeName, index);
  }
  return index;
}

function readMessage(r, typeName) {
  const fields = SCHEMA.messages[typeName];
  if (fields === undefined) fail(`unknown message type ${typeName}`);
  const obj = { __proto__: null };
  for (let i = 0; i < fields.length; i++) {
    if (fields[i][F_ONEOF] === null) obj[fields[i][F_NAME]] = defaultOf(fields[i]);
  }
  const index = fieldsByNumber(typeName);
  while (r.pos < r.end) {
    readVarint(r);
    const tag = r.lo;
    const number = tag >>> 3, wire = tag & 7;
    const field = MapPrototypeGet(index, number);
    if (field === undefined) { skip(r, wire); continue; }
    const type = field[F_TYPE];
    let value;
    if (type === T_MESSAGE) {
      if (wire !== WIRE_LEN) fail(`field ${field[F_NAME]}: wrong wire type`);
      const n = readUnsigned(r);
      if (r.pos + n > r.end) fail('truncated message');
      const end = r.end;
      r.end = r.pos + n;
      value = readMessage(r, field[F_TYPENAME]);
      r.end = end;
    } else if (type === T_STRING || type === T_BYTES) {
      if (wire !== WIRE_LEN) fail(`field ${field[F_NAME]}: wrong wire type`);
      const n = readUnsigned(r);
      if (r.pos + n > r.end) fail('truncated bytes');
      value = type === T_STRING ? utf8Decode(r.buf, r.pos, r.pos + n)
        : TypedArrayPrototypeSubarray(r.buf, r.pos, r.pos + n);
      r.pos += n;
    } else if (field[F_REPEATED] && wire === WIRE_LEN) {
      // packed repeated scalars
      const n = readUnsigned(r);
      if (r.pos + n > r.end) fail('truncated packed field');
      const end = r.end;
      r.end = r.pos + n;
      const list = obj[field[F_NAME]];
      while (r.pos < r.end) arrayAppend(list, readScalar(r, field));
      r.end = end;
      continue;
    } else {
      if (wire !== wireTypeOf(type)) fail(`field ${field[F_NAME]}: wrong wire type`);
      value = readScalar(r, field);
    }
    if (field[F_REPEATED]) arrayAppend(obj[field[F_NAME]], value);
    else obj[field[F_NAME]] = value;
    if (field[F_ONEOF] !== null) obj[field[F_ONEOF]] = field[F_NAME];
  }
  return obj;
}

/** Decodes `bytes` (Uint8Array) as the message `typeName`. Bytes fields are views into `bytes`. */
function decode(typeName, bytes) {
  const r = { __proto__: null, buf: bytes, pos: 0, end: TypedArrayPrototypeGetLength(bytes), lo: 0, hi: 0 };
  return readMessage(r, typeName);
}
