//! Access rules (spec 14): Firestore Security Rules, compiled once and
//! checked on every read, query, listen and write of a non-admin identity.
//!
//! The language, its library and the proof of a `list` from a query's
//! filters ("rules are not filters") are the `hidane-rules` crate, pinned and
//! used only here: `convert` maps Blaze's values, paths, identities and
//! queries to its types, `lookup` serves the documents rules read, and this
//! file decides. Deny by default: no `allow` that holds means
//! [`Error::Denied`], whose reason (which may quote document values) stays in
//! the server's log.

mod convert;
mod explain;
mod lookup;
mod storage;

use std::collections::HashMap;
use std::sync::Arc;

use blaze_protocol::{CollectionPath, DocPath, Identity, Query, Write, WriteKind};
use hidane_rules::eval::{self, Budget, Decision, Method, Request};
use hidane_rules::{Ruleset, Severity, SourceFile};

use crate::error::{Denial, Error};
use crate::store::{Storage, StoredDoc};
pub use explain::{Evaluated, Explanation, Held, StagedWrite};
pub use lookup::FetchedDocs;
use lookup::Lookup;

/// A compiled rules file.
#[derive(Clone, Debug)]
pub struct Rules {
    ruleset: Arc<Ruleset>,
    warnings: Vec<String>,
}

/// A rules file that does not compile: the compiler's message, one issue per
/// line with its position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RulesError(pub String);

impl Rules {
    /// Compiles a rules file (`rules_version = '2'; service cloud.firestore { … }`),
    /// with rules for files in Firebase Storage's form too (`service
    /// firebase.storage`, spec 15.6), decided as rules of their metadata
    /// documents.
    pub fn compile(source: &str) -> Result<Self, RulesError> {
        let compilation = hidane_rules::compile(&[SourceFile {
            name: Some("blaze.rules".to_owned()),
            content: source.to_owned(),
        }]);
        let warnings = compilation
            .issues
            .iter()
            .filter(|i| i.severity != Severity::Error)
            .map(|i| i.line())
            .collect();
        match compilation.ruleset {
            Some(mut ruleset) if !compilation.has_errors() => {
                storage::fold_storage(&mut ruleset)?;
                Ok(Self {
                    ruleset: Arc::new(ruleset),
                    warnings,
                })
            }
            _ => Err(RulesError(compilation.error_message())),
        }
    }

    /// What the compiler warned about (an unknown function, for one): such a
    /// condition fails when evaluated, which denies.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }
}

/// Who may do what: the policy a [`Hub`](crate::Hub) enforces.
#[derive(Clone, Debug, Default)]
pub enum Access {
    /// No rules: every identity may do everything (an embedder that does
    /// its own checks, and this crate's tests).
    #[default]
    Open,
    /// Every request of a non-admin identity is checked against these rules.
    Enforced(Rules),
    /// Rules were required but are missing or do not compile: every request
    /// of a non-admin identity is denied, with this reason in the log.
    Closed(String),
}

/// What a decision read, when it allowed: the documents its rules looked up
/// (a listener is checked again when one of them changes).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Allowed {
    pub(crate) looked_up: Vec<DocPath>,
}

/// Who asks, when, and where the documents rules read come from.
pub(crate) struct Asker<'a, S> {
    pub(crate) storage: &'a S,
    /// The collection the object serves (`None`: every collection is local).
    pub(crate) local: Option<&'a CollectionPath>,
    pub(crate) identity: &'a Identity,
    pub(crate) now: u64,
    pub(crate) fetched: &'a FetchedDocs,
}

/// One write of a staged batch: the document before it and after it.
pub(crate) struct Step<'a> {
    pub(crate) write: &'a Write,
    pub(crate) before: Option<&'a StoredDoc>,
    pub(crate) after: Option<&'a StoredDoc>,
}

