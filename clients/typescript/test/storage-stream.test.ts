/** `getStream`: the same bytes and errors as `getBytes`, read as the stream is read, stopped when it is cancelled. */
import { strict as assert } from "node:assert";
import { describe, it } from "node:test";

import { BlazeError, connect, fileRef, getBytes, getStream, type Blaze, type ByteRange, type FetchFunction, type ReadableStreamLike } from "../src/index.js";
import { NoWebSocket, type Call } from "./helpers/no-websocket.js";

function client(answer: (call: Call) => Response): { db: Blaze; calls: Call[] } {
  const calls: Call[] = [];
  const fetch: FetchFunction = async (url, init) => {
    const call = { url, init };
    calls.push(call);
    return answer(call);
  };
  return { db: connect("https://blaze.test", { WebSocket: NoWebSocket, auth: "the-key", fetch }), calls };
}

const FILE = Uint8Array.from({ length: 100 }, (_, i) => i);

/** `bytes` as a body of 7-byte chunks, counting how many were pulled. */
function chunked(bytes: Uint8Array, pulled = { n: 0, cancelled: false }): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        pulled.n += 1;
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(at, at + 7));
        at += 7;
      },
      cancel() {
        pulled.cancelled = true;
      },
    },
    { highWaterMark: 0 },
  );
}

/** A server of FILE honouring `Range` as spec 15.3 says, in chunks. */
function ranged(call: Call): Response {
  const range = call.init.headers.Range;
  if (range === undefined) return new Response(chunked(FILE), { status: 200 });
  const m = /^bytes=(\d*)-(\d*)$/.exec(range) as RegExpExecArray;
  const size = FILE.length;
  const first = m[1] === "" ? Math.max(0, size - Number(m[2])) : Number(m[1]);
  const last = m[1] === "" || m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (first >= size) return new Response(JSON.stringify({ error: { code: "range_not_satisfiable", message: "past the end" } }), { status: 416 });
  return new Response(chunked(FILE.slice(first, last + 1)), { status: 206, headers: { "Content-Range": `bytes ${first}-${last}/${size}` } });
}

/** A proxy that ignored `Range`: every byte, 200, with its length. */
function ignoring(): Response {
  return new Response(chunked(FILE), { status: 200, headers: { "Content-Length": String(FILE.length) } });
}

async function readAll(stream: ReadableStreamLike): Promise<Uint8Array> {
  const reader = stream.getReader();
  const parts: number[] = [];
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return Uint8Array.from(parts);
    parts.push(...(value ?? []));
  }
}

/** The bytes, or the error code, of a download by `how`. */
async function outcome(how: () => Promise<Uint8Array>): Promise<number[] | string> {
  try {
    return [...(await how())];
  } catch (e) {
    return e instanceof BlazeError ? e.code : `not a BlazeError: ${String(e)}`;
  }
}

const RANGES: Array<ByteRange | undefined> = [undefined, { offset: 10, length: 20 }, { offset: 90 }, { offset: 95, length: 100 }, { offset: 0, length: 1 }, { suffix: 7 }, { suffix: 1000 }, { offset: 100 }, { offset: 99, length: 1 }];

describe("getStream", () => {
  for (const [name, server] of [
    ["a server that honours Range", ranged],
    ["a proxy that ignores Range", ignoring],
  ] as const) {
    it(`gives what getBytes gives, range by range, from ${name}`, async () => {
      const { db } = client(server);
      const ref = fileRef(db, "docs/f.bin");
      for (const range of RANGES) {
        const options = range === undefined ? {} : { range };
        const expected = await outcome(() => getBytes(ref, options));
        assert.deepEqual(await outcome(() => readAll(getStream(ref, options))), expected, JSON.stringify(range));
      }
    });
  }

  it("GETs /v1/files/{path} with the credential and the Range", async () => {
    const { db, calls } = client(ranged);
    await readAll(getStream(fileRef(db, "a/b.bin"), { range: { suffix: 3 } }));
    assert.equal(calls[0]?.url, "https://blaze.test/v1/files/a/b.bin");
    assert.equal(calls[0]?.init.method, "GET");
    assert.equal(calls[0]?.init.headers.Range, "bytes=-3");
    assert.equal(calls[0]?.init.headers.Authorization, "Bearer the-key");
  });

  it("reads the network only as fast as the stream is read, and cancelling it stops the download", async () => {
    const pulled = { n: 0, cancelled: false };
    const big = new Uint8Array(7 * 1000);
    const { db, calls } = client(() => new Response(chunked(big, pulled), { status: 200 }));
    const stream = getStream(fileRef(db, "big.bin"));
    const reader = stream.getReader();
    const first = await reader.read();
    assert.equal(first.value?.length, 7);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(pulled.n <= 4, `a few chunks ahead at most, not the whole body: ${pulled.n} pulled`);
    await reader.cancel();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(pulled.n < 10, `nothing more read after cancel: ${pulled.n}`);
    assert.equal((calls[0]?.init.signal as AbortSignal).aborted, true, "the fetch is aborted");
  });

  it("errors the stream with the server's code, a bad 206 and a signal", async () => {
    const failing = (status: number, code: string) => client(() => new Response(JSON.stringify({ error: { code, message: code } }), { status })).db;
    await assert.rejects(readAll(getStream(fileRef(failing(404, "not_found"), "x"))), (e) => e instanceof BlazeError && e.code === "not_found");
    await assert.rejects(readAll(getStream(fileRef(failing(403, "permission_denied"), "x"))), (e) => e instanceof BlazeError && e.code === "permission_denied");
    const short = client(() => new Response(chunked(FILE.slice(0, 9)), { status: 206, headers: { "Content-Range": "bytes 0-9/100" } })).db;
    await assert.rejects(readAll(getStream(fileRef(short, "x"), { range: { offset: 0, length: 10 } })), (e) => e instanceof BlazeError && e.code === "protocol_error");
    const controller = new AbortController();
    controller.abort();
    const { db, calls } = client(ranged);
    await assert.rejects(readAll(getStream(fileRef(db, "x"), { signal: controller.signal })), (e) => e instanceof BlazeError && e.code === "cancelled");
    assert.equal(calls.length, 0, "an aborted signal sends nothing");
  });

  it("refuses bad input at once (invalid_argument), and a host without ReadableStream", () => {
    const { db, calls } = client(ranged);
    assert.throws(() => getStream(fileRef(db, "x"), { range: { offset: -1 } }), (e) => e instanceof BlazeError && e.code === "invalid_argument");
    assert.throws(() => getStream({} as never), (e) => e instanceof BlazeError && e.code === "invalid_argument");
    const saved = globalThis.ReadableStream;
    (globalThis as { ReadableStream?: unknown }).ReadableStream = undefined;
    try {
      assert.throws(() => getStream(fileRef(db, "x")), (e) => e instanceof BlazeError && e.code === "invalid_argument");
    } finally {
      globalThis.ReadableStream = saved;
    }
    assert.equal(calls.length, 0);
  });
});
