//! What every scenario uses: the rules, tokens for alice and bob, HTTP as
//! one identity, WebSockets that check every frame they receive for what
//! their user must never see, and the admin's view of what is stored.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blaze_auth::mint;
use blaze_tests::live::{http, Answer, Incoming, Ws};
use serde_json::{json, Value};

/// The development identity of `scripts/run.sh` (the harness's default).
const SECRET: &str = "blaze-dev-secret-not-for-production";
pub const ADMIN_KEY: &str = "blaze-dev-admin-key";

/// The rules under test: `blaze.rules`'s private todos, boards read by
/// whoever has an access document beside them, and a rooms/members
/// ruleset, each under `runs/{run}` so that every scenario has collections
/// of its own. A message's permission rests on its room, a document of
/// another collection (so of another object).
pub const RULES: &str = r#"rules_version = '2';
service cloud.firestore {
  match /databases/{database}/documents {
    function signedIn() {
      return request.auth != null;
    }
    function member(database, run, room) {
      return signedIn() && request.auth.uid in
        get(/databases/$(database)/documents/runs/$(run)/rooms/$(room)).data.members;
    }
    match /runs/{run} {
      // Private todos, as in blaze.rules.
      match /todos/{todo} {
        allow read, delete: if signedIn() && resource.data.owner == request.auth.uid;
        allow create: if signedIn() && request.resource.data.owner == request.auth.uid;
        allow update: if signedIn()
          && resource.data.owner == request.auth.uid
          && request.resource.data.owner == request.auth.uid;
      }
      // Boards: read by whoever has an access document (its id is their
      // uid) in the same collection, so in the same object.
      match /boards/{board} {
        allow read: if signedIn()
          && exists(/databases/$(database)/documents/runs/$(run)/boards/$(request.auth.uid));
      }
      // Rooms: read by their members, written by admins only.
      match /rooms/{room} {
        allow read: if signedIn() && request.auth.uid in resource.data.members;
        // Messages: read and posted by the room's members.
        match /messages/{message} {
          allow read: if member(database, run, room);
          allow create: if member(database, run, room)
            && request.resource.data.author == request.auth.uid;
        }
      }
    }
  }
}
"#;

/// What the rules deny: the fixed message of every `permission_denied`.
pub const DENIED_MESSAGE: &str = "the access rules do not allow this request";

/// How long to wait for one frame.
pub const WAIT: Duration = Duration::from_secs(10);

fn unix_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_secs() as i64
}

/// A development HS256 token for `uid`, valid for an hour.
pub fn token(uid: &str) -> String {
    let now = unix_secs();
    let claims =
        json!({"iss": "blaze-dev", "aud": "blaze", "sub": uid, "iat": now, "exp": now + 3600});
    mint::hs256(SECRET.as_bytes(), &claims)
}

/// Someone talking to the worker: a user, the admin or anonymous.
#[derive(Clone)]
pub struct User {
    pub port: u16,
    /// The credential (`None`: anonymous).
    pub credential: Option<String>,
    /// What this user must never receive (another user's secret marker).
    pub forbidden: Vec<String>,
}

impl User {
    /// `uid` with a fresh token.
    pub fn new(port: u16, uid: &str) -> Self {
        Self {
            port,
            credential: Some(token(uid)),
            forbidden: Vec::new(),
        }
    }

    /// The admin (rules skipped).
    pub fn admin(port: u16) -> Self {
        Self {
            port,
            credential: Some(ADMIN_KEY.to_owned()),
            forbidden: Vec::new(),
        }
    }

    /// No credential.
    pub fn anonymous(port: u16) -> Self {
        Self {
            port,
            credential: None,
            forbidden: Vec::new(),
        }
    }

    /// The same user, who must never receive `marker`.
    pub fn never_sees(mut self, marker: &str) -> Self {
        self.forbidden.push(marker.to_owned());
        self
    }

