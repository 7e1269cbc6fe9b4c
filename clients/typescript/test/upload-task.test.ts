/**
 * `uploadBytesResumable` (spec 15.7) against a fake server that keeps parts
 * in memory, checks their lengths and can cut a part mid-way or lose an
 * answer: the parts sent, the progress reported, pause, resume, cancel, and
 * the bytes the server ends with.
 */
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { describe, it } from "node:test";
import {
  BlazeError,
  connect,
  fileRef,
  uploadBytesResumable,
  type BlobLike,
  type Blaze,
  type UploadTask,
  type UploadTaskSnapshot,
} from "../src/index.js";
import { eventually } from "./helpers/eventually.js";
import { FakeMultipartServer } from "./helpers/fake-multipart.js";

class NoWebSocket {
  constructor() {
    throw new Error("no WebSocket in these tests");
  }
}

const PART = 1000;
/** Fast retries, so a test waits milliseconds. */
const FAST = { retry: { initialMs: 5, maxMs: 20 } };

function client(server: FakeMultipartServer): Blaze {
  return connect("https://blaze.test", { WebSocket: NoWebSocket, auth: "the-key", fetch: server.fetch });
}

function code(expected: string) {
  return (e: unknown) => {
    assert.ok(e instanceof BlazeError, `expected a BlazeError, got ${String(e)}`);
    assert.equal(e.code, expected, e.message);
    return true;
  };
}

/** Everything a task reported to an observer. */
function watch(task: UploadTask) {
  const seen = { snapshots: [] as UploadTaskSnapshot[], errors: [] as BlazeError[], completes: 0 };
  task.on(
    "state_changed",
    (s) => seen.snapshots.push(s),
    (e) => seen.errors.push(e),
    () => seen.completes++,
  );
  return seen;
}

