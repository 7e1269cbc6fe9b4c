//! Resumable uploads (spec 15.7): start (`POST ?uploads`), parts (`PUT
//! ?upload={id}&part={n}`), the parts stored (`GET ?upload={id}`), complete
//! (`POST ?upload={id}`) and abort (`DELETE ?upload={id}`), and
//! [`Files::upload_resumable`], which sends the missing parts of a file,
//! retrying a failed part with backoff after asking which parts are stored.

use std::collections::BTreeSet;
use std::io::SeekFrom;
use std::time::Duration;

use blaze_protocol::ErrorCode;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeek, AsyncSeekExt};

use super::http::{Body, Request};
use super::types::{string, uint};
use super::{files_route, paths, Files, UploadMetadata, UploadResult};
use crate::Error;

/// Failed part uploads in a row after which [`Files::upload_resumable`] gives up.
const ATTEMPTS: u32 = 8;

/// An upload in parts on the server (spec 15.7): its id, its parts, and the
/// parts known to be stored. Keep `path` and `id` to resume it later with
/// [`Files::resume_upload`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResumableUpload {
    /// The file path.
    pub path: String,
    /// The upload id.
    pub id: String,
    /// The file's size.
    pub size: u64,
    /// The length of every part but the last (the server's choice).
    pub part_bytes: u64,
    /// The number of parts (at least 1).
    pub parts: u32,
    /// The parts stored on the server, as far as this value knows.
    pub stored: BTreeSet<u32>,
}

impl ResumableUpload {
    /// Where part `part` (from 1) starts in the file, and its length.
    pub fn part_span(&self, part: u32) -> (u64, u64) {
        let offset = u64::from(part - 1) * self.part_bytes;
        let len = if part < self.parts {
            self.part_bytes
        } else {
            self.size - offset
        };
        (offset, len)
    }

    /// The parts not stored yet, in order.
    pub fn missing(&self) -> Vec<u32> {
        (1..=self.parts)
            .filter(|n| !self.stored.contains(n))
            .collect()
    }

    /// The bytes of the parts stored.
    pub fn stored_bytes(&self) -> u64 {
        self.stored.iter().map(|&n| self.part_span(n).1).sum()
    }
}

/// The server's description of an upload (steps 1 and 3).
struct Described {
    upload: String,
    size: u64,
    part_bytes: u64,
    parts: u32,
    stored: Vec<u32>,
}

impl Described {
    fn from_json(answer: &Value) -> Result<Self, Error> {
        let bad = || Error::Protocol(format!("not an upload's description: {answer}"));
        let object = answer.as_object().ok_or_else(bad)?;
        let stored = match object.get("stored") {
            None => Vec::new(),
            Some(list) => list
                .as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|n| n.as_u64().and_then(|n| u32::try_from(n).ok()))
                .collect::<Option<_>>()
                .ok_or_else(bad)?,
        };
        Ok(Self {
            upload: string(object, "upload").ok_or_else(bad)?,
            size: uint(object, "size").ok_or_else(bad)?,
            part_bytes: uint(object, "part_bytes").ok_or_else(bad)?,
            parts: uint(object, "parts")
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(bad)?,
            stored,
        })
    }
}

impl Files {
    /// Starts an upload in parts of `len` bytes to `path` (`POST ?uploads`);
    /// the rules are asked before anything is stored.
    pub async fn start_upload(
        &self,
        path: &str,
        len: u64,
        meta: &UploadMetadata,
    ) -> Result<ResumableUpload, Error> {
        paths::check_file_path(path)?;
        let request = Request::new("POST", format!("{}?uploads", files_route(path)))
            .header("X-Blaze-Upload-Length", len.to_string());
        let request = meta.headers(request, "X-Blaze-Content-Type")?;
        let upload = checked(path, Described::from_json(&self.json(request).await?)?)?;
        if upload.size != len {
            return Err(Error::Protocol(format!(
                "an upload of {len} bytes started as one of {}",
                upload.size
            )));
        }
        Ok(upload)
    }

    /// The upload `id` of `path` as the server has it (`GET ?upload=`), with
    /// the parts it stored. `not_found` when it completed, was aborted or
    /// expired.
    pub async fn resume_upload(&self, path: &str, id: &str) -> Result<ResumableUpload, Error> {
        paths::check_file_path(path)?;
        let answer = self
            .json(Request::new("GET", upload_route(path, id)))
            .await?;
        checked(path, Described::from_json(&answer)?)
    }

    /// Sends part `part` of `upload`, read from `body` (its length is the
    /// part's), and marks it stored.
    pub async fn upload_part<R: AsyncRead + Send + Unpin>(
        &self,
        upload: &mut ResumableUpload,
        part: u32,
        body: &mut R,
    ) -> Result<(), Error> {
        if !(1..=upload.parts).contains(&part) {
            return Err(Error::Usage(format!(
                "part {part} of an upload of {} parts",
                upload.parts
            )));
        }
        let len = upload.part_span(part).1;
        let target = format!("{}&part={part}", upload_route(&upload.path, &upload.id));
        let request = Request::new("PUT", target).body(Body::Reader { reader: body, len });
        let answer: Value = self.send(request, false).await?.json().await?;
        if answer["part"].as_u64() != Some(u64::from(part)) || answer["size"].as_u64() != Some(len)
        {
            return Err(Error::Protocol(format!(
                "part {part} of {len} bytes answered {answer}"
            )));
        }
        upload.stored.insert(part);
        Ok(())
    }

