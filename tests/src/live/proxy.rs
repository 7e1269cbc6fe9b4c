//! A tiny TCP proxy on loopback, to break a client's connections on purpose:
//! it forwards every accepted connection to an upstream port that can be
//! changed at run time, and [`Proxy::cut`] closes every live connection.
//! [`Proxy::drop_next_answer`] loses the server's next bytes and cuts that
//! connection (an answer lost between a request and its reply).
//! Dropping the proxy stops its accept loop and closes its connections.

use std::sync::atomic::{AtomicBool, AtomicU16, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running proxy; see the module documentation.
pub struct Proxy {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    upstream: Arc<AtomicU16>,
    live: Arc<AtomicUsize>,
    /// The server-to-client traffic a connection must drop, then cut.
    losses: Arc<Losses>,
    /// Bumped by `cut`; connection tasks end when it changes or is dropped.
    /// The proxy holds the only sender.
    cuts: watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl Proxy {
    /// Starts a proxy to `127.0.0.1:upstream` on a free loopback port.
    /// Must be called inside a tokio runtime.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds");
        let port = listener.local_addr().expect("a local address").port();
        let upstream = Arc::new(AtomicU16::new(upstream));
        let live = Arc::new(AtomicUsize::new(0));
        let losses = Arc::new(Losses::default());
        let (cuts, _) = watch::channel(0u64);
        let accept = tokio::spawn(accept_loop(
            listener,
            upstream.clone(),
            live.clone(),
            losses.clone(),
            cuts.subscribe(),
        ));
        Self {
            port,
            upstream,
            live,
            losses,
            cuts,
            accept,
        }
    }

    /// The proxy's base HTTP URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends new connections to `127.0.0.1:port` (live ones keep their upstream).
    pub fn set_upstream(&self, port: u16) {
        self.upstream.store(port, Ordering::SeqCst);
    }

    /// How many connections are being forwarded now.
    pub fn live(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// Closes every live connection (both sides); returns how many there were.
    pub fn cut(&self) -> usize {
        let live = self.live();
        self.cuts.send_modify(|n| *n += 1);
        live
    }

    /// Arms a loss: the next bytes any server sends through the proxy are
    /// dropped and their connection is cut, so the client never reads them.
    pub fn drop_next_answer(&self) {
        self.losses.armed.store(true, Ordering::SeqCst);
    }

    /// How many armed losses have happened (bytes dropped and cut).
    pub fn answers_dropped(&self) -> usize {
        self.losses.done.load(Ordering::SeqCst)
    }

    /// Waits until at least one connection is live; false after `wait`.
    pub async fn wait_live(&self, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        while self.live() == 0 {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        true
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // The accept loop stops; connection tasks end when `cuts`, the
        // only sender, drops with the proxy (their `changed()` returns).
        self.accept.abort();
    }
}

/// An armed loss, and how many have happened.
#[derive(Default)]
struct Losses {
    armed: AtomicBool,
    done: AtomicUsize,
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<AtomicU16>,
    live: Arc<AtomicUsize>,
    losses: Arc<Losses>,
    cuts: watch::Receiver<u64>,
) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let mut cut = cuts.clone();
        cut.mark_unchanged();
        if cut.has_changed().is_err() {
            return; // the proxy is gone
        }
        let port = upstream.load(Ordering::SeqCst);
        let live = live.clone();
        let losses = losses.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(("127.0.0.1", port)).await else {
                return; // nothing upstream: the client's socket closes
            };
            live.fetch_add(1, Ordering::SeqCst);
            forward(client, server, &losses, &mut cut).await;
            live.fetch_sub(1, Ordering::SeqCst);
        });
    }
}

/// Copies both ways until the server's side ends, the proxy cuts, or an
/// armed loss drops what the server sent.
async fn forward(
    client: TcpStream,
    server: TcpStream,
    losses: &Losses,
    cut: &mut watch::Receiver<u64>,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_in, mut client_out) = client.into_split();
    let (mut server_in, mut server_out) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut client_in, &mut server_out).await;
        let _ = server_out.shutdown().await;
        std::future::pending::<()>().await
    };
    let down = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match server_in.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if losses.armed.swap(false, Ordering::SeqCst) {
                losses.done.fetch_add(1, Ordering::SeqCst);
                return;
            }
            if client_out.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
        let _ = client_out.shutdown().await;
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
        _ = cut.changed() => {}
    }
    // Both sockets drop here, closing both sides.
}
