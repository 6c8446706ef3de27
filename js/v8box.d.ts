// TypeScript declarations for the globals a v8box script sees (besides ECMAScript's).

/** The three native functions. Everything else is JavaScript built on them. */
declare function $print(...args: unknown[]): void;
declare function $send(bytes: ArrayBuffer | ArrayBufferView): ArrayBuffer | null;
declare function $recv(callback: (message: ArrayBuffer) => void): void;

declare namespace sys {
  interface DirEntry {
    name: string;
    isFile: boolean;
    isDirectory: boolean;
    isSymlink: boolean;
  }
  interface FileInfo {
    isFile: boolean;
    isDirectory: boolean;
    isSymlink: boolean;
    size: number;
    mtime: Date;
    mode: number;
  }
  interface FetchOptions {
    method?: string;
    /** Host, Connection, Keep-Alive, Upgrade, Transfer-Encoding, Content-Length, TE, Trailer,
     *  Expect and Proxy-* are v8box's to set: naming one (in any case) fails with
     *  INVALID_ARGUMENT, as does a malformed name or value. */
    headers?: Record<string, string> | Array<[string, string]>;
    body?: string | Uint8Array | ArrayBuffer | ArrayBufferView;
  }
  interface FetchResponse {
    status: number;
    ok: boolean;
    /** The URL of the final hop, after allowed redirects. */
    url: string;
    /** Header names in lower case. */
    headers: Record<string, string>;
    body: Uint8Array;
    text(): Promise<string>;
    json(): Promise<unknown>;
  }
  type ErrorCode =
    | 'PERMISSION_DENIED' | 'NOT_FOUND' | 'ALREADY_EXISTS' | 'INVALID_ARGUMENT' | 'QUOTA_EXCEEDED'
    | 'TOO_LARGE' | 'IO' | 'NETWORK' | 'INTERNAL' | 'UNSUPPORTED';
  class SysError extends Error {
    readonly code: ErrorCode;
  }

  function readFile(path: string): Promise<Uint8Array>;
  function readTextFile(path: string): Promise<string>;
  function writeFile(path: string, data: string | Uint8Array | ArrayBuffer | ArrayBufferView,
    options?: { append?: boolean }): Promise<void>;
  function readDir(path: string): Promise<DirEntry[]>;
  function stat(path: string): Promise<FileInfo>;
  function remove(path: string, options?: { recursive?: boolean }): Promise<void>;
  function mkdir(path: string, options?: { recursive?: boolean }): Promise<void>;
  function rename(from: string, to: string): Promise<void>;
  /** Copies the file `from` (read permission) to `to` (write permission), replacing `to` atomically. */
  function copyFile(from: string, to: string): Promise<void>;
  /** The process's stdin, a byte stream (needs --allow-stdin or [stdin] allow = true). */
  const stdin: {
    /** Everything left on stdin. */
    read(): Promise<Uint8Array>;
    /** Everything left on stdin, decoded as UTF-8. */
    text(): Promise<string>;
    /** The next chunk (at most 64 KiB), or null at the end. */
    readChunk(): Promise<Uint8Array | null>;
    /** `for await (const chunk of sys.stdin)`: the chunks until the end. */
    [Symbol.asyncIterator](): AsyncIterator<Uint8Array>;
  };
  namespace env {
    /** The variable's value, or undefined when it is not set. Throws PermissionDenied. */
    function get(name: string): string | undefined;
  }
  /** Milliseconds since the Unix epoch. */
  function now(): number;
  /** Up to 65536 cryptographically secure random bytes. */
  function randomBytes(length: number): Uint8Array;
  function sleep(ms: number): Promise<void>;
  function fetch(url: string, options?: FetchOptions): Promise<FetchResponse>;
  namespace host {
    function send(channel: string, data: string | Uint8Array | ArrayBuffer | ArrayBufferView): Promise<void>;
    /** What a handler may return: for a host request (`RunHandle::request`), the answer
     *  (bytes or a string, or a promise of one; nothing answers with no bytes). For a plain
     *  message the value is ignored. */
    type HandlerResult = string | Uint8Array | ArrayBuffer | ArrayBufferView | null | undefined | void;
    /** Registers the handler for messages the host sends on `channel` (one per channel). */
    function onMessage(channel: string,
      handler: (data: Uint8Array, channel: string) => HandlerResult | Promise<HandlerResult>): void;
  }
  /** The script's command-line arguments. */
  const args: readonly string[];
  /** Ends the run with `code` at once. */
  function exit(code?: number): never;
  namespace errors {
    export { SysError };
    class PermissionDenied extends SysError {}
    class NotFound extends SysError {}
    class AlreadyExists extends SysError {}
    class InvalidArgument extends SysError {}
    class QuotaExceeded extends SysError {}
    class TooLarge extends SysError {}
    class Io extends SysError {}
    class Network extends SysError {}
    class Internal extends SysError {}
    class Unsupported extends SysError {}
  }
}

