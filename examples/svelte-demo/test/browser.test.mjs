// Browser test of the Svelte demo against the real worker.
//
// Starts `wrangler dev` (the Blaze worker, built beforehand by
// scripts/build-worker.sh) on free loopback ports with a fresh state
// directory, through the shared helper tests/js/wrangler-dev.mjs; serves the
// built demo with `vite preview`, and drives two pages of Debian's Chromium
// (scripts/install-chromium.sh) with playwright-core: a write in one page must
// show in the other within one second; then the worker is killed (offline
// banner in both pages) and restarted on the same port and state directory
// (both pages must be online and caught up with a write made over HTTP right
// after the restart within two seconds of the worker being healthy again).
// Takes a desktop and a phone screenshot: into a fresh temporary directory
// (printed), or over the committed screenshots/*.png with UPDATE_SCREENSHOTS=1.
// Run with `npm run test:browser`.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { ProcessGroup, WranglerDev, freePort } from "../../../tests/js/wrangler-dev.mjs";

const DEMO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
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
  pageA: null,
  pageB: null,
  pageErrors: [],
  timings: {},
};

const api = (p) => `${state.worker.url}${p}`;

async function httpPut(docPath, data) {
  const res = await fetch(api(`/v1/docs/${docPath}`), {
    method: "PUT",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(data),
  });
  const body = await res.text();
  assert.equal(res.status, 200, `PUT ${docPath}: ${res.status} ${body}`);
  return JSON.parse(body);
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
    items,
    texts: () => items().map((i) => i.text),
    item: (t) => items().find((i) => i.text === t) ?? null,
    loaded: () =>
      !!document.querySelector('[data-testid="board-form"]') &&
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

  state.worker = await WranglerDev.create();
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
  // Page A signs in as alice and page B as bob (development tokens minted in the page).
  const open = async (name, user) => {
    // Two contexts: two independent users, each with its own connection.
    const context = await state.browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript(installHelpers);
    const page = await context.newPage();
    page.on("pageerror", (err) => state.pageErrors.push(`${name}: ${err.message}`));
    await page.goto(`${state.previewUrl}&user=${user}`);
    return page;
  };
  state.pageA = await open("A", "alice");
  state.pageB = await open("B", "bob");
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

test("both pages connect and load", { timeout: 30000 }, async () => {
  for (const page of [state.pageA, state.pageB]) {
    await when(page, (d) => d.state() === "online" && d.loaded(), null, 20000);
    assert.equal(await page.evaluate(() => window.__demo.offlineBanner()), false);
    assert.equal(await page.getByTestId("board-empty").count(), 1, "a fresh store has no board yet");
    assert.equal(await page.getByTestId("todo-empty").count(), 1, "a fresh store has no todos yet");
  }
  assert.deepEqual(
    [await state.pageA.getByTestId("user-picker").inputValue(), await state.pageB.getByTestId("user-picker").inputValue()],
    ["alice", "bob"],
    "each window shows who it is signed in as",
  );
});

test("editing the document in one page shows in the other within 1 s", { timeout: 30000 }, async (t) => {
  const { pageA, pageB } = state;
  const create = { title: "Sprint 42", description: "Ship the realtime beta." };
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
});

async function addTodo(page, text) {
  await page.getByTestId("todo-input").fill(text);
  await page.getByTestId("todo-add").click();
}

const itemOf = (page, text) => page.getByTestId("todo-item").filter({ has: page.getByTestId("todo-text").getByText(text, { exact: true }) });

test("adding a todo in one page shows in the other within 1 s, newest first", { timeout: 30000 }, async (t) => {
  const { pageA, pageB } = state;
  const first = "Record the demo video";
  const ms1 = await latency(pageB, (d, a) => d.item(a) !== null, first, () => addTodo(pageA, first));
  record(t, "add A->B", ms1);
  assert.ok(ms1 <= LIVE_MS, `page B showed the new todo after ${ms1} ms`);
  await when(pageA, (d, a) => d.item(a) !== null, first);
  assert.equal(await pageA.getByTestId("todo-input").inputValue(), "", "the input is cleared after adding");

  const second = "Write the launch blog post";
  const ms2 = await latency(pageA, (d, a) => d.item(a) !== null, second, () => addTodo(pageB, second));
  record(t, "add B->A", ms2);
  assert.ok(ms2 <= LIVE_MS, `page A showed the new todo after ${ms2} ms`);

  for (const page of [pageA, pageB]) {
    await when(page, (d) => d.items().length === 2, null);
    assert.deepEqual(await page.evaluate(() => window.__demo.texts()), [second, first], "newest first");
  }

  // The order is a server-side orderBy: oldest first reverses it (in one page only).
  await pageB.getByTestId("order").selectOption("asc");
  await when(pageB, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([first, second]));
  await pageB.getByTestId("order").selectOption("desc");
  await when(pageB, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([second, first]));
});

test("toggling done in one page shows in the other within 1 s", { timeout: 30000 }, async (t) => {
  const { pageA, pageB } = state;
  const text = "Record the demo video";
  const ms1 = await latency(pageA, (d, a) => d.item(a)?.done === true, text, () =>
    itemOf(pageB, text).getByTestId("todo-toggle").click(),
  );
  record(t, "toggle done B->A", ms1);
  assert.ok(ms1 <= LIVE_MS, `page A showed it done after ${ms1} ms`);

  const ms2 = await latency(pageB, (d, a) => d.item(a)?.done === false, text, () =>
    itemOf(pageA, text).getByTestId("todo-toggle").click(),
  );
  record(t, "toggle open A->B", ms2);
  assert.ok(ms2 <= LIVE_MS, `page B showed it open again after ${ms2} ms`);

  const ms3 = await latency(pageA, (d, a) => d.item(a)?.done === true, text, () =>
    itemOf(pageB, text).getByTestId("todo-toggle").click(),
  );
  record(t, "toggle done again B->A", ms3);
  assert.ok(ms3 <= LIVE_MS, `page A showed it done after ${ms3} ms`);
});

test("the filter shows and hides todos, live", { timeout: 30000 }, async (t) => {
  const { pageA, pageB } = state;
  const done = "Record the demo video";
  const open = "Write the launch blog post";
  const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

  await pageA.getByTestId("filter-open").click();
  await when(pageA, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([open]));
  await pageA.getByTestId("filter-done").click();
  await when(pageA, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([done]));
  assert.ok(same(await pageA.evaluate(() => window.__demo.texts()), [done]));

  // Page A lists only done todos: one finished in page B enters its results...
  const ms1 = await latency(pageA, (d, a) => d.item(a)?.done === true, open, () =>
    itemOf(pageB, open).getByTestId("todo-toggle").click(),
  );
  record(t, "enters done filter B->A", ms1);
  assert.ok(ms1 <= LIVE_MS, `page A's done list showed it after ${ms1} ms`);
  // ...and leaves them when reopened.
  const ms2 = await latency(pageA, (d, a) => d.item(a) === null, open, () =>
    itemOf(pageB, open).getByTestId("todo-toggle").click(),
  );
  record(t, "leaves done filter B->A", ms2);
  assert.ok(ms2 <= LIVE_MS, `page A's done list dropped it after ${ms2} ms`);

  // A new (open) todo does not show in the done list, but does in the open one.
  const added = "Invite the beta users";
  await addTodo(pageB, added);
  await when(pageB, (d, a) => d.item(a) !== null, added);
  await sleep(300);
  assert.equal(await pageA.evaluate((a) => window.__demo.item(a), added), null, "an open todo is not in the done list");
  await pageA.getByTestId("filter-open").click();
  await when(pageA, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([added, open]));
  await pageA.getByTestId("filter-all").click();
  await when(pageA, (d, a) => JSON.stringify(d.texts()) === a, JSON.stringify([added, open, done]));
});

test("deleting a todo in one page removes it from the other within 1 s", { timeout: 30000 }, async (t) => {
  const { pageA, pageB } = state;
  const text = "Fix the flaky test";
  await addTodo(pageA, text);
  await when(pageB, (d, a) => d.item(a) !== null, text);
  const ms = await latency(pageB, (d, a) => d.item(a) === null, text, () =>
    itemOf(pageA, text).getByTestId("todo-delete").click(),
  );
  record(t, "delete A->B", ms);
  assert.ok(ms <= LIVE_MS, `page B dropped the todo after ${ms} ms`);
  await when(pageA, (d, a) => d.item(a) === null, text);
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

  // Same port, same state directory.
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
  await httpPut("boards/main", board);
  const todo = { text: "Load-test 10k listeners", done: false, createdAt: Date.now() };
  await httpPut("todos/while-offline", todo);
  const written = Date.now();

  const back = [];
  for (const [name, page] of [
    ["A", pageA],
    ["B", pageB],
  ]) {
    const online = await when(page, (d) => d.state() === "online" && !d.offlineBanner(), null, RECONNECT_MS);
    record(t, `online again ${name} (since healthy)`, Math.max(0, online - healthy));
    const caught = await when(
      page,
      (d, a) => d.state() === "online" && d.boardDescription() === a.description && d.item(a.text) !== null,
      { description: board.description, text: todo.text },
      RECONNECT_MS,
    );
    record(t, `caught up ${name} (since the write)`, Math.max(0, caught - written));
    back.push(Math.max(online, caught) - healthy);
    // What was written before the restart survived it (--persist-to).
    const texts = await page.evaluate(() => window.__demo.texts());
    assert.deepEqual(texts, [todo.text, "Invite the beta users", "Write the launch blog post", "Record the demo video"]);
  }
  const backMs = Math.max(0, ...back);
  record(t, "both pages online and caught up (since healthy)", backMs);
  assert.ok(backMs < BACK_MS, `the pages were online and caught up ${backMs} ms after the worker was healthy again`);

  // And the pages are live again: a write in one shows in the other.
  const again = "Publish the changelog";
  const ms = await latency(pageB, (d, a) => d.item(a) !== null, again, () => addTodo(pageA, again));
  record(t, "add A->B after reconnect", ms);
  assert.ok(ms <= LIVE_MS, `page B showed the new todo after ${ms} ms`);
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

test("screenshots (desktop and phone width)", { timeout: 60000 }, async () => {
  const dir = screenshotDir();
  const { pageA } = state;
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
  await when(page, (d) => d.state() === "online" && d.loaded() && d.items().length === 5, null, 20000);
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  assert.equal(overflow, 0, "no horizontal scrolling at 375 px");
  await showDefaultServer(page);
  await page.evaluate(() => document.fonts.ready);
  await sleep(300);
  await page.screenshot({ path: path.join(dir, "demo-mobile.png"), fullPage: true, animations: "disabled" });
  await phone.close();
  const where = UPDATE_SCREENSHOTS ? `${dir} (the committed ones, UPDATE_SCREENSHOTS=1)` : `${dir} (UPDATE_SCREENSHOTS=1 updates the committed ones)`;
  console.log(`screenshots written to ${where}`);
});

test("no uncaught errors in the pages", () => {
  assert.deepEqual(state.pageErrors, []);
});
