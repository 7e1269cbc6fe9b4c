/**
 * The files API (spec 15) without a server: file paths and their metadata
 * documents, and every request the functions make and every answer they
 * read, against a stubbed `fetch` that records what it was given and
 * answers with real `Response` objects; plus one real loopback HTTP server
 * to see the headers `fetch` itself adds (Content-Length).
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { describe, it } from "node:test";
import {
  BlazeError,
  connect,
  deleteObject,
  fileMetadataOf,
  fileRef,
  folderCollectionPath,
  folderQuery,
  getBlob,
  getBytes,
  getDownloadURL,
  getMetadata,
  list,
  listAll,
  metadataDocPath,
  updateMetadata,
  MAX_PRESENTATION_BYTES,
  uploadBytes,
  uploadString,
  StringFormat,
  type Blaze,
  type ConnectOptions,
  type FetchFunction,
  type FetchInit,
} from "../src/index.js";
import { DocumentSnapshot } from "../src/snapshot.js";
import { NoWebSocket, type Call } from "./helpers/no-websocket.js";

/** A fetch that records its calls and answers each with `answer(call)`. */
function stubFetch(answer: (call: Call) => Response | Promise<Response>) {
  const calls: Call[] = [];
  const fetch: FetchFunction = async (url, init) => {
    const call = { url, init };
    calls.push(call);
    return answer(call);
  };
  return { calls, fetch };
}

function client(fetch: FetchFunction, options: ConnectOptions = {}, url = "https://blaze.test"): Blaze {
  return connect(url, { WebSocket: NoWebSocket, auth: "the-key", fetch, ...options });
}

function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json", ...headers } });
}

function wireError(status: number, code: string, message = `a ${code}`): Response {
  return json({ error: { code, message } }, status);
}

/** Asserts a BlazeError with `code` (and a message containing `message`). */
function code(expected: string, message?: string) {
  return (e: unknown) => {
    assert.ok(e instanceof BlazeError, `expected a BlazeError, got ${String(e)}`);
    assert.equal(e.code, expected, e.message);
    if (message !== undefined) assert.ok(e.message.includes(message), `${JSON.stringify(e.message)} should contain ${JSON.stringify(message)}`);
    return true;
  };
}

/** The bytes of a request body as the stub received it. */
async function bodyBytes(body: unknown): Promise<Uint8Array> {
  if (body instanceof Uint8Array) return body;
  if (body instanceof Blob) return new Uint8Array(await body.arrayBuffer());
  throw new Error(`unexpected body ${String(body)}`);
}

const UPLOADED = {
  path: "avatars/alice.png",
  name: "alice.png",
  size: 3,
  contentType: "image/png",
  metadata: { owner: "alice" },
  md5: "5289df737df57326fcdd22597afb1fac",
  version: 12,
  time: 1700000000000,
};

/** A DocSnapshot (spec 3.1) of the metadata of `path`. */
function metadataDoc(path: string, size = 3, extra: Record<string, unknown> = {}) {
  return {
    path: metadataDocPath(path),
    exists: true,
    data: { name: path.split("/").pop(), path, size, contentType: "text/plain", metadata: {}, md5: "00", key: "o/k", uploadedBy: "alice", ...extra },
    version: 7,
    create_time: 1700000000000,
    update_time: 1700000005000,
  };
}

describe("file paths (spec 15.1) and metadata documents (spec 15.2)", () => {
  const { fetch, calls } = stubFetch(() => json({}));
  const db = client(fetch);

  it("maps file paths to metadata documents and folder collections as the spec's table", () => {
    assert.equal(fileRef(db, "report.pdf").metadataDocPath, "_files/report.pdf");
    assert.equal(fileRef(db, "avatars/alice.png").metadataDocPath, "_files/avatars/_files/alice.png");
    assert.equal(fileRef(db, "a/b/c.txt").metadataDocPath, "_files/a/_files/b/_files/c.txt");
    assert.equal(fileRef(db, "avatars").folderCollectionPath, "_files/avatars/_files");
    assert.equal(fileRef(db, "a/b").folderCollectionPath, "_files/a/_files/b/_files");
    assert.equal(fileRef(db).folderCollectionPath, "_files");
    assert.equal(folderCollectionPath(""), "_files");
    // A file's metadata document is in its folder's collection.
    const file = fileRef(db, "a/b/c.txt");
    assert.equal(file.metadataDocPath, `${file.parent?.folderCollectionPath}/c.txt`);
  });

  it("names, parents, children and the root", () => {
    const file = fileRef(db, "a/b/c.txt");
    assert.equal(file.path, "a/b/c.txt");
    assert.equal(file.name, "c.txt");
    assert.equal(file.parent?.path, "a/b");
    assert.equal(file.parent?.parent?.path, "a");
    assert.equal(file.parent?.parent?.parent?.path, "");
    assert.equal(file.parent?.parent?.parent?.parent, null);
    assert.equal(file.root.path, "");
    assert.equal(fileRef(db).name, "");
    assert.equal(fileRef(fileRef(db, "a"), "b/c.txt").path, "a/b/c.txt");
    assert.equal(fileRef(db).child("x.txt").path, "x.txt");
    assert.ok(fileRef(db, "a").child("b").isEqual(fileRef(db, "a/b")));
    assert.ok(!fileRef(db, "a").isEqual(fileRef(client(fetch), "a")), "another client's reference");
    assert.throws(() => fileRef(db).metadataDocPath, code("invalid_path", "root folder"));
  });

  it("refuses invalid paths locally with invalid_path, before any request", async () => {
    const bad = [
      "/a.txt",
      "a.txt/",
      "a//b.txt",
      ".",
      "..",
      "a/../b.txt",
      "a/./b.txt",
      "with space.txt",
      "é.txt",
      "a%2Fb.txt",
      "a?b",
      "a#b",
      "__name__",
      "x".repeat(129),
      // Short file paths whose metadata documents break the limits: 1024 bytes, 200 segments.
      Array.from({ length: 100 }, () => "abc").join("/"),
      Array.from({ length: 101 }, () => "a").join("/"),
    ];
    for (const path of bad) assert.throws(() => fileRef(db, path), code("invalid_path"), path);
    assert.throws(() => fileRef(db, "ok").child("../x"), code("invalid_path"));
    assert.throws(() => fileRef(db, 7 as unknown as string), code("invalid_argument"));
    assert.throws(() => fileRef({} as Blaze, "a"), code("invalid_argument"));
    for (const path of ["a", "x".repeat(128), "a-b_c.d~e:f@g+h", "...", "__x", "a/b/c/d/e.tar.gz", Array.from({ length: 99 }, () => "a").join("/")]) {
      assert.equal(fileRef(db, path).path, path);
    }
    await assert.rejects(uploadBytes(fileRef(db), new Uint8Array(1)), code("invalid_path"));
    await assert.rejects(getBytes(fileRef(db)), code("invalid_path"));
    await assert.rejects(deleteObject(fileRef(db)), code("invalid_path"));
    assert.equal(calls.length, 0, "nothing was sent");
  });

  it("fileMetadataOf reads a listened metadata document back to its file", () => {
    const doc = metadataDoc("a/b/c.txt", 5, { metadata: { k: "v" } });
    const snapshot = new DocumentSnapshot(db, doc.path, { path: doc.path, data: doc.data as never, version: 7, createTime: 1, updateTime: 2 });
    const meta = fileMetadataOf(snapshot);
    assert.equal(meta.ref.path, "a/b/c.txt");
    assert.ok(meta.ref.isEqual(fileRef(db, "a/b/c.txt")));
    assert.deepEqual(
      { path: meta.path, name: meta.name, size: meta.size, contentType: meta.contentType, metadata: meta.metadata, md5: meta.md5, uploadedBy: meta.uploadedBy },
      { path: "a/b/c.txt", name: "c.txt", size: 5, contentType: "text/plain", metadata: { k: "v" }, md5: "00", uploadedBy: "alice" },
    );
    assert.deepEqual([meta.version, meta.createTime, meta.updateTime], [7, 1, 2]);
    assert.throws(() => fileMetadataOf(new DocumentSnapshot(db, doc.path, undefined)), code("invalid_argument", "does not exist"));
    const other = new DocumentSnapshot(db, "rooms/r1", { path: "rooms/r1", data: doc.data as never, version: 1, createTime: 1, updateTime: 1 });
    assert.throws(() => fileMetadataOf(other), code("invalid_argument"));
  });

  it("folderQuery is the folder's collection in name order", () => {
    assert.deepEqual(folderQuery(fileRef(db, "avatars")).toWire(), {
      collection: "_files/avatars/_files",
      order_by: [{ field: "__name__", direction: "asc" }],
    });
    assert.equal(folderQuery(fileRef(db)).collectionPath, "_files");
  });
});

