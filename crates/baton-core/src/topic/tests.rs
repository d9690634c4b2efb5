#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::attributes::{AttributeData, AttributeValue};

fn key(k: &str) -> RoutingKey {
    RoutingKey::new(k).unwrap()
}

fn pattern_matches(pattern: &str, k: &str) -> bool {
    Pattern::new(pattern).unwrap().matches(&key(k))
}

#[test]
fn patterns_match_as_amqp_topic_exchanges() {
    let cases = [
        ("a.b.c", "a.b.c", true),
        ("a.b.c", "a.b", false),
        ("a.*.c", "a.b.c", true),
        ("a.*.c", "a.c", false),
        ("a.*", "a.b.c", false),
        ("a.#", "a", true),
        ("a.#", "a.b.c", true),
        ("#", "x", true),
        ("#", "x.y.z", true),
        ("#.c", "c", true),
        ("#.c", "a.b.c", true),
        ("#.c", "a.b.d", false),
        ("a.#.c", "a.c", true),
        ("a.#.c", "a.x.y.c", true),
        ("a.#.#.c", "a.c", true),
        ("*.#", "a", true),
        ("*.*.#", "a", false),
        ("#.*", "a.b", true),
        ("order.*.created", "order.eu.created", true),
        ("order.*.created", "order.eu.deleted", false),
    ];
    for (pattern, k, expected) in cases {
        assert_eq!(pattern_matches(pattern, k), expected, "{pattern} vs {k}");
    }
}

#[test]
fn malformed_patterns_are_refused_with_the_reason() {
    let cases = [
        ("", "must not be empty"),
        ("a..b", "word 2 of the pattern is empty"),
        (".a", "word 1 of the pattern is empty"),
        ("a.", "word 2 of the pattern is empty"),
        ("a*.b", "must be whole words"),
        ("a.b#", "must be whole words"),
        ("a b", "whitespace"),
    ];
    for (pattern, reason) in cases {
        let error = Pattern::new(pattern).unwrap_err();
        assert!(
            matches!(&error, TopicError::InvalidPattern { reason: r, .. } if r.contains(reason)),
            "{pattern:?}: {error}"
        );
    }
    let long = "a.".repeat(200);
    assert!(matches!(
        Pattern::new(&long),
        Err(TopicError::InvalidPattern { .. })
    ));
    let many_words = vec!["a"; ROUTING_KEY_WORDS_MAX_FOR_TEST + 1].join(".");
    assert!(matches!(
        Pattern::new(&many_words),
        Err(TopicError::InvalidPattern { reason, .. }) if reason.contains("at most 64 words")
    ));
}

const ROUTING_KEY_WORDS_MAX_FOR_TEST: usize = pattern::ROUTING_KEY_WORDS_MAX;

#[test]
fn routing_keys_refuse_wildcards_and_empty_words() {
    assert!(RoutingKey::new("a.b").is_ok());
    for bad in ["", "a.*", "a.#", "a..b", "a.b.", "x\ny"] {
        assert!(
            matches!(
                RoutingKey::new(bad),
                Err(TopicError::InvalidRoutingKey { .. })
            ),
            "{bad:?}"
        );
    }
}

fn attrs(pairs: &[(&str, &str, &str)]) -> MessageAttributes {
    let map = pairs
        .iter()
        .map(|(name, ty, value)| {
            (
                name.to_string(),
                AttributeValue::new(ty, AttributeData::Text(value.to_string())).unwrap(),
            )
        })
        .collect();
    MessageAttributes::new(map).unwrap()
}

fn policy(pairs: Vec<(&str, Vec<Condition>)>) -> FilterPolicy {
    FilterPolicy::new(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect()).unwrap()
}

