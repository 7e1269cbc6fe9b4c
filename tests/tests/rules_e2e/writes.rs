//! Writes: a failure never tells bob what the rules would not let him read
//! (a patch's `test`, a precondition, a `verify`, a `create` over an
//! existing document), and writes the rules deny change nothing, in batches
//! too, with the denied write named; a commit id is its caller's own, so
//! another caller sending it gets no other's answer.

use serde_json::{json, Value};

use crate::support::{admin_commit, assert_denied, assert_ws_denied, stored, User};

/// Probing alice's document through writes: `permission_denied` whether the
/// probe would pass or fail, whether the document exists or not; the same
/// probes on bob's own document answer their real failure.
pub async fn write_probes(port: u16) {
    let secret = "SECRET-probes-5e0d";
    let coll = "runs/probes/todos";
    admin_commit(
        port,
        coll,
        json!([
            {"op": "set", "id": "a1", "data": {"owner": "alice", "secret": secret, "n": 1}},
            {"op": "set", "id": "b1", "data": {"owner": "bob", "n": 1}},
        ]),
    )
    .await;
    let before = stored(port, coll).await;
    let version = before["seq"].as_u64().expect("a seq");
    let bob = User::new(port, "bob").never_sees(secret);
    let a1 = format!("{coll}/a1");

    // A JSON Patch `test` of alice's secret: right or wrong, the same answer.
    let probe = |value: &str| {
        json!([{"op": "test", "path": "/secret", "value": value},
                                     {"op": "replace", "path": "/n", "value": 1}])
    };
    let right = assert_denied(&bob.patch(&a1, probe(secret)).await, Some(0), "test passes");
    let wrong = assert_denied(&bob.patch(&a1, probe("guess")).await, Some(0), "test fails");
    assert_eq!(right, wrong);
    let absent = json!([{"op": "test", "path": "/missing", "value": 1}]);
    assert_denied(
        &bob.patch(&a1, absent).await,
        Some(0),
        "test of a missing member",
    );
    let ghost = bob.patch(&format!("{coll}/ghost"), probe("x")).await;
    assert_eq!(assert_denied(&ghost, Some(0), "a missing document"), right);
    // In a batch, after a write bob may make: the probe is named.
    let batch = bob
        .commit(
            coll,
            json!([{"op": "merge", "id": "b1", "patch": {"n": 2}},
                   {"op": "patch", "id": "a1", "patch": probe(secret)}]),
        )
        .await;
    assert_denied(&batch, Some(1), "a probe in a batch");

    // Preconditions: the right version and a wrong one answer alike.
    let right = bob.delete(&a1, Some(&format!("\"{version}\""))).await;
    let wrong = bob.delete(&a1, Some("\"999\"")).await;
    assert_eq!(
        assert_denied(&right, Some(0), "If-Match right"),
        assert_denied(&wrong, Some(0), "If-Match wrong")
    );
    // `create` over alice's document: denied, not `already_exists`.
    let mine = json!({"owner": "bob"});
    let over = bob.create(&a1, mine.clone()).await;
    assert_denied(&over, Some(0), "create over a1");
    let over = bob
        .commit(coll, json!([{"op": "create", "id": "a1", "data": mine}]))
        .await;
    assert_denied(&over, Some(0), "commit create over a1");

    // The same over the WebSocket, `verify` too.
    let mut ws = bob.ws(coll).await;
    let commit = |writes: Value| json!({"type": "commit", "collection": coll, "writes": writes});
    let frames = [
        (
            commit(json!([{"op": "create", "id": "a1", "data": {"owner": "bob"}}])),
            0,
        ),
        (
            commit(json!([{"op": "patch", "id": "a1", "patch": probe(secret)}])),
            0,
        ),
        (
            commit(json!([{"op": "patch", "id": "a1", "patch": probe("guess")}])),
            0,
        ),
        (
            commit(json!([{"op": "verify", "id": "a1", "precondition": {"version": version}}])),
            0,
        ),
        (
            commit(json!([{"op": "verify", "id": "a1", "precondition": {"version": 999}}])),
            0,
        ),
        (
            commit(
                json!([{"op": "verify", "id": "b1", "precondition": {"version": version}},
                          {"op": "verify", "id": "a1", "precondition": {"exists": true}}]),
            ),
            1,
        ),
    ];
    for (frame, index) in frames {
        let answer = ws.ask(frame.clone()).await;
        assert_ws_denied(&answer, Some(index), &frame.to_string());
    }

    // On bob's own document, the real failures.
    let b1 = format!("{coll}/b1");
    let failed = bob
        .patch(&b1, json!([{"op": "test", "path": "/n", "value": 99}]))
        .await;
    assert_eq!(
        failed.code().as_deref(),
        Some("patch_test_failed"),
        "{}",
        failed.body
    );
    let failed = bob.create(&b1, json!({"owner": "bob"})).await;
    assert_eq!(
        (failed.status, failed.code().as_deref()),
        (409, Some("already_exists"))
    );
    let failed = bob.delete(&b1, Some("\"999\"")).await;
    assert_eq!(
        failed.code().as_deref(),
        Some("precondition_failed"),
        "{}",
        failed.body
    );
    let verify = commit(json!([{"op": "verify", "id": "b1", "precondition": {"version": 999}}]));
    let failed = ws.ask(verify).await;
    assert_eq!(failed["error"]["code"], "precondition_failed", "{failed}");
    ws.close().await;

    // Nothing changed, and the version did not move.
    assert_eq!(stored(port, coll).await, before);
}

