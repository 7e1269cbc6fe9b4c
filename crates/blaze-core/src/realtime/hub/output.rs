//! What the hub hands its driver: frames to send, connections to close,
//! and events that say what happened or ask the driver for an answer.

use blaze_protocol::{CloseCode, DocPath, ErrorCode};

use super::{ConnId, Frame};

/// What the driver must do next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Send `frame` as one text message on `conn`.
    Send {
        /// The connection.
        conn: ConnId,
        /// The frame.
        frame: Frame,
    },
    /// Close `conn` with `code` (its number and reason); the hub has forgotten it.
    Close {
        /// The connection.
        conn: ConnId,
        /// Why (section 10.1 of the spec).
        code: CloseCode,
    },
    /// Something happened that the driver may log; there is nothing to do.
    Event(HubEvent),
}

/// What happened, told to the driver as an [`Output::Event`] (str0m-style: a
/// separate output rather than a field on [`Output::Send`], so the frames stay
/// plain). [`HubEvent::Refused`] is for logs; [`HubEvent::Verify`] and
/// [`HubEvent::Fetch`] ask the driver for an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HubEvent {
    /// `conn` sent a credential (spec 13): `hello.auth` (`rid` is `None`) or
    /// an `auth` request (`rid` is its id). The driver verifies it and
    /// answers with [`Hub::handle_verified`](super::Hub::handle_verified)
    /// with the same `conn` and `rid`; until then the connection's later
    /// frames are held. A driver must never log `credential`.
    Verify {
        /// The connection.
        conn: ConnId,
        /// The `auth` request's id; `None` for `hello`'s credential.
        rid: Option<u64>,
        /// The credential, at most `max_credential_bytes` long.
        credential: String,
    },
    /// Listener `rid` of `conn` rests on documents of other collections and
    /// its permission is due to be checked again (spec 14.5): the driver
    /// fetches `paths` and answers with
    /// [`Hub::handle_refetched`](super::Hub::handle_refetched). Nothing of
    /// the connection waits meanwhile.
    Refetch {
        /// The connection.
        conn: ConnId,
        /// The listener.
        rid: u64,
        /// The documents to fetch.
        paths: Vec<DocPath>,
    },
    /// The access rules of `conn`'s current request read documents of
    /// other collections (spec 14.5). The driver fetches them (from the
    /// objects that hold them) and answers with
    /// [`Hub::handle_fetched`](super::Hub::handle_fetched); until then the
    /// connection's later frames are held.
    Fetch {
        /// The connection.
        conn: ConnId,
        /// The documents to fetch.
        paths: Vec<DocPath>,
    },
    /// A frame of `conn` was refused: the next output is the `Send` of its
    /// `error` frame.
    Refused {
        /// The connection.
        conn: ConnId,
        /// The refused request's id, when it had one.
        rid: Option<u64>,
        /// The error code the peer is sent.
        code: ErrorCode,
        /// What the peer is not told: a storage failure's text, for the server's log.
        detail: Option<String>,
    },
}
