//! Why the rules decide as they do, for a person (`blaze rules test`): each
//! `allow` statement a decision evaluated, by the line of its condition, and
//! what it came to. The requests are built as the hub's own decisions build
//! them, and evaluated again with the evaluator's trace; nothing here
//! decides what a server does.

use std::collections::HashMap;

use blaze_protocol::{CollectionPath, DocPath, Identity, Query, Write, WriteKind};
use hidane_rules::eval::{self, Budget, Decision, Method, Trace, Verdict};

use super::{convert, request, Asker, FetchedDocs, Lookup, Rules};
use crate::error::Error;
use crate::store::{Storage, StoredDoc};

/// What one `allow` statement's condition came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Held {
    /// True: the statement allows.
    True,
    /// False.
    False,
    /// An evaluation error, which denies like false.
    Error,
}

/// The statements of one method as a decision evaluated them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Evaluated {
    /// `get`, `list`, `create`, `update` or `delete`.
    pub method: &'static str,
    /// Each statement evaluated, in order: the line of its condition (of
    /// the statement, without one) and what it came to.
    pub statements: Vec<(u32, Held)>,
}

/// A decision, explained.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Explanation {
    /// The rules' reason when they deny (`None`: they allow).
    pub denial: Option<String>,
    /// Each evaluation of statements, in order; none when no statement
    /// applies to the path and method (or for an admin).
    pub evaluations: Vec<Evaluated>,
}

/// One write of a staged batch, for [`Rules::explain_write`].
#[derive(Clone, Copy, Debug)]
pub struct StagedWrite<'a> {
    /// The batch's collection.
    pub collection: &'a CollectionPath,
    /// The write.
    pub write: &'a Write,
    /// Its document before it (after the batch's earlier writes).
    pub before: Option<&'a StoredDoc>,
    /// Its document after it.
    pub after: Option<&'a StoredDoc>,
    /// Every id the batch writes, with its state after the whole batch
    /// (what `getAfter()` reads).
    pub staged: &'a HashMap<String, Option<StoredDoc>>,
}

impl Rules {
    /// How these rules decide `identity` reading document `path` of
    /// `storage` at `now` (the `get` rule).
    pub fn explain_get<S: Storage>(
        &self,
        storage: &S,
        identity: &Identity,
        now: u64,
        path: &DocPath,
    ) -> Result<Explanation, Error> {
        let fetched = FetchedDocs::new();
        let asker = asker(storage, identity, now, &fetched);
        let collection = path.collection();
        let stored = storage.get(&collection, path.id())?;
        let request = request(
            &asker,
            Method::Get,
            convert::doc_path(&collection, path.id()),
        );
        let resource = stored.map(|d| convert::document(&collection, &d.id, &d.data));
        let lookup = Lookup::new(storage, None, &fetched);
        Ok(self.traced(identity, |rules, trace| {
            eval::authorize_traced(
                rules,
                &request,
                resource.as_ref(),
                &lookup,
                &mut Budget::single(),
                trace,
            )
        }))
    }

    /// How these rules decide `identity` running `query` on `storage` at
    /// `now` (the `list` rule, proved from the query).
    pub fn explain_list<S: Storage>(
        &self,
        storage: &S,
        identity: &Identity,
        now: u64,
        query: &Query,
    ) -> Explanation {
        let fetched = FetchedDocs::new();
        let asker = asker(storage, identity, now, &fetched);
        let mut request = request(
            &asker,
            Method::List,
            convert::collection_path(&query.collection),
        );
        request.query = Some(convert::query(query));
        let lookup = Lookup::new(storage, None, &fetched);
        self.traced(identity, |rules, trace| {
            eval::authorize_traced(rules, &request, None, &lookup, &mut Budget::query(), trace)
        })
    }

    /// How these rules decide `identity` making one write of a staged batch
    /// on `storage` at `now` (its `create`, `update` or `delete` rule; a
    /// `verify`'s `get`).
    pub fn explain_write<S: Storage>(
        &self,
        storage: &S,
        identity: &Identity,
        now: u64,
        step: &StagedWrite<'_>,
    ) -> Explanation {
        let fetched = FetchedDocs::new();
        let asker = asker(storage, identity, now, &fetched);
        let collection = step.collection;
        let mut lookup = Lookup::new(storage, None, &fetched);
        lookup.after = Some((collection, step.staged));
        let mut budget = Budget::batch();
        for id in step.staged.keys() {
            budget.add_written(convert::doc_path(collection, id));
        }
        let path = convert::doc_path(collection, &step.write.id);
        let resource = step
            .before
            .map(|d| convert::document(collection, &d.id, &d.data));
        let is_set = matches!(step.write.kind, WriteKind::Set { .. });
        let (method, upsert) = match (&step.write.kind, step.before, step.after) {
            (WriteKind::Verify, ..) => (Method::Get, false),
            (_, _, None) => (Method::Delete, false),
            (_, None, Some(_)) => (Method::Create, is_set),
            (_, Some(_), Some(_)) => (Method::Update, is_set),
        };
        let mut request = request(&asker, method, path);
        request.upsert = upsert;
        request.in_transaction = true;
        if matches!(step.write.kind, WriteKind::Verify) {
            budget.next_verify();
            request.verify = true;
            request.resource = resource.clone();
        } else {
            budget.next_write();
            request.resource = step
                .after
                .map(|d| convert::document(collection, &d.id, &d.data));
        }
        self.traced(identity, |rules, trace| {
            eval::authorize_traced(
                rules,
                &request,
                resource.as_ref(),
                &lookup,
                &mut budget,
                trace,
            )
        })
    }

