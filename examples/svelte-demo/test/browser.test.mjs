// Browser test of the Svelte demo against the real worker, with the demo's
// access rules (the repository's blaze.rules, read here and passed as
// BLAZE_RULES: signed-in users share boards/main, todos are private by owner).
//
// Starts `wrangler dev` (the Blaze worker, built beforehand by
// scripts/build-worker.sh) on free loopback ports with a fresh state
// directory, through the shared helper tests/js/wrangler-dev.mjs; serves the
// built demo with `vite preview`, and drives pages of Debian's Chromium
// (scripts/install-chromium.sh) with playwright-core: alice (A), alice in a
// second window (A2), bob (B) and an anonymous window. A board edit in A
// must show in B (and back) within one second, and a todo change in one of
// alice's windows in the other; an image attached to a todo in one of
// alice's windows appears in the other (uploaded resumably, shown through a
// signed download URL) and no one else can read it, and the page can list
// the attachments folder's subfolders across origins; bob never sees alice's todos (neither on his
// page nor in any WebSocket frame his page receives), his own todos are his,
// and the anonymous window sees neither the board nor any todo. Then the
// worker is killed (offline banner in A and B) and restarted on the same port
// and state directory (both must be online and caught up with writes made
// over HTTP right after the restart within two seconds of the worker being
// healthy again).
// Takes a desktop, a phone and a signed-out screenshot: into a fresh
// temporary directory (printed), or over the committed screenshots/*.png with
// UPDATE_SCREENSHOTS=1.
// Run with `npm run test:browser`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { ProcessGroup, WranglerDev, freePort } from "../../../tests/js/wrangler-dev.mjs";

const DEMO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
/** The demo's access rules, served by the test worker (as by scripts/run.sh). */
const RULES = readFileSync(path.join(DEMO, "..", "..", "blaze.rules"), "utf8");
/** The development admin key (tests/js/wrangler-dev.mjs): HTTP writes made by the test skip the rules. */
const ADMIN_KEY = "blaze-dev-admin-key";
const VITE = path.join(DEMO, "node_modules/.bin/vite");
const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
/** UPDATE_SCREENSHOTS=1 overwrites the committed screenshots; otherwise they go to a temporary directory. */
const UPDATE_SCREENSHOTS = process.env.UPDATE_SCREENSHOTS === "1";
/** The server address the committed screenshots show (scripts/run.sh's), not the test's random port. */
const SHOWN_SERVER_URL = "http://127.0.0.1:8787";

const LIVE_MS = 1000; // a write must show in the other page within this
const WAIT_MS = 5000; // how long to wait for it at all (to report the real figure)
const OFFLINE_MS = 15000; // the pages notice the worker is gone
const BACK_MS = 2000; // both pages online and caught up after the worker is healthy again
const RECONNECT_MS = 30000; // how long to wait for that at all (to report the real figure)

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- state

const state = {
  worker: null, // a WranglerDev
  preview: null,
  previewUrl: "",
  browser: null,
  pageA: null, // alice
  pageA2: null, // alice, a second window
  pageB: null, // bob
  pageAnon: null, // anonymous
  /** Every WebSocket frame each page received, by page name. */
  frames: {},
  pageErrors: [],
  timings: {},
};

const api = (p) => `${state.worker.url}${p}`;

