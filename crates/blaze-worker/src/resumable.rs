//! Resumable uploads (spec 15.7), the plain parts: what a start asks for,
//! how a file is cut into parts, who owns an upload, and the record the
//! folder's object keeps of it. The runtime is `files_upload.rs` (the
//! Worker: R2's multipart API) and `object/uploads.rs` (the record).

use blaze_protocol::{ErrorCode, Identity};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::files_plan::Upload;
use crate::http_types::HttpResponse;

/// The default for `BLAZE_FILES_MAX_UPLOAD_BYTES`: the largest file a
/// resumable upload may announce.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 5 * 1024 * 1024 * 1024;

/// The default for `BLAZE_FILES_UPLOAD_TTL` (seconds): how long an upload
/// may take from its start to its completion.
pub const DEFAULT_TTL_SECONDS: u64 = 86_400;

/// The part size the server chooses unless the file would need more than
/// [`MAX_PARTS`] parts (R2 wants every part but the last at least 5 MiB).
pub const PART_BYTES: u64 = 8 * 1024 * 1024;

/// The most parts an upload has (R2's limit).
pub const MAX_PARTS: u64 = 10_000;

/// The most unfinished uploads one owner ([`owner`]) may have in one
/// folder: a start beyond it is `resource_exhausted`, so one caller cannot
/// pile up records and R2 multipart uploads until they expire.
pub const MAX_OPEN_UPLOADS: u64 = 100;

/// The refusal of a start past [`MAX_OPEN_UPLOADS`].
pub fn too_many_uploads() -> HttpResponse {
    let msg = format!(
        "{MAX_OPEN_UPLOADS} unfinished uploads in this folder already: complete or abort one first"
    );
    HttpResponse::rejected(ErrorCode::ResourceExhausted, msg)
}

/// The part size for a file of `size` bytes: [`PART_BYTES`], or the
/// smallest whole number of MiB that keeps it within [`MAX_PARTS`] parts.
pub fn part_bytes(size: u64) -> u64 {
    const MIB: u64 = 1024 * 1024;
    let needed = size.div_ceil(MAX_PARTS).div_ceil(MIB) * MIB;
    needed.max(PART_BYTES)
}

/// What a start's headers ask for: the file's size, type and metadata.
pub fn check_start(
    length: Option<&str>,
    content_type: Option<&str>,
    metadata: Option<&str>,
    max_bytes: u64,
) -> Result<Upload, HttpResponse> {
    let Some(length) = length else {
        let msg = "a resumable upload needs X-Blaze-Upload-Length";
        return Err(HttpResponse::rejected(ErrorCode::LengthRequired, msg));
    };
    Upload::check(Some(length), content_type, metadata, max_bytes)
}

/// Who an upload belongs to: the uid of a user, any admin key for an
/// admin, any anonymous caller for an anonymous one.
pub fn owner(identity: &Identity) -> String {
    match identity {
        Identity::User { uid, .. } => format!("user:{uid}"),
        Identity::Admin => "admin".to_owned(),
        Identity::Anonymous => "anonymous".to_owned(),
    }
}

/// An unfinished upload, as the folder's object keeps it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resumable {
    /// Its id (a random UUID).
    pub id: String,
    /// The file path.
    pub path: String,
    /// Who started it ([`owner`]); set by the object.
    #[serde(default)]
    pub owner: String,
    /// The file's size in bytes.
    pub size: u64,
    /// Every part's length but the last's.
    pub part_bytes: u64,
    /// The file's type.
    pub content_type: String,
    /// The file's custom metadata.
    pub metadata: Map<String, Value>,
    /// The file's presentation fields (spec 15.2), by document field.
    #[serde(default)]
    pub presentation: Map<String, Value>,
    /// R2's id of the multipart upload.
    pub r2_id: String,
    /// The object key the file will have.
    pub key: String,
    /// When it expires (ms since the Unix epoch).
    pub expires: u64,
}

impl Resumable {
    /// How many parts it has (a file of 0 bytes has one, empty).
    pub fn parts(&self) -> u64 {
        self.size.div_ceil(self.part_bytes).max(1)
    }

    /// The length part `n` must have, or `None` when `n` is not one of its parts.
    pub fn part_length(&self, n: u64) -> Option<u64> {
        let parts = self.parts();
        match n {
            0 => None,
            n if n < parts => Some(self.part_bytes),
            n if n == parts => Some(self.size - (parts - 1) * self.part_bytes),
            _ => None,
        }
    }

    /// Checks a part's number (`part=`) and `Content-Length` before a byte
    /// of it is read: its number and length.
    pub fn check_part(
        &self,
        part: Option<&str>,
        content_length: Option<&str>,
    ) -> Result<(u16, u64), HttpResponse> {
        let invalid = |why: String| HttpResponse::rejected(ErrorCode::InvalidPart, why);
        let parts = self.parts();
        let n = part.and_then(|p| p.parse::<u64>().ok());
        let Some((n, want)) = n.and_then(|n| Some((n, self.part_length(n)?))) else {
            return Err(invalid(format!("part is a number from 1 to {parts}")));
        };
        let Some(length) = content_length else {
            let msg = "a part needs a Content-Length";
            return Err(HttpResponse::rejected(ErrorCode::LengthRequired, msg));
        };
        if length.trim().parse::<u64>().ok() != Some(want) {
            return Err(invalid(format!("part {n} is {want} bytes long")));
        }
        Ok((n as u16, want))
    }

