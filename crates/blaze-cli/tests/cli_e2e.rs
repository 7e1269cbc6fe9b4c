//! The `blaze` binary against the real worker under `wrangler dev`:
//! document commands, queries, `watch`, and a 10,000-document
//! import -> query -> export round trip, with a resumed import.
//! `scripts/test.sh` builds the worker first.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use blaze_tests::live::{e2e, WranglerDev};
use serde_json::{json, Value};

mod common;

/// Runs `blaze --url <server> args...` to completion.
fn blaze(server: &WranglerDev, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_blaze"))
        .arg("--url")
        .arg(server.url())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("blaze runs")
}

/// Runs `blaze`, asserts it succeeded, and returns its stdout lines as JSON.
fn ok(server: &WranglerDev, args: &[&str]) -> Vec<Value> {
    common::json_lines(blaze(server, args), args)
}

/// Runs `blaze`, asserts it exited with `code`, and returns its stderr.
fn fails(server: &WranglerDev, args: &[&str], code: i32) -> String {
    let out = blaze(server, args);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(code), "blaze {args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "blaze {args:?} printed a result");
    stderr
}

fn ids(lines: &[Value]) -> Vec<&str> {
    lines
        .iter()
        .map(|l| l["id"].as_str().expect("an id"))
        .collect()
}

