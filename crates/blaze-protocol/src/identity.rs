//! Who a request comes from, once its credential is verified (spec section 13).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A verified identity: what the engine (and the rules) see instead of a token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Identity {
    /// No credential was given.
    Anonymous,
    /// An admin key: full access, rules skipped.
    Admin,
    /// A verified JWT: `sub` is the `uid`, and every claim is kept.
    User {
        /// The token's `sub`.
        uid: String,
        /// The token's whole claims object.
        claims: Map<String, Value>,
    },
}

impl Identity {
    /// `anonymous`, `admin` or `user`: what logs show.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Admin => "admin",
            Self::User { .. } => "user",
        }
    }

    /// The user's id; `None` for the anonymous and admin identities.
    pub fn uid(&self) -> Option<&str> {
        match self {
            Self::User { uid, .. } => Some(uid),
            _ => None,
        }
    }
}

/// What the server tells a client about its verified credential, in
/// `welcome` (when `hello` carried one) and in `authenticated`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthState {
    /// `admin` or `user`.
    pub kind: String,
    /// The user's id, for a `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// When the credential expires, in milliseconds since the Unix epoch
    /// (its `exp` plus the server's leeway); absent for credentials that do not expire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
}

impl AuthState {
    /// The state announced for `identity`, valid until `expires`.
    pub fn of(identity: &Identity, expires: Option<u64>) -> Self {
        Self {
            kind: identity.kind().to_owned(),
            uid: identity.uid().map(str::to_owned),
            expires,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn identities_serialize_tagged_by_kind() {
        let user = Identity::User {
            uid: "alice".into(),
            claims: json!({"sub": "alice", "role": "admin"})
                .as_object()
                .unwrap()
                .clone(),
        };
        for (identity, expected) in [
            (Identity::Anonymous, json!({"kind": "anonymous"})),
            (Identity::Admin, json!({"kind": "admin"})),
            (
                user,
                json!({"kind": "user", "uid": "alice", "claims": {"sub": "alice", "role": "admin"}}),
            ),
        ] {
            assert_eq!(serde_json::to_value(&identity).unwrap(), expected);
            assert_eq!(
                serde_json::from_value::<Identity>(expected).unwrap(),
                identity
            );
        }
    }

    #[test]
    fn auth_state_names_kind_uid_and_expiry() {
        let user = Identity::User {
            uid: "bob".into(),
            claims: Map::new(),
        };
        assert_eq!(
            serde_json::to_value(AuthState::of(&user, Some(5))).unwrap(),
            json!({"kind": "user", "uid": "bob", "expires": 5})
        );
        assert_eq!(
            serde_json::to_value(AuthState::of(&Identity::Admin, None)).unwrap(),
            json!({"kind": "admin"})
        );
    }
}
