//! What the files API returns: a file's metadata (its metadata document,
//! typed), an upload's answer, a page of a folder, and byte ranges.

use std::collections::BTreeMap;

use blaze_protocol::DocSnapshot;
use serde_json::{Map, Value};

use super::paths::file_path_of_metadata_doc;
use super::settable::Presentation;
use crate::Error;

/// A file's metadata (spec 15.2): its metadata document, typed.
#[derive(Clone, Debug, PartialEq)]
pub struct FileMetadata {
    /// The file path.
    pub path: String,
    /// Its name (the last segment).
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its content type.
    pub content_type: String,
    /// Its custom metadata.
    pub metadata: BTreeMap<String, String>,
    /// The hex MD5 of its bytes, as the object store computed it.
    pub md5: Option<String>,
    /// The uploader's `uid`; `None` for an admin key or an anonymous caller.
    pub uploaded_by: Option<String>,
    /// The metadata document's version (the download's `ETag`).
    pub version: u64,
    /// When the file was first uploaded (ms since the Unix epoch).
    pub create_time: u64,
    /// When its current bytes were uploaded (ms since the Unix epoch).
    pub update_time: u64,
    /// How downloads present it.
    pub presentation: Presentation,
}

impl FileMetadata {
    /// The metadata of an existing metadata document; `Protocol` when it is not a file's.
    pub(crate) fn from_doc(doc: &DocSnapshot) -> Result<Self, Error> {
        let bad = || Error::Protocol(format!("not a file's metadata document: {}", doc.path));
        let path = file_path_of_metadata_doc(&doc.path).ok_or_else(bad)?;
        let data = doc.data.as_ref().ok_or_else(bad)?;
        let metadata = match data.get("metadata") {
            None => BTreeMap::new(),
            Some(value) => string_map(value).ok_or_else(bad)?,
        };
        let optional = |key: &str| match data.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(bad()),
        };
        Ok(Self {
            name: path.rsplit('/').next().unwrap_or(&path).to_owned(),
            path,
            size: uint(data, "size").ok_or_else(bad)?,
            content_type: string(data, "contentType").ok_or_else(bad)?,
            metadata,
            md5: optional("md5")?,
            uploaded_by: optional("uploadedBy")?,
            version: doc.version.ok_or_else(bad)?,
            create_time: doc.create_time.ok_or_else(bad)?,
            update_time: doc.update_time.ok_or_else(bad)?,
            presentation: Presentation::of(data),
        })
    }
}

/// The answer of an upload (spec 15.3), a completed resumable upload (15.7)
/// or a metadata update.
#[derive(Clone, Debug, PartialEq)]
pub struct UploadResult {
    /// The file path.
    pub path: String,
    /// Its name.
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// Its content type.
    pub content_type: String,
    /// Its custom metadata.
    pub metadata: BTreeMap<String, String>,
    /// The hex MD5 of the bytes stored; `None` for a resumable upload's
    /// (spec 15.7: the object store computes none for an object joined from
    /// parts).
    pub md5: Option<String>,
    /// The file's new version.
    pub version: u64,
    /// The commit time (ms since the Unix epoch).
    pub time: u64,
    /// How downloads present the file.
    pub presentation: Presentation,
}

impl UploadResult {
    /// The result of an upload's JSON answer; `Protocol` when it is not one.
    pub(crate) fn from_json(answer: &Value) -> Result<Self, Error> {
        let bad = || Error::Protocol(format!("not an upload's answer: {answer}"));
        let object = answer.as_object().ok_or_else(bad)?;
        let field = |key: &str| string(object, key).ok_or_else(bad);
        Ok(Self {
            path: field("path")?,
            name: field("name")?,
            size: uint(object, "size").ok_or_else(bad)?,
            content_type: field("contentType")?,
            metadata: object
                .get("metadata")
                .and_then(string_map)
                .ok_or_else(bad)?,
            md5: match object.get("md5") {
                None | Some(Value::Null) => None,
                Some(Value::String(s)) => Some(s.clone()),
                Some(_) => return Err(bad()),
            },
            version: uint(object, "version").ok_or_else(bad)?,
            time: uint(object, "time").ok_or_else(bad)?,
            presentation: Presentation::of(object),
        })
    }
}

/// The string `key` of `object`.
pub(crate) fn string(object: &Map<String, Value>, key: &str) -> Option<String> {
    object.get(key)?.as_str().map(str::to_owned)
}

