//! [`MemoryStorage`]: the in-memory [`Storage`], built on B-trees.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use blaze_protocol::{CollectionPath, CommitResult};

use super::{
    CommitKey, CommitRecord, DocIter, EntryIter, KeyRange, LogIter, Storage, StorageBatch,
    StoredDoc,
};
use crate::error::StorageError;

type Index = BTreeMap<Vec<u8>, BTreeSet<String>>;

#[derive(Default)]
struct Collection {
    seq: u64,
    docs: BTreeMap<String, StoredDoc>,
    indexes: HashMap<String, Index>,
    log: BTreeMap<u64, CommitRecord>,
    /// Remembered commits by sequence number (for trimming), and their seqs by key.
    remembered: BTreeMap<u64, (CommitKey, CommitResult)>,
    remembered_seqs: HashMap<CommitKey, u64>,
}

/// An in-memory [`Storage`]; nothing it holds outlives the process.
#[derive(Default)]
pub struct MemoryStorage {
    collections: HashMap<CollectionPath, Collection>,
}

impl MemoryStorage {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many index entries `collection` holds, over all its indexes.
    pub fn index_entry_count(&self, collection: &CollectionPath) -> usize {
        self.collections.get(collection).map_or(0, |c| {
            c.indexes
                .values()
                .flat_map(|i| i.values())
                .map(BTreeSet::len)
                .sum()
        })
    }
}

fn owned(bound: Bound<&str>) -> Bound<String> {
    bound.map(str::to_owned)
}

impl Storage for MemoryStorage {
    fn seq(&self, collection: &CollectionPath) -> Result<u64, StorageError> {
        Ok(self.collections.get(collection).map_or(0, |c| c.seq))
    }

    fn get(
        &self,
        collection: &CollectionPath,
        id: &str,
    ) -> Result<Option<StoredDoc>, StorageError> {
        Ok(self
            .collections
            .get(collection)
            .and_then(|c| c.docs.get(id))
            .cloned())
    }

    fn scan(
        &self,
        collection: &CollectionPath,
        range: (Bound<&str>, Bound<&str>),
        reverse: bool,
    ) -> Result<DocIter<'_>, StorageError> {
        let Some(c) = self.collections.get(collection) else {
            return Ok(Box::new(std::iter::empty()));
        };
        if range_is_empty::<str, _>(&range) {
            return Ok(Box::new(std::iter::empty()));
        }
        let docs = c.docs.range::<String, _>((owned(range.0), owned(range.1)));
        let docs = docs.map(|(_, d)| Ok(d.clone()));
        Ok(if reverse {
            Box::new(docs.rev())
        } else {
            Box::new(docs)
        })
    }

    fn scan_index(
        &self,
        collection: &CollectionPath,
        index: &str,
        range: KeyRange,
        reverse: bool,
    ) -> Result<EntryIter<'_>, StorageError> {
        let Some(index) = self
            .collections
            .get(collection)
            .and_then(|c| c.indexes.get(index))
        else {
            return Ok(Box::new(std::iter::empty()));
        };
        if range_is_empty::<Vec<u8>, _>(&range) {
            return Ok(Box::new(std::iter::empty()));
        }
        let keys = index.range(range);
        Ok(if reverse {
            Box::new(
                keys.rev().flat_map(|(k, ids)| {
                    ids.iter().rev().map(move |id| Ok((k.clone(), id.clone())))
                }),
            )
        } else {
            Box::new(
                keys.flat_map(|(k, ids)| ids.iter().map(move |id| Ok((k.clone(), id.clone())))),
            )
        })
    }

    fn log(&self, collection: &CollectionPath, after: u64) -> Result<LogIter<'_>, StorageError> {
        let Some(c) = self.collections.get(collection) else {
            return Ok(Box::new(std::iter::empty()));
        };
        let records = c
            .log
            .range(after.saturating_add(1)..)
            .map(|(_, r)| Ok(r.clone()));
        Ok(Box::new(records))
    }

    fn count_docs(&self, collection: &CollectionPath) -> Result<u64, StorageError> {
        Ok(self
            .collections
            .get(collection)
            .map_or(0, |c| c.docs.len() as u64))
    }

    fn remembered(
        &self,
        collection: &CollectionPath,
        key: &CommitKey,
    ) -> Result<Option<CommitResult>, StorageError> {
        let Some(c) = self.collections.get(collection) else {
            return Ok(None);
        };
        Ok(c.remembered_seqs
            .get(key)
            .and_then(|seq| c.remembered.get(seq))
            .map(|(_, result)| result.clone()))
    }

    fn apply(
        &mut self,
        collection: &CollectionPath,
        commit: StorageBatch,
    ) -> Result<(), StorageError> {
        let c = self.collections.entry(collection.clone()).or_default();
        c.seq = commit.record.seq;
        c.log.insert(commit.record.seq, commit.record);
        c.log = c.log.split_off(&commit.log_trim_below);
        if let Some(r) = commit.remember {
            c.remembered_seqs.insert(r.key.clone(), r.result.seq);
            c.remembered.insert(r.result.seq, (r.key, r.result));
        }
        let kept = c.remembered.split_off(&commit.log_trim_below);
        for (key, _) in std::mem::replace(&mut c.remembered, kept).into_values() {
            c.remembered_seqs.remove(&key);
        }
        for id in commit.deletes {
            c.docs.remove(&id);
        }
        for doc in commit.puts {
            c.docs.insert(doc.id.clone(), doc);
        }
        for e in commit.index_removes {
            if let Some(index) = c.indexes.get_mut(&e.index) {
                if let Some(ids) = index.get_mut(&e.key) {
                    ids.remove(&e.id);
                    if ids.is_empty() {
                        index.remove(&e.key);
                    }
                }
            }
        }
        for e in commit.index_adds {
            c.indexes
                .entry(e.index)
                .or_default()
                .entry(e.key)
                .or_default()
                .insert(e.id);
        }
        Ok(())
    }
}

/// `BTreeMap::range` panics on a range whose start is after its end (or equal
/// and both excluded); such a range is simply empty here.
fn range_is_empty<T: Ord + ?Sized, B: std::borrow::Borrow<T>>(
    range: &(Bound<B>, Bound<B>),
) -> bool {
    use Bound::*;
    match (&range.0, &range.1) {
        (Included(a), Included(b)) => a.borrow() > b.borrow(),
        (Included(a), Excluded(b)) | (Excluded(a), Included(b)) | (Excluded(a), Excluded(b)) => {
            a.borrow() >= b.borrow()
        }
        _ => false,
    }
}
