//! References to documents and collections, and the single-document writes.

use blaze_protocol::{CommitResult, Precondition, ServerMessage, Write, WriteKind};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::client::doc_path;
use crate::listener::Listener;
use crate::query::QueryRef;
use crate::session::{ListenTarget, Request};
use crate::snapshot::DocumentSnapshot;
use crate::{Blaze, Error};

/// A document path, such as `rooms/r1`, with an optional precondition for
/// the next write made through it.
///
/// ```no_run
/// # async fn demo(db: blaze_client::Blaze) -> Result<(), blaze_client::Error> {
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Room { name: String, size: u32 }
/// let r1 = db.collection("rooms").doc("r1");
/// r1.set(&Room { name: "lobby".into(), size: 2 }).await?;
/// let snap = r1.get::<Room>().await?;
/// let version = snap.version.expect("it exists");
/// // Write only if nobody wrote since we read it.
/// r1.clone().if_version(version).merge(&serde_json::json!({"size": 3})).await?;
/// r1.collection("messages").add(&serde_json::json!({"text": "hi"})).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct DocRef {
    db: Blaze,
    path: String,
    precondition: Precondition,
}

impl DocRef {
    pub(crate) fn new(db: Blaze, path: String) -> Self {
        Self {
            db,
            path,
            precondition: Precondition::default(),
        }
    }

    /// The full document path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The document id: the last segment of the path.
    pub fn id(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }

    /// The collection that holds this document.
    pub fn parent(&self) -> CollectionRef {
        let parent = self.path.rsplit_once('/').map_or("", |(c, _)| c);
        CollectionRef::new(self.db.clone(), parent.to_owned())
    }

    /// The subcollection `id` of this document, such as `rooms/r1/messages`.
    pub fn collection(&self, id: &str) -> CollectionRef {
        CollectionRef::new(self.db.clone(), format!("{}/{id}", self.path))
    }

    /// This reference, with writes through it requiring the document to
    /// exist (`true`) or not (`false`); otherwise `precondition_failed`.
    pub fn if_exists(mut self, exists: bool) -> Self {
        self.precondition.exists = Some(exists);
        self
    }

    /// This reference, with writes through it requiring the document's
    /// version to be `version`; otherwise `precondition_failed`.
    pub fn if_version(mut self, version: u64) -> Self {
        self.precondition.version = Some(version);
        self
    }

    /// Reads the document, with its data as `T` (use `serde_json::Value` for raw JSON).
    pub async fn get<T: DeserializeOwned>(&self) -> Result<DocumentSnapshot<T>, Error> {
        let path = doc_path(&self.path)?;
        match self
            .db
            .request(&path.collection(), Request::Get(path.clone()))
            .await?
        {
            ServerMessage::Doc { doc, .. } => DocumentSnapshot::from(doc).decode(),
            other => Err(unexpected(&other)),
        }
    }

    /// Creates the document; `already_exists` if it exists.
    pub async fn create<T: Serialize>(&self, data: &T) -> Result<CommitResult, Error> {
        let data = serde_json::to_value(data)?;
        self.write(WriteKind::Create { data }).await
    }

    /// Creates or replaces the document.
    pub async fn set<T: Serialize>(&self, data: &T) -> Result<CommitResult, Error> {
        let data = serde_json::to_value(data)?;
        self.write(WriteKind::Set { data }).await
    }

    /// Updates an existing document with a JSON Patch (RFC 6902): a list of operations.
    pub async fn patch(&self, operations: Vec<Value>) -> Result<CommitResult, Error> {
        let patch = Value::Array(operations);
        self.write(WriteKind::Patch { patch }).await
    }

    /// Updates an existing document with a JSON merge patch (RFC 7396):
    /// members of `patch` replace the document's, objects merge, `null` deletes.
    pub async fn merge<T: Serialize>(&self, patch: &T) -> Result<CommitResult, Error> {
        let patch = serde_json::to_value(patch)?;
        self.write(WriteKind::Merge { patch }).await
    }

    /// Updates an existing document by setting fields by path (dot-separated,
    /// backquotes around keys with dots: `` a.`b.c` ``). Missing parent
    /// objects are created; a `null` value deletes the field (as Firestore's
    /// `FieldValue.delete()`).
    ///
    /// ```no_run
    /// # async fn demo(db: blaze_client::Blaze) -> Result<(), blaze_client::Error> {
    /// use serde_json::{json, Value};
    /// db.doc("rooms/r1").update([("topic.title", json!("Rust")), ("draft", Value::Null)]).await?;
    /// # Ok(()) }
    /// ```
    pub async fn update<'a>(
        &self,
        fields: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<CommitResult, Error> {
        let patch = fields_to_merge_patch(fields)?;
        self.write(WriteKind::Merge { patch }).await
    }