impl Access {
    /// The rules to evaluate for `identity`, `Ok(None)` when nothing is checked.
    fn rules_for(&self, identity: &Identity) -> Result<Option<&Rules>, Error> {
        if *identity == Identity::Admin {
            return Ok(None);
        }
        match self {
            Access::Open => Ok(None),
            Access::Enforced(rules) => Ok(Some(rules)),
            Access::Closed(why) => Err(Error::Denied(Denial::new(why.clone()))),
        }
    }

    /// Whether the asker may read document `path`, stored as `stored`: the
    /// `get` rule. A denial does not depend on whether it exists.
    pub(crate) fn allow_get<S: Storage>(
        &self,
        asker: &Asker<'_, S>,
        path: &DocPath,
        stored: Option<&StoredDoc>,
    ) -> Result<Allowed, Error> {
        let Some(rules) = self.rules_for(asker.identity)? else {
            return Ok(Allowed::default());
        };
        let collection = path.collection();
        let request = request(
            asker,
            Method::Get,
            convert::doc_path(&collection, path.id()),
        );
        let resource = stored.map(|d| convert::document(&collection, &d.id, &d.data));
        let lookup = Lookup::new(asker.storage, asker.local, asker.fetched);
        let mut budget = Budget::single();
        let decision = eval::authorize(
            &rules.ruleset,
            &request,
            resource.as_ref(),
            &lookup,
            &mut budget,
        );
        settle(decision, &lookup, &budget)
    }

    /// Whether the asker may run `query` (a query, a count or a query
    /// listen): the `list` rule must hold for every document the query could
    /// return, proved from its filters, limit and order alone.
    pub(crate) fn allow_list<S: Storage>(
        &self,
        asker: &Asker<'_, S>,
        query: &Query,
    ) -> Result<Allowed, Error> {
        let Some(rules) = self.rules_for(asker.identity)? else {
            return Ok(Allowed::default());
        };
        let mut request = request(
            asker,
            Method::List,
            convert::collection_path(&query.collection),
        );
        request.query = Some(convert::query(query));
        let lookup = Lookup::new(asker.storage, asker.local, asker.fetched);
        let mut budget = Budget::query();
        let decision = eval::authorize(&rules.ruleset, &request, None, &lookup, &mut budget);
        settle(decision, &lookup, &budget)
    }

