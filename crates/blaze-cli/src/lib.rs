//! What `blaze` does without a server: the access rules checked and tested
//! offline against the core (`blaze rules`). The binary's other commands
//! talk to a server through `blaze-client`.

pub mod rules;
