//! Fetches a torrent by URL into a file, with a progress line:
//! `fetch_file https://media.example/torrents/film.webm.torrent film.webm`
//! (`CHUNKSWARM_LOOPBACK=1` keeps WebRTC on 127.0.0.1, for tests).

use chunkswarm_core::{AddOptions, Client, ClientConfig};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: fetch_file TORRENT-URL OUTPUT-FILE".into());
    };
    let config = match std::env::var_os("CHUNKSWARM_LOOPBACK") {
        Some(_) => ClientConfig::loopback(),
        None => ClientConfig::default(),
    };
    let torrent = Client::new(config)
        .add_with(url, AddOptions::at(out))
        .await?;
    let mut state = torrent.watch();
    let progress = tokio::spawn(async move {
        while state.changed().await.is_ok() {
            let s = state.borrow().stats;
            let percent = 100.0 * s.verified_bytes as f64 / s.total_bytes.max(1) as f64;
            let (peers, web) = (s.p2p_bytes >> 10, s.http_bytes >> 10);
            eprint!("\r{percent:5.1} %  {peers} KiB from peers, {web} KiB from the web seed ");
        }
    });
    // Resolves once every piece is verified and flushed to disk.
    torrent.wait().await?;
    progress.abort();
    eprintln!("\r100.0 %  {}", torrent.path().display());
    Ok(())
}
