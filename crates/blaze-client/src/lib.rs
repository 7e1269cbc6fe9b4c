//! The Rust client for Blaze. It is an empty shell until the client issue fills it.
