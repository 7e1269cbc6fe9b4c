/**
 * End to end of commit ids (protocol 8.7) against the real worker under
 * `wrangler dev`: the client appends to one document's array through a
 * loopback proxy that, before every other write, is armed to drop the
 * server's next bytes (that commit's answer) and cut the connection. The
 * client reconnects and re-sends the commit with its `commit_id`; the server
 * applies it once. Requires the worker to be built
 * (`bash scripts/build-worker.sh`); without it this test FAILS.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { connect, doc, getDoc, onSnapshot, patchDoc, setDoc, type Blaze, type ConnectOptions, type DocumentSnapshot } from "../src/index.js";
import { CuttingProxy, type ProxiedConnection } from "./helpers/cutting-proxy.js";
import { eventually } from "./helpers/eventually.js";
import { WranglerDev } from "./helpers/wrangler.js";

/** How many `add /tags/-` writes the client makes through the proxy. */
const WRITES = 12;
/** How long one write or one listener event may take. */
const WAIT_MS = 15_000;

/** `ws` without `permessage-deflate`, so the proxy can read the frames the client sends. */
class PlainWebSocket extends WebSocket {
  constructor(url: string) {
    super(url, { perMessageDeflate: false });
  }
}

/** Quick reconnects, and a request timeout that outlasts them. */
const OPTIONS: ConnectOptions = { WebSocket: PlainWebSocket, requestTimeoutMs: 10_000, reconnect: { initialMs: 50, maxMs: 200 } };

/** `promise`, or a failure naming `what` after `ms`. */
async function within<T>(promise: Promise<T>, what: string, ms = WAIT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("commit ids end to end (wrangler dev, a proxy losing answers)", { timeout: 180_000 }, () => {
  let wrangler: WranglerDev | undefined;
  let proxy: CuttingProxy | undefined;
  const clients: Blaze[] = [];

  before(async () => {
    wrangler = await WranglerDev.create();
    await wrangler.start();
    proxy = await CuttingProxy.start(wrangler.port);
  });

  after(async () => {
    for (const db of clients) db.close();
    await proxy?.close();
    await wrangler?.dispose();
  });

  it("commits cut off from their answers are re-sent with their commit id and applied once", async () => {
    assert.ok(wrangler && proxy, "wrangler dev or the proxy is not running (see the before hook's error)");
    const writer = connect(proxy.url, OPTIONS);
    const reader = connect(wrangler.url, OPTIONS);
    clients.push(writer, reader);
    const mine = doc(writer, "retry", "d");
    const first = (await within(setDoc(mine, { tags: [] }), "the first write")).seq;

    const seen: DocumentSnapshot[] = [];
    const errors: unknown[] = [];
    const stop = onSnapshot(doc(reader, "retry", "d"), (s) => seen.push(s), (e) => errors.push(e));
    await eventually(() => seen.length === 1 || errors.length > 0, "the listener's first snapshot", WAIT_MS);

    const seqs: number[] = [];
    for (let i = 0; i < WRITES; i++) {
      if (i % 2 === 0) proxy.dropNextAnswer();
      const result = await within(patchDoc(mine, [{ op: "add", path: "/tags/-", value: i }]), `write ${i}`);
      seqs.push(result.seq);
    }
    assert.equal(proxy.answersDropped, WRITES / 2, "every other answer was lost");
    assert.deepEqual(
      seqs,
      Array.from({ length: WRITES }, (_, i) => first + 1 + i),
      "one sequence number per write",
    );

    const tags = Array.from({ length: WRITES }, (_, i) => i);
    const stored = await within(getDoc(mine), "the read");
    assert.deepEqual(stored.data(), { tags }, "each write once");
    assert.equal(stored.version, first + WRITES);

    await eventually(() => seen.at(-1)?.version === first + WRITES || errors.length > 0, "the listener's last event", WAIT_MS);
    stop();
    assert.deepEqual(errors, []);
    assert.deepEqual(
      seen.map((s) => s.version),
      Array.from({ length: WRITES + 1 }, (_, i) => first + i),
      "the listener saw each commit once",
    );
    seen.forEach((s, n) => assert.deepEqual(s.data(), { tags: tags.slice(0, n) }, `event ${n}`));

    // On the wire: each lost answer's commit was sent again, with the same
    // commit id, on the next connection; no other commit was sent twice.
    const cut = proxy.connections.filter((c) => c.lostAnswerTo !== undefined);
    assert.equal(cut.length, WRITES / 2);
    const sent = proxy.connections.flatMap((c) => c.commitIds);
    assert.equal(sent.length, 1 + WRITES + WRITES / 2, "the first write, each write, and each re-send");
    for (const connection of cut) {
      const id = connection.lostAnswerTo as string;
      assert.match(id, /^[A-Za-z0-9_-]{22}$/);
      const next: ProxiedConnection | undefined = proxy.connections[proxy.connections.indexOf(connection) + 1];
      assert.equal(next?.commitIds[0], id, "re-sent first on the next connection, with the same commit id");
      assert.equal(sent.filter((s) => s === id).length, 2);
    }
    assert.equal(new Set(sent).size, 1 + WRITES, "one commit id per commit");
  });
});
