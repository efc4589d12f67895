//! STUN and TURN servers, as the tracker hands them out.
//!
//! A chunkswarm tracker configured with ICE servers puts a grant in every
//! announce reply (`x_cs_ice`, also at its `GET /api/ice`):
//! `{"iceServers":[{"urls":[..],"username":..,"credential":..}],"ttl","expires"}`,
//! the TURN credentials short-lived (the TURN REST API scheme). The driver
//! hands each grant to its [`PeerConnector`](super::PeerConnector), which
//! uses the latest for the connections it makes next; connections already
//! open keep theirs.

use std::fmt;

use serde::Deserialize;
use serde_json::value::RawValue;

/// The most servers and URLs read from one grant.
const MAX_SERVERS: usize = 16;
/// The longest URL, user name or credential read.
const MAX_FIELD: usize = 512;

/// A STUN or TURN server.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp`, ...
    pub urls: Vec<String>,
    /// TURN user name (empty for STUN).
    pub username: String,
    /// TURN password (empty for STUN).
    pub credential: String,
}

impl fmt::Debug for IceServer {
    /// Leaves the credential out, so it reaches no log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IceServer")
            .field("urls", &self.urls)
            .field("username", &self.username)
            .field("credential", &"..")
            .finish()
    }
}

/// ICE servers from the tracker, with the time their credentials expire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceGrant {
    /// The servers.
    pub servers: Vec<IceServer>,
    /// When the credentials expire, in Unix seconds, if the tracker said.
    pub expires: Option<u64>,
}

impl IceGrant {
    /// Reads a grant (`x_cs_ice`, or a `GET /api/ice` answer) from its JSON
    /// text; `None` if it holds no usable server. Entries that are not
    /// servers, and URLs or fields that are not strings of at most 512
    /// bytes, are skipped; at most 16 servers and 16 URLs each are read.
    pub fn parse(text: &str) -> Option<Self> {
        let wire: WireGrant<'_> = serde_json::from_str(text).ok()?;
        let servers: Vec<IceServer> = wire
            .servers
            .iter()
            .take(MAX_SERVERS)
            .filter_map(|raw| {
                let server: WireServer<'_> = serde_json::from_str(raw.get()).ok()?;
                let urls: Vec<String> = if server.urls.get().starts_with('[') {
                    let urls: Vec<&RawValue> = serde_json::from_str(server.urls.get()).ok()?;
                    urls.into_iter()
                        .take(MAX_SERVERS)
                        .filter_map(field)
                        .collect()
                } else {
                    vec![field(server.urls)?]
                };
                if urls.is_empty() {
                    return None;
                }
                Some(IceServer {
                    urls,
                    username: server.username.and_then(field).unwrap_or_default(),
                    credential: server.credential.and_then(field).unwrap_or_default(),
                })
            })
            .collect();
        if servers.is_empty() {
            return None;
        }
        Some(Self {
            servers,
            expires: wire
                .expires
                .and_then(|raw| serde_json::from_str(raw.get()).ok()),
        })
    }

    /// Whether the credentials have expired at `now_unix` (Unix seconds).
    pub fn expired(&self, now_unix: u64) -> bool {
        self.expires.is_some_and(|at| at <= now_unix)
    }
}

#[derive(Deserialize)]
struct WireGrant<'a> {
    #[serde(borrow, rename = "iceServers")]
    servers: Vec<&'a RawValue>,
    #[serde(borrow, default)]
    expires: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct WireServer<'a> {
    #[serde(borrow)]
    urls: &'a RawValue,
    #[serde(borrow, default)]
    username: Option<&'a RawValue>,
    #[serde(borrow, default)]
    credential: Option<&'a RawValue>,
}

/// A string field of at most [`MAX_FIELD`] bytes.
fn field(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get())
        .ok()
        .filter(|s| s.len() <= MAX_FIELD)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn a_tracker_grant_reads() {
        let grant = IceGrant::parse(
            &json!({
                "iceServers": [
                    {"urls": ["stun:127.0.0.1:3478"]},
                    {"urls": "turn:127.0.0.1:3478", "username": "99:p", "credential": "c2VjcmV0"},
                    {"urls": []},
                    "junk",
                ],
                "ttl": 60, "expires": 99,
            })
            .to_string(),
        )
        .unwrap();
        assert_eq!(grant.servers.len(), 2);
        assert_eq!(grant.servers[1].urls, ["turn:127.0.0.1:3478"]);
        assert_eq!(grant.servers[1].username, "99:p");
        assert_eq!(grant.expires, Some(99));
        assert!(grant.expired(99));
        assert!(!grant.expired(98));
        assert!(!format!("{grant:?}").contains("c2VjcmV0"));
    }

    #[test]
    fn nothing_usable_is_none() {
        for value in [
            json!(null),
            json!({}),
            json!({"iceServers": []}),
            json!({"iceServers": [{"urls": 5}]}),
            json!({"iceServers": "stun:x"}),
        ] {
            assert!(IceGrant::parse(&value.to_string()).is_none(), "{value}");
        }
    }
}
