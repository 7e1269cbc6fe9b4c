//! The storage trait the engine runs on: a dumb ordered key-value store.
//!
//! The engine decides what to write (documents and index entries, computed
//! from the key encoding) and hands each commit over whole, so a backend can
//! apply it in one transaction. Reads are point gets and ordered scans, and
//! counts of documents or index entries (a backend may count without reading).

use std::ops::Bound;

use blaze_protocol::{CollectionPath, CommitId, CommitResult, DocSnapshot, Identity};
use serde_json::{Map, Value};

use crate::error::StorageError;

mod memory;

pub use memory::MemoryStorage;

/// A stored document with its server metadata.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredDoc {
    /// The document id within its collection.
    pub id: String,
    /// The contents.
    pub data: Map<String, Value>,
    /// The sequence number of the commit that last wrote it.
    pub version: u64,
    /// Creation time, milliseconds since the Unix epoch.
    pub create_time: u64,
    /// Last write time, milliseconds since the Unix epoch.
    pub update_time: u64,
}

impl StoredDoc {
    /// The wire form of this document, which lives in `collection`.
    pub fn snapshot(&self, collection: &CollectionPath) -> DocSnapshot {
        DocSnapshot {
            path: format!("{collection}/{}", self.id),
            exists: true,
            data: Some(self.data.clone()),
            version: Some(self.version),
            create_time: Some(self.create_time),
            update_time: Some(self.update_time),
            held: false,
        }
    }
}

/// One index entry: in index `index`, the value key `key` points at document `id`.
/// Entries of one index are ordered by `(key, id)`, both compared as bytes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexEntry {
    /// The index name (see `indexing`).
    pub index: String,
    /// The order-preserving encoding of the indexed value.
    pub key: Vec<u8>,
    /// The document id.
    pub id: String,
}

/// One document's change in a commit: its state before and after.
#[derive(Clone, Debug, PartialEq)]
pub struct DocWrite {
    /// The document id.
    pub id: String,
    /// The document before the commit (`None`: it did not exist).
    pub before: Option<StoredDoc>,
    /// The document after the commit (`None`: it does not exist).
    pub after: Option<StoredDoc>,
}

/// What one commit changed in one collection: an entry of the change log.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CommitRecord {
    /// The commit's sequence number.
    pub seq: u64,
    /// The commit time, milliseconds since the Unix epoch.
    pub time: u64,
    /// Every document the commit wrote, in id order.
    pub docs: Vec<DocWrite>,
}

/// A commit id as the store remembers it: the client-chosen id and who
/// sent it (spec 8.7), so a retry is answered only to the caller whose
/// commit it was. Every admin key is one caller, and so is every anonymous
/// one; a user is her `uid`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommitKey(String);

impl CommitKey {
    /// `id` as sent by `caller`.
    pub fn new(id: &CommitId, caller: &Identity) -> Self {
        // A commit id has no space, so the id and the caller split apart again.
        let caller = match caller {
            Identity::Anonymous => "anonymous".to_owned(),
            Identity::Admin => "admin".to_owned(),
            Identity::User { uid, .. } => format!("user:{uid}"),
        };
        Self(format!("{} {caller}", id.as_str()))
    }

    /// The key as one string (the id, a space, the caller).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A commit id the store remembers, with the answer a retry of that commit gets.
#[derive(Clone, Debug, PartialEq)]
pub struct RememberedCommit {
    /// The client-chosen commit id, with who sent it.
    pub key: CommitKey,
    /// The commit's original outcome; `result.seq` is its sequence number.
    pub result: CommitResult,
}

/// Everything one commit changes in one collection, applied all at once.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StorageBatch {
    /// The change log entry to append; its `seq` is the collection's new sequence number.
    pub record: CommitRecord,
    /// The commit's id and outcome to remember, when the commit had an id.
    pub remember: Option<RememberedCommit>,
    /// Change log entries, and remembered commits, with a sequence number below this are dropped.
    pub log_trim_below: u64,
    /// Documents to insert or replace.
    pub puts: Vec<StoredDoc>,
    /// Ids of documents to delete.
    pub deletes: Vec<String>,
    /// Index entries to remove.
    pub index_removes: Vec<IndexEntry>,
    /// Index entries to add.
    pub index_adds: Vec<IndexEntry>,
}

