/**
 * The few host facilities the client needs, typed locally so the package
 * compiles against the plain ES2022 library (no DOM or Node typings) and runs
 * in browsers, Node 20+, Deno, Bun and workers alike.
 */

/** Minimal `MessageEvent` surface read by the client. */
export interface MessageEventLike {
  /** The frame: a string for text frames. */
  readonly data: unknown;
}

/** Minimal `CloseEvent` surface read by the client. */
export interface CloseEventLike {
  /** WebSocket close code (1006 when the connection was lost without a close frame). */
  readonly code: number;
  /** Close reason text sent by the peer, if any. */
  readonly reason: string;
}

/**
 * The WebSocket surface the client uses: the WHATWG API (browsers, Node 22+,
 * Deno, Bun, undici) and the npm package `ws` both provide it.
 */
export interface WebSocketLike {
  /** Sends one text frame. */
  send(data: string): void;
  /** Closes the socket. */
  close(code?: number, reason?: string): void;
  /** Called when the socket is open. */
  onopen: ((event: unknown) => void) | null;
  /** Called for every frame received. */
  onmessage: ((event: MessageEventLike) => void) | null;
  /** Called once when the socket has closed (also after a failed connection attempt). */
  onclose: ((event: CloseEventLike) => void) | null;
  /** Called on errors; a `close` event always follows. */
  onerror: ((event: unknown) => void) | null;
}

/**
 * A WebSocket constructor, such as `globalThis.WebSocket` or the default export
 * of the npm package `ws`. It is typed loosely on purpose so that both the DOM
 * and the `ws` typings are accepted; the instance must behave as
 * {@link WebSocketLike}.
 */
export type WebSocketConstructor = new (url: string) => unknown;

type TimerHandle = unknown;

/** The `addEventListener` surface of `globalThis` and `document` in browsers. */
interface EventTargetLike {
  addEventListener?(type: string, listener: () => void): void;
  removeEventListener?(type: string, listener: () => void): void;
}

interface HostGlobals extends EventTargetLike {
  document?: EventTargetLike & { visibilityState?: string };
  WebSocket?: WebSocketConstructor;
  fetch?: FetchFunction;
  AbortController?: new () => AbortControllerLike;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
  TextEncoder?: new () => { encode(input: string): Uint8Array };
  Blob?: new (parts: Uint8Array[], options: { type: string }) => unknown;
  ReadableStream?: new (source: ByteSourceLike, strategy?: { highWaterMark: number }) => ReadableStreamLike;
  crypto?: { getRandomValues<T extends Uint8Array>(array: T): T };
  console?: { error(...args: unknown[]): void };
  reportError?: (error: unknown) => void;
}

const host = globalThis as unknown as HostGlobals;

/** The global WebSocket constructor, if the host has one. */
export function globalWebSocket(): WebSocketConstructor | undefined {
  return typeof host.WebSocket === "function" ? host.WebSocket : undefined;
}

/**
 * The response surface the client reads: the WHATWG `Response` (browsers,
 * Node 18+, Deno, Bun, workers) provides it.
 */
export interface FetchResponseLike {
  /** The HTTP status. */
  readonly status: number;
  /** The response headers. */
  readonly headers: { get(name: string): string | null };
  /** The whole body as bytes. */
  arrayBuffer(): Promise<ArrayBuffer>;
  /** The body as a WHATWG `ReadableStream` of bytes, where the host has one (typed loosely). */
  readonly body?: unknown;
  /** The whole body as text. */
  text(): Promise<string>;
}

/** What the client passes to `fetch` (a subset of the WHATWG `RequestInit`). */
export interface FetchInit {
  /** The HTTP method. */
  method: string;
  /** Request headers. */
  headers: Record<string, string>;
  /** The body: bytes, a `Blob`, or a string (typed loosely so that the DOM and Node typings both accept it). */
  body?: any;
  /** An `AbortSignal` (typed loosely, as `body`). */
  signal?: any;
}

/**
 * A `fetch` function, such as `globalThis.fetch` (browsers, Node 18+) or a
 * wrapper of it. The client calls it with a URL string and a {@link FetchInit}.
 */
export type FetchFunction = (url: string, init: FetchInit) => Promise<FetchResponseLike>;

/** The global `fetch`, bound to the global object, if the host has one. */
export function globalFetch(): FetchFunction | undefined {
  const fetch = host.fetch;
  return typeof fetch === "function" ? (url, init) => fetch.call(globalThis, url, init) : undefined;
}

/** The `AbortSignal` surface the client uses (the WHATWG `AbortSignal`). */
export interface AbortSignalLike {
  /** Whether it fired. */
  readonly aborted: boolean;
  /** Adds a listener of the `abort` event. */
  addEventListener(type: "abort", listener: () => void): void;
  /** Removes it. */
  removeEventListener(type: "abort", listener: () => void): void;
}

/** The `AbortController` surface the client uses. */
export interface AbortControllerLike {
  /** The signal it fires. */
  readonly signal: AbortSignalLike;
  /** Fires the signal. */
  abort(): void;
}

