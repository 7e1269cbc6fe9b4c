//! Files (spec 15) over HTTP: [`Files`], from [`Blaze::files`](crate::Blaze::files).
//!
//! A file's bytes go over `/v1/files/{path}`; its metadata is a document
//! (`avatars/alice.png` → `_files/avatars/_files/alice.png`), and a folder is
//! the collection of those documents, listed with a query.

mod http;
mod paths;
mod resumable;
mod types;

use std::collections::BTreeMap;
use std::pin::Pin;
use std::task::{Context, Poll};

use blaze_protocol::{DocSnapshot, ErrorCode};
use bytes::Bytes;
use futures_core::Stream;
use serde_json::{json, Value};
use tokio::io::AsyncRead;

use crate::options::ConnectOptions;
use crate::Error;
use http::{Body, Endpoint, Request, Response};

pub use paths::{
    file_path_of_metadata_doc, folder_collection_path, metadata_doc_path, FILES_COLLECTION,
};
pub use resumable::ResumableUpload;
pub use types::{ByteRange, FileMetadata, ListPage, UploadResult};

/// The most files one [`Files::list`] page holds.
pub const MAX_PAGE_SIZE: usize = 1000;

/// The files of one server (spec 15), with the client's credentials: upload
/// (streamed, or in resumable parts), download (streamed, with ranges),
/// metadata, delete and list. Cheap to clone.
///
/// ```no_run
/// # async fn demo(db: blaze_client::Blaze) -> Result<(), blaze_client::Error> {
/// use futures_util::StreamExt;
/// let files = db.files()?;
/// let bytes = b"hello".to_vec();
/// files.upload("notes/a.txt", &mut bytes.as_slice(), 5, Some("text/plain"), &Default::default()).await?;
/// let mut download = files.download("notes/a.txt", None).await?;
/// while let Some(chunk) = download.next().await { let _ = chunk?; }
/// let page = files.list("notes", 100, None).await?;
/// files.delete("notes/a.txt").await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Files {
    endpoint: Endpoint,
    options: ConnectOptions,
}

impl Files {
    /// The files of the server at `url` (`http://` or `ws://`).
    pub(crate) fn new(url: &str, options: ConnectOptions) -> Result<Self, Error> {
        Ok(Self {
            endpoint: Endpoint::parse(url)?,
            options,
        })
    }

