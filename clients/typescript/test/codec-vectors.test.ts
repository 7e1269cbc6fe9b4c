/**
 * spec/vectors/codec.json, client side (README: "it must produce frames that
 * decode as expected and agree on which frames are invalid").
 *
 * - Cases whose frame decodes: the same message is rebuilt through the public
 *   API, the frame the client actually sends (captured by a fake WebSocket)
 *   must equal the vector's message (compared as a decoder keeps it: unknown
 *   fields dropped, `direction` defaulted, `rid` ignored since every client
 *   numbers its own requests, and `commit_id` too, which the client draws at
 *   random for every commit), and must pass the client's frame limit check.
 * - Size/depth cases: run against the client's own pre-send check
 *   (`frameLimitError`), which must give the server's code.
 * - Invalid frames the API could be asked to make: the API must refuse them
 *   locally (`invalid_argument`).
 * - Invalid frames the client cannot produce at all: skipped, with the reason.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { collection, connect, doc, limit, orderBy, where, type Blaze } from "../src/index.js";
import { frameLimitError } from "../src/frame-limits.js";
import { pathProblem } from "../src/paths.js";
import { DEFAULT_LIMITS, FakeServer } from "./helpers/fake-websocket.js";
import { loadVectors } from "./helpers/vectors.js";
import { addWritesFromWire, normalizeClientFrame, queryFromWire } from "./helpers/wire-to-api.js";

interface CodecCase {
  name: string;
  frame: string;
  limits?: Record<string, number>;
  expect: { type?: string; error?: string; rid?: number | null };
}

const vectors = loadVectors<CodecCase>("codec.json");

/** Frames no call of the client's API can produce, and why. */
const NEVER_PRODUCED: Record<string, string> = {
  "hello with another protocol version decodes (the connection refuses it)": "the client always sends protocol 1",
  "not JSON": "every frame is JSON.stringify of a message object",
  "a leading byte-order mark is not JSON": "every frame is JSON.stringify of a message object",
  "empty frame": "every frame is JSON.stringify of a message object",
  "whitespace only": "every frame is JSON.stringify of a message object",
  "trailing garbage after the object": "every frame is JSON.stringify of a message object",
  "two objects in one frame": "every frame is JSON.stringify of one message object",
  "array frame": "every frame is JSON.stringify of a message object",
  "string frame": "every frame is JSON.stringify of a message object",
  "number frame": "every frame is JSON.stringify of a message object",
  "null frame": "every frame is JSON.stringify of a message object",
  "single-quoted JSON": "every frame is JSON.stringify of a message object",
  "missing type, rid echoed": "the client only builds typed messages",
  "missing type, no rid": "the client only builds typed messages",
  "numeric type": "the client only builds typed messages",
  "null type": "the client only builds typed messages",
  "unknown type, rid echoed": "the client only sends hello, get, commit, query, count, listen, unlisten, ack, auth",
  "unknown type without rid": "the client only sends hello, get, commit, query, count, listen, unlisten, ack, auth",
  "a server message type sent by a client": "the client only sends client message types",
  "type is case-sensitive": "the client's type names are constants",
  "empty type": "the client's type names are constants",
  "hello without protocol": "the client always sends protocol 1",
  "hello with a string protocol": "the client always sends protocol 1",
  "hello with a negative protocol": "the client always sends protocol 1",
  "get without rid": "the client gives every request a rid",
  "string rid is not echoed": "rids are integers counted from 1 by the client",
  "negative rid is not echoed": "rids are integers counted from 1 by the client",
  "fractional rid": "rids are integers counted from 1 by the client",
  "rid written with a fraction": "rids are integers counted from 1 by the client",
  "rid above 2^64-1": "rids are integers counted from 1 by the client",
  "commit without collection": "a batch always names its collection",
  "commit without writes": "a batch always sends its writes array",
  "commit with writes not an array": "a batch always sends its writes array",
  "write with an unknown op": "writes are made by typed methods (set, create, update, patch, delete, verify)",
  "write without op": "writes are made by typed methods",
  "write without id": "a write's id comes from a DocRef",
  "write with a numeric id": "a write's id comes from a DocRef",
  "query without query": "a query request always carries the encoded query",
  "query without collection": "a query always has its collection",
  "cursor not an array": "cursor functions take their values as rest arguments, always an array",
  "commit with an empty commit_id": "the client draws its commit ids from A-Z a-z 0-9 - _, 22 long",
  "commit with a commit_id of 65 characters": "the client draws its commit ids from A-Z a-z 0-9 - _, 22 long",
  "commit with a commit_id outside A-Z a-z 0-9 - _": "the client draws its commit ids from A-Z a-z 0-9 - _, 22 long",
  "commit with a numeric commit_id": "the client draws its commit ids from A-Z a-z 0-9 - _, 22 long",
  "number out of double range": "JavaScript numbers are doubles; non-finite numbers are refused by where()/cursors (tested below)",
  "listen to a collection as a document": "listen frames come from the listener machinery, which this test does not drive (doc() refuses the path locally)",
  "query listen with an invalid collection": "listen frames come from the listener machinery, which this test does not drive (collection() refuses the path locally)",
  "fields before paths: no rid and an invalid path": "the client gives every request a rid",
  "fields before paths: a string rid and an invalid path": "rids are integers counted from 1 by the client",
  "fields before paths: an unknown write op after an invalid collection": "writes are made by typed methods",
  "fields before paths: a negative limit in a query on an invalid collection": "limit() refuses negative numbers",
  "fields before paths: a listen with doc and query, the doc invalid": "a listener follows exactly one document or query",
  "listen with neither doc nor query": "a listener follows exactly one document or query",
  "listen with doc and query both null": "a listener follows exactly one document or query",
  "null optional fields of hello and commit are absent": "the client leaves optional fields out instead of sending null",
  "null auth is absent": "the client leaves optional fields out instead of sending null",
  "null optional fields of a query are absent": "the client leaves optional fields out instead of sending null",
  "a null direction is asc": "the client leaves optional fields out instead of sending null",
  "null doc and since in a query listen are absent": "the client leaves optional fields out instead of sending null",
  "ack of zero frames": "the client acks once it has read 64 frames (or 64 Ki code units), never 0",
  "ack without frames": "the client's acks carry the count of frames it read",
  "ack with a negative count": "the client's acks carry the count of frames it read",
  "ack with a string count": "the client's acks carry the count of frames it read",
  "auth": "auth frames come from the token refresh machinery, which this test does not drive",
  "auth without rid": "the client gives every request a rid",
  "auth without auth": "an auth frame always carries the provider's token",
  "auth with a numeric auth": "an auth frame always carries the provider's token",
  "auth with a null auth": "an auth frame always carries the provider's token",
  "an integer beyond 2^53 decodes": "JavaScript numbers are doubles: 9007199254740993 cannot be represented, a JS client sends 9007199254740992",
};

