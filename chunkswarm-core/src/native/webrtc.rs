//! WebRTC data channels with webrtc-rs: one ordered, reliable channel per
//! connection, non-trickle offers and answers, and send pacing on the
//! channel's buffered amount.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::{Bytes, BytesMut};
use futures::StreamExt as _;
use futures::channel::mpsc;
use rtc::ice::mdns::MulticastDnsMode;
use tokio::sync::{Mutex, watch};
use webrtc::data_channel::{
    DataChannel, DataChannelEvent, RTCDataChannelInit, RTCDataChannelState,
};
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCConfigurationBuilder,
    RTCIceGatheringState, RTCIceServer, RTCIceTransportPolicy, RTCPeerConnectionState,
    RTCSessionDescription, SettingEngineBuilder,
};

use crate::driver::{
    ChannelClosed, ChannelEvent, ChannelSender, ConnectError, IceGrant, IceServer, Offered,
    PeerChannel, PeerConnector, PendingConnection,
};

/// The data channel's label.
const LABEL: &str = "chunkswarm";
/// The largest data-channel message sent: what every stack accepts (webrtc-rs
/// and Chromium both take at least 64 KiB).
const MAX_MESSAGE: usize = 64 << 10;

/// How connections are made.
#[derive(Debug, Clone, PartialEq)]
pub struct WebRtcConfig {
    /// STUN/TURN servers: used until the tracker names some (with
    /// [`ice_from_tracker`](Self::ice_from_tracker)), always otherwise. None in
    /// tests (none is reachable).
    pub ice_servers: Vec<IceServer>,
    /// Use the STUN/TURN servers and short-lived TURN credentials the
    /// tracker hands out in its announce replies, the latest for each new
    /// connection (open ones keep theirs). Default: true.
    pub ice_from_tracker: bool,
    /// Only relayed (TURN) candidates: ICE transport policy `relay`. For
    /// privacy, and to test a TURN server. Default: false.
    pub relay_only: bool,
    /// Local UDP addresses to bind: `0.0.0.0:0` for every interface (which
    /// skips loopback), `127.0.0.1:0` for loopback only.
    pub udp_bind: Vec<String>,
    /// Resolve remote `.local` (mDNS) candidates, as browsers send them. Off
    /// in tests: it multicasts on the host's interfaces.
    pub mdns: bool,
    /// Above this many buffered bytes the channel reports not writable.
    pub high_water: u32,
    /// Below this many it reports writable again.
    pub low_water: u32,
    /// How long ICE gathering may take before the SDP is sent as it is.
    pub gather_timeout: Duration,
    /// UDP socket buffer size asked of the kernel (capped by
    /// `net.core.rmem_max`/`wmem_max`); `None` keeps the system default.
    /// Large buffers keep a fast sender's bursts from being dropped.
    pub udp_socket_buffer: Option<usize>,
}

impl Default for WebRtcConfig {
    fn default() -> Self {
        Self {
            ice_servers: Vec::new(),
            ice_from_tracker: true,
            relay_only: false,
            udp_bind: vec!["0.0.0.0:0".into()],
            mdns: true,
            high_water: 1 << 20,
            low_water: 256 << 10,
            gather_timeout: Duration::from_secs(5),
            udp_socket_buffer: Some(4 << 20),
        }
    }
}

impl WebRtcConfig {
    /// Loopback only, no mDNS, no ICE servers: the setting for tests.
    pub fn loopback() -> Self {
        Self {
            udp_bind: vec!["127.0.0.1:0".into()],
            mdns: false,
            ..Self::default()
        }
    }
}

/// Makes WebRTC connections for the driver.
#[derive(Debug, Clone)]
pub struct WebRtcConnector {
    config: Arc<WebRtcConfig>,
    /// The latest ICE servers from the tracker.
    granted: Arc<std::sync::RwLock<Option<IceGrant>>>,
}

impl WebRtcConnector {
    /// A connector with these settings.
    pub fn new(config: WebRtcConfig) -> Self {
        Self {
            config: Arc::new(config),
            granted: Arc::default(),
        }
    }

    /// The servers a new connection uses: the tracker's latest unexpired
    /// grant, or the configured ones.
    fn ice_servers(&self) -> Vec<IceServer> {
        let now_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let granted = self
            .granted
            .read()
            .ok()
            .and_then(|g| g.clone())
            .filter(|g| !g.expired(now_unix));
        match granted {
            Some(grant) => grant.servers,
            None => self.config.ice_servers.clone(),
        }
    }