describe("uploadBytes", () => {
  it("PUTs the bytes to /v1/files/{path} with the credential, Content-Type and X-Blaze-Metadata, and types the answer", async () => {
    const { fetch, calls } = stubFetch(() => json(UPLOADED, 200, { ETag: '"12"' }));
    const db = client(fetch);
    const ref = fileRef(db, "avatars/alice.png");
    const result = await uploadBytes(ref, new Uint8Array([1, 2, 3]), { contentType: "image/png", customMetadata: { owner: "alice", note: "ça va ☃ \n \u2028 😀" } });
    assert.equal(calls.length, 1);
    const { url, init } = calls[0] as Call;
    assert.equal(url, "https://blaze.test/v1/files/avatars/alice.png");
    assert.equal(init.method, "PUT");
    assert.equal(init.headers.Authorization, "Bearer the-key");
    assert.equal(init.headers["Content-Type"], "image/png");
    const header = init.headers["X-Blaze-Metadata"] as string;
    assert.match(header, /^[\x20-\x7e]+$/, "the header is printable ASCII (non-ASCII escaped)");
    assert.deepEqual(JSON.parse(header), { owner: "alice", note: "ça va ☃ \n \u2028 😀" }, "and parses back to the metadata");
    assert.deepEqual([...(await bodyBytes(init.body))], [1, 2, 3]);
    assert.deepEqual(result, { ref, ...UPLOADED });
    assert.equal(result.ref, ref);
  });

  it("defaults Content-Type to the Blob's type, else application/octet-stream; sends no X-Blaze-Metadata without customMetadata", async () => {
    const { fetch, calls } = stubFetch(() => json(UPLOADED));
    const db = client(fetch);
    await uploadBytes(fileRef(db, "a.txt"), new Blob(["hello"], { type: "text/plain" }));
    await uploadBytes(fileRef(db, "b.bin"), new Uint8Array([9]).buffer);
    await uploadBytes(fileRef(db, "c.bin"), new Blob([new Uint8Array([7, 8])]));
    await uploadBytes(fileRef(db, "d.txt"), new Blob(["x"], { type: "text/plain" }), { contentType: "text/markdown" });
    assert.deepEqual(
      calls.map((c) => c.init.headers["Content-Type"]),
      ["text/plain", "application/octet-stream", "application/octet-stream", "text/markdown"],
    );
    assert.ok(calls.every((c) => !("X-Blaze-Metadata" in c.init.headers)));
    assert.deepEqual(new TextDecoder().decode(await bodyBytes(calls[0]?.init.body)), "hello");
    assert.deepEqual([...(await bodyBytes(calls[1]?.init.body))], [9]);
    assert.deepEqual([...(await bodyBytes(calls[2]?.init.body))], [7, 8]);
  });

  it("sends a Uint8Array view's own bytes, not its whole buffer", async () => {
    const { fetch, calls } = stubFetch(() => json(UPLOADED));
    const buffer = new Uint8Array([0, 1, 2, 3, 4, 5]);
    await uploadBytes(fileRef(client(fetch), "v.bin"), buffer.subarray(2, 4));
    await uploadBytes(fileRef(client(fetch), "w.bin"), new DataView(buffer.buffer, 1, 2) as unknown as Uint8Array);
    assert.deepEqual([...(await bodyBytes(calls[0]?.init.body))], [2, 3]);
    assert.deepEqual([...(await bodyBytes(calls[1]?.init.body))], [1, 2]);
  });

  it("refuses bad arguments locally (invalid_argument), sending nothing", async () => {
    const { fetch, calls } = stubFetch(() => json(UPLOADED));
    const ref = fileRef(client(fetch), "a.bin");
    await assert.rejects(uploadBytes(ref, "text" as unknown as Uint8Array), code("invalid_argument"));
    await assert.rejects(uploadBytes(ref, new Uint8Array(1), { customMetadata: { n: 1 } as unknown as Record<string, string> }), code("invalid_argument"));
    await assert.rejects(uploadBytes(ref, new Uint8Array(1), { customMetadata: ["x"] as unknown as Record<string, string> }), code("invalid_argument"));
    await assert.rejects(uploadBytes(ref, new Uint8Array(1), { contentType: "text/plain\r\nX-Evil: 1" }), code("invalid_argument"));
    await assert.rejects(uploadBytes(ref, new Uint8Array(1), { contentType: "" }), code("invalid_argument"));
    await assert.rejects(uploadBytes(ref, new Uint8Array(1), { contentType: "tëxt/plain" }), code("invalid_argument"));
    await assert.rejects(uploadBytes({ path: "a.bin" } as never, new Uint8Array(1)), code("invalid_argument"));
    assert.equal(calls.length, 0);
  });

  it("maps error answers to BlazeErrors with the wire code and message", async () => {
    for (const [status, wire] of [
      [403, "permission_denied"],
      [411, "length_required"],
      [413, "file_too_large"],
      [400, "upload_incomplete"],
      [400, "invalid_frame"],
      [400, "invalid_path"],
      [401, "unauthenticated"],
      [409, "some_future_code"],
    ] as const) {
      const { fetch } = stubFetch(() => wireError(status, wire, `the server says ${wire}`));
      await assert.rejects(uploadBytes(fileRef(client(fetch), "a.bin"), new Uint8Array(1)), code(wire, `the server says ${wire}`));
    }
    const { fetch } = stubFetch(() => new Response("<html>Bad gateway</html>", { status: 502 }));
    await assert.rejects(uploadBytes(fileRef(client(fetch), "a.bin"), new Uint8Array(1)), code("protocol_error", "HTTP 502"));
  });

  it("a malformed answer is protocol_error; a network failure is outcome_unknown (the upload may have been committed)", async () => {
    const { fetch: bad } = stubFetch(() => json({ path: "a.bin", size: "3" }));
    await assert.rejects(uploadBytes(fileRef(client(bad), "a.bin"), new Uint8Array(1)), code("protocol_error"));
    const { fetch: notJson } = stubFetch(() => new Response("ok"));
    await assert.rejects(uploadBytes(fileRef(client(notJson), "a.bin"), new Uint8Array(1)), code("protocol_error"));
    const { fetch: down } = stubFetch(() => {
      throw new TypeError("fetch failed");
    });
    await assert.rejects(uploadBytes(fileRef(client(down), "a.bin"), new Uint8Array(1)), code("outcome_unknown", "fetch failed"));
    await assert.rejects(getBytes(fileRef(client(down), "a.bin")), code("unavailable", "fetch failed"), "a read is safe to retry");
  });
});

