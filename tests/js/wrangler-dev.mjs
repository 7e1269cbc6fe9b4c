// Runs the real Blaze worker under `wrangler dev` for the JavaScript tests
// (clients/typescript end-to-end tests, the Svelte demo's browser test).
//
// Dependency-free (Node built-ins only) and never compiled, so both the
// TypeScript tests (through test/helpers/wrangler.ts) and the demo's plain
// JavaScript test import this very file. Types: wrangler-dev.d.mts.
//
// Every process is started in its own process group and killed as a group
// (wrangler and its workerd child together); a last-resort hook kills what is
// still running when the test process exits.

import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (this file is `tests/js/wrangler-dev.mjs`). */
const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The built worker's entry point (written by scripts/build-worker.sh). */
const WORKER_SHIM = path.join(REPO_ROOT, "crates", "blaze-worker", "build", "worker", "shim.mjs");
/** wrangler, installed by `npm ci` in the repository root. */
const WRANGLER = path.join(REPO_ROOT, "node_modules", ".bin", "wrangler");

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Throws a clear error unless the worker is built and wrangler installed. */
function assertWorkerBuilt() {
  if (!existsSync(WORKER_SHIM)) {
    throw new Error(
      `The Blaze worker is not built: ${WORKER_SHIM} is missing. Run \`bash scripts/build-worker.sh\` in the repository root, then run the tests again.`,
    );
  }
  if (!existsSync(WRANGLER)) {
    throw new Error(`wrangler is not installed: ${WRANGLER} is missing. Run \`npm ci\` (or \`bash scripts/build-worker.sh\`) in the repository root.`);
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** True when something accepts TCP connections on 127.0.0.1:`port`. */
function portOpen(port) {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

// ---------------------------------------------------------------- process groups

const live = new Set(); // pids (= process group ids) of the groups still running

function killGroup(pid) {
  live.delete(pid);
  try {
    process.kill(-pid, "SIGKILL");
  } catch {
    // already gone
  }
}

function groupAlive(pid) {
  try {
    process.kill(-pid, 0); // succeeds while any member (even a zombie) is left
    return true;
  } catch {
    return false;
  }
}

// Last resort (an uncaught error, a missed after hook, Ctrl-C): never leave workerd or vite behind.
process.once("exit", () => [...live].forEach(killGroup));
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"]) {
  process.once(signal, () => {
    [...live].forEach(killGroup);
    process.exit(130);
  });
}

/** A command running in its own process group, with the tail of its output kept for failure messages. */
export class ProcessGroup {
  #child;
  #output = "";

  /** Spawns `command` with `args` (options as for child_process.spawn; stdio is piped). */
  constructor(name, command, args, options = {}) {
    this.name = name;
    this.exited = false;
    this.exitCode = null;
    this.#child = spawn(command, args, { ...options, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    this.pid = this.#child.pid;
    if (this.pid !== undefined) live.add(this.pid);
    const keep = (chunk) => {
      this.#output = (this.#output + chunk.toString()).slice(-20_000);
    };
    this.#child.stdout.on("data", keep);
    this.#child.stderr.on("data", keep);
    this.done = new Promise((resolve) => {
      const finish = (code) => {
        this.exited = true;
        this.exitCode ??= code;
        resolve();
      };
      this.#child.once("exit", (code, signal) => finish(code ?? signal));
      this.#child.once("error", (error) => finish(error.message));
    });
  }

  /** The last lines the process printed. */
  get log() {
    return this.#output.split("\n").slice(-30).join("\n");
  }

  /** Waits until `url` answers 200 (polling), failing early if the process exits. */
  async waitForHttp(url, timeoutMs) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.exited) throw new Error(`${this.name} exited (${this.exitCode}) before ${url} answered; its output:\n${this.log}`);
      try {
        const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
        if (response.status === 200) return;
      } catch {
        // not up yet
      }
      await sleep(100);
    }
    throw new Error(`${this.name} did not answer ${url} with 200 within ${timeoutMs} ms; its output:\n${this.log}`);
  }

  /** Kills the whole group and waits until every member is gone. */
  async stop() {
    if (this.pid === undefined) return;
    killGroup(this.pid);
    await Promise.race([this.done, new Promise((resolve) => setTimeout(resolve, 5000).unref())]);
    for (let i = 0; i < 100 && groupAlive(this.pid); i++) await sleep(50);
  }
}

