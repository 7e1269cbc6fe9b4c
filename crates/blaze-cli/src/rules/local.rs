//! Runs the cases of a tests file against the core in this process: a
//! [`Hub`] enforcing the rules, holding the file's documents, asked through
//! its HTTP-facing API ([`Caller`]) or, for a listen, through WebSocket
//! frames, as the worker asks it; and explains a decision with the core's
//! trace of it.

use std::collections::BTreeMap;

use blaze_core::{
    Access, Caller, Database, Error, Explanation, Hub, HubConfig, HubEvent, Limits, MemoryStorage,
    Output, Rules, StagedWrite, Storage,
};
use blaze_protocol::{CollectionPath, DocPath, Identity, Query, Write, WriteKind};
use serde_json::{json, Map, Value};

use super::file::{Case, Expect, Named, Request, TestsFile, Who};

/// What came of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The request succeeded.
    Allowed,
    /// It failed with `code` (naming `write_index` for a batch);
    /// `detail` is what the server logs and the peer is not told: for a
    /// denial, the rules' reason.
    Failed {
        /// The error code.
        code: String,
        /// The write a batch's error names.
        write_index: Option<u64>,
        /// The rules' reason for a denial.
        detail: Option<String>,
    },
}

impl Outcome {
    /// Whether this is what `expect` says (a `write_index` is compared only
    /// when `expect` gives one).
    pub fn satisfies(&self, expect: &Expect) -> bool {
        match (self, expect) {
            (Outcome::Allowed, Expect::Allow) => true,
            (
                Outcome::Failed {
                    code, write_index, ..
                },
                Expect::Error {
                    code: want,
                    write_index: want_index,
                },
            ) => code == want && (want_index.is_none() || write_index == want_index),
            _ => false,
        }
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Allowed => f.write_str("allowed"),
            Outcome::Failed {
                code,
                write_index: Some(i),
                ..
            } => write!(f, "{code} at write {i}"),
            Outcome::Failed { code, .. } => f.write_str(code),
        }
    }
}

/// The identity a case asks as. A user's claims are the case's extra
/// claims and those of a token `blaze token` would mint at `now_ms` (`iss`,
/// `aud`, `sub`, `iat`, `exp`, which the case's cannot replace).
pub fn identity(who: &Who, now_ms: u64) -> Identity {
    match who {
        Who::Named(Named::Anonymous) => Identity::Anonymous,
        Who::Named(Named::Admin) => Identity::Admin,
        Who::User { uid, claims } => {
            let now = now_ms / 1000;
            let standard = json!({"iss": "blaze-dev", "aud": "blaze", "sub": uid,
                                  "iat": now, "exp": now + 3600});
            let mut all = claims.clone();
            all.extend(standard.as_object().cloned().unwrap_or_default());
            Identity::User {
                uid: uid.clone(),
                claims: all,
            }
        }
    }
}

/// Runs `case` of `file` against `rules`, on a fresh hub holding the file's
/// documents. An error is a case the runner cannot run (a malformed request).
pub fn run(rules: &Rules, file: &TestsFile, case: &Case) -> Result<Outcome, String> {
    let mut hub = seeded(rules, &file.docs, file.now)?;
    let caller = Caller::new(identity(&case.who, file.now));
    let answered = match &case.request {
        Request::Get(path) => hub.get(&caller, &doc_path(path)?).map(drop),
        Request::Query(q) => hub.query(&caller, &query(q)?).map(drop),
        Request::Count(q) => hub.count(&caller, &query(q)?).map(drop),
        Request::Commit(batch) => {
            let batch = Batch::parse(batch)?;
            hub.handle_commit(&caller, &batch.collection, &batch.writes, file.now)
                .map(drop)
        }
        Request::Listen(what) => return listen(&mut hub, &caller.identity, what, file.now),
    };
    Ok(match answered {
        Ok(()) => Outcome::Allowed,
        Err(Error::NeedDocuments(paths)) => {
            return Err(format!("the hub asked for documents it holds: {paths:?}"))
        }
        Err(e) => Outcome::Failed {
            code: e.code().as_str().to_owned(),
            write_index: e.to_body().write_index.map(|i| i as u64),
            detail: e.detail(),
        },
    })
}

