//! Message attributes, typed as SQS types them: `String`, `Number`, `Binary`, each optionally
//! with a custom label (`Number.float`). The native API accepts a plain string map as shorthand
//! for `String` attributes; both APIs land here.

use std::collections::BTreeMap;

use crate::error::QueueError;
use crate::limits::{ATTRIBUTE_NAME_CHARS_MAX, ATTRIBUTE_TYPE_CHARS_MAX, MESSAGE_ATTRIBUTES_MAX};

/// The value of one attribute: text for `String` and `Number`, bytes for `Binary`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeData {
    Text(String),
    Binary(Vec<u8>),
}

/// One typed attribute value. Construct with `AttributeValue::new`, which checks the type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeValue {
    data_type: String,
    data: AttributeData,
}

/// The base type an attribute's data type starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BaseType {
    String,
    Number,
    Binary,
}

impl AttributeValue {
    pub fn string(value: impl Into<String>) -> Self {
        AttributeValue {
            data_type: "String".to_string(),
            data: AttributeData::Text(value.into()),
        }
    }

    /// Checks that `data_type` is `String|Number|Binary[.label]` and that `data` fits it.
    pub fn new(data_type: &str, data: AttributeData) -> Result<Self, String> {
        let base = parse_data_type(data_type)?;
        match (base, &data) {
            (BaseType::String, AttributeData::Text(text)) => check_text(text)?,
            (BaseType::Number, AttributeData::Text(text)) => check_number(text)?,
            (BaseType::Binary, AttributeData::Binary(_)) => {}
            (BaseType::Binary, AttributeData::Text(_)) => {
                return Err("a Binary attribute carries bytes, not text".to_string())
            }
            (_, AttributeData::Binary(_)) => {
                return Err(format!("a {data_type} attribute carries text, not bytes"))
            }
        }
        Ok(AttributeValue {
            data_type: data_type.to_string(),
            data,
        })
    }

    pub fn data_type(&self) -> &str {
        &self.data_type
    }

    pub fn data(&self) -> &AttributeData {
        &self.data
    }

    pub fn base_type(&self) -> BaseType {
        parse_data_type(&self.data_type).unwrap_or(BaseType::String)
    }

    fn size_bytes(&self) -> u64 {
        let value_bytes = match &self.data {
            AttributeData::Text(text) => text.len(),
            AttributeData::Binary(bytes) => bytes.len(),
        };
        (self.data_type.len() + value_bytes) as u64
    }
}

/// The AWS X-Ray trace header SQS carries as a message system attribute.
pub const SYSTEM_TRACE_HEADER: &str = "AWS.TraceHeader";
/// Names reserved for system attributes (user names may not start with `AWS.`).
pub const SYSTEM_ATTRIBUTES: [&str; 1] = [SYSTEM_TRACE_HEADER];

/// Up to `MESSAGE_ATTRIBUTES_MAX` named, typed attributes, ordered by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MessageAttributes(BTreeMap<String, AttributeValue>);

impl MessageAttributes {
    /// No attributes, as a constant (for a `static` that empty messages can borrow).
    pub(crate) const EMPTY: MessageAttributes = MessageAttributes(BTreeMap::new());

    pub fn new(map: BTreeMap<String, AttributeValue>) -> Result<Self, QueueError> {
        if map.len() > MESSAGE_ATTRIBUTES_MAX {
            return Err(QueueError::InvalidParameter {
                field: "attributes".to_string(),
                reason: format!(
                    "{} attributes given, at most {MESSAGE_ATTRIBUTES_MAX} are allowed",
                    map.len()
                ),
            });
        }
        for name in map.keys() {
            check_attribute_name(name).map_err(|reason| QueueError::InvalidParameter {
                field: format!("attributes.{name}"),
                reason,
            })?;
        }
        Ok(MessageAttributes(map))
    }

    /// Adds a system attribute (see `SYSTEM_ATTRIBUTES`): one the broker carries for an API,
    /// such as SQS's `AWSTraceHeader`. Its name is reserved, so no user attribute can clash with
    /// it, and it does not count toward `MESSAGE_ATTRIBUTES_MAX`.
    pub fn insert_system(&mut self, name: &'static str, value: AttributeValue) {
        assert!(
            SYSTEM_ATTRIBUTES.contains(&name),
            "{name} is not a system attribute"
        );
        self.0.insert(name.to_string(), value);
    }

