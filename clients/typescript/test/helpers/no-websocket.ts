import type { FetchInit } from "../../src/index.js";

/** A WebSocket constructor that is never used: tests that make HTTP requests only. */
export class NoWebSocket {
  constructor() {
    throw new Error("no WebSocket in these tests");
  }
}

/** One request a stubbed fetch was called with. */
export interface Call {
  url: string;
  init: FetchInit;
}