    /// Deletes the document (succeeds when it does not exist, unless a precondition says otherwise).
    pub async fn delete(&self) -> Result<CommitResult, Error> {
        self.write(WriteKind::Delete).await
    }

    /// Listens to the document: a stream of [`DocumentSnapshot`]s, the first
    /// one at once, then one per commit that changes the document.
    pub fn listen(&self) -> Listener<DocumentSnapshot> {
        match doc_path(&self.path) {
            Ok(path) => {
                let target = ListenTarget::Doc(path.clone());
                Listener::start(&self.db, &path.collection(), target, self.path.clone())
            }
            Err(e) => Listener::failed(e),
        }
    }

    /// This document's write of `kind`, with the reference's precondition.
    pub(crate) fn to_write(&self, kind: WriteKind) -> Result<Write, Error> {
        let path = doc_path(&self.path)?;
        Ok(Write {
            id: path.id().to_owned(),
            kind,
            precondition: self.precondition,
        })
    }

    async fn write(&self, kind: WriteKind) -> Result<CommitResult, Error> {
        let mut batch = self.db.batch();
        batch.push(self, kind);
        batch.commit().await
    }
}

/// Builds the merge patch that sets each field path to its value.
pub(crate) fn fields_to_merge_patch<'a>(
    fields: impl IntoIterator<Item = (&'a str, Value)>,
) -> Result<Value, Error> {
    let mut patch = Map::new();
    for (field, value) in fields {
        let path = blaze_json::field_path::FieldPath::parse(field)?;
        let (last, parents) = path
            .segments()
            .split_last()
            .ok_or_else(|| Error::Usage("empty field path".into()))?;
        let mut at = &mut patch;
        for key in parents {
            let slot = at
                .entry(key.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !slot.is_object() {
                *slot = Value::Object(Map::new());
            }
            at = slot.as_object_mut().expect("just made an object");
        }
        at.insert(last.clone(), value);
    }
    Ok(Value::Object(patch))
}

pub(crate) fn unexpected(message: &ServerMessage) -> Error {
    Error::Protocol(format!("unexpected answer: {message:?}"))
}

/// A collection path, such as `rooms` or `rooms/r1/messages`. Query methods
/// (`where_`, `order_by`, …) start a [`QueryRef`] over it.
///
/// ```no_run
/// # async fn demo(db: blaze_client::Blaze) -> Result<(), blaze_client::Error> {
/// let todos = db.collection("todos");
/// let added = todos.add(&serde_json::json!({"title": "write docs", "done": false})).await?;
/// assert_eq!(added.id().len(), 20);
/// let open = todos.where_("done", "==", false).count().await?;
/// assert!(open >= 1);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CollectionRef {
    db: Blaze,
    path: String,
}

impl CollectionRef {
    pub(crate) fn new(db: Blaze, path: String) -> Self {
        Self { db, path }
    }

    /// The collection path.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The document `id` of this collection.
    pub fn doc(&self, id: &str) -> DocRef {
        DocRef::new(self.db.clone(), format!("{}/{id}", self.path))
    }

    /// Creates a document with a new random 20-character id (as Firestore's `add`).
    pub async fn add<T: Serialize>(&self, data: &T) -> Result<DocRef, Error> {
        let id: String = std::iter::repeat_with(fastrand::alphanumeric)
            .take(20)
            .collect();
        let doc = self.doc(&id);
        doc.create(data).await?;
        Ok(doc)
    }

    /// A query for every document of the collection, to narrow down.
    pub fn query(&self) -> QueryRef {
        QueryRef::new(self.db.clone(), &self.path)
    }

    /// A query keeping documents whose `field` compares to `value` with `op`
    /// (`==`, `!=`, `<`, `<=`, `>`, `>=`, `in`, `not-in`, `array-contains`,
    /// `array-contains-any`).
    pub fn where_<V: Serialize>(&self, field: &str, op: &str, value: V) -> QueryRef {
        self.query().where_(field, op, value)
    }

    /// A query keeping documents that match `filter` (see [`crate::field`], [`crate::and`], [`crate::or`]).
    pub fn filter(&self, filter: blaze_protocol::Filter) -> QueryRef {
        self.query().filter(filter)
    }

    /// A query ordered by `field`.
    pub fn order_by(&self, field: &str, direction: blaze_protocol::Direction) -> QueryRef {
        self.query().order_by(field, direction)
    }

    /// A query of the first `n` documents in id order.
    pub fn limit(&self, n: u64) -> QueryRef {
        self.query().limit(n)
    }

    /// Every document of the collection, in id order.
    pub async fn get(&self) -> Result<crate::QuerySnapshot, Error> {
        self.query().get().await
    }

    /// How many documents the collection has.
    pub async fn count(&self) -> Result<u64, Error> {
        self.query().count().await
    }

    /// Listens to every document of the collection.
    pub fn listen(&self) -> Listener<crate::QuerySnapshot> {
        self.query().listen()
    }
}