/** An HTTP request as the admin (the rules do not apply); the answer's JSON. */
async function adminHttp(method, docPath, data) {
  const res = await fetch(api(`/v1/docs/${docPath}`), {
    method,
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${ADMIN_KEY}` },
    body: data === undefined ? undefined : JSON.stringify(data),
  });
  const body = await res.text();
  assert.equal(res.status, 200, `${method} ${docPath}: ${res.status} ${body}`);
  return JSON.parse(body);
}

/** The frames page `name` received that contain any of `needles`. */
function framesWith(name, needles) {
  return state.frames[name].filter((frame) => needles.some((needle) => frame.includes(needle)));
}

// Page-side predicates, installed in every page (window.__demo).
function installHelpers() {
  const text = (el) => (el ? el.textContent.trim() : null);
  const items = () =>
    [...document.querySelectorAll('[data-testid="todo-item"]')].map((li) => ({
      text: text(li.querySelector('[data-testid="todo-text"]')),
      done: li.dataset.done === "true",
    }));
  window.__demo = {
    state: () => document.querySelector('[data-testid="connection-status"]')?.dataset.state ?? null,
    offlineBanner: () => !!document.querySelector('[data-testid="offline-banner"]'),
    boardTitle: () => text(document.querySelector('[data-testid="board-title"]')),
    boardDescription: () => text(document.querySelector('[data-testid="board-description"]')),
    signedOut: () =>
      !!document.querySelector('[data-testid="board-signed-out"]') && !!document.querySelector('[data-testid="todos-signed-out"]'),
    items,
    texts: () => items().map((i) => i.text),
    item: (t) => items().find((i) => i.text === t) ?? null,
    /** Whether the todo `t` shows its attachment's thumbnail, loaded. */
    thumb: (t) => {
      const li = [...document.querySelectorAll('[data-testid="todo-item"]')].find((el) => text(el.querySelector('[data-testid="todo-text"]')) === t);
      const img = li?.querySelector('[data-testid="attachment-thumb"]');
      return !!img && img.complete && img.naturalWidth > 0;
    },
    loaded: () =>
      (!!document.querySelector('[data-testid="board-form"]') || !!document.querySelector('[data-testid="board-signed-out"]')) &&
      !document.querySelector('[data-testid="board-loading"]') &&
      !document.querySelector('[data-testid="todo-loading"]'),
  };
}

/**
 * Starts watching `page` for `check(window.__demo, arg)` to become true and
 * returns a promise of the page's clock (Date.now()) when it first was.
 */
function when(page, check, arg, timeout = WAIT_MS) {
  return page
    .waitForFunction(
      ({ src, arg }) => {
        // eslint-disable-next-line no-new-func
        const fn = new Function("d", "arg", `return (${src})(d, arg);`);
        return fn(window.__demo, arg) ? Date.now() : false;
      },
      { src: check.toString(), arg },
      { polling: "raf", timeout },
    )
    .then((handle) => handle.jsonValue());
}

/** Runs `action` and measures how long until `check` holds in `page`. */
async function latency(page, check, arg, action) {
  const seen = when(page, check, arg);
  seen.catch(() => {}); // reported below, after the action
  const t0 = Date.now();
  await action();
  const t1 = await seen;
  return t1 - t0;
}

function record(t, name, ms) {
  state.timings[name] = ms;
  t.diagnostic(`${name}: ${ms} ms`);
}

// ---------------------------------------------------------------- setup

before(async () => {
  for (const [file, hint] of [
    [CHROMIUM, "run `bash scripts/install-chromium.sh` (in examples/svelte-demo)"],
    [VITE, "run `npm ci` in examples/svelte-demo"],
    [path.join(DEMO, "dist/index.html"), "run `npm run build` in examples/svelte-demo"],
  ]) {
    assert.ok(existsSync(file), `${file} is missing: ${hint}`);
  }

  state.worker = await WranglerDev.create({ vars: [`BLAZE_RULES:${RULES}`] });
  await state.worker.start(); // fails with what to run if the worker is not built

  const previewPort = await freePort();
  state.preview = new ProcessGroup(
    "vite preview",
    VITE,
    ["preview", "--host", "127.0.0.1", "--port", String(previewPort), "--strictPort"],
    { cwd: DEMO, env: { ...process.env, NO_COLOR: "1" } },
  );
  state.previewUrl = `http://127.0.0.1:${previewPort}/?server=${encodeURIComponent(state.worker.url)}`;
  await state.preview.waitForHttp(`http://127.0.0.1:${previewPort}/`, 30000);

  state.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--headless",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  // Pages A and A2 sign in as alice, B as bob (development tokens minted in
  // the page); the fourth window stays anonymous.
  const open = async (name, user) => {
    // One context each: independent windows, each with its own connections.
    const context = await state.browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript(installHelpers);
    const page = await context.newPage();
    page.on("pageerror", (err) => state.pageErrors.push(`${name}: ${err.message}`));
    const frames = (state.frames[name] = []);
    page.on("websocket", (ws) => ws.on("framereceived", ({ payload }) => frames.push(String(payload))));
    await page.goto(`${state.previewUrl}&user=${user}`);
    return page;
  };
  state.pageA = await open("A", "alice");
  state.pageA2 = await open("A2", "alice");
  state.pageB = await open("B", "bob");
  state.pageAnon = await open("anonymous", "anonymous");
});

after(async () => {
  try {
    await state.browser?.close();
  } catch {
    // already closed
  }
  await state.preview?.stop();
  await state.worker?.dispose();
  if (Object.keys(state.timings).length) {
    console.log(
      "# timings (ms): " +
        Object.entries(state.timings)
          .map(([k, v]) => `${k}=${v}`)
          .join(", "),
    );
  }
});

// ---------------------------------------------------------------- tests

/** Alice's todos (each test adds some): bob and the anonymous window must never receive these. */
const ALICE_TODOS = [
  "Record the demo video",
  "Write the launch blog post",
  "Invite the beta users",
  "Fix the flaky test",
  "Book the launch venue",
  "Load-test 10k listeners",
  "Publish the changelog",
  "Design the launch poster",
];
/** An 8 × 8 PNG, attached to one of alice's todos. */
const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAbElEQVR4nA3JQQEAMAgDMaRUClIqpVKQwvNkIGXLN1WFii5cpJhiiyuqhEQLi4gRK04/GjXduEkzzTbXP4xMG5uYMWvOP4JCB4eECRsuPwYNPXjIMMMONz8WLb14yTLLLrc/Dh19+Mgxxx53PLzkagFHPAwGAAAAAElFTkSuQmCC",
  "base64",
);
const BOB_TODO = "Plan the team offsite";
const BOARD_TITLE = "Sprint 42";