/// A range of value keys, both ends as bounds on the key bytes.
pub type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// Documents in id order.
pub type DocIter<'a> = Box<dyn Iterator<Item = Result<StoredDoc, StorageError>> + 'a>;

/// Index entries in `(key, id)` order.
pub type EntryIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, String), StorageError>> + 'a>;

/// Change log entries in sequence order.
pub type LogIter<'a> = Box<dyn Iterator<Item = Result<CommitRecord, StorageError>> + 'a>;

/// An ordered store of documents and index entries, per collection.
pub trait Storage {
    /// The collection's latest commit sequence number (0 if never written).
    fn seq(&self, collection: &CollectionPath) -> Result<u64, StorageError>;

    /// The document `id` of `collection`, if it exists.
    fn get(&self, collection: &CollectionPath, id: &str)
        -> Result<Option<StoredDoc>, StorageError>;

    /// The collection's documents whose ids lie in `range`, in id byte order
    /// (descending when `reverse`).
    fn scan(
        &self,
        collection: &CollectionPath,
        range: (Bound<&str>, Bound<&str>),
        reverse: bool,
    ) -> Result<DocIter<'_>, StorageError>;

    /// How many documents the collection holds. The default counts a scan;
    /// a backend can count without reading them.
    fn count_docs(&self, collection: &CollectionPath) -> Result<u64, StorageError> {
        let mut n = 0;
        for doc in self.scan(collection, (Bound::Unbounded, Bound::Unbounded), false)? {
            doc?;
            n += 1;
        }
        Ok(n)
    }

    /// The entries of index `index` whose keys lie in `range`, ordered by
    /// `(key, id)` (descending when `reverse`).
    fn scan_index(
        &self,
        collection: &CollectionPath,
        index: &str,
        range: KeyRange,
        reverse: bool,
    ) -> Result<EntryIter<'_>, StorageError>;

    /// How many entries of index `index` have keys in `range`. The default
    /// counts a scan; a backend can count without reading them.
    fn count_entries(
        &self,
        collection: &CollectionPath,
        index: &str,
        range: KeyRange,
    ) -> Result<u64, StorageError> {
        let mut n = 0;
        for entry in self.scan_index(collection, index, range, false)? {
            entry?;
            n += 1;
        }
        Ok(n)
    }

    /// The collection's change log entries with a sequence number above `after`, oldest first.
    fn log(&self, collection: &CollectionPath, after: u64) -> Result<LogIter<'_>, StorageError>;

    /// The sequence number of the oldest change log entry of `collection` at or
    /// above `from` whose time is at or after `time` (for trimming the log).
    /// The default scans `changes`; a backend can answer it in one lookup.
    fn log_start(
        &self,
        collection: &CollectionPath,
        from: u64,
        time: u64,
    ) -> Result<Option<u64>, StorageError> {
        for record in self.log(collection, from.saturating_sub(1))? {
            let record = record?;
            if record.seq >= from && record.time >= time {
                return Ok(Some(record.seq));
            }
        }
        Ok(None)
    }

    /// The outcome of the commit of `collection` that was stored with commit
    /// key `key`, while its sequence number is at or above the last `log_trim_below`.
    fn remembered(
        &self,
        collection: &CollectionPath,
        key: &CommitKey,
    ) -> Result<Option<CommitResult>, StorageError>;

    /// Applies a commit atomically: all of it or, on error, none of it.
    fn apply(
        &mut self,
        collection: &CollectionPath,
        commit: StorageBatch,
    ) -> Result<(), StorageError>;
}
