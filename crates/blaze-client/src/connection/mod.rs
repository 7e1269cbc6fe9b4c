//! The task behind one collection's connection: opens the WebSocket, says
//! `hello`, feeds frames and commands to the [`Session`], routes its events to
//! the callers' channels, and reconnects with backoff when the connection is
//! lost; asks the token provider for a fresh token before each connection
//! and when the session says the credential is due for a refresh. All
//! protocol decisions are the session's.

mod routing;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use blaze_protocol::{decode_server, AuthState, ErrorCode, Limits, ServerMessage};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::options::ConnectOptions;
use crate::session::Session;
use crate::{Credentials, Error, TokenProvider};

pub(crate) use routing::Command;
use routing::RoutedSession;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The close code of a refused or expired credential (spec 13.5).
const CLOSE_UNAUTHENTICATED: u16 = 4001;

/// The close code the client drops a connection with when the server broke
/// the protocol (a private code, as the TypeScript client's).
const CLOSE_PROTOCOL_ERROR: u16 = 4000;

/// The close frame of a connection the server broke the protocol on.
fn broken_close() -> CloseFrame {
    CloseFrame {
        code: CLOSE_PROTOCOL_ERROR.into(),
        reason: "protocol error".into(),
    }
}

/// Why a connection ended.
enum Ended {
    /// Every handle is gone: the task stops.
    Unused,
    /// The connection was lost or refused; the text says why.
    Lost(String),
    /// There was no credential to connect with, or the server refused it
    /// (close 4001 `unauthenticated`); the text says why.
    Refused(String),
    /// The connection's credential expired (close 4001 `token_expired`).
    Expired,
    /// The server broke the protocol; the text says how.
    Broken(String),
}

/// Runs one collection's connection until every handle to it is dropped.
pub(crate) async fn run(
    url: String,
    options: ConnectOptions,
    mut commands: mpsc::UnboundedReceiver<Command>,
) {
    let seed = fastrand::u64(..);
    let (session, provider) = match &options.credentials {
        Credentials::None => (Session::new(None, seed), None),
        Credentials::Fixed(key) => (Session::new(Some(key.clone()), seed), None),
        Credentials::Provider(provider) => {
            (Session::new(None, seed).renewable(), Some(provider.clone()))
        }
    };
    let mut session = RoutedSession::new(session);
    let mut attempt = 0u32;
    loop {
        while !session.has_work() {
            match commands.recv().await {
                Some(command) => session.command(command),
                None => return,
            }
        }
        let link = Link {
            url: &url,
            options: &options,
            provider: provider.as_ref(),
        };
        let ended = link
            .connect(&mut session, &mut commands, &mut attempt)
            .await;
        let (reason, refused, broken) = match ended {
            Ended::Unused => return,
            Ended::Lost(reason) => (reason, false, false),
            Ended::Refused(reason) => (reason, true, false),
            // A fixed credential that expired is refused if sent again.
            Ended::Expired => ("the credential expired".into(), provider.is_none(), false),
            Ended::Broken(reason) => (reason, false, true),
        };
        attempt += 1;
        session.disconnected(attempt, &reason);
        if refused {
            session.auth_failed(&reason);
        }
        if broken {
            session.protocol_failed(&reason, now_ms());
        }
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

/// Where and how a connection is opened.
struct Link<'a> {
    url: &'a str,
    options: &'a ConnectOptions,
    provider: Option<&'a TokenProvider>,
}

impl Link<'_> {
    /// Gets a fresh token (with a provider), opens the WebSocket, completes
    /// the handshake and serves the connection until it ends.
    async fn connect(
        &self,
        session: &mut RoutedSession,
        commands: &mut mpsc::UnboundedReceiver<Command>,
        attempt: &mut u32,
    ) -> Ended {
        if let Some(provider) = self.provider {
            match fresh_token(provider.clone(), self.options.connect_timeout).await {
                Ok(token) => session.set_credential(token),
                Err(reason) => return Ended::Refused(reason),
            }
        }
        let hello = session.hello();
        match tokio::time::timeout(self.options.connect_timeout, open(self.url, hello)).await {
            Ok(Ok((socket, auth))) => {
                *attempt = 0;
                session.connected(auth.as_ref(), now_ms());
                serve(socket, session, commands, self).await
            }
            Ok(Err(ended)) => ended,
            Err(_) => Ended::Lost("connect timeout".into()),
        }
    }
}

