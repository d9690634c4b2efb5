//! The server's targets: the SQS API's query and JSON 1.0 request parsing (`sqs_query`,
//! `sqs_json`), the native API's JSON bodies (`native_json`) and SNS-style filter policies
//! (`topic_filter`), each through the entry points the server exposes for fuzzing
//! (`api::sqs::fuzzing`, `api::json::fuzzing`) or its public service functions.
//!
//! Shared with `crates/baton-server/tests/it/fuzz_corpus.rs`, so it uses nothing but the
//! server's own dependencies.

use std::collections::BTreeMap;

use baton_core::topic::filter::{FILTER_CONDITIONS_MAX, FILTER_KEYS_MAX, FILTER_VALUE_BYTES_MAX};
use baton_core::topic::{Condition, Literal};
use baton_proto as proto;
use baton_server::api::error::ApiError;
use baton_server::api::json::fuzzing as json;
use baton_server::api::sqs::fuzzing as sqs;
use baton_server::api::sqs::protocol::QUERY_KEY_PARTS_MAX;
use baton_server::service::topic_filters::{filter_from_json, filter_to_json};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

/// How deep objects and arrays nest in `value`.
fn depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// What every parsed SQS request satisfies, whichever protocol it came in.
fn check_sqs(parsed: &sqs::Parsed) {
    let (action, params) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            assert!(
                error.sender,
                "a malformed request is the sender's fault: {error:?}"
            );
            assert!(error.status.is_client_error(), "{error:?}");
            return;
        }
    };
    sqs::parse_messages(action, params);
}

/// `sqs_query`: `query \0 body`, the URL query and the form body of a `POST /`.
pub fn sqs_query(input: &[u8]) {
    let (query, body) = match input.iter().position(|b| *b == 0) {
        Some(at) => (input.get(..at), input.get(at + 1..).unwrap_or_default()),
        None => (None, input),
    };
    let query = query.and_then(|q| std::str::from_utf8(q).ok());
    let parsed = sqs::parse_query(query, body);
    if let Ok((_, params)) = &parsed {
        assert!(!params.contains_key("Action") && !params.contains_key("Version"));
        let nesting = depth(&Value::Object(params.clone()));
        // Each part of a key nests at most an object and a list.
        assert!(
            nesting <= 2 * QUERY_KEY_PARTS_MAX,
            "parameters nest {nesting} deep from keys of at most {QUERY_KEY_PARTS_MAX} parts"
        );
    }
    check_sqs(&parsed);
}

/// `sqs_json`: `target \n body`, the `X-Amz-Target` header and the body.
pub fn sqs_json(input: &[u8]) {
    let (target, body) = match input.iter().position(|b| *b == b'\n') {
        Some(at) => (
            input.get(..at).unwrap_or_default(),
            input.get(at + 1..).unwrap_or_default(),
        ),
        None => (&b"AmazonSQS.SendMessage"[..], input),
    };
    let target = String::from_utf8_lossy(target);
    let parsed = sqs::parse_json(&target, body);
    if let Ok((action, _)) = &parsed {
        assert_eq!(Some(action.as_str()), target.strip_prefix("AmazonSQS."));
    }
    check_sqs(&parsed);
}

/// Parses `bytes` as `ApiJson<T>` does and checks the outcome: an error
/// is a 400 `Malformed`; an accepted body is what `serde_json` itself accepts (the precise
/// second parse must not be laxer than the first), and serializes to JSON that parses back to
/// the same value.
fn required<T>(bytes: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    check_body(bytes, json::required::<T>(bytes))
}

/// [`required`] for an `OptionalJson<T>` body.
fn optional<T>(bytes: &[u8]) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug + Default,
{
    check_body(bytes, json::optional::<T>(bytes))
}

fn check_body<T>(bytes: &[u8], parsed: Result<T, ApiError>) -> Option<T>
where
    T: DeserializeOwned + Serialize + PartialEq + std::fmt::Debug,
{
    let value = match parsed {
        Ok(value) => value,
        Err(ApiError::Malformed(_)) => return None,
        Err(other) => panic!("a body was refused with {other:?}, not as malformed"),
    };
    if !bytes.iter().all(u8::is_ascii_whitespace) {
        if let Err(error) = serde_json::from_slice::<T>(bytes) {
            panic!("accepted a body serde_json refuses ({error}): {value:?}");
        }
    }
    let json = serde_json::to_vec(&value).expect("request types serialize");
    let again: T = match serde_json::from_slice(&json) {
        Ok(again) => again,
        Err(error) => panic!("{value:?} serialized to JSON that does not parse: {error}"),
    };
    assert_eq!(again, value, "a request changed through JSON");
    Some(value)
}

