//! ICE servers for the tracker's clients: STUN and TURN URLs, with
//! short-lived TURN credentials in the scheme of coturn's TURN REST API
//! (`use-auth-secret`).
//!
//! Given the secret shared with the TURN server, a credential for a peer is
//!
//! - username: `EXPIRY:PEER`, the expiry in Unix seconds, then the peer's
//!   name (the hex of its `peer_id` on the WebSocket, a random name on
//!   `GET /api/ice`);
//! - credential: base64(HMAC-SHA1(secret, username)).
//!
//! The TURN server recomputes the credential from the username and refuses it
//! once the expiry has passed, so a credential read from a page is of no use
//! for long, and the secret never leaves the tracker. The secret's `Debug`
//! form hides it; the tracker writes neither it nor a credential to a log or a
//! metric.
//!
//! Grants travel as one JSON object, the same in the announce reply
//! (`x_cs_ice`) and at `GET /api/ice`:
//! `{"iceServers":[{"urls":[..]},{"urls":[..],"username":..,"credential":..}],
//! "ttl":<seconds>,"expires":<unix seconds>}`. `iceServers` is a list of
//! `RTCIceServer`s as a browser's `RTCPeerConnection` takes them.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use hmac::{Hmac, Mac as _};
use serde::Deserialize;
use sha1::Sha1;

use crate::Tracker;

/// The shortest credential lifetime accepted.
pub const MIN_TTL: Duration = Duration::from_secs(60);
/// The longest credential lifetime accepted.
pub const MAX_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// The longest STUN/TURN URL accepted.
const MAX_URL: usize = 512;
/// The longest peer name `GET /api/ice?peer=` accepts.
const MAX_PEER_NAME: usize = 64;

/// The secret shared with the TURN server (coturn's `static-auth-secret`).
/// Its `Debug` form does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct TurnSecret(Box<str>);

impl TurnSecret {
    /// Wraps a secret; empty is refused.
    pub fn new(secret: impl Into<String>) -> Result<Self, IceConfigError> {
        let secret: String = secret.into();
        if secret.is_empty() {
            return Err(IceConfigError::EmptySecret);
        }
        Ok(Self(secret.into_boxed_str()))
    }
}

impl std::str::FromStr for TurnSecret {
    type Err = IceConfigError;

    fn from_str(secret: &str) -> Result<Self, Self::Err> {
        Self::new(secret)
    }
}

impl fmt::Debug for TurnSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TurnSecret(..)")
    }
}

/// The ICE servers the tracker hands its clients
/// ([`Config::ice`](crate::Config::ice)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceConfig {
    /// STUN and TURN URLs (`stun:`, `stuns:`, `turn:`, `turns:`), e.g.
    /// `turn:turn.example:3478?transport=udp`. TURN URLs need
    /// [`turn_secret`](Self::turn_secret).
    pub urls: Vec<String>,
    /// The TURN server's shared secret; credentials for the TURN URLs are
    /// made from it.
    pub turn_secret: Option<TurnSecret>,
    /// How long a credential lasts. Clients renew theirs with every
    /// announce, so it must be at least twice the announce interval. A
    /// connection relayed through TURN that outlives its credential may be
    /// cut when the TURN server checks it again (on refreshing the
    /// allocation); clients then connect again with fresh ones, so keep it
    /// longer than a viewing session. [`MIN_TTL`] to [`MAX_TTL`]. Default:
    /// 24 h.
    pub ttl: Duration,
}

