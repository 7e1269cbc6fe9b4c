//! File paths (spec 15.1) and their metadata documents and folder
//! collections (spec 15.2): `avatars/alice.png` is described by
//! `_files/avatars/_files/alice.png`, and the folder `avatars` is listed by
//! the collection `_files/avatars/_files`.

use blaze_protocol::{CollectionPath, DocPath, ErrorCode};

use crate::Error;

/// The collection id of a folder's metadata documents.
pub const FILES_COLLECTION: &str = "_files";

/// The metadata document of the file `path` (not checked).
pub fn metadata_doc_path(path: &str) -> String {
    path.split('/')
        .map(|segment| format!("{FILES_COLLECTION}/{segment}"))
        .collect::<Vec<_>>()
        .join("/")
}

/// The collection listing the folder `folder` (`""`: the root, `_files`).
pub fn folder_collection_path(folder: &str) -> String {
    if folder.is_empty() {
        FILES_COLLECTION.to_owned()
    } else {
        format!("{}/{FILES_COLLECTION}", metadata_doc_path(folder))
    }
}

/// The file path a metadata document describes, `None` when `doc` is not one.
pub fn file_path_of_metadata_doc(doc: &str) -> Option<String> {
    let segments: Vec<&str> = doc.split('/').collect();
    if !segments.len().is_multiple_of(2) {
        return None;
    }
    let mut file = Vec::new();
    for pair in segments.chunks(2) {
        if pair[0] != FILES_COLLECTION {
            return None;
        }
        file.push(pair[1]);
    }
    Some(file.join("/"))
}

/// Checks a file path (spec 15.1): valid segments, and a metadata document
/// path within the path limits; else `invalid_path`.
pub(crate) fn check_file_path(path: &str) -> Result<(), Error> {
    if path.is_empty() {
        return Err(Error::rejected(
            ErrorCode::InvalidPath,
            "the root folder is not a file",
        ));
    }
    check_folder(path)?;
    DocPath::parse(&metadata_doc_path(path))?;
    Ok(())
}

/// Checks a folder path: `""` (the root) or a valid file path.
pub(crate) fn check_folder(folder: &str) -> Result<(), Error> {
    if folder.is_empty() {
        return Ok(());
    }
    for segment in folder.split('/') {
        // One segment is a valid collection path exactly when it is a valid segment.
        CollectionPath::parse(segment).map_err(|e| {
            Error::rejected(
                ErrorCode::InvalidPath,
                format!("invalid file path {folder:?}: {e}"),
            )
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_paths_as_the_spec_table() {
        assert_eq!(metadata_doc_path("report.pdf"), "_files/report.pdf");
        assert_eq!(
            metadata_doc_path("avatars/alice.png"),
            "_files/avatars/_files/alice.png"
        );
        assert_eq!(
            metadata_doc_path("a/b/c.txt"),
            "_files/a/_files/b/_files/c.txt"
        );
        assert_eq!(folder_collection_path(""), "_files");
        assert_eq!(folder_collection_path("a/b"), "_files/a/_files/b/_files");
        assert_eq!(
            file_path_of_metadata_doc("_files/a/_files/b/_files/c.txt").as_deref(),
            Some("a/b/c.txt")
        );
        assert_eq!(file_path_of_metadata_doc("rooms/r1"), None);
        assert_eq!(file_path_of_metadata_doc("_files/a/_files"), None);
    }

    #[test]
    fn refuses_invalid_paths() {
        for bad in ["", "/a", "a/", "a//b", "..", "a/./b", "a b", "é", "__x__"] {
            let err = check_file_path(bad).unwrap_err();
            assert_eq!(err.code(), Some(ErrorCode::InvalidPath), "{bad:?}");
        }
        // Short, but its metadata document path has over 200 segments.
        let deep = vec!["a"; 101].join("/");
        assert_eq!(
            check_file_path(&deep).unwrap_err().code(),
            Some(ErrorCode::InvalidPath)
        );
        for good in ["a", "a/b/c.tar.gz", "x-y_z.~:@+"] {
            check_file_path(good).unwrap();
        }
        check_folder("").unwrap();
    }
}