    async fn build(&self) -> Result<(Arc<dyn PeerConnection>, Arc<Handler>), ConnectError> {
        let handler = Arc::new(Handler::new());
        let ice_servers = self
            .ice_servers()
            .into_iter()
            .map(|s| RTCIceServer {
                urls: s.urls,
                username: s.username,
                credential: s.credential,
            })
            .collect();
        let policy = if self.config.relay_only {
            RTCIceTransportPolicy::Relay
        } else {
            RTCIceTransportPolicy::All
        };
        let mdns = if self.config.mdns {
            MulticastDnsMode::QueryOnly
        } else {
            MulticastDnsMode::Disabled
        };
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(mdns)
            .build();
        let mut builder = PeerConnectionBuilder::new();
        if let Some(runtime) = self
            .config
            .udp_socket_buffer
            .and_then(super::runtime::SocketBufferRuntime::shared)
        {
            builder = builder.with_runtime(runtime);
        }
        let pc = builder
            .with_configuration(
                RTCConfigurationBuilder::new()
                    .with_ice_servers(ice_servers)
                    .with_ice_transport_policy(policy)
                    .build(),
            )
            .with_setting_engine(settings)
            .with_handler(handler.clone() as Arc<dyn PeerConnectionEventHandler>)
            .with_udp_addrs(self.config.udp_bind.clone())
            .build()
            .await
            .map_err(failed)?;
        Ok((Arc::new(pc), handler))
    }

    /// Waits (bounded) for ICE gathering, then returns the local SDP.
    async fn gathered_sdp(
        &self,
        pc: &Arc<dyn PeerConnection>,
        handler: &Handler,
    ) -> Result<String, ConnectError> {
        let mut gathering = handler.gathering.subscribe();
        let complete = gathering.wait_for(|s| *s == RTCIceGatheringState::Complete);
        if tokio::time::timeout(self.config.gather_timeout, complete)
            .await
            .is_err()
        {
            tracing::debug!("ICE gathering timed out; sending the candidates so far");
        }
        let sdp = pc
            .local_description()
            .await
            .map(|d| d.sdp)
            .ok_or_else(|| ConnectError::Failed("no local description".into()))?;
        let candidates = sdp.matches("a=candidate:").count();
        let relayed = sdp.matches(" typ relay").count();
        tracing::debug!(candidates, relayed, "local description ready");
        Ok(sdp)
    }
}

fn failed(e: impl std::fmt::Display) -> ConnectError {
    ConnectError::Failed(e.to_string())
}

#[async_trait]
impl PeerConnector for WebRtcConnector {
    async fn create_offer(&self) -> Result<Offered, ConnectError> {
        let (pc, handler) = self.build().await?;
        let init = RTCDataChannelInit {
            ordered: true,
            ..Default::default()
        };
        let dc = pc
            .create_data_channel(LABEL, Some(init))
            .await
            .map_err(failed)?;
        let offer = pc.create_offer(None).await.map_err(failed)?;
        pc.set_local_description(offer).await.map_err(failed)?;
        let sdp = self.gathered_sdp(&pc, &handler).await?;
        let pending = Pending {
            pc: Some(pc),
            handler,
            channel: Some(dc),
            config: self.config.clone(),
        };
        Ok(Offered {
            sdp,
            pending: Box::new(pending),
        })
    }

    async fn accept_offer(&self, offer_sdp: &str) -> Result<Offered, ConnectError> {
        let offer = RTCSessionDescription::offer(offer_sdp.to_owned())
            .map_err(|e| ConnectError::BadSdp(e.to_string()))?;
        let (pc, handler) = self.build().await?;
        let mut pending = Pending {
            pc: Some(pc.clone()),
            handler: handler.clone(),
            channel: None,
            config: self.config.clone(),
        };
        pc.set_remote_description(offer)
            .await
            .map_err(|e| ConnectError::BadSdp(e.to_string()))?;
        let answer = pc.create_answer(None).await.map_err(failed)?;
        pc.set_local_description(answer).await.map_err(failed)?;
        let sdp = self.gathered_sdp(&pc, &handler).await?;
        pending.channel = None;
        Ok(Offered {
            sdp,
            pending: Box::new(pending),
        })
    }

