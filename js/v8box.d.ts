// TypeScript declarations for the globals a v8box script sees.

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
    /** Registers the handler for messages the host sends on `channel` (one per channel). */
    function onMessage(channel: string, handler: (data: Uint8Array, channel: string) => void): void;
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
