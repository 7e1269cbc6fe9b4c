//! [`Database`]: documents, atomic batches and queries over a [`Storage`].

use std::collections::{BTreeSet, HashMap};

use blaze_protocol::{
    CollectionPath, CommitResult, DocPath, DocSnapshot, ErrorCode, Limits, Precondition, Query,
    Write, WriteKind, WriteResult,
};
use serde_json::{Map, Value};

use crate::query::{count_query, run_query, CompiledQuery, HeldBound};
use blaze_json::budget::CommitBudget;
use blaze_json::merge::apply_merge_patch;
use blaze_json::patch::apply_json_patch_within;
use blaze_json::size::{check_document, object_len, serialized_len};

use crate::error::{Error, Rejection};
use crate::index::{self, IndexBounds};
use crate::rules::{Access, Asker, FetchedDocs, Step};
use crate::store::{
    CommitKey, CommitRecord, DocWrite, RememberedCommit, Storage, StorageBatch, StoredDoc,
};

/// A query's answer: the matching documents and the sequence number they are consistent with.
#[derive(Clone, Debug, PartialEq)]
pub struct QueryOutput {
    /// The collection's commit sequence number at the time of the query.
    pub seq: u64,
    /// The matching documents, in query order.
    pub docs: Vec<StoredDoc>,
}

/// How far back each collection's change log reaches: entries beyond either bound are dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChangeLogLimits {
    /// Most entries kept per collection.
    pub max_entries: u64,
    /// Oldest entry kept, in milliseconds before the latest commit's time.
    pub max_age_ms: u64,
}

impl Default for ChangeLogLimits {
    /// 10,000 commits and one hour, whichever is shorter.
    fn default() -> Self {
        Self {
            max_entries: 10_000,
            max_age_ms: 60 * 60 * 1000,
        }
    }
}

/// A successful commit: the wire answer and the change log entry it wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct Committed {
    /// The answer for the writer.
    pub result: CommitResult,
    /// Every document the commit wrote, before and after.
    pub record: CommitRecord,
}

/// What [`Database::commit_with_id`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum CommitOutcome {
    /// The batch was applied now.
    Applied(Committed),
    /// The commit id was remembered: the batch was applied before, so nothing
    /// was written now, and this is the original answer.
    Replayed(CommitResult),
}

impl CommitOutcome {
    /// The answer for the writer (the same for a commit and its retries).
    pub fn result(&self) -> &CommitResult {
        match self {
            Self::Applied(committed) => &committed.result,
            Self::Replayed(result) => result,
        }
    }
}

/// Whose batch a commit applies, checked against the access rules before
/// anything is written (spec 14.4).
pub(crate) struct Guard<'a> {
    pub(crate) access: &'a Access,
    pub(crate) identity: &'a blaze_protocol::Identity,
    /// The collection the object serves (`None`: every collection is local).
    pub(crate) local: Option<&'a CollectionPath>,
    pub(crate) fetched: &'a FetchedDocs,
}

/// One staged write's document, before and after it (kept only when a
/// [`Guard`] must see them).
type StepDocs = (Option<StoredDoc>, Option<StoredDoc>);

/// The document engine over one storage backend.
pub struct Database<S> {
    storage: S,
    limits: Limits,
    log_limits: ChangeLogLimits,
}

impl<S: Storage> Database<S> {
    /// An engine over `storage` enforcing `limits`.
    pub fn new(storage: S, limits: Limits) -> Self {
        Self {
            storage,
            limits,
            log_limits: ChangeLogLimits::default(),
        }
    }

    /// The same engine keeping change logs within `log_limits`.
    pub fn with_change_log(self, log_limits: ChangeLogLimits) -> Self {
        Self { log_limits, ..self }
    }

    /// The limits this engine enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The storage backend.
    pub fn storage(&self) -> &S {
        &self.storage
    }

    /// Reads one document by path.
    pub fn get(&self, path: &DocPath) -> Result<DocSnapshot, Error> {
        let collection = path.collection();
        Ok(match self.storage.get(&collection, path.id())? {
            Some(doc) => doc.snapshot(&collection),
            None => DocSnapshot {
                path: path.to_string(),
                exists: false,
                data: None,
                version: None,
                create_time: None,
                update_time: None,
                held: false,
            },
        })
    }

    /// Applies `writes` to documents of `collection` atomically at time `now`
    /// (milliseconds since the Unix epoch): all of them under one new sequence
    /// number, or none of them.
    pub fn commit(
        &mut self,
        collection: &CollectionPath,
        writes: &[Write],
        now: u64,
    ) -> Result<Committed, Error> {
        self.apply_batch(collection, writes, None, now, None, Apply::Yes)
            .map(|c| c.expect("applied"))
    }

