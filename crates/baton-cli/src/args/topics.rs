//! `baton topic ...`: shapes and help texts of topics and their subscriptions.

use clap::{ArgGroup, Args, Subcommand};

use super::parse_attribute;

#[derive(Debug, Subcommand)]
pub enum TopicCommand {
    /// Create a topic, or find it; prints the topic as JSON.
    #[command(
        long_about = "Create a topic, or find it; prints the topic as JSON.\n\n\
        A topic fans each published message (`baton publish`) out to every subscription it \
        matches; see `baton topic subscribe`.",
        after_help = "Example:\n  baton topic create orders"
    )]
    Create(TopicNameArg),

    /// List every topic with its subscriptions and counters (JSON, or a table with --table).
    #[command(after_help = "Examples:\n  baton topic list\n  baton topic list --table")]
    List(TopicListArgs),

    /// Show one topic: its subscriptions and counters.
    #[command(
        after_help = "Examples:\n  baton topic show orders\n  baton topic show orders --table"
    )]
    Show(TopicShowArgs),

    /// Delete a topic and its subscriptions; copies already delivered stay in their queues.
    #[command(after_help = "Example:\n  baton topic delete orders")]
    Delete(TopicNameArg),

    /// Subscribe a queue, a stream or a URL to a topic, by routing pattern and attribute filter.
    #[command(
        long_about = "Subscribe a queue, a stream or a URL to a topic; prints the subscription as \
        JSON.\n\n\
        Give exactly one target: --queue (it must exist), --stream (it must exist) or \
        --endpoint, a URL (the broker POSTs each matching message there, with retries, \
        through an internal queue; --header adds headers to those POSTs). --pattern matches routing keys of \
        dot-separated words: `*` is exactly one word, `#` zero or more. --filter is an Amazon \
        SNS filter policy over message attributes, as JSON. Without pattern and filter every \
        message matches. Subscribing again with the same settings succeeds and changes \
        nothing; with others it fails with `subscription_exists`.",
        after_help = "Examples:\n  \
        baton topic subscribe orders eu --queue eu-orders --pattern 'order.eu.*'\n  \
        baton topic subscribe orders big --queue audit --filter '{\"amount\": [{\"numeric\": [\">=\", 100]}]}'\n  \
        baton topic subscribe orders history --stream order-log --pattern 'order.#'\n  \
        baton topic subscribe orders hook --endpoint https://example.com/hook --header x-token=secret"
    )]
    Subscribe(SubscribeArgs),

    /// List a topic's subscriptions (JSON, or a table with --table).
    #[command(after_help = "Examples:\n  \
        baton topic subscriptions orders\n  \
        baton topic subscriptions orders --table")]
    Subscriptions(TopicShowArgs),

    /// Show one subscription of a topic as JSON.
    #[command(after_help = "Example:\n  baton topic subscription orders eu")]
    Subscription(SubscriptionArgs),

    /// Delete a subscription: messages published from now on no longer reach its target.
    #[command(after_help = "Example:\n  baton topic unsubscribe orders eu")]
    Unsubscribe(SubscriptionArgs),
}

#[derive(Debug, Args)]
pub struct TopicNameArg {
    /// The topic's name: 1-80 characters of [A-Za-z0-9_-].
    pub name: String,
}

#[derive(Debug, Args)]
pub struct TopicListArgs {
    /// Print a table for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct TopicShowArgs {
    /// The topic's name.
    pub name: String,

    /// Print a table of the subscriptions for humans instead of JSON.
    #[arg(long)]
    pub table: bool,
}

#[derive(Debug, Args)]
pub struct SubscriptionArgs {
    /// The topic.
    pub topic: String,
    /// The subscription's name.
    pub subscription: String,
}

#[derive(Debug, Args)]
#[command(group(ArgGroup::new("target").required(true).args(["queue", "stream", "endpoint"])))]
pub struct SubscribeArgs {
    /// The topic.
    pub topic: String,

    /// The subscription's name: 1-80 characters of [A-Za-z0-9_-].
    pub subscription: String,

    /// Deliver matching messages to this queue.
    #[arg(long, value_name = "QUEUE")]
    pub queue: Option<String>,

    /// Append matching messages to this stream (key = routing key, value = body, headers =
    /// attributes).
    #[arg(long, value_name = "STREAM")]
    pub stream: Option<String>,

    /// POST matching messages to this http:// or https:// URL (the API's `url` target; the
    /// flag is not `--url`, which names the Baton server).
    #[arg(long, value_name = "URL", value_parser = parse_http_url)]
    pub endpoint: Option<String>,

    /// With --endpoint: a header of every POST; repeat for several.
    // `conflicts_with_all`, not `requires = "endpoint"`: clap counts a requirement on a
    // member of the "target" group as met when another member is given.
    #[arg(long = "header", value_name = "NAME=VALUE", conflicts_with_all = ["queue", "stream"], value_parser = parse_attribute)]
    pub headers: Vec<(String, String)>,

    /// Only messages whose routing key matches, e.g. `order.*.created` or `order.#`.
    #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
    pub pattern: Option<String>,

    /// Only messages whose attributes match this SNS filter policy (a JSON object), e.g.
    /// `{"region": ["eu"], "amount": [{"numeric": [">", 0]}]}`.
    #[arg(long, value_name = "JSON", value_parser = parse_filter)]
    pub filter: Option<serde_json::Value>,
}

/// A URL the server can push to: absolute, `http` or `https` (the server checks the rest:
/// host, length, the outbound allow and deny lists).
pub(crate) fn parse_http_url(raw: &str) -> Result<String, String> {
    let rest = raw
        .strip_prefix("http://")
        .or_else(|| raw.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(raw.to_string()),
        _ => Err(format!(
            "expected an absolute http:// or https:// URL, got {raw:?}"
        )),
    }
}

/// The routing pattern, checked by the broker's own rule.
fn parse_pattern(raw: &str) -> Result<String, String> {
    baton_core::topic::Pattern::new(raw)
        .map(|pattern| pattern.to_string())
        .map_err(|error| error.to_string())
}

/// The filter policy must be a JSON object; the server checks its conditions.
fn parse_filter(raw: &str) -> Result<serde_json::Value, String> {
    let value: serde_json::Value =
        serde_json::from_str(raw).map_err(|error| format!("not JSON: {error}"))?;
    if !value.is_object() {
        return Err(format!(
            "a filter is a JSON object of attribute names to lists of conditions, got {value}"
        ));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_must_be_absolute_http_or_https() {
        assert!(parse_http_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(parse_http_url("https://example.com").is_ok());
        for bad in ["example.com", "ftp://x", "http://", "https:///path", ""] {
            assert!(parse_http_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn patterns_follow_the_brokers_rule() {
        assert_eq!(
            parse_pattern("order.*.created"),
            Ok("order.*.created".into())
        );
        assert!(parse_pattern("ord*").is_err());
        assert!(parse_pattern("a..b").is_err());
    }

    #[test]
    fn filters_are_json_objects() {
        assert!(parse_filter(r#"{"region": ["eu"]}"#).is_ok());
        assert!(parse_filter("[1]")
            .err()
            .unwrap_or_default()
            .contains("JSON object"));
        assert!(parse_filter("{")
            .err()
            .unwrap_or_default()
            .starts_with("not JSON"));
    }
}
