//! Transactions: read documents, then write with version preconditions;
//! retried on conflict, as Firestore's clients do.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use blaze_protocol::WriteKind;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::refs::{fields_to_merge_patch, DocRef};
use crate::snapshot::DocumentSnapshot;
use crate::{Blaze, Error};

/// How many times [`Blaze::run_transaction`] runs a transaction that keeps conflicting.
pub const TRANSACTION_ATTEMPTS: u32 = 5;

/// The reads and buffered writes of one transaction attempt. Cheap to clone.
///
/// All of a transaction's documents must be in one collection (one commit is
/// atomic within one collection). Reads come before writes.
#[derive(Clone)]
pub struct Transaction {
    state: Arc<Mutex<TxState>>,
}

#[derive(Default)]
struct TxState {
    collection: Option<String>,
    /// Document path -> version read (`None`: it did not exist).
    reads: BTreeMap<String, Option<u64>>,
    writes: Vec<(DocRef, WriteKind)>,
}

impl TxState {
    fn claim(&mut self, doc: &DocRef) -> Result<(), Error> {
        let collection = doc.parent().path().to_owned();
        match &self.collection {
            Some(c) if *c != collection => Err(Error::Usage(format!(
                "a transaction works in one collection; {} is not in {c}",
                doc.path()
            ))),
            _ => {
                self.collection = Some(collection);
                Ok(())
            }
        }
    }
}

impl Transaction {
    fn lock(&self) -> std::sync::MutexGuard<'_, TxState> {
        self.state.lock().expect("transaction state")
    }

    /// Reads a document; the commit then requires it to be unchanged.
    pub async fn get<T: DeserializeOwned>(
        &self,
        doc: &DocRef,
    ) -> Result<DocumentSnapshot<T>, Error> {
        {
            let mut state = self.lock();
            if !state.writes.is_empty() {
                return Err(Error::Usage("a transaction reads before it writes".into()));
            }
            state.claim(doc)?;
        }
        let snapshot = doc.get::<Value>().await?;
        self.lock()
            .reads
            .entry(doc.path().to_owned())
            .or_insert(snapshot.version.filter(|_| snapshot.exists()));
        snapshot.decode()
    }

    fn write(&self, doc: &DocRef, kind: WriteKind) -> Result<(), Error> {
        let mut state = self.lock();
        state.claim(doc)?;
        state.writes.push((doc.clone(), kind));
        Ok(())
    }

    /// Buffers a create.
    pub fn create<T: Serialize>(&self, doc: &DocRef, data: &T) -> Result<(), Error> {
        let data = serde_json::to_value(data)?;
        self.write(doc, WriteKind::Create { data })
    }

    /// Buffers a set.
    pub fn set<T: Serialize>(&self, doc: &DocRef, data: &T) -> Result<(), Error> {
        let data = serde_json::to_value(data)?;
        self.write(doc, WriteKind::Set { data })
    }

    /// Buffers a JSON Patch.
    pub fn patch(&self, doc: &DocRef, operations: Vec<Value>) -> Result<(), Error> {
        let patch = Value::Array(operations);
        self.write(doc, WriteKind::Patch { patch })
    }

    /// Buffers a merge patch.
    pub fn merge<T: Serialize>(&self, doc: &DocRef, patch: &T) -> Result<(), Error> {
        let patch = serde_json::to_value(patch)?;
        self.write(doc, WriteKind::Merge { patch })
    }

    /// Buffers setting fields by path (see [`DocRef::update`]).
    pub fn update<'a>(
        &self,
        doc: &DocRef,
        fields: impl IntoIterator<Item = (&'a str, Value)>,
    ) -> Result<(), Error> {
        let patch = fields_to_merge_patch(fields)?;
        self.write(doc, WriteKind::Merge { patch })
    }

    /// Buffers a delete.
    pub fn delete(&self, doc: &DocRef) -> Result<(), Error> {
        self.write(doc, WriteKind::Delete)
    }

    /// Commits the buffered writes. The first write to each document read
    /// carries the version read (or "must not exist"); each document read and
    /// not written is committed as a `verify`. A transaction with no writes
    /// commits nothing.
    async fn commit(self, db: &Blaze) -> Result<(), Error> {
        let (reads, writes) = {
            let mut state = self.lock();
            (
                std::mem::take(&mut state.reads),
                std::mem::take(&mut state.writes),
            )
        };
        if writes.is_empty() {
            return Ok(());
        }
        let guarded = |doc: &DocRef, version: Option<u64>| match version {
            Some(version) => doc.clone().if_version(version),
            None => doc.clone().if_exists(false),
        };
        let mut batch = db.batch();
        let mut first_write = BTreeSet::new();
        for (doc, kind) in writes {
            let doc = match reads.get(doc.path()) {
                Some(version) if first_write.insert(doc.path().to_owned()) => {
                    guarded(&doc, *version)
                }
                _ => doc,
            };
            batch.push(&doc, kind);
        }
        for (path, version) in &reads {
            if !first_write.contains(path) {
                batch.verify(&guarded(&db.doc(path), *version));
            }
        }
        batch.commit().await.map(drop)
    }
}

impl Blaze {
    /// Runs `body` as a transaction: its reads pin the versions it saw, and
    /// its writes commit atomically only if none of those documents changed
    /// meanwhile. On a conflict it runs `body` again, up to
    /// [`TRANSACTION_ATTEMPTS`] times, then fails with
    /// [`Error::TransactionContention`]. `body` may therefore run more than
    /// once: keep side effects out of it.
    ///
    /// ```no_run
    /// # async fn demo(db: blaze_client::Blaze) -> Result<(), blaze_client::Error> {
    /// let counter = db.doc("counters/visits");
    /// let n = db.run_transaction(|tx| {
    ///     let counter = counter.clone();
    ///     async move {
    ///         let seen = tx.get::<serde_json::Value>(&counter).await?;
    ///         let n = seen.data.map_or(0, |d| d["n"].as_u64().unwrap_or(0)) + 1;
    ///         tx.set(&counter, &serde_json::json!({"n": n}))?;
    ///         Ok(n)
    ///     }
    /// }).await?;
    /// println!("visit number {n}");
    /// # Ok(()) }
    /// ```
    pub async fn run_transaction<T, F, Fut>(&self, mut body: F) -> Result<T, Error>
    where
        F: FnMut(Transaction) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = Transaction {
                state: Arc::new(Mutex::new(TxState::default())),
            };
            let value = body(tx.clone()).await?;
            match tx.commit(self).await {
                Ok(()) => return Ok(value),
                Err(e) if e.is_conflict() && attempt < TRANSACTION_ATTEMPTS => {
                    let pause = Duration::from_millis(10 * u64::from(attempt));
                    tokio::time::sleep(pause.mul_f64(fastrand::f64() + 0.5)).await;
                }
                Err(e) if e.is_conflict() => {
                    return Err(Error::TransactionContention {
                        attempts: attempt,
                        last: Box::new(e),
                    })
                }
                Err(e) => return Err(e),
            }
        }
    }
}
