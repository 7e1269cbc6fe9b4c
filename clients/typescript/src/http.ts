/**
 * The HTTP routes (spec sections 11 and 15), for what has no WebSocket
 * frame: the files API. One `fetch` per call, with the client's credential
 * as `Authorization: Bearer`, error answers (`{"error": {"code",
 * "message"}}`) turned into {@link BlazeError}s in one place, and every
 * request in flight cancelled by `Blaze.close()`.
 */
import { fetchToken, type TokenProvider } from "./credential.js";
import { BlazeError, invalidArgument, LocalErrorCode, type WireError } from "./errors.js";
import {
  globalFetch,
  newAbortController,
  startTimer,
  stopTimer,
  type AbortSignalLike,
  type FetchFunction,
  type FetchInit,
  type FetchResponseLike,
} from "./platform.js";

/** What the client's HTTP requests need from its configuration. */
export interface HttpSettings {
  /** The server's URL as `http(s)://host[/prefix]`, without a trailing `/`. */
  readonly base: string;
  /** A fixed credential (admin key or token). */
  readonly auth?: string | undefined;
  /** A token provider, asked before every request. */
  readonly getToken?: TokenProvider | undefined;
  /** The `fetch` to use; `globalThis.fetch` when absent. */
  readonly fetch?: FetchFunction | undefined;
  /** The bound of a {@link HttpRequest} with `timed`. */
  readonly requestTimeoutMs: number;
}

/** One HTTP request. */
export interface HttpRequest {
  /** The method. */
  readonly method: string;
  /** The route and query string, from `/v1/`. */
  readonly path: string;
  /** Headers besides `Authorization`. */
  readonly headers?: Record<string, string>;
  /** The body, as `fetch` takes it. */
  readonly body?: unknown;
  /**
   * Whether the request changes nothing (a read, a query): a network failure
   * is then `unavailable`; for a write it is `outcome_unknown` (the server
   * may have applied it).
   */
  readonly safe: boolean;
  /**
   * Whether `requestTimeoutMs` bounds the whole request (small JSON
   * requests); transfers of file bytes are not bounded (use `signal`).
   */
  readonly timed: boolean;
  /** The application's `AbortSignal`: when it fires, the request fails with `cancelled`. */
  readonly signal?: AbortSignalLike | undefined;
}

/** `http(s)://…` for a client URL given as `http(s)://` or `ws(s)://`, without a trailing `/`. */
export function httpBase(url: string): string {
  const trimmed = url.replace(/\/+$/, "");
  const match = /^(https?|wss?):\/\//i.exec(trimmed);
  if (match === null) throw invalidArgument(`the server URL must start with http://, https://, ws:// or wss://, got ${JSON.stringify(url)}`);
  const scheme = (match[1] as string).toLowerCase();
  const httpScheme = scheme === "https" || scheme === "wss" ? "https" : "http";
  return httpScheme + trimmed.slice(scheme.length);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * The {@link BlazeError} of an error answer: the code of its `{"error":
 * {...}}` body (spec 11.2), or `protocol_error` naming the status when the
 * body is not one (an answer from something in front of the server).
 */
export async function errorFromResponse(response: FetchResponseLike): Promise<BlazeError> {
  let text = "";
  try {
    text = await response.text();
  } catch {
    // no body to read
  }
  try {
    const body: unknown = JSON.parse(text);
    if (isObject(body) && isObject(body.error) && typeof body.error.code === "string") {
      return BlazeError.fromWire(body.error as unknown as WireError);
    }
  } catch {
    // not JSON
  }
  const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
  return new BlazeError(LocalErrorCode.protocolError, `HTTP ${response.status} without an error object${shown === "" ? "" : `: ${shown}`}`);
}

/** The JSON body of a successful answer (`protocol_error` when it is not JSON). */
export async function readJson(response: FetchResponseLike): Promise<unknown> {
  const text = await response.text();
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new BlazeError(LocalErrorCode.protocolError, `expected a JSON answer, got ${JSON.stringify(text.slice(0, 200))}`);
  }
}

