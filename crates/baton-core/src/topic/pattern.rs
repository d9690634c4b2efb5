//! Routing keys and routing-key patterns, as AMQP topic exchanges define them.
//!
//! A routing key is a list of dot-separated words (`order.eu.created`). A pattern is a list of
//! dot-separated words too, where the word `*` matches exactly one word and the word `#` matches
//! zero or more words (`order.*.created`, `order.#`, `#`). Wildcards are whole words only:
//! `ord*` is malformed, not a prefix match. Both are validated at construction, so a `Pattern`
//! in hand is always well formed.

use std::fmt;

use super::TopicError;

/// Longest routing key or pattern, in bytes (AMQP's short-string limit).
pub const ROUTING_KEY_BYTES_MAX: usize = 255;
/// Most words in a routing key or pattern.
pub const ROUTING_KEY_WORDS_MAX: usize = 64;

/// One word of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Word {
    Literal(String),
    /// `*`: exactly one word.
    One,
    /// `#`: zero or more words.
    Any,
}

/// A validated routing-key pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    words: Vec<Word>,
}

/// A validated routing key: dot-separated, non-empty words without wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoutingKey(String);

/// Checks what keys and patterns share: length, word count, empty words, characters.
fn check_words<'a>(
    text: &'a str,
    what: &'static str,
    error: impl Fn(String) -> TopicError,
) -> Result<Vec<&'a str>, TopicError> {
    if text.is_empty() {
        return Err(error(format!("a {what} must not be empty")));
    }
    if text.len() > ROUTING_KEY_BYTES_MAX {
        return Err(error(format!(
            "a {what} is at most {ROUTING_KEY_BYTES_MAX} bytes, this one has {}",
            text.len()
        )));
    }
    if let Some(bad) = text.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(error(format!(
            "character U+{:04X} (control or whitespace) is not allowed in a {what}",
            bad as u32
        )));
    }
    let words: Vec<&str> = text.split('.').collect();
    if words.len() > ROUTING_KEY_WORDS_MAX {
        return Err(error(format!(
            "a {what} has at most {ROUTING_KEY_WORDS_MAX} words, this one has {}",
            words.len()
        )));
    }
    if let Some(position) = words.iter().position(|w| w.is_empty()) {
        return Err(error(format!(
            "word {} of the {what} is empty (leading, trailing or doubled '.')",
            position + 1
        )));
    }
    Ok(words)
}

impl RoutingKey {
    pub fn new(key: &str) -> Result<Self, TopicError> {
        let error = |reason| TopicError::InvalidRoutingKey {
            key: truncate(key),
            reason,
        };
        let words = check_words(key, "routing key", error)?;
        if let Some(word) = words.iter().find(|w| w.contains(['*', '#'])) {
            return Err(error(format!(
                "word {word:?} contains a wildcard; '*' and '#' belong in patterns, not routing keys"
            )));
        }
        Ok(RoutingKey(key.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Pattern {
    pub fn new(pattern: &str) -> Result<Self, TopicError> {
        let error = |reason| TopicError::InvalidPattern {
            pattern: truncate(pattern),
            reason,
        };
        let texts = check_words(pattern, "pattern", error)?;
        let mut words = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let word = match *text {
                "*" => Word::One,
                "#" => Word::Any,
                literal if literal.contains(['*', '#']) => {
                    return Err(error(format!(
                        "word {} ({literal:?}) mixes a wildcard with other characters; '*' and '#' must be whole words",
                        i + 1
                    )))
                }
                literal => Word::Literal(literal.to_string()),
            };
            words.push(word);
        }
        Ok(Pattern {
            text: pattern.to_string(),
            words,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether `key` matches. O(pattern words × key words).
    pub fn matches(&self, key: &RoutingKey) -> bool {
        let key: Vec<&str> = key.0.split('.').collect();
        // reachable[j]: the pattern words seen so far can consume exactly the first j key words.
        let mut reachable = vec![false; key.len() + 1];
        reachable[0] = true;
        for word in &self.words {
            let mut next = vec![false; key.len() + 1];
            for j in 0..=key.len() {
                if !reachable[j] {
                    continue;
                }
                match word {
                    Word::Any => {
                        // `#` consumes zero or more words: every position from j on.
                        next[j..].iter_mut().for_each(|r| *r = true);
                        break;
                    }
                    Word::One => {
                        if j < key.len() {
                            next[j + 1] = true;
                        }
                    }
                    Word::Literal(literal) => {
                        if key.get(j) == Some(&literal.as_str()) {
                            next[j + 1] = true;
                        }
                    }
                }
            }
            reachable = next;
        }
        reachable[key.len()]
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(ROUTING_KEY_BYTES_MAX + 20).collect()
}