    /// [`Database::commit`] with an optional client-chosen commit id, keyed
    /// by who sent it ([`CommitKey`]). When `collection` remembers a commit
    /// with this key (its change log still reaches back to it), nothing is written and the original answer comes
    /// back as [`CommitOutcome::Replayed`]; otherwise the batch is applied and,
    /// if it succeeds, its id and answer are remembered with its change log
    /// entry, and forgotten when the log is trimmed past it. A rejected commit
    /// is not remembered: a retry is evaluated anew.
    pub fn commit_with_id(
        &mut self,
        collection: &CollectionPath,
        writes: &[Write],
        commit_key: Option<&CommitKey>,
        now: u64,
    ) -> Result<CommitOutcome, Error> {
        self.commit_guarded(collection, writes, commit_key, now, None)
    }

    /// [`Database::commit_with_id`], with every write checked by `guard`'s
    /// rules once the whole batch is staged and before anything is applied.
    pub(crate) fn commit_guarded(
        &mut self,
        collection: &CollectionPath,
        writes: &[Write],
        commit_key: Option<&CommitKey>,
        now: u64,
        guard: Option<&Guard<'_>>,
    ) -> Result<CommitOutcome, Error> {
        if let Some(key) = commit_key {
            if let Some(result) = self.storage.remembered(collection, key)? {
                return Ok(CommitOutcome::Replayed(result));
            }
        }
        self.apply_batch(collection, writes, commit_key, now, guard, Apply::Yes)
            .map(|c| CommitOutcome::Applied(c.expect("applied")))
    }

    /// Checks `writes` as [`Database::commit_guarded`] would, limits and
    /// rules included, without writing anything.
    pub(crate) fn check_guarded(
        &mut self,
        collection: &CollectionPath,
        writes: &[Write],
        now: u64,
        guard: Option<&Guard<'_>>,
    ) -> Result<(), Error> {
        self.apply_batch(collection, writes, None, now, guard, Apply::No)
            .map(|_| ())
    }

    /// Checks and applies one batch; remembers `commit_key` with its answer.
    fn apply_batch(
        &mut self,
        collection: &CollectionPath,
        writes: &[Write],
        commit_key: Option<&CommitKey>,
        now: u64,
        guard: Option<&Guard<'_>>,
        apply: Apply,
    ) -> Result<Option<Committed>, Error> {
        if writes.is_empty() {
            return Err(
                Rejection::new(ErrorCode::EmptyBatch, "a batch needs at least one write").into(),
            );
        }
        if writes.len() > self.limits.max_batch_writes {
            let msg = format!(
                "{} writes, limit {}",
                writes.len(),
                self.limits.max_batch_writes
            );
            return Err(Rejection::new(ErrorCode::BatchTooLarge, msg).into());
        }
        let seq = self.storage.seq(collection)? + 1;
        let mut staged = Staged {
            keep: guard.is_some(),
            ..Staged::default()
        };
        let mut budget = CommitBudget::new(&self.limits);
        let mut results = Vec::with_capacity(writes.len());
        let mut steps: Option<Vec<StepDocs>> = guard.map(|_| Vec::with_capacity(writes.len()));
        for (index, write) in writes.iter().enumerate() {
            let staging = self.stage(collection, write, seq, now, &mut staged, &mut budget);
            let exists = match staging {
                Ok((exists, docs)) => {
                    if let Some(steps) = &mut steps {
                        steps.push(docs);
                    }
                    exists
                }
                Err(e) => {
                    let e = match e {
                        // The whole commit is too large, not one of its writes.
                        Error::Rejected(r) if r.code == ErrorCode::CommitTooLarge => {
                            Error::Rejected(r)
                        }
                        other => other.at_write(index),
                    };
                    return Err(match (guard, &e) {
                        (Some(guard), Error::Rejected(_)) => self.refused_under_rules(
                            guard, collection, writes, index, steps, staged, e, now,
                        ),
                        _ => e,
                    });
                }
            };
            results.push(WriteResult {
                id: write.id.clone(),
                exists,
            });
        }
        if let (Some(guard), Some(steps)) = (guard, &steps) {
            self.check_rules(guard, collection, writes, steps, &staged.docs, now)?;
        }
        if apply == Apply::No {
            return Ok(None);
        }
        let trim = self.log_trim_below(collection, seq, now)?;
        let bounds = IndexBounds::of(&self.limits);
        let mut commit = staged.into_commit(seq, now, trim, bounds, &mut budget)?;
        let record = commit.record.clone();
        let result = CommitResult {
            seq,
            time: now,
            writes: results,
        };
        commit.remember = commit_key.map(|key| RememberedCommit {
            key: key.clone(),
            result: result.clone(),
        });
        self.storage.apply(collection, commit)?;
        Ok(Some(Committed { result, record }))
    }

