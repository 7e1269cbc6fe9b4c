/**
 * Errors. Every failure surfaces as a {@link BlazeError} whose `code` is either
 * a server code from `spec/errors.md` (kept as the server sent it) or one of the
 * {@link LocalErrorCode}s this client produces itself.
 */

/**
 * Codes produced by the client itself, never by a server. Server codes
 * (`precondition_failed`, `not_found`, `invalid_query`, ...) are passed through
 * unchanged; the client also reuses `invalid_path`, `invalid_field_path`,
 * `empty_batch` and `frame_too_large` for the checks it makes before sending.
 */
export const LocalErrorCode = {
  /** The request was never sent: no connection could be established within `requestTimeoutMs`. Nothing was applied. */
  unavailable: "unavailable",
  /** A read was sent but not answered within `requestTimeoutMs`. */
  deadlineExceeded: "deadline_exceeded",
  /** A commit was sent (and re-sent with its commit id after each reconnect) but not answered within `requestTimeoutMs`: it may or may not have been applied. */
  outcomeUnknown: "outcome_unknown",
  /** `Blaze.close()` was called while the request was pending (for a commit already sent, the outcome is unknown). */
  cancelled: "cancelled",
  /** The application called the API wrongly (bad argument, a batch spanning collections, a batch committed twice...). */
  invalidArgument: "invalid_argument",
  /** The server sent something this client cannot understand (protocol version mismatch, malformed frame). */
  protocolError: "protocol_error",
} as const;

/** The error object of the protocol (spec section 12). */
export interface WireError {
  code: string;
  message?: string;
  write_index?: number;
}

/** The error type of every rejected promise and every listener error callback. */
export class BlazeError extends Error {
  /** The spec's error code (e.g. `"precondition_failed"`) or a {@link LocalErrorCode}. Match on this, never on `message`. */
  readonly code: string;
  /** For a commit that failed at one write: the 0-based index of that write in the batch. */
  declare readonly writeIndex?: number;

  /** Creates an error with a code, a human-readable message and an optional write index. */
  constructor(code: string, message: string, writeIndex?: number) {
    super(message);
    this.name = "BlazeError";
    this.code = code;
    if (writeIndex !== undefined) this.writeIndex = writeIndex;
  }

  /** Builds an error from the protocol's error object. */
  static fromWire(error: WireError | undefined): BlazeError {
    if (error === undefined || typeof error.code !== "string") {
      return new BlazeError(LocalErrorCode.protocolError, "the server sent an error frame without an error object");
    }
    const index = typeof error.write_index === "number" ? error.write_index : undefined;
    return new BlazeError(error.code, error.message ?? error.code, index);
  }
}

/** Shorthand for a usage error (`invalid_argument`). */
export function invalidArgument(message: string): BlazeError {
  return new BlazeError(LocalErrorCode.invalidArgument, message);
}
