//! The driver's state machine in virtual time, with a fake tracker, a fake
//! connector and fake channels ([`world`]): no WebRTC, no sockets, no
//! sleeping. Each test says what behaviour it pins down.

mod connect;
mod glare;
mod magnet;
mod retry;
mod tracker;
mod world;
