//! What several integration tests share: a storage that counts its reads,
//! or fails its commits. Each test crate uses a part of it.
#![allow(dead_code)]

use std::cell::Cell;
use std::ops::Bound;
use std::rc::Rc;

use blaze_core::{
    CommitKey, DocIter, EntryIter, KeyRange, LogIter, MemoryStorage, Storage, StorageBatch,
    StorageError, StoredDoc,
};
use blaze_protocol::{CollectionPath, CommitResult};

/// Memory storage that counts the documents its scans and gets hand out,
/// and may fail every commit.
pub struct Probe {
    inner: MemoryStorage,
    /// Documents handed out so far (the test may reset it).
    pub read: Rc<Cell<usize>>,
    failing: bool,
}

impl Probe {
    /// `inner`, counting what it hands out, with nothing read yet.
    pub fn counting(inner: MemoryStorage) -> Self {
        Self {
            inner,
            read: Rc::new(Cell::new(0)),
            failing: false,
        }
    }

    /// `inner`, whose every commit fails as a disk would.
    pub fn failing_commits(inner: MemoryStorage) -> Self {
        Self {
            failing: true,
            ..Self::counting(inner)
        }
    }
}

impl Storage for Probe {
    fn seq(&self, c: &CollectionPath) -> Result<u64, StorageError> {
        self.inner.seq(c)
    }
    fn get(&self, c: &CollectionPath, id: &str) -> Result<Option<StoredDoc>, StorageError> {
        self.read.set(self.read.get() + 1);
        self.inner.get(c, id)
    }
    fn scan(
        &self,
        c: &CollectionPath,
        range: (Bound<&str>, Bound<&str>),
        reverse: bool,
    ) -> Result<DocIter<'_>, StorageError> {
        let read = self.read.clone();
        let docs = self.inner.scan(c, range, reverse)?;
        Ok(Box::new(docs.inspect(move |_| read.set(read.get() + 1))))
    }
    fn scan_index(
        &self,
        c: &CollectionPath,
        index: &str,
        range: KeyRange,
        reverse: bool,
    ) -> Result<EntryIter<'_>, StorageError> {
        self.inner.scan_index(c, index, range, reverse)
    }
    fn log(&self, c: &CollectionPath, after: u64) -> Result<LogIter<'_>, StorageError> {
        self.inner.log(c, after)
    }
    fn remembered(
        &self,
        c: &CollectionPath,
        key: &CommitKey,
    ) -> Result<Option<CommitResult>, StorageError> {
        self.inner.remembered(c, key)
    }
    fn apply(&mut self, c: &CollectionPath, batch: StorageBatch) -> Result<(), StorageError> {
        if self.failing {
            return Err(StorageError("sqlite: disk I/O error".into()));
        }
        self.inner.apply(c, batch)
    }
}
