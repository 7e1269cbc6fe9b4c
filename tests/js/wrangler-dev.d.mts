// Types of wrangler-dev.mjs (for the TypeScript tests of clients/typescript).

import type { SpawnOptions } from "node:child_process";

/** A free TCP port on 127.0.0.1. */
export declare function freePort(): Promise<number>;

/** A command running in its own process group, with the tail of its output kept for failure messages. */
export declare class ProcessGroup {
  /** Spawns `command` with `args` (stdio is piped). */
  constructor(name: string, command: string, args: readonly string[], options?: Omit<SpawnOptions, "detached" | "stdio">);
  readonly name: string;
  readonly pid: number | undefined;
  /** True once the process has exited. */
  readonly exited: boolean;
  /** Exit code, signal name or spawn error, once exited. */
  readonly exitCode: number | string | null;
  /** Resolves when the process has exited. */
  readonly done: Promise<void>;
  /** The last lines the process printed. */
  readonly log: string;
  /** Waits until `url` answers 200 (polling), failing early if the process exits. */
  waitForHttp(url: string, timeoutMs: number): Promise<void>;
  /** Kills the whole group and waits until every member is gone. */
  stop(): Promise<void>;
}

/** The local development identity every worker started here gets (`NAME:VALUE` each). */
export declare const DEV_IDENTITY: readonly string[];

/** The `--var`s of a worker: {@link DEV_IDENTITY}, except the settings `vars` name, then `vars` (`NAME:VALUE` each). */
export declare function withDevIdentity(vars?: readonly string[]): string[];

/**
 * The worker under `wrangler dev` on a fixed loopback port with its own `--persist-to` state directory.
 * `vars` (`NAME:VALUE` each) replace or add to the development identity's settings.
 */
export declare class WranglerDev {
  constructor(port: number, persistDir: string, vars?: readonly string[]);
  /** A free port and a fresh state directory (nothing is started yet); `options.vars` as for the constructor. */
  static create(options?: { vars?: readonly string[] }): Promise<WranglerDev>;
  readonly port: number;
  readonly persistDir: string;
  /** The `--var`s the worker is started with (`NAME:VALUE` each). */
  readonly vars: readonly string[];
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The last lines wrangler printed (for failure messages). */
  readonly log: string;
  /** Starts wrangler dev and waits until `GET /v1/health` answers 200 (default limit 60 s). */
  start(timeoutMs?: number): Promise<void>;
  /** Kills wrangler and workerd and waits until the port is free again. */
  stop(): Promise<void>;
  /** Stops and removes the state directory. */
  dispose(): Promise<void>;
}