function assertMonotonic(snapshots: UploadTaskSnapshot[], total: number): void {
  const bytes = snapshots.map((s) => s.bytesTransferred);
  for (let i = 1; i < bytes.length; i++) assert.ok((bytes[i] as number) >= (bytes[i - 1] as number), `progress went back: ${bytes.join(", ")}`);
  assert.equal(bytes[bytes.length - 1], total, `progress ends at the total: ${bytes.join(", ")}`);
  assert.ok(snapshots.every((s) => s.totalBytes === total));
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe("uploadBytesResumable (spec 15.7, fake server)", () => {
  it("starts, sends every part once with its length, completes; progress grows to totalBytes; the server holds the input", async () => {
    const server = new FakeMultipartServer(PART);
    const data = new Uint8Array(randomBytes(10 * PART + 500));
    const ref = fileRef(client(server), "docs/report.bin");
    const task = uploadBytesResumable(ref, data, { contentType: "application/x-report", customMetadata: { by: "ñ" }, cacheControl: "no-store" });
    const seen = watch(task);
    const final = await task;

    assert.equal(final.state, "success");
    assert.equal(final.metadata?.size, data.length);
    assert.equal(final.task, task);
    assert.equal(final.ref, ref);
    assert.equal(task.snapshot.state, "success");
    const stored = server.files.get("docs/report.bin");
    assert.ok(stored, "the file exists");
    assert.deepEqual(stored.bytes, data, "the completed bytes are the input");
    assert.deepEqual(stored.metadata, { by: "ñ" });
    assert.equal(stored.contentType, "application/x-report");
    assert.deepEqual(server.partsSent(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "each part once, in order");

    const start = server.calls[0];
    assert.equal(start?.method, "POST");
    assert.equal(start?.route, "/v1/files/docs/report.bin?uploads");
    assert.equal(start?.headers["X-Blaze-Upload-Length"], String(data.length));
    assert.equal(start?.headers.Authorization, "Bearer the-key");
    assert.equal(start?.headers["X-Blaze-Cache-Control"], "no-store", "the presentation goes with the start");
    assert.deepEqual(server.calls.at(-1) && [server.calls.at(-1)?.method, server.calls.at(-1)?.route], ["POST", "/v1/files/docs/report.bin?upload=u1"]);

    assertMonotonic(seen.snapshots, data.length);
    assert.equal(seen.snapshots.at(-1)?.state, "success");
    assert.deepEqual(seen.errors, []);
    assert.equal(seen.completes, 1);
    let lateComplete = false;
    task.on("state_changed", null, null, () => (lateComplete = true));
    await eventually(() => lateComplete, "complete for an observer added after success");
  });

  it("uploads an empty file as one empty part, and a Blob part by part", async () => {
    const server = new FakeMultipartServer(PART);
    const db = client(server);
    await uploadBytesResumable(fileRef(db, "empty.bin"), new Uint8Array(0));
    assert.deepEqual(server.files.get("empty.bin")?.bytes, new Uint8Array(0));
    assert.deepEqual(server.partsSent(), [1]);

    const data = new Uint8Array(randomBytes(2 * PART + 1));
    await uploadBytesResumable(fileRef(db, "blob.bin"), new Blob([data], { type: "image/png" }));
    assert.deepEqual(server.files.get("blob.bin")?.bytes, data);
    assert.equal(server.files.get("blob.bin")?.contentType, "image/png", "the Blob's type");
  });

  it("retries a part cut mid-way after asking which parts are stored, and does not resend a part whose answer was lost", async () => {
    const server = new FakeMultipartServer(PART);
    const attempts = new Map<number, number>();
    server.fault = (call) => {
      if (call.part === undefined) return undefined;
      const n = (attempts.get(call.part) ?? 0) + 1;
      attempts.set(call.part, n);
      if (call.part === 3 && n <= 2) return "cut"; // twice: the backoff goes on
      if (call.part === 5 && n === 1) return "lose-answer";
      return undefined;
    };
    const data = new Uint8Array(randomBytes(6 * PART));
    const task = uploadBytesResumable(fileRef(client(server), "flaky.bin"), data, {}, FAST);
    const seen = watch(task);
    await task;

    assert.deepEqual(server.files.get("flaky.bin")?.bytes, data);
    assert.deepEqual(server.partsSent(), [1, 2, 3, 3, 3, 4, 5, 6], "part 3 again after each cut; part 5, stored, not again");
    const kinds = server.calls.map((c) => (c.part !== undefined ? `PUT ${c.part}` : c.method));
    assert.deepEqual(kinds, ["POST", "PUT 1", "PUT 2", "PUT 3", "GET", "PUT 3", "GET", "PUT 3", "PUT 4", "PUT 5", "GET", "PUT 6", "POST"]);
    assertMonotonic(seen.snapshots, data.length);
    assert.deepEqual(seen.errors, []);
  });

  it("pause aborts the part in flight and sends nothing more; resume asks for the stored parts and sends only the missing ones", async () => {
    const server = new FakeMultipartServer(PART);
    server.hold = (call) => call.part === 3 && !server.aborted.includes(3);
    const data = new Uint8Array(randomBytes(5 * PART));
    const task = uploadBytesResumable(fileRef(client(server), "paused.bin"), data, {}, FAST);
    const seen = watch(task);
    await eventually(() => server.held?.part === 3, "part 3 in flight");

    assert.equal(task.pause(), true);
    assert.equal(task.pause(), false, "already paused");
    assert.equal(task.snapshot.state, "paused");
    assert.deepEqual(server.aborted, [3], "the part in flight was aborted");
    const before = server.calls.length;
    await sleep(150);
    assert.equal(server.calls.length, before, "no request while paused");
    assert.equal(task.snapshot.bytesTransferred, 2 * PART);

    // The server got part 3 after all (its answer was what the abort cut): resume must not resend it.
    const upload = [...server.uploads.values()][0];
    upload?.stored.set(3, data.slice(2 * PART, 3 * PART));
    assert.equal(task.resume(), true);
    assert.equal(task.resume(), false, "already running");
    const final = await task;
    assert.equal(final.state, "success");
    assert.deepEqual(server.files.get("paused.bin")?.bytes, data);
    const after = server.calls.slice(before).map((c) => (c.part !== undefined ? `PUT ${c.part}` : c.method));
    assert.deepEqual(after, ["GET", "PUT 4", "PUT 5", "POST"]);
    assert.deepEqual(
      seen.snapshots.map((s) => s.state).filter((s, i, all) => s !== all[i - 1]),
      ["running", "paused", "running", "success"],
    );
    assertMonotonic(seen.snapshots, data.length);
  });

  it("cancel aborts the part in flight and the upload on the server, and fails the task with cancelled", async () => {
    const server = new FakeMultipartServer(PART);
    server.hold = (call) => call.part === 2;
    const task = uploadBytesResumable(fileRef(client(server), "gone.bin"), new Uint8Array(4 * PART));
    const seen = watch(task);
    await eventually(() => server.held?.part === 2, "part 2 in flight");

    assert.equal(task.cancel(), true);
    assert.equal(task.cancel(), false, "already cancelled");
    await assert.rejects(Promise.resolve(task), code("cancelled"));
    assert.equal(task.snapshot.state, "canceled");
    assert.deepEqual(server.aborted, [2]);
    await eventually(() => server.calls.at(-1)?.method === "DELETE", "the abort");
    assert.equal(server.calls.at(-1)?.route, "/v1/files/gone.bin?upload=u1");
    assert.equal(server.uploads.size, 0, "the upload is gone");
    assert.equal(server.files.size, 0, "no file");
    await sleep(50);
    assert.deepEqual(server.partsSent(), [1, 2], "nothing sent after the cancel");
    assert.deepEqual(
      seen.errors.map((e) => e.code),
      ["cancelled"],
    );
    assert.equal(seen.completes, 0);
    assert.equal(task.resume(), false);
  });

  it("fails at once on an error a retry cannot mend: invalid_part for a Blob that shrank; the server's refusal to start", async () => {
    const server = new FakeMultipartServer(PART);
    const data = new Uint8Array(randomBytes(3 * PART));
    // A file that changed on disk: its slices come back shorter than its size said.
    const shrinking: BlobLike = {
      size: data.length,
      type: "",
      arrayBuffer: async () => data.buffer,
      slice: (start, end) => new Blob([data.subarray(start, Math.min(end, 2 * PART + 10))]),
    };
    const task = uploadBytesResumable(fileRef(client(server), "shrunk.bin"), shrinking, {}, FAST);
    const seen = watch(task);
    await assert.rejects(Promise.resolve(task), code("invalid_part"));
    assert.equal(task.snapshot.state, "error");
    assert.deepEqual(server.partsSent(), [1, 2, 3], "part 3 once: no retry");
    assert.deepEqual(
      seen.errors.map((e) => e.code),
      ["invalid_part"],
    );

    let calls = 0;
    const denying = connect("https://blaze.test", {
      WebSocket: NoWebSocket,
      fetch: async () => {
        calls++;
        return new Response(JSON.stringify({ error: { code: "permission_denied", message: "the rules say no" } }), { status: 403 });
      },
    });
    await assert.rejects(Promise.resolve(uploadBytesResumable(fileRef(denying, "x.bin"), new Uint8Array(10), {}, FAST)), code("permission_denied"));
    assert.equal(calls, 1, "the start, not retried");
    assert.throws(() => uploadBytesResumable(fileRef(denying), new Uint8Array(1)), code("invalid_path"));
    assert.throws(() => uploadBytesResumable(fileRef(denying, "a"), "text" as never), code("invalid_argument"));
    assert.equal(calls, 1, "bad arguments send nothing");
  });

  it("a completion whose answer was lost, retried, and not found, is outcome_unknown", async () => {
    const server = new FakeMultipartServer(PART);
    let completions = 0;
    server.fault = (call) => (call.method === "POST" && call.route.includes("?upload=") && ++completions === 1 ? "lose-answer" : undefined);
    const task = uploadBytesResumable(fileRef(client(server), "maybe.bin"), new Uint8Array(PART), {}, FAST);
    await assert.rejects(Promise.resolve(task), code("outcome_unknown"));
    assert.ok(server.files.has("maybe.bin"), "the first completion was applied");
    assert.deepEqual(
      server.calls.map((c) => c.method),
      ["POST", "PUT", "POST", "POST"],
      "the completion retried once, without a GET of a finished upload",
    );
  });

  it("gives up after maxRetryTimeMs without a success, with the last network error", async () => {
    const server = new FakeMultipartServer(PART);
    server.fault = (call) => (call.part === 1 ? "cut" : undefined);
    const task = uploadBytesResumable(fileRef(client(server), "down.bin"), new Uint8Array(PART), {}, { retry: { initialMs: 5, maxMs: 10 }, maxRetryTimeMs: 100 });
    const began = Date.now();
    await assert.rejects(Promise.resolve(task), code("outcome_unknown"));
    assert.ok(Date.now() - began >= 100, "it kept trying for maxRetryTimeMs");
    assert.ok(server.partsSent().length >= 3, `several attempts: ${server.partsSent().length}`);
    assert.equal(task.snapshot.state, "error");
  });
});
