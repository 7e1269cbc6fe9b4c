/**
 * A listener's result list and the two ways it changes: applying the
 * server's `changes` (spec 10.4.3) and, after a reset, diffing the old list
 * against a fresh one into changes of the same shape. Pure functions, no I/O.
 */
import { BlazeError, LocalErrorCode } from "./errors.js";
import { isJsonObject, jsonEquals, type JsonObject } from "./json.js";
import { applyJsonPatch } from "./json-patch.js";
import type { WireChange, WireDoc } from "./wire.js";

/** An existing document in a result list. Treated as immutable. */
export interface ResultDoc {
  readonly path: string;
  readonly data: JsonObject;
  readonly version: number;
  readonly createTime: number;
  readonly updateTime: number;
}

/** The kind of a change, as Firestore's `DocumentChangeType`. */
export type ChangeType = "added" | "modified" | "removed";

/** One change of a result list, with Firestore's index semantics (-1 where absent). */
export interface ResultChange {
  readonly type: ChangeType;
  /** The document after the change (for `removed`: as it was). */
  readonly doc: ResultDoc;
  /** Index in the list as left by the changes before this one; -1 for `added`. */
  readonly oldIndex: number;
  /** Index in the list after this change; -1 for `removed`. */
  readonly newIndex: number;
}

/** Thrown when the server's changes do not fit the list the client holds. */
export class ResultMismatchError extends BlazeError {
  /** Creates the error. */
  constructor(message: string) {
    super(LocalErrorCode.protocolError, message);
    this.name = "ResultMismatchError";
  }
}