    /// Checks the staged writes `steps` (the first of `writes`) against the rules.
    fn check_rules(
        &self,
        guard: &Guard<'_>,
        collection: &CollectionPath,
        writes: &[Write],
        steps: &[StepDocs],
        staged: &HashMap<String, Option<StoredDoc>>,
        now: u64,
    ) -> Result<(), Error> {
        let steps: Vec<Step<'_>> = writes
            .iter()
            .zip(steps)
            .map(|(write, (before, after))| Step {
                write,
                before: before.as_ref(),
                after: after.as_ref(),
            })
            .collect();
        let asker = self.asker(guard, now);
        guard.access.allow_batch(&asker, collection, &steps, staged)
    }

    /// The error for a batch whose write `index` failed with `failure`: a
    /// denial of an earlier write first, then the failure itself if the
    /// writer may read the document it failed on, else `permission_denied`.
    #[allow(clippy::too_many_arguments)]
    fn refused_under_rules(
        &self,
        guard: &Guard<'_>,
        collection: &CollectionPath,
        writes: &[Write],
        index: usize,
        steps: Option<Vec<StepDocs>>,
        staged: Staged,
        failure: Error,
        now: u64,
    ) -> Error {
        let steps = steps.unwrap_or_default();
        if let Err(denied) = self.check_rules(guard, collection, writes, &steps, &staged.docs, now)
        {
            return denied;
        }
        let id = &writes[index].id;
        let Ok(path) = collection.doc(id) else {
            return failure; // an invalid id says nothing about stored documents
        };
        let before = staged.docs.get(id).and_then(Option::as_ref);
        guard
            .access
            .gate(&self.asker(guard, now), &path, before, failure, index)
    }

