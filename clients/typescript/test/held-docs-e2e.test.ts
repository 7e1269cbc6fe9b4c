/**
 * Held documents (spec 10.4.9) end to end, against the real worker under
 * `wrangler dev`: one client opens many overlapping listeners on one
 * collection (every document, filtered views, a window, documents), so the
 * server names documents another listener already holds instead of sending
 * them again; every listener's results must equal a fresh `getDocs` of its
 * query, through writes and through listeners stopped and started in quick
 * succession (in every order: the server may name documents of a listener
 * whose `unlisten` it has not read yet, or that was stopped before its
 * answer). A held entry the client could not resolve
 * would drop the socket: the test also checks that the client kept its one
 * socket, and that the server did send held entries. Requires the worker to
 * be built (`bash scripts/build-worker.sh`); without it these tests FAIL.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import WebSocket from "ws";
import { collection, connect, doc, getDocs, setDoc, updateDoc, deleteDoc, writeBatch, type Blaze, type BlazeError, type CollectionRef, type DocumentSnapshot, type Query, type QuerySnapshot } from "../src/index.js";
import { eventually } from "./helpers/eventually.js";
import { WranglerDev } from "./helpers/wrangler.js";

const RUN = `h${Date.now().toString(36)}${Math.floor(Math.random() * 1e6).toString(36)}`;
/** Documents in the collection at the start. */
const DOCS = 40;
const TEAMS = ["red", "green", "blue"] as const;

/** What one socket received, and how it ended. */
interface SocketLog {
  /** Snapshot entries received whole, and named held. */
  whole: number;
  held: number;
  closed?: { code: number; reason: string };
}

/** A `ws` WebSocket that counts the `snapshot` entries each socket the client opens receives. */
function countingWebSocket(log: SocketLog[]) {
  return class CountingWebSocket extends WebSocket {
    constructor(url: string) {
      super(url);
      const entry: SocketLog = { whole: 0, held: 0 };
      log.push(entry);
      this.addEventListener("message", (event) => {
        const frame = JSON.parse(String(event.data)) as { type: string; docs?: Array<{ held?: boolean }> };
        if (frame.type !== "snapshot") return;
        for (const d of frame.docs ?? []) {
          if (d.held === true) entry.held++;
          else entry.whole++;
        }
      });
      this.addEventListener("close", (event) => {
        entry.closed = { code: event.code, reason: event.reason };
      });
    }
  };
}

/** A listener under test: its query and what it reported. */
interface Watched {
  readonly name: string;
  latest: QuerySnapshot | undefined;
  calls: number;
  readonly errors: BlazeError[];
  stop: () => void;
}

function watch(name: string, query: Query): Watched {
  const w: Watched = { name, latest: undefined, calls: 0, errors: [], stop: () => undefined };
  w.stop = query.onSnapshot(
    (s) => {
      w.latest = s;
      w.calls++;
    },
    (e) => w.errors.push(e),
  );
  return w;
}

/** Everything a query snapshot says about each document, in order. */
function rows(s: QuerySnapshot | undefined): unknown[] {
  return s === undefined ? [] : s.docs.map((d: DocumentSnapshot) => [d.id, d.version, d.createTime, d.updateTime, d.data()]);
}

/** The data of document `i` in round `round`. */
function item(i: number, round = 0) {
  return {
    n: i,
    team: TEAMS[(i + round) % TEAMS.length] as string,
    tags: i % 4 === 0 ? ["four"] : i % 2 === 0 ? ["two"] : [],
    round,
    body: `${i}:${"x".repeat(1500)}`,
  };
}

/** The queries the listeners follow: they overlap, so most documents are in several. */
function queries(items: CollectionRef): Array<[string, Query]> {
  return [
    ["all by n", items.orderBy("n")],
    ["all by name", items],
    ["all by n again (same target)", items.orderBy("n")],
    ["red", items.where("team", "==", "red")],
    ["green", items.where("team", "==", "green")],
    ["blue", items.where("team", "==", "blue").orderBy("n")],
    ["red or blue by n desc", items.where("team", "in", ["red", "blue"]).orderBy("n", "desc")],
    ["n < 15", items.where("n", "<", 15).orderBy("n")],
    ["n >= 10, top 7", items.where("n", ">=", 10).orderBy("n", "desc").limit(7)],
    ["tagged four", items.where("tags", "array-contains", "four")],
    ["green, first 5", items.where("team", "==", "green").orderBy("n").limit(5)],
  ];
}

