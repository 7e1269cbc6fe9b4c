//! The HTTP mapping, request by request against one in-memory hub.

use blaze_core::{Caller, Database, Hub, HubConfig, Limits, MemoryStorage, Output};
use blaze_protocol::{CollectionPath, ErrorCode};
use serde_json::{json, Value};

use super::{answer, Answer};
use crate::http_types::{HttpRequest, HttpResponse};
use crate::routing::route;

fn hub() -> Hub<MemoryStorage> {
    let db = Database::new(MemoryStorage::new(), Limits::default());
    Hub::new(db, HubConfig::default()).scoped(CollectionPath::parse("rooms").unwrap())
}

/// Routes `r` as the object does, then answers it.
fn handle(hub: &mut Hub<MemoryStorage>, r: &HttpRequest, now: u64) -> HttpResponse {
    let limits = hub.database().limits().clone();
    match route(r, false, &limits) {
        Ok(endpoint) => match answer(hub, &Caller::admin(), &endpoint, r, now) {
            Answer::Done(response) => response,
            Answer::Fetch(paths) => panic!("no rules, yet asked to fetch {paths:?}"),
        },
        Err(refused) => refused,
    }
}

/// A request: method, path, headers as `name: value` lines, body.
fn req(method: &str, path: &str, headers: &[&str], body: &str) -> HttpRequest {
    let header = |name: &str| {
        headers.iter().find_map(|h| {
            let (k, v) = h.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    HttpRequest {
        method: method.into(),
        path: path.into(),
        content_type: header("content-type"),
        if_match: header("if-match"),
        if_none_match: header("if-none-match"),
        body: body.into(),
    }
}

/// Sends `r` and checks the status, the ETag and each member of `want` in the body.
fn check(
    hub: &mut Hub<MemoryStorage>,
    r: HttpRequest,
    status: u16,
    etag: Option<&str>,
    want: Value,
) {
    let label = format!("{} {} {}", r.method, r.path, r.body);
    let answer = handle(hub, &r, 5000);
    assert_eq!(answer.status, status, "{label}: {}", answer.body);
    let got_etag = answer
        .headers
        .iter()
        .find(|(k, _)| *k == "ETag")
        .map(|(_, v)| v.as_str());
    assert_eq!(got_etag, etag, "{label}: ETag");
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    for (key, value) in want.as_object().unwrap() {
        assert_eq!(&body[key], value, "{label}: {key} in {body}");
    }
}

fn code_only(hub: &mut Hub<MemoryStorage>, r: HttpRequest, status: u16, code: &str) {
    let label = format!("{} {}", r.method, r.path);
    let answer = handle(hub, &r, 5000);
    assert_eq!(
        (answer.status, answer.error.map(ErrorCode::as_str)),
        (status, Some(code)),
        "{label}"
    );
}

#[test]
fn document_routes() {
    let h = &mut hub();
    code_only(
        h,
        req("GET", "/v1/docs/rooms/r1", &[], ""),
        404,
        "not_found",
    );
    check(
        h,
        req("PUT", "/v1/docs/rooms/r1", &[], r#"{"name":"lobby","n":1}"#),
        200,
        Some("\"1\""),
        json!({"seq": 1, "time": 5000, "writes": [{"id": "r1", "exists": true}]}),
    );
    check(
        h,
        req("GET", "/v1/docs/rooms/r1", &[], ""),
        200,
        Some("\"1\""),
        json!({"path": "rooms/r1", "exists": true, "data": {"name": "lobby", "n": 1}, "version": 1}),
    );
    check(
        h,
        req(
            "PATCH",
            "/v1/docs/rooms/r1",
            &["Content-Type: application/merge-patch+json; charset=utf-8"],
            r#"{"n":2,"name":null}"#,
        ),
        200,
        Some("\"2\""),
        json!({"seq": 2}),
    );
    check(
        h,
        req(
            "PATCH",
            "/v1/docs/rooms/r1",
            &[
                "content-type: Application/JSON-Patch+JSON",
                "If-Match: \"2\"",
            ],
            r#"[{"op":"add","path":"/tags","value":["a"]}]"#,
        ),
        200,
        Some("\"3\""),
        json!({"seq": 3}),
    );
    check(
        h,
        req("GET", "/v1/docs/rooms/r1", &[], ""),
        200,
        Some("\"3\""),
        json!({"data": {"n": 2, "tags": ["a"]}}),
    );
    check(
        h,
        req("DELETE", "/v1/docs/rooms/r1", &["If-Match: *"], ""),
        200,
        None,
        json!({"seq": 4, "writes": [{"id": "r1", "exists": false}]}),
    );
    check(
        h,
        req("DELETE", "/v1/docs/rooms/r1", &[], ""),
        200,
        None,
        json!({"seq": 5}),
    );
}

#[test]
fn document_errors_change_nothing() {
    let h = &mut hub();
    check(
        h,
        req("PUT", "/v1/docs/rooms/r1", &[], r#"{"n":1}"#),
        200,
        Some("\"1\""),
        json!({}),
    );
    let cases = [
        (
            req("PUT", "/v1/docs/rooms/r1", &["If-None-Match: *"], "{}"),
            409,
            "already_exists",
        ),
        (
            req("PUT", "/v1/docs/rooms/r1", &["If-Match: \"7\""], "{}"),
            412,
            "precondition_failed",
        ),
        (
            req("PUT", "/v1/docs/rooms/r1", &["If-Match: W/\"1\""], "{}"),
            412,
            "precondition_failed",
        ),
        (
            req("PUT", "/v1/docs/rooms/r2", &["If-Match: *"], "{}"),
            412,
            "precondition_failed",
        ),
        // An empty If-Match names no version: it never matches, and never
        // makes the write unconditional.
        (
            req("PUT", "/v1/docs/rooms/r1", &["If-Match:"], "{}"),
            412,
            "precondition_failed",
        ),
        (
            req("DELETE", "/v1/docs/rooms/r1", &["If-Match:  "], ""),
            412,
            "precondition_failed",
        ),
        (
            req("PUT", "/v1/docs/rooms/r1", &[], "[1]"),
            400,
            "invalid_document",
        ),
        (
            req("PUT", "/v1/docs/rooms/r1", &[], "{nope"),
            400,
            "invalid_frame",
        ),
        (
            req(
                "PATCH",
                "/v1/docs/rooms/r1",
                &["Content-Type: application/json"],
                "{}",
            ),
            415,
            "unsupported_media_type",
        ),
        (
            req("PATCH", "/v1/docs/rooms/r1", &[], "{}"),
            415,
            "unsupported_media_type",
        ),
        (
            req(
                "PATCH",
                "/v1/docs/rooms/zz",
                &["Content-Type: application/merge-patch+json"],
                "{}",
            ),
            404,
            "not_found",
        ),
        (
            req(
                "PATCH",
                "/v1/docs/rooms/r1",
                &["Content-Type: application/json-patch+json"],
                r#"[{"op":"test","path":"/n","value":2}]"#,
            ),
            409,
            "patch_test_failed",
        ),
        (
            req(
                "PATCH",
                "/v1/docs/rooms/r1",
                &["Content-Type: application/json-patch+json"],
                r#"[{"op":"remove","path":"/zz"}]"#,
            ),
            422,
            "patch_path_not_found",
        ),
        (
            req(
                "PATCH",
                "/v1/docs/rooms/r1",
                &["Content-Type: application/json-patch+json"],
                r#"{"op":"x"}"#,
            ),
            400,
            "invalid_patch",
        ),
        // Neither an array nor an object: not the route's shape (spec 11.2).
        (
            req(
                "PATCH",
                "/v1/docs/rooms/r1",
                &["Content-Type: application/json-patch+json"],
                "null",
            ),
            400,
            "invalid_frame",
        ),
        (
            req(
                "PATCH",
                "/v1/docs/rooms/r1",
                &["Content-Type: application/merge-patch+json"],
                "5",
            ),
            400,
            "invalid_frame",
        ),
        (
            req("POST", "/v1/docs/rooms/r1", &[], ""),
            405,
            "method_not_allowed",
        ),
        (
            req("GET", "/v1/docs/users/u1", &[], ""),
            400,
            "wrong_collection",
        ),
        (
            req("PUT", "/v1/docs/users/u1", &[], "{}"),
            400,
            "wrong_collection",
        ),
        (
            req("GET", "/v1/docs/rooms/a%zz", &[], ""),
            400,
            "invalid_path",
        ),
        (req("GET", "/v1/nothing", &[], ""), 404, "not_found"),
    ];
    for (r, status, code) in cases {
        code_only(h, r, status, code);
    }
    check(
        h,
        req("GET", "/v1/docs/rooms/r1", &[], ""),
        200,
        Some("\"1\""),
        json!({"data": {"n": 1}, "version": 1}),
    );
    check(
        h,
        req("POST", "/v1/count", &[], r#"{"collection":"rooms"}"#),
        200,
        None,
        json!({"seq": 1, "count": 1}),
    );
}

#[test]
fn batch_query_and_count_routes() {
    let h = &mut hub();
    let batch = json!({"collection": "rooms", "writes": [
        {"op": "set", "id": "a", "data": {"open": true}},
        {"op": "set", "id": "b", "data": {"open": false}}]});
    check(
        h,
        req("POST", "/v1/commit", &[], &batch.to_string()),
        200,
        None,
        json!({"seq": 1}),
    );
    let failing = json!({"collection": "rooms", "writes": [
        {"op": "set", "id": "c", "data": {}},
        {"op": "create", "id": "a", "data": {}}]});
    check(
        h,
        req("POST", "/v1/commit", &[], &failing.to_string()),
        409,
        None,
        json!({"error": {"code": "already_exists", "message": "a exists", "write_index": 1}}),
    );
    let query =
        json!({"collection": "rooms", "where": {"field": "open", "op": "==", "value": true}});
    check(
        h,
        req("POST", "/v1/query", &[], &query.to_string()),
        200,
        None,
        json!({"seq": 1, "docs": [{"path": "rooms/a", "exists": true, "data": {"open": true}, "version": 1, "create_time": 5000, "update_time": 5000}]}),
    );
    check(
        h,
        req("POST", "/v1/count", &[], r#"{"collection":"rooms"}"#),
        200,
        None,
        json!({"seq": 1, "count": 2}),
    );
    code_only(
        h,
        req(
            "POST",
            "/v1/query",
            &[],
            r#"{"collection":"rooms","limit":0}"#,
        ),
        400,
        "invalid_query",
    );
    code_only(
        h,
        req("POST", "/v1/query", &[], r#"{"collection":"users"}"#),
        400,
        "wrong_collection",
    );
    code_only(
        h,
        req("GET", "/v1/query", &[], ""),
        405,
        "method_not_allowed",
    );
}

#[test]
fn http_writes_reach_websocket_listeners() {
    let h = &mut hub();
    h.handle_open(1, 0);
    h.handle_frame(1, r#"{"type":"hello","protocol":1}"#, 0);
    h.handle_frame(1, r#"{"type":"listen","rid":1,"doc":"rooms/r1"}"#, 0);
    while h.poll_output().is_some() {}
    check(
        h,
        req("PUT", "/v1/docs/rooms/r1", &[], r#"{"n":1}"#),
        200,
        Some("\"1\""),
        json!({}),
    );
    let Some(Output::Send { conn: 1, frame }) = h.poll_output() else {
        panic!("the listener is told");
    };
    let frame: Value = serde_json::from_str(&frame).unwrap();
    assert_eq!(frame["type"], "change");
    assert_eq!(frame["changes"][0]["doc"]["data"], json!({"n": 1}));
}

#[test]
fn a_commit_id_makes_an_http_commit_safe_to_retry() {
    let h = &mut hub();
    h.handle_open(1, 0);
    h.handle_frame(1, r#"{"type":"hello","protocol":1}"#, 0);
    h.handle_frame(
        1,
        r#"{"type":"listen","rid":1,"query":{"collection":"rooms"}}"#,
        0,
    );
    while h.poll_output().is_some() {}
    let body = json!({"collection": "rooms", "commit_id": "retry-1",
        "writes": [{"op": "create", "id": "a", "data": {}}]})
    .to_string();
    let first = handle(h, &req("POST", "/v1/commit", &[], &body), 5000);
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        h.poll_output().is_some(),
        "the listener hears of the commit"
    );
    // The retry (a `create`, which would fail if applied again) gets the same answer, and nobody hears of it.
    let again = handle(h, &req("POST", "/v1/commit", &[], &body), 6000);
    assert_eq!((again.status, &again.body), (200, &first.body));
    assert_eq!(h.poll_output(), None);
    let bad = json!({"collection": "rooms", "commit_id": "not ok",
        "writes": [{"op": "set", "id": "b", "data": {}}]});
    code_only(
        h,
        req("POST", "/v1/commit", &[], &bad.to_string()),
        400,
        "invalid_frame",
    );
}

#[test]
fn a_patch_body_that_is_no_patch_is_the_frames_error_not_the_writes() {
    let h = &mut hub();
    for body in ["null", "5", "\"x\""] {
        let r = req(
            "PATCH",
            "/v1/docs/rooms/r1",
            &["Content-Type: application/merge-patch+json"],
            body,
        );
        let answer = handle(h, &r, 5000);
        let error: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(answer.status, 400, "{body}");
        assert_eq!(error["error"]["code"], "invalid_frame", "{body}");
        assert!(error["error"].get("write_index").is_none(), "{body}");
    }
}

#[test]
fn file_commits_answer_the_file_and_the_key_they_replaced() {
    use super::{answer_file, FileOp};
    use crate::files_plan::{metadata_write, Change, FilePath, Upload, REPLACED_KEY};
    let folder = CollectionPath::parse("_files/a/_files").unwrap();
    let db = Database::new(MemoryStorage::new(), Limits::default());
    let mut hub = Hub::new(db, HubConfig::default())
        .scoped(folder.clone())
        .driver_written();
    let file = FilePath::parse("a/b.txt").unwrap();
    let mut ask = |change: Change| {
        let write = metadata_write(&file, change);
        match answer_file(
            &mut hub,
            &Caller::admin(),
            FileOp::Commit,
            &folder,
            &write,
            9,
        ) {
            Answer::Done(response) => response,
            Answer::Fetch(paths) => panic!("no rules, yet asked to fetch {paths:?}"),
        }
    };
    let replaced = |r: &HttpResponse| {
        let header = r.headers.iter().find(|(k, _)| *k == REPLACED_KEY);
        header.map(|(_, v)| v.clone())
    };
    let body = |r: &HttpResponse| serde_json::from_str::<Value>(&r.body).unwrap();
    let missing = ask(Change::Merge(json!({"contentType": "text/plain"})));
    assert_eq!(missing.error, Some(ErrorCode::NotFound));
    let meta = r#"{"a":"1","b":"2"}"#;
    let upload = Upload::check(Some("3"), Some("text/csv"), Some(meta), 10).unwrap();
    let first = ask(Change::Set(upload.document(&file, "o/k1", Some("m"))));
    assert_eq!(first.status, 200);
    assert_eq!(replaced(&first), None);
    assert_eq!(body(&first)["contentType"], "text/csv");
    let patch = json!({"contentType": "text/plain", "metadata": {"b": null, "c": "3"}});
    let updated = ask(Change::Merge(patch));
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(replaced(&updated), None, "the same bytes");
    let answer = body(&updated);
    assert_eq!(answer["metadata"], json!({"a": "1", "c": "3"}));
    assert_eq!(
        (&answer["contentType"], &answer["size"], &answer["md5"]),
        (&json!("text/plain"), &json!(3), &json!("m"))
    );
    assert_eq!(answer["version"], 2);
    let second = ask(Change::Set(upload.document(&file, "o/k2", Some("n"))));
    assert_eq!(replaced(&second).as_deref(), Some("o/k1"));
    let deleted = ask(Change::Delete);
    assert_eq!(replaced(&deleted).as_deref(), Some("o/k2"));
    assert_eq!(ask(Change::Delete).error, Some(ErrorCode::NotFound));
}
