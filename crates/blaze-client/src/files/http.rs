//! A small HTTP/1.1 client for the files routes (spec 15): one connection per
//! request (`Connection: close`), the request body streamed from an
//! `AsyncRead` with its `Content-Length` (never held whole), and the
//! answer's body read as it arrives (framed by `Content-Length`, chunked, or
//! the server closing). Plain `http://` only, as the client's WebSockets:
//! no TLS is built into this crate.

use std::pin::Pin;

use blaze_protocol::ErrorCode;
use bytes::Bytes;
use futures_core::Stream;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::credentials::Credentials;
use crate::Error;

/// The most bytes one read of an answer's body hands out.
const CHUNK: usize = 64 * 1024;

/// Where the server is: `host:port` and the URL's path prefix.
#[derive(Clone, Debug)]
pub(crate) struct Endpoint {
    host: String,
    prefix: String,
}

impl Endpoint {
    /// The endpoint of a client URL (`http://` or `ws://`, as the client keeps it).
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("ws://"))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "files need an http:// (or ws://) server URL, got {url:?}: this client has no TLS"
                ))
            })?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let host = if authority.contains(':') {
            authority.to_owned()
        } else {
            format!("{authority}:80")
        };
        Ok(Self {
            host,
            prefix: prefix.to_owned(),
        })
    }
}

/// A request body.
pub(crate) enum Body<'a> {
    /// No body (`Content-Length: 0` for the methods that take one).
    Empty,
    /// A small body in memory (JSON).
    Bytes(Vec<u8>),
    /// `len` bytes streamed from `reader`.
    Reader {
        /// Where the bytes come from; it must yield at least `len` bytes.
        reader: &'a mut (dyn AsyncRead + Send + Unpin),
        /// The `Content-Length`.
        len: u64,
    },
}

/// One request: the method, the route from `/v1/` with its query string, headers besides `Host`, `Authorization` and `Content-Length`, and the body.
pub(crate) struct Request<'a> {
    pub method: &'static str,
    pub target: String,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body<'a>,
}

impl<'a> Request<'a> {
    /// A request without a body or extra headers.
    pub(crate) fn new(method: &'static str, target: String) -> Self {
        Self {
            method,
            target,
            headers: Vec::new(),
            body: Body::Empty,
        }
    }

    /// With the header `name: value`.
    pub(crate) fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// With `body`.
    pub(crate) fn body(mut self, body: Body<'a>) -> Self {
        self.body = body;
        self
    }
}

/// How the answer's body ends.
enum Framing {
    Length(u64),
    Chunked { left: u64 },
    UntilClose,
    Done,
}

/// A successful answer: its status, headers, and the body still to read.
pub(crate) struct Response {
    pub status: u16,
    headers: Vec<(String, String)>,
    conn: BufReader<TcpStream>,
    framing: Framing,
}

impl Response {
    /// The value of the header `name` (case-insensitive).
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The whole body.
    pub(crate) async fn bytes(mut self) -> Result<Vec<u8>, Error> {
        let mut all = Vec::new();
        while let Some(chunk) = self.next_chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all)
    }

    /// The body as JSON.
    pub(crate) async fn json<T: serde::de::DeserializeOwned>(self) -> Result<T, Error> {
        let body = self.bytes().await?;
        serde_json::from_slice(&body).map_err(|e| {
            Error::Protocol(format!(
                "an answer that is not the JSON expected ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ))
        })
    }

    /// The body as a stream of chunks, as they arrive.
    pub(crate) fn into_stream(self) -> Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>> {
        Box::pin(futures_util::stream::unfold(
            self,
            |mut response| async move {
                match response.next_chunk().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), response)),
                    Ok(None) => None,
                    Err(e) => {
                        response.framing = Framing::Done;
                        Some((Err(e), response))
                    }
                }
            },
        ))
    }

    /// The next piece of the body, `None` at its end.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, Error> {
        let want = match self.framing {
            Framing::Done => return Ok(None),
            Framing::Length(0) => {
                self.framing = Framing::Done;
                return Ok(None);
            }
            Framing::Length(left) => left.min(CHUNK as u64) as usize,
            Framing::Chunked { left: 0 } => {
                let size = self.chunk_size().await?;
                if size == 0 {
                    // The trailer section, up to its empty line.
                    while !self.line().await?.is_empty() {}
                    self.framing = Framing::Done;
                    return Ok(None);
                }
                self.framing = Framing::Chunked { left: size };
                size.min(CHUNK as u64) as usize
            }
            Framing::Chunked { left } => left.min(CHUNK as u64) as usize,
            Framing::UntilClose => CHUNK,
        };
        let mut buf = vec![0; want];
        let n = self.conn.read(&mut buf).await.map_err(connection)?;
        buf.truncate(n);
        match &mut self.framing {
            Framing::UntilClose if n == 0 => {
                self.framing = Framing::Done;
                return Ok(None);
            }
            _ if n == 0 => return Err(Error::Connection("the answer's body was cut short".into())),
            Framing::Length(left) => *left -= n as u64,
            Framing::Chunked { left } => {
                *left -= n as u64;
                if *left == 0 && !self.line().await?.is_empty() {
                    return Err(Error::Protocol("a chunk not followed by CRLF".into()));
                }
            }
            _ => {}
        }
        Ok(Some(Bytes::from(buf)))
    }

    async fn chunk_size(&mut self) -> Result<u64, Error> {
        let line = self.line().await?;
        let hex = line.split(';').next().unwrap_or("").trim();
        u64::from_str_radix(hex, 16)
            .map_err(|_| Error::Protocol(format!("a bad chunk size line {line:?}")))
    }

    /// One line without its CRLF.
    async fn line(&mut self) -> Result<String, Error> {
        read_line(&mut self.conn).await
    }
}

