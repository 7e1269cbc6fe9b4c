//! Conformance vector runner: reads `spec/vectors/*.json` and checks the Rust
//! implementation against every case. The formats are in `spec/vectors/README.md`.

pub mod live;
pub mod session;

use std::path::PathBuf;

use blaze_protocol::Limits;
use serde_json::{Map, Value};

/// The directory that holds the vector files.
pub fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/vectors")
}

/// The rules vector files (`spec/vectors/rules/*.json`), in name order.
pub fn rules_files() -> Vec<PathBuf> {
    let dir = vectors_dir().join("rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "json").then_some(path)
        })
        .collect();
    files.sort();
    files
}

/// The session transcript files, as paths relative to the vectors directory, in name order.
pub fn session_files() -> Vec<String> {
    let dir = vectors_dir().join("session");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.ends_with(".json").then(|| format!("session/{name}"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no session vectors");
    files
}

/// The cases of one vector file (`{"description", "cases": [...]}`).
pub fn load_cases(file: &str) -> Vec<Value> {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let cases = doc["cases"].as_array().cloned().unwrap_or_default();
    assert!(!cases.is_empty(), "{file} has no cases");
    cases
}

/// The limits of a case: the defaults with the case's `limits` members laid over them.
pub fn case_limits(case: &Value) -> Limits {
    let mut limits = serde_json::to_value(Limits::default()).expect("limits serialize");
    if let (Some(target), Some(Value::Object(overrides))) =
        (limits.as_object_mut(), case.get("limits"))
    {
        for (k, v) in overrides {
            assert!(target.contains_key(k), "unknown limit {k}");
            target.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(limits).expect("case limits are valid")
}

/// A case's member that must be an object.
pub fn object(case: &Value, key: &str) -> Map<String, Value> {
    case.get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

/// Runs `check` on every case of `file`; panics listing every failing case by name.
pub fn run_all(file: &str, check: impl Fn(&Value) -> Result<(), String>) {
    let cases = load_cases(file);
    let mut names = std::collections::HashSet::new();
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            let name = case["name"].as_str().unwrap_or("<unnamed>").to_owned();
            assert!(
                names.insert(name.clone()),
                "{file}: duplicate case name {name}"
            );
            check(case).err().map(|e| format!("{name}: {e}"))
        })
        .collect();
    println!("{file}: {} cases, {} failed", cases.len(), failures.len());
    assert!(
        failures.is_empty(),
        "{file}: {} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Compares an outcome with a case's `expect`: `Ok(value)` against `expect[ok_key]`, or an error code against `expect.error`.
pub fn expect(
    case: &Value,
    ok_key: &str,
    outcome: Result<Value, (String, Option<usize>)>,
) -> Result<(), String> {
    let want = &case["expect"];
    match (outcome, want.get("error")) {
        (Ok(got), None) if want.get(ok_key) == Some(&got) => Ok(()),
        (Ok(got), _) => Err(format!("expected {want}, got {ok_key} {got}")),
        (Err((code, index)), Some(Value::String(w))) if *w == code => match want.get("write_index")
        {
            Some(i) if i.as_u64() != index.map(|i| i as u64) => {
                Err(format!("write_index {index:?}, expected {i}"))
            }
            _ => Ok(()),
        },
        (Err((code, _)), _) => Err(format!("expected {want}, got error {code}")),
    }
}
