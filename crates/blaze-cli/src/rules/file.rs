//! The rules tests file: the format of `blaze rules test` and of the
//! conformance vectors `spec/vectors/rules/*.json` (documented in
//! `spec/vectors/README.md`, "`rules/*.json`"): rules, stored documents, and
//! cases of who asks what and what must come of it. Read by hand from JSON
//! values (only `blaze-protocol` derives serde).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// One tests file.
#[derive(Clone, Debug)]
pub struct TestsFile {
    /// What the file tests.
    pub description: String,
    /// The rules text; or see `rules_file`.
    pub rules: Option<String>,
    /// A rules file, relative to the tests file's folder.
    pub rules_file: Option<String>,
    /// `request.time` in process, in milliseconds since the Unix epoch.
    pub now: u64,
    /// The stored documents every case starts from: path -> data.
    pub docs: BTreeMap<String, Map<String, Value>>,
    /// The cases, each run against `docs` as they are here.
    pub cases: Vec<Case>,
}

/// `now` when a file gives none: 2026-01-01T00:00:00Z.
const DEFAULT_NOW: u64 = 1_767_225_600_000;

/// One case: who asks, what, and what must come of it.
#[derive(Clone, Debug)]
pub struct Case {
    /// Unique within its file; failures are reported by it.
    pub name: String,
    /// Who asks (`as`).
    pub who: Who,
    /// What is asked.
    pub request: Request,
    /// What must come of it.
    pub expect: Expect,
    /// Why a live server cannot run this case (it is skipped there); absent
    /// when it can.
    pub in_process_only: Option<String>,
}

/// Who asks: `"anonymous"` (`request.auth == null`), `"admin"` (the rules
/// are skipped) or a signed-in user.
#[derive(Clone, Debug, PartialEq)]
pub enum Who {
    /// `"anonymous"` or `"admin"`.
    Named(Named),
    /// A user: `request.auth.uid` and the token's extra claims
    /// (`request.auth.token`, beside `sub`, `iss`, `aud`, `iat` and `exp`).
    User {
        /// The user id (the token's `sub`).
        uid: String,
        /// More claims.
        claims: Map<String, Value>,
    },
}

/// An identity without a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// No credential.
    Anonymous,
    /// An admin key.
    Admin,
}

/// What a case asks, in the wire's JSON (protocol sections 8 and 9).
#[derive(Clone, Debug)]
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

/// The keys of a request, one of which a case has.
const REQUESTS: [&str; 5] = ["get", "query", "count", "commit", "listen"];

/// An object's fields, refusing any not in `known`.
fn object<'a>(
    value: &'a Value,
    what: &str,
    known: &[&str],
) -> Result<&'a Map<String, Value>, String> {
    let Value::Object(map) = value else {
        return Err(format!("{what}: an object, not {value}"));
    };
    match map.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => Err(format!("{what}: unknown field {unknown:?}")),
        None => Ok(map),
    }
}

fn string(value: Option<&Value>, what: &str) -> Result<String, String> {
    let value = value.unwrap_or(&Value::Null);
    value
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("{what}: a string, not {value}"))
}

impl Case {
    fn parse(value: &Value) -> Result<Self, String> {
        let mut known = vec!["name", "as", "expect", "in_process_only"];
        known.extend(REQUESTS);
        let map = object(value, "a case", &known)?;
        let name = string(map.get("name"), "a case's name")?;
        let at = |e: String| format!("{name}: {e}");
        let kinds: Vec<&str> = REQUESTS
            .into_iter()
            .filter(|k| map.contains_key(*k))
            .collect();
        let [kind] = kinds[..] else {
            return Err(at(format!("exactly one of {REQUESTS:?}")));
        };
        let body = map[kind].clone();
        let request = match kind {
            "get" => Request::Get(string(Some(&body), "get").map_err(at)?),
            "query" => Request::Query(body),
            "count" => Request::Count(body),
            "commit" => Request::Commit(body),
            _ => Request::Listen(body),
        };
        let in_process_only = match map.get("in_process_only") {
            Some(reason) => Some(string(Some(reason), "in_process_only").map_err(at)?),
            None => None,
        };
        Ok(Case {
            who: Who::parse(map.get("as")).map_err(at)?,
            request,
            expect: Expect::parse(map.get("expect")).map_err(at)?,
            in_process_only,
            name,
        })
    }
}

