//! The test proxy itself (no worker): it forwards, switches upstream, cuts
//! live connections, and stops everything when dropped.

use std::time::{Duration, Instant};

use blaze_tests::live::Proxy;

use crate::support::{run, within, WAIT};

#[test]
fn the_proxy_forwards_cuts_switches_and_stops_when_dropped() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    /// An upstream that greets each connection with `tag`, then echoes.
    async fn upstream(tag: u8) -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    socket.write_all(&[tag]).await.ok();
                    let (mut r, mut w) = socket.split();
                    tokio::io::copy(&mut r, &mut w).await.ok();
                });
            }
        });
        port
    }
    async fn open(port: u16) -> (TcpStream, u8) {
        let mut socket = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let mut tag = [0];
        within("the greeting", socket.read_exact(&mut tag))
            .await
            .unwrap();
        (socket, tag[0])
    }
    async fn closed(socket: &mut TcpStream) -> bool {
        let mut buf = [0; 8];
        matches!(
            within("the close", socket.read(&mut buf)).await,
            Ok(0) | Err(_)
        )
    }

    run(async {
        let (one, two) = (upstream(1).await, upstream(2).await);
        let proxy = Proxy::start(one).await;
        let (mut a, tag) = open(proxy.port).await;
        assert_eq!(tag, 1);
        a.write_all(b"ping").await.unwrap();
        let mut echo = [0; 4];
        within("the echo", a.read_exact(&mut echo)).await.unwrap();
        assert_eq!(&echo, b"ping");
        let (mut b, _) = open(proxy.port).await;
        assert!(proxy.wait_live(WAIT).await);
        assert_eq!(proxy.cut(), 2);
        assert!(
            closed(&mut a).await && closed(&mut b).await,
            "cut closes both"
        );

        proxy.set_upstream(two);
        let (mut c, tag) = open(proxy.port).await;
        assert_eq!(tag, 2, "new connections go to the new upstream");
        let port = proxy.port;
        drop(proxy);
        assert!(
            closed(&mut c).await,
            "dropping the proxy closes its connections"
        );
        let deadline = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            assert!(
                Instant::now() < deadline,
                "the proxy still accepts after drop"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
}
