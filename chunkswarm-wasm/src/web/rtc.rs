//! [`PeerConnector`] on `RTCPeerConnection`: one ordered, reliable data
//! channel labelled `chunkswarm` per connection, and non-trickle SDP (offers
//! and answers wait for ICE gathering, bounded by a timeout), as the
//! WebTorrent tracker protocol and the native adapter expect.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use async_trait::async_trait;
use chunkswarm_core::driver::{
    ConnectError, IceGrant, Offered, PeerChannel, PeerConnector, PendingConnection,
};
use futures::future::{self, Either};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    RtcConfiguration, RtcDataChannelInit, RtcIceTransportPolicy, RtcPeerConnection, RtcSdpType,
    RtcSessionDescriptionInit,
};

use super::channel::{Conn, Water};
use super::js_error;
use super::log::LogSink;
use super::sleep::Timeout;
use crate::model::LogLevel;

/// The data channel's label, shared with native peers.
pub const LABEL: &str = "chunkswarm";

/// How connections are made.
#[derive(Debug, Clone)]
pub struct RtcSettings {
    /// `RTCIceServer[]` for `RTCConfiguration.iceServers`, as the page gave
    /// them (an empty array: none, host candidates only). `None`: the
    /// servers the tracker hands out (with short-lived TURN credentials),
    /// the latest for each new connection; none until it does.
    pub ice_servers: Option<JsValue>,
    /// Only relayed candidates (`iceTransportPolicy: 'relay'`).
    pub relay_only: bool,
    /// Backpressure marks of each channel.
    pub water: Water,
    /// How long ICE gathering may take before the SDP is sent as it is.
    pub gather_timeout: Duration,
}

impl Default for RtcSettings {
    fn default() -> Self {
        Self {
            ice_servers: None,
            relay_only: false,
            water: Water {
                high: 1 << 20,
                low: 256 << 10,
            },
            gather_timeout: Duration::from_secs(5),
        }
    }
}

/// Makes WebRTC connections for the driver.
#[derive(Debug, Clone)]
pub struct WebRtcConnector {
    settings: RtcSettings,
    log: Option<LogSink>,
    granted: Rc<RefCell<Option<Granted>>>,
}

/// The tracker's latest ICE servers (`RTCIceServer[]`) and when their
/// credentials expire (Unix seconds).
type Granted = (JsValue, Option<u64>);

/// An `RTCIceServer[]` of the tracker's servers.
fn js_ice_servers(grant: &IceGrant) -> JsValue {
    let servers = js_sys::Array::new();
    for server in &grant.servers {
        let entry = js_sys::Object::new();
        let urls: js_sys::Array = server.urls.iter().map(|u| JsValue::from_str(u)).collect();
        let _ = js_sys::Reflect::set(&entry, &"urls".into(), &urls);
        if !server.username.is_empty() {
            let _ =
                js_sys::Reflect::set(&entry, &"username".into(), &server.username.as_str().into());
            let _ = js_sys::Reflect::set(
                &entry,
                &"credential".into(),
                &server.credential.as_str().into(),
            );
        }
        servers.push(&entry);
    }
    servers.into()
}

impl WebRtcConnector {
    /// A connector with these settings; connection steps are logged to `log`.
    pub fn new(settings: RtcSettings, log: Option<LogSink>) -> Self {
        Self {
            settings,
            log,
            granted: Rc::default(),
        }
    }

    /// The page's servers, else the tracker's latest unexpired ones.
    fn ice_servers(&self) -> Option<JsValue> {
        if let Some(servers) = &self.settings.ice_servers {
            return Some(servers.clone());
        }
        let now_unix = (js_sys::Date::now() / 1000.0) as u64;
        self.granted
            .borrow()
            .as_ref()
            .filter(|(_, expires)| expires.is_none_or(|at| at > now_unix))
            .map(|(servers, _)| servers.clone())
    }

    fn log(&self, level: LogLevel, message: String) {
        if let Some(log) = &self.log {
            log.log(level, None, message);
        }
    }

    fn build(&self) -> Result<Rc<Conn>, ConnectError> {
        let config = RtcConfiguration::new();
        let servers = self.ice_servers();
        if self.settings.relay_only {
            // Without a TURN server such a connection cannot work: fail now
            // rather than after the connect timeout.
            if servers.is_none() {
                return Err(ConnectError::Failed(
                    "relay only, and no TURN server yet".into(),
                ));
            }
            config.set_ice_transport_policy(RtcIceTransportPolicy::Relay);
        }
        if let Some(servers) = servers {
            config.set_ice_servers(&servers);
        }
        let pc = RtcPeerConnection::new_with_configuration(&config)
            .map_err(|e| ConnectError::Failed(js_error(&e)))?;
        Ok(Conn::new(pc, self.settings.water))
    }