#[test]
fn filters_match_as_sns_filter_policies() {
    let colour = |c: Condition| policy(vec![("colour", vec![c])]);
    let red = attrs(&[("colour", "String", "red")]);
    let crimson = attrs(&[("colour", "String", "crimson")]);
    let none = attrs(&[]);
    assert!(colour(Condition::Exact("red".into())).matches(&red));
    assert!(!colour(Condition::Exact("red".into())).matches(&crimson));
    assert!(!colour(Condition::Exact("red".into())).matches(&none));
    assert!(colour(Condition::Prefix("cr".into())).matches(&crimson));
    assert!(!colour(Condition::Prefix("cr".into())).matches(&red));
    let not_red = colour(Condition::AnythingBut(vec![Literal::Text("red".into())]));
    assert!(!not_red.matches(&red));
    assert!(not_red.matches(&crimson));
    assert!(!not_red.matches(&none), "anything-but needs the attribute");
    assert!(colour(Condition::AnythingButPrefix("re".into())).matches(&crimson));
    assert!(!colour(Condition::AnythingButPrefix("re".into())).matches(&red));
    assert!(colour(Condition::Exists(true)).matches(&red));
    assert!(!colour(Condition::Exists(true)).matches(&none));
    assert!(colour(Condition::Exists(false)).matches(&none));
    assert!(!colour(Condition::Exists(false)).matches(&red));

    let price = |c: Condition| policy(vec![("price", vec![c])]);
    let p = |v: &str| attrs(&[("price", "Number", v)]);
    let range = price(Condition::Numeric(vec![
        (NumericOp::Gt, 0.0),
        (NumericOp::Le, 5.0),
    ]));
    assert!(range.matches(&p("5")));
    assert!(range.matches(&p("0.5")));
    assert!(!range.matches(&p("0")));
    assert!(!range.matches(&p("5.01")));
    assert!(
        !range.matches(&attrs(&[("price", "String", "3")])),
        "numeric conditions test Number attributes only"
    );
    assert!(price(Condition::ExactNumber(300.0)).matches(&p("3e2")));
    assert!(!price(Condition::Exact("300".into())).matches(&p("300")));
    let not_3 = price(Condition::AnythingBut(vec![Literal::Number(3.0)]));
    assert!(!not_3.matches(&p("3.0")));
    assert!(not_3.matches(&p("4")));
}

#[test]
fn filters_and_across_names_and_or_within_a_name() {
    let f = policy(vec![
        (
            "colour",
            vec![
                Condition::Exact("red".into()),
                Condition::Exact("blue".into()),
            ],
        ),
        ("size", vec![Condition::Exists(true)]),
    ]);
    assert!(f.matches(&attrs(&[
        ("colour", "String", "blue"),
        ("size", "String", "L")
    ])));
    assert!(!f.matches(&attrs(&[("colour", "String", "blue")])));
    assert!(!f.matches(&attrs(&[
        ("colour", "String", "green"),
        ("size", "String", "L")
    ])));
}

#[test]
fn malformed_filters_are_refused_with_the_reason() {
    let invalid = |map: BTreeMap<String, Vec<Condition>>, reason: &str| {
        let error = FilterPolicy::new(map).unwrap_err();
        assert!(
            matches!(&error, TopicError::InvalidFilter { reason: r } if r.contains(reason)),
            "{error}"
        );
    };
    invalid(BTreeMap::new(), "at least one attribute name");
    invalid(
        [("a".to_string(), vec![])].into(),
        "needs at least one condition",
    );
    invalid(
        [("a".to_string(), vec![Condition::AnythingBut(vec![])])].into(),
        "at least one value",
    );
    invalid(
        [(
            "a".to_string(),
            vec![Condition::Numeric(vec![
                (NumericOp::Gt, 1.0),
                (NumericOp::Gt, 2.0),
            ])],
        )]
        .into(),
        "one lower bound",
    );
    invalid(
        [("a".to_string(), vec![Condition::ExactNumber(f64::NAN)])].into(),
        "finite",
    );
    invalid(
        (0..=filter::FILTER_KEYS_MAX)
            .map(|i| (format!("k{i}"), vec![Condition::Exists(true)]))
            .collect(),
        "at most 10 attribute names",
    );
    invalid(
        [(
            "a".to_string(),
            vec![Condition::Exists(true); filter::FILTER_CONDITIONS_MAX + 1],
        )]
        .into(),
        "at most 150 conditions",
    );
}

fn queue(name: &str) -> QueueName {
    QueueName::new(name).unwrap()
}

fn topic_name(name: &str) -> crate::TopicName {
    crate::TopicName::new(name).unwrap()
}

fn sub_name(name: &str) -> crate::SubscriptionName {
    crate::SubscriptionName::new(name).unwrap()
}

fn sub(name: &str, target: &str, pattern: Option<&str>) -> Subscription {
    Subscription {
        name: sub_name(name),
        target: Target::Queue(queue(target)),
        pattern: pattern.map(|p| Pattern::new(p).unwrap()),
        filter: None,
    }
}