async fn read_line(conn: &mut BufReader<TcpStream>) -> Result<String, Error> {
    let mut line = Vec::new();
    let n = (&mut *conn)
        .take(16 * 1024)
        .read_until(b'\n', &mut line)
        .await
        .map_err(connection)?;
    if n == 0 || line.last() != Some(&b'\n') {
        return Err(Error::Connection("the connection closed mid-answer".into()));
    }
    while matches!(line.last(), Some(b'\n' | b'\r')) {
        line.pop();
    }
    String::from_utf8(line).map_err(|_| Error::Protocol("a header line that is not UTF-8".into()))
}

fn connection(e: std::io::Error) -> Error {
    Error::Connection(e.to_string())
}

/// The credential to send, asking a provider for a current token.
pub(crate) async fn credential(credentials: &Credentials) -> Result<Option<String>, Error> {
    match credentials {
        Credentials::None => Ok(None),
        Credentials::Fixed(key) => Ok(Some(key.clone())),
        Credentials::Provider(provider) => provider.fetch().await.map_err(|why| {
            Error::rejected(
                ErrorCode::Unauthenticated,
                format!("the token provider failed: {why}"),
            )
        }),
    }
}

/// Sends `request` as `credential`; an answer of 400 or more becomes the
/// error its `{"error": {...}}` body names.
pub(crate) async fn send(
    endpoint: &Endpoint,
    credential: Option<&str>,
    request: Request<'_>,
) -> Result<Response, Error> {
    let stream = TcpStream::connect(&endpoint.host)
        .await
        .map_err(|e| Error::Connection(format!("{}: {e}", endpoint.host)))?;
    let _ = stream.set_nodelay(true);
    let mut conn = BufReader::new(stream);
    let len = match &request.body {
        Body::Empty => 0,
        Body::Bytes(bytes) => bytes.len() as u64,
        Body::Reader { len, .. } => *len,
    };
    let mut head = format!(
        "{} {}{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        request.method, endpoint.prefix, request.target, endpoint.host
    );
    if len > 0 || matches!(request.method, "PUT" | "POST" | "PATCH") {
        head.push_str(&format!("Content-Length: {len}\r\n"));
    }
    if let Some(token) = credential {
        head.push_str(&format!("Authorization: Bearer {token}\r\n"));
    }
    for (name, value) in &request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let written = write_request(conn.get_mut(), head.as_bytes(), request.body).await;
    if let Err(e @ Error::Usage(_)) = written {
        // The body fell short: dropping the connection cuts it, so the server keeps nothing.
        return Err(e);
    }
    // A server may answer before reading the whole body (a refusal) and close: read its answer first.
    let response = match read_head(conn, request.method).await {
        Ok(response) => response,
        Err(e) => return Err(written.err().unwrap_or(e)),
    };
    if response.status >= 400 {
        return Err(error_of(response).await);
    }
    written?;
    Ok(response)
}

async fn write_request(stream: &mut TcpStream, head: &[u8], body: Body<'_>) -> Result<(), Error> {
    stream.write_all(head).await.map_err(connection)?;
    match body {
        Body::Empty => {}
        Body::Bytes(bytes) => stream.write_all(&bytes).await.map_err(connection)?,
        Body::Reader { reader, len } => {
            let sent = tokio::io::copy(&mut reader.take(len), stream)
                .await
                .map_err(connection)?;
            if sent != len {
                return Err(Error::Usage(format!(
                    "the reader ended after {sent} of the {len} bytes announced"
                )));
            }
        }
    }
    stream.flush().await.map_err(connection)
}

