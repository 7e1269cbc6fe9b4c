//! Atomic batches: several writes to one collection, all or none.

use blaze_protocol::{CommitResult, ServerMessage, Write, WriteKind};
use serde::Serialize;
use serde_json::Value;

use crate::client::collection_path;
use crate::refs::{fields_to_merge_patch, unexpected, DocRef};
use crate::session::Request;
use crate::{Blaze, Error};

/// Writes to documents of one collection, committed atomically in order.
/// Each write takes the precondition of the [`DocRef`] it is made through
/// ([`DocRef::if_version`], [`DocRef::if_exists`]).
///
/// ```no_run
/// # async fn demo(db: blaze_client::Blaze) -> Result<(), blaze_client::Error> {
/// use serde_json::json;
/// let rooms = db.collection("rooms");
/// let mut batch = db.batch();
/// batch.set(&rooms.doc("r1"), &json!({"name": "lobby"}))
///      .delete(&rooms.doc("r2").if_exists(true));
/// let committed = batch.commit().await?;
/// println!("committed at seq {}", committed.seq);
/// # Ok(()) }
/// ```
pub struct WriteBatch {
    db: Blaze,
    collection: Option<String>,
    writes: Vec<Write>,
    error: Option<Error>,
}

impl WriteBatch {
    pub(crate) fn new(db: Blaze) -> Self {
        Self {
            db,
            collection: None,
            writes: Vec::new(),
            error: None,
        }
    }

    /// Adds a write; the first error (bad path, other collection, data that
    /// does not serialize) is kept and reported by `commit`.
    pub(crate) fn push(&mut self, doc: &DocRef, kind: WriteKind) -> &mut Self {
        if self.error.is_some() {
            return self;
        }
        let collection = doc.parent().path().to_owned();
        match &self.collection {
            Some(c) if *c != collection => {
                self.error = Some(Error::Usage(format!(
                    "a batch writes to one collection; {} is not in {c}",
                    doc.path()
                )));
            }
            _ => match doc.to_write(kind) {
                Ok(write) => {
                    self.collection = Some(collection);
                    self.writes.push(write);
                }
                Err(e) => self.error = Some(e),
            },
        }
        self
    }

    fn push_data<T: Serialize>(
        &mut self,
        doc: &DocRef,
        data: &T,
        kind: fn(Value) -> WriteKind,
    ) -> &mut Self {
        match serde_json::to_value(data) {
            Ok(value) => self.push(doc, kind(value)),
            Err(e) => {
                self.error.get_or_insert(e.into());
                self
            }
        }
    }

    /// Creates the document; the batch fails with `already_exists` if it exists.
    pub fn create<T: Serialize>(&mut self, doc: &DocRef, data: &T) -> &mut Self {
        self.push_data(doc, data, |data| WriteKind::Create { data })
    }

    /// Creates or replaces the document.
    pub fn set<T: Serialize>(&mut self, doc: &DocRef, data: &T) -> &mut Self {
        self.push_data(doc, data, |data| WriteKind::Set { data })
    }

    /// Updates the document with a JSON Patch.
    pub fn patch(&mut self, doc: &DocRef, operations: Vec<Value>) -> &mut Self {
        let patch = Value::Array(operations);
        self.push(doc, WriteKind::Patch { patch })
    }

    /// Updates the document with a JSON merge patch.
    pub fn merge<T: Serialize>(&mut self, doc: &DocRef, patch: &T) -> &mut Self {
        self.push_data(doc, patch, |patch| WriteKind::Merge { patch })
    }

    /// Updates the document by setting fields by path (see [`DocRef::update`]).
    pub fn update<'a>(
        &mut self,
        doc: &DocRef,
        fields: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> &mut Self {
        match fields_to_merge_patch(fields) {
            Ok(patch) => self.push(doc, WriteKind::Merge { patch }),
            Err(e) => {
                self.error.get_or_insert(e);
                self
            }
        }
    }

    /// Deletes the document.
    pub fn delete(&mut self, doc: &DocRef) -> &mut Self {
        self.push(doc, WriteKind::Delete)
    }

    /// Checks the reference's precondition without writing the document.
    pub fn verify(&mut self, doc: &DocRef) -> &mut Self {
        self.push(doc, WriteKind::Verify)
    }

    /// How many writes the batch holds.
    pub fn len(&self) -> usize {
        self.writes.len()
    }

    /// True when the batch holds no writes.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty()
    }

    /// Commits the writes atomically: all apply, or none does and the error
    /// names the failing write's index.
    pub async fn commit(self) -> Result<CommitResult, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let Some(collection) = self.collection else {
            return Err(Error::rejected(
                blaze_protocol::ErrorCode::EmptyBatch,
                "the batch has no writes",
            ));
        };
        let path = collection_path(&collection)?;
        let request = Request::Commit(path.clone(), self.writes);
        match self.db.request(&path, request).await? {
            ServerMessage::Committed { result, .. } => Ok(result),
            other => Err(unexpected(&other)),
        }
    }
}
