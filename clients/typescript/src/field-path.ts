/**
 * Field paths (spec section 7): `address.city`, `` a.`b.c`.d ``, `__name__`.
 * Used to expand `update()` keys into a merge patch, to read fields from
 * snapshots and to build cursors from snapshots.
 */
import { BlazeError } from "./errors.js";
import { utf8Length } from "./platform.js";

/** Fixed field path limits (spec section 4). */
export const FIELD_PATH_LIMITS = { maxKeys: 32, maxBytes: 1500 } as const;

/** The field path that names a document's id. */
export const DOCUMENT_ID_FIELD = "__name__";

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;

function invalid(path: string, why: string): BlazeError {
  return new BlazeError("invalid_field_path", `invalid field path ${JSON.stringify(path)}: ${why}`);
}

/** Splits a field path into its keys; throws `invalid_field_path` when it is malformed. */
export function parseFieldPath(path: string): string[] {
  if (typeof path !== "string" || path.length === 0) throw invalid(String(path), "empty");
  if (utf8Length(path) > FIELD_PATH_LIMITS.maxBytes) throw invalid(path, `longer than ${FIELD_PATH_LIMITS.maxBytes} bytes`);
  const keys: string[] = [];
  let i = 0;
  for (;;) {
    let key = "";
    if (path.charAt(i) === "`") {
      i++;
      let closed = false;
      while (i < path.length) {
        const c = path.charAt(i);
        if (c === "\\") {
          if (i + 1 >= path.length) throw invalid(path, "ends inside an escape");
          key += path.charAt(i + 1);
          i += 2;
        } else if (c === "`") {
          closed = true;
          i++;
          break;
        } else {
          key += c;
          i++;
        }
      }
      if (!closed) throw invalid(path, "unterminated backquote");
      if (key.length === 0) throw invalid(path, "empty key");
      if (i < path.length && path.charAt(i) !== ".") throw invalid(path, "text after a closing backquote");
    } else {
      const end = path.indexOf(".", i);
      key = path.slice(i, end < 0 ? path.length : end);
      if (key.length === 0) throw invalid(path, "empty key");
      if (key.includes("`") || key.includes("\\")) throw invalid(path, "backquote or backslash in an unquoted key");
      i += key.length;
    }
    keys.push(key);
    if (keys.length > FIELD_PATH_LIMITS.maxKeys) throw invalid(path, `more than ${FIELD_PATH_LIMITS.maxKeys} keys`);
    if (i >= path.length) return keys;
    i++; // the "."
    if (i >= path.length) throw invalid(path, "empty key");
  }
}

/** Writes one key as a field path segment: identifiers as is, anything else backquoted. */
export function quoteFieldKey(key: string): string {
  return IDENTIFIER.test(key) ? key : "`" + key.replace(/[\\`]/g, (c) => "\\" + c) + "`";
}

/**
 * Builds a field path from its keys, quoting each as needed:
 * `fieldPath("address", "zip.code")` is `` address.`zip.code` ``.
 */
export function fieldPath(...keys: string[]): string {
  if (keys.length === 0) throw invalid("", "no keys");
  return keys.map(quoteFieldKey).join(".");
}

/** The field path of the document id (`__name__`), for `where` and `orderBy`, as Firestore's `documentId()`. */
export function documentId(): string {
  return DOCUMENT_ID_FIELD;
}
