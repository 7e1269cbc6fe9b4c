/**
 * Commit ids (spec 8.7): the client-chosen name of one commit, which lets the
 * connection re-send a commit after a reconnect without applying it twice.
 */

/** The characters a commit id may use: `A-Z a-z 0-9 - _`. */
const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/** How long a generated id is: 22 characters of 6 bits each, 132 bits (a random UUID has 122). */
export const COMMIT_ID_LENGTH = 22;

interface RandomSource {
  getRandomValues(array: Uint8Array): Uint8Array;
}

/** A fresh random commit id, from the platform's cryptographic generator when there is one. */
export function randomCommitId(): string {
  const bytes = new Uint8Array(COMMIT_ID_LENGTH);
  const random = (globalThis as { crypto?: RandomSource }).crypto;
  if (random !== undefined) random.getRandomValues(bytes);
  else for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
  let id = "";
  for (const byte of bytes) id += ALPHABET[byte & 63];
  return id;
}
