/**
 * A `fetch` serving spec 15.7 (resumable uploads) from memory: uploads and
 * their parts in maps, part lengths checked as the server does
 * (`invalid_part`), completion only with every part stored
 * (`upload_incomplete`), plus a fault injector (a part cut mid-way, an
 * answer lost after the part was stored) and a hold that keeps a part's
 * request in flight until it is released or aborted.
 */
import type { FetchFunction, FetchInit } from "../../src/index.js";

/** One request the fake received. */
export interface FakeCall {
  readonly method: string;
  /** The route without the origin, e.g. `/v1/files/a.bin?upload=u1&part=2`. */
  readonly route: string;
  readonly headers: Record<string, string>;
  /** The part number of a part upload. */
  readonly part?: number;
}

/** What to do to one request: cut it (nothing stored, the connection drops) or lose its answer (done, then the connection drops). */
export type Fault = "cut" | "lose-answer" | undefined;

interface Upload {
  readonly path: string;
  readonly size: number;
  readonly parts: number;
  readonly contentType: string;
  readonly metadata: Record<string, string>;
  readonly stored: Map<number, Uint8Array>;
}

/** A completed file. */
export interface StoredFile {
  readonly bytes: Uint8Array;
  readonly contentType: string;
  readonly metadata: Record<string, string>;
}

function answer(body: unknown, status = 200): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
}

function error(status: number, code: string, message: string): Response {
  return answer({ error: { code, message } }, status);
}

async function bytesOf(body: unknown): Promise<Uint8Array> {
  if (body === undefined || body === null) return new Uint8Array(0);
  if (body instanceof Uint8Array) return body.slice();
  if (body instanceof Blob) return new Uint8Array(await body.arrayBuffer());
  throw new Error(`unexpected body ${String(body)}`);
}

/** A connection dropped mid-request, as `fetch` reports it. */
function dropped(): TypeError {
  return new TypeError("fetch failed: the connection was cut");
}

/** The fake server; `fetch` is what a client is given. */
export class FakeMultipartServer {
  /** Every request, in order. */
  readonly calls: FakeCall[] = [];
  /** Completed files by path. */
  readonly files = new Map<string, StoredFile>();
  /** Unfinished uploads by id. */
  readonly uploads = new Map<string, Upload>();
  /** Part numbers whose request was aborted by the client. */
  readonly aborted: number[] = [];
  /** Decides a fault per request (called after the request is recorded). */
  fault: (call: FakeCall) => Fault = () => undefined;
  /** Holds a part's request in flight while it returns true (until {@link release} or an abort). */
  hold: (call: FakeCall) => boolean = () => false;
  /** The request being held, if any. */
  held: FakeCall | undefined;
  #release: (() => void) | undefined;
  #nextId = 0;
  #version = 0;

  /** @param partBytes the part size the server announces. */
  constructor(readonly partBytes: number) {}

  /** Lets the held request go on. */
  release(): void {
    this.#release?.();
  }

  /** The part numbers of the part uploads received, in order. */
  partsSent(): number[] {
    return this.calls.flatMap((c) => (c.part === undefined ? [] : [c.part]));
  }