/// Writes the rules deny change nothing, alone or in a batch (the error
/// names the first denied write), over HTTP and WebSocket; alice's listener
/// hears nothing of them, and the next allowed commit takes the next seq.
pub async fn denied_writes(port: u16) {
    let coll = "runs/writes/todos";
    admin_commit(
        port,
        coll,
        json!([
            {"op": "set", "id": "a1", "data": {"owner": "alice", "n": 1}},
            {"op": "set", "id": "b1", "data": {"owner": "bob", "n": 1}},
        ]),
    )
    .await;
    let before = stored(port, coll).await;
    let alice = User::new(port, "alice");
    let bob = User::new(port, "bob");
    let anonymous = User::anonymous(port);
    let mut listener = alice.ws(coll).await;
    let snapshot = listener
        .listen(
            json!({"collection": coll, "where": {"field": "owner", "op": "==", "value": "alice"}}),
        )
        .await;
    assert_eq!(snapshot["type"], "snapshot", "{snapshot}");
    let path = |id: &str| format!("{coll}/{id}");

    let singles = [
        (
            "bob sets a1",
            bob.put(&path("a1"), json!({"owner": "bob"})).await,
        ),
        (
            "bob merges a1",
            bob.merge(&path("a1"), json!({"n": 2})).await,
        ),
        (
            "bob takes a1",
            bob.merge(&path("a1"), json!({"owner": "bob"})).await,
        ),
        ("bob deletes a1", bob.delete(&path("a1"), None).await),
        (
            "bob creates for alice",
            bob.create(&path("c1"), json!({"owner": "alice"})).await,
        ),
        (
            "bob sets for alice",
            bob.put(&path("c2"), json!({"owner": "alice"})).await,
        ),
        (
            "bob gives b1 away",
            bob.merge(&path("b1"), json!({"owner": "alice"})).await,
        ),
        (
            "alice gives a1 away",
            alice.merge(&path("a1"), json!({"owner": "bob"})).await,
        ),
        (
            "anonymous creates",
            anonymous.put(&path("c3"), json!({"owner": null})).await,
        ),
        (
            "anonymous deletes",
            anonymous.delete(&path("b1"), None).await,
        ),
    ];
    for (name, answer) in &singles {
        assert_denied(answer, Some(0), name);
    }
    let batches = [
        (
            json!([{"op": "create", "id": "c4", "data": {"owner": "bob"}},
                   {"op": "set", "id": "b1", "data": {"owner": "bob", "n": 2}},
                   {"op": "delete", "id": "a1"}]),
            2,
        ),
        (
            json!([{"op": "create", "id": "c5", "data": {"owner": "bob"}},
                   {"op": "merge", "id": "a1", "patch": {"n": 9}},
                   {"op": "delete", "id": "b1"}]),
            1,
        ),
        (
            // Created and handed over within the batch: the update is denied.
            json!([{"op": "create", "id": "c6", "data": {"owner": "bob"}},
                   {"op": "merge", "id": "c6", "patch": {"owner": "alice"}}]),
            1,
        ),
    ];
    let mut ws = bob.ws(coll).await;
    for (writes, index) in &batches {
        let answer = bob.commit(coll, writes.clone()).await;
        assert_denied(&answer, Some(*index), &writes.to_string());
        let frame = json!({"type": "commit", "collection": coll, "writes": writes});
        let answer = ws.ask(frame).await;
        assert_ws_denied(&answer, Some(*index), &writes.to_string());
    }
    ws.close().await;

    // Nothing stored changed; alice's listener heard nothing.
    assert_eq!(stored(port, coll).await, before);
    let heard = listener.sync().await;
    assert!(heard.is_empty(), "{heard:?}");
    // The next allowed commit takes the very next seq.
    let allowed = bob
        .commit(
            coll,
            json!([{"op": "create", "id": "c7", "data": {"owner": "bob"}}]),
        )
        .await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(
        allowed.json()["seq"].as_u64(),
        before["seq"].as_u64().map(|s| s + 1)
    );
    listener.close().await;
}

