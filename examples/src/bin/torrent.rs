//! Create a `.torrent` for a file or folder, or show what one holds.
//!
//! ```text
//! torrent create PATH [-o OUT] [--announce URL]... [--web-seed URL]... [--piece-length BYTES]
//! torrent show TORRENT
//! ```
#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::process::ExitCode;

use chunkswarm_core::metainfo::{Metainfo, TorrentBuilder};

const USAGE: &str = "usage:
  torrent create PATH [-o OUT] [--announce URL]... [--web-seed URL]... [--piece-length BYTES]
  torrent show TORRENT";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("create") => create(&args[1..]),
        Some("show") => show(&args[1..]),
        Some("-h" | "--help") => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        _ => Err(USAGE.to_owned()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("torrent: {message}");
            ExitCode::FAILURE
        }
    }
}

fn create(args: &[String]) -> Result<(), String> {
    let mut builder = TorrentBuilder::new();
    let mut input: Option<PathBuf> = None;
    let mut output: Option<PathBuf> = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .cloned()
                .ok_or_else(|| format!("{arg} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "-o" | "--output" => output = Some(value()?.into()),
            "--announce" => builder = builder.announce(value()?),
            "--web-seed" => builder = builder.web_seed(value()?),
            "--piece-length" => {
                let bytes = value()?;
                let bytes = bytes
                    .parse()
                    .map_err(|_| format!("--piece-length: {bytes:?} is not a number of bytes"))?;
                builder = builder.piece_length(bytes);
            }
            path if input.is_none() && !path.starts_with('-') => input = Some(path.into()),
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let input = input.ok_or_else(|| format!("create needs a PATH\n{USAGE}"))?;
    let metainfo = builder.build_from_path(&input).map_err(|e| e.to_string())?;
    let output =
        output.unwrap_or_else(|| PathBuf::from(format!("{}.torrent", metainfo.info().name())));
    std::fs::write(&output, metainfo.to_bytes())
        .map_err(|e| format!("writing {}: {e}", output.display()))?;
    println!("{}  {}", metainfo.info_hash(), output.display());
    Ok(())
}

fn show(args: &[String]) -> Result<(), String> {
    let [path] = args else {
        return Err(USAGE.to_owned());
    };
    let bytes = std::fs::read(path).map_err(|e| format!("reading {path}: {e}"))?;
    let metainfo = Metainfo::from_bytes(&bytes).map_err(|e| format!("{path}: {e}"))?;
    let info = metainfo.info();
    let layout = info.layout();
    println!("name:         {}", info.name());
    println!("infohash:     {}", metainfo.info_hash());
    println!("size:         {} bytes", info.total_length());
    println!(
        "pieces:       {} of {} bytes",
        layout.piece_count(),
        layout.piece_length()
    );
    println!("private:      {}", info.is_private());
    for tracker in metainfo.trackers() {
        println!("tracker:      {tracker}");
    }
    for seed in metainfo.web_seeds() {
        println!("web seed:     {seed}");
    }
    for file in info.files() {
        println!(
            "file:         {} ({} bytes)",
            file.path().join("/"),
            file.length()
        );
    }
    Ok(())
}
