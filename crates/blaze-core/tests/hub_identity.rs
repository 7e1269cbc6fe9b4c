//! Identity in the hub (spec 13), on a virtual clock: credentials go out as
//! `Verify` events and come back verified; frames sent meanwhile wait and
//! are answered in order; a credential may be refreshed for the same user
//! only; and nothing is sent to a connection whose credential has expired.

use blaze_core::{
    Database, Hub, HubConfig, HubEvent, Limits, MemoryStorage, Output, Rejection, SavedSession,
    Storage,
};
use blaze_protocol::{CloseCode, CollectionPath, ErrorCode, Identity};
use serde_json::{json, Map, Value};

const NOW: u64 = 1_000;

fn hub() -> Hub<MemoryStorage> {
    Hub::new(
        Database::new(MemoryStorage::new(), Limits::default()),
        HubConfig::default(),
    )
}

/// A hub keeping at most 16 connections open: two per user, or per
/// network in connections without a user's or an admin's credential.
fn sixteen_places() -> Hub<MemoryStorage> {
    let config = HubConfig {
        max_connections: 16,
        ..HubConfig::default()
    };
    Hub::new(
        Database::new(MemoryStorage::new(), Limits::default()),
        config,
    )
}

fn user(uid: &str) -> Identity {
    let mut claims = Map::new();
    claims.insert("sub".into(), json!(uid));
    Identity::User {
        uid: uid.into(),
        claims,
    }
}

/// The sequence number of collection `rooms`: how many commits it took.
fn committed(hub: &Hub<MemoryStorage>) -> u64 {
    let rooms = CollectionPath::parse("rooms").unwrap();
    hub.database().storage().seq(&rooms).unwrap()
}

fn unauthenticated() -> Rejection {
    Rejection::new(ErrorCode::Unauthenticated, "bad signature")
}

/// What the hub did, in order: frames as JSON (without their `limits`),
/// closes, and the `Verify` events (others are for logs).
#[derive(Debug, PartialEq)]
enum Seen {
    Send(u64, Value),
    Close(u64, CloseCode),
    Verify(u64, Option<u64>, String),
}

fn drain(hub: &mut Hub<MemoryStorage>) -> Vec<Seen> {
    std::iter::from_fn(|| hub.poll_output())
        .filter_map(|output| match output {
            Output::Send { conn, frame } => {
                let mut frame: Value = serde_json::from_str(&frame).unwrap();
                let object = frame.as_object_mut().unwrap();
                object.remove("limits");
                if let Some(error) = object.get_mut("error") {
                    error.as_object_mut().unwrap().remove("message");
                }
                Some(Seen::Send(conn, frame))
            }
            Output::Close { conn, code } => Some(Seen::Close(conn, code)),
            Output::Event(HubEvent::Verify {
                conn,
                rid,
                credential,
            }) => Some(Seen::Verify(conn, rid, credential)),
            Output::Event(HubEvent::Refused { .. }) => None,
            Output::Event(HubEvent::Fetch { .. } | HubEvent::Refetch { .. }) => {
                panic!("no rules here fetch documents")
            }
        })
        .collect()
}

fn hello(credential: Option<&str>) -> String {
    match credential {
        Some(c) => json!({"type": "hello", "protocol": 1, "auth": c}).to_string(),
        None => r#"{"type":"hello","protocol":1}"#.to_owned(),
    }
}

/// Opens `conn` as `identity`, valid until `expires`.
fn sign_in(hub: &mut Hub<MemoryStorage>, conn: u64, identity: Identity, expires: Option<u64>) {
    hub.handle_open(conn, 0);
    hub.handle_frame(conn, &hello(Some("token")), NOW);
    hub.handle_verified(conn, None, Ok((identity, expires)), NOW);
    drain(hub);
}

fn listen(hub: &mut Hub<MemoryStorage>, conn: u64, now: u64) {
    let listen = r#"{"type":"listen","rid":1,"query":{"collection":"rooms"}}"#;
    hub.handle_frame(conn, listen, now);
}

fn commit(rid: u64, id: &str) -> String {
    json!({"type": "commit", "rid": rid, "collection": "rooms",
           "writes": [{"op": "set", "id": id, "data": {}}]})
    .to_string()
}

fn kinds(seen: &[Seen]) -> Vec<String> {
    seen.iter()
        .map(|s| match s {
            Seen::Send(conn, frame) => format!("{conn}:{}", frame["type"].as_str().unwrap()),
            Seen::Close(conn, code) => format!("{conn}:close {}", code.reason()),
            Seen::Verify(conn, rid, _) => format!("{conn}:verify {rid:?}"),
        })
        .collect()
}