impl Default for IceConfig {
    fn default() -> Self {
        Self {
            urls: Vec::new(),
            turn_secret: None,
            ttl: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why an [`IceConfig`] is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IceConfigError {
    /// The TURN secret is empty.
    #[error("the TURN secret is empty")]
    EmptySecret,
    /// A URL is not a STUN or TURN URL.
    #[error("{0:?} is not a stun:, stuns:, turn: or turns: URL")]
    BadUrl(String),
    /// TURN URLs without a secret to make credentials from.
    #[error("TURN URL {0:?} given without a TURN secret")]
    NoSecret(String),
    /// A secret without a TURN URL to use it on.
    #[error("a TURN secret is given but no turn: or turns: URL")]
    NoTurnUrl,
    /// No URL at all.
    #[error("no STUN or TURN URL given")]
    NoUrl,
    /// The lifetime is out of bounds.
    #[error("credential lifetime {0:?} is outside {MIN_TTL:?}..={MAX_TTL:?}")]
    Ttl(Duration),
    /// The lifetime does not outlast the announce interval, so clients
    /// could not renew in time.
    #[error(
        "credential lifetime {ttl:?} must be at least twice the announce interval {interval:?}"
    )]
    TtlBelowInterval {
        /// The lifetime.
        ttl: Duration,
        /// The announce interval.
        interval: Duration,
    },
}

/// Makes grants: built once from the configuration, checked.
#[derive(Debug)]
pub(crate) struct IceIssuer {
    stun: Vec<String>,
    turn: Vec<String>,
    secret: Option<TurnSecret>,
    ttl: Duration,
}

fn is_turn(url: &str) -> bool {
    url.starts_with("turn:") || url.starts_with("turns:")
}

fn is_stun(url: &str) -> bool {
    url.starts_with("stun:") || url.starts_with("stuns:")
}

impl IceIssuer {
    /// Checks `config`; `announce_interval` is how often clients renew.
    pub(crate) fn new(
        config: &IceConfig,
        announce_interval: Duration,
    ) -> Result<Self, IceConfigError> {
        if !(MIN_TTL..=MAX_TTL).contains(&config.ttl) {
            return Err(IceConfigError::Ttl(config.ttl));
        }
        if config.ttl < announce_interval * 2 {
            return Err(IceConfigError::TtlBelowInterval {
                ttl: config.ttl,
                interval: announce_interval,
            });
        }
        let mut stun = Vec::new();
        let mut turn = Vec::new();
        for url in &config.urls {
            let printable =
                url.len() <= MAX_URL && url.len() > 6 && url.bytes().all(|b| b.is_ascii_graphic());
            if printable && is_turn(url) {
                if config.turn_secret.is_none() {
                    return Err(IceConfigError::NoSecret(url.clone()));
                }
                turn.push(url.clone());
            } else if printable && is_stun(url) {
                stun.push(url.clone());
            } else {
                return Err(IceConfigError::BadUrl(url.clone()));
            }
        }
        if config.turn_secret.is_some() && turn.is_empty() {
            return Err(IceConfigError::NoTurnUrl);
        }
        if stun.is_empty() && turn.is_empty() {
            return Err(IceConfigError::NoUrl);
        }
        Ok(Self {
            stun,
            turn,
            secret: config.turn_secret.clone(),
            ttl: config.ttl,
        })
    }

