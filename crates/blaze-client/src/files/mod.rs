//! Files (spec 15) over HTTP: [`Files`], from [`Blaze::files`](crate::Blaze::files).
//!
//! A file's bytes go over `/v1/files/{path}`; its metadata is a document
//! (`avatars/alice.png` → `_files/avatars/_files/alice.png`), and a folder is
//! the collection of those documents, listed with a query (its subfolders
//! from the object store, spec 15.2).

mod http;
mod listing;
mod paths;
mod resumable;
mod settable;
mod types;

use std::pin::Pin;
use std::task::{Context, Poll};

use blaze_protocol::{DocSnapshot, ErrorCode};
use bytes::Bytes;
use futures_core::Stream;
use serde_json::Value;
use tokio::io::AsyncRead;

use crate::options::ConnectOptions;
use crate::Error;
use http::{Body, Endpoint, Request, Response};

pub use paths::{
    file_path_of_metadata_doc, folder_collection_path, metadata_doc_path, FILES_COLLECTION,
};
pub use resumable::ResumableUpload;
pub use settable::{
    MetadataUpdate, Presentation, PresentationField, UploadMetadata, MAX_PRESENTATION_BYTES,
};
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
/// let text = blaze_client::files::UploadMetadata::typed("text/plain");
/// files.upload("notes/a.txt", &mut bytes.as_slice(), 5, &text).await?;
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
    /// held whole), with the content type, custom metadata and
    /// presentation of `meta`. Resolves once the metadata document is
    /// committed. The server refuses more than its single-request limit
    /// (`file_too_large`; see [`Files::upload_resumable`]); a reader that
    /// ends before `len` bytes fails the upload (nothing is kept).
    pub async fn upload<R: AsyncRead + Send + Unpin>(
        &self,
        path: &str,
        body: &mut R,
        len: u64,
        meta: &UploadMetadata,
    ) -> Result<UploadResult, Error> {
        paths::check_file_path(path)?;
        let request = Request::new("PUT", files_route(path));
        let request = meta
            .headers(request, "Content-Type")?
            .body(Body::Reader { reader: body, len });
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
            cache_control: response.header("Cache-Control").map(str::to_owned),
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

    /// Changes the content type, merges custom metadata and sets or removes
    /// presentation fields of the file `path` as `update` says, without
    /// touching its bytes (`PATCH /v1/files/{path}`); the answer is an
    /// upload's, with the new version.
    pub async fn update_metadata(
        &self,
        path: &str,
        update: &MetadataUpdate,
    ) -> Result<UploadResult, Error> {
        paths::check_file_path(path)?;
        let body = update.body()?;
        let request = Request::new("PATCH", files_route(path))
            .header("Content-Type", "application/json")
            .body(Body::Bytes(body.to_string().into_bytes()));
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
}

/// A download in progress: a `Stream` of the body's chunks, with what the
/// answer's headers said.
pub struct Download {
    /// The answer's `Content-Length`: the bytes to come.
    pub len: Option<u64>,
    /// The file's content type.
    pub content_type: Option<String>,
    /// The answer's `Cache-Control`: the file's `cacheControl` (spec 15.2)
    /// or the server's default.
    pub cache_control: Option<String>,
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
