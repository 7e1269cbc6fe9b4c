//! The rules tests file: the format of `blaze rules test` and of the
//! conformance vectors `spec/vectors/rules/*.json` (documented in
//! `spec/vectors/README.md`, "Rules vectors"): rules, stored documents, and
//! cases of who asks what and what must come of it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

/// One tests file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TestsFile {
    /// What the file tests.
    #[serde(default)]
    pub description: String,
    /// The rules text; or see `rules_file`.
    #[serde(default)]
    pub rules: Option<String>,
    /// A rules file, relative to the tests file's folder.
    #[serde(default)]
    pub rules_file: Option<String>,
    /// `request.time` in process, in milliseconds since the Unix epoch.
    #[serde(default = "default_now")]
    pub now: u64,
    /// The stored documents every case starts from: path -> data.
    #[serde(default)]
    pub docs: BTreeMap<String, Map<String, Value>>,
    /// The cases, each run against `docs` as they are here.
    pub cases: Vec<Case>,
}

/// `now` when a file gives none: 2026-01-01T00:00:00Z.
fn default_now() -> u64 {
    1_767_225_600_000
}

/// One case: who asks, what, and what must come of it.
#[derive(Clone, Debug, Deserialize)]
pub struct Case {
    /// Unique within its file; failures are reported by it.
    pub name: String,
    /// Who asks.
    #[serde(rename = "as")]
    pub who: Who,
    /// What is asked.
    #[serde(flatten)]
    pub request: Request,
    /// What must come of it.
    pub expect: Expect,
    /// Why a live server cannot run this case (it is skipped there); absent
    /// when it can.
    #[serde(default)]
    pub in_process_only: Option<String>,
}

/// Who asks: `"anonymous"` (`request.auth == null`), `"admin"` (the rules
/// are skipped) or a signed-in user.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Who {
    /// `"anonymous"` or `"admin"`.
    Named(Named),
    /// A user: `request.auth.uid` and the token's extra claims
    /// (`request.auth.token`, beside `sub`, `iss`, `aud`, `iat` and `exp`).
    User {
        /// The user id (the token's `sub`).
        uid: String,
        /// More claims.
        #[serde(default)]
        claims: Map<String, Value>,
    },
}

/// An identity without a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Named {
    /// No credential.
    Anonymous,
    /// An admin key.
    Admin,
}

/// What a case asks, in the wire's JSON (protocol sections 8 and 9).
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Request {
    /// Read one document (`GET /v1/docs/{path}`, `get`): the `get` rule.
    Get(String),
    /// Run a query (`POST /v1/query`, `query`): the `list` rule.
    Query(Value),
    /// Count a query's results (`POST /v1/count`, `count`): the `list` rule.
    Count(Value),
    /// Commit a batch (`POST /v1/commit`, `commit`):
    /// `{"collection", "writes"}`, each write checked.
    Commit(Value),
    /// Listen (`listen`, WebSocket only): `{"doc": path}` or `{"query": Query}`.
    Listen(Value),
}

/// What must come of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    /// `"allow"`: the request succeeds.
    Allow,
    /// `{"error": code, "write_index"?: n}`: it fails with that code (and,
    /// for a batch, at that write).
    Error {
        /// The error code (`permission_denied`, `already_exists`, ...).
        code: String,
        /// For a commit, the index of the write it names.
        write_index: Option<u64>,
    },
}

impl<'de> Deserialize<'de> for Expect {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Word(String),
            Error {
                error: String,
                #[serde(default)]
                write_index: Option<u64>,
            },
        }
        match Raw::deserialize(d)? {
            Raw::Word(w) if w == "allow" => Ok(Expect::Allow),
            Raw::Word(w) => Err(serde::de::Error::custom(format!(
                "expect: \"allow\" or {{\"error\": code}}, not {w:?}"
            ))),
            Raw::Error { error, write_index } => Ok(Expect::Error {
                code: error,
                write_index,
            }),
        }
    }
}

impl std::fmt::Display for Expect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expect::Allow => f.write_str("allowed"),
            Expect::Error {
                code,
                write_index: Some(i),
            } => write!(f, "{code} at write {i}"),
            Expect::Error { code, .. } => f.write_str(code),
        }
    }
}

impl TestsFile {
    /// Reads and checks the tests file at `path`.
    pub fn read(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        Self::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses and checks a tests file's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: TestsFile = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut names = std::collections::HashSet::new();
        for case in &file.cases {
            if !names.insert(&case.name) {
                return Err(format!("two cases are named {:?}", case.name));
            }
        }
        Ok(file)
    }

    /// The rules text: `rules`, or the file `rules_file` names (relative to
    /// `folder`, the tests file's); `None` when the file names none.
    pub fn rules_text(&self, folder: &Path) -> Result<Option<String>, String> {
        match (&self.rules, &self.rules_file) {
            (Some(text), None) => Ok(Some(text.clone())),
            (None, Some(name)) => {
                let path: PathBuf = folder.join(name);
                let text = std::fs::read_to_string(&path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(Some(text))
            }
            (None, None) => Ok(None),
            (Some(_), Some(_)) => {
                Err("a tests file has `rules` or `rules_file`, not both".to_owned())
            }
        }
    }
}
