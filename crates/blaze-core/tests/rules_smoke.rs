//! Compiles the project's `blaze.rules` (the demo's) and checks its typical
//! decisions through the hub's HTTP-facing API.

use blaze_core::{Access, Caller, Database, Hub, HubConfig, Limits, MemoryStorage, Rules};
use blaze_protocol::{CollectionPath, DocPath, ErrorCode, Identity, Query, Write, WriteKind};
use serde_json::json;

fn user(uid: &str) -> Caller {
    let claims = json!({"sub": uid}).as_object().unwrap().clone();
    Caller::new(Identity::User {
        uid: uid.into(),
        claims,
    })
}

fn hub() -> Hub<MemoryStorage> {
    let text = include_str!("../../../blaze.rules");
    let rules = Rules::compile(text).expect("blaze.rules compiles");
    let db = Database::new(MemoryStorage::new(), Limits::default());
    Hub::new(db, HubConfig::default()).with_access(Access::Enforced(rules))
}

fn set(id: &str, data: serde_json::Value) -> Write {
    Write {
        id: id.into(),
        kind: WriteKind::Set { data },
        precondition: Default::default(),
    }
}

#[test]
fn owners_alone_read_their_todos() {
    let mut hub = hub();
    let todos = CollectionPath::parse("todos").unwrap();
    hub.handle_commit(
        &user("alice"),
        &todos,
        &[set("a1", json!({"owner": "alice"}))],
        1,
    )
    .unwrap();
    let denied = hub.handle_commit(
        &user("bob"),
        &todos,
        &[set("b1", json!({"owner": "alice"}))],
        2,
    );
    assert_eq!(denied.unwrap_err().code(), ErrorCode::PermissionDenied);
    let a1 = DocPath::parse("todos/a1").unwrap();
    assert!(hub.get(&user("alice"), &a1).unwrap().exists);
    assert_eq!(
        hub.get(&user("bob"), &a1).unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let missing = DocPath::parse("todos/nothing").unwrap();
    assert_eq!(
        hub.get(&user("bob"), &missing).unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    let mut mine: Query = serde_json::from_value(
        json!({"collection": "todos", "where": {"field": "owner", "op": "==", "value": "alice"}}),
    )
    .unwrap();
    assert_eq!(hub.query(&user("alice"), &mine).unwrap().docs.len(), 1);
    assert_eq!(
        hub.query(&user("bob"), &mine).unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    mine.filter = None;
    assert_eq!(
        hub.query(&user("alice"), &mine).unwrap_err().code(),
        ErrorCode::PermissionDenied
    );
    assert_eq!(hub.query(&Caller::admin(), &mine).unwrap().docs.len(), 1);
}