describe("updateMetadata", () => {
  it("PATCHes the type and the custom metadata (null removes a key) as JSON, and types the answer", async () => {
    const { fetch, calls } = stubFetch(() => json({ ...UPLOADED, contentType: "image/webp", version: 13 }));
    const ref = fileRef(client(fetch), "avatars/alice.png");
    const result = await updateMetadata(ref, { contentType: "image/webp", customMetadata: { owner: "bob", draft: null } });
    assert.equal(calls.length, 1);
    const { url, init } = calls[0] as Call;
    assert.equal(url, "https://blaze.test/v1/files/avatars/alice.png");
    assert.equal(init.method, "PATCH");
    assert.equal(init.headers.Authorization, "Bearer the-key");
    assert.equal(init.headers["Content-Type"], "application/json");
    assert.deepEqual(JSON.parse(init.body as string), { contentType: "image/webp", metadata: { owner: "bob", draft: null } });
    assert.deepEqual(result, { ref, ...UPLOADED, contentType: "image/webp", version: 13 });
  });

  it("sends only the members given", async () => {
    const { fetch, calls } = stubFetch(() => json(UPLOADED));
    const ref = fileRef(client(fetch), "a.txt");
    await updateMetadata(ref, { contentType: "text/plain" });
    await updateMetadata(ref, { customMetadata: { k: "v" } });
    assert.deepEqual(
      calls.map((c) => JSON.parse(c.init.body as string)),
      [{ contentType: "text/plain" }, { metadata: { k: "v" } }],
    );
  });

  it("refuses nothing to change, unknown members and bad values locally; passes the server's not_found on", async () => {
    const { fetch, calls } = stubFetch(() => wireError(404, "not_found"));
    const ref = fileRef(client(fetch), "a.txt");
    for (const bad of [{}, { size: 3 }, { contentType: "a\nb" }, { customMetadata: { n: 1 } }, { customMetadata: "x" }, null]) {
      await assert.rejects(updateMetadata(ref, bad as never), code("invalid_argument"), JSON.stringify(bad));
    }
    await assert.rejects(updateMetadata(fileRef(client(fetch)), { contentType: "text/plain" }), code("invalid_path"));
    assert.equal(calls.length, 0);
    await assert.rejects(updateMetadata(ref, { contentType: "text/plain" }), code("not_found"));
  });
});

describe("presentation (cacheControl, contentDisposition, contentLanguage)", () => {
  it("uploadBytes sends them as X-Blaze- headers; answers and metadata carry the ones set", async () => {
    const answered = { ...UPLOADED, cacheControl: "public, max-age=60", contentLanguage: "de" };
    const { fetch, calls } = stubFetch(() => json(answered));
    const ref = fileRef(client(fetch), "assets/logo.svg");
    const result = await uploadBytes(ref, new Uint8Array([1]), { cacheControl: "public, max-age=60", contentLanguage: "de" });
    const { init } = calls[0] as Call;
    assert.equal(init.headers["X-Blaze-Cache-Control"], "public, max-age=60");
    assert.equal(init.headers["X-Blaze-Content-Language"], "de");
    assert.equal(init.headers["X-Blaze-Content-Disposition"], undefined, "not set, not sent");
    assert.deepEqual(result, { ref, ...answered });
    await uploadBytes(ref, new Uint8Array([1]));
    assert.deepEqual(Object.keys((calls[1] as Call).init.headers).filter((h) => h.startsWith("X-Blaze-C")), [], "none given, none sent");
  });

  it("updateMetadata sets and removes them (null); bad values are refused locally", async () => {
    const { fetch, calls } = stubFetch(() => json(UPLOADED));
    const ref = fileRef(client(fetch), "a.txt");
    await updateMetadata(ref, { cacheControl: "no-store", contentDisposition: null });
    assert.deepEqual(JSON.parse((calls[0] as Call).init.body as string), { cacheControl: "no-store", contentDisposition: null });
    const long = "a".repeat(MAX_PRESENTATION_BYTES + 1);
    for (const bad of [{ cacheControl: "" }, { cacheControl: " " }, { contentLanguage: "de\r\nSet-Cookie: x" }, { contentDisposition: "é" }, { cacheControl: long }, { cacheControl: 3 }, { contentEncoding: "gzip" }]) {
      await assert.rejects(updateMetadata(ref, bad as never), code("invalid_argument"), JSON.stringify(bad));
      if (!("contentEncoding" in bad)) await assert.rejects(uploadBytes(ref, new Uint8Array(1), bad as never), code("invalid_argument"), JSON.stringify(bad));
    }
    assert.equal(calls.length, 1, "nothing sent");
    await uploadBytes(ref, new Uint8Array(1), { cacheControl: "a".repeat(MAX_PRESENTATION_BYTES) });
    assert.equal(calls.length, 2, "the limit itself is allowed");
  });
});

