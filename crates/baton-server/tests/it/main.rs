//! End-to-end tests of the native API over real HTTP, against a server on an ephemeral port.
#![allow(clippy::unwrap_used)]

mod dashboard;
mod harness;
mod metrics;
mod queues;
mod semantics;
mod sqs;
mod storage;
mod validation;
