//! Collection and document paths: `rooms`, `rooms/r1`, `rooms/r1/messages/m7`.
//!
//! A path is `/`-separated segments that alternate collection id and document
//! id, starting with a collection id. See `spec/protocol.md`, "Paths".

use std::fmt;

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// Longest segment, in bytes.
pub const MAX_SEGMENT_BYTES: usize = 128;
/// Longest whole path, in bytes.
pub const MAX_PATH_BYTES: usize = 1024;
/// Most segments in a path (Firestore allows 100 levels of subcollections).
pub const MAX_SEGMENTS: usize = 200;

/// Why a path was refused; every variant is answered with `invalid_path`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// The path is empty or has an empty segment (`a//b`, leading or trailing `/`).
    #[error("path has an empty segment")]
    EmptySegment,
    /// A segment has a character outside `A-Z a-z 0-9 - _ . ~ : @ +`.
    #[error("segment {0:?} has a character that is not allowed")]
    BadCharacter(String),
    /// A segment is `.` or `..`, or starts and ends with `__` (reserved).
    #[error("segment {0:?} is reserved")]
    Reserved(String),
    /// A segment or the whole path is too long, or has too many segments.
    #[error("path is too long")]
    TooLong,
    /// The path has an even number of segments where a collection was expected, or odd where a document was.
    #[error("path {0:?} names a {1} where a {2} was expected")]
    WrongKind(String, &'static str, &'static str),
}

fn check_segment(seg: &str) -> Result<(), PathError> {
    if seg.is_empty() {
        return Err(PathError::EmptySegment);
    }
    if seg.len() > MAX_SEGMENT_BYTES {
        return Err(PathError::TooLong);
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-_.~:@+".contains(c);
    if !seg.chars().all(allowed) {
        return Err(PathError::BadCharacter(seg.to_owned()));
    }
    if seg == "." || seg == ".." || (seg.len() >= 4 && seg.starts_with("__") && seg.ends_with("__"))
    {
        return Err(PathError::Reserved(seg.to_owned()));
    }
    Ok(())
}

/// Checks every segment and the overall length; returns the segment count.
fn check_path(path: &str) -> Result<usize, PathError> {
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong);
    }
    let mut count = 0;
    for seg in path.split('/') {
        check_segment(seg)?;
        count += 1;
    }
    if count > MAX_SEGMENTS {
        return Err(PathError::TooLong);
    }
    Ok(count)
}

/// Checks a document id (one segment).
pub fn check_id(id: &str) -> Result<(), PathError> {
    check_segment(id)
}

/// A valid collection path: an odd number of segments.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CollectionPath(String);

impl CollectionPath {
    /// Parses and checks a collection path.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        match check_path(path)? % 2 {
            1 => Ok(Self(path.to_owned())),
            _ => Err(PathError::WrongKind(
                path.to_owned(),
                "document",
                "collection",
            )),
        }
    }

    /// The path text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The document with id `id` in this collection.
    pub fn doc(&self, id: &str) -> Result<DocPath, PathError> {
        check_id(id)?;
        let full = format!("{}/{}", self.0, id);
        if full.len() > MAX_PATH_BYTES {
            return Err(PathError::TooLong);
        }
        Ok(DocPath {
            split: self.0.len(),
            full,
        })
    }
}

impl fmt::Display for CollectionPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A valid document path: an even number of segments.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DocPath {
    full: String,
    split: usize,
}

impl DocPath {
    /// Parses and checks a document path.
    pub fn parse(path: &str) -> Result<Self, PathError> {
        match check_path(path)? % 2 {
            0 => Ok(Self {
                split: path.rfind('/').unwrap_or(0),
                full: path.to_owned(),
            }),
            _ => Err(PathError::WrongKind(
                path.to_owned(),
                "collection",
                "document",
            )),
        }
    }

    /// The path text.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The collection that holds this document.
    pub fn collection(&self) -> CollectionPath {
        CollectionPath(self.full[..self.split].to_owned())
    }

    /// The document id: the last segment.
    pub fn id(&self) -> &str {
        &self.full[self.split + 1..]
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

/// Starts the message of a serde error raised by a path that breaks the path
/// rules, so that decoding can answer it with `invalid_path`, not `invalid_frame`.
pub(crate) const PATH_ERROR_PREFIX: &str = "invalid path: ";

/// Serializes a path as its text and deserializes one from a string checked
/// with `parse`.
macro_rules! path_as_string {
    ($path:ident) => {
        impl Serialize for $path {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $path {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                $path::parse(&text)
                    .map_err(|e| de::Error::custom(format_args!("{PATH_ERROR_PREFIX}{e}")))
            }
        }
    };
}

path_as_string!(CollectionPath);
path_as_string!(DocPath);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_splits_valid_paths() {
        let d = DocPath::parse("rooms/r1/messages/m7").unwrap();
        assert_eq!(d.id(), "m7");
        assert_eq!(d.collection().as_str(), "rooms/r1/messages");
        assert_eq!(
            CollectionPath::parse("rooms").unwrap().doc("a.b").unwrap(),
            DocPath::parse("rooms/a.b").unwrap()
        );
    }

    #[test]
    fn refuses_invalid_paths() {
        let long = "a".repeat(MAX_SEGMENT_BYTES + 1);
        for bad in [
            "",
            "/rooms",
            "rooms/",
            "rooms//x",
            "rooms/r 1",
            "rooms/..",
            "rooms/__x__",
            "rooms/é",
            long.as_str(),
        ] {
            assert!(
                DocPath::parse(bad).is_err() && CollectionPath::parse(bad).is_err(),
                "{bad}"
            );
        }
        assert!(matches!(
            DocPath::parse("rooms"),
            Err(PathError::WrongKind(..))
        ));
        assert!(matches!(
            CollectionPath::parse("rooms/r1"),
            Err(PathError::WrongKind(..))
        ));
    }

    #[test]
    fn serde_checks_the_path_rules() {
        let doc: DocPath = serde_json::from_str(r#""rooms/r1""#).unwrap();
        assert_eq!(serde_json::to_string(&doc).unwrap(), r#""rooms/r1""#);
        let err = serde_json::from_str::<CollectionPath>(r#""rooms/r1""#).unwrap_err();
        assert!(err.to_string().starts_with(PATH_ERROR_PREFIX), "{err}");
        let err = serde_json::from_str::<DocPath>("7").unwrap_err();
        assert!(!err.to_string().starts_with(PATH_ERROR_PREFIX), "{err}");
    }
}
