//! What the files routes (spec 15) need from the hub: a write checked
//! without being written (`check_commit`, asked before a file's bytes are
//! stored), and a collection only the driver writes (`driver_written`, the
//! files' metadata), whose commit frames are refused while its listeners
//! still see every change.

use blaze_core::{
    Access, Caller, Database, Error, Hub, HubConfig, MemoryStorage, Output, Rules, Storage,
};
use blaze_protocol::{CollectionPath, DocPath, ErrorCode, Identity, Write};
use serde_json::{json, Value};

const NOW: u64 = 1_700_000_000_000;

/// Storage-like rules on metadata documents: signed-in users upload images
/// under 1 MB as themselves, and replace only their own.
const RULES: &str = r#"
rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    match /_files/{path=**} {
      allow read: if request.auth != null;
      allow create: if request.auth != null
        && request.resource.data.size < 1000000
        && request.resource.data.contentType.matches('image/.*')
        && request.resource.data.uploadedBy == request.auth.uid;
      allow update: if resource.data.uploadedBy == request.auth.uid
        && request.resource.data.uploadedBy == request.auth.uid;
    }
  }
}
"#;

fn user(uid: &str) -> Caller {
    let claims = json!({"sub": uid}).as_object().unwrap().clone();
    Caller::new(Identity::User {
        uid: uid.into(),
        claims,
    })
}

fn hub(scope: &str, access: Access) -> Hub<MemoryStorage> {
    let db = Database::new(MemoryStorage::new(), Default::default());
    Hub::new(db, HubConfig::default())
        .with_access(access)
        .scoped(CollectionPath::parse(scope).unwrap())
}

fn rules() -> Access {
    Access::Enforced(Rules::compile(RULES).unwrap())
}

/// The collection's latest sequence number.
fn seq(hub: &Hub<MemoryStorage>, collection: &CollectionPath) -> u64 {
    hub.database().storage().seq(collection).unwrap()
}

fn set(id: &str, data: Value) -> Vec<Write> {
    serde_json::from_value(json!([{"op": "set", "id": id, "data": data}])).unwrap()
}

fn meta(size: u64, content_type: &str, by: &str) -> Value {
    json!({"name": "a.png", "size": size, "contentType": content_type, "uploadedBy": by, "key": "o/k1"})
}

fn code(result: Result<impl std::fmt::Debug, Error>) -> ErrorCode {
    result.expect_err("refused").to_body().code
}

/// Every frame `conn` was sent, parsed.
fn frames(hub: &mut Hub<MemoryStorage>, conn: u64) -> Vec<Value> {
    let mut out = Vec::new();
    while let Some(output) = hub.poll_output() {
        if let Output::Send { conn: c, frame } = output {
            if c == conn {
                out.push(serde_json::from_str(&frame).unwrap());
            }
        }
    }
    out
}

#[test]
fn check_commit_decides_as_a_commit_would_and_writes_nothing() {
    let folder = CollectionPath::parse("_files/avatars/_files").unwrap();
    let path = DocPath::parse("_files/avatars/_files/a.png").unwrap();
    let mut hub = hub(folder.as_str(), rules());
    let alice = user("alice");
    // Allowed: the rules see the proposed metadata.
    let ok = hub.check_commit(
        &alice,
        &folder,
        &set("a.png", meta(10, "image/png", "alice")),
        NOW,
    );
    assert!(ok.is_ok(), "{ok:?}");
    assert!(
        !hub.database().get(&path).unwrap().exists,
        "nothing written"
    );
    assert_eq!(seq(&hub, &folder), 0, "no commit");
    // Denied on size, type and owner, before any byte would be stored.
    for data in [
        meta(2_000_000, "image/png", "alice"),
        meta(10, "text/html", "alice"),
        meta(10, "image/png", "bob"),
    ] {
        let refused = hub.check_commit(&alice, &folder, &set("a.png", data.clone()), NOW);
        assert_eq!(code(refused), ErrorCode::PermissionDenied, "{data}");
    }
    // Limits are checked too: an invalid id is the write's error.
    let refused = hub.check_commit(
        &alice,
        &folder,
        &set("..", meta(10, "image/png", "alice")),
        NOW,
    );
    assert_ne!(code(refused), ErrorCode::PermissionDenied);
    // The update rule reads the stored document: bob may not replace alice's.
    hub.handle_commit(
        &alice,
        &folder,
        &set("a.png", meta(10, "image/png", "alice")),
        NOW,
    )
    .unwrap();
    let bob = user("bob");
    let refused = hub.check_commit(
        &bob,
        &folder,
        &set("a.png", meta(10, "image/png", "bob")),
        NOW,
    );
    assert_eq!(code(refused), ErrorCode::PermissionDenied);
    let again = hub.check_commit(
        &alice,
        &folder,
        &set("a.png", meta(20, "image/png", "alice")),
        NOW,
    );
    assert!(again.is_ok(), "{again:?}");
    let stored = hub.database().get(&path).unwrap();
    assert_eq!(
        stored.data.unwrap()["size"],
        json!(10),
        "the check changed nothing"
    );
    assert_eq!(seq(&hub, &folder), 1);
}

#[test]
fn a_driver_written_collection_refuses_commit_frames_but_serves_listeners() {
    let folder = CollectionPath::parse("_files").unwrap();
    // Open access, so the refusal is not the rules'.
    let mut hub = hub(folder.as_str(), Access::Open).driver_written();
    hub.handle_open(1, 0);
    let hello = json!({"type": "hello", "protocol": 1, "auth": null});
    hub.handle_frame(1, &hello.to_string(), NOW);
    frames(&mut hub, 1);
    let listen = json!({"type": "listen", "rid": 1, "query": {"collection": folder.as_str()}});
    hub.handle_frame(1, &listen.to_string(), NOW);
    let commit = json!({"type": "commit", "rid": 2, "collection": folder.as_str(),
        "writes": [{"op": "set", "id": "x", "data": meta(1, "image/png", "")}]});
    hub.handle_frame(1, &commit.to_string(), NOW);
    let sent = frames(&mut hub, 1);
    let refusal = sent
        .iter()
        .find(|f| f["rid"] == json!(2))
        .expect("answered");
    assert_eq!(refusal["type"], "error");
    assert_eq!(refusal["error"]["code"], "permission_denied");
    assert_eq!(seq(&hub, &folder), 0, "nothing written");
    // The driver's commit reaches the listener.
    let admin = Caller::new(Identity::Admin);
    hub.handle_commit(&admin, &folder, &set("x", meta(1, "image/png", "")), NOW)
        .unwrap();
    let sent = frames(&mut hub, 1);
    assert!(
        sent.iter().any(|f| f["type"] == "change"),
        "the listener sees the driver's write: {sent:?}"
    );
}
