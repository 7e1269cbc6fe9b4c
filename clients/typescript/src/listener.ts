/**
 * One realtime listener (spec 10.4): what it follows, the results it holds,
 * the last `seq` it saw, and how `snapshot`, `resumed` and `change` frames
 * update it. Connection handling lives in `connection.ts`.
 */
import type { BlazeError } from "./errors.js";
import { applyChanges, diffResults, resultDocFromWire, ResultMismatchError, type ResultChange, type ResultDoc } from "./results.js";
import type { ClientRequest, WireChange, WireDoc, WireQuery } from "./wire.js";

/** What a listener follows: one document or one query. */
export type ListenTarget = { doc: string } | { query: WireQuery };

/** Where a listener reports to. */
export interface ListenerSink {
  /** New results; `changes` lead from the previous results (first call: every document added). */
  results(docs: readonly ResultDoc[], changes: readonly ResultChange[], seq: number, fromReset: boolean): void;
  /** The listener failed for good (its `listen` was refused, or the server ended it later); no call follows. */
  error(error: BlazeError): void;
}

/** A listener's state, independent of any connection. */
export class Listener {
  /** What it follows. */
  readonly target: ListenTarget;
  /** The results it holds; `null` before the first snapshot. */
  results: ResultDoc[] | null = null;
  /** The highest sequence number seen for it (its resume point, spec 10.4.4). */
  seq = 0;
  /**
   * False once unsubscribed or failed: nothing is reported after that. (A
   * listener stopped before its `unlisten` is answered still applies its
   * frames silently: the server may name its documents as held, spec 10.4.9.)
   */
  active = true;
  /** The `rid` of its `listen` on the current socket, when one was sent. */
  rid: number | undefined;
  /** The server's target number on the current socket, once answered. */
  serverTarget: number | undefined;
  /** True while re-listening from scratch after a mismatch: the next snapshot is diffed. */
  resyncing = false;
  readonly #sink: ListenerSink;

  /** Creates a listener for `target` reporting to `sink`. */
  constructor(target: ListenTarget, sink: ListenerSink) {
    this.target = target;
    this.#sink = sink;
  }

  /** The `listen` request to send now: with `since` when it holds results to resume from. */
  listenRequest(): ClientRequest {
    const since = this.results !== null && !this.resyncing ? { since: this.seq } : {};
    return "doc" in this.target
      ? { type: "listen", doc: this.target.doc, ...since }
      : { type: "listen", query: this.target.query, ...since };
  }

  /** Handles the `snapshot` answer: first results, or (after `since` or a resync) a reset diffed against the old ones. */
  onSnapshot(docs: WireDoc[], seq: number): void {
    if (!Array.isArray(docs)) throw new ResultMismatchError("snapshot without docs");
    const next = docs.map(resultDocFromWire);
    const previous = this.results;
    this.results = next;
    this.seq = seq;
    this.resyncing = false;
    if (!this.active) return;
    if (previous === null) {
      this.#emit(next, next.map((doc, i) => ({ type: "added", doc, oldIndex: -1, newIndex: i })), seq, false);
    } else {
      const changes = diffResults(previous, next);
      if (changes.length > 0) this.#emit(next, changes, seq, true);
    }
  }

  /** Handles the `resumed` answer: the changes missed while disconnected. */
  onResumed(changes: WireChange[], seq: number): void {
    if (this.results === null) throw new ResultMismatchError("resumed answer to a listener without results");
    this.#apply(changes, seq);
  }

  /** Handles a `change` frame of its target; frames at or below its `seq` are duplicates and ignored. */
  onChange(changes: WireChange[], seq: number): void {
    if (this.results === null || seq <= this.seq) return;
    this.#apply(changes, seq);
  }

  /** Reports a final error; the listener stops. */
  fail(error: BlazeError): void {
    if (!this.active) return;
    this.active = false;
    this.#sink.error(error);
  }

  #apply(changes: WireChange[], seq: number): void {
    const applied = applyChanges(this.results ?? [], changes);
    this.results = applied.docs;
    this.seq = Math.max(this.seq, seq);
    if (applied.changes.length > 0) this.#emit(applied.docs, applied.changes, this.seq, false);
  }

  #emit(docs: readonly ResultDoc[], changes: readonly ResultChange[], seq: number, fromReset: boolean): void {
    if (this.active) this.#sink.results(docs, changes, seq, fromReset);
  }
}
