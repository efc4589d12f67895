//! A connection's queue of messages from other connections: bounded, losing
//! what does not fit rather than waiting, and holding no memory while empty.
//!
//! Most connections are idle most of the time, so the empty queue is what
//! counts: a few machine words, where a channel would keep a block of slots
//! allocated for its whole life. The queue also carries what the connection's
//! writer has to do besides: answer a ping, close for the tracker's shutdown.
//! Its task then waits on this queue alone, each wait kept in every idle
//! connection's task.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

#[derive(Debug, Default)]
struct Queue {
    texts: VecDeque<String>,
    /// The payload of the last ping not answered yet.
    pong: Option<Vec<u8>>,
}

#[derive(Debug)]
struct Shared {
    queue: Mutex<Queue>,
    /// The queue's length, kept beside it (changed under its lock) so that
    /// [`Outbox::has_room`] reads it without locking: the registry asks it
    /// of every member it may choose as an offer's recipient.
    len: AtomicUsize,
    capacity: usize,
    ready: Notify,
    closed: AtomicBool,
    /// The tracker is shutting down: the connection closes.
    shutdown: AtomicBool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The sending side, kept by the registry.
#[derive(Debug, Clone)]
pub(crate) struct Outbox {
    shared: Arc<Shared>,
}

/// The receiving side, kept by the connection's task. Dropping it closes
/// the queue.
#[derive(Debug)]
pub(crate) struct Inbox {
    shared: Arc<Shared>,
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Full {
    /// The queue holds `capacity` messages.
    Full,
    /// The connection is gone.
    Closed,
}

/// What the connection's writer does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Sends a message.
    Text(String),
    /// Answers a ping with this payload.
    Pong(Vec<u8>),
    /// Closes the connection: the tracker is shutting down.
    Shutdown,
}

/// A queue of at most `capacity` messages (at least one).
pub(crate) fn outbox(capacity: usize) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue::default()),
        len: AtomicUsize::new(0),
        capacity: capacity.max(1),
        ready: Notify::new(),
        closed: AtomicBool::new(false),
        shutdown: AtomicBool::new(false),
    });
    (
        Outbox {
            shared: Arc::clone(&shared),
        },
        Inbox { shared },
    )
}

impl Outbox {
    /// Queues `text` behind the others, or fails at once.
    pub(crate) fn try_send(&self, text: String) -> Result<(), Full> {
        if self.shared.closed.load(Ordering::Acquire) {
            return Err(Full::Closed);
        }
        {
            let mut queue = self.shared.queue();
            if queue.texts.len() >= self.shared.capacity {
                return Err(Full::Full);
            }
            queue.texts.push_back(text);
            self.shared.len.store(queue.texts.len(), Ordering::Relaxed);
        }
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Whether a message sent now would be queued: checked before a
    /// message is built, so none is built only to be lost.
    pub(crate) fn has_room(&self) -> bool {
        !self.shared.closed.load(Ordering::Acquire)
            && self.shared.len.load(Ordering::Relaxed) < self.shared.capacity
    }

    /// Has the writer answer a ping with `payload` (after the messages
    /// queued before it); replaces an earlier ping's payload not answered
    /// yet. Not counted against the queue's capacity.
    pub(crate) fn pong(&self, payload: Vec<u8>) {
        if self.shared.closed.load(Ordering::Acquire) {
            return;
        }
        self.shared.queue().pong = Some(payload);
        self.shared.ready.notify_one();
    }

    /// Has the writer close the connection for the tracker's shutdown.
    pub(crate) fn shut_down(&self) {
        self.shared.shutdown.store(true, Ordering::Release);
        self.shared.ready.notify_one();
    }
}

impl Inbox {
    /// The next message, if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<String> {
        let mut queue = self.shared.queue();
        let text = queue.texts.pop_front();
        self.shared.len.store(queue.texts.len(), Ordering::Relaxed);
        // An emptied queue gives its room back: the idle connection holds
        // none (room for four messages, kept, was 96 bytes of every idle
        // connection that had been sent one). A busy one takes it again,
        // once for each batch its writer empties the queue of.
        if queue.texts.is_empty() && queue.texts.capacity() > 0 {
            queue.texts = VecDeque::new();
        }
        text
    }