    /// One HTTP request with this user's credential and `headers`; the
    /// answer is checked for what the user must never see.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let bearer = self.credential.as_ref().map(|c| format!("Bearer {c}"));
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(b) = &bearer {
            all.push(("Authorization", b));
        }
        let answer = http(self.port, method, path, &all, body).await;
        self.check(&answer.body);
        answer
    }

    fn check(&self, text: &str) {
        for marker in &self.forbidden {
            assert!(
                !text.contains(marker.as_str()),
                "{marker} reached this user: {text}"
            );
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send("GET", &format!("/v1/docs/{path}"), &[], "").await
    }

    pub async fn put(&self, path: &str, data: Value) -> Answer {
        self.send("PUT", &format!("/v1/docs/{path}"), &[], &data.to_string())
            .await
    }

    /// `PUT` with `If-None-Match: *`: a `create`.
    pub async fn create(&self, path: &str, data: Value) -> Answer {
        let headers = [("If-None-Match", "*")];
        self.send(
            "PUT",
            &format!("/v1/docs/{path}"),
            &headers,
            &data.to_string(),
        )
        .await
    }

    /// A JSON Patch.
    pub async fn patch(&self, path: &str, patch: Value) -> Answer {
        let headers = [("Content-Type", "application/json-patch+json")];
        self.send(
            "PATCH",
            &format!("/v1/docs/{path}"),
            &headers,
            &patch.to_string(),
        )
        .await
    }

    /// A merge patch.
    pub async fn merge(&self, path: &str, patch: Value) -> Answer {
        let headers = [("Content-Type", "application/merge-patch+json")];
        self.send(
            "PATCH",
            &format!("/v1/docs/{path}"),
            &headers,
            &patch.to_string(),
        )
        .await
    }

    /// `DELETE`, with `If-Match` when given.
    pub async fn delete(&self, path: &str, if_match: Option<&str>) -> Answer {
        let headers: Vec<(&str, &str)> = if_match.iter().map(|v| ("If-Match", *v)).collect();
        self.send("DELETE", &format!("/v1/docs/{path}"), &headers, "")
            .await
    }

    pub async fn commit(&self, collection: &str, writes: Value) -> Answer {
        let body = json!({"collection": collection, "writes": writes});
        self.send("POST", "/v1/commit", &[], &body.to_string())
            .await
    }

    pub async fn query(&self, query: Value) -> Answer {
        self.send("POST", "/v1/query", &[], &query.to_string())
            .await
    }

    pub async fn count(&self, query: Value) -> Answer {
        self.send("POST", "/v1/count", &[], &query.to_string())
            .await
    }

    /// A WebSocket to `collection`, past its `welcome`.
    pub async fn ws(&self, collection: &str) -> Sock {
        let mut ws = Ws::raw(self.port, collection).await;
        let hello = match &self.credential {
            Some(c) => json!({"type": "hello", "protocol": 1, "auth": c}),
            None => json!({"type": "hello", "protocol": 1}),
        };
        ws.send_json(&hello).await;
        let mut sock = Sock {
            ws,
            user: self.clone(),
            pending: Vec::new(),
            received: 0,
        };
        let welcome = sock.next().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        sock
    }
}

/// A user's WebSocket: every frame it receives is checked for what the user
/// must never see, and counted.
pub struct Sock {
    ws: Ws,
    user: User,
    /// Frames received while waiting for an answer, not yet taken.
    pending: Vec<Value>,
    /// Every frame received so far.
    pub received: usize,
}

impl Sock {
    /// The next frame from the socket (not from `pending`), checked, within `wait`.
    async fn read(&mut self, wait: Duration) -> Option<Value> {
        match self.ws.next_incoming(wait).await? {
            Incoming::Text(text) => {
                self.user.check(&text);
                self.received += 1;
                Some(serde_json::from_str(&text).expect("a JSON frame"))
            }
            Incoming::Closed { code, reason } => panic!("closed: {code} {reason}"),
        }
    }

