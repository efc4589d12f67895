//! [`PeerConnector`] on `RTCPeerConnection`: one ordered, reliable data
//! channel labelled `chunkswarm` per connection, and non-trickle SDP (offers
//! and answers wait for ICE gathering, bounded by a timeout), as the
//! WebTorrent tracker protocol and the native adapter expect.

use std::rc::Rc;
use std::time::Duration;

use async_trait::async_trait;
use chunkswarm_core::driver::{
    ConnectError, Offered, PeerChannel, PeerConnector, PendingConnection,
};
use futures::future::{self, Either};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    RtcConfiguration, RtcDataChannelInit, RtcPeerConnection, RtcSdpType, RtcSessionDescriptionInit,
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
    /// `RTCIceServer[]` for `RTCConfiguration.iceServers`; `None` or an empty
    /// array for none (tests: host candidates only).
    pub ice_servers: Option<JsValue>,
    /// Backpressure marks of each channel.
    pub water: Water,
    /// How long ICE gathering may take before the SDP is sent as it is.
    pub gather_timeout: Duration,
}

impl Default for RtcSettings {
    fn default() -> Self {
        Self {
            ice_servers: None,
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
}

impl WebRtcConnector {
    /// A connector with these settings; connection steps are logged to `log`.
    pub fn new(settings: RtcSettings, log: Option<LogSink>) -> Self {
        Self { settings, log }
    }

    fn log(&self, level: LogLevel, message: String) {
        if let Some(log) = &self.log {
            log.log(level, None, message);
        }
    }

    fn build(&self) -> Result<Rc<Conn>, ConnectError> {
        let config = RtcConfiguration::new();
        if let Some(servers) = &self.settings.ice_servers {
            config.set_ice_servers(servers);
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
