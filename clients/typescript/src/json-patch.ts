/**
 * JSON Patch (RFC 6902) as the protocol defines it (spec section 8.5). The
 * client applies the patches that `modified` changes carry (spec 10.4.3) to
 * its copy of a document; errors use the spec's codes.
 */
import { BlazeError } from "./errors.js";
import { cloneJson, hasMember, isJsonObject, jsonEquals, setMember, type JsonObject, type JsonValue } from "./json.js";

/** One JSON Patch operation. */
export type JsonPatchOp =
  | { op: "add"; path: string; value: JsonValue }
  | { op: "remove"; path: string }
  | { op: "replace"; path: string; value: JsonValue }
  | { op: "move"; from: string; path: string }
  | { op: "copy"; from: string; path: string }
  | { op: "test"; path: string; value: JsonValue };

interface ParsedOp {
  op: JsonPatchOp["op"];
  path: string[];
  from?: string[];
  value?: JsonValue;
}

const OPS = new Set(["add", "remove", "replace", "move", "copy", "test"]);

function invalidPatch(message: string): BlazeError {
  return new BlazeError("invalid_patch", message);
}

function notFound(pointer: string[]): BlazeError {
  return new BlazeError("patch_path_not_found", `nothing at ${formatPointer(pointer)}`);
}

/** Decodes an RFC 6901 pointer into its tokens; throws `invalid_patch` when malformed. */
export function parsePointer(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw invalidPatch(`pointer ${JSON.stringify(pointer)} does not start with /`);
  return pointer
    .slice(1)
    .split("/")
    .map((token) => {
      let out = "";
      for (let i = 0; i < token.length; i++) {
        const c = token.charAt(i);
        if (c !== "~") {
          out += c;
          continue;
        }
        const next = token.charAt(i + 1);
        if (next === "0") out += "~";
        else if (next === "1") out += "/";
        else throw invalidPatch(`bad ~ escape in pointer ${JSON.stringify(pointer)}`);
        i++;
      }
      return out;
    });
}

