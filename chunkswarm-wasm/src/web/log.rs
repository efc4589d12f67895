//! Log lines for JavaScript listeners.
//!
//! The adapter logs its own steps (tracker connected, channel open, ...)
//! straight into a client's [`LogSink`]. The driver logs with `tracing`; a
//! small global subscriber ([`install`]) turns each `chunkswarm*` record
//! into a `log` event of the client whose driver emitted it: every driver
//! future runs inside a span carrying its client's number ([`client_span`]).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt::{self, Write as _};

use futures::channel::mpsc;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::model::{ClientEvent, LogLevel};

/// Where one client's log lines go (its event dispatcher).
#[derive(Debug, Clone)]
pub struct LogSink {
    events: mpsc::UnboundedSender<ClientEvent>,
}

impl LogSink {
    /// A sink feeding `events`.
    pub fn new(events: mpsc::UnboundedSender<ClientEvent>) -> Self {
        Self { events }
    }

    /// Emits one log line.
    pub fn log(&self, level: LogLevel, info_hash: Option<String>, message: String) {
        let _ = self.events.unbounded_send(ClientEvent::Log {
            info_hash,
            level,
            message,
        });
    }
}

thread_local! {
    static SINKS: RefCell<BTreeMap<u64, LogSink>> = const { RefCell::new(BTreeMap::new()) };
    /// Span id → client number, for spans made by [`client_span`].
    static SPANS: RefCell<BTreeMap<u64, u64>> = const { RefCell::new(BTreeMap::new()) };
    /// Entered spans, innermost last.
    static STACK: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
    static NEXT_SPAN: Cell<u64> = const { Cell::new(1) };
}

/// Routes `tracing` records of client `client` to `sink` until [`unregister`].
pub fn register(client: u64, sink: LogSink) {
    SINKS.with(|s| s.borrow_mut().insert(client, sink));
}

/// Stops routing records to client `client`.
pub fn unregister(client: u64) {
    SINKS.with(|s| s.borrow_mut().remove(&client));
}

/// The span to run client `client`'s driver in.
pub fn client_span(client: u64) -> tracing::Span {
    tracing::info_span!("chunkswarm_client", client)
}

/// Installs the forwarding subscriber once per page (later calls, or a
/// subscriber the page set first, leave things as they are).
pub fn install() {
    let _ = tracing::subscriber::set_global_default(Forward);
}

struct Forward;

#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
    info_hash: Option<String>,
    client: Option<u64>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "client" {
            self.client = Some(value);
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "info_hash" => self.info_hash = Some(format!("{value:?}")),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

impl Subscriber for Forward {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() <= Level::DEBUG
            && (metadata.target().starts_with("chunkswarm") || metadata.is_span())
    }

    fn new_span(&self, span: &Attributes<'_>) -> Id {
        let id = NEXT_SPAN.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        let mut fields = Fields::default();
        span.record(&mut fields);
        if let Some(client) = fields.client {
            SPANS.with(|s| s.borrow_mut().insert(id, client));
        }
        Id::from_u64(id)
    }

    fn record(&self, _span: &Id, _values: &Record<'_>) {}

    fn record_follows_from(&self, _span: &Id, _follows: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let client = STACK.with(|stack| {
            SPANS.with(|spans| {
                let spans = spans.borrow();
                stack
                    .borrow()
                    .iter()
                    .rev()
                    .find_map(|id| spans.get(id).copied())
            })
        });
        let level = match *event.metadata().level() {
            Level::ERROR => LogLevel::Error,
            Level::WARN => LogLevel::Warn,
            Level::INFO => LogLevel::Info,
            _ => LogLevel::Debug,
        };
        let message = format!("{}{}", fields.message, fields.rest);
        SINKS.with(|sinks| {
            let sinks = sinks.borrow();
            match client {
                Some(client) => {
                    if let Some(sink) = sinks.get(&client) {
                        sink.log(level, fields.info_hash.clone(), message.clone());
                    }
                }
                None => {
                    for sink in sinks.values() {
                        sink.log(level, fields.info_hash.clone(), message.clone());
                    }
                }
            }
        });
    }

    fn enter(&self, span: &Id) {
        STACK.with(|s| s.borrow_mut().push(span.into_u64()));
    }

    fn exit(&self, span: &Id) {
        STACK.with(|s| {
            let mut stack = s.borrow_mut();
            if let Some(at) = stack.iter().rposition(|id| *id == span.into_u64()) {
                stack.remove(at);
            }
        });
    }
}