/** A first string argument may hold format specifiers: %s %d %i %f %o %O %c and %%. */
declare const console: {
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  /** To stderr. */
  warn(...args: unknown[]): void;
  /** To stderr. */
  error(...args: unknown[]): void;
};

declare function setTimeout<A extends unknown[]>(fn: (...args: A) => void, ms?: number, ...args: A): number;
declare function clearTimeout(id: number | undefined): void;
declare function setInterval<A extends unknown[]>(fn: (...args: A) => void, ms?: number, ...args: A): number;
declare function clearInterval(id: number | undefined): void;

// ---- Web-standard globals (js/web.js), after the WHATWG and W3C specifications.

type BufferSource = ArrayBuffer | ArrayBufferView;

declare class DOMException extends Error {
  constructor(message?: string, name?: string | { name?: string; cause?: unknown });
  readonly name: string;
  readonly message: string;
  /** The legacy code of the name (e.g. 20 for AbortError), or 0. */
  readonly code: number;
  static readonly ABORT_ERR: 20;
}

declare class TextEncoder {
  readonly encoding: 'utf-8';
  encode(input?: string): Uint8Array;
  encodeInto(source: string, destination: Uint8Array): { read: number; written: number };
}
declare class TextDecoder {
  /** UTF-8 only (its labels: "utf-8", "utf8", "unicode-1-1-utf-8", ...); any other is a RangeError. */
  constructor(label?: string, options?: { fatal?: boolean; ignoreBOM?: boolean });
  readonly encoding: 'utf-8';
  readonly fatal: boolean;
  readonly ignoreBOM: boolean;
  /** Invalid sequences become U+FFFD (one per maximal subpart), or a TypeError when `fatal`. */
  decode(input?: BufferSource, options?: { stream?: boolean }): string;
}

declare function atob(data: string): string;
declare function btoa(data: string): string;
/** Primitives, Object, Array, Date, RegExp, Map, Set, ArrayBuffer, typed arrays, DataView,
 *  Error types and boxed primitives, with cycles; a function or symbol is a DataCloneError.
 *  `transfer` is not supported. */
declare function structuredClone<T>(value: T, options?: { transfer?: [] }): T;
declare function queueMicrotask(callback: () => void): void;

declare const crypto: {
  /** An integer typed array of at most 65,536 bytes (QuotaExceededError); a float array is a TypeMismatchError. */
  getRandomValues<T extends Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array |
    Int32Array | Uint32Array | BigInt64Array | BigUint64Array>(array: T): T;
  /** A random version 4 UUID. */
  randomUUID(): string;
};

declare const performance: {
  /** Milliseconds since the run started, from a monotonic clock. */
  now(): number;
  /** The run's start, in milliseconds since the Unix epoch. */
  readonly timeOrigin: number;
  toJSON(): { timeOrigin: number };
};

interface EventInit { bubbles?: boolean; cancelable?: boolean; composed?: boolean }
declare class Event {
  constructor(type: string, init?: EventInit);
  readonly type: string;
  readonly bubbles: boolean;
  readonly cancelable: boolean;
  readonly composed: boolean;
  readonly target: EventTarget | null;
  readonly currentTarget: EventTarget | null;
  readonly eventPhase: number;
  readonly defaultPrevented: boolean;
  readonly isTrusted: boolean;
  readonly timeStamp: number;
  returnValue: boolean;
  cancelBubble: boolean;
  composedPath(): EventTarget[];
  preventDefault(): void;
  stopPropagation(): void;
  stopImmediatePropagation(): void;
  static readonly NONE: 0;
  static readonly CAPTURING_PHASE: 1;
  static readonly AT_TARGET: 2;
  static readonly BUBBLING_PHASE: 3;
}
type EventListenerOrObject = ((event: Event) => void) | { handleEvent(event: Event): void };
interface AddEventListenerOptions { capture?: boolean; once?: boolean; passive?: boolean; signal?: AbortSignal }
declare class EventTarget {
  addEventListener(type: string, listener: EventListenerOrObject | null, options?: boolean | AddEventListenerOptions): void;
  removeEventListener(type: string, listener: EventListenerOrObject | null, options?: boolean | { capture?: boolean }): void;
  /** False when a listener called preventDefault() on a cancelable event. */
  dispatchEvent(event: Event): boolean;
}