describe("credentials of the HTTP requests", () => {
  it("a token provider is asked for every request; null sends no Authorization; a failing one is unauthenticated and sends nothing", async () => {
    const { fetch, calls } = stubFetch(() => json(metadataDoc("a.txt")));
    let n = 0;
    const tokens = [null, "t2"];
    const db = connect("https://blaze.test", { WebSocket: NoWebSocket, fetch, getToken: async () => tokens[n++] ?? null });
    await getMetadata(fileRef(db, "a.txt"));
    await getMetadata(fileRef(db, "a.txt"));
    assert.equal(n, 2);
    assert.equal(calls[0]?.init.headers.Authorization, undefined);
    assert.equal(calls[1]?.init.headers.Authorization, "Bearer t2");

    const failing = connect("https://blaze.test", {
      WebSocket: NoWebSocket,
      fetch,
      getToken: async () => {
        throw new Error("signed out");
      },
    });
    await assert.rejects(getMetadata(fileRef(failing, "a.txt")), code("unauthenticated", "signed out"));
    assert.equal(calls.length, 2);
  });

  it("an anonymous client sends no Authorization", async () => {
    const { fetch, calls } = stubFetch(() => new Response(null, { status: 204 }));
    await deleteObject(fileRef(connect("https://blaze.test", { WebSocket: NoWebSocket, fetch }), "a.txt"));
    assert.equal(calls[0]?.init.headers.Authorization, undefined);
  });
});

describe("uploadString", () => {
  /** What uploadString sent for `value` in `format`: the body's bytes and its Content-Type. */
  async function sent(value: string, format?: StringFormat, options?: { contentType?: string }) {
    const { fetch, calls } = stubFetch(() => json(UPLOADED));
    await uploadString(fileRef(client(fetch), "s.bin"), value, format, options);
    assert.equal(calls.length, 1);
    const init = (calls[0] as Call).init;
    assert.equal(init.method, "PUT");
    return { bytes: [...(await bodyBytes(init.body))], type: init.headers["Content-Type"] };
  }

  it("reads each format as Firebase's StringFormat does (its documented examples)", async () => {
    const raw = [0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x21, 0x20, 0xf0, 0x9f, 0x98, 0x8a];
    const ten = [0xad, 0x69, 0x8e, 0xfb, 0xe1, 0x3a, 0xb7, 0xbf, 0xeb, 0x97];
    const cases: Array<[string, StringFormat | undefined, number[], string]> = [
      ["Hello! \ud83d\ude0a", undefined, raw, "application/octet-stream"],
      ["Hello! \ud83d\ude0a", StringFormat.RAW, raw, "application/octet-stream"],
      ["rWmO++E6t7/rlw==", StringFormat.BASE64, ten, "application/octet-stream"],
      ["rWmO++E6t7/rlw", StringFormat.BASE64, ten, "application/octet-stream"],
      ["rWmO--E6t7_rlw==", StringFormat.BASE64URL, ten, "application/octet-stream"],
      ["rWmO--E6t7_rlw", StringFormat.BASE64URL, ten, "application/octet-stream"],
      ["", StringFormat.BASE64, [], "application/octet-stream"],
      ["data:application/octet-stream;base64,aaaa", StringFormat.DATA_URL, [0x69, 0xa6, 0x9a], "application/octet-stream"],
      ["data:image/png;base64,iVBORw==", StringFormat.DATA_URL, [0x89, 0x50, 0x4e, 0x47], "image/png"],
      ["data:text/plain;charset=utf-8,%C3%A7a%20va", StringFormat.DATA_URL, [0xc3, 0xa7, 0x61, 0x20, 0x76, 0x61], "text/plain;charset=utf-8"],
      ["data:,A%20b", StringFormat.DATA_URL, [0x41, 0x20, 0x62], "application/octet-stream"],
    ];
    for (const [value, format, bytes, type] of cases) {
      assert.deepEqual(await sent(value, format), { bytes, type }, `${format ?? "default"}: ${value}`);
    }
  });

  it("raw: the UTF-8 bytes, also on a host without TextEncoder (lone surrogates as U+FFFD)", async () => {
    const texts = ["", "plain", "ça va ☃", "😀 \u{10ffff}", "lone \ud800 high", "lone \udfff low", "\u0000\u007f\u0080\u07ff\u0800\uffff"];
    const saved = globalThis.TextEncoder;
    try {
      for (const host of ["TextEncoder", "none"]) {
        if (host === "none") (globalThis as { TextEncoder?: unknown }).TextEncoder = undefined;
        for (const text of texts) {
          assert.deepEqual((await sent(text, "raw")).bytes, [...Buffer.from(text, "utf8")], `${host}: ${JSON.stringify(text)}`);
        }
      }
    } finally {
      globalThis.TextEncoder = saved;
    }
  });

  it("agrees with Node's base64 decoder on every length and byte", async () => {
    for (let n = 0; n < 40; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 151 + n * 7) % 256);
      const b64 = Buffer.from(bytes).toString("base64");
      const b64url = Buffer.from(bytes).toString("base64url");
      assert.deepEqual((await sent(b64, "base64")).bytes, [...bytes], b64);
      assert.deepEqual((await sent(b64url, "base64url")).bytes, [...bytes], b64url);
    }
  });

  it("gives contentType over a data URL's type, and passes the other options on", async () => {
    assert.equal((await sent("data:image/png;base64,iVBORw==", "data_url", { contentType: "image/x-mine" })).type, "image/x-mine");
    assert.equal((await sent("text", "raw", { contentType: "text/plain" })).type, "text/plain");
    const { fetch, calls } = stubFetch(() => json(UPLOADED));
    await uploadString(fileRef(client(fetch), "m.txt"), "hi", "raw", { customMetadata: { k: "v" }, cacheControl: "no-store" });
    assert.equal(calls[0]?.init.headers["X-Blaze-Metadata"], '{"k":"v"}');
    assert.equal(calls[0]?.init.headers["X-Blaze-Cache-Control"], "no-store");
  });

  it("refuses a string that is not valid in its format with invalid_argument, sending nothing", async () => {
    const { fetch, calls } = stubFetch(() => json(UPLOADED));
    const ref = fileRef(client(fetch), "bad.bin");
    const bad: Array<[string, string]> = [
      ["rWmO--E6", "base64"],
      ["rWmO++E6", "base64url"],
      ["abcde", "base64"],
      ["ab=", "base64"],
      ["a===", "base64"],
      ["ab cd", "base64"],
      ["Zm9v\n", "base64"],
      ["image/png;base64,AAAA", "data_url"],
      ["data:image/png;base64,A", "data_url"],
      ["data:text/plain,%E0%A4%A", "data_url"],
      ["text", "utf16"],
    ];
    for (const [value, format] of bad) {
      await assert.rejects(uploadString(ref, value, format as StringFormat), code("invalid_argument"), `${format}: ${value}`);
    }
    await assert.rejects(uploadString(ref, 42 as unknown as string), code("invalid_argument"));
    assert.equal(calls.length, 0);
  });
});