    /// Waits (bounded) for ICE gathering, then returns the local SDP.
    async fn gathered_sdp(&self, conn: &Rc<Conn>) -> Result<String, ConnectError> {
        let gathered = future::poll_fn(|cx| {
            if conn.gathered() {
                return std::task::Poll::Ready(());
            }
            conn.wait(cx);
            std::task::Poll::Pending
        });
        let timeout = Timeout::new(self.settings.gather_timeout);
        if let Either::Right(_) = future::select(Box::pin(gathered), timeout).await {
            self.log(
                LogLevel::Debug,
                "ICE gathering timed out; sending the candidates so far".into(),
            );
        }
        conn.pc
            .local_description()
            .map(|d| d.sdp())
            .ok_or_else(|| ConnectError::Failed("no local description".into()))
    }
}

async fn call(promise: js_sys::Promise) -> Result<JsValue, String> {
    JsFuture::from(promise).await.map_err(|e| js_error(&e))
}

fn description(kind: RtcSdpType, sdp: &str) -> RtcSessionDescriptionInit {
    let init = RtcSessionDescriptionInit::new(kind);
    init.set_sdp(sdp);
    init
}

#[async_trait(?Send)]
impl PeerConnector for WebRtcConnector {
    async fn create_offer(&self) -> Result<Offered, ConnectError> {
        let conn = self.build()?;
        let init = RtcDataChannelInit::new();
        init.set_ordered(true);
        let dc = conn
            .pc
            .create_data_channel_with_data_channel_dict(LABEL, &init);
        conn.adopt(dc);
        let offer = call(conn.pc.create_offer())
            .await
            .map_err(ConnectError::Failed)?;
        call(
            conn.pc
                .set_local_description(offer.unchecked_ref::<RtcSessionDescriptionInit>()),
        )
        .await
        .map_err(ConnectError::Failed)?;
        let sdp = self.gathered_sdp(&conn).await?;
        self.log(LogLevel::Debug, "offer made".into());
        Ok(Offered {
            sdp,
            pending: Box::new(Pending {
                conn,
                log: self.log.clone(),
            }),
        })
    }

    async fn accept_offer(&self, offer_sdp: &str) -> Result<Offered, ConnectError> {
        let conn = self.build()?;
        conn.accept_channels();
        call(
            conn.pc
                .set_remote_description(&description(RtcSdpType::Offer, offer_sdp)),
        )
        .await
        .map_err(ConnectError::BadSdp)?;
        let answer = call(conn.pc.create_answer())
            .await
            .map_err(ConnectError::Failed)?;
        call(
            conn.pc
                .set_local_description(answer.unchecked_ref::<RtcSessionDescriptionInit>()),
        )
        .await
        .map_err(ConnectError::Failed)?;
        let sdp = self.gathered_sdp(&conn).await?;
        self.log(LogLevel::Debug, "offer answered".into());
        Ok(Offered {
            sdp,
            pending: Box::new(Pending {
                conn,
                log: self.log.clone(),
            }),
        })
    }

    fn set_ice_servers(&self, grant: &IceGrant) {
        if self.settings.ice_servers.is_some() {
            return;
        }
        let first = self.granted.borrow().is_none();
        if first {
            let urls: Vec<&str> = grant
                .servers
                .iter()
                .flat_map(|s| s.urls.iter().map(String::as_str))
                .collect();
            self.log(
                LogLevel::Info,
                format!("ICE servers from the tracker: {}", urls.join(", ")),
            );
        }
        *self.granted.borrow_mut() = Some((js_ice_servers(grant), grant.expires));
    }
}

/// A connection offered or answered, not open yet. Dropping it closes it.
struct Pending {
    conn: Rc<Conn>,
    log: Option<LogSink>,
}

#[async_trait(?Send)]
impl PendingConnection for Pending {
    async fn open(
        self: Box<Self>,
        answer_sdp: Option<String>,
    ) -> Result<PeerChannel, ConnectError> {
        let conn = self.conn.clone();
        if let Some(answer) = answer_sdp {
            call(
                conn.pc
                    .set_remote_description(&description(RtcSdpType::Answer, &answer)),
            )
            .await
            .map_err(ConnectError::BadSdp)?;
        }
        if let Some(log) = &self.log {
            log.log(LogLevel::Debug, None, "channel connecting".into());
        }
        future::poll_fn(|cx| {
            if conn.is_open() {
                return std::task::Poll::Ready(Ok(()));
            }
            if conn.is_dead() {
                return std::task::Poll::Ready(Err(ConnectError::Failed(
                    "connection failed or closed before the channel opened".into(),
                )));
            }
            conn.wait(cx);
            std::task::Poll::Pending
        })
        .await?;
        let (sender, events) = conn
            .split()
            .ok_or_else(|| ConnectError::Failed("channel already opened".into()))?;
        if let Some(log) = &self.log {
            log.log(LogLevel::Info, None, "channel open".into());
        }
        Ok(PeerChannel {
            sender: Box::new(sender),
            events: Box::pin(events),
        })
    }
}
