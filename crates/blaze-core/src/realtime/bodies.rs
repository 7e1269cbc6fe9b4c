//! Document bodies shared by every view of a hub: one allocation per
//! document version held, however many views hold it.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use blaze_protocol::CollectionPath;

use crate::store::StoredDoc;

/// The interning table: for each collection and document id, the versions
/// some view still holds, as weak references (a body lives as long as one
/// view holds it).
#[derive(Debug, Default)]
pub struct Bodies {
    by_collection: HashMap<String, HashMap<String, Vec<(u64, Weak<StoredDoc>)>>>,
    /// Entries added since the last sweep of dead ones.
    added: usize,
    /// Entries alive after the last sweep.
    alive: usize,
}

impl Bodies {
    /// A table holding nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared body of `doc` (of `collection`): the one a view already
    /// holds for its id and version, or a new one made from `doc`.
    pub fn intern(&mut self, collection: &CollectionPath, doc: StoredDoc) -> Arc<StoredDoc> {
        self.lookup_or(collection, &doc.id.clone(), doc.version, || doc)
    }

    /// Like [`Bodies::intern`], copying `doc` only when no view holds it yet.
    pub fn intern_ref(&mut self, collection: &CollectionPath, doc: &StoredDoc) -> Arc<StoredDoc> {
        self.lookup_or(collection, &doc.id, doc.version, || doc.clone())
    }

    /// How many document versions are held by at least one view.
    pub fn len(&self) -> usize {
        self.by_collection
            .values()
            .flat_map(|ids| ids.values())
            .flatten()
            .filter(|(_, w)| w.strong_count() > 0)
            .count()
    }

    /// Whether no view holds any body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lookup_or(
        &mut self,
        collection: &CollectionPath,
        id: &str,
        version: u64,
        make: impl FnOnce() -> StoredDoc,
    ) -> Arc<StoredDoc> {
        let key = collection.as_str();
        if let Some(found) = self
            .by_collection
            .get(key)
            .and_then(|ids| ids.get(id))
            .and_then(|versions| versions.iter().find(|(v, _)| *v == version))
            .and_then(|(_, w)| w.upgrade())
        {
            return found;
        }
        let body = Arc::new(make());
        let versions = self
            .by_collection
            .entry(key.to_owned())
            .or_default()
            .entry(id.to_owned())
            .or_default();
        versions.retain(|(_, w)| w.strong_count() > 0);
        versions.push((version, Arc::downgrade(&body)));
        self.added += 1;
        if self.added > self.alive.max(1024) {
            self.sweep();
        }
        body
    }

    /// Drops the entries of bodies no view holds any more.
    fn sweep(&mut self) {
        let mut alive = 0;
        self.by_collection.retain(|_, ids| {
            ids.retain(|_, versions| {
                versions.retain(|(_, w)| w.strong_count() > 0);
                alive += versions.len();
                !versions.is_empty()
            });
            !ids.is_empty()
        });
        self.alive = alive;
        self.added = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Map;

    fn doc(id: &str, version: u64) -> StoredDoc {
        StoredDoc {
            id: id.into(),
            data: Map::new(),
            version,
            create_time: 0,
            update_time: 0,
        }
    }

    #[test]
    fn one_version_is_one_allocation_while_held() {
        let c = CollectionPath::parse("c").unwrap();
        let mut bodies = Bodies::new();
        let a = bodies.intern(&c, doc("a", 1));
        let b = bodies.intern_ref(&c, &doc("a", 1));
        assert!(Arc::ptr_eq(&a, &b));
        let newer = bodies.intern(&c, doc("a", 2));
        assert!(!Arc::ptr_eq(&a, &newer));
        let other = bodies.intern(&CollectionPath::parse("d").unwrap(), doc("a", 1));
        assert!(!Arc::ptr_eq(&a, &other));
        assert_eq!(bodies.len(), 3);
        drop((a, b));
        assert_eq!(bodies.len(), 2);
    }
}
