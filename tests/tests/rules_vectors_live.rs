//! Runs every rules vector of `spec/vectors/rules/` against the real worker
//! under `wrangler dev`: one server per vector file, its rules passed as
//! `BLAZE_RULES`; the file's documents written with the development admin
//! key over HTTP (and written again after a case changed them); each case
//! asked over HTTP with a minted HS256 token (a listen over WebSocket).
//! `request.time` is the server's clock here, not the file's `now`.

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blaze_auth::mint;
use blaze_cli::rules::file::{Case, Named, Request, TestsFile, Who};
use blaze_cli::rules::local::Outcome;
use blaze_tests::live::{self, e2e, http, Answer, WranglerDev, Ws};
use blaze_tests::rules_files;
use serde_json::{json, Map, Value};

/// The development identity of `scripts/run.sh`.
const SECRET: &str = "blaze-dev-secret-not-for-production";
const ADMIN_KEY: &str = "blaze-dev-admin-key";

/// The whole binary's time limit: a `wrangler dev` start per file and
/// every case.
const RUN_LIMIT: Duration = Duration::from_secs(600);

#[test]
fn rules_vectors_live() {
    let Some(_serial) = e2e() else { return };
    live::run(RUN_LIMIT, async move {
        let mut failed = Vec::new();
        for path in rules_files() {
            failed.extend(run_file(&path).await);
        }
        assert!(failed.is_empty(), "failed live:\n{}", failed.join("\n"));
    });
}

/// Runs the cases of one vector file on a server of its own; returns the failures.
async fn run_file(path: &Path) -> Vec<String> {
    let file = TestsFile::read(path).unwrap_or_else(|e| panic!("{e}"));
    let source = file
        .rules_text(path.parent().expect("a folder"))
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("a vector names its rules");
    let stem = path.file_stem().unwrap_or_default().to_string_lossy();
    let var = format!("BLAZE_RULES:{source}");
    let server = WranglerDev::start_with_vars(&format!("rules-{stem}"), &[&var]);
    let port = server.port;
    let mut failed = Vec::new();
    let (mut passed, mut skipped) = (0, 0);
    let mut dirty = true;
    for case in &file.cases {
        if let Some(reason) = &case.in_process_only {
            println!("{stem}: skipped {}: {reason}", case.name);
            skipped += 1;
            continue;
        }
        if dirty {
            seed(port, &file).await;
        }
        let outcome = run_case(port, case).await;
        dirty = matches!(case.request, Request::Commit(_)) && outcome == Outcome::Allowed;
        if outcome.satisfies(&case.expect) {
            passed += 1;
        } else {
            failed.push(format!(
                "{stem}: {}: expected {}, got {outcome}",
                case.name, case.expect
            ));
        }
    }
    println!(
        "{stem}: {passed} passed, {} failed, {skipped} skipped",
        failed.len()
    );
    if !failed.is_empty() {
        println!("{}", server.log_text());
    }
    drop(server);
    failed
}

/// Makes every collection the file's documents are in hold exactly those
/// documents (and every collection a case of the file writes hold none
/// beyond them), as the admin.
async fn seed(port: u16, file: &TestsFile) {
    let mut collections: std::collections::BTreeMap<String, Vec<Value>> = Default::default();
    for case in &file.cases {
        if let Request::Commit(batch) = &case.request {
            let collection = batch["collection"].as_str().expect("a collection");
            collections.entry(collection.to_owned()).or_default();
        }
    }
    for (path, data) in &file.docs {
        let (collection, id) = path.rsplit_once('/').expect("a document path");
        collections
            .entry(collection.to_owned())
            .or_default()
            .push(json!({"op": "set", "id": id, "data": data}));
    }
    for (collection, sets) in collections {
        let stored = admin(port, "/v1/query", &json!({"collection": collection})).await;
        let mut writes: Vec<Value> = stored.json()["docs"]
            .as_array()
            .expect("the admin lists the collection")
            .iter()
            .map(|doc| {
                let path = doc["path"].as_str().expect("a path");
                json!({"op": "delete", "id": path.rsplit_once('/').expect("a path").1})
            })
            .collect();
        writes.extend(sets);
        if writes.is_empty() {
            continue;
        }
        let body = json!({"collection": collection, "writes": writes});
        let answer = admin(port, "/v1/commit", &body).await;
        assert_eq!(answer.status, 200, "seeding {collection}: {}", answer.body);
    }
}