#[test]
fn a_hello_without_a_credential_is_welcomed_at_once_as_anonymous() {
    let mut hub = hub();
    hub.handle_open(1, 0);
    hub.handle_frame(1, &hello(None), NOW);
    let seen = drain(&mut hub);
    assert_eq!(
        seen,
        [Seen::Send(1, json!({"type": "welcome", "protocol": 1}))]
    );
    assert_eq!(hub.session(1).unwrap().identity, Identity::Anonymous);
    assert_eq!(hub.poll_timeout(), None);
}

#[test]
fn a_credential_is_verified_and_the_frames_pipelined_after_hello_wait_in_order() {
    let mut hub = hub();
    hub.handle_open(1, 0);
    hub.handle_frame(1, &hello(Some("eyJ.token")), NOW);
    listen(&mut hub, 1, NOW);
    hub.handle_frame(1, &commit(2, "r1"), NOW);
    hub.handle_frame(1, r#"{"type":"get","rid":3,"path":"rooms/r1"}"#, NOW);
    // Only the request to verify: nothing is answered, nothing committed.
    assert_eq!(drain(&mut hub), [Seen::Verify(1, None, "eyJ.token".into())]);
    assert_eq!(committed(&hub), 0);
    hub.handle_verified(1, None, Ok((user("alice"), Some(60_000))), NOW + 5);
    let seen = drain(&mut hub);
    assert_eq!(
        seen[0],
        Seen::Send(
            1,
            json!({"type": "welcome", "protocol": 1,
                   "auth": {"kind": "user", "uid": "alice", "expires": 60_000}})
        )
    );
    assert_eq!(
        kinds(&seen[1..]),
        ["1:snapshot", "1:change", "1:committed", "1:doc"]
    );
    assert_eq!(hub.session(1).unwrap().identity, user("alice"));
    assert_eq!(hub.poll_timeout(), Some(60_000));
}

#[test]
fn a_refused_credential_gets_unauthenticated_and_close_4001_and_its_frames_are_dropped() {
    let mut hub = hub();
    hub.handle_open(1, 0);
    hub.handle_frame(1, &hello(Some("forged")), NOW);
    hub.handle_frame(1, &commit(2, "r1"), NOW);
    drain(&mut hub);
    hub.handle_verified(1, None, Err(unauthenticated()), NOW);
    assert_eq!(
        drain(&mut hub),
        [
            Seen::Send(
                1,
                json!({"type": "error", "error": {"code": "unauthenticated"}})
            ),
            Seen::Close(1, CloseCode::Unauthenticated),
        ]
    );
    assert_eq!(committed(&hub), 0);
    assert_eq!(hub.stats().connections, 0);
}

#[test]
fn an_oversized_credential_is_refused_without_asking_the_driver() {
    let mut hub = hub();
    hub.handle_open(1, 0);
    let long = "x".repeat(Limits::default().max_credential_bytes + 1);
    hub.handle_frame(1, &hello(Some(&long)), NOW);
    assert_eq!(
        kinds(&drain(&mut hub)),
        ["1:error", "1:close unauthenticated"]
    );
    // The largest credential allowed is passed on.
    hub.handle_open(2, 0);
    let longest = &long[1..];
    hub.handle_frame(2, &hello(Some(longest)), NOW);
    assert_eq!(drain(&mut hub), [Seen::Verify(2, None, longest.to_owned())]);
}

#[test]
fn a_hub_refusing_anonymous_closes_a_hello_without_credential() {
    let why = Rejection::new(ErrorCode::Unauthenticated, "BLAZE_AUTH does not parse");
    let mut hub = hub().refusing_anonymous(why);
    hub.handle_open(1, 0);
    hub.handle_frame(1, &hello(None), NOW);
    assert_eq!(
        kinds(&drain(&mut hub)),
        ["1:error", "1:close unauthenticated"]
    );
    // A credential is still passed to the driver, which decides.
    hub.handle_open(2, 0);
    hub.handle_frame(2, &hello(Some("admin-key")), NOW);
    assert_eq!(kinds(&drain(&mut hub)), ["2:verify None"]);
}

#[test]
fn a_refresh_for_the_same_user_extends_the_expiry_and_frames_after_it_wait() {
    let mut hub = hub();
    sign_in(&mut hub, 1, user("alice"), Some(10_000));
    hub.handle_frame(1, r#"{"type":"auth","rid":7,"auth":"fresh"}"#, NOW);
    hub.handle_frame(1, r#"{"type":"get","rid":8,"path":"rooms/r1"}"#, NOW);
    assert_eq!(drain(&mut hub), [Seen::Verify(1, Some(7), "fresh".into())]);
    // An answer for another request is not the one awaited.
    hub.handle_verified(1, Some(6), Ok((user("alice"), Some(20_000))), NOW);
    assert_eq!(drain(&mut hub), []);
    hub.handle_verified(1, Some(7), Ok((user("alice"), Some(20_000))), NOW);
    let seen = drain(&mut hub);
    assert_eq!(
        seen[0],
        Seen::Send(
            1,
            json!({"type": "authenticated", "rid": 7,
                   "auth": {"kind": "user", "uid": "alice", "expires": 20_000}})
        )
    );
    assert_eq!(kinds(&seen[1..]), ["1:doc"]);
    assert_eq!(hub.poll_timeout(), Some(20_000));
    // Past the first expiry, the connection is served.
    hub.handle_frame(1, r#"{"type":"get","rid":9,"path":"rooms/r1"}"#, 15_000);
    assert_eq!(kinds(&drain(&mut hub)), ["1:doc"]);
}

#[test]
fn a_refresh_for_another_user_or_that_fails_is_refused_and_the_credential_kept() {
    let mut hub = hub();
    sign_in(&mut hub, 1, user("alice"), Some(10_000));
    let answers = [
        Ok((user("bob"), Some(50_000))),
        Ok((Identity::Admin, None)),
        Err(unauthenticated()),
    ];
    let mut seen = Vec::new();
    for (rid, answer) in (7..).zip(answers) {
        let auth = json!({"type": "auth", "rid": rid, "auth": "another"}).to_string();
        hub.handle_frame(1, &auth, NOW);
        assert_eq!(kinds(&drain(&mut hub)), [format!("1:verify Some({rid})")]);
        hub.handle_verified(1, Some(rid), answer, NOW);
        seen.extend(drain(&mut hub));
    }
    let refused = |rid: u64| {
        Seen::Send(
            1,
            json!({"type": "error", "rid": rid, "error": {"code": "unauthenticated"}}),
        )
    };
    assert_eq!(seen, [refused(7), refused(8), refused(9)]);
    let session = hub.session(1).unwrap();
    assert_eq!(
        (session.identity, session.expires),
        (user("alice"), Some(10_000))
    );
}

/// Sends `auth` request `rid` on `conn` and answers its verification with `answer`.
fn refresh(
    hub: &mut Hub<MemoryStorage>,
    conn: u64,
    rid: u64,
    answer: Result<(Identity, Option<u64>), Rejection>,
) -> Vec<String> {
    let auth = json!({"type": "auth", "rid": rid, "auth": "forged"}).to_string();
    hub.handle_frame(conn, &auth, NOW);
    assert_eq!(kinds(&drain(hub)), [format!("{conn}:verify Some({rid})")]);
    hub.handle_verified(conn, Some(rid), answer, NOW);
    kinds(&drain(hub))
}

#[test]
fn a_fourth_refused_refresh_in_a_row_closes_the_connection() {
    let mut hub = hub();
    sign_in(&mut hub, 1, user("alice"), Some(10_000));
    sign_in(&mut hub, 2, user("bob"), Some(10_000));
    // Three refused, then one accepted: the count starts again.
    for rid in 1..=3 {
        assert_eq!(
            refresh(&mut hub, 1, rid, Err(unauthenticated())),
            ["1:error"]
        );
    }
    let ok = refresh(&mut hub, 1, 4, Ok((user("alice"), Some(20_000))));
    assert_eq!(ok, ["1:authenticated"]);
    for rid in 5..=7 {
        assert_eq!(
            refresh(&mut hub, 1, rid, Err(unauthenticated())),
            ["1:error"]
        );
    }
    // The fourth in a row: answered, then the connection is closed.
    let last = refresh(&mut hub, 1, 8, Ok((user("mallory"), Some(20_000))));
    assert_eq!(last, ["1:error", "1:close unauthenticated"]);
    assert!(hub.session(1).is_none(), "the connection is gone");
    // The bystander is untouched.
    hub.handle_frame(2, r#"{"type":"get","rid":1,"path":"rooms/r1"}"#, NOW);
    assert_eq!(kinds(&drain(&mut hub)), ["2:doc"]);
}

#[test]
fn an_anonymous_connection_cannot_take_a_credential_in_band() {
    let mut hub = hub();
    hub.handle_open(1, 0);
    hub.handle_frame(1, &hello(None), NOW);
    hub.handle_frame(1, r#"{"type":"auth","rid":4,"auth":"token"}"#, NOW);
    hub.handle_frame(1, r#"{"type":"get","rid":5,"path":"rooms/r1"}"#, NOW);
    assert_eq!(kinds(&drain(&mut hub)), ["1:welcome", "1:error", "1:doc"]);
    assert_eq!(hub.session(1).unwrap().identity, Identity::Anonymous);
}

#[test]
fn no_change_reaches_a_connection_once_its_credential_expired() {
    let mut hub = hub();
    sign_in(&mut hub, 1, user("alice"), Some(5_000));
    hub.handle_open(2, 0);
    hub.handle_frame(2, &hello(None), NOW);
    listen(&mut hub, 1, NOW);
    listen(&mut hub, 2, NOW);
    hub.handle_frame(2, &commit(2, "r1"), 4_999);
    assert_eq!(
        kinds(&drain(&mut hub)),
        [
            "2:welcome",
            "1:snapshot",
            "2:snapshot",
            "1:change",
            "2:change",
            "2:committed"
        ]
    );
    // At its expiry, connection 1 gets no change: it is closed instead,
    // while the bystander gets its change and answer.
    hub.handle_frame(2, &commit(3, "r2"), 5_000);
    assert_eq!(
        kinds(&drain(&mut hub)),
        ["2:change", "1:close token_expired", "2:committed"]
    );
    assert_eq!(hub.stats().connections, 1);
}

#[test]
fn a_frame_from_an_expired_connection_is_not_read() {
    let mut hub = hub();
    sign_in(&mut hub, 1, user("alice"), Some(5_000));
    hub.handle_frame(1, &commit(2, "r1"), 5_000);
    assert_eq!(kinds(&drain(&mut hub)), ["1:close token_expired"]);
    assert_eq!(committed(&hub), 0);
}

#[test]
fn handle_timeout_closes_the_expired_connections_at_poll_timeout() {
    let mut hub = hub();
    sign_in(&mut hub, 1, user("alice"), Some(5_000));
    sign_in(&mut hub, 2, user("bob"), Some(9_000));
    sign_in(&mut hub, 3, Identity::Admin, None);
    assert_eq!(hub.poll_timeout(), Some(5_000));
    hub.handle_timeout(4_999);
    assert_eq!(drain(&mut hub), []);
    hub.handle_timeout(5_000);
    assert_eq!(drain(&mut hub), [Seen::Close(1, CloseCode::TokenExpired)]);
    assert_eq!(hub.poll_timeout(), Some(9_000));
    hub.handle_timeout(20_000);
    assert_eq!(drain(&mut hub), [Seen::Close(2, CloseCode::TokenExpired)]);
    assert_eq!(hub.poll_timeout(), None);
    assert_eq!(hub.stats().connections, 1);
}

#[test]
fn a_saved_session_keeps_the_identity_and_expiry_and_restores_them() {
    let mut hub = hub();
    sign_in(&mut hub, 1, user("alice"), Some(5_000));
    listen(&mut hub, 1, NOW);
    drain(&mut hub);
    let session = hub.session(1).unwrap();
    assert_eq!(
        (&session.identity, session.expires, session.open),
        (&user("alice"), Some(5_000), true)
    );
    let mut hub = Hub::new(hub.into_database(), HubConfig::default());
    hub.restore(1, &session).unwrap();
    assert_eq!(hub.session(1).unwrap(), session);
    assert_eq!(hub.poll_timeout(), Some(5_000));
    // A refresh after the restore is checked against the restored user.
    hub.handle_frame(1, r#"{"type":"auth","rid":2,"auth":"t"}"#, NOW);
    drain(&mut hub);
    hub.handle_verified(1, Some(2), Ok((user("bob"), Some(9_000))), NOW);
    assert_eq!(kinds(&drain(&mut hub)), ["1:error"]);
    hub.handle_timeout(5_000);
    assert_eq!(kinds(&drain(&mut hub)), ["1:close token_expired"]);
}

#[test]
fn a_session_verifying_its_credential_does_not_restore() {
    let mut hub = hub();
    hub.handle_open(1, 0);
    hub.handle_frame(1, &hello(Some("token")), NOW);
    let session = hub.session(1).unwrap();
    assert!(session.waiting);
    assert_eq!(
        SavedSession {
            waiting: false,
            ..session.clone()
        },
        SavedSession::default()
    );
    let mut hub = Hub::new(hub.into_database(), HubConfig::default());
    assert!(hub.restore(1, &session).is_err());
}

/// Opens `conn` with a credential verified as `identity`; what the hub said.
fn try_sign_in(hub: &mut Hub<MemoryStorage>, conn: u64, identity: Identity) -> Vec<String> {
    hub.handle_open(conn, 0);
    hub.handle_frame(conn, &hello(Some("token")), NOW);
    hub.handle_verified(conn, None, Ok((identity, None)), NOW);
    let seen = drain(hub);
    let mut said = kinds(&seen);
    for s in &seen {
        if let Seen::Send(_, frame) = s {
            if let Some(code) = frame["error"]["code"].as_str() {
                said.push(code.to_owned());
            }
        }
    }
    said.retain(|s| !s.ends_with(":verify None"));
    said
}

#[test]
fn a_network_holds_at_most_an_eighth_of_the_connections_without_a_users_credential() {
    let mut hub = sixteen_places();
    let attacker = Some("203.0.113.66");
    let admit = |hub: &Hub<MemoryStorage>, network| hub.admit_connection(network).map(|_| ());
    // A silent connection and an anonymous one take the network's share.
    hub.handle_open_from(1, 0, attacker.map(str::to_owned));
    hub.handle_open_from(2, 0, attacker.map(str::to_owned));
    hub.handle_frame(2, &hello(None), NOW);
    assert_eq!(kinds(&drain(&mut hub)), ["2:welcome"]);
    let refused = admit(&hub, attacker).expect_err("a third is refused before it opens");
    assert_eq!(refused.code, ErrorCode::ResourceExhausted);
    assert!(
        refused.message.contains("this network has 2 connections"),
        "{}",
        refused.message
    );
    // Other networks, and connections whose network is not known, still open.
    assert_eq!(admit(&hub, Some("198.51.100.7")), Ok(()));
    assert_eq!(admit(&hub, None), Ok(()));
    // A connection that signs in as a user or an admin leaves the network's
    // count (users have their own share), and the silent one's place frees.
    hub.handle_frame(1, &hello(Some("token")), NOW);
    hub.handle_verified(1, None, Ok((user("alice"), None)), NOW);
    assert_eq!(kinds(&drain(&mut hub)), ["1:verify None", "1:welcome"]);
    assert_eq!(admit(&hub, attacker), Ok(()));
    // The network is saved with the session and counts after a restore.
    hub.handle_open_from(3, 0, attacker.map(str::to_owned));
    let saved = hub.session(3).expect("the silent connection's session");
    assert_eq!(saved.network.as_deref(), attacker);
    let anonymous = hub.session(2).expect("the anonymous connection's session");
    let mut restored = sixteen_places();
    restored.set_now(NOW);
    restored.restore(2, &anonymous).expect("restores");
    restored.restore(3, &saved).expect("restores");
    assert!(
        admit(&restored, attacker).is_err(),
        "both places are held again"
    );
    // The anonymous connection kept working meanwhile.
    hub.handle_frame(2, r#"{"type":"get","rid":1,"path":"rooms/r1"}"#, NOW);
    assert_eq!(kinds(&drain(&mut hub)), ["2:doc"]);
}

#[test]
fn a_user_past_an_eighth_of_the_connections_is_refused_at_hello() {
    let mut hub = sixteen_places();
    assert_eq!(try_sign_in(&mut hub, 1, user("mallory")), ["1:welcome"]);
    assert_eq!(try_sign_in(&mut hub, 2, user("mallory")), ["2:welcome"]);
    assert_eq!(
        try_sign_in(&mut hub, 3, user("mallory")),
        [
            "3:error",
            "3:close handshake_required",
            "resource_exhausted"
        ]
    );
    // Other users, admins and anonymous connections are not hers to take.
    assert_eq!(try_sign_in(&mut hub, 4, user("alice")), ["4:welcome"]);
    assert_eq!(try_sign_in(&mut hub, 5, Identity::Admin), ["5:welcome"]);
    assert_eq!(try_sign_in(&mut hub, 6, Identity::Admin), ["6:welcome"]);
    assert_eq!(try_sign_in(&mut hub, 7, Identity::Admin), ["7:welcome"]);
    hub.handle_open(8, 0);
    hub.handle_frame(8, &hello(None), NOW);
    assert_eq!(kinds(&drain(&mut hub)), ["8:welcome"]);
    // Her connections keep working; one closed frees her place.
    hub.handle_frame(1, &commit(1, "r1"), NOW);
    assert!(kinds(&drain(&mut hub)).contains(&"1:committed".to_owned()));
    hub.handle_close(2);
    assert_eq!(try_sign_in(&mut hub, 9, user("mallory")), ["9:welcome"]);
}