    /// Runs `decide` with a trace of evaluations; an admin is never decided.
    fn traced(
        &self,
        identity: &Identity,
        decide: impl FnOnce(&hidane_rules::Ruleset, &mut Trace) -> Decision,
    ) -> Explanation {
        if *identity == Identity::Admin {
            return Explanation {
                denial: None,
                evaluations: Vec::new(),
            };
        }
        let mut trace = Trace::new().with_evaluations();
        let decision = decide(&self.ruleset, &mut trace);
        Explanation {
            denial: match decision {
                Decision::Allow => None,
                Decision::Deny(reason) => Some(reason),
            },
            evaluations: trace
                .evaluations()
                .iter()
                .map(|e| Evaluated {
                    method: e.method.name(),
                    statements: e
                        .statements
                        .iter()
                        .map(|&(line, verdict)| (line, held(verdict)))
                        .collect(),
                })
                .collect(),
        }
    }
}

fn held(verdict: Verdict) -> Held {
    match verdict {
        Verdict::Allow => Held::True,
        Verdict::False => Held::False,
        Verdict::Error => Held::Error,
    }
}

/// The asker of an explanation: every collection is in `storage`.
fn asker<'a, S>(
    storage: &'a S,
    identity: &'a Identity,
    now: u64,
    fetched: &'a FetchedDocs,
) -> Asker<'a, S> {
    Asker {
        storage,
        local: None,
        identity,
        now,
        fetched,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStorage;
    use crate::Database;
    use blaze_protocol::Limits;
    use serde_json::json;

    const RULES: &str = "rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /todos/{todo} {
      allow get: if false;
      allow read: if request.auth != null && resource.data.owner == request.auth.uid;
      allow create: if request.auth != null;
    }
  }
}";

    fn user(uid: &str) -> Identity {
        Identity::User {
            uid: uid.into(),
            claims: serde_json::Map::new(),
        }
    }

    fn database() -> Database<MemoryStorage> {
        let mut db = Database::new(MemoryStorage::new(), Limits::default());
        let todos = CollectionPath::parse("todos").unwrap();
        let write = Write {
            id: "t1".into(),
            kind: WriteKind::Set {
                data: json!({"owner": "alice"}),
            },
            precondition: Default::default(),
        };
        db.commit(&todos, &[write], 1).unwrap();
        db
    }

    #[test]
    fn names_the_statement_that_allowed_and_those_that_did_not() {
        let rules = Rules::compile(RULES).unwrap();
        let db = database();
        let storage = db.storage();
        let t1 = DocPath::parse("todos/t1").unwrap();
        let alice = rules.explain_get(storage, &user("alice"), 1, &t1).unwrap();
        assert_eq!(alice.denial, None);
        assert_eq!(
            alice.evaluations,
            [Evaluated {
                method: "get",
                statements: vec![(5, Held::False), (6, Held::True)]
            }]
        );
        let bob = rules.explain_get(storage, &user("bob"), 1, &t1).unwrap();
        assert!(bob.denial.is_some());
        assert_eq!(
            bob.evaluations[0].statements,
            [(5, Held::False), (6, Held::False)]
        );
        let anyone: Query = serde_json::from_value(json!({"collection": "todos"})).unwrap();
        let list = rules.explain_list(storage, &user("alice"), 1, &anyone);
        assert!(list.denial.is_some(), "rules are not filters");
        assert!(list.evaluations.iter().all(|e| e.method == "list"));
    }

    #[test]
    fn explains_a_write() {
        let rules = Rules::compile(RULES).unwrap();
        let storage = MemoryStorage::new();
        let todos = CollectionPath::parse("todos").unwrap();
        let write = Write {
            id: "t2".into(),
            kind: WriteKind::Create {
                data: json!({"owner": "bob"}),
            },
            precondition: Default::default(),
        };
        let after = StoredDoc {
            id: "t2".into(),
            data: json!({"owner": "bob"}).as_object().unwrap().clone(),
            version: 1,
            create_time: 1,
            update_time: 1,
        };
        let staged = HashMap::from([("t2".to_owned(), Some(after.clone()))]);
        let step = StagedWrite {
            collection: &todos,
            write: &write,
            before: None,
            after: Some(&after),
            staged: &staged,
        };
        let bob = rules.explain_write(&storage, &user("bob"), 1, &step);
        assert_eq!(bob.denial, None);
        assert_eq!(bob.evaluations[0].method, "create");
        assert_eq!(bob.evaluations[0].statements, [(7, Held::True)]);
        let nobody = rules.explain_write(&storage, &Identity::Anonymous, 1, &step);
        assert!(nobody.denial.is_some());
    }
}