    /// Completes `upload` (`POST ?upload=`): its parts become the file.
    /// `upload_incomplete` while a part is missing.
    pub async fn complete_upload(&self, upload: &ResumableUpload) -> Result<UploadResult, Error> {
        let answer = self
            .json(Request::new("POST", upload_route(&upload.path, &upload.id)))
            .await?;
        UploadResult::from_json(&answer)
    }

    /// Aborts `upload` (`DELETE ?upload=`): its parts are dropped.
    pub async fn abort_upload(&self, upload: &ResumableUpload) -> Result<(), Error> {
        let request = Request::new("DELETE", upload_route(&upload.path, &upload.id));
        self.send(request, true).await?.bytes().await.map(drop)
    }

    /// Sends the missing parts of `upload` from `source` (the whole file,
    /// read at each part's offset) and completes it. A part that fails on the
    /// network (or `upload_incomplete`, `resource_exhausted`) is retried
    /// with the client's reconnect backoff after asking the server which
    /// parts it holds, up to 8 failures in a row. `progress` is called with
    /// the upload after each part stored.
    pub async fn upload_resumable<R: AsyncRead + AsyncSeek + Send + Unpin>(
        &self,
        upload: &mut ResumableUpload,
        source: &mut R,
        mut progress: impl FnMut(&ResumableUpload),
    ) -> Result<UploadResult, Error> {
        let mut failures = 0;
        loop {
            let Some(&part) = upload.missing().first() else {
                return self.complete_upload(upload).await;
            };
            let (offset, len) = upload.part_span(part);
            source
                .seek(SeekFrom::Start(offset))
                .await
                .map_err(|e| Error::Usage(format!("cannot read the file: {e}")))?;
            match self
                .upload_part(upload, part, &mut (&mut *source).take(len))
                .await
            {
                Ok(()) => {
                    failures = 0;
                    progress(upload);
                }
                Err(e) if retryable(&e) && failures + 1 < ATTEMPTS => {
                    failures += 1;
                    tokio::time::sleep(self.backoff(failures)).await;
                    let fresh = self.resume_upload(&upload.path, &upload.id).await?;
                    upload.stored = fresh.stored;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The wait before retry `attempt` (from 1): full jitter under the reconnect policy.
    fn backoff(&self, attempt: u32) -> Duration {
        let policy = &self.options.reconnect;
        let ceiling = policy
            .initial
            .saturating_mul(1 << (attempt - 1).min(16))
            .min(policy.max);
        ceiling.mul_f64(fastrand::f64())
    }
}

/// Whether a later attempt may succeed where `error` failed.
fn retryable(error: &Error) -> bool {
    matches!(error, Error::Connection(_) | Error::Timeout)
        || matches!(
            error.code(),
            Some(ErrorCode::UploadIncomplete | ErrorCode::ResourceExhausted)
        )
}

fn upload_route(path: &str, id: &str) -> String {
    let id: String = id
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("{}?upload={id}", files_route(path))
}

/// The upload the server described, checked: parts of `part_bytes` covering `size`.
fn checked(path: &str, d: Described) -> Result<ResumableUpload, Error> {
    let parts_needed = d.size.div_ceil(d.part_bytes.max(1)).max(1);
    if d.upload.is_empty()
        || d.part_bytes == 0
        || u64::from(d.parts) != parts_needed
        || d.stored.iter().any(|n| !(1..=d.parts).contains(n))
    {
        return Err(Error::Protocol(format!(
            "not an upload's description: {} parts of {} bytes for {} bytes",
            d.parts, d.part_bytes, d.size
        )));
    }
    Ok(ResumableUpload {
        path: path.to_owned(),
        id: d.upload,
        size: d.size,
        part_bytes: d.part_bytes,
        parts: d.parts,
        stored: d.stored.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(size: u64, part_bytes: u64) -> ResumableUpload {
        let described = Described {
            upload: "u1".into(),
            size,
            part_bytes,
            parts: size.div_ceil(part_bytes).max(1) as u32,
            stored: vec![],
        };
        checked("a.bin", described).unwrap()
    }

    #[test]
    fn parts_cover_the_file() {
        let up = upload(2500, 1000);
        assert_eq!(up.parts, 3);
        assert_eq!(
            (1..=3).map(|n| up.part_span(n)).collect::<Vec<_>>(),
            [(0, 1000), (1000, 1000), (2000, 500)]
        );
        let empty = upload(0, 1000);
        assert_eq!((empty.parts, empty.part_span(1)), (1, (0, 0)));
        let mut some = up.clone();
        some.stored.extend([1, 3]);
        assert_eq!(some.missing(), [2]);
        assert_eq!(some.stored_bytes(), 1500);
    }

    #[test]
    fn a_description_that_does_not_add_up_is_refused() {
        let bad = Described {
            upload: "u".into(),
            size: 2500,
            part_bytes: 1000,
            parts: 2,
            stored: vec![],
        };
        assert!(matches!(checked("a", bad), Err(Error::Protocol(_))));
        let stored_out_of_range = Described {
            upload: "u".into(),
            size: 10,
            part_bytes: 1000,
            parts: 1,
            stored: vec![2],
        };
        assert!(matches!(
            checked("a", stored_out_of_range),
            Err(Error::Protocol(_))
        ));
    }

    #[test]
    fn upload_ids_are_escaped_in_the_query() {
        assert_eq!(
            upload_route("a/b", "x y&z"),
            "/v1/files/a/b?upload=x%20y%26z"
        );
    }
}
