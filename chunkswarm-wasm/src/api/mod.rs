//! The JavaScript API (`wasm-bindgen`): [`Client`] and [`Torrent`], with
//! TypeScript shapes for the plain objects they take and give.

mod client;
mod options;
mod storage;
mod torrent;

pub use client::Client;
pub use torrent::Torrent;

use serde::Serialize;
use wasm_bindgen::prelude::*;

/// A value as a plain JS object (`null` for absent fields, numbers for counts).
pub(crate) fn to_js(value: &impl Serialize) -> JsValue {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    value.serialize(&serializer).unwrap_or(JsValue::NULL)
}

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &'static str = r#"
/** Options of `new Client()`. */
export interface ClientOptions {
  /** The WebTorrent tracker (`ws://` or `wss://`); without one, torrents use their web seed only. */
  trackerUrl?: string;
  /** STUN/TURN servers for RTCPeerConnection. Default: those the tracker hands out with
   *  short-lived TURN credentials (renewed with each announce), none until it does;
   *  given here (`[]` for none: host candidates only), the tracker's are ignored. */
  iceServers?: RTCIceServer[];
  /** 'relay' connects through TURN relays only (hides the page's addresses); default 'all'. */
  iceTransportPolicy?: 'all' | 'relay';
  /** Most connections per torrent (default 32). */
  maxConnections?: number;
  /** Upload limit per torrent in bytes per second (default unlimited). */
  uploadLimit?: number;
}

/** Options of `Client.addTorrent()`. */
export interface TorrentOptions {
  /** The web seed URL; overrides the torrent's `url-list`. */
  webSeed?: string;
  /** Piece order: 'streaming' (default: playback window first, then in order), 'rarest' or 'sequential'. */
  strategy?: 'streaming' | 'rarest' | 'sequential';
}

/** A torrent's counters (bytes) and rates (bytes per second). */
export interface Stats {
  totalBytes: number; verifiedBytes: number; piecesVerified: number; piecesTotal: number;
  p2pBytes: number; httpBytes: number; httpBytesReceived: number; wastedBytes: number;
  uploadedBytes: number; p2pRate: number; httpRate: number; uploadRate: number;
  peers: number; banned: number; hashFailures: number;
}

/** One connection of a torrent. `key` is the `peer` of events. */
export interface PeerInfo {
  key: number; peerId: string | null; pieces: number; isSeed: boolean;
  amChoking: boolean; amInterested: boolean; peerChoking: boolean; peerInterested: boolean;
  requestsOut: number; requestsIn: number;
  /** Where the peer plays (a byte offset), or null if it does not play or never said. */
  playhead: number | null;
  downloaded: number; uploaded: number;
  downloadRate: number; uploadRate: number;
}

/** What listeners of `onEvent` receive. */
export type ClientEvent =
  | { type: 'piece'; infoHash: string; piece: number; state: 'missing' | 'requested' | 'verified';
      source: 'peer' | 'http' | null; peer: number | null }
  | { type: 'peer'; infoHash: string; state: 'connected' | 'disconnected' | 'banned' | 'failed';
      /** The connection's key; -1 for `failed` (a connection that never opened). */
      peer: number; peerId: string | null; reason: string | null }
  | { type: 'progress'; infoHash: string; stats: Stats }
  | { type: 'hashFailed'; infoHash: string; piece: number }
  | { type: 'httpFailed'; infoHash: string; piece: number; error: string }
  | { type: 'done'; infoHash: string }
  | { type: 'log'; infoHash: string | null; level: 'debug' | 'info' | 'warn' | 'error';
      message: string };
"#;