describe("getBytes", () => {
  const FILE = Uint8Array.from({ length: 100 }, (_, i) => i);

  /** A server of FILE that honours `bytes=a-b`, `bytes=a-` and `bytes=-n` as spec 15.3 says. */
  function ranged(call: Call): Response {
    const range = call.init.headers.Range;
    if (range === undefined) return new Response(FILE, { status: 200 });
    const m = /^bytes=(\d*)-(\d*)$/.exec(range);
    assert.ok(m, range);
    const size = FILE.length;
    let first: number;
    let last: number;
    if (m[1] === "") {
      const n = Number(m[2]);
      if (n === 0) return wireError(416, "range_not_satisfiable");
      first = Math.max(0, size - n);
      last = size - 1;
    } else {
      first = Number(m[1]);
      last = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
    }
    if (first >= size) return json({ error: { code: "range_not_satisfiable", message: `the file has ${size} bytes` } }, 416, { "Content-Range": `bytes */${size}` });
    return new Response(FILE.slice(first, last + 1), { status: 206, headers: { "Content-Range": `bytes ${first}-${last}/${size}` } });
  }

  it("GETs /v1/files/{path} and returns every byte", async () => {
    const { fetch, calls } = stubFetch(ranged);
    const bytes = await getBytes(fileRef(client(fetch), "docs/f.bin"));
    assert.deepEqual(bytes, FILE);
    assert.equal(calls[0]?.url, "https://blaze.test/v1/files/docs/f.bin");
    assert.equal(calls[0]?.init.method, "GET");
    assert.equal(calls[0]?.init.headers.Range, undefined);
    assert.equal(calls[0]?.init.headers.Authorization, "Bearer the-key");
  });

  it("getBlob: the same bytes as a Blob of the served content type, ranges too", async () => {
    const { fetch, calls } = stubFetch((call) => {
      const answer = ranged(call);
      answer.headers.set("Content-Type", "image/png");
      return answer;
    });
    const ref = fileRef(client(fetch), "docs/f.png");
    const blob = await getBlob(ref);
    assert.ok(blob instanceof Blob);
    assert.equal(blob.type, "image/png");
    assert.deepEqual(new Uint8Array(await blob.arrayBuffer()), FILE);
    const part = await getBlob(ref, { range: { offset: 10, length: 5 } });
    assert.deepEqual(new Uint8Array(await part.arrayBuffer()), FILE.slice(10, 15));
    assert.deepEqual(calls.map((c) => [c.url, c.init.method, c.init.headers.Range]), [
      ["https://blaze.test/v1/files/docs/f.png", "GET", undefined],
      ["https://blaze.test/v1/files/docs/f.png", "GET", "bytes=10-14"],
    ]);
    await assert.rejects(getBlob(fileRef(client(stubFetch(() => wireError(404, "not_found")).fetch), "gone.png")), code("not_found"));
  });

  it("sends Range for each range form and reads the 206 answers", async () => {
    const { fetch, calls } = stubFetch(ranged);
    const ref = fileRef(client(fetch), "f.bin");
    const cases = [
      [{ offset: 10, length: 20 }, "bytes=10-29", FILE.slice(10, 30)],
      [{ offset: 90 }, "bytes=90-", FILE.slice(90)],
      [{ offset: 95, length: 100 }, "bytes=95-194", FILE.slice(95)],
      [{ offset: 0, length: 1 }, "bytes=0-0", FILE.slice(0, 1)],
      [{ suffix: 7 }, "bytes=-7", FILE.slice(93)],
      [{ suffix: 1000 }, "bytes=-1000", FILE],
    ] as const;
    for (const [range, header, expected] of cases) {
      const before = calls.length;
      assert.deepEqual(await getBytes(ref, { range }), expected, header);
      assert.equal(calls[before]?.init.headers.Range, header);
    }
    await assert.rejects(getBytes(ref, { range: { offset: 100 } }), code("range_not_satisfiable"));
  });

  it("slices locally when the answer is 200 with every byte (a Range ignored on the way)", async () => {
    const { fetch } = stubFetch(() => new Response(FILE, { status: 200 }));
    const ref = fileRef(client(fetch), "f.bin");
    assert.deepEqual(await getBytes(ref, { range: { offset: 10, length: 5 } }), FILE.slice(10, 15));
    assert.deepEqual(await getBytes(ref, { range: { offset: 98 } }), FILE.slice(98));
    assert.deepEqual(await getBytes(ref, { range: { suffix: 3 } }), FILE.slice(97));
    await assert.rejects(getBytes(ref, { range: { offset: 100, length: 1 } }), code("range_not_satisfiable"));
    const { fetch: empty } = stubFetch(() => new Response(new Uint8Array(0), { status: 200 }));
    await assert.rejects(getBytes(fileRef(client(empty), "e.bin"), { range: { suffix: 1 } }), code("range_not_satisfiable"));
  });

  it("refuses a 206 that does not answer the range asked (protocol_error)", async () => {
    const partial = (contentRange: string, bytes: Uint8Array) => stubFetch(() => new Response(bytes, { status: 206, headers: { "Content-Range": contentRange } })).fetch;
    const ask = (fetch: FetchFunction, range?: { offset: number; length?: number } | { suffix: number }) =>
      getBytes(fileRef(client(fetch), "f.bin"), range === undefined ? {} : { range });
    await assert.rejects(ask(partial("bytes 0-9/100", FILE.slice(0, 10))), code("protocol_error"), "206 to a request without Range");
    await assert.rejects(ask(partial("bytes 5-14/100", FILE.slice(5, 15)), { offset: 0, length: 10 }), code("protocol_error"), "another offset");
    await assert.rejects(ask(partial("bytes 0-9/100", FILE.slice(0, 9)), { offset: 0, length: 10 }), code("protocol_error"), "fewer bytes than it says");
    await assert.rejects(ask(partial("bytes 0-19/100", FILE.slice(0, 20)), { offset: 0, length: 10 }), code("protocol_error"), "more than asked");
    await assert.rejects(ask(partial("bytes 0-9/100", FILE.slice(0, 10)), { offset: 0 }), code("protocol_error"), "not to the end");
    await assert.rejects(ask(partial("bytes 80-89/100", FILE.slice(80, 90)), { suffix: 10 }), code("protocol_error"), "not the last bytes");
    await assert.rejects(ask(partial("items 0-9/100", FILE.slice(0, 10)), { offset: 0, length: 10 }), code("protocol_error"), "another unit");
  });

  it("refuses bad ranges locally (invalid_argument), sending nothing", async () => {
    const { fetch, calls } = stubFetch(ranged);
    const ref = fileRef(client(fetch), "f.bin");
    for (const range of [{ offset: -1 }, { offset: 1.5 }, { offset: 0, length: 0 }, { suffix: 0 }, { suffix: -3 }, { offset: "1" }, null]) {
      await assert.rejects(getBytes(ref, { range: range as never }), code("invalid_argument"), JSON.stringify(range));
    }
    assert.equal(calls.length, 0);
  });

  it("passes not_found and permission_denied through", async () => {
    const { fetch } = stubFetch(() => wireError(404, "not_found"));
    await assert.rejects(getBytes(fileRef(client(fetch), "gone.bin")), code("not_found"));
    const { fetch: denied } = stubFetch(() => wireError(403, "permission_denied"));
    await assert.rejects(getBytes(fileRef(client(denied), "secret.bin")), code("permission_denied"));
  });
});

