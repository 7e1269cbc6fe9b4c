/**
 * Resumable uploads (spec 15.7) in the shape of Firebase Storage's
 * `uploadBytesResumable`: an {@link UploadTask} that starts a multipart
 * upload, sends its parts one after the other (each `part_bytes` long, as
 * the server chose), reports progress as parts are stored, retries a part
 * that failed with backoff, pauses, resumes (asking the server which parts
 * it holds and sending only the others), and cancels (aborting the upload
 * on the server).
 */
import { backoffDelay, type ReconnectOptions } from "./backoff.js";
import { BlazeError, invalidArgument, LocalErrorCode } from "./errors.js";
import { readJson, type HttpRequest } from "./http.js";
import { isJsonObject } from "./json.js";
import { newAbortController, reportCallbackError, startTimer, stopTimer, type AbortControllerLike, type Timer } from "./platform.js";
import {
  checkRef,
  filesRoute,
  isUint,
  metadataHeader,
  presentationHeaders,
  protocolError,
  uploadBody,
  uploadContentType,
  uploadResultOf,
  type BlobLike,
  type FileRef,
  type Presentation,
  type UploadResult,
} from "./storage.js";

/** The state of an {@link UploadTask}, as Firebase Storage's `TaskState`. */
export type TaskState = "running" | "paused" | "success" | "canceled" | "error";

/** What an {@link UploadTask} has done so far, as Firebase Storage's `UploadTaskSnapshot`. */
export interface UploadTaskSnapshot {
  /** The bytes of the parts the server has stored (it grows part by part and never shrinks). */
  readonly bytesTransferred: number;
  /** The file's size. */
  readonly totalBytes: number;
  /** The task's state when the snapshot was taken. */
  readonly state: TaskState;
  /** The completed upload's answer, once `state` is `success`. */
  readonly metadata?: UploadResult;
  /** The task. */
  readonly task: UploadTask;
  /** The file being uploaded. */
  readonly ref: FileRef;
}

/** The file's type, custom metadata and presentation, as {@link uploadBytesResumable}'s third argument (Firebase's `UploadMetadata`). */
export interface UploadMetadata extends Presentation {
  /** Default: the `Blob`'s type when it has one, else `application/octet-stream`. */
  contentType?: string;
  /** Custom metadata: an object of strings. */
  customMetadata?: Record<string, string>;
}

/** How an {@link UploadTask} retries. */
export interface ResumableUploadOptions {
  /** The backoff between attempts after a failed request (full jitter; default 250 ms doubling to 10 s). */
  retry?: ReconnectOptions;
  /** How long the task keeps retrying without progress (a part stored) before it fails (default 600000 ms, Firebase's `maxUploadRetryTime`). */
  maxRetryTimeMs?: number;
}

/** Callbacks of {@link UploadTask.on}. */
export interface UploadObserver {
  /** Each progress step and each state change (running, paused, success). */
  next?: (snapshot: UploadTaskSnapshot) => void;
  /** The task failed or was cancelled (code `cancelled`). */
  error?: (error: BlazeError) => void;
  /** The upload completed. */
  complete?: () => void;
}

const DEFAULT_RETRY = { initialMs: 250, maxMs: 10_000 } as const;
const DEFAULT_MAX_RETRY_TIME_MS = 600_000;

/** Error codes a later attempt may not meet: the network, the server's load, a part cut short. */
const RETRYABLE = new Set<string>([
  LocalErrorCode.unavailable,
  LocalErrorCode.outcomeUnknown,
  LocalErrorCode.deadlineExceeded,
  "unavailable",
  "upload_incomplete",
  "resource_exhausted",
]);

/** The upload as the server described it when it started (spec 15.7 step 1). */
interface Plan {
  readonly id: string;
  readonly partBytes: number;
  readonly parts: number;
}

/** The bytes of the file, part by part. */
class PartSource {
  readonly size: number;
  readonly #body: Uint8Array | BlobLike;
  #whole: Promise<Uint8Array> | undefined;

