// Builtins captured before any user code runs, so that a script which replaces
// `Array.prototype.push`, `Promise.prototype.then`, `Uint8Array`, `JSON`, `$send` or `$recv`
// breaks only itself, never the library (the idea of Node's "primordials").
// Methods are "uncurried": `ArrayPrototypeJoin(arr, ",")` instead of `arr.join(",")`.

const FunctionPrototypeCall = Function.prototype.call;
const uncurryThis = (fn) => FunctionPrototypeCall.bind(fn);
const getter = (proto, name) => uncurryThis(Object.getOwnPropertyDescriptor(proto, name).get);

const $Array = Array;
const $ArrayBuffer = ArrayBuffer;
const $DataView = DataView;
const $Date = Date;
const $Error = Error;
const $Map = Map;
const $Number = Number;
const $Object = Object;
const $Promise = Promise;
const $RangeError = RangeError;
const $Reflect = Reflect;
const $Set = Set;
const $String = String;
const $Symbol = Symbol;
const $TypeError = TypeError;
const $Uint8Array = Uint8Array;
const $Uint16Array = Uint16Array;
const $WeakSet = WeakSet;

const NativeSend = globalThis.$send;
const NativeRecv = globalThis.$recv;
const NativePrint = globalThis.$print;

const ReflectApply = Reflect.apply;
const PromisePrototypeThen = uncurryThis(Promise.prototype.then);
const ReflectDefineProperty = Reflect.defineProperty;
const ReflectOwnKeys = Reflect.ownKeys;
const ReflectGetPrototypeOf = Reflect.getPrototypeOf;
const ReflectSetPrototypeOf = Reflect.setPrototypeOf;
const ObjectFreeze = Object.freeze;
const ObjectCreate = Object.create;
const ObjectKeys = Object.keys;
const ObjectPrototypeToString = uncurryThis(Object.prototype.toString);
const ObjectPrototypeHasOwnProperty = uncurryThis(Object.prototype.hasOwnProperty);
const ArrayIsArray = Array.isArray;
const ArrayPrototypeJoin = uncurryThis(Array.prototype.join);
const ArrayPrototypeSlice = uncurryThis(Array.prototype.slice);
const ArrayBufferIsView = ArrayBuffer.isView;
const ArrayBufferPrototypeGetByteLength = getter(ArrayBuffer.prototype, 'byteLength');
const TypedArrayPrototype = Reflect.getPrototypeOf(Uint8Array.prototype);
const TypedArrayPrototypeGetLength = getter(TypedArrayPrototype, 'length');
const TypedArrayPrototypeGetBuffer = getter(TypedArrayPrototype, 'buffer');
const TypedArrayPrototypeGetByteOffset = getter(TypedArrayPrototype, 'byteOffset');
const TypedArrayPrototypeGetByteLength = getter(TypedArrayPrototype, 'byteLength');
const TypedArrayPrototypeGetSymbolToStringTag = getter(TypedArrayPrototype, Symbol.toStringTag);
const TypedArrayPrototypeSet = uncurryThis(TypedArrayPrototype.set);
const TypedArrayPrototypeCopyWithin = uncurryThis(TypedArrayPrototype.copyWithin);
const TypedArrayPrototypeSubarray = uncurryThis(TypedArrayPrototype.subarray);
const DataViewPrototypeGetByteOffset = getter(DataView.prototype, 'byteOffset');
const DataViewPrototypeGetByteLength = getter(DataView.prototype, 'byteLength');
const DataViewPrototypeGetBuffer = getter(DataView.prototype, 'buffer');
const DataViewPrototypeGetFloat64 = uncurryThis(DataView.prototype.getFloat64);
const DataViewPrototypeSetFloat64 = uncurryThis(DataView.prototype.setFloat64);
const DataViewPrototypeGetFloat32 = uncurryThis(DataView.prototype.getFloat32);
const DataViewPrototypeSetFloat32 = uncurryThis(DataView.prototype.setFloat32);
const MapPrototypeGet = uncurryThis(Map.prototype.get);
const MapPrototypeSet = uncurryThis(Map.prototype.set);
const MapPrototypeHas = uncurryThis(Map.prototype.has);
const MapPrototypeDelete = uncurryThis(Map.prototype.delete);
const MapPrototypeGetSize = getter(Map.prototype, 'size');
const WeakSetPrototypeHas = uncurryThis(WeakSet.prototype.has);
const WeakSetPrototypeAdd = uncurryThis(WeakSet.prototype.add);
const SetPrototypeHas = uncurryThis(Set.prototype.has);
const SetPrototypeAdd = uncurryThis(Set.prototype.add);
const SetPrototypeDelete = uncurryThis(Set.prototype.delete);
const StringFromCharCode = String.fromCharCode;
const StringPrototypeCharCodeAt = uncurryThis(String.prototype.charCodeAt);
const StringPrototypeSlice = uncurryThis(String.prototype.slice);
const StringPrototypeToLowerCase = uncurryThis(String.prototype.toLowerCase);
const StringPrototypeIncludes = uncurryThis(String.prototype.includes);
const NumberIsFinite = Number.isFinite;
const NumberIsSafeInteger = Number.isSafeInteger;
const MathFloor = Math.floor;
const MathMax = Math.max;
const MathMin = Math.min;
const JSONStringify = JSON.stringify;
const JSONParse = JSON.parse;
const FunctionPrototypeToString = uncurryThis(Function.prototype.toString);
const ErrorCaptureStackTrace = Error.captureStackTrace;

