//! Reading what the tracker writes: [`parse`] turns one text message into a
//! typed [`Reply`], borrowing from the text. Unknown fields are ignored;
//! anything else it cannot read is a [`ReplyError`], never a panic.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::{Announced, Failure, Relayed, Reply, Scraped, SwarmCounts};
use crate::metainfo::InfoHash;
use crate::swarm::{MAX_FACT_PIECES, SwarmFacts};
use crate::tracker_protocol::ids::{BinaryId, decode_binary, decode_json_binary};

/// Why a tracker message could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    /// Not a JSON object.
    #[error("not a JSON object")]
    Json,
    /// `action` is missing, not a string, or not `announce` or `scrape`.
    #[error("unknown action")]
    Action,
    /// `info_hash` is missing or not a 20-char binary string.
    #[error("bad or missing field `info_hash`")]
    InfoHash,
    /// A relayed offer or answer without a valid `peer_id`.
    #[error("bad or missing field `peer_id`")]
    PeerId,
    /// A relayed offer or answer without a valid `offer_id`.
    #[error("bad or missing field `offer_id`")]
    OfferId,
    /// A relayed offer or answer without an `sdp` string.
    #[error("bad or missing field `sdp`")]
    Sdp,
    /// A scrape answer whose `files` is not a map of info hashes to counts.
    #[error("bad or missing field `files`")]
    Files,
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default)]
    action: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "failure reason")]
    failure: Option<&'a RawValue>,
    #[serde(borrow, default, rename = "warning message")]
    warning: Option<&'a RawValue>,
    #[serde(borrow, default)]
    info_hash: Option<&'a RawValue>,
    #[serde(borrow, default)]
    peer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offer_id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    offer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    answer: Option<&'a RawValue>,
    #[serde(borrow, default)]
    interval: Option<&'a RawValue>,
    #[serde(borrow, default)]
    complete: Option<&'a RawValue>,
    #[serde(borrow, default)]
    incomplete: Option<&'a RawValue>,
    #[serde(borrow, default)]
    x_cs_ice: Option<&'a RawValue>,
    #[serde(borrow, default)]
    x_cs_swarm: Option<&'a RawValue>,
    #[serde(borrow, default)]
    files: Option<&'a RawValue>,
    #[serde(borrow, default)]
    flags: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Sdp<'a> {
    #[serde(borrow)]
    sdp: Cow<'a, str>,
}

#[derive(Deserialize)]
struct WireFacts {
    peers: u32,
    seeders: u32,
    first: u32,
    holders: Capped,
    fetch: Capped,
}

#[derive(Deserialize)]
struct WireCounts {
    complete: u32,
    incomplete: u32,
    downloaded: u64,
}

#[derive(Deserialize)]
struct Flags {
    min_request_interval: Option<u64>,
}

/// Parses one text message from the tracker.
///
/// A `failure reason` makes a [`Reply::Failure`] whatever the action; an
/// `announce` with an `offer` or `answer` is relayed from another peer,
/// otherwise it answers an announce. A malformed `x_cs_swarm` or count is
/// left out rather than failing the message (both are optional).
pub fn parse(text: &str) -> Result<Reply<'_>, ReplyError> {
    // serde would also read a struct from a JSON array.
    if !text.trim_start().starts_with('{') {
        return Err(ReplyError::Json);
    }
    let fields: Fields<'_> = serde_json::from_str(text).map_err(|_| ReplyError::Json)?;
    let info_hash = fields
        .info_hash
        .and_then(|raw| decode_json_binary(raw.get()))
        .map(InfoHash::new);
    if let Some(reason) = fields.failure.and_then(string) {
        return Ok(Reply::Failure(Failure { info_hash, reason }));
    }
    match fields.action.and_then(string).as_deref() {
        Some("announce") => {}
        Some("scrape") => return scrape(&fields).map(Reply::Scrape),
        _ => return Err(ReplyError::Action),
    }
    let info_hash = info_hash.ok_or(ReplyError::InfoHash)?;
    if let Some(offer) = fields.offer {
        return relayed(&fields, info_hash, offer).map(Reply::Offer);
    }
    if let Some(answer) = fields.answer {
        return relayed(&fields, info_hash, answer).map(Reply::Answer);
    }
    let count = |raw: Option<&RawValue>| raw.and_then(|raw| serde_json::from_str(raw.get()).ok());
    Ok(Reply::Announced(Announced {
        info_hash,
        interval: count(fields.interval),
        complete: count(fields.complete),
        incomplete: count(fields.incomplete),
        warning: fields.warning.and_then(string),
        ice: fields
            .x_cs_ice
            .map(RawValue::get)
            .filter(|text| text.starts_with('{')),
        facts: fields.x_cs_swarm.and_then(facts),
    }))
}

