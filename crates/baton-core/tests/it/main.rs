//! Property tests of baton-core's queue, through its public API only.
//!
//! - `invariants`: random operation sequences on standard and FIFO queues, with every
//!   invariant checked after every step against a bookkeeping model of what a client can know.
//! - `reference`: a standard queue without timeouts against a plain `Vec` model.
//! - `streams`: random appends, reads, group operations and retention on a stream.

#![allow(clippy::unwrap_used)]

mod fuzz_corpus;
mod invariants;
mod reference;
mod streams;
