//! What reads and listeners return: document snapshots, query snapshots and
//! their changes (Firestore's `DocumentSnapshot`, `QuerySnapshot` and `docChanges`).

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::Error;

/// One document as the server reported it, with its data as `T`
/// (by default raw JSON).
#[derive(Clone, Debug, PartialEq)]
pub struct DocumentSnapshot<T = Value> {
    /// The full document path, such as `rooms/r1`.
    pub path: String,
    /// The contents; `None` when the document does not exist.
    pub data: Option<T>,
    /// The sequence number of the commit that last wrote it (its version).
    pub version: Option<u64>,
    /// When it was created (milliseconds since the Unix epoch, server time).
    pub create_time: Option<u64>,
    /// When it was last written (milliseconds since the Unix epoch, server time).
    pub update_time: Option<u64>,
}

impl<T> DocumentSnapshot<T> {
    /// Whether the document exists.
    pub fn exists(&self) -> bool {
        self.data.is_some()
    }

    /// The document id: the last segment of the path.
    pub fn id(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }
}

impl DocumentSnapshot {
    /// The snapshot with its data converted to `T` through serde.
    ///
    /// ```
    /// use blaze_client::DocumentSnapshot;
    /// #[derive(serde::Deserialize, Debug, PartialEq)]
    /// struct Room { name: String }
    /// let raw = DocumentSnapshot {
    ///     path: "rooms/r1".into(),
    ///     data: Some(serde_json::json!({"name": "lobby"})),
    ///     version: Some(3), create_time: Some(1), update_time: Some(2),
    /// };
    /// let room = raw.decode::<Room>()?;
    /// assert_eq!(room.data, Some(Room { name: "lobby".into() }));
    /// assert_eq!(room.id(), "r1");
    /// # Ok::<(), blaze_client::Error>(())
    /// ```
    pub fn decode<T: DeserializeOwned>(&self) -> Result<DocumentSnapshot<T>, Error> {
        let data = match &self.data {
            Some(value) => Some(T::deserialize(value)?),
            None => None,
        };
        Ok(DocumentSnapshot {
            path: self.path.clone(),
            data,
            version: self.version,
            create_time: self.create_time,
            update_time: self.update_time,
        })
    }

    /// A snapshot of a document that does not exist.
    pub(crate) fn missing(path: &str) -> Self {
        Self {
            path: path.to_owned(),
            data: None,
            version: None,
            create_time: None,
            update_time: None,
        }
    }
}

impl From<blaze_protocol::DocSnapshot> for DocumentSnapshot {
    fn from(doc: blaze_protocol::DocSnapshot) -> Self {
        Self {
            path: doc.path,
            data: doc.data.filter(|_| doc.exists).map(Value::Object),
            version: doc.version,
            create_time: doc.create_time,
            update_time: doc.update_time,
        }
    }
}

/// How a document's place in a listener's results changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    /// It entered the results.
    Added,
    /// It was written while in the results (and may have moved).
    Modified,
    /// It left the results.
    Removed,
}

/// One entry of [`QuerySnapshot::changes`], as Firestore's `DocumentChange`.
#[derive(Clone, Debug, PartialEq)]
pub struct DocChange {
    /// What happened.
    pub kind: ChangeKind,
    /// The document after the change (for `Removed`, as it was last seen).
    pub doc: DocumentSnapshot,
    /// Its index before the change, counted as the spec's change order says; `None` for `Added`.
    pub old_index: Option<usize>,
    /// Its index after the change; `None` for `Removed`.
    pub new_index: Option<usize>,
}

/// A query's full current results, and what changed since the listener's previous snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySnapshot {
    /// The matching documents, in query order.
    pub docs: Vec<DocumentSnapshot>,
    /// The collection's sequence number these results are consistent with.
    pub seq: u64,
    /// The changes from the previous snapshot of this listener (for the first
    /// snapshot, every document as `Added`).
    pub changes: Vec<DocChange>,
    /// True when the server could not resume the listener from its change log
    /// and sent a fresh snapshot; `changes` then still describe the difference.
    pub reset: bool,
}

impl QuerySnapshot {
    /// The changes since the previous snapshot (Firestore's `docChanges()`).
    pub fn changes(&self) -> &[DocChange] {
        &self.changes
    }

    /// The documents converted to `T` through serde.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<Vec<DocumentSnapshot<T>>, Error> {
        self.docs.iter().map(DocumentSnapshot::decode).collect()
    }

    /// True when the query has no results.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// How many results the query has.
    pub fn len(&self) -> usize {
        self.docs.len()
    }
}