  constructor(body: Uint8Array | BlobLike) {
    this.#body = body;
    this.size = body instanceof Uint8Array ? body.length : body.size;
  }

  /** The bytes from `start` to `end` (exclusive), as a request body. */
  async slice(start: number, end: number): Promise<Uint8Array | BlobLike> {
    const body = this.#body;
    if (body instanceof Uint8Array) return body.subarray(start, end);
    if (typeof body.slice === "function") return body.slice(start, end);
    this.#whole ??= body.arrayBuffer().then((buffer) => new Uint8Array(buffer));
    return (await this.#whole).subarray(start, end);
  }
}

/**
 * A resumable upload in progress (Firebase Storage's `UploadTask`): watch
 * it with {@link on}, control it with {@link pause}, {@link resume} and
 * {@link cancel}, and await it (it is then-able) for the final snapshot.
 * Make one with {@link uploadBytesResumable}.
 */
export class UploadTask implements PromiseLike<UploadTaskSnapshot> {
  readonly #ref: FileRef;
  readonly #source: PartSource;
  readonly #startHeaders: Record<string, string>;
  readonly #retry: { initialMs: number; maxMs: number };
  readonly #maxRetryTimeMs: number;
  readonly #observers = new Set<UploadObserver>();
  readonly #promise: Promise<UploadTaskSnapshot>;
  #resolve!: (snapshot: UploadTaskSnapshot) => void;
  #reject!: (error: BlazeError) => void;

  #state: TaskState = "running";
  #plan: Plan | undefined;
  /** The parts the server holds, as far as the task knows. */
  #stored = new Set<number>();
  #bytesTransferred = 0;
  #result: UploadResult | undefined;
  #failure: BlazeError | undefined;
  /** Whether the parts the server holds must be asked for before sending more (after a failure or a pause). */
  #mustSync = false;
  /** Whether a completion was sent whose answer was lost (it may have been applied). */
  #completionUnknown = false;
  #completing = false;
  /** Whether the request loop is running. */
  #driving = false;
  /** Bumped by pause and cancel, so the loop tells an interrupted request from a failed one. */
  #generation = 0;
  /** The part request in flight, aborted by pause and cancel. */
  #partRequest: AbortControllerLike | undefined;
  /** Ends the backoff wait early (pause, cancel). */
  #wake: (() => void) | undefined;

  /** @internal Use {@link uploadBytesResumable}. */
  constructor(ref: FileRef, data: Uint8Array | ArrayBuffer | BlobLike, metadata: UploadMetadata, options: ResumableUploadOptions) {
    this.#ref = checkRef(ref, "uploadBytesResumable");
    ref._file();
    const body = uploadBody(data, "uploadBytesResumable");
    this.#source = new PartSource(body);
    this.#startHeaders = { "X-Blaze-Upload-Length": String(this.#source.size), "X-Blaze-Content-Type": uploadContentType(body, metadata.contentType) };
    if (metadata.customMetadata !== undefined) this.#startHeaders["X-Blaze-Metadata"] = metadataHeader(metadata.customMetadata);
    presentationHeaders(metadata, this.#startHeaders);
    this.#retry = {
      initialMs: positive(options.retry?.initialMs, DEFAULT_RETRY.initialMs, "retry.initialMs"),
      maxMs: positive(options.retry?.maxMs, DEFAULT_RETRY.maxMs, "retry.maxMs"),
    };
    this.#maxRetryTimeMs = positive(options.maxRetryTimeMs, DEFAULT_MAX_RETRY_TIME_MS, "maxRetryTimeMs");
    this.#promise = new Promise<UploadTaskSnapshot>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // A failure reaches the observers too: an unawaited task must not be an unhandled rejection.
    this.#promise.catch(() => undefined);
    void this.#drive();
  }

