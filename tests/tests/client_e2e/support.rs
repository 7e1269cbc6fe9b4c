//! What every area of the client end-to-end tests shares: the runner, client
//! options, waiting, reading, checking refusals, and applying changes.

use std::future::Future;
use std::time::Duration;

use blaze_client::{
    Blaze, ChangeKind, ConnectOptions, ConnectionState, Credentials, DocChange, DocRef,
    DocumentSnapshot, Error, ErrorCode, ListenEvent, Listener, QuerySnapshot, ReconnectPolicy,
};
use blaze_tests::live;
use serde_json::Value;

/// The longest any one test may take, start of `wrangler dev` included.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// How long a test waits for one listener event or one spawned task.
pub const WAIT: Duration = Duration::from_secs(15);

/// The admin key of the local development identity.
pub const DEV_ADMIN_KEY: &str = "blaze-dev-admin-key";

/// Runs a test body within [`TEST_LIMIT`].
pub fn run(body: impl Future<Output = ()> + Send + 'static) {
    live::run(TEST_LIMIT, body)
}
/// Options for every client here: short timeouts, quick reconnects, and the
/// development admin key (the harness starts every worker with the local
/// development identity, `live::DEV_IDENTITY`).
pub fn options() -> ConnectOptions {
    ConnectOptions {
        credentials: Credentials::Fixed(DEV_ADMIN_KEY.into()),
        connect_timeout: Duration::from_secs(5),
        request_timeout: Duration::from_secs(10),
        reconnect: ReconnectPolicy {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(500),
        },
    }
}

/// A client of the server at `url`, with [`options`].
pub async fn connect(url: &str) -> Blaze {
    Blaze::connect_with(url, options())
        .await
        .expect("the client accepts the URL")
}

/// `f`, or a panic naming `what` after [`WAIT`].
pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

/// The spec error code of a call that must fail.
pub fn code<T: std::fmt::Debug>(result: Result<T, Error>) -> ErrorCode {
    match result {
        Err(e) => e
            .code()
            .unwrap_or_else(|| panic!("an error without a code: {e:?}")),
        Ok(v) => panic!("expected an error, got {v:?}"),
    }
}

/// The document as raw JSON.
pub async fn raw(doc: &DocRef) -> DocumentSnapshot {
    doc.get::<Value>()
        .await
        .unwrap_or_else(|e| panic!("get {}: {e}", doc.path()))
}

/// The documents' ids, in order.
pub fn ids(docs: &[DocumentSnapshot]) -> Vec<&str> {
    docs.iter().map(DocumentSnapshot::id).collect()
}

/// The next snapshot of a listener, skipping state events.
pub async fn next_snap<S: blaze_client::FromResults>(listener: &mut Listener<S>, what: &str) -> S {
    within(what, listener.next_snapshot())
        .await
        .unwrap_or_else(|| panic!("{what}: the listener ended"))
        .unwrap_or_else(|e| panic!("{what}: the listener failed: {e}"))
}

/// Applies a snapshot's changes to the previous results, as spec 10.4.3 says
/// (removals first, each index counted on the list as left by the changes
/// before it), checking every index names the right document.
pub fn apply(previous: &[DocumentSnapshot], changes: &[DocChange]) -> Vec<DocumentSnapshot> {
    let mut docs = previous.to_vec();
    let mut seen_other = false;
    for change in changes {
        match change.kind {
            ChangeKind::Removed => {
                assert!(!seen_other, "a removal after an addition or modification");
                assert_eq!(change.new_index, None);
                let at = change.old_index.expect("a removal has an old index");
                let gone = docs.remove(at);
                assert_eq!(
                    gone, change.doc,
                    "a removal carries the document as last seen"
                );
            }
            ChangeKind::Added => {
                seen_other = true;
                assert_eq!(change.old_index, None);
                let at = change.new_index.expect("an addition has a new index");
                assert!(at <= docs.len(), "added past the end");
                docs.insert(at, change.doc.clone());
            }
            ChangeKind::Modified => {
                seen_other = true;
                let from = change.old_index.expect("a modification has an old index");
                let to = change.new_index.expect("a modification has a new index");
                let old = docs.remove(from);
                assert_eq!(old.path, change.doc.path, "modified the wrong document");
                assert!(to <= docs.len(), "moved past the end");
                docs.insert(to, change.doc.clone());
            }
        }
    }
    docs
}

