//! The service layer: every operation of the broker as a transport-free function over
//! [`AppState`](crate::state::AppState), taking the requests of `baton-proto` (or domain
//! values) and answering results or a [`ServiceError`]. The native HTTP API (`api`), the
//! framed protocol (`wire`) and background workers (push, callbacks, the event API's
//! workers) call it; none of them checks or converts on its own. The SQS API keeps its own
//! parsing and error wording (AWS's), and calls the engine directly with one call per data
//! operation (`api::sqs`).

pub mod error;
pub mod fences;
pub mod queues;
pub mod replies;
pub mod schedules;
pub mod streams;
pub mod topic_filters;
pub mod topic_urls;
pub mod topics;

pub use error::ServiceError;
