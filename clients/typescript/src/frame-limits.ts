/**
 * The frame limits a server announces in `welcome` (spec section 4), checked
 * on each outgoing frame so that an oversized request fails locally with the
 * server's own code instead of being sent.
 */
import { BlazeError } from "./errors.js";
import { utf8Length } from "./platform.js";
import type { WireLimits } from "./wire.js";

/** Default frame limits (spec section 4), used until a `welcome` says otherwise. */
export const DEFAULT_FRAME_LIMITS = { max_frame_bytes: 4_194_304, max_frame_depth: 64 } as const;

/**
 * The nesting depth of arrays and objects in a frame's text, counted as the
 * server counts it (spec 10.1 decoding step 2): brackets inside strings do
 * not count, and invalid JSON is measured too.
 */
export function textDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c /* \ */) i++;
      else if (c === 0x22 /* " */) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      depth++;
      if (depth > max) max = depth;
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    }
  }
  return max;
}

/**
 * The error a server would answer for this frame's size or depth
 * (`frame_too_large`, then `frame_too_deep`, in the server's order), or
 * `undefined` when the frame is within `limits`.
 */
export function frameLimitError(text: string, limits: WireLimits = {}): BlazeError | undefined {
  const maxBytes = typeof limits.max_frame_bytes === "number" ? limits.max_frame_bytes : DEFAULT_FRAME_LIMITS.max_frame_bytes;
  // A UTF-16 code unit is at most 3 UTF-8 bytes: short frames skip the byte count.
  if (text.length * 3 > maxBytes) {
    const bytes = utf8Length(text);
    if (bytes > maxBytes) return new BlazeError("frame_too_large", `the request is ${bytes} bytes, over the server's max_frame_bytes ${maxBytes}`);
  }
  const maxDepth = typeof limits.max_frame_depth === "number" ? limits.max_frame_depth : DEFAULT_FRAME_LIMITS.max_frame_depth;
  const depth = textDepth(text);
  if (depth > maxDepth) return new BlazeError("frame_too_deep", `the request nests ${depth} levels, over the server's max_frame_depth ${maxDepth}`);
  return undefined;
}