    fn asker<'a>(&'a self, guard: &'a Guard<'_>, now: u64) -> Asker<'a, S> {
        Asker {
            storage: &self.storage,
            local: guard.local,
            identity: guard.identity,
            now,
            fetched: guard.fetched,
        }
    }

    /// The lowest sequence number the change log keeps once commit `seq` at time `now` is in it.
    fn log_trim_below(
        &self,
        collection: &CollectionPath,
        seq: u64,
        now: u64,
    ) -> Result<u64, Error> {
        let by_count = (seq + 1).saturating_sub(self.log_limits.max_entries.max(1));
        let cutoff = now.saturating_sub(self.log_limits.max_age_ms);
        // The log holds every commit from its oldest entry to `seq - 1`, so when
        // none at or above `by_count` is recent enough, only the new one is kept.
        let below = self
            .storage
            .log_start(collection, by_count, cutoff)?
            .unwrap_or(seq);
        Ok(below.min(seq))
    }

    /// The change log entries of `collection` after sequence number `after`, oldest
    /// first; `None` when the log no longer reaches back that far (a reader must
    /// start again from a fresh snapshot).
    pub fn log_since(
        &self,
        collection: &CollectionPath,
        after: u64,
    ) -> Result<Option<Vec<CommitRecord>>, Error> {
        self.log_since_within(collection, after, usize::MAX)
    }

    /// [`Database::log_since`], reading at most `max_bytes` of documents
    /// (each entry's documents before and after, as compact JSON): `None`
    /// as soon as the entries pass it, before the rest are read.
    pub fn log_since_within(
        &self,
        collection: &CollectionPath,
        after: u64,
        max_bytes: usize,
    ) -> Result<Option<Vec<CommitRecord>>, Error> {
        let mut records = Vec::new();
        let mut bytes = 0usize;
        for record in self.storage.log(collection, after)? {
            let record = record?;
            bytes = bytes.saturating_add(record_bytes(&record));
            if bytes > max_bytes {
                return Ok(None);
            }
            records.push(record);
        }
        let current = self.storage.seq(collection)?;
        let reaches = match records.first() {
            Some(first) => first.seq == after + 1,
            None => after == current,
        };
        Ok(reaches.then_some(records))
    }

    /// Checks one write against the staged state and stages its result;
    /// returns whether the document exists after it, and (when the batch
    /// keeps them, for the rules) copies of the document before and after
    /// the write.
    fn stage(
        &self,
        collection: &CollectionPath,
        write: &Write,
        seq: u64,
        now: u64,
        staged: &mut Staged,
        budget: &mut CommitBudget,
    ) -> Result<(bool, StepDocs), Error> {
        let keep = staged.keep;
        collection.doc(&write.id).map_err(Rejection::from)?;
        let current = staged.current(&self.storage, collection, &write.id, budget)?;
        check_precondition(current, &write.precondition)?;
        let data = match &write.kind {
            WriteKind::Verify => {
                return Ok((current.is_some(), (current.cloned(), current.cloned())))
            }
            WriteKind::Create { data } => {
                if current.is_some() {
                    return Err(Rejection::new(
                        ErrorCode::AlreadyExists,
                        format!("{} exists", write.id),
                    )
                    .into());
                }
                budget.charge(serialized_len(data))?;
                Some(check_document(data.clone(), &self.limits)?)
            }
            WriteKind::Set { data } => {
                budget.charge(serialized_len(data))?;
                Some(check_document(data.clone(), &self.limits)?)
            }
            WriteKind::Patch { patch } => Some(apply_json_patch_within(
                &existing(current, &write.id)?.data,
                patch,
                &self.limits,
                budget,
            )?),
            WriteKind::Merge { patch } => {
                let doc = &existing(current, &write.id)?.data;
                budget.charge(object_len(doc).saturating_add(serialized_len(patch)))?;
                Some(apply_merge_patch(doc, patch, &self.limits)?)
            }
            WriteKind::Delete => None,
        };
        let next = data.map(|data| StoredDoc {
            id: write.id.clone(),
            data,
            version: seq,
            create_time: current.map_or(now, |d| d.create_time),
            update_time: now,
        });
        if let Some(doc) = &next {
            // The batch holds its own copy of every document it writes.
            budget.charge(object_len(&doc.data))?;
        }
        let exists = next.is_some();
        let docs = if keep {
            (current.cloned(), next.clone())
        } else {
            (None, None)
        };
        staged.written.insert(write.id.clone());
        staged.docs.insert(write.id.clone(), next);
        Ok((exists, docs))
    }

    /// Runs a query; an answer of more than `max_answer_bytes` of documents
    /// is refused with `answer_too_large` before it is all read.
    pub fn query(&self, query: &Query) -> Result<QueryOutput, Error> {
        let compiled = CompiledQuery::compile(query, &self.limits)?;
        let seq = self.storage.seq(&compiled.collection)?;
        let bound = HeldBound {
            bytes: self.limits.max_answer_bytes,
            code: ErrorCode::AnswerTooLarge,
        };
        let docs = run_query(&self.storage, &compiled, Some(bound))?;
        Ok(QueryOutput { seq, docs })
    }

    /// Counts a query's results from the indexes, loading a document only
    /// when its index entries cannot decide the filter; returns `(seq, count)`.
    pub fn count(&self, query: &Query) -> Result<(u64, u64), Error> {
        let compiled = CompiledQuery::compile(query, &self.limits)?;
        let seq = self.storage.seq(&compiled.collection)?;
        Ok((seq, count_query(&self.storage, &compiled)?))
    }
}

/// The bytes of the documents a change log entry holds, before and after.
fn record_bytes(record: &CommitRecord) -> usize {
    let doc = |d: &Option<StoredDoc>| d.as_ref().map_or(0, |d| d.id.len() + object_len(&d.data));
    record
        .docs
        .iter()
        .map(|w| doc(&w.before) + doc(&w.after))
        .sum()
}

/// The batch's view of the documents it touched: their state before the batch and now,
/// and which of them it wrote (a `verify` reads a document without writing it).
#[derive(Default)]
struct Staged {
    before: HashMap<String, Option<StoredDoc>>,
    docs: HashMap<String, Option<StoredDoc>>,
    written: BTreeSet<String>,
    /// Whether each write's document before and after it is kept (for the rules).
    keep: bool,
}

impl Staged {
    fn current<S: Storage>(
        &mut self,
        storage: &S,
        collection: &CollectionPath,
        id: &str,
        budget: &mut CommitBudget,
    ) -> Result<Option<&StoredDoc>, Error> {
        if !self.docs.contains_key(id) {
            let doc = storage.get(collection, id)?;
            let size: usize = doc.as_ref().map_or(0, |d| object_len(&d.data));
            // Loaded once, kept twice (before and current).
            budget.charge(size.saturating_mul(2))?;
            self.before.insert(id.to_owned(), doc.clone());
            self.docs.insert(id.to_owned(), doc);
        }
        Ok(self.docs.get(id).and_then(Option::as_ref))
    }

