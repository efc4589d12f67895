//! The life of one WebSocket connection: a single task that reads client
//! messages, writes what other connections queued for it, and closes it when
//! it idles, misbehaves, or the tracker shuts down.

use std::time::{Duration, Instant};

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

use super::message::{Action, MessageError, Refusal};
use super::outbox::{Next, Outbox, outbox};
use super::websocket::{Incoming, ReadError, Reader, Writer, push_text};
use super::{handle, reply};
use crate::Tracker;
use crate::limits::{AbuseBudget, ConnectionSlot};
use crate::metrics::{Rejection, add};
use crate::registry::ConnId;
use crate::tracker::Inner;

/// Queued messages written before one flush.
const BATCH: u64 = 64;
/// Rate-limited messages in a row answered with a failure; the rest of the
/// run is dropped silently.
const RATE_REPLIES: u32 = 3;

/// A client that takes longer than this to take our bytes is dropped: its
/// task must not hang on a full socket while its queue fills.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

const CLOSE_NORMAL: u16 = 1000;
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_POLICY: u16 = 1008;

enum Event {
    Received(Option<Result<Incoming, ReadError>>),
    Timer,
}

/// Removes the connection from the registry and the counts however the task ends.
struct Registered<'a> {
    tracker: &'a Tracker,
    conn: ConnId,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        let inner = &self.tracker.inner;
        let gone = inner.registry().disconnect(self.conn);
        inner.cluster.forget(gone.peer_ids, gone.memberships);
        inner
            .metrics
            .connections_open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        inner.close_connection();
    }
}