#[test]
fn subscriptions_are_idempotent_and_conflicts_are_refused() {
    let mut topic = Topic::new(topic_name("orders"));
    assert_eq!(
        topic.put_subscription(sub("s", "q1", Some("a.*"))),
        Ok(Put::New)
    );
    assert_eq!(
        topic.put_subscription(sub("s", "q1", Some("a.*"))),
        Ok(Put::Existing)
    );
    let error = topic
        .put_subscription(sub("s", "q1", Some("a.#")))
        .unwrap_err();
    assert!(
        matches!(error, TopicError::SubscriptionExists { differences, .. } if differences.contains("pattern"))
    );
    assert_eq!(
        topic
            .subscription(&sub_name("s"))
            .unwrap()
            .pattern
            .as_ref()
            .unwrap()
            .as_str(),
        "a.*"
    );
    assert!(topic.remove_subscription(&sub_name("s")).is_some());
    assert!(topic.remove_subscription(&sub_name("s")).is_none());
}

#[test]
fn subscriptions_per_topic_are_bounded() {
    let mut topic = Topic::new(topic_name("t"));
    for i in 0..SUBSCRIPTIONS_PER_TOPIC_MAX {
        topic
            .put_subscription(sub(&format!("s{i}"), "q", None))
            .unwrap();
    }
    assert!(matches!(
        topic.put_subscription(sub("one-more", "q", None)),
        Err(TopicError::TooManySubscriptions {
            limit: SUBSCRIPTIONS_PER_TOPIC_MAX,
            ..
        })
    ));
}

#[test]
fn fan_out_counts_subscriptions_and_copies_once_per_queue() {
    let mut topic = Topic::new(topic_name("t"));
    topic.put_subscription(sub("all", "audit", None)).unwrap();
    topic
        .put_subscription(sub("eu", "eu-orders", Some("order.eu.*")))
        .unwrap();
    topic
        .put_subscription(sub("created", "eu-orders", Some("order.*.created")))
        .unwrap();
    let mut filtered = sub("big", "big-orders", Some("order.#"));
    filtered.filter = Some(policy(vec![(
        "amount",
        vec![Condition::Numeric(vec![(NumericOp::Ge, 1000.0)])],
    )]));
    topic.put_subscription(filtered).unwrap();

    let small = attrs(&[("amount", "Number", "10")]);
    let fan_out = topic.fan_out(&key("order.eu.created"), &small);
    assert_eq!(fan_out.n_subscriptions, 3);
    assert_eq!(
        fan_out
            .queues
            .iter()
            .map(|q| q.as_str())
            .collect::<Vec<_>>(),
        ["audit", "eu-orders"]
    );
    let big = attrs(&[("amount", "Number", "5000")]);
    let fan_out = topic.fan_out(&key("order.us.created"), &big);
    assert_eq!(fan_out.n_subscriptions, 3);
    assert_eq!(
        fan_out
            .queues
            .iter()
            .map(|q| q.as_str())
            .collect::<Vec<_>>(),
        ["audit", "big-orders", "eu-orders"]
    );
    let nothing = Topic::new(topic_name("empty")).fan_out(&key("a"), &small);
    assert_eq!(nothing, FanOut::default());
}

/// A plain backtracking matcher, the obvious reading of the AMQP rules.
fn reference_match(pattern: &[&str], key: &[&str]) -> bool {
    match pattern.split_first() {
        None => key.is_empty(),
        Some((&"#", rest)) => (0..=key.len()).any(|skip| reference_match(rest, &key[skip..])),
        Some((&"*", rest)) => !key.is_empty() && reference_match(rest, &key[1..]),
        Some((word, rest)) => key.first() == Some(word) && reference_match(rest, &key[1..]),
    }
}

proptest! {
    #[test]
    fn pattern_matching_agrees_with_a_reference_matcher(
        pattern in prop::collection::vec(prop_oneof!["a", "b", Just("*".to_string()), Just("#".to_string())], 1..7),
        k in prop::collection::vec(prop_oneof!["a", "b", "c"], 1..8),
    ) {
        let pattern_text = pattern.join(".");
        let key_text = k.join(".");
        let p: Vec<&str> = pattern.iter().map(String::as_str).collect();
        let kw: Vec<&str> = k.iter().map(String::as_str).collect();
        prop_assert_eq!(
            Pattern::new(&pattern_text).unwrap().matches(&RoutingKey::new(&key_text).unwrap()),
            reference_match(&p, &kw),
            "{} vs {}", pattern_text, key_text
        );
    }

    #[test]
    fn numeric_ranges_agree_with_plain_comparisons(low in -100i32..100, high in -100i32..100, v in -150i32..150) {
        let f = policy(vec![("n", vec![Condition::Numeric(vec![(NumericOp::Ge, f64::from(low)), (NumericOp::Lt, f64::from(high))])])]);
        let a = attrs(&[("n", "Number", &v.to_string())]);
        prop_assert_eq!(f.matches(&a), low <= v && v < high);
    }
}