impl Who {
    fn parse(value: Option<&Value>) -> Result<Self, String> {
        match value {
            Some(Value::String(s)) if s == "anonymous" => Ok(Who::Named(Named::Anonymous)),
            Some(Value::String(s)) if s == "admin" => Ok(Who::Named(Named::Admin)),
            Some(value @ Value::Object(_)) => {
                let map = object(value, "as", &["uid", "claims"])?;
                let uid = string(map.get("uid"), "as.uid")?;
                let claims = match map.get("claims") {
                    None => Map::new(),
                    Some(Value::Object(claims)) => claims.clone(),
                    Some(other) => return Err(format!("as.claims: an object, not {other}")),
                };
                Ok(Who::User { uid, claims })
            }
            other => Err(format!(
                "as: \"anonymous\", \"admin\" or {{\"uid\", \"claims\"}}, not {}",
                other.unwrap_or(&Value::Null)
            )),
        }
    }
}

impl Expect {
    fn parse(value: Option<&Value>) -> Result<Self, String> {
        match value {
            Some(Value::String(s)) if s == "allow" => Ok(Expect::Allow),
            Some(value @ Value::Object(_)) => {
                let map = object(value, "expect", &["error", "write_index"])?;
                let code = string(map.get("error"), "expect.error")?;
                let write_index = match map.get("write_index") {
                    None => None,
                    Some(i) => Some(
                        i.as_u64()
                            .ok_or_else(|| format!("expect.write_index: a number, not {i}"))?,
                    ),
                };
                Ok(Expect::Error { code, write_index })
            }
            other => Err(format!(
                "expect: \"allow\" or {{\"error\": code}}, not {}",
                other.unwrap_or(&Value::Null)
            )),
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
        let value: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let known = ["description", "rules", "rules_file", "now", "docs", "cases"];
        let map = object(&value, "a tests file", &known)?;
        let optional = |key: &str| map.get(key).map(|v| string(Some(v), key)).transpose();
        let mut docs = BTreeMap::new();
        match map.get("docs") {
            None => {}
            Some(Value::Object(given)) => {
                for (path, data) in given {
                    let Value::Object(data) = data else {
                        return Err(format!("docs.{path}: an object, not {data}"));
                    };
                    docs.insert(path.clone(), data.clone());
                }
            }
            Some(other) => return Err(format!("docs: an object, not {other}")),
        }
        let cases = map
            .get("cases")
            .and_then(Value::as_array)
            .ok_or("cases: an array")?
            .iter()
            .map(Case::parse)
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = std::collections::HashSet::new();
        for case in &cases {
            if !names.insert(&case.name) {
                return Err(format!("two cases are named {:?}", case.name));
            }
        }
        let now = match map.get("now") {
            None => DEFAULT_NOW,
            Some(now) => now
                .as_u64()
                .ok_or_else(|| format!("now: milliseconds, not {now}"))?,
        };
        Ok(TestsFile {
            description: optional("description")?.unwrap_or_default(),
            rules: optional("rules")?,
            rules_file: optional("rules_file")?,
            now,
            docs,
            cases,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(cases: &str) -> Result<TestsFile, String> {
        TestsFile::parse(&format!(r#"{{"rules": "r", "cases": [{cases}]}}"#))
    }

    #[test]
    fn reads_a_case() {
        let file = parse(
            r#"{"name": "n", "as": {"uid": "u", "claims": {"role": "x"}},
                "commit": {"collection": "c", "writes": []},
                "expect": {"error": "permission_denied", "write_index": 2}}"#,
        )
        .unwrap();
        assert_eq!(file.now, DEFAULT_NOW);
        let case = &file.cases[0];
        assert!(
            matches!(&case.who, Who::User { uid, claims } if uid == "u" && claims["role"] == "x")
        );
        assert!(matches!(case.request, Request::Commit(_)));
        assert_eq!(
            case.expect,
            Expect::Error {
                code: "permission_denied".into(),
                write_index: Some(2)
            }
        );
    }

    #[test]
    fn refuses_what_it_does_not_know() {
        let two_requests =
            r#"{"name": "n", "as": "admin", "get": "a/b", "query": {}, "expect": "allow"}"#;
        assert!(parse(two_requests).unwrap_err().contains("exactly one of"));
        let unknown = r#"{"name": "n", "as": "admin", "get": "a/b", "expect": "allow", "x": 1}"#;
        assert!(parse(unknown).unwrap_err().contains("unknown field \"x\""));
        let who = r#"{"name": "n", "as": "root", "get": "a/b", "expect": "allow"}"#;
        assert!(parse(who).unwrap_err().starts_with("n: as:"));
        let expect = r#"{"name": "n", "as": "anonymous", "get": "a/b", "expect": "deny"}"#;
        assert!(parse(expect).unwrap_err().starts_with("n: expect:"));
        let twice = r#"{"name": "n", "as": "admin", "get": "a/b", "expect": "allow"}"#;
        assert!(parse(&format!("{twice}, {twice}"))
            .unwrap_err()
            .contains("two cases"));
    }
}