async fn admin(port: u16, route: &str, body: &Value) -> Answer {
    let auth = format!("Bearer {ADMIN_KEY}");
    http(
        port,
        "POST",
        route,
        &[("Authorization", &auth)],
        &body.to_string(),
    )
    .await
}

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs()
}

/// The credential a case asks with: none, the admin key, or a user's
/// development token with the case's claims.
fn credential(who: &Who) -> Option<String> {
    match who {
        Who::Named(Named::Anonymous) => None,
        Who::Named(Named::Admin) => Some(ADMIN_KEY.to_owned()),
        Who::User { uid, claims } => {
            let now = unix_secs();
            let mut all = Map::new();
            all.extend(claims.clone());
            all.extend(
                json!({"iss": "blaze-dev", "aud": "blaze", "sub": uid, "iat": now, "exp": now + 3600})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            );
            Some(mint::hs256(SECRET.as_bytes(), &Value::Object(all)))
        }
    }
}

async fn run_case(port: u16, case: &Case) -> Outcome {
    let credential = credential(&case.who);
    let auth = credential.as_ref().map(|c| format!("Bearer {c}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let answer = match &case.request {
        Request::Get(path) => http(port, "GET", &format!("/v1/docs/{path}"), &headers, "").await,
        Request::Query(query) => {
            http(port, "POST", "/v1/query", &headers, &query.to_string()).await
        }
        Request::Count(query) => {
            http(port, "POST", "/v1/count", &headers, &query.to_string()).await
        }
        Request::Commit(batch) => {
            http(port, "POST", "/v1/commit", &headers, &batch.to_string()).await
        }
        Request::Listen(what) => return listen(port, credential.as_deref(), what).await,
    };
    // `GET /v1/docs` of a missing document the rules let the caller read
    // is 404 `not_found` (protocol 11.2): `exists: false` over WebSocket.
    let absent = matches!(case.request, Request::Get(_))
        && answer.status == 404
        && answer.code().as_deref() == Some("not_found");
    if answer.status == 200 || absent {
        return Outcome::Allowed;
    }
    let body = answer.json();
    Outcome::Failed {
        code: answer
            .code()
            .unwrap_or_else(|| format!("status {}: {}", answer.status, answer.body)),
        write_index: body["error"]["write_index"].as_u64(),
        detail: None,
    }
}

/// A listen over WebSocket: `hello` with the credential, then `listen`.
async fn listen(port: u16, credential: Option<&str>, what: &Value) -> Outcome {
    let collection = match (what["doc"].as_str(), what["query"]["collection"].as_str()) {
        (Some(doc), _) => doc.rsplit_once('/').expect("a document path").0.to_owned(),
        (None, Some(collection)) => collection.to_owned(),
        _ => panic!("listen: `doc` or `query`, not {what}"),
    };
    let mut ws = Ws::raw(port, &collection).await;
    let mut hello = json!({"type": "hello", "protocol": 1});
    if let Some(credential) = credential {
        hello["auth"] = json!(credential);
    }
    ws.send_json(&hello).await;
    let welcome = ws.recv().await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let mut frame = what.clone();
    frame["type"] = json!("listen");
    let answer = ws.request(frame, &mut Vec::new()).await;
    ws.close().await;
    match answer["type"].as_str() {
        Some("snapshot") => Outcome::Allowed,
        _ => Outcome::Failed {
            code: answer["error"]["code"]
                .as_str()
                .map_or_else(|| answer.to_string(), str::to_owned),
            write_index: None,
            detail: None,
        },
    }
}