/**
 * Why an invalid `auth` frame cannot come from the client, whatever its
 * vector is named: the client builds `auth` itself, with a rid and the
 * provider's token (a string; anything else is a provider failure).
 */
function neverProducedAuth(c: CodecCase): string | undefined {
  if (c.expect.error === undefined) return undefined;
  try {
    const frame: unknown = JSON.parse(c.frame);
    if (typeof frame === "object" && frame !== null && (frame as { type?: unknown }).type === "auth") {
      return "the client's auth frames carry a rid and the token getToken gave, a string";
    }
  } catch {
    /* not JSON: not an auth frame */
  }
  return undefined;
}

/** Invalid frames the API could be asked for: the call must throw `invalid_argument`. */
const REFUSED_BY_API: Record<string, (db: Blaze) => unknown> = {
  "hello with a numeric auth": () => connect("ws://x", { WebSocket: new FakeServer().WebSocket, auth: 42 as unknown as string }),
  "get without path": (db) => doc(db, undefined as unknown as string).get(),
  "get with a numeric path": (db) => doc(db, 7 as unknown as string).get(),
  "create without data": (db) => db.batch().create(doc(db, "c/a"), undefined as unknown as object),
  "set without data": (db) => db.batch().set(doc(db, "c/a"), undefined as unknown as object),
  "patch without patch": (db) => db.batch().patch(doc(db, "c/a"), undefined as unknown as []),
  "merge without patch": (db) => db.batch().update(doc(db, "c/a"), undefined as unknown as Record<string, unknown>),
  "precondition exists not a boolean": (db) => db.batch().delete(doc(db, "c/a"), { ifExists: "yes" as unknown as boolean }),
  "precondition version negative": (db) => db.batch().delete(doc(db, "c/a"), { ifVersion: -1 }),
  "filter with an unknown op": () => where("a", "like" as "==", "x"),
  "filter without value": () => where("a", "==", undefined),
  "order_by with an unknown direction": () => orderBy("a", "up" as "asc"),
  "negative limit": () => limit(-1),
};

/** Decodable frames that the client refuses before sending, with the code the server's engine would give. */
const REFUSED_LOCALLY: Record<string, string> = {
  "get with an invalid path": "invalid_path",
  "commit with an invalid collection": "invalid_path",
  "query with an invalid collection": "invalid_path",
  "count with an invalid collection": "invalid_path",
  "commit with an invalid write id decodes (the engine answers invalid_path with write_index)": "invalid_path",
  "commit with no writes decodes (the engine answers empty_batch)": "empty_batch",
};

/** The document and collection paths a message names: the frame's own, and each write's document. */
function namedPaths(message: any): [string, "document" | "collection"][] {
  if (message.type === "get") return [[message.path, "document"]];
  if (message.type === "commit") {
    const docs = (message.writes ?? []).map((w: any): [string, "document"] => [`${message.collection}/${w.id}`, "document"]);
    return [[message.collection, "collection"], ...docs];
  }
  return [[message.query?.collection, "collection"]];
}

