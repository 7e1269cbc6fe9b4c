/** Listener callbacks as the application passes them, and how they are called. */
import type { BlazeError } from "./errors.js";
import { reportCallbackError } from "./platform.js";

/** Stops a listener. Calling it more than once is harmless. */
export type Unsubscribe = () => void;

/** The object form of listener callbacks (as Firestore's observer). */
export interface SnapshotObserver<T> {
  /** Called with each snapshot. */
  next?: (snapshot: T) => void;
  /** Called once if the listener fails (its `listen` was refused); no call follows. */
  error?: (error: BlazeError) => void;
}

/** @internal Normalises `(next, error)` or `{next, error}` into callbacks that never throw into the client. */
export function toSafeObserver<T>(
  nextOrObserver: SnapshotObserver<T> | ((snapshot: T) => void),
  error?: (error: BlazeError) => void,
): { next(snapshot: T): void; error(error: BlazeError): void } {
  const observer: SnapshotObserver<T> = typeof nextOrObserver === "function" ? { next: nextOrObserver, error } : nextOrObserver ?? {};
  return {
    next(snapshot) {
      try {
        observer.next?.(snapshot);
      } catch (thrown) {
        reportCallbackError(thrown);
      }
    },
    error(failure) {
      try {
        if (observer.error !== undefined) observer.error(failure);
        else reportCallbackError(failure);
      } catch (thrown) {
        reportCallbackError(thrown);
      }
    },
  };
}
