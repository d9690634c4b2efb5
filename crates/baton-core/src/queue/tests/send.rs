//! Send: batches, delays, dedup windows, size and character limits, attributes.

use super::*;

// ---------------------------------------------------------------------------------------------
// Send.

#[test]
fn send_enqueues_visible_messages_in_order() {
    check(standard(), "send a b c => a b c; stats => visible=3 sent=3; status a => PENDING: sent; recv 10 => a b c");
}

#[test]
fn send_needs_at_least_one_message() {
    check(
        standard(),
        "send => err InvalidParameter(messages); stats => -",
    );
}

#[test]
fn send_takes_at_most_send_batch_max_messages() {
    let mut queue = standard().queue();
    let batch = |n: usize| {
        (0..n)
            .map(|i| entry(i as u128 + 1, "m"))
            .collect::<Vec<_>>()
    };
    let too_many = queue.send(at(0), batch(SEND_BATCH_MAX + 1));
    assert!(
        matches!(too_many, Err(QueueError::InvalidParameter { field, .. }) if field == "messages")
    );
    assert_eq!(queue.depth(), 0);
    assert_eq!(
        queue.send(at(0), batch(SEND_BATCH_MAX)).unwrap().len(),
        SEND_BATCH_MAX
    );
}

#[test]
fn send_assigns_dense_increasing_sequences() {
    let mut queue = standard().queue();
    let outcomes = queue
        .send(at(0), vec![entry(1, "a"), entry(2, "b")])
        .unwrap();
    let more = queue.send(at(0), vec![entry(3, "c")]).unwrap();
    let seqs: Vec<Seq> = outcomes.iter().chain(&more).map(|o| o.seq).collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(outcomes.iter().all(|o| !o.duplicate));
}

#[test]
fn message_delay_hides_a_message_until_it_ends() {
    check(standard(), "send a:delay=100 b; status a => DELAYED: sent; recv 10 => b; stats => in_flight=1 delayed=1 sent=2 received=1; next => 100; +99; recv 10 => -; +1; recv 10 => a");
}

#[test]
fn queue_delay_applies_unless_the_message_overrides_it() {
    check(standard().delay_ms(100), "send a b:delay=0 c:delay=50; recv 10 => b; +50; recv 10 => c; +49; recv 10 => -; +1; recv 10 => a");
}

#[test]
fn delay_up_to_the_retention_is_accepted() {
    // Retention is 4 days (345,600,000 ms): the delay must end before it.
    check(standard(), "send a:delay=345599999 => a; send b:delay=345600000 => err InvalidParameter(delay_ms); +345599998; recv 1 => -; +1; recv 1 => a");
}

#[test]
fn group_id_is_kept_on_a_standard_queue() {
    check(
        standard(),
        "send a:g=G1; recv 1 => a; delivery a => rc=1 sent=0 first=0 group=G1",
    );
}

#[test]
fn dedup_id_suppresses_repeats_within_five_minutes() {
    check(standard(), "send a:d=x => a; +299999; send b:d=x => dup:a; stats => visible=1 oldest_age_ms=299999 sent=2 duplicates=1; +1; send c:d=x => c; recv 10 => a c");
}

#[test]
fn a_duplicate_does_not_extend_the_dedup_window() {
    check(
        standard(),
        "send a:d=x; +200000; send b:d=x => dup:a; +100000; send c:d=x => c",
    );
}

#[test]
fn dedup_outlives_the_original_message() {
    check(standard(), "send a:d=x; recv 1 => a; ack a; send b:d=x => dup:a; stats => sent=2 duplicates=1 received=1 acked=1");
}

#[test]
fn distinct_dedup_ids_do_not_collide() {
    check(standard(), "send a:d=x b:d=y => a b; send c:d=X => c");
}

#[test]
fn standard_queue_without_content_dedup_keeps_equal_bodies() {
    check(
        standard(),
        "send a:body=same b:body=same => a b; stats => visible=2 sent=2",
    );
}

#[test]
fn content_based_dedup_uses_the_body() {
    check(
        standard().content_dedup(true),
        "send a:body=same b:body=same c:body=other => a dup:a c; +300000; send d:body=same => d",
    );
}