function isUint(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

/** Converts a DocSnapshot that must exist into a {@link ResultDoc}. */
export function resultDocFromWire(doc: WireDoc): ResultDoc {
  if (doc === null || typeof doc !== "object" || typeof doc.path !== "string" || doc.exists !== true || !isJsonObject(doc.data)) {
    throw new ResultMismatchError(`expected an existing document, got ${JSON.stringify(doc)}`);
  }
  return {
    path: doc.path,
    data: doc.data,
    version: doc.version ?? 0,
    createTime: doc.create_time ?? 0,
    updateTime: doc.update_time ?? 0,
  };
}

/** Converts a {@link ResultDoc} back to its DocSnapshot. */
export function resultDocToWire(doc: ResultDoc): WireDoc {
  return { path: doc.path, exists: true, data: doc.data, version: doc.version, create_time: doc.createTime, update_time: doc.updateTime };
}

function checkIndex(index: unknown, size: number, what: string): number {
  if (!isUint(index) || index >= size) throw new ResultMismatchError(`${what} ${String(index)} is out of range (list of ${size})`);
  return index;
}

function takeAt(list: ResultDoc[], index: unknown, path: unknown, what: string): ResultDoc {
  const at = checkIndex(index, list.length, what);
  const doc = list[at] as ResultDoc;
  if (doc.path !== path) throw new ResultMismatchError(`${what} ${at} holds ${doc.path}, not ${String(path)}`);
  list.splice(at, 1);
  return doc;
}

/**
 * Applies `changes` in order to `docs` (spec 10.4.3) and returns the new list
 * and the changes as applied. `docs` itself is not modified. Throws
 * {@link ResultMismatchError} when a change does not fit (an index out of
 * range, another document at `old_index`, an added document already present,
 * a patch that does not apply): the caller should then resynchronise.
 */
export function applyChanges(docs: readonly ResultDoc[], changes: readonly WireChange[]): { docs: ResultDoc[]; changes: ResultChange[] } {
  if (!Array.isArray(changes)) throw new ResultMismatchError("changes is not an array");
  const list = docs.slice();
  const paths = new Set(list.map((d) => d.path));
  const applied: ResultChange[] = [];
  for (const change of changes) {
    switch (change?.type) {
      case "removed": {
        const doc = takeAt(list, change.old_index, change.path, "removed old_index");
        paths.delete(doc.path);
        applied.push({ type: "removed", doc, oldIndex: change.old_index, newIndex: -1 });
        break;
      }
      case "added": {
        const doc = resultDocFromWire(change.doc);
        if (paths.has(doc.path)) throw new ResultMismatchError(`added ${doc.path} is already in the results`);
        const at = checkIndex(change.new_index, list.length + 1, "added new_index");
        list.splice(at, 0, doc);
        paths.add(doc.path);
        applied.push({ type: "added", doc, oldIndex: -1, newIndex: at });
        break;
      }
      case "modified": {
        const before = takeAt(list, change.old_index, change.path, "modified old_index");
        let data: JsonObject;
        try {
          data = applyJsonPatch(before.data, change.patch);
        } catch (error) {
          throw new ResultMismatchError(`patch of ${before.path} does not apply: ${(error as Error).message}`);
        }
        const doc: ResultDoc = {
          path: before.path,
          data,
          version: change.version,
          createTime: change.create_time,
          updateTime: change.update_time,
        };
        const at = checkIndex(change.new_index, list.length + 1, "modified new_index");
        list.splice(at, 0, doc);
        applied.push({ type: "modified", doc, oldIndex: change.old_index, newIndex: at });
        break;
      }
      default:
        throw new ResultMismatchError(`unknown change ${JSON.stringify(change)}`);
    }
  }
  return { docs: list, changes: applied };
}

function sameDocument(a: ResultDoc, b: ResultDoc): boolean {
  return a.version === b.version && a.createTime === b.createTime && a.updateTime === b.updateTime && jsonEquals(a.data, b.data);
}

function indexOfPath(list: readonly ResultDoc[], path: string): number {
  for (let i = 0; i < list.length; i++) if ((list[i] as ResultDoc).path === path) return i;
  return -1;
}

function diffOnce(old: readonly ResultDoc[], next: readonly ResultDoc[], moveEveryDoc: boolean): { list: ResultDoc[]; changes: ResultChange[] } {
  const nextPaths = new Set(next.map((d) => d.path));
  const oldByPath = new Map(old.map((d) => [d.path, d] as const));
  const list = old.slice();
  const changes: ResultChange[] = [];
  for (let i = 0; i < list.length; ) {
    const doc = list[i] as ResultDoc;
    if (nextPaths.has(doc.path)) {
      i++;
    } else {
      changes.push({ type: "removed", doc, oldIndex: i, newIndex: -1 });
      list.splice(i, 1);
    }
  }
  next.forEach((doc, j) => {
    const previous = oldByPath.get(doc.path);
    const insertAt = () => (j === 0 ? 0 : indexOfPath(list, (next[j - 1] as ResultDoc).path) + 1);
    if (previous === undefined) {
      const at = insertAt();
      list.splice(at, 0, doc);
      changes.push({ type: "added", doc, oldIndex: -1, newIndex: at });
    } else if (moveEveryDoc || !sameDocument(previous, doc)) {
      const from = indexOfPath(list, doc.path);
      list.splice(from, 1);
      const at = insertAt();
      list.splice(at, 0, doc);
      changes.push({ type: "modified", doc, oldIndex: from, newIndex: at });
    } else {
      list[indexOfPath(list, doc.path)] = doc;
    }
  });
  return { list, changes };
}

/**
 * The changes that turn `old` into `next`, in the form of spec 10.4.3
 * (removals first in old order, then additions and modifications in new
 * order, indexes counted on the list as left by the changes before), so that
 * {@link applyChanges}-style application of them to `old` gives `next`.
 * Documents whose version, times and data are equal are not mentioned.
 */
export function diffResults(old: readonly ResultDoc[], next: readonly ResultDoc[]): ResultChange[] {
  const first = diffOnce(old, next, false);
  if (first.list.every((doc, i) => doc.path === (next[i] as ResultDoc).path) && first.list.length === next.length) {
    return first.changes;
  }
  // The unchanged documents were not in the same relative order in both
  // lists (a server that re-sorted them); moving every document is always exact.
  return diffOnce(old, next, true).changes;
}
