//! `blaze cp`, `blaze ls` and `blaze rm`: files (spec 15) through
//! `blaze_client::Files`. A remote path is written `blaze:PATH`
//! (`blaze:` alone is the root folder).

pub mod copy;
mod upload_state;

use blaze_client::files::{FileMetadata, Files, PresentationField};
use blaze_client::Blaze;
use serde_json::{json, Value};

use crate::output;
use crate::Failure;

/// The prefix of a remote path.
pub const REMOTE: &str = "blaze:";

/// The remote path of `arg` (`blaze:PATH` → `PATH`), `None` for a local one.
pub fn remote(arg: &str) -> Option<&str> {
    arg.strip_prefix(REMOTE)
}

/// `arg` as a remote path, `blaze:` being optional where only a remote path makes sense.
fn remote_only(arg: &str) -> &str {
    remote(arg).unwrap_or(arg).trim_matches('/')
}

/// The files API of `db`.
pub fn files_of(db: &Blaze) -> Result<Files, Failure> {
    Ok(db.files()?)
}

/// Every file under `folder`, its subfolders' included (depth first, each
/// folder's files in name order before its subfolders').
pub async fn list_tree(files: &Files, folder: &str) -> Result<Vec<FileMetadata>, Failure> {
    let mut found = Vec::new();
    let mut pending = vec![folder.to_owned()];
    while let Some(next) = pending.pop() {
        let listing = files.list_all(&next).await?;
        found.extend(listing.items);
        pending.extend(listing.prefixes.into_iter().rev());
    }
    Ok(found)
}

/// A file as one JSON line (the presentation fields only when set).
fn file_line(file: &FileMetadata) -> Value {
    let mut line = json!({
        "path": file.path,
        "name": file.name,
        "size": file.size,
        "contentType": file.content_type,
        "metadata": file.metadata,
        "md5": file.md5,
        "version": file.version,
        "update_time": file.update_time,
    });
    for field in PresentationField::ALL {
        if let Some(value) = file.presentation.get(field) {
            line[field.name()] = value.into();
        }
    }
    line
}

/// `blaze ls blaze:FOLDER`: the files directly in the folder, then its
/// subfolders (`{"folder": PATH}`), one JSON line each.
pub async fn list(db: &Blaze, folder: &str) -> Result<(), Failure> {
    let files = files_of(db)?;
    let listing = files.list_all(remote_only(folder)).await?;
    for file in &listing.items {
        output::print(&file_line(file));
    }
    for folder in &listing.prefixes {
        output::print(&json!({ "folder": folder }));
    }
    Ok(())
}

/// `blaze rm blaze:PATH`: deletes the file (`not_found` when there is none).
pub async fn remove(db: &Blaze, path: &str) -> Result<(), Failure> {
    files_of(db)?.delete(remote_only(path)).await?;
    Ok(())
}
