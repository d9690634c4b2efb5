//! End-to-end tests of the native API over real HTTP, against a server on an ephemeral port.
#![allow(clippy::unwrap_used)]

mod callbacks;
mod events;
mod harness;
mod push;
mod queues;
mod receiver;
mod semantics;
mod sqs;
mod storage;
mod streams;
mod validation;
