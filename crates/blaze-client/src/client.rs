//! [`Blaze`]: the entry point. It owns one connection per collection, opened
//! lazily on first use and shared by every reference to that collection.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use blaze_protocol::{CollectionPath, DocPath, ServerMessage};
use tokio::sync::{mpsc, oneshot};

use crate::batch::WriteBatch;
use crate::connection::{self, Command};
use crate::files::Files;
use crate::options::ConnectOptions;
use crate::refs::{CollectionRef, DocRef};
use crate::session::{ListenTarget, ListenerUpdate, Request};
use crate::Error;

/// A client of one Blaze server. Cheap to clone; clones share connections.
///
/// ```no_run
/// # async fn demo() -> Result<(), blaze_client::Error> {
/// use blaze_client::Blaze;
/// let db = Blaze::connect("http://127.0.0.1:8787").await?;
/// db.doc("rooms/r1").set(&serde_json::json!({"name": "lobby"})).await?;
/// let room = db.doc("rooms/r1").get::<serde_json::Value>().await?;
/// assert_eq!(room.data.unwrap()["name"], "lobby");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Blaze {
    inner: Arc<Inner>,
}

struct Inner {
    /// `ws://host:port` or `wss://host`, without a trailing slash.
    base: String,
    options: ConnectOptions,
    /// The handle of the next listener, to stop it with.
    listener_handles: AtomicU64,
    connections: Mutex<HashMap<String, mpsc::UnboundedSender<Command>>>,
}

impl Blaze {
    /// A client of the server at `url` (`http`, `https`, `ws` or `wss`) with
    /// default options. Connections open lazily, one per collection, on first
    /// use; a server that is down shows as requests that wait for it (up to
    /// the request timeout) and listeners that report [`ConnectionState::Offline`](crate::ConnectionState).
    pub async fn connect(url: &str) -> Result<Self, Error> {
        Self::connect_with(url, ConnectOptions::default()).await
    }

    /// A client of the server at `url` with the given options.
    pub async fn connect_with(url: &str, options: ConnectOptions) -> Result<Self, Error> {
        let url = url.trim_end_matches('/');
        let base = if let Some(rest) = url.strip_prefix("http://") {
            format!("ws://{rest}")
        } else if let Some(rest) = url.strip_prefix("https://") {
            format!("wss://{rest}")
        } else if url.starts_with("ws://") || url.starts_with("wss://") {
            url.to_owned()
        } else {
            return Err(Error::Usage(format!(
                "{url:?} is not an http, https, ws or wss URL"
            )));
        };
        Ok(Self {
            inner: Arc::new(Inner {
                base,
                options,
                listener_handles: AtomicU64::new(1),
                connections: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// A reference to the collection at `path` (such as `rooms` or `rooms/r1/messages`).
    pub fn collection(&self, path: &str) -> CollectionRef {
        CollectionRef::new(self.clone(), path.to_owned())
    }

    /// A reference to the document at `path` (such as `rooms/r1`).
    pub fn doc(&self, path: &str) -> DocRef {
        DocRef::new(self.clone(), path.to_owned())
    }

    /// An empty atomic batch; all its writes must be in one collection.
    pub fn batch(&self) -> WriteBatch {
        WriteBatch::new(self.clone())
    }

    /// The files of this server (spec 15), over HTTP with the client's
    /// credentials. `Usage` for a `wss://`/`https://` server: this client has
    /// no TLS.
    pub fn files(&self) -> Result<Files, Error> {
        Files::new(&self.inner.base, self.inner.options.clone())
    }

    /// The options this client was made with.
    pub fn options(&self) -> &ConnectOptions {
        &self.inner.options
    }

    /// The command channel of `collection`'s connection, started if needed.
    fn connection(&self, collection: &CollectionPath) -> mpsc::UnboundedSender<Command> {
        let mut connections = self.inner.connections.lock().expect("connection map");
        if let Some(tx) = connections.get(collection.as_str()) {
            if !tx.is_closed() {
                return tx.clone();
            }
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let url = format!("{}/v1/ws/{collection}", self.inner.base);
        let task = connection::run(url, self.inner.options.clone(), rx);
        tokio::spawn(task);
        connections.insert(collection.as_str().to_owned(), tx.clone());
        tx
    }

    /// Sends a request on `collection`'s connection and waits for its answer
    /// (across reconnects). A commit with no answer, because the request
    /// timeout passed or the connection task stopped, may have been applied:
    /// it fails with [`Error::CommitOutcomeUnknown`].
    pub(crate) async fn request(
        &self,
        collection: &CollectionPath,
        request: Request,
    ) -> Result<ServerMessage, Error> {
        let commit = matches!(request, Request::Commit(..));
        let (reply, answer) = oneshot::channel();
        self.connection(collection)
            .send(Command::Request(request, reply))
            .map_err(|_| Error::Connection("the connection task stopped".into()))?;
        match tokio::time::timeout(self.inner.options.request_timeout, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) | Err(_) if commit => Err(Error::CommitOutcomeUnknown),
            Ok(Err(_)) => Err(Error::Connection("the connection task stopped".into())),
            Err(_) => Err(Error::Timeout),
        }
    }

    /// Starts a listener on `collection`'s connection.
    pub(crate) fn listen(
        &self,
        collection: &CollectionPath,
        target: ListenTarget,
    ) -> (
        u64,
        mpsc::UnboundedReceiver<ListenerUpdate>,
        mpsc::UnboundedSender<Command>,
    ) {
        let handle = self.inner.listener_handles.fetch_add(1, Ordering::Relaxed);
        let (updates, stream) = mpsc::unbounded_channel();
        let tx = self.connection(collection);
        let _ = tx.send(Command::Listen(handle, target, updates));
        (handle, stream, tx)
    }
}

/// Checks a collection path on the client, with the server's rules.
pub(crate) fn collection_path(path: &str) -> Result<CollectionPath, Error> {
    Ok(CollectionPath::parse(path)?)
}

/// Checks a document path on the client, with the server's rules.
pub(crate) fn doc_path(path: &str) -> Result<DocPath, Error> {
    Ok(DocPath::parse(path)?)
}
