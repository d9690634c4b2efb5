//! Which permission each route of the HTTP API needs: one table, [`ROUTES`], keyed by method
//! and route template exactly as `api::router` registers them. The middleware
//! (`auth::middleware`) refuses, while keys exist, a matched route that has no entry (fail
//! closed), and a test
//! reads every `.route(...)` of `src/api/` and checks that each has one, so a route added
//! later without a rule fails the suite.

use baton_proto::KeyAction::{self, Admin, Manage, Receive, Send};

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Open to everyone, keys or not (liveness, readiness, the dashboard's static files).
    Open,
    /// Any valid key.
    Key,
    /// `action` on `<kind>:<the path parameter>`.
    On(KeyAction, &'static str, &'static str),
    /// Any action on `<kind>:<the path parameter>` (its description, its status).
    See(&'static str, &'static str),
    /// `action` on a resource named in the table (`server`, `queue:events`, `lock:*`).
    Fixed(KeyAction, &'static str),
    /// Any action on a resource named in the table.
    SeeFixed(&'static str),
    /// A listing: any valid key; the handler leaves out what the key may not see.
    List,
    /// `/metrics`: `admin` on `server`, unless `metrics_public`.
    Metrics,
    /// The SQS API: its handler checks the SigV4 signature and each action's permission
    /// itself (the signature covers the body), unless `sqs_without_auth`; `GET /` without
    /// `Action` is the dashboard, open.
    Sqs,
    /// The framed protocol's upgrade: open; its connections authenticate with an auth frame
    /// (`wire`), checked per request.
    Wire,
}

use Rule::*;

const Q: &str = "queue";
const S: &str = "stream";
const T: &str = "topic";

/// `(method, route template, rule)` for every route. `HEAD` is checked as `GET`.
pub const ROUTES: &[(&str, &str, Rule)] = &[
    ("GET", "/health", Open),
    ("GET", "/ready", Open),
    ("GET", "/v1/server", Fixed(Admin, "server")),
    ("GET", "/v1/wire", Wire),
    ("GET", "/metrics", Metrics),
    // Queues.
    ("GET", "/v1/queues", List),
    ("PUT", "/v1/queues/{queue}", On(Manage, Q, "queue")),
    ("GET", "/v1/queues/{queue}", See(Q, "queue")),
    ("PATCH", "/v1/queues/{queue}", On(Manage, Q, "queue")),
    ("DELETE", "/v1/queues/{queue}", On(Manage, Q, "queue")),
    ("POST", "/v1/queues/{queue}/purge", On(Manage, Q, "queue")),
    ("POST", "/v1/queues/{queue}/messages", On(Send, Q, "queue")),
    (
        "GET",
        "/v1/queues/{queue}/messages",
        On(Receive, Q, "queue"),
    ),
    ("GET", "/v1/queues/{queue}/messages/{id}", See(Q, "queue")),
    (
        "POST",
        "/v1/queues/{queue}/receive",
        On(Receive, Q, "queue"),
    ),
    ("POST", "/v1/queues/{queue}/ack", On(Receive, Q, "queue")),
    ("POST", "/v1/queues/{queue}/nack", On(Receive, Q, "queue")),
    (
        "POST",
        "/v1/queues/{queue}/visibility",
        On(Receive, Q, "queue"),
    ),
    ("POST", "/v1/queues/{queue}/redrive", On(Manage, Q, "queue")),
    ("POST", "/v1/queues/{queue}/request", On(Send, Q, "queue")),
    // A reply names only its correlation id (unguessable, known to whoever received the
    // request); the consumer's own `ack` with a reply needs `receive` on the queue.
    ("POST", "/v1/replies/{correlation_id}", Key),
    // A ticket acts as the key that asked for it, with no more than its permissions.
    ("POST", "/v1/tickets", Key),
    // Push subscriptions and callbacks.
    ("PUT", "/v1/queues/{queue}/push", On(Manage, Q, "queue")),
    ("GET", "/v1/queues/{queue}/push", See(Q, "queue")),
    ("DELETE", "/v1/queues/{queue}/push", On(Manage, Q, "queue")),
    ("GET", "/v1/callbacks/failed", Fixed(Admin, "server")),
    (
        "POST",
        "/v1/queues/{queue}/messages/{id}/retry-callback",
        On(Manage, Q, "queue"),
    ),
    // The event API works on the queues `events` and `events.fifo`, both `queue:events`.
    ("POST", "/api/events", Fixed(Send, "queue:events")),
    ("GET", "/api/events/server-info", SeeFixed("queue:events")),
    ("GET", "/api/events/queue-info", SeeFixed("queue:events")),
    ("POST", "/api/events/advanced", Fixed(Send, "queue:events")),
    (
        "POST",
        "/api/events/performance-test",
        Fixed(Manage, "queue:events"),
    ),
    (
        "POST",
        "/api/events/retry-callback/{event_id}",
        Fixed(Manage, "queue:events"),
    ),
    ("GET", "/api/events/{event_id}", SeeFixed("queue:events")),
    // Streams.
    ("GET", "/v1/streams", List),
    ("PUT", "/v1/streams/{stream}", On(Manage, S, "stream")),
    ("GET", "/v1/streams/{stream}", See(S, "stream")),
    ("DELETE", "/v1/streams/{stream}", On(Manage, S, "stream")),
    (
        "POST",
        "/v1/streams/{stream}/records",
        On(Send, S, "stream"),
    ),
    (
        "GET",
        "/v1/streams/{stream}/records",
        On(Receive, S, "stream"),
    ),
    (
        "PUT",
        "/v1/streams/{stream}/groups/{group}",
        On(Manage, S, "stream"),
    ),
    (
        "GET",
        "/v1/streams/{stream}/groups/{group}",
        See(S, "stream"),
    ),
    (
        "DELETE",
        "/v1/streams/{stream}/groups/{group}",
        On(Manage, S, "stream"),
    ),
    (
        "POST",
        "/v1/streams/{stream}/groups/{group}/read",
        On(Receive, S, "stream"),
    ),
    (
        "POST",
        "/v1/streams/{stream}/groups/{group}/ack",
        On(Receive, S, "stream"),
    ),
    (
        "GET",
        "/v1/streams/{stream}/groups/{group}/pending",
        On(Receive, S, "stream"),
    ),
    (
        "POST",
        "/v1/streams/{stream}/groups/{group}/claim",
        On(Receive, S, "stream"),
    ),
    (
        "POST",
        "/v1/streams/{stream}/groups/{group}/seek",
        On(Receive, S, "stream"),
    ),
    ("GET", "/v1/streams/{stream}/live", On(Receive, S, "stream")),
    ("GET", "/v1/streams/{stream}/ws", On(Receive, S, "stream")),
    (
        "GET",
        "/v1/streams/{stream}/groups/{group}/ws",
        On(Receive, S, "stream"),
    ),
    // Topics.
    ("GET", "/v1/topics", List),
    ("PUT", "/v1/topics/{topic}", On(Manage, T, "topic")),
    ("GET", "/v1/topics/{topic}", See(T, "topic")),
    ("DELETE", "/v1/topics/{topic}", On(Manage, T, "topic")),
    (
        "PUT",
        "/v1/topics/{topic}/subscriptions/{subscription}",
        On(Manage, T, "topic"),
    ),
    (
        "GET",
        "/v1/topics/{topic}/subscriptions/{subscription}",
        See(T, "topic"),
    ),
    (
        "DELETE",
        "/v1/topics/{topic}/subscriptions/{subscription}",
        On(Manage, T, "topic"),
    ),
    ("POST", "/v1/topics/{topic}/publish", On(Send, T, "topic")),
    ("GET", "/v1/topics/{topic}/live", On(Receive, T, "topic")),
    ("GET", "/v1/topics/{topic}/ws", On(Receive, T, "topic")),
    // The dashboard: its files are open (they hold no data); its live data needs a key and
    // shows only the queues, streams and topics that key may see (`api::live_stats`).
    ("GET", "/ui/{*path}", Open),
    ("GET", "/v1/live/stats", Key),
    ("GET", "/v1/dashboard/push/{queue}", See(Q, "queue")),
    // Locks: using one (acquire, renew, release) is `send` on `lock:<name>`.
    ("GET", "/v1/locks", SeeFixed("lock:*")),
    ("PUT", "/v1/locks/{name}", On(Send, "lock", "name")),
    ("GET", "/v1/locks/{name}", See("lock", "name")),
    ("POST", "/v1/locks/{name}/renew", On(Send, "lock", "name")),
    ("POST", "/v1/locks/{name}/release", On(Send, "lock", "name")),
    // Sinks hold database credentials: `manage` on `sink:<name>`, listing on `sink:*`.
    ("GET", "/v1/sinks", Fixed(Manage, "sink:*")),
    ("GET", "/v1/sinks/{name}", On(Manage, "sink", "name")),
    ("PUT", "/v1/sinks/{name}", On(Manage, "sink", "name")),
    ("DELETE", "/v1/sinks/{name}", On(Manage, "sink", "name")),
    ("POST", "/v1/sinks/{name}/pause", On(Manage, "sink", "name")),
    (
        "POST",
        "/v1/sinks/{name}/resume",
        On(Manage, "sink", "name"),
    ),
    // Schedules.
    ("GET", "/v1/schedules", SeeFixed("schedule:*")),
    ("GET", "/v1/schedules/{name}", See("schedule", "name")),
    (
        "PUT",
        "/v1/schedules/{name}",
        On(Manage, "schedule", "name"),
    ),
    (
        "DELETE",
        "/v1/schedules/{name}",
        On(Manage, "schedule", "name"),
    ),
    (
        "POST",
        "/v1/schedules/{name}/pause",
        On(Manage, "schedule", "name"),
    ),
    (
        "POST",
        "/v1/schedules/{name}/resume",
        On(Manage, "schedule", "name"),
    ),
    (
        "POST",
        "/v1/schedules/{name}/fire",
        On(Manage, "schedule", "name"),
    ),
    // Keys.
    ("POST", "/v1/keys", Fixed(Admin, "key:*")),
    ("GET", "/v1/keys", Fixed(Admin, "key:*")),
    ("GET", "/v1/keys/{name}", On(Admin, "key", "name")),
    ("DELETE", "/v1/keys/{name}", On(Admin, "key", "name")),
    // The SQS API (both protocols) and, for `GET /` without `Action`, the dashboard.
    ("POST", "/", Sqs),
    ("GET", "/", Sqs),
    ("POST", "/000000000000/{queue}", Sqs),
    ("GET", "/000000000000/{queue}", Sqs),
];

/// [`ROUTES`] by template, built once.
static BY_TEMPLATE: std::sync::LazyLock<
    std::collections::HashMap<&'static str, Vec<(&'static str, Rule)>>,
> = std::sync::LazyLock::new(|| {
    let mut map = std::collections::HashMap::<_, Vec<_>>::new();
    for (method, template, rule) in ROUTES {
        map.entry(*template).or_default().push((*method, *rule));
    }
    map
});

/// The rule of `method` on `template`: `Ok(rule)`, `Err(true)` when the template is known but
/// not with this method (405), `Err(false)` when it has no entry at all (refused).
pub fn rule(method: &str, template: &str) -> Result<Rule, bool> {
    let method = if method == "HEAD" { "GET" } else { method };
    let methods = BY_TEMPLATE.get(template).ok_or(false)?;
    methods
        .iter()
        .find(|(m, _)| *m == method)
        .map(|(_, rule)| *rule)
        .ok_or(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_entry_is_unique_and_resources_parse() {
        let mut seen = std::collections::BTreeSet::new();
        for (method, template, rule) in ROUTES {
            assert!(seen.insert((method, template)), "{method} {template} twice");
            let fixed = match rule {
                Fixed(_, resource) | SeeFixed(resource) => Some(*resource),
                _ => None,
            };
            if let Some(resource) = fixed {
                crate::auth::rules::Pattern::parse(resource).unwrap();
            }
            if let On(_, _, param) | See(_, param) = rule {
                assert!(
                    template.contains(&format!("{{{param}}}")),
                    "{method} {template}: no parameter {param}"
                );
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(rule("GET", "/health"), Ok(Open));
        assert_eq!(rule("HEAD", "/health"), Ok(Open));
        assert_eq!(rule("POST", "/health"), Err(true));
        assert_eq!(rule("GET", "/v1/nothing"), Err(false));
    }
}
