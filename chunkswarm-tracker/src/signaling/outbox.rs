//! A connection's queue of messages from other connections: bounded, losing
//! what does not fit rather than waiting, and holding no memory while empty.
//!
//! Most connections are idle most of the time, so the empty queue is what
//! counts: a few machine words, where a channel would keep a block of slots
//! allocated for its whole life.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::Notify;

/// A queue that grew past this many slots is given back once it empties.
const KEEP_SLOTS: usize = 4;

#[derive(Debug)]
struct Shared {
    queue: Mutex<VecDeque<String>>,
    /// The queue's length, kept beside it (changed under its lock) so that
    /// [`Outbox::has_room`] reads it without locking: the registry asks it
    /// of every member it may choose as an offer's recipient.
    len: AtomicUsize,
    capacity: usize,
    ready: Notify,
    closed: AtomicBool,
}

impl Shared {
    fn queue(&self) -> MutexGuard<'_, VecDeque<String>> {
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

/// A queue of at most `capacity` messages (at least one).
pub(crate) fn outbox(capacity: usize) -> (Outbox, Inbox) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(VecDeque::new()),
        len: AtomicUsize::new(0),
        capacity: capacity.max(1),
        ready: Notify::new(),
        closed: AtomicBool::new(false),
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
            if queue.len() >= self.shared.capacity {
                return Err(Full::Full);
            }
            queue.push_back(text);
            self.shared.len.store(queue.len(), Ordering::Relaxed);
        }
        self.shared.ready.notify_one();
        Ok(())
    }
}

impl Outbox {
    /// Whether a message sent now would be queued: checked before a
    /// message is built, so none is built only to be lost.
    pub(crate) fn has_room(&self) -> bool {
        !self.shared.closed.load(Ordering::Acquire)
            && self.shared.len.load(Ordering::Relaxed) < self.shared.capacity
    }
}

impl Inbox {
    /// The next message, if one is queued.
    pub(crate) fn try_recv(&mut self) -> Option<String> {
        let mut queue = self.shared.queue();
        let text = queue.pop_front();
        self.shared.len.store(queue.len(), Ordering::Relaxed);
        if queue.is_empty() && queue.capacity() > KEEP_SLOTS {
            *queue = VecDeque::new();
        }
        text
    }

    /// Waits for the next message.
    pub(crate) async fn recv(&mut self) -> String {
        loop {
            if let Some(text) = self.try_recv() {
                return text;
            }
            // A message queued since the check left a permit: no wakeup is lost.
            self.shared.ready.notified().await;
        }
    }
}

impl Drop for Inbox {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Release);
        self.shared.queue().clear();
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
        assert_eq!(inbox.recv().await, "a");
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
        let waiter = tokio::spawn(async move { inbox.recv().await });
        tokio::task::yield_now().await;
        outbox.try_send("late".into()).unwrap();
        assert_eq!(waiter.await.unwrap(), "late");
    }

    #[test]
    fn an_emptied_queue_gives_its_memory_back() {
        let (outbox, mut inbox) = outbox(64);
        for n in 0..40 {
            outbox.try_send(n.to_string()).unwrap();
        }
        while inbox.try_recv().is_some() {}
        assert_eq!(inbox.shared.queue().capacity(), 0);
    }
}
