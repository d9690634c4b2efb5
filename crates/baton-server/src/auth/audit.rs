//! The audit trail: every `manage` and `admin` action and every refused request (401, 403,
//! 429 from the rate limits), as one structured log line each (target `baton::audit`) and as
//! counters by action and outcome in `/metrics`.
//!
//! Invariants: a line names the key (never its token or secret), the action, the resource,
//! the outcome with its status, the client address, the method and the path; the counters'
//! labels are fixed sets (no queue or key names), so `/metrics` leaks nothing of any tenant.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};

use baton_proto::KeyAction;

use crate::metrics_text::family;

/// How an audited request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Served, with a success status.
    Ok,
    /// Let through, then answered with an error by the operation itself.
    Failed,
    /// No valid key (401), or for the SQS API no valid signature.
    Unauthorized,
    /// The key lacks the permission (403).
    Forbidden,
    /// Over a rate limit (429).
    RateLimited,
}

const OUTCOMES: [Outcome; 5] = [
    Outcome::Ok,
    Outcome::Failed,
    Outcome::Unauthorized,
    Outcome::Forbidden,
    Outcome::RateLimited,
];

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Unauthorized => "unauthorized",
            Outcome::Forbidden => "forbidden",
            Outcome::RateLimited => "rate_limited",
        }
    }

    /// The outcome of a request that was let through and answered `status`.
    pub fn of_status(status: u16) -> Outcome {
        match status {
            200..=399 => Outcome::Ok,
            401 => Outcome::Unauthorized,
            403 => Outcome::Forbidden,
            _ => Outcome::Failed,
        }
    }
}

/// The actions a counter is kept for: the key actions, and `any` for reading a description.
const ACTIONS: [&str; 5] = ["send", "receive", "manage", "admin", "any"];

fn action_index(action: Option<KeyAction>) -> usize {
    match action {
        Some(KeyAction::Send) => 0,
        Some(KeyAction::Receive) => 1,
        Some(KeyAction::Manage) => 2,
        Some(KeyAction::Admin) => 3,
        None => 4,
    }
}

/// One audited request.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// The key's name; `None` without a (valid) key.
    pub key: Option<&'a str>,
    /// The action the request needed; `None` for "any action" (or not known yet).
    pub action: Option<KeyAction>,
    pub resource: &'a str,
    pub outcome: Outcome,
    pub status: u16,
    pub client: Option<IpAddr>,
    pub method: &'a str,
    pub path: &'a str,
}

/// Whether a request that needs `action` is audited when it succeeds.
pub fn audits_success(action: Option<KeyAction>) -> bool {
    matches!(action, Some(KeyAction::Manage | KeyAction::Admin))
}

/// The counters of the audit trail.
#[derive(Default)]
pub struct Audit {
    counts: [[AtomicU64; OUTCOMES.len()]; ACTIONS.len()],
}

impl Audit {
    /// Logs `entry` and counts it.
    pub fn record(&self, entry: &Entry<'_>) {
        let outcome_index = OUTCOMES
            .iter()
            .position(|o| *o == entry.outcome)
            .unwrap_or(0);
        self.counts[action_index(entry.action)][outcome_index].fetch_add(1, Ordering::Relaxed);
        let action = entry.action.map_or("any", KeyAction::as_str);
        let client = entry.client.map(|ip| ip.to_string());
        tracing::info!(
            target: "baton::audit",
            key = entry.key.unwrap_or("-"),
            action,
            resource = entry.resource,
            outcome = entry.outcome.as_str(),
            status = entry.status,
            client = client.as_deref().unwrap_or("-"),
            method = entry.method,
            path = entry.path,
            "audit"
        );
    }

    /// `baton_audit_events_total{action, outcome}`, for the pairs that happened.
    pub fn write_metrics(&self, out: &mut String) {
        family(
            out,
            "baton_audit_events_total",
            "counter",
            "Audited requests (manage and admin actions, refused requests), by the action they needed and their outcome.",
        );
        for (a, action) in ACTIONS.iter().enumerate() {
            for (o, outcome) in OUTCOMES.iter().enumerate() {
                let count = self.counts[a][o].load(Ordering::Relaxed);
                if count > 0 {
                    let _ = writeln!(
                        out,
                        "baton_audit_events_total{{action=\"{action}\",outcome=\"{}\"}} {count}",
                        outcome.as_str()
                    );
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_by_action_and_outcome_name_no_resource() {
        let audit = Audit::default();
        let entry = Entry {
            key: Some("ops"),
            action: Some(KeyAction::Manage),
            resource: "queue:payroll",
            outcome: Outcome::Ok,
            status: 204,
            client: Some(IpAddr::from([10, 1, 2, 3])),
            method: "DELETE",
            path: "/v1/queues/payroll",
        };
        audit.record(&entry);
        audit.record(&entry);
        audit.record(&Entry {
            outcome: Outcome::Forbidden,
            status: 403,
            action: Some(KeyAction::Send),
            ..entry
        });
        let mut out = String::new();
        audit.write_metrics(&mut out);
        assert!(out.contains("baton_audit_events_total{action=\"manage\",outcome=\"ok\"} 2"));
        assert!(out.contains("baton_audit_events_total{action=\"send\",outcome=\"forbidden\"} 1"));
        assert!(!out.contains("payroll"), "{out}");
        assert_eq!(Outcome::of_status(204), Outcome::Ok);
        assert_eq!(Outcome::of_status(409), Outcome::Failed);
        assert_eq!(Outcome::of_status(403), Outcome::Forbidden);
    }
}