/// Runs the connection to its end, once `upgrading` gives its socket.
///
/// A plain function returning an `async move` block, not an `async fn`: the
/// block uses its captures in place, where an `async fn` would hold a second
/// copy of them in every idle connection's task. Its task waits on two
/// things while the connection idles, the client's next message (with the
/// idle timer) and its queue ([`Outbox`]: messages from other connections,
/// pongs, the tracker's shutdown); whatever else it waits on only now and
/// then is boxed, so that idle tasks stay small.
#[allow(clippy::manual_async_fn)]
pub(super) fn run(
    tracker: Tracker,
    upgrading: OnUpgrade,
    slot: ConnectionSlot,
) -> impl Future<Output = ()> + Send {
    async move {
        let socket = match upgrading.await {
            Ok(upgraded) => TokioIo::new(upgraded),
            Err(e) => {
                tracing::debug!(error = %e, "WebSocket upgrade failed");
                tracker.inner.close_connection();
                return;
            }
        };
        let inner = &tracker.inner;
        let limits = &inner.config.limits;
        // Reading and writing go on side by side: a client that sends only
        // after it has read (as aquatic's load tester does) would otherwise
        // wait on the tracker's write while the tracker waits on its read.
        let (read, write) = tokio::io::split(socket);
        let (mut stream, mut sink) = (
            Reader::new(read, limits.max_message_bytes),
            Writer::new(write),
        );
        let conn = inner.next_conn_id();
        let (sender, mut queued) = outbox(limits.outbound_queue);
        // Replies to this client go through its own queue, behind what other
        // connections sent it, so reading never waits on writing.
        let own = sender.clone();
        inner.registry().connect(conn, sender);
        add(&inner.metrics.connections_open, 1);
        add(&inner.metrics.connections_total, 1);
        let _registered = Registered {
            tracker: &tracker,
            conn,
        };
        // A shutdown that began before the connection was in the registry
        // (after, `Tracker::shutdown` tells it through its queue).
        if inner.shutting_down() {
            own.shut_down();
        }

        let mut last_heard = Instant::now();
        let timer = tokio::time::sleep(limits.idle_timeout);
        tokio::pin!(timer);
        let mut abuse = AbuseBudget::new(limits.abuse, last_heard);
        // Rate-limited messages since the last one let through.
        let mut rate_limited = 0u32;

        let writer = async {
            loop {
                let next = match queued.next().await {
                    Next::Shutdown => break Some((CLOSE_GOING_AWAY, "tracker shutting down")),
                    next => next,
                };
                let write = async {
                    match next {
                        Next::Text(text) => {
                            // One write for the batch: its frames in one buffer.
                            let mut frames = Vec::with_capacity(text.len() + 10);
                            push_text(&mut frames, &text);
                            drop(text);
                            let mut batch = 1u64;
                            while batch < BATCH {
                                let Some(text) = queued.try_recv() else { break };
                                push_text(&mut frames, &text);
                                batch += 1;
                            }
                            sink.send(&frames).await?;
                            add(&inner.metrics.messages_sent, batch);
                        }
                        Next::Pong(payload) => sink.send_pong(&payload).await?,
                        Next::Shutdown => {}
                    }
                    Ok::<(), std::io::Error>(())
                };
                // Boxed, like the handling of a message: idle tasks stay small.
                let written = Box::pin(tokio::time::timeout(WRITE_TIMEOUT, write)).await;
                match written {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => break None,
                    Err(_) => {
                        inner.metrics.reject(Rejection::WriteTimeout);
                        break None;
                    }
                }
            }
        };
        let reader = async {
            loop {
                let event = tokio::select! {
                    biased;
                    message = stream.next() => Event::Received(message),
                    () = &mut timer => Event::Timer,
                };
                match event {
                    Event::Timer => {
                        let now = Instant::now();
                        if now.duration_since(last_heard) >= limits.idle_timeout {
                            inner.metrics.reject(Rejection::Idle);
                            break Some((CLOSE_NORMAL, "idle"));
                        }
                        timer
                            .as_mut()
                            .reset((last_heard + limits.idle_timeout).into());
                    }
                    Event::Received(None) => break None,
                    Event::Received(Some(Ok(Incoming::Close(_)))) => {
                        break Some((CLOSE_NORMAL, ""));
                    }
                    Event::Received(Some(Err(e))) => {
                        tracing::debug!(conn, error = %e, "connection failed");
                        match (&e, e.close_code()) {
                            (ReadError::TooBig, Some(code)) => {
                                inner.metrics.reject(Rejection::MessageTooLarge);
                                break Some((code, "message too big"));
                            }
                            (_, Some(code)) => {
                                inner.metrics.reject(Rejection::InvalidMessage);
                                break Some((code, "invalid frame"));
                            }
                            (_, None) => break None,
                        }
                    }
                    Event::Received(Some(Ok(message))) => {
                        let now = Instant::now();
                        last_heard = now;
                        add(&inner.metrics.messages_received, 1);
                        let text = match message {
                            Incoming::Text(text) => Some(text),
                            Incoming::Binary => None,
                            Incoming::Ping(payload) => {
                                own.pong(payload);
                                continue;
                            }
                            Incoming::Pong | Incoming::Close(_) => continue,
                        };
                        if !inner.limiter.take(slot.address(), now) {
                            inner.metrics.reject(Rejection::RateLimited);
                            rate_limited += 1;
                            if !abuse.charge(now) {
                                inner.metrics.reject(Rejection::TooManyErrors);
                                break Some((CLOSE_POLICY, "rate limited"));
                            }
                            if rate_limited <= RATE_REPLIES {
                                let text = reply::failure_text("announce", "rate limited", None);
                                reply_to(&own, inner, text);
                            }
                            continue;
                        }
                        rate_limited = 0;
                        let handled = match text {
                            // Boxed: the handling future exists only while a message is
                            // handled, not in every idle connection's task.
                            Some(text) => {
                                Box::pin(handle::text(inner, &own, conn, text.as_str(), now)).await
                            }
                            None => {
                                inner.metrics.reject(Rejection::InvalidMessage);
                                let refusal = Refusal {
                                    error: MessageError::Binary,
                                    action: Action::Announce,
                                    info_hash: None,
                                };
                                handle::Handled {
                                    reply: Some(reply::failure(&refusal)),
                                    abuse: true,
                                }
                            }
                        };
                        if handled.abuse && !abuse.charge(now) {
                            inner.metrics.reject(Rejection::TooManyErrors);
                            break Some((CLOSE_POLICY, "too many errors"));
                        }
                        if let Some(text) = handled.reply {
                            reply_to(&own, inner, text);
                        }
                    }
                }
            }
        };
        let close = {
            tokio::pin!(reader, writer);
            tokio::select! {
                biased;
                close = &mut reader => close,
                close = &mut writer => close,
            }
        };
        tracing::debug!(conn, close = ?close, "connection ended");
        if let Some((code, reason)) = close {
            // Boxed: its room would be kept in every idle connection's task.
            let closing = tokio::time::timeout(Duration::from_secs(1), sink.close(code, reason));
            let _ = Box::pin(closing).await;
        }
    }
}

/// Queues a reply to the client; lost, like any message to it, if its
/// queue is full because it does not read.
fn reply_to(own: &Outbox, inner: &Inner, text: String) {
    if own.try_send(text).is_err() {
        inner.metrics.reject(Rejection::SlowPeer);
    }
}
