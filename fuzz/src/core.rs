//! The `topic_pattern` target: routing keys and AMQP-style patterns (`baton_core::topic`)
//! from arbitrary text, and their matching against a plain recursive reference. The checks:
//! construction never panics and enforces the documented limits; a valid key is a pattern
//! that matches exactly itself; `#` matches every key; `Pattern::matches` agrees with the
//! reference on every pair.
//!
//! Shared with `crates/baton-core/tests/it/fuzz_corpus.rs`, so it uses nothing but
//! `baton-core`.

use baton_core::topic::pattern::{ROUTING_KEY_BYTES_MAX, ROUTING_KEY_WORDS_MAX};
use baton_core::topic::{Pattern, RoutingKey};

/// The input is `pattern \n key \n key...`, lossily decoded as UTF-8.
pub fn topic_pattern(input: &[u8]) {
    let text = String::from_utf8_lossy(input);
    let mut lines = text.split('\n');
    let pattern_text = lines.next().unwrap_or_default();
    let pattern = Pattern::new(pattern_text).ok();
    if let Some(pattern) = &pattern {
        assert_eq!(pattern.as_str(), pattern_text);
        check_limits(pattern_text);
        assert!(
            pattern_text
                .split('.')
                .all(|w| w == "*" || w == "#" || !w.contains(['*', '#'])),
            "a pattern with a partial wildcard word was accepted: {pattern_text:?}"
        );
    }
    let everything = Pattern::new("#").expect("`#` is a pattern");
    for key_text in lines.take(16) {
        let Ok(key) = RoutingKey::new(key_text) else {
            continue;
        };
        assert_eq!(key.as_str(), key_text);
        check_limits(key_text);
        assert!(
            !key_text.contains(['*', '#']),
            "a key with a wildcard: {key_text:?}"
        );
        let itself = Pattern::new(key_text).expect("a routing key is a valid pattern");
        assert!(itself.matches(&key), "{key_text:?} does not match itself");
        assert!(everything.matches(&key), "`#` does not match {key_text:?}");
        if let Some(pattern) = &pattern {
            let words: Vec<&str> = pattern_text.split('.').collect();
            let key_words: Vec<&str> = key_text.split('.').collect();
            assert_eq!(
                pattern.matches(&key),
                reference(&words, &key_words),
                "{pattern_text:?} against {key_text:?}"
            );
        }
    }
}

fn check_limits(text: &str) {
    assert!(
        !text.is_empty() && text.len() <= ROUTING_KEY_BYTES_MAX,
        "{text:?}"
    );
    assert!(text.split('.').count() <= ROUTING_KEY_WORDS_MAX, "{text:?}");
    assert!(
        text.split('.').all(|w| !w.is_empty()),
        "an empty word in {text:?}"
    );
    assert!(
        !text.chars().any(|c| c.is_control() || c.is_whitespace()),
        "a control or space character in {text:?}"
    );
}

/// AMQP topic matching, written the obvious way: `*` one word, `#` zero or more (memoized
/// on the pair of positions, so many `#`s stay cheap).
fn reference(pattern: &[&str], key: &[&str]) -> bool {
    fn go(
        pattern: &[&str],
        key: &[&str],
        i: usize,
        j: usize,
        memo: &mut Vec<Vec<Option<bool>>>,
    ) -> bool {
        if let Some(known) = memo[i][j] {
            return known;
        }
        let result = match pattern.get(i) {
            None => j == key.len(),
            Some(&"#") => (j..=key.len()).any(|next| go(pattern, key, i + 1, next, memo)),
            Some(&"*") => j < key.len() && go(pattern, key, i + 1, j + 1, memo),
            Some(word) => key.get(j) == Some(word) && go(pattern, key, i + 1, j + 1, memo),
        };
        memo[i][j] = Some(result);
        result
    }
    let mut memo = vec![vec![None; key.len() + 1]; pattern.len() + 1];
    go(pattern, key, 0, 0, &mut memo)
}
