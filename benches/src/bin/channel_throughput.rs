//! Data-channel throughput between two native peers on loopback, against
//! raw TCP over loopback in the same run.
//!
//! ```text
//! cargo run --release -p chunkswarm-benches --bin channel_throughput -- [--mib N] [--message BYTES] [--json]
//! ```
//!
//! Both sides are chunkswarm's own native adapter ([`WebRtcConnector`]: DTLS,
//! SCTP, one ordered reliable channel), paced by its buffered-amount
//! backpressure as the driver paces it. Messages default to one wire block
//! message (16 KiB of data plus its 13-byte header), what the engine sends.
//! The TCP run writes the same messages through a tokio socket.
#![allow(clippy::print_stdout)]

use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chunkswarm_core::driver::{ChannelEvent, PeerChannel, PeerConnector as _};
use chunkswarm_core::native::{WebRtcConfig, WebRtcConnector};
use futures_util::{FutureExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const USAGE: &str = "usage: channel_throughput [--mib N] [--message BYTES] [--json]";

struct Options {
    mib: u64,
    message: usize,
    json: bool,
}

fn options() -> Result<Options, String> {
    let mut options = Options {
        mib: 256,
        message: (16 << 10) + 13,
        json: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .ok_or_else(|| format!("{name} needs a positive number\n{USAGE}"))
        };
        match arg.as_str() {
            "--mib" => options.mib = number("--mib")?,
            "--message" => {
                options.message = usize::try_from(number("--message")?)
                    .map_err(|e| e.to_string())?
                    .min(16 << 20);
            }
            "--json" => options.json = true,
            "--bench" => {} // passed by `cargo bench`
            _ => return Err(USAGE.to_owned()),
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let options = match options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&options)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("channel_throughput: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(options: &Options) -> Result<(), String> {
    let total = options.mib << 20;
    let message = Bytes::from(vec![0xa5u8; options.message]);
    let webrtc = data_channel(total, message.clone()).await?;
    let tcp = tcp(total, message).await?;
    let mbit = |d: Duration| total as f64 * 8.0 / d.as_secs_f64() / 1e6;
    let (webrtc_mbit, tcp_mbit) = (mbit(webrtc), mbit(tcp));
    let ratio = webrtc_mbit / tcp_mbit;
    if options.json {
        println!(
            "{}",
            serde_json::json!({
                "bytes": total,
                "message_bytes": options.message,
                "data_channel_mbit_s": webrtc_mbit,
                "tcp_mbit_s": tcp_mbit,
                "ratio": ratio,
            })
        );
    } else {
        println!(
            "{} MiB in {}-byte messages over loopback",
            options.mib, options.message
        );
        println!("  data channel: {webrtc_mbit:8.0} Mbit/s ({webrtc:.2?})");
        println!("  raw TCP:      {tcp_mbit:8.0} Mbit/s ({tcp:.2?})");
        println!("  ratio:        {ratio:8.3}");
    }
    Ok(())
}

/// Opens a channel between two connectors and times `total` bytes across.
async fn data_channel(total: u64, message: Bytes) -> Result<Duration, String> {
    let offerer = WebRtcConnector::new(WebRtcConfig::loopback());
    let answerer = WebRtcConnector::new(WebRtcConfig::loopback());
    let offer = offerer.create_offer().await.map_err(|e| e.to_string())?;
    let answer = answerer
        .accept_offer(&offer.sdp)
        .await
        .map_err(|e| e.to_string())?;
    let (sending, receiving) = futures_util::future::join(
        offer.pending.open(Some(answer.sdp)),
        answer.pending.open(None),
    )
    .await;
    let sending = sending.map_err(|e| format!("offerer: {e}"))?;
    let receiving = receiving.map_err(|e| format!("answerer: {e}"))?;
    let started = Instant::now();
    let receive = tokio::spawn(receive_all(receiving, total));
    send_paced(sending, total, message).await?;
    receive.await.map_err(|e| e.to_string())??;
    Ok(started.elapsed())
}

/// Sends while the channel reports writable, waits for it otherwise.
async fn send_paced(channel: PeerChannel, total: u64, message: Bytes) -> Result<(), String> {
    let PeerChannel { sender, mut events } = channel;
    let mut writable = true;
    let mut sent = 0u64;
    while sent < total {
        while let Some(event) = events.next().now_or_never() {
            match event {
                Some(ChannelEvent::Writable(now)) => writable = now,
                Some(ChannelEvent::Data(_)) => {}
                None => return Err("sending channel closed".into()),
            }
        }
        if !writable {
            match events.next().await {
                Some(ChannelEvent::Writable(now)) => writable = now,
                Some(ChannelEvent::Data(_)) => {}
                None => return Err("sending channel closed".into()),
            }
            continue;
        }
        let len = message.len().min((total - sent) as usize);
        sender
            .send(message.slice(..len))
            .map_err(|e| e.to_string())?;
        sent += len as u64;
    }
    // Keep the sender alive until the receiver has everything.
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(sender);
        drop(events);
    });
    Ok(())
}

async fn receive_all(channel: PeerChannel, total: u64) -> Result<(), String> {
    let PeerChannel { sender, mut events } = channel;
    let mut got = 0u64;
    while got < total {
        match events.next().await {
            Some(ChannelEvent::Data(data)) => got += data.len() as u64,
            Some(ChannelEvent::Writable(_)) => {}
            None => return Err(format!("receiving channel closed after {got} bytes")),
        }
    }
    sender.close();
    Ok(())
}

/// The same bytes through a TCP socket on loopback.
async fn tcp(total: u64, message: Bytes) -> Result<Duration, String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let receive = tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let mut buffer = vec![0u8; 256 << 10];
        let mut got = 0u64;
        while got < total {
            let n = socket.read(&mut buffer).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err(format!("TCP closed after {got} bytes"));
            }
            got += n as u64;
        }
        Ok::<(), String>(())
    });
    let mut socket = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    socket.set_nodelay(true).map_err(|e| e.to_string())?;
    let started = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let len = message.len().min((total - sent) as usize);
        socket
            .write_all(&message[..len])
            .await
            .map_err(|e| e.to_string())?;
        sent += len as u64;
    }
    receive.await.map_err(|e| e.to_string())??;
    Ok(started.elapsed())
}