/// A change as (kind, id, old index, new index), for comparing with expectations.
pub type Shape<'a> = (ChangeKind, &'a str, Option<usize>, Option<usize>);

/// Each change's shape, in order.
pub fn shapes(changes: &[DocChange]) -> Vec<Shape<'_>> {
    changes
        .iter()
        .map(|c| (c.kind, c.doc.id(), c.old_index, c.new_index))
        .collect()
}

/// A loopback port nothing listens on (bound, then released).
pub fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Awaits `call` and asserts the server (or the client, before sending) refused
/// it with the spec error `want`: the request/expect pattern of these tests.
pub async fn refused<T: std::fmt::Debug>(
    what: &str,
    call: impl Future<Output = Result<T, Error>>,
    want: ErrorCode,
) {
    assert_eq!(code(call.await), want, "{what}");
}

/// Asserts that `doc` holds `want` (`None`: it does not exist).
pub async fn holds(doc: &DocRef, want: Option<Value>) {
    assert_eq!(raw(doc).await.data, want, "{}", doc.path());
}

/// One query listener's view, checked at every event.
pub struct Tracker {
    /// The listener's name, in messages.
    pub name: &'static str,
    /// The results of its last snapshot.
    pub docs: Vec<DocumentSnapshot>,
    /// The seq of its last snapshot.
    pub seq: Option<u64>,
    /// How many snapshots it had.
    pub snapshots: usize,
    /// How many of them were resets.
    pub resets: usize,
    /// The largest seq step between two snapshots (more than one commit
    /// caught up at once, as after a reconnect).
    pub max_jump: u64,
    /// How many times it went offline, and online again.
    pub offline: usize,
    /// See `offline`.
    pub online: usize,
    /// Whether it is offline now.
    pub is_offline: bool,
}

impl Tracker {
    /// A view with nothing seen yet.
    pub fn new(name: &'static str) -> Self {
        Self {
            name,
            docs: Vec::new(),
            seq: None,
            snapshots: 0,
            resets: 0,
            max_jump: 0,
            offline: 0,
            online: 0,
            is_offline: false,
        }
    }

    /// Takes the listener's next event, checking it against the view.
    pub fn event(&mut self, event: Option<Result<ListenEvent<QuerySnapshot>, Error>>) {
        let name = self.name;
        let event = event
            .unwrap_or_else(|| panic!("{name}: the stream ended"))
            .unwrap_or_else(|e| panic!("{name}: the listener failed: {e}"));
        match event {
            ListenEvent::Snapshot(snap) => {
                if let Some(seq) = self.seq {
                    assert!(
                        snap.seq > seq,
                        "{name}: seq went from {seq} to {}: a snapshot seen twice",
                        snap.seq
                    );
                    self.max_jump = self.max_jump.max(snap.seq - seq);
                }
                assert_eq!(
                    apply(&self.docs, snap.changes()),
                    snap.docs,
                    "{name}: the changes at seq {} do not give the snapshot",
                    snap.seq
                );
                self.resets += usize::from(snap.reset);
                self.snapshots += 1;
                self.seq = Some(snap.seq);
                self.docs = snap.docs;
            }
            ListenEvent::State(ConnectionState::Offline { .. }) => {
                self.offline += 1;
                self.is_offline = true;
            }
            ListenEvent::State(ConnectionState::Online) => {
                assert!(self.is_offline, "{name}: online without being offline");
                self.online += 1;
                self.is_offline = false;
            }
        }
    }
}
