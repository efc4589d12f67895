//! Shared helpers: a tracker on 127.0.0.1:0, WebSocket and raw HTTP clients.
#![allow(dead_code, unreachable_pub, missing_docs, clippy::unwrap_used)]

use std::net::SocketAddr;
use std::time::Duration;

use chunkswarm_tracker::{Config, Tracker, serve};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// How long any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(5);

/// A running tracker; shut down on [`TestTracker::stop`] or drop.
pub struct TestTracker {
    pub addr: SocketAddr,
    pub tracker: Tracker,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<JoinHandle<Result<(), chunkswarm_tracker::ServeError>>>,
}

impl TestTracker {
    pub async fn start(config: Config) -> Self {
        Self::start_tracker(Tracker::new(config).unwrap()).await
    }

    pub async fn start_tracker(tracker: Tracker) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, tracker.clone(), async move {
            let _ = stopped.await;
        }));
        Self {
            addr,
            tracker,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/announce", self.addr)
    }

    /// A plain WebSocket client.
    pub async fn client(&self) -> Client<TcpStream> {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(self.ws_url(), tcp)
            .await
            .unwrap();
        Client { ws }
    }

    /// A WebSocket client whose upgrade request carries `headers`; the
    /// handshake's error (e.g. a 429) if the tracker refuses it.
    pub async fn client_with(
        &self,
        headers: &[(&'static str, &str)],
    ) -> Result<Client<TcpStream>, tokio_tungstenite::tungstenite::Error> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
        let mut request = self.ws_url().into_client_request()?;
        for (name, value) in headers {
            request.headers_mut().append(*name, value.parse().unwrap());
        }
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        let (ws, _) = tokio_tungstenite::client_async(request, tcp).await?;
        Ok(Client { ws })
    }

    /// Shuts the tracker down and waits for `serve` to return.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            tokio::time::timeout(Duration::from_secs(15), task)
                .await
                .unwrap()
                .unwrap()
                .unwrap();
        }
    }

    /// A raw HTTP/1.1 request; returns (status, headers lowercased, body).
    pub async fn http(&self, request_head: &str) -> Response {
        let tcp = TcpStream::connect(self.addr).await.unwrap();
        http_over(tcp, request_head).await
    }

    pub async fn get(&self, path: &str) -> Response {
        self.http(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        ))
        .await
    }

    pub async fn get_with(&self, path: &str, extra_headers: &str) -> Response {
        self.http(&format!(
            "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n"
        ))
        .await
    }

    pub async fn json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status, 200, "GET {path}: {}", response.text());
        serde_json::from_slice(&response.body).unwrap()
    }
}

impl Drop for TestTracker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends a request over any stream and reads the response to EOF.
pub async fn http_over<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request_head: &str,
) -> Response {
    stream.write_all(request_head.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    tokio::time::timeout(WAIT, stream.read_to_end(&mut raw))
        .await
        .unwrap()
        .unwrap();
    parse_response(&raw, request_head.starts_with("HEAD"))
}

fn parse_response(raw: &[u8], head: bool) -> Response {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no header end");
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if head {
        Vec::new()
    } else if chunked {
        dechunk(rest)
    } else {
        rest.to_vec()
    };
    Response {
        status,
        headers,
        body,
    }
}

fn dechunk(mut rest: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n").unwrap();
        let size =
            usize::from_str_radix(std::str::from_utf8(&rest[..line_end]).unwrap().trim(), 16)
                .unwrap();
        rest = &rest[line_end + 2..];
        if size == 0 {
            return body;
        }
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A WebSocket client of the tracker.
pub struct Client<S> {
    pub ws: WebSocketStream<S>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Client<S> {
    pub async fn send(&mut self, message: &Value) {
        self.ws
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }

    pub async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::text(text.to_owned())).await.unwrap();
    }

    /// The next text message as JSON; panics on timeout or close.
    pub async fn recv(&mut self) -> Value {
        match self.next_text(WAIT).await {
            Some(text) => serde_json::from_str(&text).unwrap(),
            None => panic!("no message"),
        }
    }

    /// The next text message, or `None` on timeout or close.
    pub async fn next_text(&mut self, wait: Duration) -> Option<String> {
        loop {
            match tokio::time::timeout(wait, self.ws.next()).await {
                Ok(Some(Ok(Message::Text(text)))) => return Some(text.to_string()),
                Ok(Some(Ok(Message::Ping(_) | Message::Pong(_)))) => continue,
                _ => return None,
            }
        }
    }

    /// Asserts nothing arrives within `wait`.
    pub async fn expect_silence(&mut self, wait: Duration) {
        if let Ok(Some(Ok(Message::Text(text)))) = tokio::time::timeout(wait, self.ws.next()).await
        {
            panic!("unexpected message {text}");
        }
    }

    /// Waits for the connection to close; returns the close code if any.
    pub async fn closed(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(WAIT, self.ws.next()).await {
                Ok(Some(Ok(Message::Close(frame)))) => return frame.map(|f| f.code.into()),
                Ok(Some(Ok(_))) => continue,
                Ok(Some(Err(_)) | None) => return None,
                Err(_) => panic!("connection did not close"),
            }
        }
    }
}

/// A 20-byte id as WebTorrent sends it: one char per byte.
pub fn bin(bytes: [u8; 20]) -> String {
    bytes.iter().map(|&b| char::from(b)).collect()
}

/// An id of one repeated byte.
pub fn id(byte: u8) -> String {
    bin([byte; 20])
}

pub fn announce(info_hash: &str, peer_id: &str, offers: &[(String, &str)]) -> Value {
    let offers: Vec<Value> = offers
        .iter()
        .map(|(offer_id, sdp)| serde_json::json!({"offer_id": offer_id, "offer": {"type": "offer", "sdp": sdp}}))
        .collect();
    serde_json::json!({
        "action": "announce", "info_hash": info_hash, "peer_id": peer_id, "numwant": offers.len(),
        "uploaded": 0, "downloaded": 0, "left": 1000, "event": "started", "offers": offers,
    })
}

pub fn answer(
    info_hash: &str,
    peer_id: &str,
    to_peer_id: &str,
    offer_id: &str,
    sdp: &str,
) -> Value {
    serde_json::json!({
        "action": "announce", "info_hash": info_hash, "peer_id": peer_id, "to_peer_id": to_peer_id,
        "offer_id": offer_id, "answer": {"type": "answer", "sdp": sdp},
    })
}