// Appends without `push` (which an Array.prototype setter could intercept).
function arrayAppend(arr, value) {
  ReflectDefineProperty(arr, arr.length, {
    __proto__: null, value, writable: true, enumerable: true, configurable: true,
  });
}

// For the library's classes, whose constructors assign their instances' keys: with nothing
// above the class's prototype, no setter a script puts on Object.prototype sees them.
function ownKeysOnly(C) {
  ReflectSetPrototypeOf(C.prototype, null);
}

// Defines an own data property without touching setters up the prototype chain.
function defineValue(obj, key, value, enumerable = true) {
  ReflectDefineProperty(obj, key, {
    __proto__: null, value, writable: true, enumerable, configurable: true,
  });
}

const MapPrototypeEntries = uncurryThis(Map.prototype.entries);
const MapIteratorPrototypeNext = uncurryThis(Reflect.getPrototypeOf(new Map().entries()).next);
const SetPrototypeValues = uncurryThis(Set.prototype.values);
const SetIteratorPrototypeNext = uncurryThis(Reflect.getPrototypeOf(new Set().values()).next);
const SymbolPrototypeToString = uncurryThis(Symbol.prototype.toString);
const DatePrototypeGetTime = uncurryThis(Date.prototype.getTime);
const DatePrototypeToISOString = uncurryThis(Date.prototype.toISOString);
const ErrorPrototypeToString = uncurryThis(Error.prototype.toString);
const BigIntPrototypeToString = uncurryThis(BigInt.prototype.toString);

// For js/web.js (the web-standard globals).
const $Boolean = Boolean;
const $BigInt = BigInt;
const $RegExp = RegExp;
const $WeakMap = WeakMap;
const $EvalError = EvalError;
const $ReferenceError = ReferenceError;
const $SyntaxError = SyntaxError;
const $URIError = URIError;
const $AggregateError = AggregateError;
const $Int8Array = Int8Array;
const $Uint8ClampedArray = Uint8ClampedArray;
const $Int16Array = Int16Array;
const $Int32Array = Int32Array;
const $Uint32Array = Uint32Array;
const $Float32Array = Float32Array;
const $Float64Array = Float64Array;
const $BigInt64Array = BigInt64Array;
const $BigUint64Array = BigUint64Array;
const $Float16Array = globalThis.Float16Array;
const SymbolIterator = Symbol.iterator;
const SymbolToStringTag = Symbol.toStringTag;
const SymbolFor = Symbol.for;
const PromiseResolve = Promise.resolve.bind(Promise);
const PromiseReject = Promise.reject.bind(Promise);
const ArrayPrototypeSort = uncurryThis(Array.prototype.sort);
const ArrayPrototypeSplice = uncurryThis(Array.prototype.splice);
const ArrayPrototypeIndexOf = uncurryThis(Array.prototype.indexOf);
const ArrayBufferPrototypeSlice = uncurryThis(ArrayBuffer.prototype.slice);
const TypedArrayPrototypeSlice = uncurryThis(TypedArrayPrototype.slice);
const TypedArrayPrototypeFill = uncurryThis(TypedArrayPrototype.fill);
const StringPrototypeIndexOf = uncurryThis(String.prototype.indexOf);
const StringPrototypeToUpperCase = uncurryThis(String.prototype.toUpperCase);
const StringPrototypeToWellFormed = uncurryThis(String.prototype.toWellFormed);
const StringPrototypeCodePointAt = uncurryThis(String.prototype.codePointAt);
const StringPrototypePadStart = uncurryThis(String.prototype.padStart);
const StringPrototypeTrim = uncurryThis(String.prototype.trim);
const StringPrototypeRepeat = uncurryThis(String.prototype.repeat);
const NumberParseInt = Number.parseInt;
const NumberParseFloat = Number.parseFloat;
const NumberPrototypeToString = uncurryThis(Number.prototype.toString);
const NumberPrototypeValueOf = uncurryThis(Number.prototype.valueOf);
const BooleanPrototypeValueOf = uncurryThis(Boolean.prototype.valueOf);
const StringPrototypeValueOf = uncurryThis(String.prototype.valueOf);
const BigIntPrototypeValueOf = uncurryThis(BigInt.prototype.valueOf);
const RegExpPrototypeGetSource = getter(RegExp.prototype, 'source');
const RegExpPrototypeGetFlags = getter(RegExp.prototype, 'flags');
const SetPrototypeGetSize = getter(Set.prototype, 'size');
const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
const ObjectDefineProperties = Object.defineProperties;
const ObjectIs = Object.is;
const WeakMapPrototypeGet = uncurryThis(WeakMap.prototype.get);
const WeakMapPrototypeSet = uncurryThis(WeakMap.prototype.set);
const ArrayIteratorPrototypeNext = uncurryThis(Reflect.getPrototypeOf([][Symbol.iterator]()).next);
const ArrayPrototypeValues = uncurryThis(Array.prototype.values);
const ReflectDeleteProperty = Reflect.deleteProperty;
