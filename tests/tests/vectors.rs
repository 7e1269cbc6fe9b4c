//! Runs every conformance vector of `spec/vectors/` against the Rust code.

use blaze_core::{collection_contents, Database, Error, MemoryStorage};
use blaze_json::merge::apply_merge_patch;
use blaze_json::patch::apply_json_patch;
use blaze_protocol::{
    decode_body, decode_client, encode, CollectionPath, ErrorCode, Query, Write, WriteKind,
};
use blaze_tests::{case_limits, expect, object, run_all};
use serde_json::{json, Value};

fn code(e: &Error) -> (String, Option<usize>) {
    let body = e.to_body();
    (body.code.as_str().to_owned(), body.write_index)
}

#[test]
fn codec_vectors() {
    run_all("codec.json", |case| {
        let frame = case["frame"].as_str().ok_or("frame must be a string")?;
        match decode_client(frame, &case_limits(case)) {
            Ok(msg) => {
                let encoded: Value =
                    serde_json::from_str(&encode(&msg)).map_err(|e| e.to_string())?;
                expect(case, "type", Ok(encoded["type"].clone()))
            }
            Err(e) => {
                if let Some(rid) = case["expect"].get("rid") {
                    if rid.as_u64() != e.rid {
                        return Err(format!("rid {:?}, expected {rid}", e.rid));
                    }
                }
                expect(case, "type", Err((e.code.as_str().to_owned(), None)))
            }
        }
    });
}

#[test]
fn patch_vectors() {
    run_all("patch.json", |case| {
        let doc = object(case, "doc");
        let limits = case_limits(case);
        let outcome = match case["kind"].as_str() {
            Some("json") => apply_json_patch(&doc, &case["patch"], &limits),
            Some("merge") => apply_merge_patch(&doc, &case["patch"], &limits),
            other => return Err(format!("unknown kind {other:?}")),
        };
        expect(
            case,
            "doc",
            outcome
                .map(Value::Object)
                .map_err(|r| (r.code.as_str().to_owned(), None)),
        )
    });
}

/// A database holding `docs` in collection `c`, one commit per document.
fn seeded(case: &Value) -> Result<Database<MemoryStorage>, String> {
    let mut db = Database::new(MemoryStorage::new(), case_limits(case));
    for (id, data) in object(case, "docs") {
        let write = Write {
            id,
            kind: WriteKind::Set { data },
            precondition: Default::default(),
        };
        db.commit(&CollectionPath::parse("c").unwrap(), &[write], 1)
            .map_err(|e| format!("seeding failed: {e}"))?;
    }
    Ok(db)
}

#[test]
fn query_vectors() {
    run_all("query.json", |case| {
        let db = seeded(case)?;
        // Decoded as a server decodes a query: a bad collection path is `invalid_path`.
        let query = match decode_body::<Query>(&case["query"].to_string(), &case_limits(case)) {
            Ok(query) => query,
            Err(e) if e.code == ErrorCode::InvalidPath => {
                return expect(case, "ids", Err((e.code.as_str().to_owned(), None)))
            }
            Err(e) => return Err(format!("bad query: {e}")),
        };
        if case["count"] == json!(true) {
            let outcome = db.count(&query).map(|(_, n)| json!(n));
            return expect(case, "count", outcome.map_err(|e| code(&e)));
        }
        let outcome = db
            .query(&query)
            .map(|out| out.docs.into_iter().map(|d| json!(d.id)).collect());
        expect(case, "ids", outcome.map_err(|e| code(&e)))
    });
}

#[test]
fn write_vectors() {
    run_all("write.json", |case| {
        let collection = case["collection"]
            .as_str()
            .ok_or("collection must be a string")?;
        let path = CollectionPath::parse(collection);
        let mut db = Database::new(MemoryStorage::new(), case_limits(case));
        let before = object(case, "before");
        if !before.is_empty() {
            let sets: Vec<Write> = before
                .iter()
                .map(|(id, data)| Write {
                    id: id.clone(),
                    kind: WriteKind::Set { data: data.clone() },
                    precondition: Default::default(),
                })
                .collect();
            let path = path
                .as_ref()
                .map_err(|e| format!("before needs a valid path: {e}"))?;
            db.commit(path, &sets, 1)
                .map_err(|e| format!("before failed: {e}"))?;
        }
        let writes: Vec<Write> = serde_json::from_value(case["writes"].clone())
            .map_err(|e| format!("bad writes: {e}"))?;
        // The batch's collection path is checked first (spec 8.4 step 1).
        let outcome = match &path {
            Ok(path) => db.commit(path, &writes, 2),
            Err(e) => Err(Error::from(e.clone())),
        };
        let contents = |db: &Database<MemoryStorage>| match &path {
            Ok(p) => collection_contents(db.storage(), p).map_err(|e| e.to_string()),
            Err(_) => Ok(Default::default()),
        };
        match outcome {
            Ok(_) => {
                let after = contents(&db)?;
                expect(case, "after", Ok(Value::Object(after)))?;
                let Some(versions) = case["expect"].get("versions").and_then(Value::as_object)
                else {
                    return Ok(());
                };
                for (id, want) in versions {
                    let doc = path.clone().and_then(|p| p.doc(id));
                    let got = db
                        .get(&doc.map_err(|e| e.to_string())?)
                        .map_err(|e| e.to_string())?
                        .version;
                    if got != want.as_u64() {
                        return Err(format!("{id}: version {got:?}, expected {want}"));
                    }
                }
                Ok(())
            }
            Err(e) => {
                if contents(&db)? != before {
                    return Err("a failed batch changed the stored data".into());
                }
                expect(case, "after", Err(code(&e)))
            }
        }
    });
}