/// How the rules decide `case`, evaluated again with a trace: one
/// explanation for a read, a query or a listen, one per write for a commit
/// (each against the batch's state before it).
pub fn explain(rules: &Rules, file: &TestsFile, case: &Case) -> Result<Vec<Explanation>, String> {
    let hub = seeded(rules, &file.docs, file.now)?;
    let storage = hub.database().storage();
    let identity = identity(&case.who, file.now);
    let now = file.now;
    let read = |path: &str| {
        rules
            .explain_get(storage, &identity, now, &doc_path(path)?)
            .map_err(|e| e.to_string())
    };
    let list = |query: &Value| -> Result<Explanation, String> {
        Ok(rules.explain_list(storage, &identity, now, &self::query(query)?))
    };
    Ok(match &case.request {
        Request::Get(path) => vec![read(path)?],
        Request::Query(query) | Request::Count(query) => vec![list(query)?],
        Request::Listen(what) => match (what.get("doc"), what.get("query")) {
            (Some(Value::String(path)), _) => vec![read(path)?],
            (_, Some(query)) => vec![list(query)?],
            _ => return Err(format!("listen: `doc` or `query`, not {what}")),
        },
        Request::Commit(batch) => {
            let Batch { collection, writes } = Batch::parse(batch)?;
            // The collection after each prefix of the batch, written by an admin.
            let mut states = Vec::with_capacity(writes.len() + 1);
            for done in 0..=writes.len() {
                let mut state = seeded(rules, &file.docs, now)?;
                if done > 0 {
                    state
                        .handle_commit(&Caller::admin(), &collection, &writes[..done], now)
                        .map_err(|e| format!("the batch fails by itself: {e}"))?;
                }
                states.push(state);
            }
            let doc = |state: &Hub<MemoryStorage>, id: &str| {
                state
                    .database()
                    .storage()
                    .get(&collection, id)
                    .map_err(|e| e.to_string())
            };
            let last = &states[writes.len()];
            let mut staged = std::collections::HashMap::new();
            for write in &writes {
                staged.insert(write.id.clone(), doc(last, &write.id)?);
            }
            let mut explained = Vec::with_capacity(writes.len());
            for (i, write) in writes.iter().enumerate() {
                let before = doc(&states[i], &write.id)?;
                let after = doc(&states[i + 1], &write.id)?;
                let step = StagedWrite {
                    collection: &collection,
                    write,
                    before: before.as_ref(),
                    after: after.as_ref(),
                    staged: &staged,
                };
                explained.push(rules.explain_write(storage, &identity, now, &step));
            }
            explained
        }
    })
}

/// `{"collection", "writes"}`, a commit's batch.
struct Batch {
    collection: CollectionPath,
    writes: Vec<Write>,
}

impl Batch {
    fn parse(value: &Value) -> Result<Self, String> {
        let fields = value.as_object().map(|m| m.keys().count());
        let (Some(collection), Some(writes), Some(2)) = (
            value.get("collection").and_then(Value::as_str),
            value.get("writes"),
            fields,
        ) else {
            return Err(format!(
                "commit: {{\"collection\", \"writes\"}}, not {value}"
            ));
        };
        Ok(Self {
            collection: CollectionPath::parse(collection).map_err(|e| e.to_string())?,
            writes: serde_json::from_value(writes.clone()).map_err(|e| format!("{writes}: {e}"))?,
        })
    }
}

/// A Query (protocol 9.1) from its JSON.
fn query(value: &Value) -> Result<Query, String> {
    serde_json::from_value(value.clone()).map_err(|e| format!("{value}: {e}"))
}