  readonly fetch: FetchFunction = async (url: string, init: FetchInit) => {
    const parsed = new URL(url);
    const params = parsed.searchParams;
    const partParam = params.get("part");
    const call: FakeCall = {
      method: init.method,
      route: `${parsed.pathname}${parsed.search}`,
      headers: { ...init.headers },
      ...(partParam === null ? {} : { part: Number(partParam) }),
    };
    this.calls.push(call);
    if (this.hold(call)) await this.#holdUntilReleased(call, init);
    const fault = this.fault(call);
    if (fault === "cut") throw dropped();
    const path = decodeURIComponent(parsed.pathname.replace(/^\/v1\/files\//, ""));
    const response = await this.#serve(call, path, params, init);
    if (fault === "lose-answer") throw dropped();
    return response;
  };

  async #holdUntilReleased(call: FakeCall, init: FetchInit): Promise<void> {
    this.held = call;
    const signal = init.signal as AbortSignal | undefined;
    try {
      await new Promise<void>((resolve, reject) => {
        this.#release = resolve;
        signal?.addEventListener("abort", () => {
          if (call.part !== undefined) this.aborted.push(call.part);
          reject(new DOMException("the request was aborted", "AbortError"));
        });
      });
    } finally {
      this.held = undefined;
      this.#release = undefined;
    }
  }

  async #serve(call: FakeCall, path: string, params: URLSearchParams, init: FetchInit): Promise<Response> {
    const id = params.get("upload");
    if (init.method === "POST" && params.has("uploads")) return this.#start(path, init);
    if (id === null) return error(405, "method_not_allowed", "not a 15.7 route");
    const upload = this.uploads.get(id);
    if (upload === undefined || upload.path !== path) return error(404, "not_found", "no such upload");
    if (init.method === "PUT" && call.part !== undefined) return this.#storePart(upload, call.part, init);
    if (init.method === "GET") return answer({ ...this.#describe(id, upload), stored: [...upload.stored.keys()].sort((a, b) => a - b) });
    if (init.method === "POST") return this.#complete(id, upload);
    if (init.method === "DELETE") {
      this.uploads.delete(id);
      return new Response(null, { status: 204 });
    }
    return error(405, "method_not_allowed", `${init.method} of an upload`);
  }

  #start(path: string, init: FetchInit): Response {
    const length = init.headers["X-Blaze-Upload-Length"];
    if (length === undefined) return error(411, "length_required", "X-Blaze-Upload-Length is required");
    const size = Number(length);
    const parts = Math.max(1, Math.ceil(size / this.partBytes));
    const metadata = init.headers["X-Blaze-Metadata"];
    const id = `u${++this.#nextId}`;
    const upload: Upload = {
      path,
      size,
      parts,
      contentType: init.headers["X-Blaze-Content-Type"] ?? "application/octet-stream",
      metadata: metadata === undefined ? {} : (JSON.parse(metadata) as Record<string, string>),
      stored: new Map(),
    };
    this.uploads.set(id, upload);
    return answer(this.#describe(id, upload), 201);
  }

  #describe(id: string, upload: Upload) {
    return { upload: id, size: upload.size, part_bytes: this.partBytes, parts: upload.parts, expires: Date.now() + 86_400_000 };
  }

  async #storePart(upload: Upload, part: number, init: FetchInit): Promise<Response> {
    if (!Number.isInteger(part) || part < 1 || part > upload.parts) return error(400, "invalid_part", `no part ${part}`);
    const expected = part < upload.parts ? this.partBytes : upload.size - this.partBytes * (upload.parts - 1);
    const bytes = await bytesOf(init.body);
    if (bytes.length !== expected) return error(400, "invalid_part", `part ${part} must be ${expected} bytes, got ${bytes.length}`);
    upload.stored.set(part, bytes);
    return answer({ part, size: bytes.length });
  }

  #complete(id: string, upload: Upload): Response {
    const missing = Array.from({ length: upload.parts }, (_, i) => i + 1).filter((n) => !upload.stored.has(n));
    if (missing.length > 0) return error(400, "upload_incomplete", `parts ${missing.join(", ")} are missing`);
    const bytes = new Uint8Array(upload.size);
    for (const [n, part] of upload.stored) bytes.set(part, (n - 1) * this.partBytes);
    this.files.set(upload.path, { bytes, contentType: upload.contentType, metadata: upload.metadata });
    this.uploads.delete(id);
    const name = upload.path.split("/").pop();
    return answer({ path: upload.path, name, size: upload.size, contentType: upload.contentType, metadata: upload.metadata, md5: null, version: ++this.#version, time: Date.now() });
  }
}