  /** The task's progress and state now. */
  get snapshot(): UploadTaskSnapshot {
    const snapshot = { bytesTransferred: this.#bytesTransferred, totalBytes: this.#source.size, state: this.#state, task: this, ref: this.#ref };
    return this.#result === undefined ? snapshot : { ...snapshot, metadata: this.#result };
  }

  /**
   * Watches the task: `next` on each progress step and state change,
   * `error` when it fails or is cancelled, `complete` when it succeeds (at
   * once, asynchronously, for a task already finished). Returns the
   * function that stops watching.
   */
  on(
    event: "state_changed",
    nextOrObserver?: UploadObserver | ((snapshot: UploadTaskSnapshot) => void) | null,
    error?: ((error: BlazeError) => void) | null,
    complete?: (() => void) | null,
  ): () => void {
    if (event !== "state_changed") throw invalidArgument(`UploadTask.on() knows only "state_changed", got ${JSON.stringify(event)}`);
    const observer: UploadObserver =
      typeof nextOrObserver === "function" || nextOrObserver == null
        ? { next: nextOrObserver ?? undefined, error: error ?? undefined, complete: complete ?? undefined }
        : nextOrObserver;
    this.#observers.add(observer);
    if (this.#state === "success") void Promise.resolve().then(() => call(() => observer.complete?.()));
    const failure = this.#failure;
    if (failure !== undefined) void Promise.resolve().then(() => call(() => observer.error?.(failure)));
    return () => {
      this.#observers.delete(observer);
    };
  }

  /**
   * Pauses a running task: the part in flight is abandoned (its request
   * aborted) and nothing more is sent until {@link resume}. `false` when the
   * task is not running or is completing.
   */
  pause(): boolean {
    if (this.#state !== "running" || this.#completing) return false;
    this.#interrupt("paused");
    this.#notify();
    return true;
  }

  /**
   * Resumes a paused task: it asks the server which parts it holds and
   * sends only the others. `false` when the task is not paused.
   */
  resume(): boolean {
    if (this.#state !== "paused") return false;
    this.#state = "running";
    this.#mustSync = this.#plan !== undefined;
    this.#notify();
    void this.#drive();
    return true;
  }

  /**
   * Cancels the task: the part in flight is abandoned and the upload is
   * aborted on the server (`DELETE ?upload=`); the task fails with
   * `cancelled`. `false` when it has already finished or is completing.
   */
  cancel(): boolean {
    if ((this.#state !== "running" && this.#state !== "paused") || this.#completing) return false;
    this.#interrupt("canceled");
    this.#abortOnServer();
    this.#finish(new BlazeError(LocalErrorCode.cancelled, "the upload was cancelled"));
    return true;
  }

  /** The final snapshot (`state: "success"`, with `metadata`) once the upload completes; rejects when it fails or is cancelled. */
  then<A = UploadTaskSnapshot, B = never>(
    onFulfilled?: ((snapshot: UploadTaskSnapshot) => A | PromiseLike<A>) | null,
    onRejected?: ((error: BlazeError) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#promise.then(onFulfilled, onRejected);
  }

  /** As `Promise.catch`. */
  catch<B = never>(onRejected?: ((error: BlazeError) => B | PromiseLike<B>) | null): Promise<UploadTaskSnapshot | B> {
    return this.#promise.catch(onRejected);
  }

  /** Stops what is in flight or waiting, and enters `state`. */
  #interrupt(state: "paused" | "canceled"): void {
    this.#state = state;
    this.#generation++;
    this.#partRequest?.abort();
    this.#wake?.();
  }

  /** Sends requests until the task is no longer running: start, (sync,) the missing parts, complete, with retries. */
  async #drive(): Promise<void> {
    if (this.#driving) return;
    this.#driving = true;
    let attempt = 0;
    let lastProgress = Date.now();
    try {
      while (this.#state === "running") {
        const generation = this.#generation;
        try {
          if (await this.#step()) {
            attempt = 0;
            lastProgress = Date.now();
          }
        } catch (error) {
          if (generation !== this.#generation || this.#state !== "running") continue;
          const failure = asBlazeError(error);
          if (!RETRYABLE.has(failure.code) || Date.now() - lastProgress > this.#maxRetryTimeMs) {
            this.#state = "error";
            this.#finish(failure);
            return;
          }
          this.#mustSync = this.#plan !== undefined && !this.#completionUnknown;
          await this.#sleep(backoffDelay(attempt++, this.#retry.initialMs, this.#retry.maxMs));
        }
      }
    } finally {
      this.#driving = false;
    }
  }

  /** One request: whichever the upload needs next; whether it moved the upload on (asking for the stored parts does not). */
  async #step(): Promise<boolean> {
    const plan = this.#plan;
    if (plan === undefined) await this.#start();
    else if (this.#mustSync) {
      await this.#sync(plan);
      return false;
    } else {
      const missing = Array.from({ length: plan.parts }, (_, i) => i + 1).find((part) => !this.#stored.has(part));
      await (missing === undefined ? this.#complete(plan) : this.#sendPart(plan, missing));
    }
    return true;
  }

  /** Step 1: `POST ?uploads`. */
  async #start(): Promise<void> {
    const answer = await this.#json({ method: "POST", path: `${filesRoute(this.#ref)}?uploads`, headers: this.#startHeaders, safe: false, timed: true });
    const { upload, size, part_bytes: partBytes, parts } = (isJsonObject(answer) ? answer : {}) as Record<string, unknown>;
    const total = this.#source.size;
    if (typeof upload !== "string" || upload === "" || size !== total || !isUint(partBytes) || partBytes < 1 || parts !== partCount(total, partBytes)) {
      throw protocolError(`not an upload start's answer for ${total} bytes: ${JSON.stringify(answer)}`);
    }
    this.#plan = { id: upload, partBytes, parts };
    if (this.#state === "canceled") this.#abortOnServer();
  }

  /** Step 3: `GET ?upload=`, the parts the server holds. */
  async #sync(plan: Plan): Promise<void> {
    const answer = await this.#json({ method: "GET", path: this.#uploadRoute(plan), safe: true, timed: true });
    const stored = isJsonObject(answer) ? answer.stored : undefined;
    if (!Array.isArray(stored) || !stored.every((n) => isUint(n) && n >= 1 && n <= plan.parts)) {
      throw protocolError(`not an upload's stored parts: ${JSON.stringify(answer)}`);
    }
    this.#stored = new Set(stored as number[]);
    this.#mustSync = false;
    this.#progress(plan);
  }

  /** Step 2: `PUT ?upload=&part=`, abortable by pause and cancel. */
  async #sendPart(plan: Plan, part: number): Promise<void> {
    const start = (part - 1) * plan.partBytes;
    const length = partLength(plan, this.#source.size, part);
    const body = await this.#source.slice(start, start + length);
    const controller = newAbortController();
    this.#partRequest = controller;
    try {
      const request = { method: "PUT", path: `${this.#uploadRoute(plan)}&part=${part}`, body, safe: false, timed: false, signal: controller?.signal };
      const answer = await this.#json(request);
      if (!isJsonObject(answer) || answer.part !== part || answer.size !== length) {
        throw protocolError(`not the answer for part ${part} of ${length} bytes: ${JSON.stringify(answer)}`);
      }
    } finally {
      if (this.#partRequest === controller) this.#partRequest = undefined;
    }
    this.#stored.add(part);
    this.#progress(plan);
  }

  /** Step 4: `POST ?upload=`; a completion whose answer was lost and whose retry finds no upload may have been applied. */
  async #complete(plan: Plan): Promise<void> {
    this.#completing = true;
    let result: UploadResult;
    try {
      result = uploadResultOf(this.#ref, await this.#json({ method: "POST", path: this.#uploadRoute(plan), safe: false, timed: true }));
    } catch (error) {
      const failure = asBlazeError(error);
      if (failure.code === "not_found" && this.#completionUnknown) {
        // Final: retrying cannot tell whether the lost completion was applied.
        this.#state = "error";
        this.#finish(new BlazeError(LocalErrorCode.outcomeUnknown, "the upload's completion was cut off, and the upload is gone: it may or may not have been applied"));
        return;
      }
      if (RETRYABLE.has(failure.code) && failure.code !== "upload_incomplete") this.#completionUnknown = true;
      throw failure;
    } finally {
      this.#completing = false;
    }
    this.#result = result;
    this.#bytesTransferred = this.#source.size;
    this.#state = "success";
    this.#notify();
    this.#finish(undefined);
  }

  /** Step 5, best effort: `DELETE ?upload=` (an upload left behind expires on the server). */
  #abortOnServer(): void {
    const plan = this.#plan;
    if (plan === undefined) return;
    this.#ref._db._http.send({ method: "DELETE", path: this.#uploadRoute(plan), safe: false, timed: true }, async () => undefined).catch(() => undefined);
  }

  #uploadRoute(plan: Plan): string {
    return `${filesRoute(this.#ref)}?upload=${encodeURIComponent(plan.id)}`;
  }

  async #json(request: HttpRequest): Promise<unknown> {
    return this.#ref._db._http.send(request, readJson);
  }

  /** Counts the stored parts' bytes; tells the observers when that grew. */
  #progress(plan: Plan): void {
    let bytes = 0;
    for (const part of this.#stored) bytes += partLength(plan, this.#source.size, part);
    if (bytes <= this.#bytesTransferred) return;
    this.#bytesTransferred = bytes;
    this.#notify();
  }

  async #sleep(ms: number): Promise<void> {
    let timer: Timer | undefined;
    await new Promise<void>((resolve) => {
      this.#wake = resolve;
      timer = startTimer(resolve, ms);
    });
    stopTimer(timer);
    this.#wake = undefined;
  }

  #notify(): void {
    const snapshot = this.snapshot;
    for (const observer of [...this.#observers]) call(() => observer.next?.(snapshot));
  }

  /** Settles the task: success (`failure` undefined) or failure, telling the observers. */
  #finish(failure: BlazeError | undefined): void {
    if (failure === undefined) {
      this.#resolve(this.snapshot);
      for (const observer of [...this.#observers]) call(() => observer.complete?.());
      return;
    }
    this.#failure = failure;
    this.#reject(failure);
    for (const observer of [...this.#observers]) call(() => observer.error?.(failure));
  }
}

/**
 * Uploads `data` as the file `ref` in parts (spec 15.7), as Firebase
 * Storage's `uploadBytesResumable`: the returned {@link UploadTask} starts
 * at once, reports progress part by part, retries a failed part with
 * backoff (asking the server which parts it holds first), can be paused,
 * resumed and cancelled, and resolves to its final snapshot once the file
 * is committed (a reader sees the old file or the new one, never a part).
 * For files over the server's single-request limit, or connections that may
 * drop. Fails with the server's code (`permission_denied`,
 * `file_too_large`, ...), `cancelled` after {@link UploadTask.cancel}, or
 * the last network error once `maxRetryTimeMs` passed without progress.
 */
export function uploadBytesResumable(
  ref: FileRef,
  data: Uint8Array | ArrayBuffer | BlobLike,
  metadata: UploadMetadata = {},
  options: ResumableUploadOptions = {},
): UploadTask {
  return new UploadTask(ref, data, metadata, options);
}

/** The number of parts of `size` bytes in parts of `partBytes` (one empty part for an empty file). */
function partCount(size: number, partBytes: number): number {
  return Math.max(1, Math.ceil(size / partBytes));
}

/** The length of part `part` (from 1): `partBytes`, the rest for the last. */
function partLength(plan: Plan, size: number, part: number): number {
  return part < plan.parts ? plan.partBytes : size - plan.partBytes * (plan.parts - 1);
}

function positive(value: number | undefined, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0) throw invalidArgument(`${what} must be a positive number`);
  return value;
}

function asBlazeError(error: unknown): BlazeError {
  return error instanceof BlazeError ? error : new BlazeError(LocalErrorCode.protocolError, error instanceof Error ? error.message : String(error));
}

function call(callback: () => void): void {
  try {
    callback();
  } catch (error) {
    reportCallbackError(error);
  }
}
