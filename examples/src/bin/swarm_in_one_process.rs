//! A tracker, a seeder and a fetcher in one process: the fetcher gets the
//! file from the seeder over WebRTC on 127.0.0.1.
//! `swarm_in_one_process FILE OUTPUT-FILE`

use chunkswarm_core::metainfo::TorrentBuilder;
use chunkswarm_core::{AddOptions, Client, ClientConfig};
use chunkswarm_tracker::{Config, Tracker};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(file), Some(out)) = (args.next(), args.next()) else {
        return Err("usage: swarm_in_one_process FILE OUTPUT-FILE".into());
    };
    // The tracker introduces peers and relays their WebRTC offers and answers.
    let tracker = Tracker::new(Config::default())?;
    let tracker = tracker.start("127.0.0.1:0").await?;

    // A torrent of the file naming the tracker; hashing blocks, so off the runtime.
    let builder = TorrentBuilder::new().announce(tracker.announce_url());
    let path = std::path::PathBuf::from(&file);
    let meta = tokio::task::spawn_blocking(move || builder.build_from_path(&path)).await??;

    // The seeder: its content is already whole, so it is complete at once.
    let seeder = Client::new(ClientConfig::loopback());
    let seeding = seeder.add_with(meta.clone(), AddOptions::at(file)).await?;
    if !seeding.state().complete {
        return Err("the file does not match its torrent".into());
    }

    // The fetcher: another client, as another program would be.
    let fetcher = Client::new(ClientConfig::loopback());
    let fetching = fetcher.add_with(meta, AddOptions::at(out)).await?;
    fetching.wait().await?; // every piece verified and on disk

    let stats = fetching.state().stats;
    eprintln!(
        "{} bytes from the peer, {} over HTTP",
        stats.p2p_bytes, stats.http_bytes
    );
    fetching.remove().await?;
    seeding.remove().await?;
    tracker.stop().await?;
    Ok(())
}
