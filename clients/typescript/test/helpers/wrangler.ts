/**
 * Runs the real Blaze worker under `wrangler dev` for end-to-end tests: one
 * process group per start, killed as a whole.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { repoRoot } from "./vectors.js";

export const WORKER_SHIM = join(repoRoot(), "crates", "blaze-worker", "build", "worker", "shim.mjs");
const WRANGLER = join(repoRoot(), "node_modules", ".bin", "wrangler");

/** Throws a clear error unless the worker is built and wrangler installed. */
export function assertWorkerBuilt(): void {
  if (!existsSync(WORKER_SHIM)) {
    throw new Error(
      `The Blaze worker is not built: ${WORKER_SHIM} is missing. Run \`bash scripts/build-worker.sh\` in the repository root, then run the tests again.`,
    );
  }
  if (!existsSync(WRANGLER)) {
    throw new Error(`wrangler is not installed: ${WRANGLER} is missing. Run \`npm ci\` in the repository root.`);
  }
}

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

const live = new Set<number>();
function killAll(): void {
  for (const pid of live) {
    try {
      process.kill(-pid, "SIGKILL");
    } catch {
      /* gone */
    }
  }
}
// Last resort if the test process ends without running its after hooks.
process.once("exit", killAll);
for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
  process.once(signal, () => {
    killAll();
    process.exit(130);
  });
}

export class WranglerDev {
  readonly port: number;
  readonly inspectorPort: number;
  readonly persistDir: string;
  #child: ChildProcess | undefined;
  #log: string[] = [];

  private constructor(port: number, inspectorPort: number, persistDir: string) {
    this.port = port;
    this.inspectorPort = inspectorPort;
    this.persistDir = persistDir;
  }

  /** Picks free ports and a fresh persistence directory. */
  static async create(): Promise<WranglerDev> {
    return new WranglerDev(await freePort(), await freePort(), mkdtempSync(join(tmpdir(), "blaze-ts-e2e-")));
  }

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** The last lines wrangler printed (for failure messages). */
  get log(): string {
    return this.#log.join("").split("\n").slice(-30).join("\n");
  }

  /** Starts wrangler dev and waits until `GET /v1/health` answers 200 (at most `timeoutMs`). */
  async start(timeoutMs = 60_000): Promise<void> {
    assertWorkerBuilt();
    this.#log = [];
    const child = spawn(
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
        String(this.inspectorPort),
        "--persist-to",
        this.persistDir,
      ],
      {
        cwd: repoRoot(),
        env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "1", NO_COLOR: "1" },
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.#child = child;
    if (child.pid !== undefined) live.add(child.pid);
    const keep = (chunk: Buffer) => {
      this.#log.push(chunk.toString());
      if (this.#log.length > 400) this.#log.splice(0, 200);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    let exited = false;
    child.once("exit", () => (exited = true));
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (exited) throw new Error(`wrangler dev exited before it was ready:\n${this.log}`);
      try {
        const response = await fetch(`${this.url}/v1/health`, { signal: AbortSignal.timeout(2000) });
        if (response.status === 200) return;
      } catch {
        /* not up yet */
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    await this.stop();
    throw new Error(`wrangler dev did not answer /v1/health within ${timeoutMs} ms:\n${this.log}`);
  }

  /** Kills the whole process group and waits for wrangler to exit. */
  async stop(): Promise<void> {
    const child = this.#child;
    this.#child = undefined;
    if (child?.pid === undefined) return;
    const exited = child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise<void>((resolve) => child.once("exit", () => resolve()));
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      /* already gone */
    }
    await exited;
    live.delete(child.pid);
    // Let the group's other processes (workerd) go too.
    for (let i = 0; i < 50; i++) {
      try {
        process.kill(-child.pid, 0);
      } catch {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops and removes the persistence directory. */
  async dispose(): Promise<void> {
    await this.stop();
    rmSync(this.persistDir, { recursive: true, force: true });
  }
}
