//! Conformance vector runner: reads `spec/vectors/` and checks the Rust implementation against it.