/// A JSON string, borrowed unless it has escapes.
#[derive(Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

fn string(raw: &RawValue) -> Option<Cow<'_, str>> {
    serde_json::from_str::<Text<'_>>(raw.get())
        .ok()
        .map(|t| t.0)
}

fn id(raw: Option<&RawValue>, error: ReplyError) -> Result<BinaryId, ReplyError> {
    raw.and_then(|raw| decode_json_binary(raw.get()))
        .map(BinaryId)
        .ok_or(error)
}

fn relayed<'a>(
    fields: &Fields<'a>,
    info_hash: InfoHash,
    body: &'a RawValue,
) -> Result<Relayed<'a>, ReplyError> {
    let from = id(fields.peer_id, ReplyError::PeerId)?;
    let offer_id = id(fields.offer_id, ReplyError::OfferId)?;
    let body: Sdp<'a> = serde_json::from_str(body.get()).map_err(|_| ReplyError::Sdp)?;
    Ok(Relayed {
        info_hash,
        from,
        offer_id,
        sdp: body.sdp,
    })
}

/// `x_cs_swarm`: `{"peers","seeders","first","holders":[..],"fetch":[..]}`,
/// lists cut to [`MAX_FACT_PIECES`].
fn facts(raw: &RawValue) -> Option<SwarmFacts> {
    let wire: WireFacts = serde_json::from_str(raw.get()).ok()?;
    Some(SwarmFacts {
        peers: wire.peers,
        seeders: wire.seeders,
        first: wire.first,
        holders: wire.holders.0,
        fetch: wire.fetch.0,
    })
}

fn scrape(fields: &Fields<'_>) -> Result<Scraped, ReplyError> {
    let files = fields.files.ok_or(ReplyError::Files)?;
    let files: ScrapeFiles = serde_json::from_str(files.get()).map_err(|_| ReplyError::Files)?;
    let min_request_interval = fields
        .flags
        .and_then(|raw| serde_json::from_str::<Flags>(raw.get()).ok())
        .and_then(|flags| flags.min_request_interval);
    Ok(Scraped {
        files: files.0,
        min_request_interval,
    })
}

/// A list of piece indices, keeping the first [`MAX_FACT_PIECES`] (which
/// must be indices) and skipping the rest unread.
struct Capped(Vec<u32>);

impl<'de> Deserialize<'de> for Capped {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CappedVisitor;
        impl<'de> Visitor<'de> for CappedVisitor {
            type Value = Capped;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of piece indices")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Capped, A::Error> {
                let mut kept =
                    Vec::with_capacity(seq.size_hint().unwrap_or(0).min(MAX_FACT_PIECES));
                while kept.len() < MAX_FACT_PIECES {
                    match seq.next_element::<u32>()? {
                        Some(index) => kept.push(index),
                        None => return Ok(Capped(kept)),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Capped(kept))
            }
        }
        deserializer.deserialize_seq(CappedVisitor)
    }
}

/// A scrape answer's `files`, in the order written.
struct ScrapeFiles(Vec<(InfoHash, SwarmCounts)>);

impl<'de> Deserialize<'de> for ScrapeFiles {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FilesVisitor;
        impl<'de> Visitor<'de> for FilesVisitor {
            type Value = ScrapeFiles;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of info hashes to swarm counts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ScrapeFiles, A::Error> {
                let mut files = Vec::new();
                while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
                    let info_hash = decode_binary(&key)
                        .map(InfoHash::new)
                        .ok_or_else(|| de::Error::custom("not an info hash"))?;
                    let counts: WireCounts = map.next_value()?;
                    let counts = SwarmCounts {
                        complete: counts.complete,
                        incomplete: counts.incomplete,
                        downloaded: counts.downloaded,
                    };
                    files.push((info_hash, counts));
                }
                Ok(ScrapeFiles(files))
            }
        }
        deserializer.deserialize_map(FilesVisitor)
    }
}
