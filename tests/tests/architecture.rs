//! Architecture invariants, checked on the source text (as rust-analyzer's tidy tests do).

use std::path::{Path, PathBuf};

fn sources(crate_dir: &str) -> Vec<(PathBuf, String)> {
    fn walk(dir: &Path, out: &mut Vec<(PathBuf, String)>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(crate_dir)
            .join("src"),
        &mut out,
    );
    assert!(!out.is_empty(), "no sources under {crate_dir}");
    out
}

/// Names whose use means a clock, a disk, a socket, threads or the environment.
const IO: [&str; 8] = [
    "std::fs",
    "std::net",
    "std::time",
    "std::thread",
    "std::env",
    "std::process",
    "Instant",
    "SystemTime",
];

#[test]
fn core_protocol_and_auth_do_no_io_and_read_no_clock() {
    for krate in [
        "crates/blaze-core",
        "crates/blaze-protocol",
        "crates/blaze-auth",
    ] {
        for (path, text) in sources(krate) {
            for name in IO {
                assert!(
                    !text.contains(name),
                    "{} uses {name}: the crate must stay I/O- and clock-free",
                    path.display()
                );
            }
        }
    }
}

#[test]
fn only_the_protocol_crate_derives_serde() {
    for (path, text) in sources("crates/blaze-core") {
        for derive in ["Serialize", "Deserialize"] {
            assert!(
                !text.contains(derive),
                "{} mentions {derive}: only blaze-protocol derives serde",
                path.display()
            );
        }
    }
}

#[test]
fn client_and_cli_derive_no_serde_and_sit_above_the_core() {
    for krate in ["crates/blaze-client", "crates/blaze-cli"] {
        for (path, text) in sources(krate) {
            let derives_serde = text.lines().any(|line| {
                let line = line.trim_start();
                !line.starts_with("//")
                    && line.starts_with("#[derive(")
                    && (line.contains("Serialize") || line.contains("Deserialize"))
            });
            assert!(
                !derives_serde,
                "{} derives serde: only blaze-protocol does",
                path.display()
            );
        }
        let manifest = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(krate)
                .join("Cargo.toml"),
        )
        .unwrap();
        assert!(
            !manifest.contains("blaze-worker"),
            "{krate} depends on the worker: dependencies point protocol <- core <- worker/client"
        );
    }
}
