//! The client commands beyond queues and messages (those are in `client.rs`): each turns its
//! arguments into SDK calls and prints the answers, as JSON or (`--table`) as tables.

pub mod groups;
pub mod keys;
pub mod locks;
pub mod push;
pub mod schedules;
pub mod sinks;
pub mod streams;
pub mod topics;
