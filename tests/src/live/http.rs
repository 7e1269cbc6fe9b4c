//! A minimal HTTP/1.1 client over a loopback TCP stream: any method,
//! headers and body (also a body cut short of its `Content-Length`, or an
//! empty chunked one), and the status, headers and body read back, as text
//! ([`http`]) or bytes ([`request`]).

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// An HTTP answer; its body text (`String`, from [`http`]) or bytes
/// (`Vec<u8>`, from [`request`]).
#[derive(Clone, Debug)]
pub struct Answer<B = String> {
    /// The status code.
    pub status: u16,
    /// Header lines, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The body, dechunked.
    pub body: B,
}

impl<B: AsRef<[u8]>> Answer<B> {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(self.body.as_ref()).unwrap_or(Value::Null)
    }

    /// The error code of an error body.
    pub fn code(&self) -> Option<String> {
        self.json()["error"]["code"].as_str().map(str::to_owned)
    }
}

/// What a request sends after its headers.
pub enum Body<'a> {
    /// These bytes, with their `Content-Length`.
    Bytes(&'a [u8]),
    /// `Content-Length: declared`, then only `sent`, then the write side closes.
    Short { declared: u64, sent: &'a [u8] },
    /// No body and no `Content-Length`.
    None,
    /// An empty chunked body (the headers must say `Transfer-Encoding: chunked`).
    Chunked,
}

/// Sends one request with a text body to `127.0.0.1:port` and reads the
/// whole answer as text.
pub async fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let answer = request(port, method, path, headers, Body::Bytes(body.as_bytes())).await;
    Answer {
        status: answer.status,
        headers: answer.headers,
        body: String::from_utf8_lossy(&answer.body).into_owned(),
    }
}

/// One request over a fresh connection (`Connection: close`), the answer
/// read to its end as bytes.
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Body<'_>,
) -> Answer<Vec<u8>> {
    let exchange = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
        let mut head =
            format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        let (declared, sent): (Option<u64>, &[u8]) = match body {
            Body::Bytes(bytes) => (Some(bytes.len() as u64), bytes),
            Body::Short { declared, sent } => (Some(declared), sent),
            Body::None => (None, &[]),
            Body::Chunked => (None, b"0\r\n\r\n"),
        };
        if let Some(n) = declared {
            head.push_str(&format!("Content-Length: {n}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await?;
        // A server that answers before reading may close first: the answer is what counts.
        let _ = stream.write_all(sent).await;
        if matches!(body, Body::Short { .. }) {
            let _ = stream.shutdown().await;
        }
        // Read until the answer is whole: the runtime may keep the connection open.
        let mut raw = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            raw.extend_from_slice(&buf[..n]);
            if whole(&raw, method == "HEAD") {
                break;
            }
        }
        Ok::<_, std::io::Error>(raw)
    };
    let raw = tokio::time::timeout(Duration::from_secs(60), exchange)
        .await
        .unwrap_or_else(|_| panic!("{method} {path}: no answer within 60 s"))
        .expect("HTTP exchange");
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        body = dechunk(&body);
    }
    Answer {
        status,
        headers,
        body,
    }
}

/// Whether `raw` holds a whole answer: its head, then `Content-Length`
/// bytes or the last chunk (no body after a `HEAD`, a 101, a 204 or a 304).
fn whole(raw: &[u8], head_only: bool) -> bool {
    let Some(split) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let body = &raw[split + 4..];
    let bodiless = ["http/1.1 101", "http/1.1 204", "http/1.1 304"];
    if head_only || bodiless.iter().any(|s| head.starts_with(s)) {
        return true;
    }
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return body.len() >= len;
    }
    if head.contains("transfer-encoding: chunked") {
        return body.ends_with(b"0\r\n\r\n");
    }
    false
}

/// The data of a chunked body.
fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&rest[..end]).unwrap_or("0");
        let n = usize::from_str_radix(size.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        let data = &rest[end + 2..];
        if n == 0 || data.len() < n {
            break;
        }
        out.extend_from_slice(&data[..n]);
        rest = &data[n..];
        rest = rest.strip_prefix(b"\r\n").unwrap_or(rest);
    }
    out
}