describe("held documents end to end (wrangler dev)", { timeout: 240_000 }, () => {
  let wrangler: WranglerDev | undefined;
  const clients: Blaze[] = [];

  before(async () => {
    wrangler = await WranglerDev.create();
    await wrangler.start();
  });

  after(async () => {
    for (const db of clients) db.close();
    await wrangler?.dispose();
  });

  function open(sockets?: SocketLog[]): Blaze {
    assert.ok(wrangler, "wrangler dev is not running (see the before hook's error)");
    const WebSocketClass = sockets === undefined ? WebSocket : countingWebSocket(sockets);
    const db = connect(wrangler.url, { WebSocket: WebSocketClass, requestTimeoutMs: 15_000, reconnect: { initialMs: 50, maxMs: 400 } });
    clients.push(db);
    return db;
  }

  /** Waits until every listener's results equal a fresh `getDocs` of its query on `readerItems` (another client's). */
  async function converged(readerItems: CollectionRef, watched: Watched[], what: string): Promise<void> {
    const byName = new Map(queries(readerItems));
    const expected = new Map<string, unknown[]>();
    for (const w of watched) {
      const q = byName.get(w.name.replace(/ #\d+$/, ""));
      assert.ok(q, `a query named ${w.name}`);
      expected.set(w.name, rows(await getDocs(q)));
    }
    try {
      await eventually(() => watched.every((w) => JSON.stringify(rows(w.latest)) === JSON.stringify(expected.get(w.name))), what, 20_000);
    } catch (error) {
      for (const w of watched) assert.deepEqual(rows(w.latest), expected.get(w.name), `${what}: ${w.name}`);
      throw error;
    }
    for (const w of watched) assert.deepEqual(w.errors, [], `${w.name} reported no error`);
  }

  it("overlapping listeners of one client take held entries and hold exactly what getDocs returns, through writes", async () => {
    const sockets: SocketLog[] = [];
    const db = open(sockets);
    const reader = open();
    const path = ["held", RUN, "overlap"] as const;
    const items = collection(db, ...path);
    const readerItems = collection(reader, ...path);
    const batch = writeBatch(reader);
    for (let i = 0; i < DOCS; i++) batch.set(doc(readerItems, `d${String(i).padStart(2, "0")}`), item(i));
    await batch.commit();

    // One listener at a time, each answered before the next: every later one overlaps an earlier one.
    const watched: Watched[] = [];
    for (const [name, q] of queries(items)) {
      const w = watch(name, q);
      watched.push(w);
      await eventually(() => w.latest !== undefined || w.errors.length > 0, `the first snapshot of ${name}`);
    }
    // Document listeners on documents the query listeners above hold.
    const docSeen = new Map<string, DocumentSnapshot>();
    const docStops = ["d00", "d04", "d13"].map((id) => doc(items, id).onSnapshot((s) => docSeen.set(id, s)));
    await eventually(() => docSeen.size === 3, "the document listeners' first snapshots");
    await converged(readerItems, watched, "the first snapshots");
    for (const id of ["d00", "d04", "d13"]) {
      const fresh = await doc(readerItems, id).get();
      const seen = docSeen.get(id);
      assert.deepEqual([seen?.version, seen?.createTime, seen?.updateTime, seen?.data()], [fresh.version, fresh.createTime, fresh.updateTime, fresh.data()], id);
    }
    assert.equal(sockets.length, 1, "one socket: every held entry was resolved");
    assert.ok((sockets[0]?.held ?? 0) > DOCS, `the server named documents held (${sockets[0]?.held} held, ${sockets[0]?.whole} whole)`);
    assert.ok((sockets[0]?.whole ?? 0) >= DOCS, "the first listener got every document whole");

    // Writes move documents between the views; listeners opened after them name the new versions.
    for (let round = 1; round <= 3; round++) {
      const writes = writeBatch(reader);
      for (let i = round; i < DOCS; i += 3) writes.set(doc(readerItems, `d${String(i).padStart(2, "0")}`), item(i, round));
      await writes.commit();
      await updateDoc(doc(readerItems, "d00"), { round, tags: ["four", `r${round}`] });
      await deleteDoc(doc(readerItems, `d${String(DOCS - round).padStart(2, "0")}`));
      await setDoc(doc(readerItems, `e${round}`), item(100 + round, round));
      await converged(readerItems, watched, `round ${round}`);
      const name = queries(items)[round + 2]?.[0] as string;
      const late = watch(`${name} #${round}`, queries(items)[round + 2]?.[1] as Query);
      watched.push(late);
      await converged(readerItems, watched, `a listener opened after round ${round}`);
    }
    assert.equal(sockets.length, 1, "still one socket");
    for (const stop of docStops) stop();
    for (const w of watched) w.stop();
  });

  it("stopping and starting listeners in quick succession, in every order, keeps every listener exact", async () => {
    const sockets: SocketLog[] = [];
    const db = open(sockets);
    const reader = open();
    const path = ["held", RUN, "churn"] as const;
    const items = collection(db, ...path);
    const readerItems = collection(reader, ...path);
    const batch = writeBatch(reader);
    for (let i = 0; i < DOCS; i++) batch.set(doc(readerItems, `d${String(i).padStart(2, "0")}`), item(i));
    await batch.commit();

    // Disjoint views (each document in exactly one), so a held entry can only
    // name the documents of a listener being replaced: one stopped whose
    // `unlisten` the server had not read when it answered the new one.
    const byName = new Map(queries(items));
    const names = ["red", "green", "blue"];
    const live = new Map<string, Watched>();
    for (const name of names) live.set(name, watch(name, byName.get(name) as Query));
    // Up first: listeners stopped before their `listen` is sent involve no server.
    await eventually(() => [...live.values()].every((w) => w.latest !== undefined), "the first snapshots");
    const stopped: Array<{ w: Watched; calls: number }> = [];
    const stop = (w: Watched) => {
      w.stop();
      stopped.push({ w, calls: w.calls });
    };
    const writes: Array<Promise<unknown>> = [];
    for (let i = 0; i < 90; i++) {
      const name = names[i % names.length] as string;
      const q = byName.get(name) as Query;
      const old = live.get(name) as Watched;
      switch (Math.floor(i / names.length) % 3) {
        case 0: {
          // The usual re-render: the new listener first, then the old one stopped.
          const fresh = watch(name, q);
          stop(old);
          live.set(name, fresh);
          break;
        }
        case 1:
          stop(old);
          live.set(name, watch(name, q));
          break;
        default: {
          // A listener stopped before its answer: its snapshot is what the next one's names.
          stop(old);
          const brief = watch(name, q);
          live.set(name, watch(name, q));
          stop(brief);
        }
      }
      if (i % 7 === 3) {
        const id = `d${String((i * 7) % DOCS).padStart(2, "0")}`;
        writes.push(updateDoc(doc(readerItems, id), { round: i, team: TEAMS[i % 3] as string }));
      }
      // Now and then a pause, so answers arrive between the steps too.
      if (i % 4 === 3) await new Promise((resolve) => setTimeout(resolve, i % 8 === 7 ? 5 : 0));
    }
    await Promise.all(writes);
    await converged(readerItems, [...live.values()], "after the churn");
    assert.deepEqual(
      stopped.filter(({ w, calls }) => w.calls !== calls).map(({ w }) => w.name),
      [],
      "no listener reported anything after it was stopped",
    );
    assert.equal(sockets.length, 1, "one socket: every held entry was resolved");
    assert.ok((sockets[0]?.held ?? 0) > DOCS, `the server named documents held (${sockets[0]?.held} held, ${sockets[0]?.whole} whole)`);

    // Overlapping views on top, replaced the same way, after more writes.
    const again = writeBatch(reader);
    for (let i = 0; i < DOCS; i += 5) again.set(doc(readerItems, `d${String(i).padStart(2, "0")}`), item(i, 7));
    await again.commit();
    for (const [name, q] of queries(items)) {
      const fresh = watch(name, q);
      live.get(name)?.stop();
      live.set(name, fresh);
    }
    await converged(readerItems, [...live.values()], "after more writes");
    assert.equal(sockets.length, 1);
    for (const w of live.values()) w.stop();
  });
});
