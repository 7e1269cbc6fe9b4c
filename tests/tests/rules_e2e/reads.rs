//! Reads: a denied document, and queries and counts whose filters do or do
//! not prove the `list` rule.

use serde_json::{json, Value};

use crate::support::{admin_commit, assert_denied, assert_ws_denied, ids, stored, User};

/// HTTP and WebSocket reads of a document bob may not read answer
/// `permission_denied`, the same whether it exists or not, with a message
/// that names no value, no id and no user; the owner reads it.
pub async fn denied_reads(port: u16) {
    let secret = "SECRET-reads-4f1c";
    let coll = "runs/reads/todos";
    admin_commit(
        port,
        coll,
        json!([
            {"op": "set", "id": "a1", "data": {"owner": "alice", "secret": secret}},
            {"op": "set", "id": "b1", "data": {"owner": "bob", "title": "mine"}},
        ]),
    )
    .await;
    let alice = User::new(port, "alice");
    let bob = User::new(port, "bob").never_sees(secret);
    let anonymous = User::anonymous(port).never_sees(secret);

    // HTTP: an existing document and a missing one answer the same body.
    let existing = assert_denied(&bob.get(&format!("{coll}/a1")).await, None, "bob gets a1");
    let missing = assert_denied(&bob.get(&format!("{coll}/zz")).await, None, "bob gets zz");
    assert_eq!(existing, missing);
    assert_denied(
        &anonymous.get(&format!("{coll}/a1")).await,
        None,
        "anonymous gets a1",
    );
    assert_denied(
        &anonymous.get(&format!("{coll}/zz")).await,
        None,
        "anonymous gets zz",
    );
    for body in [&existing, &missing] {
        let text = body.to_string();
        for leak in ["alice", "a1", "zz", "owner", "bob"] {
            assert!(!text.contains(leak), "{leak} in {text}");
        }
    }
    // The header of the objects' own reads for the rules is not a client's
    // to send: the Worker drops it, and the request is bob's as any other.
    let a1 = format!("/v1/docs/{coll}/a1");
    for name in ["X-Blaze-Rules-Read", "x-blaze-rules-read"] {
        let forged = bob.send("GET", &a1, &[(name, "1")], "").await;
        assert_eq!(assert_denied(&forged, None, name), existing);
        let forged = anonymous.send("GET", &a1, &[(name, "1")], "").await;
        assert_eq!(assert_denied(&forged, None, name), existing);
    }
    let upgrade = [("X-Blaze-Rules-Read", "1"), ("Upgrade", "websocket")];
    let forged = bob.send("GET", &a1, &upgrade, "").await;
    assert_ne!(forged.status, 200, "{}", forged.body);
    // The owner reads hers; bob his.
    let read = alice.get(&format!("{coll}/a1")).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.json()["data"]["secret"], secret);
    assert_eq!(bob.get(&format!("{coll}/b1")).await.status, 200);
    // A missing document is denied to everyone under these rules: `resource`
    // is null, so `resource.data.owner` does not hold.
    assert_denied(
        &alice.get(&format!("{coll}/zz")).await,
        None,
        "alice gets zz",
    );

    // WebSocket: `get` and a document `listen`, existing and missing alike.
    let mut ws = bob.ws(coll).await;
    let mut answers = Vec::new();
    for path in [format!("{coll}/a1"), format!("{coll}/zz")] {
        let got = ws.ask(json!({"type": "get", "path": path})).await;
        assert_ws_denied(&got, None, &format!("ws get {path}"));
        let listened = ws.listen_doc(&path).await;
        assert_ws_denied(&listened, None, &format!("ws listen {path}"));
        answers.push((strip_rid(got), strip_rid(listened)));
    }
    assert_eq!(answers[0], answers[1], "existence shows nowhere");
    let own = ws
        .ask(json!({"type": "get", "path": format!("{coll}/b1")}))
        .await;
    assert_eq!(own["doc"]["data"]["title"], "mine", "{own}");
    // A denied listen left no listener: a change to a1 reaches nobody here.
    admin_commit(
        port,
        coll,
        json!([{"op": "merge", "id": "a1", "patch": {"n": 1}}]),
    )
    .await;
    let after = ws.sync().await;
    assert!(after.is_empty(), "{after:?}");
    ws.close().await;
}

fn strip_rid(mut frame: Value) -> Value {
    frame.as_object_mut().expect("a frame").remove("rid");
    frame
}