/** A new `AbortController`, or `undefined` where the host has none. */
export function newAbortController(): AbortControllerLike | undefined {
  return typeof host.AbortController === "function" ? new host.AbortController() : undefined;
}

/** The WHATWG `ReadableStream` surface {@link getStream} returns: read it with `getReader()`, `for await`, or `pipeTo`. */
export interface ReadableStreamLike {
  /** A reader of its chunks. */
  getReader(): { read(): Promise<{ done: boolean; value?: Uint8Array }>; cancel(reason?: unknown): Promise<void>; releaseLock(): void };
  /** Cancels it: the download stops. */
  cancel(reason?: unknown): Promise<void>;
}

/** The controller a {@link ByteSourceLike} is given (the WHATWG `ReadableStreamDefaultController`). @internal */
export interface StreamControllerLike {
  readonly desiredSize: number | null;
  enqueue(chunk: Uint8Array): void;
  close(): void;
  error(reason: unknown): void;
}

/** The underlying source of a `ReadableStream`. @internal */
export interface ByteSourceLike {
  start(controller: StreamControllerLike): void;
  pull(): void;
  cancel(): void;
}

/** A `ReadableStream` over `source`, or `undefined` on a host without one. @internal */
export function makeReadableStream(source: ByteSourceLike): ReadableStreamLike | undefined {
  return typeof host.ReadableStream === "function" ? new host.ReadableStream(source, { highWaterMark: 1 }) : undefined;
}

/** An opaque timer handle returned by {@link startTimer}. */
export type Timer = TimerHandle;

/** Runs `callback` once after `ms` milliseconds. */
export function startTimer(callback: () => void, ms: number): Timer {
  return host.setTimeout(callback, ms);
}

/** Cancels a timer started by {@link startTimer}; `undefined` is ignored. */
export function stopTimer(timer: Timer | undefined): void {
  if (timer !== undefined) host.clearTimeout(timer);
}

let encoder: { encode(input: string): Uint8Array } | undefined;

/** The number of UTF-8 bytes of `text`. */
export function utf8Length(text: string): number {
  if (host.TextEncoder !== undefined) {
    encoder ??= new host.TextEncoder();
    return encoder.encode(text).length;
  }
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length) {
      bytes += 4;
      i++;
    } else bytes += 3;
  }
  return bytes;
}

/** The UTF-8 bytes of `text` (a lone surrogate becomes U+FFFD, as `TextEncoder` does). */
export function utf8Encode(text: string): Uint8Array {
  if (host.TextEncoder !== undefined) {
    encoder ??= new host.TextEncoder();
    return encoder.encode(text);
  }
  const bytes: number[] = [];
  for (const char of text) {
    let point = char.codePointAt(0) as number;
    if (point >= 0xd800 && point <= 0xdfff) point = 0xfffd;
    if (point < 0x80) bytes.push(point);
    else if (point < 0x800) bytes.push(0xc0 | (point >> 6), 0x80 | (point & 0x3f));
    else if (point < 0x10000) bytes.push(0xe0 | (point >> 12), 0x80 | ((point >> 6) & 0x3f), 0x80 | (point & 0x3f));
    else bytes.push(0xf0 | (point >> 18), 0x80 | ((point >> 12) & 0x3f), 0x80 | ((point >> 6) & 0x3f), 0x80 | (point & 0x3f));
  }
  return Uint8Array.from(bytes);
}

/** A host `Blob` of `bytes` with media type `type`; `undefined` on a host without `Blob`. */
export function makeBlob(bytes: Uint8Array, type: string): unknown {
  return typeof host.Blob === "function" ? new host.Blob([bytes], { type }) : undefined;
}

/**
 * Calls `callback` whenever the host says a connection attempt is worth making
 * now: the `online` event on `globalThis` (only where it has
 * `addEventListener`, i.e. browsers and Deno), and `visibilitychange` on
 * `document` when the page becomes visible again. Returns the function that
 * removes these listeners.
 */
export function onWakeUp(callback: () => void): () => void {
  const stops: Array<() => void> = [];
  if (typeof host.addEventListener === "function") {
    const online = () => callback();
    host.addEventListener("online", online);
    stops.push(() => host.removeEventListener?.("online", online));
  }
  const document = host.document;
  if (document !== undefined && typeof document.addEventListener === "function") {
    const visible = () => {
      if (document.visibilityState === "visible") callback();
    };
    document.addEventListener("visibilitychange", visible);
    stops.push(() => document.removeEventListener?.("visibilitychange", visible));
  }
  return () => {
    for (const stop of stops.splice(0)) stop();
  };
}

/** Fills `bytes` with random values (cryptographic when the host has `crypto`). */
export function randomBytes(bytes: Uint8Array): Uint8Array {
  if (host.crypto !== undefined) return host.crypto.getRandomValues(bytes);
  for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  return bytes;
}

/**
 * Reports an exception thrown by application code (a listener callback)
 * without letting it break the client: `reportError` where the host has it
 * (browsers), else `console.error`.
 */
export function reportCallbackError(error: unknown): void {
  if (typeof host.reportError === "function") host.reportError(error);
  else host.console?.error("blaze: a listener callback threw", error);
}
