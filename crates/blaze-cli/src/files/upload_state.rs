//! Where `blaze cp` remembers a resumable upload (spec 15.7) between runs:
//! one small JSON file per upload in the user's cache directory
//! (`$BLAZE_CACHE_DIR`, else `$XDG_CACHE_HOME/blaze`, else
//! `~/.cache/blaze`, under `uploads/`), named by a hash of what identifies
//! the copy: the server, the remote path, the local file, its size and its
//! modification time. A changed local file makes another name, so it is
//! never resumed with the parts of its old bytes.

use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use serde_json::{json, Value};

/// The state file of one copy.
pub struct UploadState {
    file: PathBuf,
    key: Value,
}

impl UploadState {
    /// The state of copying `local` (of `size` bytes) to `remote` on `url`;
    /// `None` when there is no cache directory.
    pub fn of(url: &str, remote: &str, local: &Path, size: u64) -> Option<Self> {
        let local = std::fs::canonicalize(local).ok()?;
        let modified = std::fs::metadata(&local)
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
            .map_or(0, |d| d.as_nanos());
        let key = json!({
            "url": url,
            "path": remote,
            "local": local.to_string_lossy(),
            "size": size,
            "modified": modified.to_string(),
        });
        let name = format!("{:016x}.json", fnv1a(key.to_string().as_bytes()));
        Some(Self {
            file: cache_dir()?.join("uploads").join(name),
            key,
        })
    }

    /// The upload id saved for this copy, if any (a file that does not match is ignored).
    pub fn load(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.file).ok()?;
        let saved: Value = serde_json::from_str(&text).ok()?;
        if saved["key"] != self.key {
            return None;
        }
        saved["upload"].as_str().map(str::to_owned)
    }

    /// Saves `id` as this copy's upload.
    pub fn save(&self, id: &str) -> std::io::Result<()> {
        if let Some(dir) = self.file.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let saved = json!({"key": self.key, "upload": id});
        std::fs::write(&self.file, saved.to_string())
    }

    /// Forgets this copy's upload (it completed, or the server lost it).
    pub fn remove(&self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

fn cache_dir() -> Option<PathBuf> {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("BLAZE_CACHE_DIR")
        .or_else(|| var("XDG_CACHE_HOME").map(|d| d.join("blaze")))
        .or_else(|| var("HOME").map(|d| d.join(".cache").join("blaze")))
}

/// FNV-1a, 64 bits: a stable name for a key (not a security measure).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_loads_and_forgets_an_upload_per_copy() {
        let dir = std::env::temp_dir().join(format!("blaze-cli-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let local = dir.join("big.bin");
        std::fs::write(&local, b"0123456789").unwrap();
        std::env::set_var("BLAZE_CACHE_DIR", dir.join("cache"));

        let state = UploadState::of("http://127.0.0.1:1", "a/big.bin", &local, 10).unwrap();
        assert_eq!(state.load(), None);
        state.save("u-1").unwrap();
        assert_eq!(state.load().as_deref(), Some("u-1"));
        let again = UploadState::of("http://127.0.0.1:1", "a/big.bin", &local, 10).unwrap();
        assert_eq!(
            again.load().as_deref(),
            Some("u-1"),
            "a second run finds it"
        );
        let elsewhere = UploadState::of("http://127.0.0.1:1", "b/big.bin", &local, 10).unwrap();
        assert_eq!(
            elsewhere.load(),
            None,
            "another remote path is another copy"
        );
        let grown = UploadState::of("http://127.0.0.1:1", "a/big.bin", &local, 11).unwrap();
        assert_eq!(grown.load(), None, "another size is another copy");
        state.remove();
        assert_eq!(again.load(), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