    /// A grant for `peer` (a name without `:`), valid from `now` for the
    /// configured lifetime: the JSON object described in the [module
    /// docs](self).
    pub(crate) fn grant(&self, peer: &str, now: SystemTime) -> String {
        let now_unix = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let expires = now_unix.saturating_add(self.ttl.as_secs());
        let mut servers = Vec::with_capacity(2);
        if !self.stun.is_empty() {
            servers.push(serde_json::json!({ "urls": self.stun }));
        }
        if let Some(secret) = &self.secret {
            let username = format!("{expires}:{peer}");
            let credential = credential(secret, &username);
            servers.push(serde_json::json!({
                "urls": self.turn,
                "username": username,
                "credential": credential,
            }));
        }
        serde_json::json!({
            "iceServers": servers,
            "ttl": self.ttl.as_secs(),
            "expires": expires,
        })
        .to_string()
    }
}

/// base64(HMAC-SHA1(secret, username)), the TURN REST API's password.
pub(crate) fn credential(secret: &TurnSecret, username: &str) -> String {
    // HMAC takes a key of any length.
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(secret.0.as_bytes()) else {
        return String::new();
    };
    mac.update(username.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The peer name in a username: the hex of a 20-byte `peer_id`.
pub(crate) fn peer_name(peer_id: &[u8; 20]) -> String {
    hex::encode(peer_id)
}

#[derive(Debug, Deserialize)]
pub(crate) struct IceQuery {
    peer: Option<String>,
}

/// `GET /api/ice?peer=`: a grant, for clients that do not announce over
/// the WebSocket first (a page that sets up its connections early).
/// `peer` (letters, digits, `-`, `_`, `.`; at most 64) names the peer in the
/// username, a random name otherwise. 404 when the tracker issues no ICE
/// servers. Never cached.
pub(crate) async fn api_ice(State(tracker): State<Tracker>, Query(q): Query<IceQuery>) -> Response {
    let Some(issuer) = &tracker.inner.ice else {
        return (
            StatusCode::NOT_FOUND,
            "this tracker issues no ICE servers\n",
        )
            .into_response();
    };
    let peer = match q.peer {
        Some(peer) => {
            let valid = !peer.is_empty()
                && peer.len() <= MAX_PEER_NAME
                && peer
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
            if !valid {
                return (
                    StatusCode::BAD_REQUEST,
                    "peer must be 1 to 64 letters, digits, '-', '_' or '.'\n",
                )
                    .into_response();
            }
            peer
        }
        None => format!("web-{:016x}", fastrand::u64(..)),
    };
    let body = issuer.grant(&peer, SystemTime::now());
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::Value;

    fn config(urls: &[&str], secret: Option<&str>) -> IceConfig {
        IceConfig {
            urls: urls.iter().map(|u| (*u).to_owned()).collect(),
            turn_secret: secret.map(|s| TurnSecret::new(s).unwrap()),
            ttl: Duration::from_secs(3600),
        }
    }

    const INTERVAL: Duration = Duration::from_secs(120);

    #[test]
    fn the_credential_matches_an_independent_hmac_sha1() {
        // `printf %s '1433895918:turnuser' | openssl dgst -sha1 -hmac north -binary | base64`
        let secret = TurnSecret::new("north").unwrap();
        assert_eq!(
            credential(&secret, "1433895918:turnuser"),
            "+EWkBV2whfsqU7GHVTngPxdVht8="
        );
        // RFC 2202 test case 2 (key "Jefe"), hex effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        let jefe = TurnSecret::new("Jefe").unwrap();
        assert_eq!(
            credential(&jefe, "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn a_grant_has_stun_and_turn_servers_with_an_expiring_username() {
        let issuer = IceIssuer::new(
            &config(
                &["stun:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=udp"],
                Some("north"),
            ),
            INTERVAL,
        )
        .unwrap();
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let grant: Value = serde_json::from_str(&issuer.grant("peer1", now)).unwrap();
        assert_eq!(grant["ttl"], 3600);
        assert_eq!(grant["expires"], 1_003_600);
        let servers = grant["iceServers"].as_array().unwrap();
        assert_eq!(servers.len(), 2);
        assert_eq!(servers[0]["urls"][0], "stun:127.0.0.1:3478");
        assert!(servers[0].get("username").is_none());
        assert_eq!(servers[1]["urls"][0], "turn:127.0.0.1:3478?transport=udp");
        assert_eq!(servers[1]["username"], "1003600:peer1");
        let secret = TurnSecret::new("north").unwrap();
        assert_eq!(
            servers[1]["credential"].as_str().unwrap(),
            credential(&secret, "1003600:peer1")
        );
    }

    #[test]
    fn stun_alone_needs_no_secret() {
        let issuer = IceIssuer::new(&config(&["stun:stun.example:3478"], None), INTERVAL).unwrap();
        let grant: Value = serde_json::from_str(&issuer.grant("p", SystemTime::now())).unwrap();
        assert_eq!(grant["iceServers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn bad_configurations_are_refused() {
        let check =
            |urls: &[&str], secret: Option<&str>| IceIssuer::new(&config(urls, secret), INTERVAL);
        assert_eq!(
            check(&["turn:x:3478"], None).unwrap_err(),
            IceConfigError::NoSecret("turn:x:3478".into())
        );
        assert_eq!(
            check(&["stun:x:3478"], Some("s")).unwrap_err(),
            IceConfigError::NoTurnUrl
        );
        assert_eq!(check(&[], None).unwrap_err(), IceConfigError::NoUrl);
        for bad in ["http://x", "turn x", "", "stun:", "turn:\u{7f}x"] {
            assert!(
                matches!(check(&[bad], Some("s")), Err(IceConfigError::BadUrl(_))),
                "{bad:?}"
            );
        }
        assert_eq!(
            TurnSecret::new("").unwrap_err(),
            IceConfigError::EmptySecret
        );
        let mut short = config(&["turn:x:3478"], Some("s"));
        short.ttl = Duration::from_secs(10);
        assert!(matches!(
            IceIssuer::new(&short, INTERVAL),
            Err(IceConfigError::Ttl(_))
        ));
        short.ttl = Duration::from_secs(200);
        assert!(matches!(
            IceIssuer::new(&short, INTERVAL),
            Err(IceConfigError::TtlBelowInterval { .. })
        ));
    }

    #[test]
    fn the_secret_does_not_show_in_debug() {
        let config = config(&["turn:x:3478"], Some("hunter2-secret"));
        assert!(!format!("{config:?}").contains("hunter2"));
        let issuer = IceIssuer::new(&config, INTERVAL).unwrap();
        assert!(!format!("{issuer:?}").contains("hunter2"));
    }
}