/// Asks the provider for the current token, within `limit`.
async fn fresh_token(provider: TokenProvider, limit: Duration) -> Result<Option<String>, String> {
    match tokio::time::timeout(limit, provider.fetch()).await {
        Ok(Ok(token)) => Ok(token),
        Ok(Err(e)) => Err(format!("the token provider failed: {e}")),
        Err(_) => Err("the token provider did not answer in time".into()),
    }
}

/// The wall clock in milliseconds since the Unix epoch, the unit of `expires`.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Opens the WebSocket and completes the handshake; `welcome`'s `auth` on success.
async fn open(url: &str, hello: String) -> Result<(Socket, Option<AuthState>), Ended> {
    let lost = |e: tokio_tungstenite::tungstenite::Error| Ended::Lost(e.to_string());
    let config = WebSocketConfig::default()
        .max_message_size(None)
        .max_frame_size(None);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(lost)?;
    socket.send(Message::text(hello)).await.map_err(lost)?;
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => {
                let limits = Limits {
                    max_frame_bytes: usize::MAX,
                    max_frame_depth: usize::MAX,
                    ..Limits::default()
                };
                return match decode_server(&text, &limits) {
                    Ok(ServerMessage::Welcome { auth, .. }) => Ok((socket, auth)),
                    Ok(ServerMessage::Error { error, .. })
                        if error.code == ErrorCode::Unauthenticated =>
                    {
                        Err(Ended::Refused(format!(
                            "the server refused the credential: {}",
                            error.message
                        )))
                    }
                    Ok(ServerMessage::Error { error, .. }) => {
                        Err(Ended::Lost(format!("handshake refused: {}", error.code)))
                    }
                    _ => Err(Ended::Lost(
                        "the server did not answer hello with welcome".into(),
                    )),
                };
            }
            Some(Ok(Message::Close(frame))) => return Err(closed(frame)),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(lost(e)),
            None => return Err(Ended::Lost("closed during the handshake".into())),
        }
    }
}

/// Serves an open connection until it is lost or no longer used, refreshing
/// its credential in-band when the session says it is due.
async fn serve(
    socket: Socket,
    session: &mut RoutedSession,
    commands: &mut mpsc::UnboundedReceiver<Command>,
    link: &Link<'_>,
) -> Ended {
    let (mut sink, mut stream) = socket.split();
    let mut fetching: Option<Pin<Box<dyn Future<Output = _> + Send>>> = None;
    loop {
        while let Some(frame) = session.poll_transmit() {
            if let Err(e) = sink.feed(Message::text(frame)).await {
                return Ended::Lost(e.to_string());
            }
        }
        if let Err(e) = sink.flush().await {
            return Ended::Lost(e.to_string());
        }
        let due = session.poll_timeout();
        let wait = Duration::from_millis(due.unwrap_or(0).saturating_sub(now_ms()));
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(Message::Text(text))) => {
                    match session.handle_frame(&text) {
                        Ok(()) => {}
                        Err(Error::Protocol(why)) => {
                            // Told to the server as the TypeScript client does.
                            let _ = sink.send(Message::Close(Some(broken_close()))).await;
                            return Ended::Broken(why);
                        }
                        Err(e) => return Ended::Lost(e.to_string()),
                    }
                }
                Some(Ok(Message::Close(frame))) => return closed(frame),
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
            _ = tokio::time::sleep(wait), if due.is_some() => {
                if let (true, Some(provider)) = (session.handle_timeout(now_ms()), link.provider) {
                    let limit = link.options.connect_timeout;
                    fetching = Some(Box::pin(fresh_token(provider.clone(), limit)));
                }
            }
            token = async { fetching.as_mut().expect("a refresh under way").await }, if fetching.is_some() => {
                fetching = None;
                session.refresh(token, now_ms());
            }
        }
    }
}

/// What a close frame means for the client.
fn closed(frame: Option<CloseFrame>) -> Ended {
    match frame {
        Some(frame) if u16::from(frame.code) == CLOSE_UNAUTHENTICATED => {
            if frame.reason == "token_expired" {
                Ended::Expired
            } else {
                Ended::Refused(format!("closed by the server: 4001 {}", frame.reason))
            }
        }
        Some(frame) => Ended::Lost(format!(
            "closed by the server: {} {}",
            u16::from(frame.code),
            frame.reason
        )),
        None => Ended::Lost("closed by the server".into()),
    }
}
