//! Client messages, parsed by the protocol's one implementation in
//! `chunkswarm_core::tracker_protocol` (which the driver's tracker client
//! writes its messages with, and tests against).

pub(crate) use chunkswarm_core::tracker_protocol::{
    Action, Announce, AnnounceEvent as Event, Answer, Have, MessageError, Refusal, Request, parse,
};
