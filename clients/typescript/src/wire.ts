/**
 * The protocol's JSON messages (spec sections 3, 8, 9 and 10), as sent and
 * received on the WebSocket. Field names are the wire's (snake_case).
 */
import type { WireError } from "./errors.js";
import type { JsonObject, JsonValue } from "./json.js";
import type { JsonPatchOp } from "./json-patch.js";

/** The protocol version this client speaks. */
export const PROTOCOL_VERSION = 1;

/** A DocSnapshot (spec 3.1). */
export interface WireDoc {
  path: string;
  exists: boolean;
  data?: JsonObject;
  version?: number;
  create_time?: number;
  update_time?: number;
  /**
   * A held entry of a `snapshot` (spec 10.4.9): a document another listener
   * of this connection holds at `version`, named instead of sent (no `data`
   * or times). The connection replaces it by its copy before use.
   */
  held?: boolean;
}

/** A write precondition (spec 8.2). */
export interface WirePrecondition {
  exists?: boolean;
  version?: number;
}

/** One write of a commit (spec 8.2). */
export type WireWrite =
  | { op: "create" | "set"; id: string; data: JsonObject; precondition?: WirePrecondition }
  | { op: "patch"; id: string; patch: JsonPatchOp[]; precondition?: WirePrecondition }
  | { op: "merge"; id: string; patch: JsonObject; precondition?: WirePrecondition }
  | { op: "delete" | "verify"; id: string; precondition?: WirePrecondition };

/** Filter operators (spec 9.2). */
export type WhereOp = "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" | "not-in" | "array-contains" | "array-contains-any";

/** The operators in {@link WhereOp}, for run-time checks. */
export const WHERE_OPS: readonly WhereOp[] = ["==", "!=", "<", "<=", ">", ">=", "in", "not-in", "array-contains", "array-contains-any"];

/** A filter (spec 9.2). */
export type WireFilter =
  | { field: string; op: WhereOp; value: JsonValue }
  | { and: WireFilter[] }
  | { or: WireFilter[] };

/** Sort direction. */
export type Direction = "asc" | "desc";

/** An `order_by` key (spec 9.1). */
export interface WireOrder {
  field: string;
  direction: Direction;
}

/** A Query (spec 9.1). */
export interface WireQuery {
  collection: string;
  where?: WireFilter;
  order_by?: WireOrder[];
  limit?: number;
  limit_to_last?: number;
  start_at?: JsonValue[];
  start_after?: JsonValue[];
  end_at?: JsonValue[];
  end_before?: JsonValue[];
}

/** A change of a listener's results (spec 10.3, `change`). */
export type WireChange =
  | { type: "added"; doc: WireDoc; new_index: number }
  | {
      type: "modified";
      path: string;
      patch: JsonPatchOp[];
      version: number;
      create_time: number;
      update_time: number;
      old_index: number;
      new_index: number;
    }
  | { type: "removed"; path: string; old_index: number };

/** Limits announced in `welcome` (spec section 4). */
export interface WireLimits {
  max_frame_bytes?: number;
  max_frame_depth?: number;
  max_document_bytes?: number;
  max_document_depth?: number;
  max_patch_ops?: number;
  max_batch_writes?: number;
  max_in_values?: number;
  max_not_in_values?: number;
  max_disjunctions?: number;
  max_listeners?: number;
  max_unread_frames?: number;
  max_unread_bytes?: number;
  [other: string]: number | undefined;
}

/** One entry of `committed.writes`. */
export interface WireWriteResult {
  id: string;
  exists: boolean;
}

/** Client messages, without `rid` (added when sent). */
export type ClientRequest =
  | { type: "get"; path: string }
  | { type: "commit"; collection: string; commit_id: string; writes: WireWrite[] }
  | { type: "query"; query: WireQuery }
  | { type: "count"; query: WireQuery }
  | { type: "listen"; doc: string; since?: number }
  | { type: "listen"; query: WireQuery; since?: number }
  | { type: "unlisten"; listener: number }
  | { type: "auth"; auth: string };

/** The handshake message. */
export interface HelloMessage {
  type: "hello";
  protocol: number;
  auth?: string;
  /** The client takes held entries in `snapshot` frames (spec 10.4.9). */
  held_docs?: boolean;
}

/** The server's view of a connection's credential (spec 13.4), in `welcome` and `authenticated`. */
export interface WireAuthState {
  /** `admin` or `user`. */
  kind: string;
  /** The user's id, for a `user`. */
  uid?: string;
  /** When the credential expires, in milliseconds since the Unix epoch; absent when it does not. */
  expires?: number;
}

/** Server messages (spec 10.3). Unknown fields are ignored. */
export type ServerFrame =
  | { type: "welcome"; protocol: number; limits: WireLimits; auth?: WireAuthState }
  | { type: "authenticated"; rid: number; auth: WireAuthState }
  | { type: "doc"; rid: number; doc: WireDoc }
  | { type: "committed"; rid: number; seq: number; time: number; writes: WireWriteResult[] }
  | { type: "query_result"; rid: number; seq: number; docs: WireDoc[] }
  | { type: "count_result"; rid: number; seq: number; count: number }
  | { type: "snapshot"; rid: number; target: number; seq: number; reset?: boolean; docs: WireDoc[] }
  | { type: "resumed"; rid: number; target: number; seq: number; changes: WireChange[] }
  | { type: "change"; target: number; seq: number; changes: WireChange[] }
  | { type: "unlistened"; rid: number }
  | { type: "error"; rid?: number; error: WireError };

/** Builds the `hello` frame; the client always takes held `snapshot` entries (spec 10.4.9, resolved in `connection.ts`). */
export function helloMessage(auth?: string): HelloMessage {
  return auth === undefined
    ? { type: "hello", protocol: PROTOCOL_VERSION, held_docs: true }
    : { type: "hello", protocol: PROTOCOL_VERSION, auth, held_docs: true };
}