describe("getMetadata and deleteObject", () => {
  it("getMetadata GETs the metadata document and types it", async () => {
    const { fetch, calls } = stubFetch(() => json(metadataDoc("avatars/alice.png", 3, { metadata: { a: "b" }, uploadedBy: null })));
    const db = client(fetch);
    const meta = await getMetadata(fileRef(db, "avatars/alice.png"));
    assert.equal(calls[0]?.url, "https://blaze.test/v1/docs/_files/avatars/_files/alice.png");
    assert.equal(calls[0]?.init.method, "GET");
    assert.ok(meta.ref.isEqual(fileRef(db, "avatars/alice.png")));
    const { ref: _ref, ...rest } = meta;
    assert.deepEqual(rest, {
      path: "avatars/alice.png",
      name: "alice.png",
      size: 3,
      contentType: "text/plain",
      metadata: { a: "b" },
      md5: "00",
      uploadedBy: null,
      version: 7,
      createTime: 1700000000000,
      updateTime: 1700000005000,
    });
    assert.ok(!("key" in meta), "the object store key is the server's");
  });

  it("getMetadata: not_found passes through; a document that is not a file's is protocol_error", async () => {
    const { fetch } = stubFetch(() => wireError(404, "not_found", "no such document"));
    await assert.rejects(getMetadata(fileRef(client(fetch), "a.txt")), code("not_found", "no such document"));
    const { fetch: odd } = stubFetch(() => json(metadataDoc("a.txt", -1)));
    await assert.rejects(getMetadata(fileRef(client(odd), "a.txt")), code("protocol_error"));
    const { fetch: missing } = stubFetch(() => json({ path: "_files/a.txt", exists: false }));
    await assert.rejects(getMetadata(fileRef(client(missing), "a.txt")), code("protocol_error"));
  });

  it("deleteObject DELETEs /v1/files/{path}; 204 resolves, errors reject", async () => {
    const { fetch, calls } = stubFetch(() => new Response(null, { status: 204 }));
    assert.equal(await deleteObject(fileRef(client(fetch), "a/b.txt")), undefined);
    assert.equal(calls[0]?.url, "https://blaze.test/v1/files/a/b.txt");
    assert.equal(calls[0]?.init.method, "DELETE");
    assert.equal(calls[0]?.init.body, undefined);
    const { fetch: gone } = stubFetch(() => wireError(404, "not_found"));
    await assert.rejects(deleteObject(fileRef(client(gone), "a/b.txt")), code("not_found"));
  });
});