test("every page connects and loads; the anonymous one is asked to sign in", { timeout: 30000 }, async () => {
  for (const page of [state.pageA, state.pageA2, state.pageB]) {
    await when(page, (d) => d.state() === "online" && d.loaded(), null, 20000);
    assert.equal(await page.evaluate(() => window.__demo.offlineBanner()), false);
    assert.equal(await page.getByTestId("board-empty").count(), 1, "a fresh store has no board yet");
    assert.equal(await page.getByTestId("todo-empty").count(), 1, "a fresh store has no todos yet");
  }
  assert.deepEqual(
    await Promise.all([state.pageA, state.pageA2, state.pageB, state.pageAnon].map((p) => p.getByTestId("user-picker").inputValue())),
    ["alice", "alice", "bob", "anonymous"],
    "each window shows who it is signed in as",
  );
  // The anonymous window listens to the board, is refused by the rules, and says so calmly.
  const anon = state.pageAnon;
  await when(anon, (d) => d.state() === "online" && d.loaded() && d.signedOut(), null, 20000);
  for (const id of ["board-form", "todo-form", "board-error", "board-denied", "todos-error", "error-toast"]) {
    assert.equal(await anon.getByTestId(id).count(), 0, `no ${id} for the anonymous window`);
  }
  assert.equal(framesWith("anonymous", ['"permission_denied"']).length, 1, "its board listen was refused by the server");
});

test("editing the board in one page shows in the other within 1 s", { timeout: 30000 }, async (t) => {
  const { pageA, pageB } = state;
  const create = { title: BOARD_TITLE, description: "Ship the realtime beta." };
  await pageA.getByTestId("board-title-input").fill(create.title);
  await pageA.getByTestId("board-description-input").fill(create.description);
  const ms1 = await latency(pageB, (d, a) => d.boardTitle() === a.title && d.boardDescription() === a.description, create, () =>
    pageA.getByTestId("board-save").click(),
  );
  record(t, "board create A->B", ms1);
  assert.ok(ms1 <= LIVE_MS, `page B showed the new board after ${ms1} ms`);

  // An edit (a merge patch) from the other side.
  const edit = { title: "Sprint 42 — launch week", description: "Everything we need to ship the realtime beta." };
  await when(pageB, (d, a) => document.querySelector('[data-testid="board-title-input"]').value === a, create.title);
  await pageB.getByTestId("board-title-input").fill(edit.title);
  await pageB.getByTestId("board-description-input").fill(edit.description);
  const ms2 = await latency(pageA, (d, a) => d.boardTitle() === a.title && d.boardDescription() === a.description, edit, () =>
    pageB.getByTestId("board-save").click(),
  );
  record(t, "board edit B->A", ms2);
  assert.ok(ms2 <= LIVE_MS, `page A showed the edit after ${ms2} ms`);
  // The other page's form follows the document while it is not being edited.
  await when(pageA, (d, a) => document.querySelector('[data-testid="board-title-input"]').value === a, edit.title);
  assert.equal(await state.pageAnon.evaluate(() => window.__demo.boardTitle()), null, "the anonymous window shows no board");
});

