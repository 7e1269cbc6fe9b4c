/**
 * Commit ids: every commit the client sends carries a fresh random
 * `commit_id`, and a commit re-sent after a reconnect carries the same one, so
 * the server applies it at most once (it answers a commit whose id it
 * remembers with the original outcome).
 */
import { randomBytes } from "./platform.js";

const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** The length of a commit id: 22 characters of 6 random bits each (132 bits). */
export const COMMIT_ID_LENGTH = 22;

/** A fresh random commit id over `[A-Za-z0-9_-]` (cryptographic randomness where the host has `crypto`). */
export function newCommitId(): string {
  let id = "";
  // 64 symbols: the low 6 bits of a byte pick one uniformly.
  for (const byte of randomBytes(new Uint8Array(COMMIT_ID_LENGTH))) id += ALPHABET.charAt(byte & 63);
  return id;
}
