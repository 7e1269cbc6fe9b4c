//! Document bodies shared by every view of a hub: one allocation per
//! document version held, however many views hold it.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Weak};

use blaze_json::diff::diff;
use blaze_protocol::CollectionPath;
use serde_json::{Map, Value};

use crate::store::StoredDoc;

/// One collection's bodies some view still holds, by the hash of their id
/// and version (a body lives as long as one view holds it).
type Held = HashMap<u64, (Weak<StoredDoc>, usize)>;

/// The interning table of a hub's document bodies.
///
/// Entries are weak references keyed by a hash, so the table costs a few
/// words per body held, not a copy of its id. Two versions whose hashes
/// collide are both correct bodies: the second simply is not shared.
#[derive(Debug, Default)]
pub struct Bodies {
    by_collection: HashMap<String, Held>,
    hasher: RandomState,
    /// The estimated bytes of the entries' bodies, dead ones included until swept.
    bytes: usize,
    /// Entries added since the last sweep of dead ones.
    added: usize,
    /// Entries alive after the last sweep.
    alive: usize,
    /// The patches of the commit being fanned out.
    patches: Patches,
}

/// The JSON Patches made for one commit (of one collection, by its
/// sequence number), by the hash of the document id and its two versions.
#[derive(Debug, Default)]
struct Patches {
    commit: Option<(String, u64)>,
    by_write: HashMap<u64, (String, u64, u64, Vec<Value>)>,
}

impl Bodies {
    /// A table holding nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared body of `doc` (of `collection`): the one a view already
    /// holds for its id and version, or a new one made from `doc`.
    pub fn intern(&mut self, collection: &CollectionPath, doc: StoredDoc) -> Arc<StoredDoc> {
        match self.find(collection, &doc) {
            Some(found) => found,
            None => self.insert(collection, Arc::new(doc)),
        }
    }

    /// Like [`Bodies::intern`], copying `doc` only when no view holds it yet.
    pub fn intern_ref(&mut self, collection: &CollectionPath, doc: &StoredDoc) -> Arc<StoredDoc> {
        match self.find(collection, doc) {
            Some(found) => found,
            None => self.insert(collection, Arc::new(doc.clone())),
        }
    }

    /// The JSON Patch from `before` to `after` (two states of one document
    /// of `collection` in the commit numbered `seq`): made once per commit
    /// and document, and copied for every further view that asks.
    pub(crate) fn patch(
        &mut self,
        collection: &CollectionPath,
        seq: u64,
        before: &StoredDoc,
        after: &StoredDoc,
    ) -> Vec<Value> {
        let patches = &mut self.patches;
        let this = |(c, s): &(String, u64)| *s == seq && c == collection.as_str();
        if !patches.commit.as_ref().is_some_and(this) {
            patches.commit = Some((collection.as_str().to_owned(), seq));
            patches.by_write.clear();
        }
        let key = self
            .hasher
            .hash_one((&after.id, before.version, after.version));
        match patches.by_write.get(&key) {
            Some((id, from, to, patch))
                if *id == after.id && *from == before.version && *to == after.version =>
            {
                patch.clone()
            }
            _ => {
                let patch = diff(&before.data, &after.data);
                let entry = (
                    after.id.clone(),
                    before.version,
                    after.version,
                    patch.clone(),
                );
                patches.by_write.insert(key, entry);
                patch
            }
        }
    }

    /// How many document versions are held by at least one view.
    pub fn len(&self) -> usize {
        self.by_collection
            .values()
            .flat_map(HashMap::values)
            .filter(|(w, _)| w.strong_count() > 0)
            .count()
    }

    /// Whether no view holds any body.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The estimated bytes of the bodies some view holds, each counted once.
    pub fn held_bytes(&mut self) -> usize {
        self.sweep();
        self.bytes
    }

    /// The estimated bytes of `doc`'s body (looked up when it is interned).
    pub fn size_of(&self, collection: &CollectionPath, doc: &StoredDoc) -> usize {
        self.by_collection
            .get(collection.as_str())
            .and_then(|held| held.get(&self.key(doc)))
            .filter(|(w, _)| std::ptr::eq(w.as_ptr(), doc))
            .map_or_else(|| body_bytes(doc), |(_, size)| *size)
    }

    fn key(&self, doc: &StoredDoc) -> u64 {
        self.hasher.hash_one((&doc.id, doc.version))
    }

    fn find(&self, collection: &CollectionPath, doc: &StoredDoc) -> Option<Arc<StoredDoc>> {
        self.by_collection
            .get(collection.as_str())?
            .get(&self.key(doc))?
            .0
            .upgrade()
            .filter(|held| held.id == doc.id && held.version == doc.version)
    }

    fn insert(&mut self, collection: &CollectionPath, body: Arc<StoredDoc>) -> Arc<StoredDoc> {
        let key = self.key(&body);
        let held = match self.by_collection.get_mut(collection.as_str()) {
            Some(held) => held,
            None => self
                .by_collection
                .entry(collection.as_str().to_owned())
                .or_default(),
        };
        match held.get(&key) {
            // Another live body with the same hash keeps its entry.
            Some((other, _)) if other.strong_count() > 0 => return body,
            _ => {}
        }
        let size = body_bytes(&body);
        self.bytes += size;
        if let Some((_, dead)) = held.insert(key, (Arc::downgrade(&body), size)) {
            self.bytes -= dead;
        }
        self.added += 1;
        if self.added > self.alive.max(1024) {
            self.sweep();
        }
        body
    }

    /// Drops the entries of bodies no view holds any more.
    fn sweep(&mut self) {
        let (mut alive, mut bytes) = (0, 0);
        self.by_collection.retain(|_, held| {
            held.retain(|_, (w, _)| w.strong_count() > 0);
            alive += held.len();
            bytes += held.values().map(|(_, size)| size).sum::<usize>();
            !held.is_empty()
        });
        self.alive = alive;
        self.bytes = bytes;
        self.added = 0;
    }
}

/// An estimate of the heap bytes of a document's body: its id, and each
/// value with the overhead of its node (keys and strings by their length).
fn body_bytes(doc: &StoredDoc) -> usize {
    fn value(v: &Value) -> usize {
        match v {
            Value::String(s) => 24 + s.len(),
            Value::Array(items) => 24 + items.iter().map(|i| 8 + value(i)).sum::<usize>(),
            Value::Object(map) => object(map),
            _ => 16,
        }
    }
    fn object(map: &Map<String, Value>) -> usize {
        48 + map
            .iter()
            .map(|(k, v)| 48 + k.len() + value(v))
            .sum::<usize>()
    }
    std::mem::size_of::<StoredDoc>() + 16 + doc.id.len() + object(&doc.data)
}

#[cfg(test)]
mod tests {
    use super::*;

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