// ---------------------------------------------------------------- wrangler dev

/**
 * The local development identity (README, "Identity"; scripts/run.sh and the
 * Rust harness pass the same): requests without a credential are anonymous,
 * HS256 tokens signed with the development secret verify, and
 * `blaze-dev-admin-key` is an admin key.
 */
export const DEV_IDENTITY = [
  'BLAZE_AUTH:{"hs256":{"issuer":"blaze-dev","audience":"blaze"}}',
  "BLAZE_HS256_SECRET:blaze-dev-secret-not-for-production",
  "BLAZE_ADMIN_KEYS:blaze-dev-admin-key",
  // Open access rules (everything allowed), as the Rust harness's OPEN_RULES;
  // a test of the rules passes its own BLAZE_RULES.
  "BLAZE_RULES:rules_version = '2'; service cloud.firestore { match /databases/{database}/documents { match /{document=**} { allow read, write: if true; } } }",
];

/**
 * The `--var`s of a worker: {@link DEV_IDENTITY}, except the settings `vars`
 * name, then `vars` (`NAME:VALUE` each), as the Rust harness's
 * `with_dev_identity` (tests/src/live/server.rs).
 */
export function withDevIdentity(vars = []) {
  const name = (v) => v.split(":")[0];
  const named = new Set(vars.map(name));
  return [...DEV_IDENTITY.filter((v) => !named.has(name(v))), ...vars];
}

/**
 * The worker under `wrangler dev` on a fixed loopback port with its own
 * `--persist-to` state directory; it can be stopped and started again on the
 * same port and state. `vars` (`NAME:VALUE` each) replace or add to the
 * development identity's settings.
 */
export class WranglerDev {
  #process;
  /** Whether it ever answered: from then on it keeps its port (clients know it). */
  #started = false;

  constructor(port, persistDir, vars = []) {
    this.port = port;
    this.persistDir = persistDir;
    this.vars = withDevIdentity(vars);
  }

  /** A free port and a fresh state directory (nothing is started yet); `options.vars` as for the constructor. */
  static async create(options = {}) {
    return new WranglerDev(await freePort(), mkdtempSync(path.join(os.tmpdir(), "blaze-wrangler-state-")), options.vars);
  }

  /** `http://127.0.0.1:<port>`. */
  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The last lines wrangler printed (for failure messages). */
  get log() {
    return this.#process?.log ?? "";
  }

  /**
   * Starts wrangler dev and waits until `GET /v1/health` answers 200. A
   * first start whose port another process took between `freePort` and
   * workerd's bind ("Address already in use") starts again on a new port, up
   * to three times.
   */
  async start(timeoutMs = 60_000) {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#startOnce(timeoutMs);
        this.#started = true;
        return;
      } catch (error) {
        const raced = String(error.message).includes("Address already in use");
        if (!raced || this.#started || attempt === 3) throw error;
        this.port = await freePort();
      }
    }
  }

  async #startOnce(timeoutMs) {
    assertWorkerBuilt();
    if (this.#process !== undefined) throw new Error("wrangler dev is already running");
    const inspectorPort = await freePort();
    this.#process = new ProcessGroup(
      "wrangler dev",
      WRANGLER,
      [
        "dev",
        "--config",
        "crates/blaze-worker/wrangler.toml",
        "--ip",
        "127.0.0.1",
        "--port",
        String(this.port),
        "--inspector-port",
        String(inspectorPort),
        "--persist-to",
        this.persistDir,
        ...this.vars.flatMap((v) => ["--var", v]),
      ],
      { cwd: REPO_ROOT, env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" } },
    );
    try {
      await this.#process.waitForHttp(`${this.url}/v1/health`, timeoutMs);
    } catch (error) {
      await this.stop();
      throw error;
    }
  }

  /** Kills wrangler and workerd and waits until the port is free again (ready for {@link start}). */
  async stop() {
    const running = this.#process;
    this.#process = undefined;
    if (running === undefined) return;
    await running.stop();
    for (let i = 0; i < 100 && (await portOpen(this.port)); i++) await sleep(50);
  }

  /** Stops and removes the state directory. */
  async dispose() {
    await this.stop();
    rmSync(this.persistDir, { recursive: true, force: true });
  }
}