    /// The user attributes, without system attributes.
    pub fn user(&self) -> impl Iterator<Item = (&String, &AttributeValue)> {
        self.0
            .iter()
            .filter(|(name, _)| !SYSTEM_ATTRIBUTES.contains(&name.as_str()))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&String, &AttributeValue)> {
        self.0.iter()
    }

    pub fn get(&self, name: &str) -> Option<&AttributeValue> {
        self.0.get(name)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Names, types and values, as SQS counts them toward the message size.
    pub fn size_bytes(&self) -> u64 {
        self.0
            .iter()
            .map(|(name, value)| name.len() as u64 + value.size_bytes())
            .sum()
    }
}

/// SQS attribute names: `[A-Za-z0-9_.-]`, no leading or trailing period, no `..`, no
/// reserved `AWS.` / `Amazon.` prefix, at most 256 characters.
pub fn check_attribute_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an attribute name must not be empty".to_string());
    }
    if name.chars().count() > ATTRIBUTE_NAME_CHARS_MAX {
        return Err(format!(
            "an attribute name must be at most {ATTRIBUTE_NAME_CHARS_MAX} characters"
        ));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!(
            "character {bad:?} is not allowed in an attribute name"
        ));
    }
    if name.starts_with('.') || name.ends_with('.') || name.contains("..") {
        return Err("an attribute name must not start or end with '.' or contain '..'".to_string());
    }
    let lower = name.to_ascii_lowercase();
    if lower.starts_with("aws.") || lower.starts_with("amazon.") {
        return Err("attribute names starting with `AWS.` or `Amazon.` are reserved".to_string());
    }
    Ok(())
}

fn parse_data_type(data_type: &str) -> Result<BaseType, String> {
    if data_type.chars().count() > ATTRIBUTE_TYPE_CHARS_MAX {
        return Err(format!(
            "a data type must be at most {ATTRIBUTE_TYPE_CHARS_MAX} characters"
        ));
    }
    let (base, label) = match data_type.split_once('.') {
        Some((base, label)) => (base, Some(label)),
        None => (data_type, None),
    };
    let base = match base {
        "String" => BaseType::String,
        "Number" => BaseType::Number,
        "Binary" => BaseType::Binary,
        other => {
            return Err(format!(
                "data type {other:?} is unknown: use String, Number or Binary, optionally with a `.label`"
            ))
        }
    };
    if let Some(label) = label {
        if label.is_empty()
            || !label
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        {
            return Err(format!(
                "custom type label {label:?} must be non-empty [A-Za-z0-9_.-]"
            ));
        }
    }
    Ok(base)
}

fn check_text(text: &str) -> Result<(), String> {
    if let Some(bad) = text.chars().find(|c| !is_xml_char(*c)) {
        return Err(format!(
            "character U+{:04X} is not allowed in a message",
            bad as u32
        ));
    }
    Ok(())
}