async fn read_head(mut conn: BufReader<TcpStream>, method: &str) -> Result<Response, Error> {
    let status_line = read_line(&mut conn).await?;
    let mut parts = status_line.splitn(3, ' ');
    let status = match (parts.next(), parts.next()) {
        (Some(version), Some(code)) if version.starts_with("HTTP/1.") => code.parse::<u16>().ok(),
        _ => None,
    }
    .ok_or_else(|| Error::Protocol(format!("not an HTTP/1.1 status line: {status_line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let line = read_line(&mut conn).await?;
        if line.is_empty() {
            break;
        }
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| Error::Protocol(format!("a bad header line {line:?}")))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut response = Response {
        status,
        headers,
        conn,
        framing: Framing::UntilClose,
    };
    response.framing = if method == "HEAD" || matches!(status, 204 | 304) {
        Framing::Done
    } else if response
        .header("Transfer-Encoding")
        .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
    {
        Framing::Chunked { left: 0 }
    } else if let Some(length) = response.header("Content-Length") {
        Framing::Length(
            length
                .parse()
                .map_err(|_| Error::Protocol(format!("a bad Content-Length {length:?}")))?,
        )
    } else {
        Framing::UntilClose
    };
    Ok(response)
}

/// The error an answer of 400 or more stands for.
async fn error_of(response: Response) -> Error {
    let status = response.status;
    let body = response.bytes().await.unwrap_or_default();
    let parsed: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
    let error = parsed.as_ref().map(|v| &v["error"]);
    let code = error.and_then(|e| e["code"].as_str()).unwrap_or("");
    let message = error
        .and_then(|e| e["message"].as_str())
        .unwrap_or("")
        .to_owned();
    match serde_json::from_value::<ErrorCode>(serde_json::Value::String(code.to_owned())) {
        Ok(code) => Error::rejected(code, message),
        Err(_) if !code.is_empty() => Error::Http {
            status,
            code: code.to_owned(),
            message,
        },
        Err(_) => Error::Http {
            status,
            code: String::new(),
            message: String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio::net::TcpListener;

    /// A one-shot loopback server: reads the request head, then answers `answer` and closes.
    async fn serve_once(answer: &'static [u8]) -> (Endpoint, tokio::task::JoinHandle<String>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint =
            Endpoint::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let task = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            let mut conn = BufReader::new(socket);
            let mut head = String::new();
            loop {
                let line = read_line(&mut conn).await.unwrap();
                if line.is_empty() {
                    break;
                }
                head.push_str(&line);
                head.push('\n');
            }
            conn.get_mut().write_all(answer).await.unwrap();
            head
        });
        (endpoint, task)
    }

    #[tokio::test]
    async fn reads_a_chunked_body_and_sends_the_credential() {
        let (endpoint, server) = serve_once(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=y\r\nhello\r\n6\r\n world\r\n0\r\nTrailer: t\r\n\r\n",
        )
        .await;
        let response = send(
            &endpoint,
            Some("k"),
            Request::new("GET", "/v1/files/a".into()),
        )
        .await
        .unwrap();
        let chunks: Vec<Bytes> = response.into_stream().map(Result::unwrap).collect().await;
        assert_eq!(chunks.concat(), b"hello world");
        let head = server.await.unwrap();
        assert!(head.starts_with("GET /v1/files/a HTTP/1.1\n"), "{head}");
        assert!(head.contains("Authorization: Bearer k\n"), "{head}");
    }

    #[tokio::test]
    async fn an_error_answer_is_its_code_and_a_cut_body_is_an_error() {
        let (endpoint, _server) = serve_once(
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 54\r\n\r\n{\"error\":{\"code\":\"invalid_part\",\"message\":\"too long\"}}",
        )
        .await;
        match send(&endpoint, None, Request::new("PUT", "/x".into())).await {
            Err(Error::Rejected { code, message, .. }) => {
                assert_eq!(
                    (code, message.as_str()),
                    (ErrorCode::InvalidPart, "too long")
                )
            }
            other => panic!(
                "expected a Rejected error, got {:?}",
                other.map(|r| r.status)
            ),
        }
        // A code this client does not know keeps its status and text.
        let (endpoint, _server) = serve_once(
            b"HTTP/1.1 418 I'm a teapot\r\nContent-Length: 52\r\n\r\n{\"error\":{\"code\":\"a_future_code\",\"message\":\"later\"}}",
        )
        .await;
        match send(&endpoint, None, Request::new("PUT", "/x".into())).await {
            Err(Error::Http {
                status,
                code,
                message,
            }) => {
                assert_eq!(
                    (status, code.as_str(), message.as_str()),
                    (418, "a_future_code", "later")
                )
            }
            other => panic!("expected an Http error, got {:?}", other.map(|r| r.status)),
        }
        let (endpoint, _server) =
            serve_once(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc").await;
        let response = send(&endpoint, None, Request::new("GET", "/x".into()))
            .await
            .unwrap();
        assert!(matches!(response.bytes().await, Err(Error::Connection(_))));
    }
}