    /// Whether the asker may make every write of a staged batch on
    /// `collection` (`staged`: each written id's state after the whole batch,
    /// for `getAfter()`). A denial names the first write denied. A write
    /// whose success or failure says something about the stored document (a
    /// precondition, a patch with `test`, a `verify`) must also be allowed
    /// to read it.
    pub(crate) fn allow_batch<S: Storage>(
        &self,
        asker: &Asker<'_, S>,
        collection: &CollectionPath,
        steps: &[Step<'_>],
        staged: &HashMap<String, Option<StoredDoc>>,
    ) -> Result<(), Error> {
        // Closed access denies the batch at its first write, as rules would.
        let Some(rules) = self.rules_for(asker.identity).map_err(|e| e.at_write(0))? else {
            return Ok(());
        };
        let mut lookup = Lookup::new(asker.storage, asker.local, asker.fetched);
        lookup.after = Some((collection, staged));
        let mut budget = Budget::batch();
        for step in steps {
            let path = convert::doc_path(collection, &step.write.id);
            match step.write.kind {
                WriteKind::Verify => budget.add_verified(path),
                _ => budget.add_written(path),
            }
        }
        for (index, step) in steps.iter().enumerate() {
            let decision = decide_write(rules, asker, collection, step, &lookup, &mut budget);
            settle(decision, &lookup, &budget).map_err(|e| e.at_write(index))?;
            if probes(step.write) {
                self.allow_get(asker, &collection.doc(&step.write.id)?, step.before)
                    .map_err(|e| e.at_write(index))?;
            }
        }
        Ok(())
    }

    /// The error to answer for write `index` of a batch that failed on the
    /// state of its document (`before`): the failure itself when the asker
    /// may read that document, `permission_denied` otherwise, so a failure
    /// never tells what the rules would not (spec 14.4).
    pub(crate) fn gate<S: Storage>(
        &self,
        asker: &Asker<'_, S>,
        path: &DocPath,
        before: Option<&StoredDoc>,
        failure: Error,
        index: usize,
    ) -> Error {
        match self.allow_get(asker, path, before) {
            Ok(_) => failure,
            Err(e) => e.at_write(index),
        }
    }
}

/// Whether a write's outcome reveals the stored document beyond what its
/// write rule is told: a precondition, a JSON Patch `test`, a `verify`.
fn probes(write: &Write) -> bool {
    let tests = |patch: &serde_json::Value| {
        patch.as_array().is_some_and(|ops| {
            ops.iter()
                .any(|op| op.get("op").and_then(|o| o.as_str()) == Some("test"))
        })
    };
    !write.precondition.is_none()
        || match &write.kind {
            WriteKind::Patch { patch } => tests(patch),
            _ => false,
        }
}

fn decide_write<S: Storage>(
    rules: &Rules,
    asker: &Asker<'_, S>,
    collection: &CollectionPath,
    step: &Step<'_>,
    lookup: &Lookup<'_, S>,
    budget: &mut Budget,
) -> Decision {
    let path = convert::doc_path(collection, &step.write.id);
    let resource = step
        .before
        .map(|d| convert::document(collection, &d.id, &d.data));
    // Not an upsert, even for a `set`: the evaluator would also run the
    // other method's statements (for the emulator's coverage report), which
    // never change the decision and cost about 2 µs (`explain` keeps them).
    let (method, after) = match (&step.write.kind, step.before, step.after) {
        (WriteKind::Verify, ..) => {
            budget.next_verify();
            let mut request = request(asker, Method::Get, path);
            request.verify = true;
            request.in_transaction = true;
            request.resource = resource.clone();
            return eval::authorize(&rules.ruleset, &request, resource.as_ref(), lookup, budget);
        }
        (_, _, None) => (Method::Delete, None),
        (_, None, Some(after)) => (Method::Create, Some(after)),
        (_, Some(_), Some(after)) => (Method::Update, Some(after)),
    };
    budget.next_write();
    let mut request = request(asker, method, path);
    request.in_transaction = true;
    request.resource = after.map(|d| convert::document(collection, &d.id, &d.data));
    eval::authorize(&rules.ruleset, &request, resource.as_ref(), lookup, budget)
}

/// A request of `method` on `path` with the asker's identity and time.
fn request<S>(asker: &Asker<'_, S>, method: Method, path: Vec<String>) -> Request {
    Request {
        method,
        upsert: false,
        path,
        auth: convert::auth(asker.identity),
        time: convert::time(asker.now),
        resource: None,
        query: None,
        in_transaction: false,
        write_fields: None,
        transforms: None,
        auto_id: false,
        verify: false,
    }
}

/// A decision as the engine answers it: a storage failure first, then
/// documents of other collections the rules need (fetch them and decide
/// again), then the decision itself.
fn settle<S: Storage>(
    decision: Decision,
    lookup: &Lookup<'_, S>,
    budget: &Budget,
) -> Result<Allowed, Error> {
    if let Some(failed) = lookup.failed.borrow_mut().take() {
        return Err(failed.into());
    }
    let missing = std::mem::take(&mut *lookup.missing.borrow_mut());
    if !missing.is_empty() {
        return Err(Error::NeedDocuments(missing));
    }
    match decision {
        Decision::Allow => Ok(Allowed {
            looked_up: budget
                .looked_up
                .iter()
                .filter_map(|p| convert::parse_doc_path(p))
                .collect(),
        }),
        Decision::Deny(reason) => Err(Error::Denied(Denial::new(reason))),
    }
}