async function addTodo(page, text) {
  await page.getByTestId("todo-input").fill(text);
  await page.getByTestId("todo-add").click();
}

const itemOf = (page, text) => page.getByTestId("todo-item").filter({ has: page.getByTestId("todo-text").getByText(text, { exact: true }) });

test("a todo alice adds in one window shows in her other window within 1 s, newest first", { timeout: 30000 }, async (t) => {
  const { pageA, pageA2 } = state;
  const [first, second] = ALICE_TODOS;
  const ms1 = await latency(pageA2, (d, a) => d.item(a) !== null, first, () => addTodo(pageA, first));
  record(t, "add A->A2", ms1);
  assert.ok(ms1 <= LIVE_MS, `page A2 showed the new todo after ${ms1} ms`);
  await when(pageA, (d, a) => d.item(a) !== null, first);
  assert.equal(await pageA.getByTestId("todo-input").inputValue(), "", "the input is cleared after adding");

  const ms2 = await latency(pageA, (d, a) => d.item(a) !== null, second, () => addTodo(pageA2, second));
  record(t, "add A2->A", ms2);
  assert.ok(ms2 <= LIVE_MS, `page A showed the new todo after ${ms2} ms`);

  for (const page of [pageA, pageA2]) {
    await when(page, (d) => d.items().length === 2, null);
    assert.deepEqual(await page.evaluate(() => window.__demo.texts()), [second, first], "newest first");
  }
  assert.match(await pageA.getByTestId("query-text").textContent(), /where\("owner", "==", "alice"\)/, "the query filters on the owner");

  // The order is a server-side orderBy: oldest first reverses it (in one page only).
  await pageA2.getByTestId("order").selectOption("asc");
  await when(pageA2, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([first, second]));
  await pageA2.getByTestId("order").selectOption("desc");
  await when(pageA2, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([second, first]));
});

test("toggling done in one of alice's windows shows in the other within 1 s", { timeout: 30000 }, async (t) => {
  const { pageA, pageA2 } = state;
  const text = ALICE_TODOS[0];
  const ms1 = await latency(pageA, (d, a) => d.item(a)?.done === true, text, () =>
    itemOf(pageA2, text).getByTestId("todo-toggle").click(),
  );
  record(t, "toggle done A2->A", ms1);
  assert.ok(ms1 <= LIVE_MS, `page A showed it done after ${ms1} ms`);

  const ms2 = await latency(pageA2, (d, a) => d.item(a)?.done === false, text, () =>
    itemOf(pageA, text).getByTestId("todo-toggle").click(),
  );
  record(t, "toggle open A->A2", ms2);
  assert.ok(ms2 <= LIVE_MS, `page A2 showed it open again after ${ms2} ms`);

  const ms3 = await latency(pageA, (d, a) => d.item(a)?.done === true, text, () =>
    itemOf(pageA2, text).getByTestId("todo-toggle").click(),
  );
  record(t, "toggle done again A2->A", ms3);
  assert.ok(ms3 <= LIVE_MS, `page A showed it done after ${ms3} ms`);
});

test("the filter shows and hides todos, live", { timeout: 30000 }, async (t) => {
  const { pageA, pageA2 } = state;
  const [done, open, added] = ALICE_TODOS;
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  await pageA.getByTestId("filter-open").click();
  await when(pageA, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([open]));
  await pageA.getByTestId("filter-done").click();
  await when(pageA, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([done]));
  assert.ok(same(await pageA.evaluate(() => window.__demo.texts()), [done]));

  // Page A lists only done todos: one finished in page A2 enters its results...
  const ms1 = await latency(pageA, (d, a) => d.item(a)?.done === true, open, () =>
    itemOf(pageA2, open).getByTestId("todo-toggle").click(),
  );
  record(t, "enters done filter A2->A", ms1);
  assert.ok(ms1 <= LIVE_MS, `page A's done list showed it after ${ms1} ms`);
  // ...and leaves them when reopened.
  const ms2 = await latency(pageA, (d, a) => d.item(a) === null, open, () =>
    itemOf(pageA2, open).getByTestId("todo-toggle").click(),
  );
  record(t, "leaves done filter A2->A", ms2);
  assert.ok(ms2 <= LIVE_MS, `page A's done list dropped it after ${ms2} ms`);

  // A new (open) todo does not show in the done list, but does in the open one.
  await addTodo(pageA2, added);
  await when(pageA2, (d, a) => d.item(a) !== null, added);
  await sleep(300);
  assert.equal(await pageA.evaluate((a) => window.__demo.item(a), added), null, "an open todo is not in the done list");
  await pageA.getByTestId("filter-open").click();
  await when(pageA, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([added, open]));
  await pageA.getByTestId("filter-all").click();
  await when(pageA, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([added, open, done]));
});