    /// Waits for what the writer does next: shutdown first, then the
    /// queued messages in order, then a pong.
    pub(crate) async fn next(&mut self) -> Next {
        loop {
            if self.shared.shutdown.load(Ordering::Acquire) {
                return Next::Shutdown;
            }
            if let Some(text) = self.try_recv() {
                return Next::Text(text);
            }
            if let Some(payload) = self.shared.queue().pong.take() {
                return Next::Pong(payload);
            }
            // Anything queued since the check left a permit: no wakeup is lost.
            self.shared.ready.notified().await;
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        *self.shared.queue() = Queue::default();
        self.shared.len.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_arrive_in_order_and_a_full_queue_refuses() {
        let (outbox, mut inbox) = outbox(2);
        assert_eq!(outbox.try_send("a".into()), Ok(()));
        assert_eq!(outbox.try_send("b".into()), Ok(()));
        assert!(!outbox.has_room());
        assert_eq!(outbox.try_send("c".into()), Err(Full::Full));
        assert_eq!(inbox.next().await, Next::Text("a".into()));
        assert_eq!(inbox.try_recv().as_deref(), Some("b"));
        assert_eq!(inbox.try_recv(), None);
        assert!(outbox.has_room());
        drop(inbox);
        assert!(!outbox.has_room());
        assert_eq!(outbox.try_send("d".into()), Err(Full::Closed));
    }

    #[tokio::test]
    async fn a_waiting_receiver_wakes_for_a_message_sent_later() {
        let (outbox, mut inbox) = outbox(4);
        let waiter = tokio::spawn(async move { inbox.next().await });
        tokio::task::yield_now().await;
        outbox.try_send("late".into()).unwrap();
        assert_eq!(waiter.await.unwrap(), Next::Text("late".into()));
    }

    #[test]
    fn an_emptied_queue_gives_its_memory_back() {
        let (outbox, mut inbox) = outbox(64);
        for n in 0..40 {
            outbox.try_send(n.to_string()).unwrap();
        }
        while inbox.try_recv().is_some() {}
        assert_eq!(inbox.shared.queue().texts.capacity(), 0);
        // One message, as an idle connection's reply.
        outbox.try_send("reply".into()).unwrap();
        assert_eq!(inbox.try_recv().as_deref(), Some("reply"));
        assert_eq!(inbox.shared.queue().texts.capacity(), 0);
    }

    #[tokio::test]
    async fn a_pong_follows_the_queued_messages_and_shutdown_comes_first() {
        let (outbox, mut inbox) = outbox(4);
        outbox.try_send("a".into()).unwrap();
        outbox.pong(vec![1]);
        // A second ping before the first is answered: its payload wins.
        outbox.pong(vec![2]);
        outbox.try_send("b".into()).unwrap();
        assert_eq!(inbox.next().await, Next::Text("a".into()));
        assert_eq!(inbox.next().await, Next::Text("b".into()));
        assert_eq!(inbox.next().await, Next::Pong(vec![2]));
        // The pong takes no room in the queue.
        for n in 0..4 {
            outbox.try_send(n.to_string()).unwrap();
        }
        outbox.pong(vec![3]);
        assert!(!outbox.has_room());
        outbox.shut_down();
        assert_eq!(inbox.next().await, Next::Shutdown);
        assert_eq!(inbox.next().await, Next::Shutdown);
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_for_a_ping_and_for_shutdown() {
        let (outbox, mut inbox) = outbox(4);
        let waiter = tokio::spawn(async move {
            let first = inbox.next().await;
            (first, inbox.next().await)
        });
        tokio::task::yield_now().await;
        outbox.pong(b"ping".to_vec());
        tokio::task::yield_now().await;
        outbox.shut_down();
        let (first, second) = waiter.await.unwrap();
        assert_eq!(first, Next::Pong(b"ping".to_vec()));
        assert_eq!(second, Next::Shutdown);
    }
}