describe("list", () => {
  /**
   * A server over the folder `docs`: POST /v1/query over the metadata
   * documents of `names` (order_by __name__, start_after, limit), and GET
   * ?prefixes over `subfolders` as the real one pages them (positions are
   * the last name followed by `/`; at most `scan` names looked at a page).
   */
  function folderServer(names: string[], subfolders: string[] = [], scan = 1000) {
    const sorted = [...names].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return stubFetch((call) => {
      if (call.init.method === "GET") {
        const url = new URL(call.url);
        const max = Number(url.searchParams.get("max") ?? "1000");
        const after = url.searchParams.get("after");
        const from = after === null ? 0 : subfolders.indexOf(after.slice(0, -1)) + 1;
        const looked = subfolders.slice(from, from + Math.min(max, scan));
        const last = looked[looked.length - 1];
        const more = from + looked.length < subfolders.length;
        return json({ prefixes: looked, after: more && last !== undefined ? `${last}/` : null });
      }
      const query = JSON.parse(call.init.body as string) as { start_after?: [string]; limit: number };
      const after = query.start_after?.[0];
      const docs = sorted.filter((n) => after === undefined || n > after).slice(0, query.limit);
      return json({ seq: 3, docs: docs.map((n) => metadataDoc(`docs/${n}`)) });
    });
  }

  const posts = (calls: { init: FetchInit }[]) => calls.filter((c) => c.init.method === "POST").map((c) => JSON.parse(c.init.body as string));
  const gets = (calls: { url: string; init: FetchInit }[]) => calls.filter((c) => c.init.method === "GET").map((c) => c.url);

  it("POSTs the folder's query (by __name__, maxResults + 1, start_after) and GETs its subfolders at once; maxResults bounds both together", async () => {
    const { fetch, calls } = folderServer(["a", "b", "c"], ["x", "y+z"]);
    const folder = fileRef(client(fetch), "docs");
    const first = await list(folder, { maxResults: 2 });
    assert.equal(calls.length, 2, "both asked for the first page");
    assert.deepEqual(posts(calls), [{ collection: "_files/docs/_files", order_by: [{ field: "__name__", direction: "asc" }], limit: 3 }]);
    assert.deepEqual(gets(calls), ["https://blaze.test/v1/files/docs/?prefixes&max=2"]);
    assert.deepEqual(
      [first.items.map((i) => i.path), first.prefixes.map((p) => p.path)],
      [["docs/a", "docs/b"], []],
      "the first two entries in name order",
    );
    const second = await list(folder, { maxResults: 2, pageToken: first.nextPageToken as string });
    assert.deepEqual(posts(calls)[1], { collection: "_files/docs/_files", order_by: [{ field: "__name__", direction: "asc" }], limit: 3, start_after: ["b"] });
    assert.deepEqual(gets(calls)[1], "https://blaze.test/v1/files/docs/?prefixes&max=2", "no subfolder taken yet: from the start again");
    assert.deepEqual([second.items.map((i) => i.path), second.prefixes.map((p) => p.path)], [["docs/c"], ["docs/x"]]);
    const third = await list(folder, { maxResults: 2, pageToken: second.nextPageToken as string });
    assert.equal(posts(calls).length, 2, "the files were complete: only the subfolders asked");
    assert.deepEqual(gets(calls)[2], "https://blaze.test/v1/files/docs/?prefixes&max=2&after=x%2F");
    assert.deepEqual([third.items, third.prefixes.map((p) => p.path)], [[], ["docs/y+z"]]);
    assert.ok(!("nextPageToken" in third));
    await list(folder);
    assert.equal(posts(calls)[2].limit, 1001, "default page: 1000");
    assert.deepEqual(gets(calls)[3], "https://blaze.test/v1/files/docs/?prefixes&max=1000");
  });

  it("pages 25 files and 7 subfolders by 10 without duplicate or gap, each page in name order; a full last page has no token", async () => {
    const names = Array.from({ length: 25 }, (_, i) => `f${String(i).padStart(2, "0")}.txt`);
    const subfolders = ["a", "b", "c:d", "e", "f@g", "h+i", "j"];
    const { fetch, calls } = folderServer([...names].reverse(), subfolders, 3);
    const folder = fileRef(client(fetch), "docs");
    const pages: string[][] = [];
    const items: string[] = [];
    const prefixes: string[] = [];
    let pageToken: string | undefined;
    do {
      const page = await list(folder, pageToken === undefined ? { maxResults: 10 } : { maxResults: 10, pageToken });
      const entries = [...page.items.map((i) => i.name), ...page.prefixes.map((p) => p.name)];
      pages.push(entries);
      assert.ok(entries.length <= 10, `at most 10 entries a page: ${entries.length}`);
      items.push(...page.items.map((i) => i.name));
      prefixes.push(...page.prefixes.map((p) => p.name));
      assert.ok(page.prefixes.every((p) => p.parent?.isEqual(folder)));
      pageToken = page.nextPageToken;
      assert.ok(pages.length <= 10, "paging ends");
    } while (pageToken !== undefined);
    assert.deepEqual(items, names, "every file once, in order");
    assert.deepEqual(prefixes, subfolders, "every subfolder once");
    // The server answers 3 subfolders a page here: each page takes the first
    // 10 in name order of what the two listings answered.
    const f = (from: number, to: number) => names.slice(from, to);
    assert.deepEqual(pages, [[...f(0, 7), "a", "b", "c:d"], [...f(7, 16), "e"], [...f(16, 25), "f@g"], ["h+i", "j"]]);
    assert.ok(gets(calls).some((url) => url.endsWith("&after=c%3Ad%2F")), `positions are encoded: ${gets(calls).join(" ")}`);

    const { fetch: twenty } = folderServer(names.slice(0, 20));
    const two = fileRef(client(twenty), "docs");
    const p1 = await list(two, { maxResults: 10 });
    const p2 = await list(two, { maxResults: 10, pageToken: p1.nextPageToken as string });
    assert.equal(p2.items.length, 10);
    assert.equal(p2.nextPageToken, undefined, "no empty third page");
    const all = await listAll(two);
    assert.deepEqual(
      all.items.map((i) => i.name),
      names.slice(0, 20),
    );
    assert.deepEqual(all.prefixes, []);

    const { fetch: many } = folderServer(["only.txt"], Array.from({ length: 2500 }, (_, i) => `s${String(i).padStart(4, "0")}`));
    const everything = await listAll(fileRef(client(many), "docs"));
    assert.equal(everything.items.length, 1);
    assert.equal(everything.prefixes.length, 2500, "listAll follows the subfolders past the files");
  });

  it("lists the root folder: collection _files, subfolders at /v1/files/?prefixes", async () => {
    const { fetch, calls } = stubFetch((call) => (call.init.method === "GET" ? json({ prefixes: ["top"], after: null }) : json({ seq: 1, docs: [metadataDoc("top.txt")] })));
    const page = await list(fileRef(client(fetch)));
    assert.equal(posts(calls)[0].collection, "_files");
    assert.deepEqual(gets(calls), ["https://blaze.test/v1/files/?prefixes&max=1000"]);
    assert.equal(page.items[0]?.path, "top.txt");
    assert.equal(page.prefixes[0]?.path, "top");
  });

  it("refuses bad maxResults and page tokens locally; passes permission_denied through; refuses a bad subfolder listing", async () => {
    const { fetch, calls } = folderServer([]);
    const folder = fileRef(client(fetch), "docs");
    for (const maxResults of [0, -1, 1.5, 1001]) await assert.rejects(list(folder, { maxResults }), code("invalid_argument"), String(maxResults));
    for (const pageToken of ["", "a/b", "..", 5, "a", "a|b|c", "!|!", "..|!", "!|a/b", "a|b//"]) {
      await assert.rejects(list(folder, { pageToken: pageToken as string }), code("invalid_argument"), String(pageToken));
    }
    assert.equal(calls.length, 0);
    const { fetch: denied } = stubFetch(() => wireError(403, "permission_denied"));
    await assert.rejects(list(fileRef(client(denied), "docs")), code("permission_denied"));
    const { fetch: deniedFolders } = stubFetch((call) => (call.init.method === "GET" ? wireError(403, "permission_denied") : json({ seq: 1, docs: [] })));
    await assert.rejects(list(fileRef(client(deniedFolders), "docs")), code("permission_denied"));
    const { fetch: bad } = stubFetch((call) => (call.init.method === "GET" ? json({ prefixes: [], after: null }) : json({ seq: 1 })));
    await assert.rejects(list(fileRef(client(bad), "docs")), code("protocol_error"));
    for (const answer of [{ prefixes: ["a/b"], after: null }, { prefixes: ["a"] }, { prefixes: "a", after: null }, { prefixes: [], after: ".." }, { prefixes: ["a", "b"], after: null }]) {
      const { fetch: odd } = stubFetch((call) => (call.init.method === "GET" ? json(answer) : json({ seq: 1, docs: [] })));
      await assert.rejects(list(fileRef(client(odd), "docs"), { maxResults: 1 }), code("protocol_error"), JSON.stringify(answer));
    }
  });
});

