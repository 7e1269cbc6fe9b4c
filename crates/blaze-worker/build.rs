//! Bundles the project's rules file (spec 14.1) into the worker, so a
//! deployment carries its rules whatever their size (a Worker variable
//! holds at most 5 KB): the file `BLAZE_RULES_FILE` names (an absolute
//! path; `scripts/build-worker.sh` sets it, default `blaze.rules` at the
//! workspace root), or nothing when it does not exist (the worker then
//! serves admin requests only, unless the variable `BLAZE_RULES` gives
//! rules at run time).
//!
//! The file is compiled here first, natively: one that does not compile
//! stops the build with the compiler's messages (so it is never deployed),
//! and a ruleset nested too deep is refused cleanly here rather than
//! overflowing the wasm stack when the worker compiles it. Warnings are
//! shown as cargo warnings.

use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let file = std::env::var("BLAZE_RULES_FILE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| manifest.join("../../blaze.rules"));
    println!("cargo:rerun-if-env-changed=BLAZE_RULES_FILE");
    println!("cargo:rerun-if-changed={}", file.display());
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    if !text.trim().is_empty() {
        match blaze_core::Rules::compile(&text) {
            Ok(rules) => {
                for warning in rules.warnings() {
                    println!("cargo:warning={}: {warning}", file.display());
                }
            }
            Err(e) => panic!("{} does not compile:\n{e}", file.display()),
        }
    }
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    std::fs::write(out.join("bundled.rules"), text).expect("OUT_DIR is writable");
}
