//! Behind a TCP load balancer speaking the PROXY protocol: connections from
//! the trusted proxy carry the client's address in a v1 or v2 header, which
//! the per-address limits then use; other peers are read as usual.
#![allow(clippy::unwrap_used)]

mod common;

use chunkswarm_tracker::{Config, Limits};
use common::TestTracker;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite;

fn behind_proxy() -> Config {
    Config {
        trusted_proxies: vec!["127.0.0.1".parse().unwrap()],
        proxy_protocol: true,
        limits: Limits {
            max_connections_per_ip: 1,
            ..Limits::default()
        },
        ..Config::default()
    }
}

fn v1(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 10.0.0.1 40000 443\r\n").into_bytes()
}

fn v2(client: [u8; 4]) -> Vec<u8> {
    let mut out = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    out.extend_from_slice(&[0x21, 0x11, 0, 12]);
    out.extend_from_slice(&client);
    out.extend_from_slice(&[10, 0, 0, 1, 0x9c, 0x40, 1, 187]);
    out
}

/// A WebSocket handshake over `tcp` after writing `header` first.
async fn websocket(
    t: &TestTracker,
    mut tcp: TcpStream,
    header: &[u8],
) -> Result<(), tungstenite::Error> {
    tcp.write_all(header).await.unwrap();
    tokio_tungstenite::client_async(t.ws_url(), tcp)
        .await
        .map(|_| ())
}

async fn from(local: &str, t: &TestTracker) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(t.addr).await.unwrap()
}

#[tokio::test]
async fn each_client_named_in_a_header_has_its_own_limits() {
    let t = TestTracker::start(behind_proxy()).await;
    let mut open = Vec::new();
    for header in [v1("198.51.100.1"), v2([198, 51, 100, 2])] {
        let mut tcp = TcpStream::connect(t.addr).await.unwrap();
        tcp.write_all(&header).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(t.ws_url(), tcp)
            .await
            .unwrap();
        open.push(ws);
    }
    // The first client again is over its one connection.
    let again = websocket(
        &t,
        TcpStream::connect(t.addr).await.unwrap(),
        &v1("198.51.100.1"),
    )
    .await;
    assert!(
        again.is_err(),
        "a second connection of one client was let in"
    );
}

#[tokio::test]
async fn a_trusted_proxy_without_a_header_is_refused_and_others_need_none() {
    let t = TestTracker::start(behind_proxy()).await;
    let bare = websocket(&t, TcpStream::connect(t.addr).await.unwrap(), b"").await;
    assert!(
        bare.is_err(),
        "a trusted proxy's connection without a header was served"
    );
    let garbage = websocket(
        &t,
        TcpStream::connect(t.addr).await.unwrap(),
        b"PROXY nonsense\r\n",
    )
    .await;
    assert!(garbage.is_err(), "a malformed header was accepted");
    // 127.0.0.2 is not the proxy: it is a client, read without a header.
    let direct = websocket(&t, from("127.0.0.2", &t).await, b"").await;
    assert!(direct.is_ok(), "{direct:?}");
}