#[test]
fn explicit_dedup_id_overrides_content_based_dedup() {
    check(
        standard().content_dedup(true),
        "send a:body=s:d=1 b:body=s:d=2 => a b; send c:body=s => c; send d:body=t:d=1 => dup:a",
    );
}

#[test]
fn duplicates_within_one_batch_enqueue_once() {
    check(
        standard(),
        "send a:d=x b:d=x c => a dup:a c; stats => visible=2 sent=3 duplicates=1",
    );
}

#[test]
fn content_dedup_returns_the_original_sequence() {
    let mut queue = standard().content_dedup(true).queue();
    let first = queue.send(at(0), vec![entry(1, "same")]).unwrap();
    let again = queue.send(at(5), vec![entry(2, "same")]).unwrap();
    assert_eq!(
        again,
        [SendOutcome {
            id: first[0].id,
            seq: first[0].seq,
            duplicate: true
        }]
    );
}

#[test]
fn one_bad_entry_refuses_the_whole_batch() {
    let cases = [
        (
            "send a b:delay=345600000 c",
            "err InvalidParameter(delay_ms)",
        ),
        ("send a b:g= c", "err InvalidParameter(group_id)"),
        ("send a b:d= c", "err InvalidParameter(dedup_id)"),
        ("send a:d=x b c:d=x", "a b dup:a"), // a control: the same shape succeeds when valid
    ];
    for (send, expected) in cases {
        let refused = expected.starts_with("err");
        let after = if refused {
            "stats => -; status a => none"
        } else {
            "stats => visible=2 sent=3 duplicates=1"
        };
        check(standard(), &format!("{send} => {expected}; {after}"));
    }
}

#[test]
fn one_bad_entry_does_not_consume_dedup_ids() {
    check(
        standard(),
        "send a:d=x b:delay=345600000 => err InvalidParameter(delay_ms); send c:d=x => c",
    );
}

#[test]
fn group_and_dedup_ids_are_one_to_128_printable_characters() {
    let long = "x".repeat(128);
    let too_long = "x".repeat(129);
    let cases: [(Option<&str>, Option<&str>, Option<&str>); 8] = [
        (Some("g-1_!#"), Some("d.1~"), None),
        (Some(&long), Some(&long), None),
        (Some(""), None, Some("group_id")),
        (Some(&too_long), None, Some("group_id")),
        (Some("a b"), None, Some("group_id")),
        (Some("é"), None, Some("group_id")),
        (None, Some(&too_long), Some("dedup_id")),
        (None, Some("tab\t"), Some("dedup_id")),
    ];
    for (group_id, dedup_id, bad_field) in cases {
        let mut queue = standard().queue();
        let mut one = entry(1, "m");
        one.group_id = group_id.map(str::to_string);
        one.dedup_id = dedup_id.map(str::to_string);
        let result = queue.send(at(0), vec![one]);
        match bad_field {
            None => assert!(result.is_ok(), "{group_id:?} {dedup_id:?}: {result:?}"),
            Some(bad) => assert!(
                matches!(&result, Err(QueueError::InvalidParameter { field, .. }) if field == bad),
                "{group_id:?} {dedup_id:?}: {result:?}"
            ),
        }
    }
}

