//! The documents rules read with `get()`, `exists()`, `getAfter()` and
//! `existsAfter()`: this object's own from storage (and, after a batch, from
//! the batch's staged state), other collections' from what the driver
//! fetched. A document of another collection that was not fetched is
//! recorded, so the caller can ask the driver for it and decide again.

use std::cell::RefCell;
use std::collections::HashMap;

use blaze_protocol::{CollectionPath, DocPath};
use hidane_rules::eval::{Document, Documents};
use serde_json::{Map, Value};

use crate::error::StorageError;
use crate::rules::convert;
use crate::store::{Storage, StoredDoc};

/// Documents of other collections, fetched by the driver for the rules
/// (spec 14.5): each path with its data, or `None` when it does not exist.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FetchedDocs {
    docs: HashMap<DocPath, Option<Map<String, Value>>>,
    /// Their estimated size: each path and its data, serialized.
    bytes: usize,
}

/// The estimated bytes `path` and its `data` hold.
fn size_of(path: &DocPath, data: Option<&Map<String, Value>>) -> usize {
    path.as_str().len() + data.map_or(0, blaze_json::size::object_len)
}

impl FetchedDocs {
    /// Nothing fetched yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records what `path` holds (`None`: it does not exist).
    pub fn insert(&mut self, path: DocPath, data: Option<Map<String, Value>>) {
        self.bytes += size_of(&path, data.as_ref());
        if let Some(old) = self.docs.insert(path.clone(), data) {
            self.bytes -= size_of(&path, old.as_ref());
        }
    }

    /// Keeps only the documents whose path `keep` accepts.
    pub fn retain(&mut self, mut keep: impl FnMut(&DocPath) -> bool) {
        let mut bytes = 0;
        self.docs.retain(|path, data| {
            let kept = keep(path);
            if kept {
                bytes += size_of(path, data.as_ref());
            }
            kept
        });
        self.bytes = bytes;
    }

    /// The estimated bytes the fetched documents hold (their paths and
    /// data, serialized), for the memory budget.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The paths fetched.
    pub fn paths(&self) -> impl Iterator<Item = &DocPath> {
        self.docs.keys()
    }

    /// How many documents were fetched.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// Whether nothing was fetched.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }
}

/// The [`Documents`] one decision reads.
pub(crate) struct Lookup<'a, S> {
    pub(crate) storage: &'a S,
    /// The collection this object serves; `None` when every collection is
    /// in `storage` (an embedder's single database).
    pub(crate) local: Option<&'a CollectionPath>,
    /// The batch's documents after its writes, for `getAfter()`: the
    /// collection written and each staged id's state.
    pub(crate) after: Option<(&'a CollectionPath, &'a HashMap<String, Option<StoredDoc>>)>,
    pub(crate) fetched: &'a FetchedDocs,
    pub(crate) missing: RefCell<Vec<DocPath>>,
    pub(crate) failed: RefCell<Option<StorageError>>,
}

impl<'a, S: Storage> Lookup<'a, S> {
    pub(crate) fn new(
        storage: &'a S,
        local: Option<&'a CollectionPath>,
        fetched: &'a FetchedDocs,
    ) -> Self {
        Self {
            storage,
            local,
            after: None,
            fetched,
            missing: RefCell::new(Vec::new()),
            failed: RefCell::new(None),
        }
    }

    fn is_local(&self, collection: &CollectionPath) -> bool {
        self.local.is_none_or(|local| local == collection)
    }

    fn read(&self, path: &DocPath) -> Option<Document> {
        let collection = path.collection();
        if self.is_local(&collection) {
            return match self.storage.get(&collection, path.id()) {
                Ok(doc) => doc.map(|d| convert::document(&collection, &d.id, &d.data)),
                Err(e) => {
                    self.failed.borrow_mut().get_or_insert(e);
                    None
                }
            };
        }
        match self.fetched.docs.get(path) {
            Some(data) => data
                .as_ref()
                .map(|data| convert::document(&collection, path.id(), data)),
            None => {
                let mut missing = self.missing.borrow_mut();
                if !missing.contains(path) {
                    missing.push(path.clone());
                }
                None
            }
        }
    }
}

impl<S: Storage> Documents for Lookup<'_, S> {
    fn get(&self, path: &[String]) -> Option<Document> {
        // A path outside this database, or not a document's, holds nothing.
        self.read(&convert::parse_doc_path(path)?)
    }

    fn get_after(&self, path: &[String]) -> Option<Document> {
        let doc = convert::parse_doc_path(path)?;
        if let Some((collection, staged)) = self.after {
            if doc.collection() == *collection {
                if let Some(state) = staged.get(doc.id()) {
                    return state
                        .as_ref()
                        .map(|d| convert::document(collection, &d.id, &d.data));
                }
            }
        }
        self.read(&doc)
    }
}
