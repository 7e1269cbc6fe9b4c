//! The task behind one collection's connection: opens the WebSocket, says
//! `hello`, feeds frames and commands to the [`Session`], routes its events to
//! the callers' channels, and reconnects with backoff when the connection is
//! lost. All protocol decisions are the session's.

mod routing;

use blaze_protocol::{decode_server, Limits, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::options::ConnectOptions;
use crate::session::Session;

pub(crate) use routing::Command;
use routing::RoutedSession;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Why a connection ended.
enum Ended {
    /// Every handle is gone: the task stops.
    Unused,
    /// The connection was lost or refused; the text says why.
    Lost(String),
}

/// Runs one collection's connection until every handle to it is dropped.
pub(crate) async fn run(
    url: String,
    options: ConnectOptions,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let seed = fastrand::u64(..);
    let mut session = RoutedSession::new(Session::new(options.auth.clone(), seed));
    let mut attempt = 0u32;
    loop {
        while !session.has_work() {
            match commands.recv().await {
                Some(command) => session.command(command),
                None => return,
            }
        }
        let hello = session.hello();
        let ended = match tokio::time::timeout(options.connect_timeout, open(&url, hello)).await {
            Ok(Ok(socket)) => {
                attempt = 0;
                serve(socket, &mut session, &mut commands).await
            }
            Ok(Err(reason)) => Ended::Lost(reason),
            Err(_) => Ended::Lost("connect timeout".into()),
        };
        let Ended::Lost(reason) = ended else { return };
        attempt += 1;
        session.disconnected(attempt, &reason);
        let delay = options.reconnect.delay(attempt, fastrand::f64());
        let wait = tokio::time::sleep(delay);
        tokio::pin!(wait);
        loop {
            tokio::select! {
                _ = &mut wait => break,
                command = commands.recv() => match command {
                    Some(command) => session.command(command),
                    None => return,
                },
            }
        }
    }
}

/// Opens the WebSocket and completes the handshake.
async fn open(url: &str, hello: String) -> Result<Socket, String> {
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| e.to_string())?;
    socket
        .send(Message::text(hello))
        .await
        .map_err(|e| e.to_string())?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let limits = Limits {
                    max_frame_bytes: usize::MAX,
                    max_frame_depth: usize::MAX,
                    ..Limits::default()
                };
                return match decode_server(&text, &limits) {
                    Ok(ServerMessage::Welcome { .. }) => Ok(socket),
                    Ok(ServerMessage::Error { error, .. }) => {
                        Err(format!("handshake refused: {}", error.code))
                    }
                    _ => Err("the server did not answer hello with welcome".into()),
                };
            }
            Some(Ok(Message::Close(frame))) => return Err(close_reason(frame)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.to_string()),
            None => return Err("closed during the handshake".into()),
        }
    }
}

/// Serves an open connection until it is lost or no longer used.
async fn serve(
    socket: Socket,
    session: &mut RoutedSession,
    commands: &mut mpsc::UnboundedReceiver<Command>,
) -> Ended {
    let (mut sink, mut stream) = socket.split();
    session.connected();
    loop {
        while let Some(frame) = session.poll_transmit() {
            if let Err(e) = sink.feed(Message::text(frame)).await {
                return Ended::Lost(e.to_string());
            }
        }
        if let Err(e) = sink.flush().await {
            return Ended::Lost(e.to_string());
        }
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    if let Err(e) = session.handle_frame(&text) {
                        return Ended::Lost(e.to_string());
                    }
                }
                Some(Ok(Message::Close(frame))) => return Ended::Lost(close_reason(frame)),
                Some(Ok(_)) => {}
                Some(Err(e)) => return Ended::Lost(e.to_string()),
                None => return Ended::Lost("connection closed".into()),
            },
            command = commands.recv() => match command {
                Some(command) => session.command(command),
                None => {
                    let _ = sink.send(Message::Close(None)).await;
                    return Ended::Unused;
                }
            },
        }
    }
}

fn close_reason(frame: Option<tokio_tungstenite::tungstenite::protocol::CloseFrame>) -> String {
    match frame {
        Some(frame) => format!(
            "closed by the server: {} {}",
            u16::from(frame.code),
            frame.reason
        ),
        None => "closed by the server".into(),
    }
}