    /// Sends `request` with the client's credential; `timed` bounds the whole
    /// exchange by the request timeout (small JSON requests; transfers of
    /// bytes are not bounded).
    async fn send(&self, request: Request<'_>, timed: bool) -> Result<Response, Error> {
        let credential = http::credential(&self.options.credentials).await?;
        let sending = http::send(&self.endpoint, credential.as_deref(), request);
        if !timed {
            return sending.await;
        }
        tokio::time::timeout(self.options.request_timeout, sending)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// A small JSON exchange, bounded by the request timeout.
    async fn json(&self, request: Request<'_>) -> Result<Value, Error> {
        let timeout = self.options.request_timeout;
        let answer = async { self.send(request, false).await?.json::<Value>().await };
        tokio::time::timeout(timeout, answer)
            .await
            .map_err(|_| Error::Timeout)?
    }

    /// Uploads `len` bytes read from `body` as the file `path` (creating or
    /// replacing it) with `PUT /v1/files/{path}`, streaming them (never
    /// held whole), with `content_type` (default
    /// `application/octet-stream`) and the custom `metadata`. Resolves once
    /// the metadata document is committed. The server refuses more than its
    /// single-request limit (`file_too_large`; see
    /// [`Files::upload_resumable`]); a reader that ends before `len` bytes
    /// fails the upload (nothing is kept).
    pub async fn upload<R: AsyncRead + Send + Unpin>(
        &self,
        path: &str,
        body: &mut R,
        len: u64,
        content_type: Option<&str>,
        metadata: &BTreeMap<String, String>,
    ) -> Result<UploadResult, Error> {
        paths::check_file_path(path)?;
        let mut request = Request::new("PUT", files_route(path))
            .header("Content-Type", checked_content_type(content_type)?)
            .body(Body::Reader { reader: body, len });
        if !metadata.is_empty() {
            request = request.header("X-Blaze-Metadata", ascii_json(&json!(metadata)));
        }
        UploadResult::from_json(&self.send(request, false).await?.json().await?)
    }

    /// Downloads the file `path`, or only `range` of it, as a stream of
    /// chunks as they arrive. `not_found` for a missing file,
    /// `range_not_satisfiable` for a range starting at or past its end.
    pub async fn download(&self, path: &str, range: Option<ByteRange>) -> Result<Download, Error> {
        paths::check_file_path(path)?;
        let mut request = Request::new("GET", files_route(path));
        if let Some(range) = range {
            request = request.header("Range", range.header()?);
        }
        let response = self.send(request, false).await?;
        let content_range = response.header("Content-Range").map(str::to_owned);
        if range.is_some() && response.status != 206 {
            return Err(Error::Protocol(format!(
                "a range request answered {} instead of 206",
                response.status
            )));
        }
        Ok(Download {
            len: response
                .header("Content-Length")
                .and_then(|v| v.parse().ok()),
            content_type: response.header("Content-Type").map(str::to_owned),
            content_range,
            chunks: response.into_stream(),
        })
    }

    /// The metadata of the file `path`: its metadata document
    /// (`GET /v1/docs/…`), typed. `not_found` when it does not exist.
    pub async fn metadata(&self, path: &str) -> Result<FileMetadata, Error> {
        paths::check_file_path(path)?;
        let answer = self
            .json(Request::new(
                "GET",
                format!("/v1/docs/{}", metadata_doc_path(path)),
            ))
            .await?;
        let doc: DocSnapshot = serde_json::from_value(answer)
            .map_err(|e| Error::Protocol(format!("not a document: {e}")))?;
        if !doc.exists {
            return Err(Error::rejected(
                ErrorCode::NotFound,
                format!("no file {path:?}"),
            ));
        }
        FileMetadata::from_doc(&doc)
    }

    /// Changes the content type and/or merges custom metadata into the file
    /// `path` (a `None` value removes that key) without touching its bytes
    /// (`PATCH /v1/files/{path}`); the answer is an upload's, with the new
    /// version.
    pub async fn update_metadata(
        &self,
        path: &str,
        content_type: Option<&str>,
        metadata: &BTreeMap<String, Option<String>>,
    ) -> Result<UploadResult, Error> {
        paths::check_file_path(path)?;
        let mut body = serde_json::Map::new();
        if content_type.is_some() {
            body.insert(
                "contentType".into(),
                checked_content_type(content_type)?.into(),
            );
        }
        if !metadata.is_empty() {
            body.insert("metadata".into(), json!(metadata));
        }
        if body.is_empty() {
            return Err(Error::Usage("update_metadata: nothing to change".into()));
        }
        let request = Request::new("PATCH", files_route(path))
            .header("Content-Type", "application/json")
            .body(Body::Bytes(Value::Object(body).to_string().into_bytes()));
        UploadResult::from_json(&self.json(request).await?)
    }

    /// Deletes the file `path`: its metadata document, then its bytes.
    /// `not_found` when it does not exist.
    pub async fn delete(&self, path: &str) -> Result<(), Error> {
        paths::check_file_path(path)?;
        self.send(Request::new("DELETE", files_route(path)), true)
            .await?
            .bytes()
            .await
            .map(drop)
    }

    /// One page of the files directly in `folder` (`""`: the root), in name
    /// order: a query on the folder's collection ordered by `__name__`,
    /// `page_size` (1 to [`MAX_PAGE_SIZE`]) files after `cursor` (the
    /// previous page's [`ListPage::next_cursor`]).
    pub async fn list(
        &self,
        folder: &str,
        page_size: usize,
        cursor: Option<&str>,
    ) -> Result<ListPage, Error> {
        paths::check_folder(folder)?;
        if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
            return Err(Error::Usage(format!(
                "page_size must be 1 to {MAX_PAGE_SIZE}, got {page_size}"
            )));
        }
        let mut query = json!({
            "collection": folder_collection_path(folder),
            "order_by": [{"field": "__name__"}],
            "limit": page_size + 1,
        });
        if let Some(cursor) = cursor {
            query["start_after"] = json!([cursor]);
        }
        let request = Request::new("POST", "/v1/query".into())
            .header("Content-Type", "application/json")
            .body(Body::Bytes(query.to_string().into_bytes()));
        let answer = self.json(request).await?;
        let docs: Vec<DocSnapshot> = serde_json::from_value(answer["docs"].clone())
            .map_err(|e| Error::Protocol(format!("not a query's answer: {e}")))?;
        let mut items = docs
            .iter()
            .map(FileMetadata::from_doc)
            .collect::<Result<Vec<_>, _>>()?;
        let more = items.len() > page_size;
        items.truncate(page_size);
        let next_cursor = if more {
            items.last().map(|f| f.name.clone())
        } else {
            None
        };
        Ok(ListPage { items, next_cursor })
    }
}

/// A download in progress: a `Stream` of the body's chunks, with what the
/// answer's headers said.
pub struct Download {
    /// The answer's `Content-Length`: the bytes to come.
    pub len: Option<u64>,
    /// The file's content type.
    pub content_type: Option<String>,
    /// For a range, the answer's `Content-Range` (`bytes first-last/size`).
    pub content_range: Option<String>,
    chunks: Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>,
}

impl Stream for Download {
    type Item = Result<Bytes, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.chunks.as_mut().poll_next(cx)
    }
}

/// `/v1/files/{path}`: every character allowed in a segment is legal in a URL path.
fn files_route(path: &str) -> String {
    format!("/v1/files/{path}")
}

/// The content type to send: `given` (printable ASCII) or `application/octet-stream`.
fn checked_content_type(given: Option<&str>) -> Result<String, Error> {
    let value = given.unwrap_or("application/octet-stream");
    if value.trim().is_empty() || !value.bytes().all(|b| (0x20..=0x7e).contains(&b)) {
        return Err(Error::Usage(format!(
            "a content type must be non-empty printable ASCII, got {value:?}"
        )));
    }
    Ok(value.to_owned())
}

/// JSON with every character outside printable ASCII escaped, so it is a valid header value.
fn ascii_json(value: &Value) -> String {
    let mut out = String::new();
    for c in value.to_string().chars() {
        if (' '..='~').contains(&c) {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_json_is_printable_ascii_and_parses_back() {
        let value = json!({"note": "naïve ☃ 😀\n"});
        let header = ascii_json(&value);
        assert!(
            header.bytes().all(|b| (0x20..=0x7e).contains(&b)),
            "{header}"
        );
        assert_eq!(serde_json::from_str::<Value>(&header).unwrap(), value);
    }

    #[test]
    fn content_types_are_checked() {
        assert_eq!(
            checked_content_type(None).unwrap(),
            "application/octet-stream"
        );
        assert_eq!(
            checked_content_type(Some("image/png")).unwrap(),
            "image/png"
        );
        for bad in ["", " ", "text/plain\r\nX: 1", "tëxt"] {
            assert!(checked_content_type(Some(bad)).is_err(), "{bad:?}");
        }
    }
}