test("deleting a todo in one of alice's windows removes it from the other within 1 s", { timeout: 30000 }, async (t) => {
  const { pageA, pageA2 } = state;
  const text = ALICE_TODOS[3];
  await addTodo(pageA, text);
  await when(pageA2, (d, a) => d.item(a) !== null, text);
  const ms = await latency(pageA2, (d, a) => d.item(a) === null, text, () =>
    itemOf(pageA, text).getByTestId("todo-delete").click(),
  );
  record(t, "delete A->A2", ms);
  assert.ok(ms <= LIVE_MS, `page A2 dropped the todo after ${ms} ms`);
  await when(pageA, (d, a) => d.item(a) === null, text);
});

test("an image alice attaches in one window appears in her other window; nobody else can read it; it goes with its todo", { timeout: 30000 }, async (t) => {
  const { pageA, pageA2 } = state;
  const text = ALICE_TODOS[7];
  await addTodo(pageA, text);
  await when(pageA2, (d, a) => d.item(a) !== null, text);
  const id = await itemOf(pageA, text).getAttribute("data-id");
  const file = `attachments/alice/${id}`;
  const ms = await latency(pageA2, (d, a) => d.thumb(a), text, () =>
    itemOf(pageA, text).getByTestId("attach-input").setInputFiles({ name: "poster.png", mimeType: "image/png", buffer: PNG }),
  );
  record(t, "attach A->A2 (thumbnail loaded)", ms);
  await when(pageA, (d, a) => d.thumb(a), text);
  assert.equal(await pageA.getByTestId("attach-progress").count(), 0, "the progress bar is gone once the upload completed");
  const stored = await adminHttp("GET", `todos/${id}`);
  assert.equal(stored.data.attachment.path, file, "the todo names its attachment");
  const meta = await adminHttp("GET", `_files/attachments/_files/alice/_files/${id}`);
  assert.deepEqual([meta.data.uploadedBy, meta.data.size, meta.data.contentType], ["alice", PNG.length, "image/png"]);
  const bytes = await fetch(api(`/v1/files/${file}`), { headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
  assert.deepEqual(Buffer.from(await bytes.arrayBuffer()), PNG, "the bytes are the image, whole");
  // The thumbnail's URL is signed: it works without a credential, for this file only.
  const src = await itemOf(pageA2, text).getByTestId("attachment-thumb").getAttribute("src");
  assert.match(src, /\/v1\/files\/attachments\/alice\/.*[?&]signature=/);
  const anonymous = await fetch(api(`/v1/files/${file}`));
  assert.equal(anonymous.status, 403, "without a credential or a signature the file is refused");
  const moved = await fetch(src.replace(`/alice/${id}`, "/alice/elsewhere"));
  assert.equal(moved.status, 403, "a signed URL does not open another file");
  assert.deepEqual(framesWith("B", [file, "poster.png"]), [], "nothing about the attachment reached bob's page");
  // The folder route (subfolders, spec 15.2) answers a cross-origin request
  // with a credential from the page, its preflight included.
  const listed = await pageA.evaluate(
    async ([url, key]) => {
      const answer = await fetch(url, { headers: { Authorization: `Bearer ${key}` } });
      return { status: answer.status, body: await answer.json() };
    },
    [api("/v1/files/attachments/?prefixes"), ADMIN_KEY],
  );
  assert.equal(listed.status, 200, JSON.stringify(listed.body));
  assert.ok(listed.body.prefixes.includes("alice"), JSON.stringify(listed.body));

  // Deleting the todo deletes its image too.
  await itemOf(pageA, text).getByTestId("todo-delete").click();
  await when(pageA2, (d, a) => d.item(a) === null, text);
  const deadline = Date.now() + WAIT_MS;
  let gone;
  do {
    gone = await fetch(api(`/v1/files/${file}`), { headers: { Authorization: `Bearer ${ADMIN_KEY}` } });
    await gone.arrayBuffer();
  } while (gone.status !== 404 && Date.now() < deadline && (await sleep(100), true));
  assert.equal(gone.status, 404, "the attachment went with its todo");
});

test("bob's todos are his, and alice's never reach him", { timeout: 30000 }, async () => {
  const { pageA, pageA2, pageB } = state;
  assert.equal(await pageB.getByTestId("todo-empty").count(), 1, "alice's todos are not in bob's list");
  await addTodo(pageB, BOB_TODO);
  await when(pageB, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([BOB_TODO]));
  const id = await itemOf(pageB, BOB_TODO).getAttribute("data-id");
  const stored = await adminHttp("GET", `todos/${id}`);
  assert.equal(stored.data.owner, "bob", "bob's todo carries his uid as its owner");

  // A later todo of alice's reaches her windows after anything bob's write could have sent them.
  const fence = ALICE_TODOS[4];
  await addTodo(pageA, fence);
  for (const page of [pageA, pageA2]) {
    await when(page, (d, a) => d.item(a) !== null, fence);
    assert.equal(await page.evaluate((a) => window.__demo.item(a), BOB_TODO), null, "bob's todo is not in alice's lists");
  }
  assert.deepEqual(await pageB.evaluate(() => window.__demo.texts()), [BOB_TODO], "bob sees only his own");
  assert.deepEqual(framesWith("B", ALICE_TODOS), [], "no frame bob's page received names one of alice's todos");
  assert.deepEqual(framesWith("A", [BOB_TODO]), [], "no frame alice's page received names bob's todo");
});

test("both pages show offline when the worker stops, and are back within 2 s of its restart", { timeout: 120000 }, async (t) => {
  const { pageA, pageB } = state;
  const offline = [pageA, pageB].map((page) =>
    when(page, (d) => d.state() === "offline" && d.offlineBanner(), null, OFFLINE_MS),
  );
  offline.forEach((p) => p.catch(() => {}));
  const stopped = Date.now();
  await state.worker.stop();
  record(t, "offline shown A", (await offline[0]) - stopped);
  record(t, "offline shown B", (await offline[1]) - stopped);

  // Same port, same state directory, same rules.
  const restarting = Date.now();
  await state.worker.start();
  const healthy = Date.now();
  record(t, "worker restart (until healthy)", healthy - restarting);

  // Written right after the restart, before or while the pages reconnect.
  const pagesOnlineAtWrite = await Promise.all([pageA, pageB].map((p) => p.evaluate(() => window.__demo.state())));
  t.diagnostic(`page states when the catch-up write was made: ${pagesOnlineAtWrite.join(", ")}`);
  const board = {
    title: "Sprint 42 — launch week",
    description: "Everything we need to ship the realtime beta. This line was written over HTTP while the pages were reconnecting.",
  };
  await adminHttp("PUT", "boards/main", board);
  const todo = { owner: "alice", text: ALICE_TODOS[5], done: false, createdAt: Date.now() };
  await adminHttp("PUT", "todos/while-offline", todo);
  const written = Date.now();

  const back = [];
  for (const [name, page, expected] of [
    ["A", pageA, [todo.text, ALICE_TODOS[4], ALICE_TODOS[2], ALICE_TODOS[1], ALICE_TODOS[0]]],
    ["B", pageB, [BOB_TODO]],
  ]) {
    const online = await when(page, (d) => d.state() === "online" && !d.offlineBanner(), null, RECONNECT_MS);
    record(t, `online again ${name} (since healthy)`, Math.max(0, online - healthy));
    const caught = await when(
      page,
      (d, a) => d.state() === "online" && d.boardDescription() === a.description && JSON.stringify(d.texts()) === a.texts,
      { description: board.description, texts: JSON.stringify(expected) },
      RECONNECT_MS,
    );
    record(t, `caught up ${name} (since the write)`, Math.max(0, caught - written));
    back.push(Math.max(online, caught) - healthy);
  }
  const backMs = Math.max(0, ...back);
  record(t, "both pages online and caught up (since healthy)", backMs);
  assert.ok(backMs < BACK_MS, `the pages were online and caught up ${backMs} ms after the worker was healthy again`);

  // And the pages are live again: a write in one shows in the other.
  const again = ALICE_TODOS[6];
  const ms = await latency(state.pageA2, (d, a) => d.item(a) !== null, again, () => addTodo(pageA, again));
  record(t, "add A->A2 after reconnect", ms);
  assert.ok(ms <= LIVE_MS, `page A2 showed the new todo after ${ms} ms`);
});

test("after everything, bob and the anonymous window have received none of alice's todos", async () => {
  const { pageB, pageAnon } = state;
  await when(state.pageA2, (d, a) => d.item(a) !== null, ALICE_TODOS[6]);
  assert.ok(framesWith("A", [ALICE_TODOS[0]]).length > 0, "the scan does see alice's todos in her own page's frames");
  assert.ok(framesWith("B", [BOB_TODO]).length > 0, "and bob's in his");
  assert.deepEqual(framesWith("B", ALICE_TODOS), [], "bob's frames");
  assert.deepEqual(framesWith("B", ['"owner":"alice"']), [], "bob's frames hold no document of alice's");
  assert.deepEqual(await pageB.evaluate(() => window.__demo.texts()), [BOB_TODO]);
  assert.deepEqual(framesWith("anonymous", [...ALICE_TODOS, BOB_TODO, BOARD_TITLE]), [], "the anonymous window's frames");
  assert.equal(await pageAnon.evaluate(() => window.__demo.signedOut()), true);
  assert.deepEqual(await pageAnon.evaluate(() => window.__demo.texts()), []);
});

/** Where the screenshots go: the committed ones with UPDATE_SCREENSHOTS=1, else a fresh temporary directory. */
function screenshotDir() {
  return UPDATE_SCREENSHOTS ? path.join(DEMO, "screenshots") : mkdtempSync(path.join(os.tmpdir(), "blaze-demo-screenshots-"));
}

/** Shows the default server address in the footer instead of the test worker's random port (so the image is the same every run). */
function showDefaultServer(page) {
  return page.evaluate((url) => {
    document.querySelector('[data-testid="server-url"]').textContent = url;
  }, SHOWN_SERVER_URL);
}

test("screenshots (desktop, phone width, signed out)", { timeout: 60000 }, async () => {
  const dir = screenshotDir();
  const { pageA } = state;
  // One todo with an attachment, so the views show a thumbnail.
  const attached = ALICE_TODOS[6];
  await itemOf(pageA, attached).getByTestId("attach-input").setInputFiles({ name: "changelog.png", mimeType: "image/png", buffer: PNG });
  await when(pageA, (d, a) => d.thumb(a), attached);
  // A calm desktop view: nothing hovered or focused.
  await pageA.mouse.move(0, 0);
  await pageA.evaluate(() => document.activeElement?.blur());
  await showDefaultServer(pageA);
  await pageA.evaluate(() => document.fonts.ready);
  await pageA.setViewportSize({ width: 1280, height: 720 });
  await sleep(200);
  await pageA.screenshot({ path: path.join(dir, "demo.png"), fullPage: true, animations: "disabled" });

  const phone = await state.browser.newContext({
    viewport: { width: 375, height: 812 },
    deviceScaleFactor: 2,
    isMobile: true,
    hasTouch: true,
  });
  await phone.addInitScript(installHelpers);
  const page = await phone.newPage();
  page.on("pageerror", (err) => state.pageErrors.push(`phone: ${err.message}`));
  await page.goto(`${state.previewUrl}&user=alice`);
  await when(page, (d, a) => d.state() === "online" && d.loaded() && d.items().length === 6 && d.thumb(a), attached, 20000);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, "no horizontal scrolling at 375 px");
  await showDefaultServer(page);
  await page.evaluate(() => document.fonts.ready);
  await sleep(300);
  await page.screenshot({ path: path.join(dir, "demo-mobile.png"), fullPage: true, animations: "disabled" });
  await phone.close();

  // The anonymous window: asked to sign in, no board, no todos.
  const anon = state.pageAnon;
  await anon.mouse.move(0, 0);
  await showDefaultServer(anon);
  await anon.evaluate(() => document.fonts.ready);
  await anon.setViewportSize({ width: 1280, height: 720 });
  await sleep(200);
  await anon.screenshot({ path: path.join(dir, "demo-signed-out.png"), fullPage: true, animations: "disabled" });
  const where = UPDATE_SCREENSHOTS ? `${dir} (the committed ones, UPDATE_SCREENSHOTS=1)` : `${dir} (UPDATE_SCREENSHOTS=1 updates the committed ones)`;
  console.log(`screenshots written to ${where}`);
});

test("no uncaught errors in the pages", () => {
  assert.deepEqual(state.pageErrors, []);
});