/// A commit id is remembered per caller (spec 8.7): bob re-sending alice's
/// commit with her commit id gets his own commit checked (denied), not her
/// answer (which names her document); the id stays free for a commit of
/// his, and alice's retry still gets her own answer.
pub async fn commit_ids_are_the_callers_own(port: u16) {
    let coll = "runs/commit-ids/todos";
    const HERS: &str = "alices-private-order";
    let alice = User::new(port, "alice");
    let bob = User::new(port, "bob").never_sees(HERS);
    let anonymous = User::anonymous(port).never_sees(HERS);
    let alices = json!([{"op": "create", "id": HERS, "data": {"owner": "alice"}}]);
    let body =
        |writes: &Value| json!({"collection": coll, "writes": writes, "commit_id": "order-7"});

    let mut hers = alice.ws(coll).await;
    let first = hers
        .ask(
            json!({"type": "commit", "collection": coll, "writes": alices, "commit_id": "order-7"}),
        )
        .await;
    assert_eq!(first["type"], "committed", "{first}");
    let before = stored(port, coll).await;

    let mut his = bob.ws(coll).await;
    let frame =
        json!({"type": "commit", "collection": coll, "writes": alices, "commit_id": "order-7"});
    assert_ws_denied(
        &his.ask(frame).await,
        Some(0),
        "bob re-sends alice's commit id",
    );
    let sent = body(&alices).to_string();
    for user in [&bob, &anonymous] {
        let answer = user.send("POST", "/v1/commit", &[], &sent).await;
        assert_denied(&answer, Some(0), "alice's commit id over HTTP");
    }
    assert_eq!(stored(port, coll).await, before, "nothing changed");

    // The id is bob's too, for his own commit; then each retry is its caller's.
    let bobs = json!([{"op": "create", "id": "b1", "data": {"owner": "bob"}}]);
    let own = bob
        .send("POST", "/v1/commit", &[], &body(&bobs).to_string())
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert_eq!(own.json()["seq"], first["seq"].as_u64().unwrap() + 1);
    let again = bob
        .send("POST", "/v1/commit", &[], &body(&bobs).to_string())
        .await;
    assert_eq!(again.json()["seq"], own.json()["seq"], "{}", again.body);
    let retry = alice.send("POST", "/v1/commit", &[], &sent).await;
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.json()["seq"], first["seq"], "{}", retry.body);
    assert_eq!(retry.json()["writes"], first["writes"]);
    let docs = stored(port, coll).await;
    assert_eq!(
        crate::support::ids(&docs["docs"]),
        [HERS, "b1"].map(String::from)
    );
    hers.close().await;
    his.close().await;
}