declare class AbortSignal extends EventTarget {
  private constructor();
  readonly aborted: boolean;
  readonly reason: unknown;
  onabort: ((event: Event) => void) | null;
  throwIfAborted(): void;
  static abort(reason?: unknown): AbortSignal;
  /** Aborted with a TimeoutError DOMException after `ms`; its timer does not keep the run alive. */
  static timeout(ms: number): AbortSignal;
  static any(signals: Iterable<AbortSignal>): AbortSignal;
}
declare class AbortController {
  readonly signal: AbortSignal;
  abort(reason?: unknown): void;
}

/** WHATWG URLs, parsed by the host's `url` crate (a pure operation, not audited). */
declare class URL {
  constructor(url: string | URL, base?: string | URL);
  static canParse(url: string | URL, base?: string | URL): boolean;
  static parse(url: string | URL, base?: string | URL): URL | null;
  href: string;
  readonly origin: string;
  protocol: string;
  username: string;
  password: string;
  host: string;
  hostname: string;
  port: string;
  pathname: string;
  search: string;
  hash: string;
  /** Live: changing it changes `search`, and the other way round. */
  readonly searchParams: URLSearchParams;
  toString(): string;
  toJSON(): string;
}
declare class URLSearchParams implements Iterable<[string, string]> {
  constructor(init?: string | URLSearchParams | Iterable<[string, string]> | Record<string, string>);
  readonly size: number;
  append(name: string, value: string): void;
  delete(name: string, value?: string): void;
  get(name: string): string | null;
  getAll(name: string): string[];
  has(name: string, value?: string): boolean;
  set(name: string, value: string): void;
  sort(): void;
  forEach(callback: (value: string, name: string, params: URLSearchParams) => void, thisArg?: unknown): void;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  entries(): IterableIterator<[string, string]>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
  /** application/x-www-form-urlencoded. */
  toString(): string;
}

type HeadersInit = Headers | Iterable<[string, string]> | Record<string, string>;
declare class Headers implements Iterable<[string, string]> {
  constructor(init?: HeadersInit);
  append(name: string, value: string): void;
  delete(name: string): void;
  /** The values of `name` (any case) joined by ", ", or null. */
  get(name: string): string | null;
  getSetCookie(): string[];
  has(name: string): boolean;
  set(name: string, value: string): void;
  forEach(callback: (value: string, name: string, headers: Headers) => void, thisArg?: unknown): void;
  keys(): IterableIterator<string>;
  values(): IterableIterator<string>;
  /** Sorted by lower-case name, values combined (each set-cookie on its own). */
  entries(): IterableIterator<[string, string]>;
  [Symbol.iterator](): IterableIterator<[string, string]>;
}
type BodyInit = string | BufferSource | URLSearchParams;
interface Body {
  readonly bodyUsed: boolean;
  text(): Promise<string>;
  json(): Promise<unknown>;
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array>;
}
interface RequestInit {
  method?: string;
  headers?: HeadersInit;
  body?: BodyInit | null;
  signal?: AbortSignal | null;
  /** Only "follow": v8box follows redirects, checking each hop against the policy. */
  redirect?: 'follow';
}
declare class Request implements Body {
  /** `input` must be an absolute URL (a script has no base URL). */
  constructor(input: string | URL | Request, init?: RequestInit);
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
  readonly signal: AbortSignal;
  readonly redirect: 'follow';
  readonly bodyUsed: boolean;
  clone(): Request;
  text(): Promise<string>;
  json(): Promise<unknown>;
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array>;
}
interface ResponseInit { status?: number; statusText?: string; headers?: HeadersInit }
declare class Response implements Body {
  constructor(body?: BodyInit | null, init?: ResponseInit);
  static json(data: unknown, init?: ResponseInit): Response;
  static error(): Response;
  static redirect(url: string | URL, status?: number): Response;
  readonly type: 'default' | 'basic' | 'error';
  readonly url: string;
  readonly redirected: boolean;
  readonly status: number;
  readonly ok: boolean;
  readonly statusText: string;
  readonly headers: Headers;
  readonly bodyUsed: boolean;
  clone(): Response;
  text(): Promise<string>;
  json(): Promise<unknown>;
  arrayBuffer(): Promise<ArrayBuffer>;
  bytes(): Promise<Uint8Array>;
}
/** `sys.fetch` under the Fetch API: the same `net.fetch` grant and audit records. Headers that
 *  v8box sets itself (Host, Content-Length, Connection, ...) are left out, as browsers leave
 *  out forbidden request headers. A network failure rejects with a TypeError whose `cause` is
 *  the sys error; a denial rejects with sys.errors.PermissionDenied; an abort with the
 *  signal's reason (the request itself still runs to its end, and is recorded). */
declare function fetch(input: string | URL | Request, init?: RequestInit): Promise<Response>;