/// SQS numbers: up to 38 significant digits, between -10^128 and 10^126.
fn check_number(text: &str) -> Result<(), String> {
    let bad = || Err(format!("{text:?} is not a number"));
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed != text {
        return bad();
    }
    let value: f64 = match trimmed.parse() {
        Ok(value) => value,
        Err(_) => return bad(),
    };
    if !value.is_finite() || trimmed.contains(['i', 'I', 'n', 'N']) {
        return bad();
    }
    let digits = trimmed
        .split(['e', 'E'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    let significant = digits.trim_start_matches('0').trim_end_matches('0').len();
    if significant > 38 {
        return Err(format!("{text:?} has more than 38 significant digits"));
    }
    if !(-1e128..=1e126).contains(&value) {
        return Err(format!("{text:?} is outside -10^128..10^126"));
    }
    Ok(())
}

/// The characters SQS accepts in bodies and attribute text (those XML 1.0 allows).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

/// The first character of `text` that [`is_xml_char`] refuses, if any.
///
/// Message bodies are checked on every send, so the common case is a byte scan the compiler
/// vectorises: in UTF-8 a refused character is either an ASCII control byte or U+FFFE/U+FFFF
/// (`EF BF BE`/`EF BF BF`), so text with neither kind of byte needs no decoding. Each chunk is
/// first scanned for any byte below 0x20 or 0xEF (an unsigned minimum and one comparison per
/// byte, no branches: about 0.6 instructions a byte); only a chunk with one (a tab, a line
/// break, a character from U+F000) is looked at byte by byte, and only a real candidate is
/// decoded.
pub fn first_non_xml_char(text: &str) -> Option<char> {
    let plain = text.as_bytes().chunks(256).all(|chunk| {
        let suspicious = chunk
            .iter()
            .fold(false, |any, &b| any | (b.min(0x20) != 0x20) | (b == 0xEF));
        !suspicious
            || chunk
                .iter()
                .all(|&b| ((b >= 0x20) & (b != 0xEF)) | (b == 0x09) | (b == 0x0A) | (b == 0x0D))
    });
    if plain {
        return None;
    }
    text.chars().find(|c| !is_xml_char(*c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_scan_agrees_with_the_character_rule() {
        let samples = [
            "",
            "plain ascii \t\n\r",
            "del \u{7F} is allowed",
            "bell \u{7}",
            "nul \u{0}",
            "unit separator \u{1F}",
            "hangul 안녕 and emoji 🎉",
            "bom \u{FEFF} and private use \u{E000}",
            "noncharacter \u{FFFE}",
            "noncharacter \u{FFFF}",
            "last allowed \u{FFFD}",
            "ef lead without refusal \u{F000}\u{FFF0}",
        ];
        let long = |inner: &str| format!("{}{inner}{}", "a".repeat(300), "b".repeat(300));
        let longer: Vec<String> = samples.iter().map(|s| long(s)).collect();
        for sample in samples
            .iter()
            .copied()
            .chain(longer.iter().map(String::as_str))
        {
            assert_eq!(
                first_non_xml_char(sample),
                sample.chars().find(|c| !is_xml_char(*c)),
                "{sample:?}"
            );
        }
        assert_eq!(first_non_xml_char("a\u{7}b"), Some('\u{7}'));
        let long = "x".repeat(130) + "\u{1}" + &"y".repeat(10);
        assert_eq!(first_non_xml_char(&long), Some('\u{1}'));
        assert_eq!(first_non_xml_char("x\u{FFFF}"), Some('\u{FFFF}'));
    }

    fn text(s: &str) -> AttributeData {
        AttributeData::Text(s.to_string())
    }

    #[test]
    fn typed_values_are_checked_against_their_type() {
        assert!(AttributeValue::new("String", text("hi")).is_ok());
        assert!(AttributeValue::new("String.custom", text("hi")).is_ok());
        assert!(AttributeValue::new("Number", text("-12.5e3")).is_ok());
        assert!(AttributeValue::new("Number.int", text("7")).is_ok());
        assert!(AttributeValue::new("Binary", AttributeData::Binary(vec![0, 1])).is_ok());
        assert!(AttributeValue::new("Number", text("seven")).is_err());
        assert!(AttributeValue::new("Number", text("NaN")).is_err());
        assert!(AttributeValue::new("Number", text("1e300")).is_err());
        assert!(AttributeValue::new("Number", text(&"1".repeat(39))).is_err());
        assert!(AttributeValue::new("Binary", text("x")).is_err());
        assert!(AttributeValue::new("String", AttributeData::Binary(vec![])).is_err());
        assert!(AttributeValue::new("Text", text("x")).is_err());
        assert!(AttributeValue::new("String.", text("x")).is_err());
        assert!(AttributeValue::new("String", text("nul\u{0}")).is_err());
    }

    #[test]
    fn names_follow_the_sqs_rule() {
        for ok in ["a", "trace-id", "x.y_z"] {
            assert!(check_attribute_name(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            ".a",
            "a.",
            "a..b",
            "AWS.x",
            "amazon.y",
            "a b",
            &"n".repeat(257),
        ] {
            assert!(check_attribute_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn size_counts_names_types_and_values() {
        let mut map = BTreeMap::new();
        map.insert("ab".to_string(), AttributeValue::string("xyz"));
        let attrs = MessageAttributes::new(map).expect("valid");
        assert_eq!(attrs.size_bytes(), 2 + "String".len() as u64 + 3);
    }

    #[test]
    fn more_than_ten_attributes_are_refused() {
        let map = (0..11)
            .map(|i| (format!("a{i}"), AttributeValue::string("v")))
            .collect();
        assert!(matches!(
            MessageAttributes::new(map),
            Err(QueueError::InvalidParameter { field, .. }) if field == "attributes"
        ));
    }
}