fn doc_path(path: &str) -> Result<DocPath, String> {
    DocPath::parse(path).map_err(|e| format!("{path}: {e}"))
}

/// A hub enforcing `rules` that holds `docs`, written by an admin at `now`.
fn seeded(
    rules: &Rules,
    docs: &BTreeMap<String, Map<String, Value>>,
    now: u64,
) -> Result<Hub<MemoryStorage>, String> {
    let db = Database::new(MemoryStorage::new(), Limits::default());
    let mut hub = Hub::new(db, HubConfig::default()).with_access(Access::Enforced(rules.clone()));
    let mut batches: BTreeMap<CollectionPath, Vec<Write>> = BTreeMap::new();
    for (path, data) in docs {
        let path = doc_path(path)?;
        batches.entry(path.collection()).or_default().push(Write {
            id: path.id().to_owned(),
            kind: WriteKind::Set {
                data: Value::Object(data.clone()),
            },
            precondition: Default::default(),
        });
    }
    for (collection, writes) in batches {
        hub.handle_commit(&Caller::admin(), &collection, &writes, now)
            .map_err(|e| format!("seeding {collection}: {e}"))?;
    }
    hub.set_now(now);
    Ok(hub)
}

/// The connection a listen case opens.
const CONN: u64 = 1;

/// A listen over WebSocket frames: `hello` (its credential verified as
/// `identity`), then `listen`; the answer to it is the outcome.
fn listen(
    hub: &mut Hub<MemoryStorage>,
    identity: &Identity,
    what: &Value,
    now: u64,
) -> Result<Outcome, String> {
    hub.handle_open(CONN, now);
    let hello = match identity {
        Identity::Anonymous => json!({"type": "hello", "protocol": 1}),
        _ => json!({"type": "hello", "protocol": 1, "auth": "verified-by-the-runner"}),
    };
    hub.handle_frame(CONN, &hello.to_string(), now);
    let mut opened = drain(hub);
    let verify = opened.iter().find_map(|o| match o {
        Output::Event(HubEvent::Verify { conn, rid, .. }) => Some((*conn, *rid)),
        _ => None,
    });
    if let Some((conn, rid)) = verify {
        hub.handle_verified(conn, rid, Ok((identity.clone(), None)), now);
        opened.extend(drain(hub));
    }
    if !opened
        .iter()
        .any(|o| sent(o).is_some_and(|f| f["type"] == "welcome"))
    {
        return Err(format!("no welcome: {opened:?}"));
    }
    let mut frame = what.clone();
    let Some(object) = frame.as_object_mut() else {
        return Err(format!(
            "listen: an object with `doc` or `query`, not {what}"
        ));
    };
    object.insert("type".to_owned(), json!("listen"));
    object.insert("rid".to_owned(), json!(1));
    hub.handle_frame(CONN, &frame.to_string(), now);
    let mut detail = None;
    for output in drain(hub) {
        if let Output::Event(HubEvent::Refused {
            rid: Some(1),
            detail: d,
            ..
        }) = &output
        {
            detail.clone_from(d);
        }
        let Some(answer) = sent(&output) else {
            continue;
        };
        if answer["rid"] != json!(1) {
            continue;
        }
        return Ok(match answer["type"].as_str() {
            Some("snapshot") => Outcome::Allowed,
            Some("error") => Outcome::Failed {
                code: answer["error"]["code"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
                write_index: None,
                detail,
            },
            _ => return Err(format!("listen answered {answer}")),
        });
    }
    Err("the listen was not answered".to_owned())
}

fn drain(hub: &mut Hub<MemoryStorage>) -> Vec<Output> {
    std::iter::from_fn(|| hub.poll_output()).collect()
}

/// The frame an output sends, as JSON.
fn sent(output: &Output) -> Option<Value> {
    match output {
        Output::Send { frame, .. } => serde_json::from_str(frame).ok(),
        _ => None,
    }
}
