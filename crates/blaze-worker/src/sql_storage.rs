//! [`SqlStore`]: the engine's [`Storage`] over a Durable Object's SQLite
//! database. Reads are lazy cursors (a racing query plan stops early); a
//! commit runs every statement inside one `transactionSync`, so it is all
//! or nothing, and the output gate holds every answer until it is durable.
//! Inside the object's group transaction ([`transaction_sync`]) that
//! `transactionSync` is a savepoint, and the group is one durable commit.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::rc::Rc;

use blaze_core::{
    CommitKey, CommitRecord, DocIter, DocWrite, EntryIter, KeyRange, LogIter, SavedListener,
    SavedSession, Storage, StorageBatch, StorageError, StoredDoc,
};
use blaze_protocol::stored::{
    join_key_parts, key_parts, StoredDocument, StoredListener, StoredListenerPart, StoredSession,
};
use blaze_protocol::{CollectionPath, CommitResult, Identity};
use serde_json::{Map, Value};

use crate::resumable::Resumable;
use wasm_bindgen::{closure::Closure, JsCast, JsValue};
use worker::{SqlCursorRawIterator, SqlStorage, SqlStorageValue as V};

/// The tables; `CREATE ... IF NOT EXISTS`, so opening is idempotent.
const SCHEMA: [&str; 12] = [
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS seqs (collection TEXT PRIMARY KEY, seq INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS docs (collection TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL, \
     version INTEGER NOT NULL, create_time INTEGER NOT NULL, update_time INTEGER NOT NULL, \
     PRIMARY KEY (collection, id)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS entries (collection TEXT NOT NULL, idx TEXT NOT NULL, key BLOB NOT NULL, \
     id TEXT NOT NULL, PRIMARY KEY (collection, idx, key, id)) WITHOUT ROWID",
    // One row per document side of a change (a 1 MiB document before and
    // after would not fit the 2 MB row limit together).
    "CREATE TABLE IF NOT EXISTS log (collection TEXT NOT NULL, seq INTEGER NOT NULL, time INTEGER NOT NULL, \
     pos INTEGER NOT NULL, side INTEGER NOT NULL, id TEXT NOT NULL, doc TEXT, \
     PRIMARY KEY (collection, seq, pos, side)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS sessions (conn INTEGER PRIMARY KEY, state TEXT NOT NULL)",
    // Commit ids with the answer a retry gets (the `committed` result as
    // JSON), trimmed with the log by `seq`; added after the first release,
    // so a database from before simply gains the empty table. `id` is the
    // commit key (`CommitKey`: the id and who sent it); a row from before
    // keys were per caller holds the bare id, matches no key, and leaves
    // with its log entry.
    "CREATE TABLE IF NOT EXISTS commit_ids (collection TEXT NOT NULL, id TEXT NOT NULL, seq INTEGER NOT NULL, \
     result TEXT NOT NULL, PRIMARY KEY (collection, id)) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS commit_ids_by_seq ON commit_ids (collection, seq)",
    // A connection's listeners, one listener per `(conn, rid)` and its key
    // in parts (`key_parts`), so no session outgrows the 2 MB row limit;
    // `sessions` keeps the handshake flag (and, in databases from before
    // this table, the listeners too, moved here when read).
    "CREATE TABLE IF NOT EXISTS listeners (conn INTEGER NOT NULL, rid INTEGER NOT NULL, part INTEGER NOT NULL, \
     target INTEGER NOT NULL, key TEXT NOT NULL, PRIMARY KEY (conn, rid, part)) WITHOUT ROWID",
    // Unfinished resumable uploads of the folder (spec 15.7): the record
    // as JSON (`resumable::Resumable`), and the R2 etag of each stored part.
    "CREATE TABLE IF NOT EXISTS uploads (id TEXT PRIMARY KEY, record TEXT NOT NULL, \
     key TEXT NOT NULL, expires INTEGER NOT NULL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS uploads_by_key ON uploads (key)",
    "CREATE TABLE IF NOT EXISTS upload_parts (id TEXT NOT NULL, part INTEGER NOT NULL, \
     etag TEXT NOT NULL, PRIMARY KEY (id, part)) WITHOUT ROWID",
];

/// A Durable Object's SQLite storage, as the engine's [`Storage`].
pub struct SqlStore {
    storage: worker::Storage,
    sql: SqlStorage,
    /// Each collection's sequence number, read once, then kept in step by `commit`.
    seqs: RefCell<HashMap<String, u64>>,
    /// Rows handed out by queries so far: the work meter that ends a group.
    read: Rc<Cell<u64>>,
}

/// A query's rows, each counted into its store's [`SqlStore::rows_read`].
struct Counted {
    rows: SqlCursorRawIterator,
    read: Rc<Cell<u64>>,
}

impl Iterator for Counted {
    type Item = worker::Result<Vec<V>>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.rows.next()?;
        self.read.set(self.read.get() + 1);
        Some(row)
    }
}

fn failed(e: impl std::fmt::Display) -> StorageError {
    StorageError(format!("sqlite: {e}"))
}

fn int(v: u64) -> V {
    V::Integer(v as i64)
}

fn text(v: &str) -> V {
    V::String(v.to_owned())
}

fn as_u64(v: &V) -> Result<u64, StorageError> {
    match v {
        V::Integer(i) => Ok(*i as u64),
        V::Float(f) => Ok(*f as u64),
        other => Err(failed(format!("expected an integer, found {other:?}"))),
    }
}

fn as_text(v: &V) -> Result<&str, StorageError> {
    match v {
        V::String(s) => Ok(s),
        other => Err(failed(format!("expected text, found {other:?}"))),
    }
}

/// `column` within `range`, as SQL conditions and their bindings.
fn bounds(column: &str, range: (Bound<V>, Bound<V>), sql: &mut String, binds: &mut Vec<V>) {
    let (low, high) = range;
    for (bound, inclusive, exclusive) in [(low, ">=", ">"), (high, "<=", "<")] {
        match bound {
            Bound::Included(v) => {
                sql.push_str(&format!(" AND {column} {inclusive} ?"));
                binds.push(v);
            }
            Bound::Excluded(v) => {
                sql.push_str(&format!(" AND {column} {exclusive} ?"));
                binds.push(v);
            }
            Bound::Unbounded => {}
        }
    }
}

/// `SELECT <columns>` of the entries of `index` with keys in `range`, and its bindings.
fn entries_in(
    columns: &str,
    collection: &CollectionPath,
    index: &str,
    range: KeyRange,
) -> (String, Vec<V>) {
    let mut sql = format!("SELECT {columns} FROM entries WHERE collection = ? AND idx = ?");
    let mut binds = vec![text(&collection.to_string()), text(index)];
    bounds(
        "key",
        (range.0.map(V::Blob), range.1.map(V::Blob)),
        &mut sql,
        &mut binds,
    );
    (sql, binds)
}

/// A stored document's JSON form in the change log.
fn doc_json(doc: &StoredDoc) -> Result<String, StorageError> {
    let stored = StoredDocument {
        create_time: doc.create_time,
        data: doc.data.clone(),
        update_time: doc.update_time,
        version: doc.version,
    };
    serde_json::to_string(&stored).map_err(failed)
}

fn saved_listener(StoredListener(rid, target, key): StoredListener) -> SavedListener {
    SavedListener { rid, target, key }
}

fn parse_data(data: &str) -> Result<Map<String, Value>, StorageError> {
    serde_json::from_str(data).map_err(failed)
}

fn doc_from_json(id: &str, text: &str) -> Result<StoredDoc, StorageError> {
    let stored: StoredDocument = serde_json::from_str(text).map_err(failed)?;
    Ok(StoredDoc {
        id: id.to_owned(),
        data: stored.data,
        version: stored.version,
        create_time: stored.create_time,
        update_time: stored.update_time,
    })
}

impl SqlStore {
    /// Opens the object's database, creating the tables on first use.
    pub fn open(storage: worker::Storage) -> Result<Self, StorageError> {
        let store = Self {
            sql: storage.sql(),
            storage,
            seqs: RefCell::new(HashMap::new()),
            read: Rc::new(Cell::new(0)),
        };
        for statement in SCHEMA {
            store.exec(statement, Vec::new())?;
        }
        Ok(store)
    }

    fn exec(&self, query: &str, binds: Vec<V>) -> Result<(), StorageError> {
        // Stepping the cursor to its end runs the statement.
        self.rows(query, binds)?.for_each(drop);
        Ok(())
    }

    fn rows(&self, query: &str, binds: Vec<V>) -> Result<Counted, StorageError> {
        let rows = self.sql.exec(query, binds).map_err(failed)?.raw();
        let read = self.read.clone();
        Ok(Counted { rows, read })
    }

    /// How many rows queries have read from this store so far (a meter of
    /// work: the caller compares two readings).
    pub fn rows_read(&self) -> u64 {
        self.read.get()
    }

    /// A value of the `meta` table.
    pub fn meta(&self, key: &str) -> Result<Option<String>, StorageError> {
        let row = self
            .rows("SELECT value FROM meta WHERE key = ?", vec![text(key)])?
            .next();
        match row {
            Some(row) => Ok(Some(as_text(&row.map_err(failed)?[0])?.to_owned())),
            None => Ok(None),
        }
    }

    /// Sets a value of the `meta` table.
    pub fn set_meta(&self, key: &str, value: &str) -> Result<(), StorageError> {
        self.exec(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            vec![text(key), text(value)],
        )
    }

    /// Records a resumable upload.
    pub fn put_upload(&self, upload: &Resumable) -> Result<(), StorageError> {
        let record = serde_json::to_string(upload).map_err(failed)?;
        self.exec(
            "INSERT INTO uploads (id, record, key, expires) VALUES (?, ?, ?, ?)",
            vec![
                text(&upload.id),
                text(&record),
                text(&upload.key),
                int(upload.expires),
            ],
        )
    }

    /// How many unfinished uploads `owner` has recorded here.
    pub fn open_uploads(&self, owner: &str) -> Result<u64, StorageError> {
        let query = "SELECT COUNT(*) FROM uploads WHERE json_extract(record, '$.owner') = ?";
        match self.rows(query, vec![text(owner)])?.next() {
            Some(row) => as_u64(&row.map_err(failed)?[0]),
            None => Ok(0),
        }
    }

    /// The resumable upload `id`, if it is recorded.
    pub fn upload(&self, id: &str) -> Result<Option<Resumable>, StorageError> {
        let query = "SELECT record FROM uploads WHERE id = ?";
        let Some(row) = self.rows(query, vec![text(id)])?.next() else {
            return Ok(None);
        };
        let record = as_text(&row.map_err(failed)?[0])?.to_owned();
        serde_json::from_str(&record).map(Some).map_err(failed)
    }

    /// The stored parts of upload `id` with their R2 etags, in order.
    pub fn upload_parts(&self, id: &str) -> Result<Vec<(u16, String)>, StorageError> {
        let query = "SELECT part, etag FROM upload_parts WHERE id = ? ORDER BY part";
        let mut parts = Vec::new();
        for row in self.rows(query, vec![text(id)])? {
            let row = row.map_err(failed)?;
            parts.push((as_u64(&row[0])? as u16, as_text(&row[1])?.to_owned()));
        }
        Ok(parts)
    }

    /// Records part `part` of upload `id` (the last stored wins).
    pub fn put_part(&self, id: &str, part: u16, etag: &str) -> Result<(), StorageError> {
        self.exec(
            "INSERT OR REPLACE INTO upload_parts (id, part, etag) VALUES (?, ?, ?)",
            vec![text(id), int(u64::from(part)), text(etag)],
        )
    }

    /// Forgets upload `id` and its parts.
    pub fn delete_upload(&self, id: &str) -> Result<(), StorageError> {
        self.exec("DELETE FROM upload_parts WHERE id = ?", vec![text(id)])?;
        self.exec("DELETE FROM uploads WHERE id = ?", vec![text(id)])
    }

    /// The uploads expired at `now`, and the earliest expiry of the others.
    pub fn expired_uploads(&self, now: u64) -> Result<(Vec<Resumable>, Option<u64>), StorageError> {
        let mut expired = Vec::new();
        let query = "SELECT record FROM uploads WHERE expires <= ?";
        for row in self.rows(query, vec![int(now)])? {
            let record = as_text(&row.map_err(failed)?[0])?.to_owned();
            expired.push(serde_json::from_str(&record).map_err(failed)?);
        }
        let query = "SELECT MIN(expires) FROM uploads WHERE expires > ?";
        let next = match self.rows(query, vec![int(now)])?.next() {
            Some(row) => match &row.map_err(failed)?[0] {
                V::Null => None,
                v => Some(as_u64(v)?),
            },
            None => None,
        };
        Ok((expired, next))
    }

    /// Whether an unfinished upload will store its file under `key`.
    pub fn upload_names(&self, key: &str) -> Result<bool, StorageError> {
        let query = "SELECT 1 FROM uploads WHERE key = ? LIMIT 1";
        Ok(self.rows(query, vec![text(key)])?.next().is_some())
    }

    /// Every saved connection session. Sessions saved before the
    /// `listeners` table (their listeners inside the `sessions` row) are
    /// moved into it first.
    pub fn sessions(&self) -> Result<Vec<(u64, SavedSession)>, StorageError> {
        let mut sessions: BTreeMap<u64, SavedSession> = BTreeMap::new();
        let mut legacy = Vec::new();
        for row in self.rows("SELECT conn, state FROM sessions", Vec::new())? {
            let row = row.map_err(failed)?;
            let conn = as_u64(&row[0])?;
            let state: StoredSession = serde_json::from_str(as_text(&row[1])?).map_err(failed)?;
            let listeners: Vec<SavedListener> =
                state.listeners.into_iter().map(saved_listener).collect();
            let session = SavedSession {
                open: state.open,
                identity: state.identity.unwrap_or(Identity::Anonymous),
                network: state.network,
                expires: state.expires,
                held_docs: state.held_docs,
                listeners,
                waiting: state.waiting,
            };
            if !session.listeners.is_empty() {
                legacy.push((conn, session.clone()));
            }
            sessions.insert(conn, session);
        }
        let mut parts: BTreeMap<u64, Vec<StoredListenerPart>> = BTreeMap::new();
        let rows = self.rows(
            "SELECT conn, rid, part, target, key FROM listeners ORDER BY conn, rid, part",
            Vec::new(),
        )?;
        for row in rows {
            let row = row.map_err(failed)?;
            parts
                .entry(as_u64(&row[0])?)
                .or_default()
                .push(StoredListenerPart {
                    rid: as_u64(&row[1])?,
                    part: as_u64(&row[2])?,
                    target: as_u64(&row[3])?,
                    key: as_text(&row[4])?.to_owned(),
                });
        }
        for (conn, rows) in parts {
            // Rows of a connection without a session row are left over; ignored.
            if let Some(session) = sessions.get_mut(&conn) {
                let joined = join_key_parts(rows).into_iter();
                session.listeners.extend(joined.map(saved_listener));
            }
        }
        for (conn, stored) in legacy {
            self.save_session(conn, &[], &stored)?;
        }
        Ok(sessions.into_iter().collect())
    }

    /// Saves one connection's session, all or nothing: the listeners of
    /// `session` that are not in `stored` (what its rows hold now) are
    /// written, those gone are deleted, and the handshake flag is set.
    pub fn save_session(
        &self,
        conn: u64,
        stored: &[SavedListener],
        session: &SavedSession,
    ) -> Result<(), StorageError> {
        let gone: Vec<u64> = stored
            .iter()
            .filter(|l| !session.listeners.contains(l))
            .map(|l| l.rid)
            .collect();
        let added: Vec<SavedListener> = session
            .listeners
            .iter()
            .filter(|l| !stored.contains(l))
            .cloned()
            .collect();
        let anonymous = session.identity == Identity::Anonymous;
        let state = StoredSession {
            listeners: Vec::new(),
            open: session.open,
            waiting: session.waiting,
            expires: session.expires,
            identity: (!anonymous).then(|| session.identity.clone()),
            held_docs: session.held_docs,
            network: session.network.clone(),
        };
        let state = serde_json::to_string(&state).map_err(failed)?;
        let sql = self.sql.clone();
        transaction_sync(&self.storage, move || {
            let run = |query: &str, binds: Vec<V>| -> Result<(), StorageError> {
                sql.exec(query, binds).map_err(failed)?.raw().for_each(drop);
                Ok(())
            };
            run(
                "INSERT OR REPLACE INTO sessions (conn, state) VALUES (?, ?)",
                vec![int(conn), V::String(state)],
            )?;
            for rid in gone.iter().chain(added.iter().map(|l| &l.rid)) {
                run(
                    "DELETE FROM listeners WHERE conn = ? AND rid = ?",
                    vec![int(conn), int(*rid)],
                )?;
            }
            for l in &added {
                for (part, piece) in key_parts(&l.key).into_iter().enumerate() {
                    run(
                        "INSERT INTO listeners (conn, rid, part, target, key) VALUES (?, ?, ?, ?, ?)",
                        vec![int(conn), int(l.rid), int(part as u64), int(l.target), text(piece)],
                    )?;
                }
            }
            Ok(())
        })
    }

    /// Forgets one connection's session.
    pub fn delete_session(&self, conn: u64) -> Result<(), StorageError> {
        let sql = self.sql.clone();
        transaction_sync(&self.storage, move || {
            for query in [
                "DELETE FROM sessions WHERE conn = ?",
                "DELETE FROM listeners WHERE conn = ?",
            ] {
                sql.exec(query, vec![int(conn)])
                    .map_err(failed)?
                    .raw()
                    .for_each(drop);
            }
            Ok(())
        })
    }
}

impl Storage for SqlStore {
    fn seq(&self, collection: &CollectionPath) -> Result<u64, StorageError> {
        let name = collection.to_string();
        if let Some(seq) = self.seqs.borrow().get(&name) {
            return Ok(*seq);
        }
        let mut rows = self.rows(
            "SELECT seq FROM seqs WHERE collection = ?",
            vec![text(&name)],
        )?;
        let seq = match rows.next() {
            Some(row) => as_u64(&row.map_err(failed)?[0])?,
            None => 0,
        };
        self.seqs.borrow_mut().insert(name, seq);
        Ok(seq)
    }

    fn get(
        &self,
        collection: &CollectionPath,
        id: &str,
    ) -> Result<Option<StoredDoc>, StorageError> {
        let mut rows = self.rows(
            "SELECT id, data, version, create_time, update_time FROM docs WHERE collection = ? AND id = ?",
            vec![text(&collection.to_string()), text(id)],
        )?;
        rows.next()
            .map(|row| doc_row(row.map_err(failed)?))
            .transpose()
    }

    fn scan(
        &self,
        collection: &CollectionPath,
        range: (Bound<&str>, Bound<&str>),
        reverse: bool,
    ) -> Result<DocIter<'_>, StorageError> {
        let mut sql = String::from(
            "SELECT id, data, version, create_time, update_time FROM docs WHERE collection = ?",
        );
        let mut binds = vec![text(&collection.to_string())];
        bounds(
            "id",
            (range.0.map(text), range.1.map(text)),
            &mut sql,
            &mut binds,
        );
        sql.push_str(if reverse {
            " ORDER BY id DESC"
        } else {
            " ORDER BY id ASC"
        });
        let rows = self.rows(&sql, binds)?;
        Ok(Box::new(rows.map(|row| doc_row(row.map_err(failed)?))))
    }

    fn count_docs(&self, collection: &CollectionPath) -> Result<u64, StorageError> {
        let row = self
            .rows(
                "SELECT COUNT(*) FROM docs WHERE collection = ?",
                vec![text(&collection.to_string())],
            )?
            .next()
            .transpose()
            .map_err(failed)?;
        row.map_or(Ok(0), |r| as_u64(&r[0]))
    }

    fn scan_index(
        &self,
        collection: &CollectionPath,
        index: &str,
        range: KeyRange,
        reverse: bool,
    ) -> Result<EntryIter<'_>, StorageError> {
        let (mut sql, binds) = entries_in("key, id", collection, index, range);
        sql.push_str(if reverse {
            " ORDER BY key DESC, id DESC"
        } else {
            " ORDER BY key ASC, id ASC"
        });
        let rows = self.rows(&sql, binds)?;
        Ok(Box::new(rows.map(|row| {
            let row = row.map_err(failed)?;
            let key = match &row[0] {
                V::Blob(bytes) => bytes.clone(),
                other => return Err(failed(format!("index key {other:?}"))),
            };
            Ok((key, as_text(&row[1])?.to_owned()))
        })))
    }

    fn count_entries(
        &self,
        collection: &CollectionPath,
        index: &str,
        range: KeyRange,
    ) -> Result<u64, StorageError> {
        let (sql, binds) = entries_in("COUNT(*)", collection, index, range);
        let row = self.rows(&sql, binds)?.next().transpose().map_err(failed)?;
        row.map_or(Ok(0), |r| as_u64(&r[0]))
    }

    fn log(&self, collection: &CollectionPath, after: u64) -> Result<LogIter<'_>, StorageError> {
        let name = collection.to_string();
        let oldest = self
            .rows(
                "SELECT MIN(seq) FROM log WHERE collection = ?",
                vec![text(&name)],
            )?
            .next()
            .transpose()
            .map_err(failed)?
            .and_then(|row| as_u64(&row[0]).ok());
        Ok(Box::new(LogRecords {
            sql: self.sql.clone(),
            collection: name,
            from: oldest.map_or(after, |o| after.max(o.saturating_sub(1))),
            end: self.seq(collection)?,
            rows: None,
            pending: None,
        }))
    }

    fn log_start(
        &self,
        collection: &CollectionPath,
        from: u64,
        time: u64,
    ) -> Result<Option<u64>, StorageError> {
        let row = self
            .rows(
                "SELECT MIN(seq) FROM log WHERE collection = ? AND seq >= ? AND time >= ?",
                vec![text(&collection.to_string()), int(from), int(time)],
            )?
            .next()
            .transpose()
            .map_err(failed)?;
        Ok(row.and_then(|r| as_u64(&r[0]).ok()))
    }

    fn remembered(
        &self,
        collection: &CollectionPath,
        key: &CommitKey,
    ) -> Result<Option<CommitResult>, StorageError> {
        let row = self
            .rows(
                "SELECT result FROM commit_ids WHERE collection = ? AND id = ?",
                vec![text(&collection.to_string()), text(key.as_str())],
            )?
            .next()
            .transpose()
            .map_err(failed)?;
        row.map(|r| serde_json::from_str(as_text(&r[0])?).map_err(failed))
            .transpose()
    }

    fn apply(
        &mut self,
        collection: &CollectionPath,
        commit: StorageBatch,
    ) -> Result<(), StorageError> {
        let sql = self.sql.clone();
        let collection = collection.to_string();
        let seq = commit.record.seq;
        // Forget the cached number until the commit is known to have landed.
        self.seqs.borrow_mut().remove(&collection);
        let landed = collection.clone();
        transaction_sync(&self.storage, move || apply(&sql, &collection, &commit))?;
        self.seqs.borrow_mut().insert(landed, seq);
        Ok(())
    }
}