#[test]
fn size_limit_counts_body_and_attribute_names_types_and_values() {
    // max_message_bytes is 1024; `ab: String "xyz"` counts 2 + 6 + 3 = 11 bytes.
    let string = || attributes(&[("ab", "String", text("xyz"))]);
    let binary = || attributes(&[("bin", "Binary", AttributeData::Binary(vec![0; 4]))]);
    let number = || attributes(&[("n", "Number.int", text("12345"))]);
    let cases: Vec<(String, MessageAttributes, Option<u64>)> = vec![
        ("x".repeat(1024), MessageAttributes::default(), None),
        ("x".repeat(1025), MessageAttributes::default(), Some(1025)),
        ("é".repeat(512), MessageAttributes::default(), None), // bytes, not characters
        ("é".repeat(513), MessageAttributes::default(), Some(1026)),
        ("x".repeat(1013), string(), None),
        ("x".repeat(1014), string(), Some(1025)),
        ("x".repeat(1011), binary(), None), // 3 + 6 + 4
        ("x".repeat(1012), binary(), Some(1025)),
        ("x".repeat(1008), number(), None), // 1 + 10 + 5
        ("x".repeat(1009), number(), Some(1025)),
    ];
    for (body, attributes, too_large) in cases {
        let mut queue = standard().max_message_bytes(1024).queue();
        let mut one = entry(1, &body);
        one.attributes = attributes.clone();
        let result = queue.send(at(0), vec![one]);
        match too_large {
            None => assert!(
                result.is_ok(),
                "{} body bytes, {attributes:?}: {result:?}",
                body.len()
            ),
            Some(size_bytes) => {
                assert_eq!(
                    result,
                    Err(QueueError::MessageTooLarge {
                        size_bytes,
                        max_bytes: 1024
                    })
                );
                assert_eq!(queue.depth(), 0);
            }
        }
    }
}

#[test]
fn too_large_entry_refuses_the_whole_batch() {
    let mut queue = standard().max_message_bytes(1024).queue();
    let result = queue.send(at(0), vec![entry(1, "ok"), entry(2, &"x".repeat(1025))]);
    assert!(matches!(
        result,
        Err(QueueError::MessageTooLarge {
            size_bytes: 1025,
            ..
        })
    ));
    assert_eq!(queue.depth(), 0);
    assert_eq!(queue.stats(at(0)).sent_total, 0);
}

#[test]
fn bodies_allow_only_xml_characters() {
    let cases = [
        ("tab\t newline\n return\r", true),
        ("unicode é ✓ 🦀", true),
        ("\u{20}\u{D7FF}\u{E000}\u{FFFD}\u{10000}\u{10FFFF}", true),
        ("", true),
        ("nul \u{0}", false),
        ("bell \u{7}", false),
        ("vertical tab \u{B}", false),
        ("form feed \u{C}", false),
        ("unit separator \u{1F}", false),
        ("not a character \u{FFFE}", false),
        ("not a character \u{FFFF}", false),
    ];
    for (body, valid) in cases {
        let mut queue = standard().queue();
        let result = queue.send(at(0), vec![entry(1, body)]);
        if valid {
            assert!(result.is_ok(), "{body:?}: {result:?}");
        } else {
            assert!(
                matches!(&result, Err(QueueError::InvalidParameter { field, .. }) if field == "body"),
                "{body:?}: {result:?}"
            );
        }
    }
}

#[test]
fn typed_attributes_are_delivered_unchanged() {
    let attrs = attributes(&[
        ("kind", "String", text("order")),
        ("price", "Number", text("-12.50")),
        ("count", "Number.int", text("7")),
        (
            "blob",
            "Binary.png",
            AttributeData::Binary(vec![0, 159, 255]),
        ),
    ]);
    let mut queue = standard().queue();
    let mut one = entry(1, "body");
    one.attributes = attrs.clone();
    queue.send(at(0), vec![one]).unwrap();
    let delivered = queue.receive(at(0), 1, None).unwrap();
    assert_eq!(delivered[0].attributes, attrs);
    assert_eq!(&*delivered[0].body, "body");
    assert_eq!(
        delivered[0].attributes.get("count").unwrap().data_type(),
        "Number.int"
    );
}

#[test]
fn deliveries_carry_the_dedup_id_used() {
    let mut queue = fifo().queue();
    let mut explicit = entry(1, "a");
    explicit.group_id = Some("g".to_string());
    explicit.dedup_id = Some("d-1".to_string());
    let mut by_content = entry(2, "b");
    by_content.group_id = Some("g".to_string());
    queue.send(at(0), vec![explicit, by_content]).unwrap();
    let delivered = queue.receive(at(0), 10, None).unwrap();
    let dedup_ids: Vec<Option<&str>> = delivered.iter().map(|d| d.dedup_id.as_deref()).collect();
    let sha256_of_b = "3e23e8160039594a33894f6564e1b1348bbd7a0088d42c4acb73eeaed59c009d";
    assert_eq!(dedup_ids, [Some("d-1"), Some(sha256_of_b)]);
}
