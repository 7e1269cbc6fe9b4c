//! Listeners as async streams. Dropping one unlistens.

use std::pin::Pin;
use std::task::{Context, Poll};

use blaze_protocol::CollectionPath;
use futures_core::Stream;
use tokio::sync::mpsc;

use crate::connection::Command;
use crate::session::{ConnectionState, ListenTarget, ListenerUpdate};
use crate::snapshot::{DocumentSnapshot, QuerySnapshot};
use crate::{Blaze, Error};

/// One item of a listener's stream.
#[derive(Clone, Debug, PartialEq)]
pub enum ListenEvent<S> {
    /// The current state: the first one, then one per change.
    Snapshot(S),
    /// The connection went down (the client is reconnecting) or came back
    /// (the listener is resuming; a snapshot with what it missed follows,
    /// unless it missed nothing).
    State(ConnectionState),
}

/// Snapshot types a listener can yield.
pub trait FromResults: Sized {
    /// Makes the item from a query snapshot of the listener's results; `path`
    /// is the listened document's path (empty for queries).
    fn from_results(snapshot: QuerySnapshot, path: &str) -> Self;
}

impl FromResults for QuerySnapshot {
    fn from_results(snapshot: QuerySnapshot, _path: &str) -> Self {
        snapshot
    }
}

impl FromResults for DocumentSnapshot {
    fn from_results(snapshot: QuerySnapshot, path: &str) -> Self {
        snapshot
            .docs
            .into_iter()
            .next()
            .unwrap_or_else(|| DocumentSnapshot::missing(path))
    }
}

/// A realtime listener: a [`Stream`] of [`ListenEvent`]s. It ends after an
/// error: the server refused the listen, or ended it later (an `error` frame
/// with the listen's rid, e.g. `permission_denied` once the access rules deny
/// it); an ended listener is not listened to again. Dropping it stops the
/// listener.
///
/// Across reconnects the listener resumes from the last sequence number it
/// saw: its snapshots miss no change and repeat none.
///
/// ```no_run
/// # async fn demo(db: blaze_client::Blaze) -> Result<(), blaze_client::Error> {
/// use blaze_client::ListenEvent;
/// use futures_util::StreamExt;
/// let mut todos = db.collection("todos").listen();
/// while let Some(event) = todos.next().await {
///     match event? {
///         ListenEvent::Snapshot(snap) => {
///             for change in snap.changes() { println!("{:?} {}", change.kind, change.doc.id()); }
///         }
///         ListenEvent::State(state) => eprintln!("connection: {state:?}"),
///     }
/// }
/// # Ok(()) }
/// ```
pub struct Listener<S> {
    events: Option<mpsc::UnboundedReceiver<ListenerUpdate>>,
    failed: Option<Error>,
    stop: Option<(u64, mpsc::UnboundedSender<Command>)>,
    path: String,
    _item: std::marker::PhantomData<fn() -> S>,
}

impl<S: FromResults> Listener<S> {
    pub(crate) fn start(
        db: &Blaze,
        collection: &CollectionPath,
        target: ListenTarget,
        path: String,
    ) -> Self {
        let (handle, events, tx) = db.listen(collection, target);
        Self {
            events: Some(events),
            failed: None,
            stop: Some((handle, tx)),
            path,
            _item: std::marker::PhantomData,
        }
    }

    pub(crate) fn failed(error: Error) -> Self {
        Self {
            events: None,
            failed: Some(error),
            stop: None,
            path: String::new(),
            _item: std::marker::PhantomData,
        }
    }

    /// The next snapshot, skipping connection-state events; `None` when the
    /// stream has ended.
    pub async fn next_snapshot(&mut self) -> Option<Result<S, Error>> {
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut *self).poll_next(cx)).await? {
                Ok(ListenEvent::Snapshot(snapshot)) => return Some(Ok(snapshot)),
                Ok(ListenEvent::State(_)) => {}
                Err(e) => return Some(Err(e)),
            }
        }
    }
}

impl<S: FromResults> Stream for Listener<S> {
    type Item = Result<ListenEvent<S>, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if let Some(error) = this.failed.take() {
            this.events = None;
            return Poll::Ready(Some(Err(error)));
        }
        let Some(events) = &mut this.events else {
            return Poll::Ready(None);
        };
        match events.poll_recv(cx) {
            Poll::Ready(Some(ListenerUpdate::Snapshot(s))) => {
                let item = S::from_results(s, &this.path);
                Poll::Ready(Some(Ok(ListenEvent::Snapshot(item))))
            }
            Poll::Ready(Some(ListenerUpdate::State(state))) => {
                Poll::Ready(Some(Ok(ListenEvent::State(state))))
            }
            Poll::Ready(Some(ListenerUpdate::Failed(error))) => {
                this.events = None;
                this.stop = None;
                Poll::Ready(Some(Err(error)))
            }
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S> Drop for Listener<S> {
    fn drop(&mut self) {
        if let Some((handle, tx)) = self.stop.take() {
            let _ = tx.send(Command::Unlisten(handle));
        }
    }
}