/// A query or count is allowed only when its own filters prove the rule:
/// bob's `owner == "bob"` is, every other shape is denied (HTTP and
/// WebSocket alike); an allowed query's order, cursors and limits show
/// bob's documents only, though alice's interleave them in that order.
pub async fn queries_and_counts(port: u16) {
    let secret = "SECRET-queries-90ab";
    let coll = "runs/queries/todos";
    let mut writes = Vec::new();
    for i in 1..=4 {
        // Ranks interleave: alice 1, 3, 5, 7; bob 2, 4, 6, 8.
        writes.push(json!({"op": "set", "id": format!("a{i}"),
            "data": {"owner": "alice", "rank": 2 * i - 1, "secret": secret, "open": true}}));
        writes.push(json!({"op": "set", "id": format!("b{i}"),
            "data": {"owner": "bob", "rank": 2 * i, "open": i % 2 == 0}}));
    }
    admin_commit(port, coll, Value::Array(writes)).await;
    let bob = User::new(port, "bob").never_sees(secret);
    let anonymous = User::anonymous(port).never_sees(secret);
    let q = |extra: Value| {
        let mut query = json!({"collection": coll});
        for (k, v) in extra.as_object().expect("query members") {
            query[k] = v.clone();
        }
        query
    };
    let eq = |field: &str, value: Value| json!({"field": field, "op": "==", "value": value});

    let denied = [
        ("no filter", q(json!({}))),
        ("alice's", q(json!({"where": eq("owner", json!("alice"))}))),
        (
            "a range",
            q(json!({"where": {"field": "rank", "op": ">", "value": 0}})),
        ),
        (
            "another field",
            q(json!({"where": eq("open", json!(true))})),
        ),
        (
            "in with alice",
            q(json!({"where": {"field": "owner", "op": "in", "value": ["alice", "bob"]}})),
        ),
        (
            "not alice",
            q(json!({"where": {"field": "owner", "op": "!=", "value": "alice"}})),
        ),
        (
            "or with an open branch",
            q(json!({"where": {"or": [eq("owner", json!("bob")), eq("open", json!(true))]}})),
        ),
        (
            "ordered, limited",
            q(json!({"order_by": [{"field": "rank"}], "limit": 1})),
        ),
    ];
    let mut ws = bob.ws(coll).await;
    for (name, query) in &denied {
        assert_denied(
            &bob.query(query.clone()).await,
            None,
            &format!("query {name}"),
        );
        assert_denied(
            &bob.count(query.clone()).await,
            None,
            &format!("count {name}"),
        );
        let frame = ws.ask(json!({"type": "query", "query": query})).await;
        assert_ws_denied(&frame, None, &format!("ws query {name}"));
        let frame = ws.ask(json!({"type": "count", "query": query})).await;
        assert_ws_denied(&frame, None, &format!("ws count {name}"));
        let frame = ws.listen(query.clone()).await;
        assert_ws_denied(&frame, None, &format!("ws listen {name}"));
    }
    // Anonymous: even a filter on bob is not bob's.
    let bobs = q(json!({"where": eq("owner", json!("bob"))}));
    assert_denied(&anonymous.query(bobs.clone()).await, None, "anonymous");
    assert_denied(
        &anonymous.count(bobs.clone()).await,
        None,
        "anonymous count",
    );

    // Allowed shapes: bob's documents only, whatever the window.
    let allowed = [
        ("bob's", bobs.clone(), vec!["b1", "b2", "b3", "b4"]),
        (
            "bob's, by rank desc, limit 2",
            q(json!({"where": eq("owner", json!("bob")),
                     "order_by": [{"field": "rank", "direction": "desc"}], "limit": 2})),
            vec!["b4", "b3"],
        ),
        (
            "bob's, after rank 3 (alice's), limit 2",
            q(json!({"where": eq("owner", json!("bob")),
                     "order_by": [{"field": "rank"}], "start_after": [3], "limit": 2})),
            vec!["b2", "b3"],
        ),
        (
            "bob's, last one before rank 7 (alice's)",
            q(json!({"where": eq("owner", json!("bob")),
                     "order_by": [{"field": "rank"}], "end_before": [7], "limit_to_last": 1})),
            vec!["b3"],
        ),
        (
            "bob's open ones",
            q(json!({"where": {"and": [eq("owner", json!("bob")), eq("open", json!(true))]}})),
            vec!["b2", "b4"],
        ),
        (
            "bob's, in [bob]",
            q(json!({"where": {"field": "owner", "op": "in", "value": ["bob"]}})),
            vec!["b1", "b2", "b3", "b4"],
        ),
    ];
    for (name, query, want) in &allowed {
        let answer = bob.query(query.clone()).await;
        assert_eq!(answer.status, 200, "{name}: {}", answer.body);
        assert_eq!(ids(&answer.json()["docs"]), *want, "{name}");
        let count = bob.count(query.clone()).await;
        assert_eq!(
            count.json()["count"],
            json!(want.len()),
            "{name}: {}",
            count.body
        );
        let frame = ws.ask(json!({"type": "query", "query": query})).await;
        assert_eq!(ids(&frame["docs"]), *want, "ws {name}: {frame}");
        let frame = ws.ask(json!({"type": "count", "query": query})).await;
        assert_eq!(frame["count"], json!(want.len()), "ws {name}: {frame}");
    }
    ws.close().await;
    // Nothing bob asked wrote anything.
    assert_eq!(stored(port, coll).await["seq"], 1);
}