/** Encodes tokens as an RFC 6901 pointer. */
export function formatPointer(tokens: readonly string[]): string {
  return tokens.map((t) => "/" + t.replace(/~/g, "~0").replace(/\//g, "~1")).join("");
}

function isProperPrefix(prefix: string[], path: string[]): boolean {
  return prefix.length < path.length && prefix.every((token, i) => token === path[i]);
}

/** Checks the shape of a whole patch before anything is applied (spec 8.5, "Validated first"). */
function parsePatch(patch: unknown): ParsedOp[] {
  if (!Array.isArray(patch)) throw invalidPatch("a JSON Patch must be an array");
  return patch.map((raw: unknown, index) => {
    if (!isJsonObject(raw)) throw invalidPatch(`operation ${index} is not an object`);
    const op = raw["op"];
    if (typeof op !== "string" || !OPS.has(op)) throw invalidPatch(`operation ${index} has a missing or unknown op`);
    const pathText = raw["path"];
    if (typeof pathText !== "string") throw invalidPatch(`operation ${index} has no string path`);
    const parsed: ParsedOp = { op: op as ParsedOp["op"], path: parsePointer(pathText) };
    if (op === "move" || op === "copy") {
      const fromText = raw["from"];
      if (typeof fromText !== "string") throw invalidPatch(`operation ${index} has no string from`);
      parsed.from = parsePointer(fromText);
      if (op === "move" && isProperPrefix(parsed.from, parsed.path)) {
        throw invalidPatch(`operation ${index} moves a location into its own child`);
      }
    }
    if (op === "add" || op === "replace" || op === "test") {
      if (!hasMember(raw, "value")) throw invalidPatch(`operation ${index} has no value`);
      parsed.value = raw["value"] as JsonValue;
    }
    if (op === "remove" && parsed.path.length === 0) throw invalidPatch("remove of the whole document");
    return parsed;
  });
}

const INDEX = /^(0|[1-9][0-9]*)$/;

/** The index a token designates in `array`, or -1; `end` allows `length` (an insertion point). */
function arrayIndex(array: JsonValue[], token: string, end: boolean): number {
  if (!INDEX.test(token)) return -1;
  const index = Number(token);
  return index < array.length || (end && index === array.length) ? index : -1;
}

/** The container that holds the last token of `path` (walking all but the last token). */
function parentOf(doc: JsonObject, path: string[]): JsonValue {
  let node: JsonValue = doc;
  for (let i = 0; i < path.length - 1; i++) {
    const token = path[i] as string;
    if (Array.isArray(node)) {
      const index = arrayIndex(node, token, false);
      if (index < 0) throw notFound(path);
      node = node[index] as JsonValue;
    } else if (isJsonObject(node) && hasMember(node, token)) {
      node = node[token] as JsonValue;
    } else {
      throw notFound(path);
    }
  }
  return node;
}

function getValue(doc: JsonObject, path: string[]): JsonValue {
  if (path.length === 0) return doc;
  const parent = parentOf(doc, path);
  const token = path[path.length - 1] as string;
  if (Array.isArray(parent)) {
    const index = arrayIndex(parent, token, false);
    if (index < 0) throw notFound(path);
    return parent[index] as JsonValue;
  }
  if (isJsonObject(parent) && hasMember(parent, token)) return parent[token] as JsonValue;
  throw notFound(path);
}

function removeValue(doc: JsonObject, path: string[]): JsonValue {
  const parent = parentOf(doc, path);
  const token = path[path.length - 1] as string;
  if (Array.isArray(parent)) {
    const index = arrayIndex(parent, token, false);
    if (index < 0) throw notFound(path);
    return parent.splice(index, 1)[0] as JsonValue;
  }
  if (isJsonObject(parent) && hasMember(parent, token)) {
    const value = parent[token] as JsonValue;
    delete parent[token];
    return value;
  }
  throw notFound(path);
}

/** Adds at `path` (not the root); `replace` requires the target to exist and overwrites it. */
function putValue(doc: JsonObject, path: string[], value: JsonValue, replace: boolean): void {
  const parent = parentOf(doc, path);
  const token = path[path.length - 1] as string;
  if (Array.isArray(parent)) {
    if (replace) {
      const index = arrayIndex(parent, token, false);
      if (index < 0) throw notFound(path);
      parent[index] = value;
    } else {
      const index = token === "-" ? parent.length : arrayIndex(parent, token, true);
      if (index < 0) throw notFound(path);
      parent.splice(index, 0, value);
    }
  } else if (isJsonObject(parent)) {
    if (replace && !hasMember(parent, token)) throw notFound(path);
    setMember(parent, token, value);
  } else {
    throw notFound(path);
  }
}

function asDocument(value: JsonValue): JsonObject {
  if (!isJsonObject(value)) throw new BlazeError("invalid_document", "a document must stay a JSON object");
  return value;
}

/**
 * Applies a JSON Patch to a document's data and returns the new data; the
 * input is not modified. All or none: on error nothing changes and a
 * {@link BlazeError} with the spec's code is thrown (`invalid_patch`,
 * `patch_path_not_found`, `patch_test_failed`, `invalid_document`). Server
 * limits (`max_patch_ops`, document size and depth) are not checked here.
 */
export function applyJsonPatch(data: JsonObject, patch: unknown): JsonObject {
  const ops = parsePatch(patch);
  let doc = cloneJson(data);
  for (const op of ops) {
    switch (op.op) {
      case "add":
      case "replace":
        if (op.path.length === 0) {
          if (op.op === "add" || op.op === "replace") doc = asDocument(cloneJson(op.value as JsonValue));
        } else {
          putValue(doc, op.path, cloneJson(op.value as JsonValue), op.op === "replace");
        }
        break;
      case "remove":
        removeValue(doc, op.path);
        break;
      case "move": {
        const from = op.from as string[];
        const value = getValue(doc, from);
        if (from.length === op.path.length && from.every((t, i) => t === op.path[i])) break;
        removeValue(doc, from);
        if (op.path.length === 0) doc = asDocument(value);
        else putValue(doc, op.path, value, false);
        break;
      }
      case "copy": {
        const value = cloneJson(getValue(doc, op.from as string[]));
        if (op.path.length === 0) doc = asDocument(value);
        else putValue(doc, op.path, value, false);
        break;
      }
      case "test":
        if (!jsonEquals(getValue(doc, op.path), op.value as JsonValue)) {
          throw new BlazeError("patch_test_failed", `test failed at ${formatPointer(op.path)}`);
        }
        break;
    }
  }
  return doc;
}