    fn into_commit(
        mut self,
        seq: u64,
        time: u64,
        log_trim_below: u64,
        bounds: IndexBounds,
        budget: &mut CommitBudget,
    ) -> Result<StorageBatch, Rejection> {
        let mut commit = StorageBatch {
            record: CommitRecord {
                seq,
                time,
                docs: Vec::new(),
            },
            log_trim_below,
            ..StorageBatch::default()
        };
        for id in std::mem::take(&mut self.written) {
            let before = self.before.remove(&id).flatten();
            let after = self.docs.remove(&id).flatten();
            index::diff_into(
                &id,
                before.as_ref().map(|d| &d.data),
                after.as_ref().map(|d| &d.data),
                bounds,
                &mut commit,
                budget,
            )?;
            match &after {
                Some(doc) => commit.puts.push(doc.clone()),
                None if before.is_some() => commit.deletes.push(id.clone()),
                None => {}
            }
            commit.record.docs.push(DocWrite { id, before, after });
        }
        Ok(commit)
    }
}

fn existing<'a>(current: Option<&'a StoredDoc>, id: &str) -> Result<&'a StoredDoc, Rejection> {
    current.ok_or_else(|| Rejection::new(ErrorCode::NotFound, format!("{id} does not exist")))
}

fn check_precondition(current: Option<&StoredDoc>, pre: &Precondition) -> Result<(), Rejection> {
    let failed = |msg: String| Err(Rejection::new(ErrorCode::PreconditionFailed, msg));
    if let Some(want) = pre.exists {
        if want != current.is_some() {
            return failed(format!("expected exists={want}"));
        }
    }
    if let Some(want) = pre.version {
        match current {
            Some(doc) if doc.version == want => {}
            Some(doc) => return failed(format!("expected version {want}, found {}", doc.version)),
            None => return failed(format!("expected version {want}, document does not exist")),
        }
    }
    Ok(())
}

