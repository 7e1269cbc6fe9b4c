/**
 * Firebase Storage's `getStream`: a file's bytes as a WHATWG
 * `ReadableStream`, read from the network as the stream is read, so a large
 * file is never held whole.
 */
import { BlazeError, invalidArgument } from "./errors.js";
import { makeReadableStream, newAbortController, type FetchResponseLike, type ReadableStreamLike, type StreamControllerLike } from "./platform.js";
import { checkRef, filesRoute, protocolError, rangeHeader, type ByteRange, type FileRef, type GetBytesOptions } from "./storage.js";

/**
 * The file `ref` (or `options.range` of it) as a `ReadableStream` of byte
 * chunks (`GET /v1/files/{path}`, as {@link getBytes}), returned at once:
 * the request starts now, and its errors (`not_found`,
 * `permission_denied`, `range_not_satisfiable`, a lost connection) error
 * the stream. The download goes only as fast as the stream is read, and
 * cancelling the stream (or `options.signal`) stops it (`cancelled`).
 * Unlike Firebase's (Node-only) it is a WHATWG stream, in every host that
 * has a global `ReadableStream` (browsers, Node 18+, Deno, Workers);
 * `invalid_argument` elsewhere.
 */
export function getStream(ref: FileRef, options: GetBytesOptions = {}): ReadableStreamLike {
  checkRef(ref, "getStream");
  const range = options.range;
  const headers: Record<string, string> = {};
  if (range !== undefined) headers.Range = rangeHeader(range);
  const stop = newAbortController();
  const outer = options.signal;
  let wake: (() => void) | undefined;
  let ended = false;
  const source = {
    start(controller: StreamControllerLike) {
      const onAbort = () => stop?.abort();
      outer?.addEventListener("abort", onAbort);
      if (outer?.aborted === true) stop?.abort();
      const read = async (response: FetchResponseLike) => {
        const window = Window.of(response, range);
        const body = response.body as { getReader?: () => { read(): Promise<{ done: boolean; value?: Uint8Array }> } } | null | undefined;
        if (typeof body?.getReader !== "function") {
          // A fetch without streamed bodies: the bytes at once.
          window.pass(new Uint8Array(await response.arrayBuffer()), controller);
        } else {
          const reader = body.getReader();
          for (;;) {
            while (!ended && (controller.desiredSize ?? 1) <= 0) await new Promise<void>((resolve) => (wake = resolve));
            if (ended) return;
            const { done, value } = await reader.read();
            if (done) break;
            if (value !== undefined) window.pass(value, controller);
          }
        }
        window.finish();
        ended = true;
        controller.close();
      };
      const request = { method: "GET", path: filesRoute(ref), headers, safe: true, timed: false, signal: stop?.signal ?? outer };
      ref._db._http
        .send(request, read)
        .catch((error: unknown) => {
          if (!ended) controller.error(error);
          ended = true;
        })
        .finally(() => outer?.removeEventListener("abort", onAbort));
    },
    pull() {
      wake?.();
      wake = undefined;
    },
    cancel() {
      ended = true;
      stop?.abort();
      wake?.();
    },
  };
  const stream = makeReadableStream(source);
  if (stream === undefined) throw invalidArgument("getStream() needs a host with a global ReadableStream (use getBytes)");
  return stream;
}

/**
 * Which of an answer's bytes the stream passes on: all of a 200 to a
 * request for every byte or of a 206 (checked against its
 * `Content-Range`), or the asked range of a 200 that ignored `Range` (a
 * proxy), as `getBytes` slices it.
 */
class Window {
  #skip: number;
  #left: number;
  #seen = 0;
  #expected: number | undefined;
  #unsatisfiable: (() => BlazeError) | undefined;

  private constructor(skip: number, left: number, expected: number | undefined, unsatisfiable?: () => BlazeError) {
    this.#skip = skip;
    this.#left = left;
    this.#expected = expected;
    this.#unsatisfiable = unsatisfiable;
  }

  /** The window of `response`, an answer to a request for `range` (`protocol_error` for an answer that is none). */
  static of(response: FetchResponseLike, range: ByteRange | undefined): Window {
    if (response.status === 206) return Window.#partial(response, range);
    if (response.status !== 200) throw protocolError(`a download answered ${response.status}`);
    if (range === undefined) return new Window(0, Infinity, undefined);
    const length = response.headers.get("Content-Length");
    const size = length !== null && /^\d+$/.test(length.trim()) ? Number(length) : undefined;
    const unsatisfiable = () => new BlazeError("range_not_satisfiable", `the file has ${size ?? "fewer"} bytes`);
    if ("suffix" in range) {
      if (size === undefined) throw protocolError("a 200 answer to a suffix Range without Content-Length");
      if (size === 0) throw unsatisfiable();
      return new Window(Math.max(0, size - range.suffix), Infinity, undefined);
    }
    if (size !== undefined && range.offset >= size) throw unsatisfiable();
    return new Window(range.offset, range.length ?? Infinity, undefined, unsatisfiable);
  }

  /** A 206's window: every byte, as many as its `Content-Range` says, which must answer `range`. */
  static #partial(response: FetchResponseLike, range: ByteRange | undefined): Window {
    const header = response.headers.get("Content-Range") ?? "";
    const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(header.trim());
    const bad = () => protocolError(`a 206 answer with Content-Range ${JSON.stringify(header)} to a request for ${range === undefined ? "every byte" : rangeHeader(range)}`);
    if (range === undefined || match === null) throw bad();
    const first = Number(match[1]);
    const last = Number(match[2]);
    const size = match[3] === "*" ? undefined : Number(match[3]);
    const count = last - first + 1;
    const fits =
      last >= first &&
      ("suffix" in range
        ? count <= range.suffix && (size === undefined || last === size - 1)
        : first === range.offset && (range.length === undefined ? size === undefined || last === size - 1 : count <= range.length));
    if (!fits) throw bad();
    return new Window(0, Infinity, count);
  }

  /** Passes the part of `chunk` inside the window to `controller`. */
  pass(chunk: Uint8Array, controller: StreamControllerLike): void {
    const start = this.#seen < this.#skip ? Math.min(chunk.length, this.#skip - this.#seen) : 0;
    this.#seen += chunk.length;
    const end = Math.min(chunk.length, start + this.#left);
    if (end > start) {
      this.#left -= end - start;
      controller.enqueue(chunk.subarray(start, end));
    }
    if (this.#expected !== undefined && this.#seen > this.#expected) throw protocolError(`more than the ${this.#expected} bytes the answer announced`);
  }

  /** Checks, at the end of the body, that it held what the window needed. */
  finish(): void {
    if (this.#expected !== undefined && this.#seen !== this.#expected) throw protocolError(`${this.#seen} bytes where the answer announced ${this.#expected}`);
    if (this.#unsatisfiable !== undefined && this.#seen <= this.#skip) throw this.#unsatisfiable();
  }
}
