//! Key hints: the object store key this Worker isolate last saw a file
//! path name, so a download with a credential can start reading those
//! bytes while the folder's object decides the rules and answers the
//! current key (spec 15.3). A hint is never trusted: the bytes are served
//! only when the metadata document names the same key (keys are fresh for
//! every upload, so a key's bytes never change), and a wrong or stale hint
//! costs one object store read that is dropped.

use std::collections::HashMap;

/// How many paths an isolate remembers; a full set is forgotten at once
/// when a new path comes (paths are at most a few hundred bytes, 15.1).
pub const HINTS: usize = 512;

/// The key last seen for each of at most [`HINTS`] file paths.
#[derive(Debug, Default)]
pub struct KeyHints {
    keys: HashMap<String, String>,
}

impl KeyHints {
    /// Records that `path` names `key` now.
    pub fn remember(&mut self, path: &str, key: &str) {
        if let Some(known) = self.keys.get_mut(path) {
            key.clone_into(known);
            return;
        }
        if self.keys.len() >= HINTS {
            self.keys.clear();
        }
        self.keys.insert(path.to_owned(), key.to_owned());
    }

    /// Forgets `path` (deleted).
    pub fn forget(&mut self, path: &str) {
        self.keys.remove(path);
    }

    /// The key `path` named when last seen, if remembered.
    pub fn guess(&self, path: &str) -> Option<&str> {
        self.keys.get(path).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_the_latest_key_and_forgets_deleted_paths() {
        let mut hints = KeyHints::default();
        assert_eq!(hints.guess("a.png"), None);
        hints.remember("a.png", "o/_files/k1");
        hints.remember("b.png", "o/_files/k2");
        hints.remember("a.png", "o/_files/k3");
        assert_eq!(hints.guess("a.png"), Some("o/_files/k3"));
        assert_eq!(hints.guess("b.png"), Some("o/_files/k2"));
        hints.forget("a.png");
        assert_eq!(hints.guess("a.png"), None);
        assert_eq!(hints.guess("b.png"), Some("o/_files/k2"));
    }

    #[test]
    fn never_holds_more_than_its_bound() {
        let mut hints = KeyHints::default();
        for i in 0..HINTS * 3 + 7 {
            hints.remember(&format!("f{i}"), &format!("k{i}"));
            assert!(hints.keys.len() <= HINTS);
            // The path just remembered is always there.
            assert_eq!(
                hints.guess(&format!("f{i}")),
                Some(format!("k{i}").as_str())
            );
        }
        // Replacing a known path's key never clears the others.
        hints.remember("f0x", "k");
        let before = hints.keys.len();
        let known = hints.keys.keys().next().cloned().expect("some path");
        hints.remember(&known, "other");
        assert_eq!(hints.keys.len(), before);
    }
}