/// Runs `work` inside the storage's `transactionSync`: all of its writes or,
/// when it fails, none. Nested inside another `transactionSync` it is a
/// savepoint, and only the outermost one is a durable commit.
pub fn transaction_sync(
    storage: &worker::Storage,
    work: impl FnOnce() -> Result<(), StorageError> + 'static,
) -> Result<(), StorageError> {
    let work = move || -> Result<JsValue, JsValue> {
        work().map_err(|e| JsValue::from_str(&e.0))?;
        Ok(JsValue::UNDEFINED)
    };
    let raw: &JsValue = storage.as_raw().as_ref();
    let transaction: js_sys::Function =
        js_sys::Reflect::get(raw, &JsValue::from_str("transactionSync"))
            .and_then(|f| f.dyn_into())
            .map_err(|e| failed(format!("transactionSync: {e:?}")))?;
    transaction
        .call1(raw, &Closure::once_into_js(work))
        .map_err(|e| failed(format!("{e:?}")))?;
    Ok(())
}

/// Every statement of one commit; run inside `transactionSync`.
fn apply(sql: &SqlStorage, collection: &str, commit: &StorageBatch) -> Result<(), StorageError> {
    let run = |query: &str, binds: Vec<V>| -> Result<(), StorageError> {
        sql.exec(query, binds).map_err(failed)?.raw().for_each(drop);
        Ok(())
    };
    let c = || text(collection);
    let record = &commit.record;
    run(
        "INSERT OR REPLACE INTO seqs (collection, seq) VALUES (?, ?)",
        vec![c(), int(record.seq)],
    )?;
    for doc in &commit.puts {
        let data = serde_json::to_string(&doc.data).map_err(failed)?;
        run(
            "INSERT OR REPLACE INTO docs (collection, id, data, version, create_time, update_time) \
             VALUES (?, ?, ?, ?, ?, ?)",
            vec![c(), text(&doc.id), V::String(data), int(doc.version), int(doc.create_time), int(doc.update_time)],
        )?;
    }
    for id in &commit.deletes {
        run(
            "DELETE FROM docs WHERE collection = ? AND id = ?",
            vec![c(), text(id)],
        )?;
    }
    // Many rows per statement (at most 100 bound parameters each): every
    // statement is a crossing between wasm and the runtime.
    let entry =
        |e: &blaze_core::IndexEntry| vec![c(), text(&e.index), V::Blob(e.key.clone()), text(&e.id)];
    for chunk in commit.index_removes.chunks(25) {
        let rows = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql =
            format!("DELETE FROM entries WHERE (collection, idx, key, id) IN (VALUES {rows})");
        run(&sql, chunk.iter().flat_map(entry).collect())?;
    }
    for chunk in commit.index_adds.chunks(25) {
        let rows = vec!["(?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql = format!("INSERT OR IGNORE INTO entries (collection, idx, key, id) VALUES {rows}");
        run(&sql, chunk.iter().flat_map(entry).collect())?;
    }
    let sides: Vec<(usize, &DocWrite, u64, &Option<StoredDoc>)> = record
        .docs
        .iter()
        .enumerate()
        .flat_map(|(pos, change)| {
            [
                (pos, change, 0, &change.before),
                (pos, change, 1, &change.after),
            ]
        })
        .collect();
    for chunk in sides.chunks(14) {
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let sql =
            format!("INSERT INTO log (collection, seq, time, pos, side, id, doc) VALUES {rows}");
        let mut binds = Vec::with_capacity(chunk.len() * 7);
        for (pos, change, side, doc) in chunk {
            let doc = doc.as_ref().map(doc_json).transpose()?;
            binds.extend([
                c(),
                int(record.seq),
                int(record.time),
                int(*pos as u64),
                int(*side),
                text(&change.id),
                doc.map_or(V::Null, V::String),
            ]);
        }
        run(&sql, binds)?;
    }
    run(
        "DELETE FROM log WHERE collection = ? AND seq < ?",
        vec![c(), int(commit.log_trim_below)],
    )?;
    if let Some(remember) = &commit.remember {
        let result = serde_json::to_string(&remember.result).map_err(failed)?;
        run(
            "INSERT OR REPLACE INTO commit_ids (collection, id, seq, result) VALUES (?, ?, ?, ?)",
            vec![
                c(),
                text(remember.key.as_str()),
                int(record.seq),
                V::String(result),
            ],
        )?;
    }
    run(
        "DELETE FROM commit_ids WHERE collection = ? AND seq < ?",
        vec![c(), int(commit.log_trim_below)],
    )
}

fn doc_row(row: Vec<V>) -> Result<StoredDoc, StorageError> {
    Ok(StoredDoc {
        id: as_text(&row[0])?.to_owned(),
        data: parse_data(as_text(&row[1])?)?,
        version: as_u64(&row[2])?,
        create_time: as_u64(&row[3])?,
        update_time: as_u64(&row[4])?,
    })
}

/// Log records read per statement: a reader that stops early (trimming
/// looks at the oldest entry only) reads little, whatever the log's length.
const LOG_PAGE: u64 = 16;

/// Groups log rows (one per document side) back into change records, a page
/// of sequence numbers at a time.
struct LogRecords {
    sql: SqlStorage,
    collection: String,
    /// Records above this sequence number are still to be read.
    from: u64,
    /// The last sequence number to read.
    end: u64,
    rows: Option<SqlCursorRawIterator>,
    pending: Option<Vec<V>>,
}

impl LogRecords {
    fn next_row(&mut self) -> Option<Result<Vec<V>, StorageError>> {
        if let Some(row) = self.pending.take() {
            return Some(Ok(row));
        }
        loop {
            if let Some(row) = self.rows.as_mut().and_then(Iterator::next) {
                return Some(row.map_err(failed));
            }
            if self.from >= self.end {
                return None;
            }
            let to = self.from.saturating_add(LOG_PAGE).min(self.end);
            let page = self.sql.exec(
                "SELECT seq, time, pos, side, id, doc FROM log WHERE collection = ? AND seq > ? AND seq <= ? \
                 ORDER BY seq, pos, side",
                vec![text(&self.collection), int(self.from), int(to)],
            );
            self.from = to;
            match page {
                Ok(cursor) => self.rows = Some(cursor.raw()),
                Err(e) => return Some(Err(failed(e))),
            }
        }
    }

    fn record(&mut self, first: Vec<V>) -> Result<CommitRecord, StorageError> {
        let seq = as_u64(&first[0])?;
        let mut record = CommitRecord {
            seq,
            time: as_u64(&first[1])?,
            docs: Vec::new(),
        };
        let mut row = Some(first);
        while let Some(r) = row.take() {
            if as_u64(&r[0])? != seq {
                self.pending = Some(r);
                break;
            }
            let id = as_text(&r[4])?.to_owned();
            let doc = match &r[5] {
                V::String(t) => Some(doc_from_json(&id, t)?),
                _ => None,
            };
            if as_u64(&r[3])? == 0 {
                record.docs.push(DocWrite {
                    id,
                    before: doc,
                    after: None,
                });
            } else if let Some(last) = record.docs.last_mut() {
                last.after = doc;
            }
            row = self.next_row().transpose()?;
        }
        Ok(record)
    }
}

impl Iterator for LogRecords {
    type Item = Result<CommitRecord, StorageError>;

    fn next(&mut self) -> Option<Self::Item> {
        let first = match self.next_row()? {
            Ok(row) => row,
            Err(e) => return Some(Err(e)),
        };
        Some(self.record(first))
    }
}