/// The stored contents of every document of `collection`, keyed by id (for tests and tools).
pub fn collection_contents<S: Storage>(
    storage: &S,
    collection: &CollectionPath,
) -> Result<Map<String, Value>, Error> {
    let mut out = Map::new();
    for doc in storage.scan(
        collection,
        (std::ops::Bound::Unbounded, std::ops::Bound::Unbounded),
        false,
    )? {
        let doc = doc?;
        out.insert(doc.id, Value::Object(doc.data));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn coll(path: &str) -> CollectionPath {
        CollectionPath::parse(path).unwrap()
    }

    fn doc(path: &str) -> DocPath {
        DocPath::parse(path).unwrap()
    }
    use crate::store::MemoryStorage;
    use blaze_protocol::{CommitId, Identity};
    use serde_json::json;

    fn write(id: &str, kind: WriteKind) -> Write {
        Write {
            id: id.into(),
            kind,
            precondition: Precondition::default(),
        }
    }

    fn set(id: &str, data: Value) -> Write {
        write(id, WriteKind::Set { data })
    }

    #[test]
    fn versions_and_times_follow_commits() {
        let mut db = Database::new(MemoryStorage::new(), Limits::default());
        assert_eq!(
            db.commit(
                &coll("c"),
                &[set("a", json!({"n": 1})), set("b", json!({}))],
                10
            )
            .unwrap()
            .result
            .seq,
            1
        );
        let r = db
            .commit(&coll("c"), &[set("a", json!({"n": 2}))], 20)
            .unwrap();
        assert_eq!((r.result.seq, r.result.time), (2, 20));
        let a = db.get(&doc("c/a")).unwrap();
        assert_eq!(
            (a.version, a.create_time, a.update_time),
            (Some(2), Some(10), Some(20))
        );
        assert_eq!(db.get(&doc("c/b")).unwrap().version, Some(1));
        // Another collection has its own sequence.
        assert_eq!(
            db.commit(&coll("c/a/sub"), &[set("x", json!({}))], 30)
                .unwrap()
                .result
                .seq,
            1
        );
    }

    #[test]
    fn documents_near_the_size_limit_fit_the_default_commit_budget() {
        let mut db = Database::new(MemoryStorage::new(), Limits::default());
        let limit = Limits::default().max_document_bytes;
        // As many fields as fit: 3-letter keys, `"abc":0,` each.
        let letters: Vec<char> = ('a'..='z').chain('A'..='Z').chain('0'..='9').collect();
        let mut fields = serde_json::Map::new();
        'fill: for a in &letters {
            for b in &letters {
                for c in &letters {
                    if fields.len() * 8 + 16 >= limit {
                        break 'fill;
                    }
                    fields.insert(format!("{a}{b}{c}"), json!(0));
                }
            }
        }
        let many_fields = Value::Object(fields);
        let numbers = json!({"nums": vec![7; limit / 2 - 10]});
        for data in [many_fields, numbers] {
            db.commit(&coll("c"), &[set("d", data.clone())], 1).unwrap();
            // Replacing it reads the old one and both versions' index entries.
            let mut again = data;
            again["z"] = json!(1);
            db.commit(&coll("c"), &[set("d", again)], 2).unwrap();
        }
    }

    #[test]
    fn a_missing_document_reads_as_not_existing() {
        let db = Database::new(MemoryStorage::new(), Limits::default());
        let snap = db.get(&doc("c/nope")).unwrap();
        assert!(!snap.exists && snap.data.is_none() && snap.version.is_none());
        let not_a_doc = Rejection::from(DocPath::parse("c").unwrap_err());
        assert_eq!(not_a_doc.code, ErrorCode::InvalidPath);
    }

    #[test]
    fn delete_then_set_in_one_batch_recreates_with_a_new_create_time() {
        let mut db = Database::new(MemoryStorage::new(), Limits::default());
        db.commit(&coll("c"), &[set("a", json!({}))], 1).unwrap();
        let r = db
            .commit(
                &coll("c"),
                &[write("a", WriteKind::Delete), set("a", json!({"v": 1}))],
                5,
            )
            .unwrap();
        assert_eq!(
            r.result.writes.iter().map(|w| w.exists).collect::<Vec<_>>(),
            [false, true]
        );
        assert_eq!(db.get(&doc("c/a")).unwrap().create_time, Some(5));
    }

    #[test]
    fn a_failed_batch_reports_its_write_and_changes_nothing() {
        let mut db = Database::new(MemoryStorage::new(), Limits::default());
        db.commit(&coll("c"), &[set("a", json!({"n": 1}))], 1)
            .unwrap();
        let bad = [
            set("b", json!({})),
            write(
                "a",
                WriteKind::Patch {
                    patch: json!([{"op": "test", "path": "/n", "value": 2}]),
                },
            ),
        ];
        let err = db.commit(&coll("c"), &bad, 2).unwrap_err();
        assert_eq!(
            (err.code(), err.to_body().write_index),
            (ErrorCode::PatchTestFailed, Some(1))
        );
        assert!(!db.get(&doc("c/b")).unwrap().exists);
        assert_eq!(
            db.storage()
                .seq(&CollectionPath::parse("c").unwrap())
                .unwrap(),
            1
        );
    }

    fn seqs(db: &Database<MemoryStorage>, after: u64) -> Option<Vec<u64>> {
        db.log_since(&coll("c"), after)
            .unwrap()
            .map(|l| l.iter().map(|r| r.seq).collect())
    }

    #[test]
    fn the_change_log_is_bounded_by_count() {
        let log = ChangeLogLimits {
            max_entries: 3,
            max_age_ms: u64::MAX,
        };
        let mut db = Database::new(MemoryStorage::new(), Limits::default()).with_change_log(log);
        assert_eq!(seqs(&db, 0), Some(vec![]));
        for t in 1..=5 {
            db.commit(&coll("c"), &[set("a", json!({ "t": t }))], t)
                .unwrap();
        }
        assert_eq!(seqs(&db, 2), Some(vec![3, 4, 5]));
        assert_eq!(seqs(&db, 4), Some(vec![5]));
        assert_eq!(seqs(&db, 5), Some(vec![]));
        // Seq 2 is gone: a reader at 1 cannot catch up and must reset.
        assert_eq!(seqs(&db, 1), None);
        assert_eq!(seqs(&db, 0), None);
    }

    #[test]
    fn the_change_log_is_bounded_by_age_but_keeps_the_latest_commit() {
        let log = ChangeLogLimits {
            max_entries: 100,
            max_age_ms: 10,
        };
        let mut db = Database::new(MemoryStorage::new(), Limits::default()).with_change_log(log);
        for t in [0, 5, 12, 14] {
            db.commit(&coll("c"), &[set("a", json!({}))], t).unwrap();
        }
        // At time 14 entries older than 4 are dropped: seq 1 (time 0) goes, seq 2 (time 5) stays.
        assert_eq!(seqs(&db, 1), Some(vec![2, 3, 4]));
        assert_eq!(seqs(&db, 0), None);
        db.commit(&coll("c"), &[set("a", json!({}))], 1_000)
            .unwrap();
        assert_eq!(seqs(&db, 4), Some(vec![5]));
        assert_eq!(seqs(&db, 3), None);
    }

    fn id(text: &str) -> CommitKey {
        CommitKey::new(&CommitId::parse(text).unwrap(), &Identity::Anonymous)
    }

    fn tags(db: &Database<MemoryStorage>) -> Value {
        db.get(&doc("c/a")).unwrap().data.unwrap()["tags"].clone()
    }

    #[test]
    fn a_remembered_commit_id_answers_the_original_outcome_and_writes_nothing() {
        let mut db = Database::new(MemoryStorage::new(), Limits::default());
        db.commit(&coll("c"), &[set("a", json!({"tags": []}))], 1)
            .unwrap();
        let push = [write(
            "a",
            WriteKind::Patch {
                patch: json!([{"op": "add", "path": "/tags/-", "value": "x"}]),
            },
        )];
        let first = db
            .commit_with_id(&coll("c"), &push, Some(&id("k1")), 2)
            .unwrap();
        let CommitOutcome::Applied(applied) = &first else {
            panic!("the first commit is applied: {first:?}");
        };
        let again = db
            .commit_with_id(&coll("c"), &push, Some(&id("k1")), 3)
            .unwrap();
        assert_eq!(again, CommitOutcome::Replayed(applied.result.clone()));
        assert_eq!(tags(&db), json!(["x"]));
        assert_eq!(seqs(&db, 1), Some(vec![2]), "the retry logged nothing");
        // Ids are per collection, and another id is another commit.
        assert!(matches!(
            db.commit_with_id(&coll("c/a/sub"), &[set("s", json!({}))], Some(&id("k1")), 4),
            Ok(CommitOutcome::Applied(_))
        ));
        db.commit_with_id(&coll("c"), &push, Some(&id("k2")), 5)
            .unwrap();
        assert_eq!(tags(&db), json!(["x", "x"]));
        // So is the same id sent by another caller: it is hers, not a retry.
        let hers = CommitKey::new(&CommitId::parse("k1").unwrap(), &user("mallory"));
        let as_hers = db
            .commit_with_id(&coll("c"), &push, Some(&hers), 6)
            .unwrap();
        assert!(matches!(as_hers, CommitOutcome::Applied(_)), "{as_hers:?}");
        assert_eq!(tags(&db), json!(["x", "x", "x"]));
        let admin = CommitKey::new(&CommitId::parse("k1").unwrap(), &Identity::Admin);
        assert!(matches!(
            db.commit_with_id(&coll("c"), &push, Some(&admin), 7),
            Ok(CommitOutcome::Applied(_))
        ));
        // And each caller's retry is answered with her own commit.
        let again = db
            .commit_with_id(&coll("c"), &push, Some(&hers), 8)
            .unwrap();
        assert_eq!(again, CommitOutcome::Replayed(as_hers.result().clone()));
        assert_eq!(tags(&db), json!(["x", "x", "x", "x"]));
    }

    /// A database whose answers may carry 1,000 bytes, with ten documents of
    /// about 300 bytes: all with `n` = 1, `tag` "x" on the last five.
    fn ten_big_documents() -> Database<MemoryStorage> {
        let limits = Limits {
            max_answer_bytes: 1000,
            ..Limits::default()
        };
        let mut db = Database::new(MemoryStorage::new(), limits);
        let writes: Vec<Write> = (0..10)
            .map(|i| {
                let tag = if i >= 5 { "x" } else { "y" };
                set(
                    &format!("d{i}"),
                    json!({"n": 1, "tag": tag, "pad": "p".repeat(270)}),
                )
            })
            .collect();
        db.commit(&coll("c"), &writes, 1).unwrap();
        db
    }

    fn query(value: Value) -> Query {
        serde_json::from_value(value).unwrap()
    }

    fn ids(db: &Database<MemoryStorage>, q: Value) -> Result<Vec<String>, ErrorCode> {
        let out = db.query(&query(q)).map_err(|e| e.code())?;
        Ok(out.docs.into_iter().map(|d| d.id).collect())
    }

    #[test]
    fn an_answer_past_max_answer_bytes_is_refused_and_a_limit_pages_it() {
        let db = ten_big_documents();
        assert_eq!(
            ids(&db, json!({"collection": "c"})),
            Err(ErrorCode::AnswerTooLarge)
        );
        assert_eq!(
            ids(
                &db,
                json!({"collection": "c", "where": {"field": "n", "op": "==", "value": 1}})
            ),
            Err(ErrorCode::AnswerTooLarge)
        );
        assert_eq!(
            ids(&db, json!({"collection": "c", "limit": 3})),
            Ok(vec!["d0".into(), "d1".into(), "d2".into()])
        );
        let next = json!({"collection": "c", "order_by": [{"field": "__name__"}],
                          "start_after": ["d2"], "limit": 3});
        assert_eq!(
            ids(&db, next),
            Ok(vec!["d3".into(), "d4".into(), "d5".into()])
        );
        // Counting holds no document: no bound.
        let all = query(json!({"collection": "c"}));
        assert_eq!(db.count(&all).unwrap().1, 10);
        let after = query(
            json!({"collection": "c", "order_by": [{"field": "__name__"}], "start_after": ["d0"]}),
        );
        assert_eq!(db.count(&after).unwrap().1, 9);
    }

    #[test]
    fn documents_waiting_to_be_ordered_are_held_as_sort_keys_not_as_documents() {
        let db = ten_big_documents();
        // Ten documents tie on `n`: the ordered scan sorts the whole group
        // (3,000 bytes of documents) and keeps two.
        let tied = json!({"collection": "c", "order_by": [{"field": "n", "direction": "desc"}], "limit": 2});
        assert_eq!(ids(&db, tied), Ok(vec!["d9".into(), "d8".into()]));
        // Five candidates of `tag == "x"` (1,500 bytes) ordered by `n`.
        let candidates = json!({"collection": "c", "where": {"field": "tag", "op": "==", "value": "x"},
                                "order_by": [{"field": "n"}], "limit": 2});
        assert_eq!(ids(&db, candidates), Ok(vec!["d5".into(), "d6".into()]));
        let last = json!({"collection": "c", "where": {"field": "tag", "op": "==", "value": "x"},
                          "order_by": [{"field": "n"}], "limit_to_last": 2});
        assert_eq!(ids(&db, last), Ok(vec!["d8".into(), "d9".into()]));
    }

    fn user(uid: &str) -> Identity {
        Identity::User {
            uid: uid.to_owned(),
            claims: Map::new(),
        }
    }

    #[test]
    fn a_rejected_commit_is_not_remembered() {
        let mut db = Database::new(MemoryStorage::new(), Limits::default());
        let create = [write(
            "a",
            WriteKind::Patch {
                patch: json!([{"op": "add", "path": "/n", "value": 1}]),
            },
        )];
        let err = db
            .commit_with_id(&coll("c"), &create, Some(&id("k")), 1)
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::NotFound);
        db.commit(&coll("c"), &[set("a", json!({}))], 2).unwrap();
        let retry = db
            .commit_with_id(&coll("c"), &create, Some(&id("k")), 3)
            .unwrap();
        assert!(matches!(retry, CommitOutcome::Applied(_)), "{retry:?}");
        assert_eq!(db.get(&doc("c/a")).unwrap().data.unwrap()["n"], 1);
    }

    #[test]
    fn a_commit_id_is_forgotten_when_the_change_log_is_trimmed_past_it() {
        let log = ChangeLogLimits {
            max_entries: 2,
            max_age_ms: u64::MAX,
        };
        let mut db = Database::new(MemoryStorage::new(), Limits::default()).with_change_log(log);
        let once = |db: &mut Database<MemoryStorage>, t| {
            db.commit_with_id(
                &coll("c"),
                &[set("a", json!({ "t": t }))],
                Some(&id("k")),
                t,
            )
            .unwrap()
        };
        assert!(matches!(once(&mut db, 1), CommitOutcome::Applied(_)));
        db.commit(&coll("c"), &[set("b", json!({}))], 2).unwrap();
        // The log holds seqs 1 and 2: the id is still remembered.
        assert!(matches!(once(&mut db, 3), CommitOutcome::Replayed(r) if r.seq == 1));
        db.commit(&coll("c"), &[set("b", json!({}))], 4).unwrap();
        // Seq 1 left the log, and its id with it: a retry now is a new commit.
        assert_eq!(seqs(&db, 0), None);
        assert!(matches!(once(&mut db, 5), CommitOutcome::Applied(c) if c.result.seq == 4));
    }
}

/// Whether a checked batch is written ([`Database::check_guarded`] only checks).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Apply {
    Yes,
    No,
}
