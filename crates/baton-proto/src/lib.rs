//! # baton-proto
//!
//! The native HTTP API's request and response bodies and its stable error codes. Both the
//! server and the SDK depend on this crate and on nothing of each other, so they cannot drift.
//!
//! Conventions: JSON, `snake_case` fields, times in milliseconds since the Unix epoch, durations
//! in milliseconds (`_ms`). Request types reject unknown fields, so a typo is an error instead
//! of a silently ignored option. This crate only describes shapes; ranges are checked by the
//! server against `baton-core`'s limits.

pub mod dashboard;
pub mod error;
pub mod events;
pub mod key;
pub mod lock;
pub mod push;
pub mod queue;
pub mod request;
pub mod schedule;
pub mod server;
pub mod sink;
pub mod stream;
pub mod topic;
pub mod wire;

pub use dashboard::*;
pub use error::{BatchResponse, ErrorBody, ErrorCode, ErrorDetail, ItemResult};
pub use events::*;
pub use key::*;
pub use lock::*;
pub use push::*;
pub use queue::*;
pub use request::*;
pub use schedule::*;
pub use server::*;
pub use sink::*;
pub use topic::*;

/// Distinguishes "field absent" (`None`) from "field set to null" (`Some(None)`), for PATCH.
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T, S>(value: &Option<Option<T>>, serializer: S) -> Result<S::Ok, S::Error>
    where
        T: Serialize,
        S: Serializer,
    {
        match value {
            Some(inner) => inner.serialize(serializer),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        T: Deserialize<'de>,
        D: Deserializer<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}