/** Sends the vector's message through the API and returns the frame the client wrote. */
async function sendThroughApi(message: any): Promise<any> {
  const server = new FakeServer();
  const db = connect("ws://blaze.test", {
    WebSocket: server.WebSocket,
    auth: message.type === "hello" ? message.auth : undefined,
    getToken: message.type === "auth" ? async () => message.auth : undefined,
  });
  try {
    let call: Promise<unknown>;
    switch (message.type) {
      case "hello":
        call = doc(db, "c/d").get();
        break;
      case "get":
        call = doc(db, message.path).get();
        break;
      case "commit":
        call = addWritesFromWire(db.batch(), collection(db, message.collection), message.writes).commit();
        break;
      case "query":
        call = queryFromWire(db, message.query).get();
        break;
      case "count":
        call = queryFromWire(db, message.query).count();
        break;
      case "ack": {
        // The client acks what it reads: `welcome`, then frames until the count is due.
        call = doc(db, "c/d").get();
        const socket = await server.socket(1);
        await socket.nextRequest();
        for (let read = 1; read < message.frames; read++) socket.serverSend({ type: "unlistened", rid: 0 });
        break;
      }
      case "auth": {
        // The client refreshes its token in-band when it is due: a welcome whose credential expires now.
        server.autoWelcome = false;
        call = doc(db, "c/d").get();
        const socket = await server.socket(1);
        await socket.next();
        socket.serverSend({ type: "welcome", protocol: 1, limits: DEFAULT_LIMITS, auth: { kind: "user", uid: "u", expires: Date.now() } });
        await socket.nextRequest();
        break;
      }
      default:
        throw new Error(`no API for ${message.type}`);
    }
    // A local refusal rejects `call` before any socket exists.
    const refused = call.then(() => Promise.reject(new Error("answered without a server")));
    refused.catch(() => undefined);
    const socket = await Promise.race([refused, server.socket(1)]);
    const frame = await Promise.race([refused, message.type === "hello" ? socket.next() : socket.nextRequest()]);
    assert.equal(frame.type, message.type);
    const raw = socket.rawSent[socket.sent.indexOf(frame)] as string;
    assert.equal(frameLimitError(raw), undefined, "the client's frame passes its own limit check");
    if (message.type !== "hello" && message.type !== "ack") assert.ok(Number.isSafeInteger(frame.rid) && frame.rid >= 1, "rid is a positive integer");
    if (message.type === "commit") assert.match(frame.commit_id, /^[A-Za-z0-9_-]{22,64}$/, "every commit carries a commit id");
    return frame;
  } finally {
    db.close();
  }
}

describe("codec.json", () => {
  it("has cases", () => assert.ok(vectors.cases.length > 50));

  for (const c of vectors.cases) {
    const limitCase = c.limits !== undefined && ("max_frame_bytes" in c.limits || "max_frame_depth" in c.limits);
    const sizeOrDepthError = c.expect.error === "frame_too_large" || c.expect.error === "frame_too_deep";

    if (limitCase || sizeOrDepthError) {
      it(`${c.name} (the client's pre-send limit check)`, () => {
        const error = frameLimitError(c.frame, c.limits ?? {});
        assert.equal(error?.code, c.expect.error);
      });
      continue;
    }

    const never = NEVER_PRODUCED[c.name] ?? neverProducedAuth(c);
    if (never !== undefined) {
      it(`${c.name}`, { skip: `not producible by the client: ${never}` }, () => undefined);
      continue;
    }

    const refusal = REFUSED_BY_API[c.name];
    if (refusal !== undefined) {
      it(`${c.name} (refused by the API)`, async () => {
        const server = new FakeServer();
        const db = connect("ws://blaze.test", { WebSocket: server.WebSocket });
        try {
          await assert.rejects(
            async () => refusal(db),
            (e: any) => e.code === "invalid_argument",
          );
          assert.equal(server.sockets.length, 0, "nothing was sent");
        } finally {
          db.close();
        }
      });
      continue;
    }

    const local = REFUSED_LOCALLY[c.name];
    if (local !== undefined) {
      it(`${c.name} (refused before sending with ${local})`, async () => {
        const message = JSON.parse(c.frame);
        if (local === "invalid_path") assert.ok(namedPaths(message).some(([path, kind]) => pathProblem(path, kind) !== undefined));
        await assert.rejects(sendThroughApi(message), (e: any) => e.code === local);
      });
      continue;
    }

    assert.ok(c.expect.type !== undefined, `case ${c.name} is not classified`);
    it(`${c.name} (the API sends the same ${c.expect.type})`, async () => {
      const message = JSON.parse(c.frame);
      const sent = await sendThroughApi(message);
      assert.deepEqual(normalizeClientFrame(sent), normalizeClientFrame(message));
    });
  }

  it("non-finite numbers are refused (JSON has none)", () => {
    assert.throws(() => where("a", "==", Infinity), (e: any) => e.code === "invalid_argument");
    assert.throws(() => where("a", "==", NaN), (e: any) => e.code === "invalid_argument");
  });
});