    /// Whether `caller` (its [`owner`]) may use it for `path`.
    pub fn belongs(&self, caller: &str, path: &str) -> bool {
        self.owner == caller && self.path == path
    }

    /// The answer to its start (201) and, with `stored`, to a look at it.
    pub fn answer(&self, stored: Option<&[u16]>) -> Value {
        let mut answer = json!({
            "upload": self.id,
            "size": self.size,
            "part_bytes": self.part_bytes,
            "parts": self.parts(),
            "expires": self.expires,
        });
        if let Some(stored) = stored {
            answer["stored"] = json!(stored);
        }
        answer
    }

    /// The parts of `stored` missing for completion.
    pub fn missing(&self, stored: &[u16]) -> Vec<u64> {
        (1..=self.parts())
            .filter(|n| !stored.contains(&(*n as u16)))
            .collect()
    }
}

/// The header that carries an upload's record or reference from the Worker
/// to the folder's object, beside [`crate::files_plan::INTERNAL_FILES`].
pub const INTERNAL_UPLOAD: &str = "X-Blaze-Upload";

/// Which upload the Worker asks the folder's object about, for whom (the
/// request's credential), and a part it stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UploadRef {
    /// The upload id.
    pub id: String,
    /// The file path it was asked for.
    pub path: String,
    /// A stored part: its number and R2 etag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub part: Option<(u16, String)>,
}

/// A refusal for an upload id that is not the caller's for this path (or
/// no longer exists): the same whatever the reason.
pub fn no_upload() -> HttpResponse {
    HttpResponse::rejected(ErrorCode::NotFound, "no such upload")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(size: u64) -> Resumable {
        Resumable {
            id: "u".into(),
            path: "a/b".into(),
            owner: "user:alice".into(),
            size,
            part_bytes: part_bytes(size),
            content_type: "x/y".into(),
            metadata: Map::new(),
            presentation: Map::new(),
            r2_id: "r".into(),
            key: "o/_files/a/_files/k".into(),
            expires: 9,
        }
    }

    #[test]
    fn files_are_cut_into_parts_of_8_mib_or_more() {
        assert_eq!(part_bytes(0), PART_BYTES);
        assert_eq!(part_bytes(150_000_000), PART_BYTES);
        assert_eq!(part_bytes(PART_BYTES * MAX_PARTS), PART_BYTES);
        assert_eq!(part_bytes(PART_BYTES * MAX_PARTS + 1), 9 * 1024 * 1024);
        let big = upload(5 * 1024 * 1024 * 1024 * 1024);
        assert!(big.parts() <= MAX_PARTS);
        let file = upload(150_000_000);
        assert_eq!(file.parts(), 18);
        assert_eq!(file.part_length(1), Some(PART_BYTES));
        assert_eq!(file.part_length(18), Some(150_000_000 - 17 * PART_BYTES));
        assert_eq!(file.part_length(0), None);
        assert_eq!(file.part_length(19), None);
        let empty = upload(0);
        assert_eq!((empty.parts(), empty.part_length(1)), (1, Some(0)));
        let exact = upload(2 * PART_BYTES);
        assert_eq!((exact.parts(), exact.part_length(2)), (2, Some(PART_BYTES)));
    }

    #[test]
    fn a_part_is_checked_before_it_is_read() {
        let file = upload(PART_BYTES + 10);
        let code = |part: Option<&str>, length: Option<&str>| {
            file.check_part(part, length).map_err(|r| r.error.unwrap())
        };
        assert_eq!(code(Some("2"), Some("10")), Ok((2, 10)));
        let whole = PART_BYTES.to_string();
        assert_eq!(code(Some("1"), Some(&whole)), Ok((1, PART_BYTES)));
        assert_eq!(code(Some("1"), Some("10")), Err(ErrorCode::InvalidPart));
        assert_eq!(code(Some("3"), Some("10")), Err(ErrorCode::InvalidPart));
        assert_eq!(code(Some("0"), Some("10")), Err(ErrorCode::InvalidPart));
        assert_eq!(code(Some("x"), Some("10")), Err(ErrorCode::InvalidPart));
        assert_eq!(code(None, Some("10")), Err(ErrorCode::InvalidPart));
        assert_eq!(code(Some("2"), None), Err(ErrorCode::LengthRequired));
        assert_eq!(file.missing(&[2]), vec![1]);
        assert!(file.missing(&[2, 1]).is_empty());
    }

    #[test]
    fn an_upload_is_its_owners_for_its_path() {
        let file = upload(1);
        let alice = Identity::User {
            uid: "alice".into(),
            claims: Default::default(),
        };
        assert!(file.belongs(&owner(&alice), "a/b"));
        assert!(!file.belongs(&owner(&alice), "a/c"));
        assert!(!file.belongs(&owner(&Identity::Admin), "a/b"));
        assert_ne!(owner(&Identity::Admin), owner(&Identity::Anonymous));
        let start = check_start(None, None, None, 10).unwrap_err();
        assert_eq!(start.error, Some(ErrorCode::LengthRequired));
        let over = check_start(Some("11"), None, None, 10).unwrap_err();
        assert_eq!(over.error, Some(ErrorCode::FileTooLarge));
        let answer = file.answer(Some(&[1]));
        assert_eq!(answer["parts"], 1);
        assert_eq!(answer["stored"], json!([1]));
    }
}
