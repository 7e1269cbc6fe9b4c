/**
 * Collection and document paths (spec section 2.1), checked locally so that a
 * bad path fails before anything is sent, with the server's code
 * `invalid_path`.
 */
import { BlazeError, invalidArgument } from "./errors.js";
import { randomBytes } from "./platform.js";

/** Fixed path limits of the protocol (spec sections 2.1 and 4). */
export const PATH_LIMITS = { maxSegmentBytes: 128, maxPathBytes: 1024, maxSegments: 200 } as const;

/** The kind of path a call expects. */
export type PathKind = "collection" | "document";

const SEGMENT_CHARS = /^[A-Za-z0-9\-_.~:@+]+$/;

function invalidPath(path: string, why: string): BlazeError {
  return new BlazeError("invalid_path", `invalid path ${JSON.stringify(path)}: ${why}`);
}

/** Why `segment` breaks rules 1-4 of spec section 2.1, or `undefined` when it is valid. */
export function segmentProblem(segment: string): string | undefined {
  if (segment.length === 0) return "empty segment";
  if (segment.length > PATH_LIMITS.maxSegmentBytes) return `segment longer than ${PATH_LIMITS.maxSegmentBytes} bytes`;
  if (!SEGMENT_CHARS.test(segment)) return "segment with a character outside A-Z a-z 0-9 - _ . ~ : @ +";
  if (segment === "." || segment === "..") return "segment . or ..";
  if (segment.length >= 4 && segment.startsWith("__") && segment.endsWith("__")) return "reserved segment (__...__)";
  return undefined;
}

/** Why `path` is not a valid path of `kind`, or `undefined` when it is valid. */
export function pathProblem(path: string, kind?: PathKind): string | undefined {
  if (typeof path !== "string") return "not a string";
  if (path.length === 0) return "empty path";
  const segments = path.split("/");
  for (const segment of segments) {
    const problem = segmentProblem(segment);
    if (problem !== undefined) return problem;
  }
  if (path.length > PATH_LIMITS.maxPathBytes) return `longer than ${PATH_LIMITS.maxPathBytes} bytes`;
  if (segments.length > PATH_LIMITS.maxSegments) return `more than ${PATH_LIMITS.maxSegments} segments`;
  if (kind === "collection" && segments.length % 2 === 0) return "a document path where a collection path is expected";
  if (kind === "document" && segments.length % 2 === 1) return "a collection path where a document path is expected";
  return undefined;
}

/** Throws `invalid_path` unless `path` is a valid path of `kind`; returns it. */
export function checkPath(path: string, kind: PathKind): string {
  const problem = pathProblem(path, kind);
  if (problem !== undefined) throw invalidPath(path, problem);
  return path;
}

/** Joins path parts, each of which may itself hold `/`-separated segments. */
export function joinPath(parts: readonly string[]): string {
  for (const part of parts) {
    if (typeof part !== "string") throw invalidArgument(`path parts must be strings, got ${typeof part}`);
  }
  return parts.join("/");
}

/** The last segment of a path (a document's id or a collection's id). */
export function lastSegment(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

/** The path without its last segment, or `""` for a one-segment path. */
export function parentPath(path: string): string {
  const cut = path.lastIndexOf("/");
  return cut < 0 ? "" : path.slice(0, cut);
}

const ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/** A random 20-character document id over `[A-Za-z0-9]` (about 119 bits), as Firestore makes. */
export function randomId(): string {
  let id = "";
  while (id.length < 20) {
    for (const byte of randomBytes(new Uint8Array(40))) {
      // 248 = 4 * 62: rejecting larger bytes keeps the choice uniform.
      if (byte < 248 && id.length < 20) id += ID_ALPHABET.charAt(byte % 62);
    }
  }
  return id;
}