describe("getDownloadURL", () => {
  const answer = { url: "/v1/files/a/b.txt?expires=1700000060000&signature=abc123", expires: 1700000060000 };

  it("POSTs ?url (with &ttl) and returns the URL absolute on the server's URL", async () => {
    const { fetch, calls } = stubFetch(() => json(answer));
    const url = await getDownloadURL(fileRef(client(fetch), "a/b.txt"), { ttlSeconds: 60 });
    assert.equal(url, "https://blaze.test/v1/files/a/b.txt?expires=1700000060000&signature=abc123");
    assert.equal(calls[0]?.url, "https://blaze.test/v1/files/a/b.txt?url&ttl=60");
    assert.equal(calls[0]?.init.method, "POST");
    assert.equal(calls[0]?.init.headers.Authorization, "Bearer the-key");
    await getDownloadURL(fileRef(client(fetch), "a/b.txt"));
    assert.equal(calls[1]?.url, "https://blaze.test/v1/files/a/b.txt?url");
  });

  it("keeps a ws(s):// client URL's host and path prefix, as an https URL", async () => {
    const { fetch, calls } = stubFetch(() => json(answer));
    const url = await getDownloadURL(fileRef(client(fetch, {}, "wss://blaze.test/prefix/"), "a/b.txt"));
    assert.equal(calls[0]?.url, "https://blaze.test/prefix/v1/files/a/b.txt?url");
    assert.equal(url, "https://blaze.test/prefix/v1/files/a/b.txt?expires=1700000060000&signature=abc123");
    const { fetch: absolute } = stubFetch(() => json({ url: "https://cdn.test/x?sig=1", expires: 1 }));
    assert.equal(await getDownloadURL(fileRef(client(absolute), "a.txt")), "https://cdn.test/x?sig=1");
  });

  it("refuses a bad ttl locally; maps errors and odd answers", async () => {
    const { fetch, calls } = stubFetch(() => json(answer));
    for (const ttlSeconds of [0, -5, 2.5]) await assert.rejects(getDownloadURL(fileRef(client(fetch), "a.txt"), { ttlSeconds }), code("invalid_argument"));
    assert.equal(calls.length, 0);
    const { fetch: gone } = stubFetch(() => wireError(404, "not_found"));
    await assert.rejects(getDownloadURL(fileRef(client(gone), "a.txt")), code("not_found"));
    const { fetch: odd } = stubFetch(() => json({ url: "relative/path", expires: 1 }));
    await assert.rejects(getDownloadURL(fileRef(client(odd), "a.txt")), code("protocol_error"));
    const { fetch: none } = stubFetch(() => json({ expires: 1 }));
    await assert.rejects(getDownloadURL(fileRef(client(none), "a.txt")), code("protocol_error"));
  });
});

describe("cancelling HTTP requests", () => {
  /** A fetch that never answers until its signal fires (then rejects as fetch does). */
  function hanging() {
    const signals: AbortSignal[] = [];
    const fetch: FetchFunction = (_url, init) =>
      new Promise((_resolve, reject) => {
        const signal = init.signal as AbortSignal;
        signals.push(signal);
        signal.addEventListener("abort", () => reject(new DOMException("This operation was aborted", "AbortError")));
      });
    return { fetch, signals };
  }

  it("close() aborts the requests in flight with cancelled, and later calls fail with cancelled", async () => {
    const { fetch, signals } = hanging();
    const db = client(fetch);
    const upload = uploadBytes(fileRef(db, "a.bin"), new Uint8Array(10));
    const download = getBytes(fileRef(db, "a.bin"));
    await new Promise((resolve) => setTimeout(resolve, 5));
    db.close();
    await assert.rejects(upload, code("cancelled"));
    await assert.rejects(download, code("cancelled"));
    assert.ok(signals.length === 2 && signals.every((s) => s.aborted), "the fetches were aborted");
    await assert.rejects(getMetadata(fileRef(db, "a.bin")), code("cancelled"));
  });

  it("the application's signal aborts a transfer with cancelled", async () => {
    const { fetch, signals } = hanging();
    const controller = new AbortController();
    const download = getBytes(fileRef(client(fetch), "a.bin"), { signal: controller.signal });
    await new Promise((resolve) => setTimeout(resolve, 5));
    controller.abort();
    await assert.rejects(download, code("cancelled"));
    assert.equal(signals[0]?.aborted, true);
    await assert.rejects(getBytes(fileRef(client(fetch), "a.bin"), { signal: controller.signal }), code("cancelled"), "already aborted");
    assert.equal(signals.length, 1, "an aborted signal sends nothing");
  });

  it("requestTimeoutMs bounds the JSON requests (deadline_exceeded), not the transfers", async () => {
    const { fetch, signals } = hanging();
    const db = client(fetch, { requestTimeoutMs: 30 });
    await assert.rejects(getMetadata(fileRef(db, "a.bin")), code("deadline_exceeded"));
    await assert.rejects(deleteObject(fileRef(db, "a.bin")), code("deadline_exceeded"));
    await assert.rejects(list(fileRef(db, "d")), code("deadline_exceeded"));
    const transfer = getBytes(fileRef(db, "a.bin"));
    let settled = false;
    transfer.then(
      () => (settled = true),
      () => (settled = true),
    );
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(settled, false, "a download is not cut by requestTimeoutMs");
    db.close();
    await assert.rejects(transfer, code("cancelled"));
    assert.ok(signals.every((s) => s.aborted));
  });
});

describe("uploads on the wire (a loopback HTTP server, the real fetch)", () => {
  it("fetch sends Content-Length for every kind of body, with Content-Type, X-Blaze-Metadata and the bytes", async () => {
    const seen: Array<{ method?: string | undefined; url?: string | undefined; headers: IncomingHttpHeaders; body: Buffer }> = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        seen.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks) });
        res.writeHead(200, { "Content-Type": "application/json" });
        res.end(JSON.stringify(UPLOADED));
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const db = connect(`http://127.0.0.1:${port}`, { WebSocket: NoWebSocket, auth: "k" });
      const big = Uint8Array.from({ length: 70_000 }, (_, i) => i % 251);
      await uploadBytes(fileRef(db, "e/zero.bin"), new Uint8Array(0));
      await uploadBytes(fileRef(db, "e/one.bin"), new Uint8Array([42]), { customMetadata: { k: "v" } });
      await uploadBytes(fileRef(db, "e/big.bin"), big.buffer);
      await uploadBytes(fileRef(db, "e/blob.txt"), new Blob(["hi there"], { type: "text/plain" }));
      db.close();
      assert.deepEqual(
        seen.map((s) => [s.method, s.url, s.headers["content-length"], s.headers["content-type"], s.headers["x-blaze-metadata"], s.headers.authorization, s.headers["transfer-encoding"]]),
        [
          ["PUT", "/v1/files/e/zero.bin", "0", "application/octet-stream", undefined, "Bearer k", undefined],
          ["PUT", "/v1/files/e/one.bin", "1", "application/octet-stream", '{"k":"v"}', "Bearer k", undefined],
          ["PUT", "/v1/files/e/big.bin", "70000", "application/octet-stream", undefined, "Bearer k", undefined],
          ["PUT", "/v1/files/e/blob.txt", "8", "text/plain", undefined, "Bearer k", undefined],
        ],
      );
      assert.deepEqual([...(seen[1]?.body ?? [])], [42]);
      assert.ok(seen[2]?.body.equals(Buffer.from(big)));
      assert.equal(seen[3]?.body.toString(), "hi there");
    } finally {
      server.close();
    }
  });
});
