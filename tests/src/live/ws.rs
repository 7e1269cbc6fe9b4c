//! A raw protocol connection: JSON frames in and out, with timeouts.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// One WebSocket to one collection of the worker.
pub struct Ws {
    stream: WebSocketStream<MaybeTlsStream<TcpStream>>,
    next_rid: u64,
}

/// What the server sent next: a text frame, or the close of the connection.
#[derive(Debug)]
pub enum Incoming {
    /// A text frame, as sent.
    Text(String),
    /// A close frame (code 1005 and no reason when it carried none).
    Closed {
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
}

/// How long a test waits for one frame.
const WAIT: Duration = Duration::from_secs(10);

impl Ws {
    /// Connects to `collection` and completes the handshake.
    pub async fn open(port: u16, collection: &str) -> Self {
        Self::open_from(port, collection, None).await
    }

    /// [`Ws::open`] from the client network `address` (the
    /// `CF-Connecting-IP` that `wrangler dev`, like Cloudflare, passes to
    /// the worker; `None`: the loopback address it fills in).
    pub async fn open_from(port: u16, collection: &str, address: Option<&str>) -> Self {
        let mut ws = Self::raw_from(port, collection, address).await;
        ws.send_json(&json!({"type": "hello", "protocol": 1})).await;
        let welcome = ws.recv().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        ws
    }

    /// Connects without saying hello.
    pub async fn raw(port: u16, collection: &str) -> Self {
        Self::raw_from(port, collection, None).await
    }

    /// [`Ws::raw`] from the client network `address` (see [`Ws::open_from`]).
    pub async fn raw_from(port: u16, collection: &str, address: Option<&str>) -> Self {
        match Self::try_raw(port, collection, address).await {
            Ok(ws) => ws,
            Err(status) => panic!("WebSocket refused: {status}"),
        }
    }

    /// Connects from the client network `address` (see [`Ws::open_from`])
    /// without saying hello, or returns the status of the HTTP answer that
    /// refused the upgrade.
    pub async fn try_raw(port: u16, collection: &str, address: Option<&str>) -> Result<Self, u16> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        use tokio_tungstenite::tungstenite::http::HeaderValue;
        use tokio_tungstenite::tungstenite::Error;
        let url = format!("ws://127.0.0.1:{port}/v1/ws/{collection}");
        let mut request = url.into_client_request().expect("a WebSocket URL");
        if let Some(address) = address {
            let address = HeaderValue::from_str(address).expect("an address");
            request.headers_mut().insert("CF-Connecting-IP", address);
        }
        let connected = tokio::time::timeout(WAIT, tokio_tungstenite::connect_async(request))
            .await
            .expect("connects in time");
        match connected {
            Ok((stream, _)) => Ok(Self {
                stream,
                next_rid: 0,
            }),
            Err(Error::Http(answer)) => Err(answer.status().as_u16()),
            Err(e) => panic!("WebSocket connects: {e}"),
        }
    }

    /// A fresh request id.
    pub fn rid(&mut self) -> u64 {
        self.next_rid += 1;
        self.next_rid
    }

    /// Sends a text frame as is.
    pub async fn send_text(&mut self, text: &str) {
        self.stream
            .send(Message::text(text))
            .await
            .expect("frame sent");
    }

    /// Sends a binary frame.
    pub async fn send_binary(&mut self, bytes: &[u8]) {
        self.stream
            .send(Message::binary(bytes.to_vec()))
            .await
            .expect("frame sent");
    }

    /// Sends a JSON frame.
    pub async fn send_json(&mut self, frame: &Value) {
        self.send_text(&frame.to_string()).await;
    }

    /// The next text frame, as JSON; panics after 10 s or on a close.
    pub async fn recv(&mut self) -> Value {
        self.try_recv(WAIT).await.expect("a frame within 10 s")
    }

    /// The next text frame within `wait`, or `None`.
    pub async fn try_recv(&mut self, wait: Duration) -> Option<Value> {
        loop {
            let next = tokio::time::timeout(wait, self.stream.next())
                .await
                .ok()??;
            match next.expect("WebSocket read") {
                Message::Text(text) => {
                    return Some(serde_json::from_str(&text).expect("JSON frame"))
                }
                Message::Close(frame) => panic!("closed: {frame:?}"),
                _ => continue,
            }
        }
    }

    /// The next text frame or close within `wait`; `None` on a timeout or
    /// when the connection ended without a close frame.
    pub async fn next_incoming(&mut self, wait: Duration) -> Option<Incoming> {
        loop {
            let next = tokio::time::timeout(wait, self.stream.next())
                .await
                .ok()??;
            match next.ok()? {
                Message::Text(text) => return Some(Incoming::Text(text.as_str().to_owned())),
                Message::Close(frame) => {
                    return Some(match frame {
                        Some(f) => Incoming::Closed {
                            code: f.code.into(),
                            reason: f.reason.as_str().to_owned(),
                        },
                        None => Incoming::Closed {
                            code: 1005,
                            reason: String::new(),
                        },
                    })
                }
                _ => continue,
            }
        }
    }

    /// Sends `frame` with a fresh `rid` and returns the answer carrying that rid,
    /// keeping any other frames that arrive first in `others`.
    pub async fn request(&mut self, mut frame: Value, others: &mut Vec<Value>) -> Value {
        let rid = self.rid();
        frame["rid"] = json!(rid);
        self.send_json(&frame).await;
        loop {
            let got = self.recv().await;
            if got["rid"] == json!(rid) {
                return got;
            }
            others.push(got);
        }
    }

    /// Closes the socket.
    pub async fn close(mut self) {
        let _ = self.stream.close(None).await;
    }

    /// Closes the socket and waits (up to 10 s) until the server has answered the close.
    pub async fn close_and_wait(mut self) {
        let _ = self.stream.close(None).await;
        while let Some(incoming) = self.next_incoming(WAIT).await {
            if matches!(incoming, Incoming::Closed { .. }) {
                break;
            }
        }
    }
}