/// The non-negative integer `key` of `object`.
pub(crate) fn uint(object: &Map<String, Value>, key: &str) -> Option<u64> {
    object.get(key)?.as_u64()
}

/// An object of strings.
fn string_map(value: &Value) -> Option<BTreeMap<String, String>> {
    value
        .as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect()
}

/// One page of a folder's files and subfolders.
#[derive(Clone, Debug, PartialEq)]
pub struct ListPage {
    /// The files of the page, in name order.
    pub items: Vec<FileMetadata>,
    /// The subfolders of the page (their paths, `albums/2026`), in the
    /// server's key order (spec 15.2).
    pub prefixes: Vec<String>,
    /// The cursor of the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// The bytes to download.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ByteRange {
    /// From `offset` to the end.
    From(u64),
    /// `len` bytes (at least 1) from `offset`; a length past the end is cut to it.
    Slice {
        /// The first byte.
        offset: u64,
        /// How many bytes.
        len: u64,
    },
    /// The last `n` bytes (at least 1).
    Suffix(u64),
}

impl ByteRange {
    /// The `Range` header value.
    pub(crate) fn header(self) -> Result<String, Error> {
        match self {
            ByteRange::From(offset) => Ok(format!("bytes={offset}-")),
            ByteRange::Slice { offset, len } if len > 0 => {
                Ok(format!("bytes={offset}-{}", offset + len - 1))
            }
            ByteRange::Suffix(n) if n > 0 => Ok(format!("bytes=-{n}")),
            _ => Err(Error::Usage("an empty byte range".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_headers() {
        assert_eq!(ByteRange::From(5).header().unwrap(), "bytes=5-");
        assert_eq!(
            ByteRange::Slice {
                offset: 10,
                len: 20
            }
            .header()
            .unwrap(),
            "bytes=10-29"
        );
        assert_eq!(ByteRange::Suffix(7).header().unwrap(), "bytes=-7");
        assert!(ByteRange::Slice { offset: 1, len: 0 }.header().is_err());
        assert!(ByteRange::Suffix(0).header().is_err());
    }

    #[test]
    fn upload_answers() {
        let answer = serde_json::json!({"path": "a/b.txt", "name": "b.txt", "size": 3, "contentType": "text/plain",
            "metadata": {"k": "v"}, "md5": "00", "version": 9, "time": 5});
        let result = UploadResult::from_json(&answer).unwrap();
        assert_eq!(
            (
                result.path.as_str(),
                result.size,
                result.version,
                result.time
            ),
            ("a/b.txt", 3, 9, 5)
        );
        assert_eq!(result.md5.as_deref(), Some("00"));
        let mut joined = answer.clone();
        joined["md5"] = serde_json::Value::Null;
        assert_eq!(
            UploadResult::from_json(&joined).unwrap().md5,
            None,
            "a resumable upload's answer"
        );
        let mut bad = answer.clone();
        bad["metadata"] = serde_json::json!({"k": 1});
        assert!(matches!(
            UploadResult::from_json(&bad),
            Err(Error::Protocol(_))
        ));
        bad = answer.clone();
        bad["md5"] = serde_json::json!(5);
        assert!(matches!(
            UploadResult::from_json(&bad),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn metadata_of_a_document() {
        let doc: DocSnapshot = serde_json::from_value(serde_json::json!({
            "path": "_files/a/_files/b.txt", "exists": true,
            "data": {"name": "b.txt", "path": "a/b.txt", "size": 3, "contentType": "text/plain",
                     "metadata": {"k": "v"}, "md5": "00", "key": "o/x", "uploadedBy": null},
            "version": 4, "create_time": 1, "update_time": 2
        }))
        .unwrap();
        let meta = FileMetadata::from_doc(&doc).unwrap();
        assert_eq!(
            (meta.path.as_str(), meta.name.as_str(), meta.size),
            ("a/b.txt", "b.txt", 3)
        );
        assert_eq!(meta.metadata.get("k").map(String::as_str), Some("v"));
        assert_eq!(
            (meta.uploaded_by, meta.version, meta.update_time),
            (None, 4, 2)
        );
        let mut other = doc.clone();
        other.path = "rooms/r1".into();
        assert!(matches!(
            FileMetadata::from_doc(&other),
            Err(Error::Protocol(_))
        ));
    }
}
