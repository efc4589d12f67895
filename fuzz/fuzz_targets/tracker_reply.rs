//! A client's reader of tracker messages on arbitrary text: read or
//! refused, never a panic; swarm facts read are capped; the driver's
//! `SignalIn` built on it agrees on what it could read.
#![no_main]

use chunkswarm_core::driver::signal::{SignalIn, SignalParseError};
use chunkswarm_core::swarm::MAX_FACT_PIECES;
use chunkswarm_core::tracker_protocol::reply::{self, Reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let read = reply::parse(text);
    if let Ok(Reply::Announced(announced)) = &read {
        if let Some(facts) = &announced.facts {
            assert!(facts.holders.len() <= MAX_FACT_PIECES);
            assert!(facts.fetch.len() <= MAX_FACT_PIECES);
        }
    }
    let signal = SignalIn::parse(text);
    match read {
        Ok(Reply::Scrape(_)) => assert_eq!(signal, Err(SignalParseError::Ignored)),
        Ok(_) => assert!(signal.is_ok()),
        Err(_) => assert!(signal.is_err()),
    }
});