/// `native_json`: byte 0 picks the request type, the rest is its body.
pub fn native_json(input: &[u8]) {
    let Some((selector, bytes)) = input.split_first() else {
        return;
    };
    match selector % 12 {
        0 => {
            if let Some(request) = required::<proto::SendRequest>(bytes) {
                for message in request.messages {
                    message_attributes(message.attributes);
                }
            }
        }
        1 => {
            optional::<proto::ReceiveRequest>(bytes);
        }
        2 => {
            required::<proto::AckRequest>(bytes);
        }
        3 => {
            required::<proto::NackRequest>(bytes);
        }
        4 => {
            optional::<proto::CreateQueue>(bytes);
        }
        5 => {
            required::<proto::UpdateQueue>(bytes);
        }
        6 => {
            optional::<proto::RedriveRequest>(bytes);
        }
        7 => {
            if let Some(request) = required::<proto::PublishRequest>(bytes) {
                for message in request.messages {
                    message_attributes(message.attributes);
                }
            }
        }
        8 => {
            if let Some(put) = required::<proto::PutSubscription>(bytes) {
                if let Some(filter) = &put.filter {
                    check_filter(filter);
                }
            }
        }
        9 => {
            if let Some(request) = required::<proto::RequestMessage>(bytes) {
                message_attributes(request.attributes);
            }
        }
        10 => {
            required::<proto::AcquireLock>(bytes);
        }
        _ => {
            required::<proto::VisibilityRequest>(bytes);
        }
    }
}

/// The service's check of a message's attributes; accepted ones keep their names.
fn message_attributes(wire: BTreeMap<String, proto::AttributeValue>) {
    let names: Vec<String> = wire.keys().cloned().collect();
    if let Ok(attributes) = json::attributes(wire) {
        for name in names {
            assert!(attributes.get(&name).is_some(), "attribute {name:?} lost");
        }
    }
}

/// A policy from JSON: an accepted one is within the limits and renders to JSON that parses
/// back to the same policy (as a value; as text, see below).
fn check_filter(value: &Value) -> Option<baton_core::topic::FilterPolicy> {
    let policy = filter_from_json(value).ok()?;
    let conditions = policy.conditions();
    assert!(!conditions.is_empty() && conditions.len() <= FILTER_KEYS_MAX);
    assert!(conditions.values().map(Vec::len).sum::<usize>() <= FILTER_CONDITIONS_MAX);
    for condition in conditions.values().flatten() {
        let texts: Vec<&str> = match condition {
            Condition::Exact(text)
            | Condition::Prefix(text)
            | Condition::AnythingButPrefix(text) => {
                vec![text]
            }
            Condition::AnythingBut(values) => values
                .iter()
                .filter_map(|v| match v {
                    Literal::Text(text) => Some(text.as_str()),
                    Literal::Number(_) => None,
                })
                .collect(),
            _ => Vec::new(),
        };
        assert!(texts.iter().all(|t| t.len() <= FILTER_VALUE_BYTES_MAX));
    }
    let rendered = filter_to_json(&policy);
    let again = filter_from_json(&rendered).expect("a rendered policy parses");
    assert_eq!(again, policy, "a policy changed through its JSON value");
    // Through its JSON text too, to the last bit of every number (serde_json's
    // `float_roundtrip`: without it a bound shown as 4.4444444440000316e32 read back 1 ULP
    // off, a finding of this target kept in fuzz/regressions/topic_filter).
    let text = serde_json::to_string(&rendered).expect("a policy renders");
    let reparsed: Value = serde_json::from_str(&text).expect("rendered JSON parses");
    let again = filter_from_json(&reparsed).expect("a rendered policy parses as text");
    assert_eq!(again, policy, "a policy changed through its JSON text");
    Some(policy)
}

/// `topic_filter`: `policy \0 attributes`, both JSON: a filter policy and a message's
/// attributes in the native API's form, matched against each other.
pub fn topic_filter(input: &[u8]) {
    let (policy, attributes) = match input.iter().position(|b| *b == 0) {
        Some(at) => (
            input.get(..at).unwrap_or_default(),
            input.get(at + 1..).unwrap_or_default(),
        ),
        None => (input, &b"{}"[..]),
    };
    let Ok(policy) = serde_json::from_slice::<Value>(policy) else {
        return;
    };
    let Some(policy) = check_filter(&policy) else {
        return;
    };
    let Ok(wire) = serde_json::from_slice::<BTreeMap<String, proto::AttributeValue>>(attributes)
    else {
        return;
    };
    let Ok(attributes) = json::attributes(wire) else {
        return;
    };
    let matched = policy.matches(&attributes);
    // A policy whose every name asks for absence matches exactly when none is present.
    let absent_only = policy
        .conditions()
        .values()
        .all(|list| list.iter().all(|c| matches!(c, Condition::Exists(false))));
    if absent_only {
        let none_present = policy
            .conditions()
            .keys()
            .all(|name| attributes.get(name).is_none());
        assert_eq!(matched, none_present, "exists: false");
    }
}