    fn set_ice_servers(&self, grant: &IceGrant) {
        if !self.config.ice_from_tracker {
            return;
        }
        if let Ok(mut granted) = self.granted.write() {
            if granted
                .as_ref()
                .is_none_or(|g| g.servers.len() != grant.servers.len())
            {
                let urls: Vec<&String> = grant.servers.iter().flat_map(|s| &s.urls).collect();
                tracing::info!(?urls, expires = ?grant.expires, "ICE servers from the tracker");
            }
            *granted = Some(grant.clone());
        }
    }
}

/// The peer connection's callbacks, turned into watchable state.
struct Handler {
    gathering: watch::Sender<RTCIceGatheringState>,
    state: watch::Sender<RTCPeerConnectionState>,
    channel: Mutex<Option<Arc<dyn DataChannel>>>,
    channel_ready: watch::Sender<bool>,
}

impl Handler {
    fn new() -> Self {
        Self {
            gathering: watch::Sender::new(RTCIceGatheringState::New),
            state: watch::Sender::new(RTCPeerConnectionState::New),
            channel: Mutex::new(None),
            channel_ready: watch::Sender::new(false),
        }
    }
}

#[async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathering.send_replace(state);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        self.state.send_replace(state);
    }

    async fn on_data_channel(&self, data_channel: Arc<dyn DataChannel>) {
        let mut slot = self.channel.lock().await;
        if slot.is_none() {
            *slot = Some(data_channel);
            self.channel_ready.send_replace(true);
        }
    }
}

/// A connection offered or answered, not open yet. Dropping it closes the
/// peer connection.
struct Pending {
    pc: Option<Arc<dyn PeerConnection>>,
    handler: Arc<Handler>,
    /// Our own channel (offerer); the answerer gets it from the handler.
    channel: Option<Arc<dyn DataChannel>>,
    config: Arc<WebRtcConfig>,
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(pc) = self.pc.take() {
            tokio::spawn(async move {
                let _ = pc.close().await;
            });
        }
    }
}

fn is_dead(state: RTCPeerConnectionState) -> bool {
    matches!(
        state,
        RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
    )
}

/// Completes when the connection fails or closes (or its handler is gone).
async fn died(state: &mut watch::Receiver<RTCPeerConnectionState>) {
    let _ = state.wait_for(|s| is_dead(*s)).await.map(|_| ());
}

#[async_trait]
impl PendingConnection for Pending {
    async fn open(
        mut self: Box<Self>,
        answer_sdp: Option<String>,
    ) -> Result<PeerChannel, ConnectError> {
        let pc = self
            .pc
            .clone()
            .ok_or_else(|| ConnectError::Failed("already used".into()))?;
        if let Some(answer) = answer_sdp {
            let answer = RTCSessionDescription::answer(answer)
                .map_err(|e| ConnectError::BadSdp(e.to_string()))?;
            pc.set_remote_description(answer)
                .await
                .map_err(|e| ConnectError::BadSdp(e.to_string()))?;
        }
        let mut state = self.handler.state.subscribe();
        let dc = match self.channel.take() {
            Some(dc) => dc,
            None => {
                let mut ready = self.handler.channel_ready.subscribe();
                tokio::select! {
                    _ = ready.wait_for(|r| *r) => {}
                    () = died(&mut state) => {
                        return Err(ConnectError::Failed("connection failed".into()));
                    }
                }
                self.handler
                    .channel
                    .lock()
                    .await
                    .clone()
                    .ok_or_else(|| ConnectError::Failed("no data channel".into()))?
            }
        };
        // Wait for the channel to open; keep anything that arrives meanwhile.
        let mut early = Vec::new();
        if dc.ready_state().await.map_err(failed)? != RTCDataChannelState::Open {
            loop {
                let event = tokio::select! {
                    event = dc.poll() => event,
                    () = died(&mut state) => None,
                };
                match event {
                    Some(DataChannelEvent::OnOpen) => break,
                    Some(DataChannelEvent::OnMessage(message)) => early.push(message.data.freeze()),
                    Some(DataChannelEvent::OnClose) | None => {
                        return Err(ConnectError::Failed("channel closed before opening".into()));
                    }
                    Some(_) => {}
                }
            }
        }
        dc.set_buffered_amount_high_threshold(self.config.high_water)
            .await
            .map_err(failed)?;
        dc.set_buffered_amount_low_threshold(self.config.low_water)
            .await
            .map_err(failed)?;
        self.pc = None;
        Ok(start_pump(pc, dc, state, early))
    }
}