    /// The next frame: held ones first; panics after 10 s.
    pub async fn next(&mut self) -> Value {
        if !self.pending.is_empty() {
            return self.pending.remove(0);
        }
        self.read(WAIT).await.expect("a frame within 10 s")
    }

    /// Sends `frame` with rid `rid` and returns its answer; other frames are
    /// held for [`Sock::next`].
    pub async fn ask(&mut self, mut frame: Value) -> Value {
        let rid = self.ws.rid();
        frame["rid"] = json!(rid);
        self.ws.send_json(&frame).await;
        loop {
            let got = self.read(WAIT).await.expect("an answer within 10 s");
            if got["rid"] == json!(rid) {
                return got;
            }
            self.pending.push(got);
        }
    }

    /// Sends `frame` as is (with its own rid, if any).
    pub async fn send(&mut self, frame: &Value) {
        self.ws.send_json(frame).await;
    }

    /// A request id not used yet on this socket.
    pub fn rid(&mut self) -> u64 {
        self.ws.rid()
    }

    /// Every frame sent to this socket before now: a request the server
    /// answers after them (`unlisten` of no listener); returns them (held
    /// ones included) and holds none.
    pub async fn sync(&mut self) -> Vec<Value> {
        let answer = self
            .ask(json!({"type": "unlisten", "listener": 1_000_000_000u64}))
            .await;
        assert_eq!(answer["error"]["code"], "listener_not_found", "{answer}");
        std::mem::take(&mut self.pending)
    }

    /// A `listen` on a query; the answer.
    pub async fn listen(&mut self, query: Value) -> Value {
        self.ask(json!({"type": "listen", "query": query})).await
    }

    /// A `listen` on a document; the answer.
    pub async fn listen_doc(&mut self, path: &str) -> Value {
        self.ask(json!({"type": "listen", "doc": path})).await
    }

    pub async fn close(self) {
        self.ws.close().await;
    }
}

/// The error code of a WebSocket answer.
pub fn ws_code(frame: &Value) -> &str {
    frame["error"]["code"].as_str().unwrap_or("")
}

/// Asserts `answer` is 403 `permission_denied` with the fixed message and
/// nothing else (`write_index` when given); returns its body.
pub fn assert_denied(answer: &Answer, write_index: Option<u64>, what: &str) -> Value {
    assert_eq!(answer.status, 403, "{what}: {}", answer.body);
    let body = answer.json();
    let mut want = json!({"error": {"code": "permission_denied", "message": DENIED_MESSAGE}});
    if let Some(i) = write_index {
        want["error"]["write_index"] = json!(i);
    }
    assert_eq!(body, want, "{what}");
    body
}

/// Asserts a WebSocket answer is `permission_denied` with the fixed message
/// (and `write_index` when given).
pub fn assert_ws_denied(frame: &Value, write_index: Option<u64>, what: &str) {
    let mut want = json!({"code": "permission_denied", "message": DENIED_MESSAGE});
    if let Some(i) = write_index {
        want["write_index"] = json!(i);
    }
    assert_eq!(frame["type"], "error", "{what}: {frame}");
    assert_eq!(frame["error"], want, "{what}: {frame}");
}

/// What is stored in `collection`, as the admin sees it: its seq and documents.
pub async fn stored(port: u16, collection: &str) -> Value {
    let answer = User::admin(port)
        .query(json!({"collection": collection}))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// Commits `writes` to `collection` as the admin; returns the answer body.
pub async fn admin_commit(port: u16, collection: &str, writes: Value) -> Value {
    let answer = User::admin(port).commit(collection, writes).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json()
}

/// The ids of a list of documents.
pub fn ids(docs: &Value) -> Vec<String> {
    docs.as_array()
        .expect("documents")
        .iter()
        .map(|d| {
            let path = d["path"].as_str().expect("a path");
            path.rsplit('/').next().unwrap_or_default().to_owned()
        })
        .collect()
}