/** The client's HTTP side: base URL, credential, `fetch`, and the requests in flight. */
export class HttpClient {
  /** `http(s)://host[/prefix]`. */
  readonly base: string;
  readonly #settings: HttpSettings;
  readonly #inFlight = new Set<(error: BlazeError) => void>();
  #closed = false;

  /** Creates the HTTP side of a client. */
  constructor(settings: HttpSettings) {
    this.#settings = settings;
    this.base = settings.base;
  }

  /**
   * Sends `request` and hands a successful answer (status below 400) to
   * `read`; an error answer rejects with its {@link BlazeError}. Network
   * failures, the application's `signal`, `requestTimeoutMs` and
   * {@link close} reject with `unavailable` / `outcome_unknown`,
   * `cancelled`, `deadline_exceeded` and `cancelled`.
   */
  async send<T>(request: HttpRequest, read: (response: FetchResponseLike) => Promise<T>): Promise<T> {
    if (this.#closed) throw new BlazeError(LocalErrorCode.cancelled, "the client is closed");
    const fetch = this.#settings.fetch ?? globalFetch();
    if (fetch === undefined) throw invalidArgument("this runtime has no global fetch: pass one in options.fetch");
    const signal = request.signal;
    const aborted = () => new BlazeError(LocalErrorCode.cancelled, "the request was aborted by its signal");
    if (signal?.aborted === true) throw aborted();

    const controller = newAbortController();
    let stopped: BlazeError | undefined;
    let rejectStopped!: (error: BlazeError) => void;
    const whenStopped = new Promise<never>((_, reject) => {
      rejectStopped = reject;
    });
    const stop = (error: BlazeError) => {
      if (stopped !== undefined) return;
      stopped = error;
      controller?.abort();
      rejectStopped(error);
    };
    const onAbort = () => stop(aborted());
    signal?.addEventListener("abort", onAbort);
    this.#inFlight.add(stop);
    const ms = this.#settings.requestTimeoutMs;
    const timer = request.timed
      ? startTimer(() => stop(new BlazeError(LocalErrorCode.deadlineExceeded, `no answer within ${ms} ms`)), ms)
      : undefined;

    const work = (async () => {
      const headers: Record<string, string> = { ...request.headers };
      const token = await this.#credential();
      if (token !== null) headers.Authorization = `Bearer ${token}`;
      if (stopped !== undefined) throw stopped;
      const init: FetchInit = { method: request.method, headers };
      if (request.body !== undefined) init.body = request.body;
      if (controller !== undefined) init.signal = controller.signal;
      try {
        const response = await fetch(`${this.base}${request.path}`, init);
        if (response.status >= 400) throw await errorFromResponse(response);
        return await read(response);
      } catch (error) {
        if (stopped !== undefined) throw stopped;
        if (error instanceof BlazeError) throw error;
        const why = error instanceof Error ? error.message : String(error);
        throw request.safe
          ? new BlazeError(LocalErrorCode.unavailable, `the request failed: ${why}`)
          : new BlazeError(LocalErrorCode.outcomeUnknown, `the request failed, and may or may not have been applied: ${why}`);
      }
    })();
    try {
      return await Promise.race([work, whenStopped]);
    } finally {
      stopTimer(timer);
      signal?.removeEventListener("abort", onAbort);
      this.#inFlight.delete(stop);
    }
  }

  /** Cancels every request in flight (`cancelled`); later requests fail with `cancelled`. */
  close(): void {
    this.#closed = true;
    for (const stop of [...this.#inFlight]) stop(new BlazeError(LocalErrorCode.cancelled, "the client was closed"));
  }

  /** The credential to send: the fixed `auth`, the provider's token, or `null` (anonymous). */
  async #credential(): Promise<string | null> {
    const { auth, getToken } = this.#settings;
    if (auth !== undefined) return auth;
    if (getToken === undefined) return null;
    try {
      return await fetchToken(getToken);
    } catch (error) {
      throw new BlazeError("unauthenticated", `the token provider failed: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