enum Outgoing {
    Data(Bytes),
    Close,
}

#[derive(Debug)]
struct Sender {
    queue: mpsc::UnboundedSender<Outgoing>,
}

impl ChannelSender for Sender {
    fn send(&self, data: Bytes) -> Result<(), ChannelClosed> {
        self.queue
            .unbounded_send(Outgoing::Data(data))
            .map_err(|_| ChannelClosed)
    }

    fn close(&self) {
        let _ = self.queue.unbounded_send(Outgoing::Close);
    }
}

/// Spawns the channel's task: writes queued bytes in messages of at most
/// [`MAX_MESSAGE`], turns channel events into [`ChannelEvent`]s, and closes
/// the connection when either side is done.
fn start_pump(
    pc: Arc<dyn PeerConnection>,
    dc: Arc<dyn DataChannel>,
    mut state: watch::Receiver<RTCPeerConnectionState>,
    early: Vec<Bytes>,
) -> PeerChannel {
    let (queue, mut outgoing) = mpsc::unbounded::<Outgoing>();
    let (events, incoming) = mpsc::unbounded::<ChannelEvent>();
    for data in early {
        let _ = events.unbounded_send(ChannelEvent::Data(data));
    }
    tokio::spawn(async move {
        loop {
            tokio::select! {
                next = outgoing.next() => match next {
                    Some(Outgoing::Data(data)) => {
                        let (batch, close) = coalesce(data, &mut outgoing);
                        if !send_all(&*dc, batch).await || close {
                            break;
                        }
                    }
                    Some(Outgoing::Close) | None => break,
                },
                event = dc.poll() => {
                    let event = match event {
                        Some(DataChannelEvent::OnMessage(m)) => ChannelEvent::Data(m.data.freeze()),
                        Some(DataChannelEvent::OnBufferedAmountHigh) => ChannelEvent::Writable(false),
                        Some(DataChannelEvent::OnBufferedAmountLow) => ChannelEvent::Writable(true),
                        Some(DataChannelEvent::OnClose) | None => break,
                        Some(_) => continue,
                    };
                    if events.unbounded_send(event).is_err() {
                        break;
                    }
                }
                () = died(&mut state) => break,
            }
        }
        drop(events);
        let _ = dc.close().await;
        let _ = pc.close().await;
    });
    PeerChannel {
        sender: Box::new(Sender { queue }),
        events: Box::pin(incoming),
    }
}

/// Joins `first` with the data queued behind it, up to [`MAX_MESSAGE`]
/// bytes, so the wire's many small messages (a 16 KiB block and its header,
/// haves, requests) go out in few channel messages: each send costs a lock
/// and a wake-up of the connection's task. Also says whether a close was
/// queued behind the data.
fn coalesce(first: Bytes, outgoing: &mut mpsc::UnboundedReceiver<Outgoing>) -> (Bytes, bool) {
    if first.len() >= MAX_MESSAGE {
        return (first, false);
    }
    let mut batch: Option<BytesMut> = None;
    while batch.as_ref().map_or(first.len(), BytesMut::len) < MAX_MESSAGE {
        match outgoing.try_recv() {
            Ok(Outgoing::Data(more)) => {
                let joined = batch.get_or_insert_with(|| {
                    let mut joined = BytesMut::with_capacity(MAX_MESSAGE);
                    joined.extend_from_slice(&first);
                    joined
                });
                joined.extend_from_slice(&more);
            }
            Ok(Outgoing::Close) => return (batch.map_or(first.clone(), BytesMut::freeze), true),
            Err(_) => break,
        }
    }
    (batch.map_or(first, BytesMut::freeze), false)
}

/// Sends `data` in messages of at most [`MAX_MESSAGE`]; `false` once closed.
async fn send_all(dc: &dyn DataChannel, mut data: Bytes) -> bool {
    while !data.is_empty() {
        let part = data.split_to(data.len().min(MAX_MESSAGE));
        if dc.send(BytesMut::from(part)).await.is_err() {
            return false;
        }
    }
    true
}
