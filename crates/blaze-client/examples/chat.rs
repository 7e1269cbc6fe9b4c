//! A terminal chat room on Blaze. Run it in two terminals against
//! `wrangler dev` (the README's run command) and type:
//!
//! ```text
//! cargo run -p blaze-client --example chat -- lobby alice
//! cargo run -p blaze-client --example chat -- lobby bob
//! ```
//!
//! Each line you type becomes a document in `rooms/<room>/messages`; every
//! terminal listens to the last 20 messages ordered by time, and prints each
//! one as it arrives. Stop the worker and start it again: the listener says
//! it is offline, reconnects, and prints what it missed. A third argument
//! sets the server URL (default `http://127.0.0.1:8787`).

use std::time::{SystemTime, UNIX_EPOCH};

use blaze_client::{Blaze, ChangeKind, ConnectionState, Direction, ListenEvent};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, BufReader};

/// One chat message, as stored.
#[derive(Debug, Serialize, Deserialize)]
struct Message {
    from: String,
    text: String,
    /// Milliseconds since the Unix epoch, from the sender's clock.
    ts: u64,
}

#[tokio::main]
async fn main() -> Result<(), blaze_client::Error> {
    let mut args = std::env::args().skip(1);
    let (Some(room), Some(name)) = (args.next(), args.next()) else {
        eprintln!("usage: chat ROOM NAME [URL]");
        std::process::exit(2);
    };
    let url = args
        .next()
        .unwrap_or_else(|| "http://127.0.0.1:8787".into());
    let db = Blaze::connect(&url).await?;
    let messages = db.doc(&format!("rooms/{room}")).collection("messages");

    let mut feed = messages
        .query()
        .order_by("ts", Direction::Asc)
        .limit_to_last(20)
        .listen();
    tokio::spawn(async move {
        while let Some(event) = feed.next().await {
            match event {
                Ok(ListenEvent::Snapshot(snapshot)) => {
                    for change in snapshot.changes() {
                        if change.kind != ChangeKind::Added {
                            continue;
                        }
                        if let Ok(doc) = change.doc.decode::<Message>() {
                            let m = doc.data.expect("an added message exists");
                            println!("[{}] {}", m.from, m.text);
                        }
                    }
                }
                Ok(ListenEvent::State(ConnectionState::Offline { reason, .. })) => {
                    eprintln!("(offline: {reason}; reconnecting)")
                }
                Ok(ListenEvent::State(ConnectionState::Online)) => eprintln!("(back online)"),
                Err(error) => {
                    eprintln!("listener stopped: {error}");
                    return;
                }
            }
        }
    });

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Ok(Some(text)) = lines.next_line().await {
        if text.trim().is_empty() {
            continue;
        }
        let ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let message = Message {
            from: name.clone(),
            text,
            ts,
        };
        if let Err(error) = messages.add(&message).await {
            eprintln!("not sent: {error}");
        }
    }
    Ok(())
}