#[test]
fn document_commands_and_bad_arguments() {
    let Some(_one) = e2e() else { return };
    let server = WranglerDev::start("cli-docs");
    let set = ok(
        &server,
        &["set", "rooms/r1", r#"{"name": "lobby", "size": 2}"#],
    );
    let v1 = set[0]["seq"].as_u64().expect("a seq");
    assert_eq!(set[0]["writes"], json!([{"id": "r1", "exists": true}]));

    let got = ok(&server, &["get", "rooms/r1"]);
    assert_eq!(got[0]["data"], json!({"name": "lobby", "size": 2}));
    assert_eq!(got[0]["version"], json!(v1));
    assert_eq!(got[0]["exists"], json!(true));

    let stderr = fails(&server, &["set", "rooms/r1", "{}", "--create"], 1);
    assert!(stderr.contains("already_exists"), "{stderr}");
    let stderr = fails(
        &server,
        &["set", "rooms/r1", "{}", "--if-version", "999"],
        1,
    );
    assert!(stderr.contains("precondition_failed"), "{stderr}");

    ok(
        &server,
        &[
            "update",
            "rooms/r1",
            "--field",
            "topic.title=Rust",
            "--field",
            "size=null",
        ],
    );
    ok(
        &server,
        &["update", "rooms/r1", "--merge", r#"{"open": true}"#],
    );
    ok(
        &server,
        &[
            "update",
            "rooms/r1",
            "--patch",
            r#"[{"op": "add", "path": "/tags", "value": ["a"]}]"#,
        ],
    );
    let got = ok(&server, &["get", "rooms/r1"]);
    assert_eq!(
        got[0]["data"],
        json!({"name": "lobby", "topic": {"title": "Rust"}, "open": true, "tags": ["a"]})
    );
    let version = got[0]["version"].as_u64().expect("a version").to_string();

    let stderr = fails(&server, &["update", "rooms/r2", "--merge", "{}"], 1);
    assert!(stderr.contains("not_found"), "{stderr}");
    let stderr = fails(
        &server,
        &["delete", "rooms/r1", "--if-version", &(v1).to_string()],
        1,
    );
    assert!(stderr.contains("precondition_failed"), "{stderr}");
    ok(&server, &["delete", "rooms/r1", "--if-version", &version]);
    assert_eq!(ok(&server, &["get", "rooms/r1"])[0]["exists"], json!(false));

    // Nested collections are paths.
    ok(
        &server,
        &["set", "rooms/r1/messages/m1", r#"{"text": "hi"}"#],
    );
    let messages = ok(&server, &["query", "rooms/r1/messages"]);
    assert_eq!(ids(&messages), ["m1"]);

    // Bad arguments: exit 2, a message, nothing sent.
    let stderr = fails(&server, &["set", "rooms/r3", "not json"], 2);
    assert!(stderr.contains("not valid JSON"), "{stderr}");
    let stderr = fails(&server, &["query", "rooms", "--where", "size => 2"], 2);
    assert!(stderr.contains("unknown operator"), "{stderr}");
    let stderr = fails(&server, &["update", "rooms/r1", "--patch", "{}"], 2);
    assert!(stderr.contains("JSON array"), "{stderr}");
    let stderr = fails(&server, &["watch", "rooms/r1", "--limit", "3"], 2);
    assert!(stderr.contains("document path"), "{stderr}");
    fails(&server, &["frobnicate"], 2);
    fails(&server, &["update", "rooms/r1"], 2);
    // A path the server's rules refuse: the spec's code, exit 1.
    let stderr = fails(&server, &["get", "rooms"], 1);
    assert!(stderr.contains("invalid_path"), "{stderr}");
    assert_eq!(ok(&server, &["get", "rooms/r3"])[0]["exists"], json!(false));
}

#[test]
fn watch_prints_one_line_per_change() {
    let Some(_one) = e2e() else { return };
    let server = WranglerDev::start("cli-watch");
    ok(&server, &["set", "todos/a", r#"{"n": 1, "done": false}"#]);
    let mut child = Command::new(env!("CARGO_BIN_EXE_blaze"))
        .args(["--url", &server.url(), "watch", "todos"])
        .args(["--where", "done == false", "--order-by", "n"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("blaze watch starts");
    let (tx, lines) = mpsc::channel::<Value>();
    let stdout = child.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("a line");
            let _ = tx.send(serde_json::from_str(&line).expect("a JSON line"));
        }
    });
    let next = || {
        lines
            .recv_timeout(Duration::from_secs(10))
            .expect("a change within 10 s")
    };
    let first = next();
    assert_eq!(
        (first["type"].as_str(), first["id"].as_str()),
        (Some("added"), Some("a"))
    );
    assert_eq!(first["new_index"], json!(0));

    ok(&server, &["set", "todos/b", r#"{"n": 0, "done": false}"#]);
    let added = next();
    assert_eq!(
        (added["type"].as_str(), added["id"].as_str()),
        (Some("added"), Some("b"))
    );
    assert_eq!(added["new_index"], json!(0));

    ok(&server, &["update", "todos/a", "--field", "n=-1"]);
    let moved = next();
    assert_eq!(
        (moved["type"].as_str(), moved["id"].as_str()),
        (Some("modified"), Some("a"))
    );
    assert_eq!(
        (moved["old_index"].clone(), moved["new_index"].clone()),
        (json!(1), json!(0))
    );

    ok(&server, &["update", "todos/b", "--field", "done=true"]);
    let removed = next();
    assert_eq!(
        (removed["type"].as_str(), removed["id"].as_str()),
        (Some("removed"), Some("b"))
    );
    assert_eq!(removed["old_index"], json!(1));
    assert!(
        lines.recv_timeout(Duration::from_millis(500)).is_err(),
        "no other line"
    );

    // Ctrl-C ends it cleanly.
    let pid = child.id().to_string();
    Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill runs");
    let status = child.wait().expect("blaze watch exits");
    assert!(status.success(), "{status:?}");
    reader.join().expect("reader");
}

#[test]
fn a_document_watch_prints_every_version() {
    let Some(_one) = e2e() else { return };
    let server = WranglerDev::start("cli-watch-doc");
    let mut child = Command::new(env!("CARGO_BIN_EXE_blaze"))
        .args(["--url", &server.url(), "watch", "rooms/r1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("blaze watch starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut next = || -> Value {
        serde_json::from_str(&lines.next().expect("a line").expect("a line")).expect("JSON")
    };
    assert_eq!(next()["exists"], json!(false));
    ok(&server, &["set", "rooms/r1", r#"{"name": "a"}"#]);
    assert_eq!(next()["data"], json!({"name": "a"}));
    ok(&server, &["delete", "rooms/r1"]);
    assert_eq!(next()["exists"], json!(false));
    let _ = child.kill();
    let _ = child.wait();
}

/// The 10,000-document file: ids `d00000`.. in id order, so an export matches it line for line.
fn corpus() -> Vec<Value> {
    (0..10_000)
        .map(|i| {
            json!({"id": format!("d{i:05}"), "data": {
                "n": i, "group": i % 7, "name": format!("item {i}"), "tags": [format!("t{}", i % 3)]
            }})
        })
        .collect()
}

fn write_lines(path: &std::path::Path, lines: &[Value]) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("a file"));
    for line in lines {
        writeln!(file, "{line}").expect("written");
    }
}

#[test]
fn import_query_export_round_trips_ten_thousand_documents() {
    let Some(_one) = e2e() else { return };
    let server = WranglerDev::start("cli-import");
    let dir = server.state().with_extension("files");
    std::fs::create_dir_all(&dir).expect("a directory");
    let corpus = corpus();

    // A file with a bad line 1201: the import stops there, says how to resume, and
    // everything before the last full batch is in.
    let mut broken: Vec<Value> = corpus.clone();
    broken[1200] = json!({"id": 5, "data": {}});
    let broken_file = dir.join("broken.jsonl");
    write_lines(&broken_file, &broken);
    let stderr = fails(
        &server,
        &["import", "items", broken_file.to_str().expect("utf-8")],
        2,
    );
    assert!(
        stderr.contains("line 1201") && stderr.contains("--skip 1000"),
        "{stderr}"
    );
    assert_eq!(ok(&server, &["query", "items", "--count"])[0], json!(1000));

    // Resumed with the fixed file from line 1001; then the whole file again (safe to re-run).
    let file = dir.join("items.jsonl");
    write_lines(&file, &corpus);
    let path = file.to_str().expect("utf-8");
    let out = blaze(&server, &["import", "items", path, "--skip", "1000"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("imported 9000 documents"));
    ok(&server, &["import", "items", path]);
    assert_eq!(
        ok(&server, &["query", "items", "--count"])[0],
        json!(10_000)
    );

    let group3 = ok(
        &server,
        &["query", "items", "--where", "group == 3", "--count"],
    );
    assert_eq!(
        group3[0],
        json!(corpus.iter().filter(|d| d["data"]["group"] == 3).count())
    );
    let top = ok(
        &server,
        &[
            "query",
            "items",
            "--where",
            "group == 3",
            "--where",
            "tags array-contains t1",
            "--order-by",
            "n:desc",
            "--limit",
            "3",
        ],
    );
    let expected: Vec<String> = (0..10_000)
        .rev()
        .filter(|i| i % 7 == 3 && i % 3 == 1)
        .take(3)
        .map(|i| format!("d{i:05}"))
        .collect();
    assert_eq!(ids(&top), expected);
    let after = ok(
        &server,
        &[
            "query",
            "items",
            "--order-by",
            "n",
            "--start-after",
            "[9997]",
        ],
    );
    assert_eq!(ids(&after), ["d09998", "d09999"]);

    let exported = dir.join("export.jsonl");
    let out = blaze(
        &server,
        &[
            "export",
            "items",
            "--out",
            exported.to_str().expect("utf-8"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&exported).expect("the export");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    assert_eq!(lines.len(), corpus.len());
    assert!(lines == corpus, "the export differs from the imported file");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tokens_from_blaze_token_are_verified_by_the_worker() {
    let Some(_serial) = e2e() else { return };
    // The harness starts the worker with the local development identity,
    // whose secret is `blaze token`'s default.
    let server = WranglerDev::start("cli-identity");
    let minted = Command::new(env!("CARGO_BIN_EXE_blaze"))
        .args(["token", "--uid", "alice", "--ttl", "10m"])
        .output()
        .expect("blaze token runs");
    assert!(
        minted.status.success(),
        "{}",
        String::from_utf8_lossy(&minted.stderr)
    );
    let token = String::from_utf8(minted.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");

    // As a flag, and from BLAZE_TOKEN.
    ok(
        &server,
        &["--token", &token, "set", "notes/n1", r#"{"by": "alice"}"#],
    );
    let got = Command::new(env!("CARGO_BIN_EXE_blaze"))
        .args(["--url", &server.url(), "get", "notes/n1"])
        .env("BLAZE_TOKEN", &token)
        .env_remove("BLAZE_KEY")
        .output()
        .expect("blaze runs");
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let got: Value = serde_json::from_slice(&got.stdout).expect("one JSON line");
    assert_eq!(got["data"], json!({"by": "alice"}));

    // A token the worker does not trust, an unknown admin key, and a token
    // signed with another secret: exit 1 with the spec's code, nothing written.
    let forged = Command::new(env!("CARGO_BIN_EXE_blaze"))
        .args([
            "token",
            "--uid",
            "mallory",
            "--secret",
            "a-secret-that-is-at-least-32-bytes-long",
        ])
        .output()
        .expect("blaze token runs");
    let forged = String::from_utf8(forged.stdout)
        .expect("utf-8")
        .trim()
        .to_owned();
    for (flag, credential) in [
        ("--token", forged.as_str()),
        ("--token", "not.a.jwt"),
        ("--key", "not-the-admin-key"),
    ] {
        let stderr = fails(&server, &[flag, credential, "set", "notes/n2", "{}"], 1);
        assert!(
            stderr.contains("unauthenticated"),
            "{flag} {credential}: {stderr}"
        );
        assert!(
            !stderr.contains(credential),
            "the credential is not echoed: {stderr}"
        );
    }
    let missing = ok(
        &server,
        &["--key", "blaze-dev-admin-key", "get", "notes/n2"],
    );
    assert_eq!(missing[0]["exists"], json!(false), "nothing was written");
}
