//! What a sink writes: one [`Row`] per stream record or queue message, encoded as the JSON
//! array that `json_populate_recordset` turns into the table's rows.
//!
//! Why JSON: PostgreSQL converts each field to its column's type itself (text, numbers,
//! jsonb, timestamptz), so one statement serves the default table and any custom mapping,
//! and a batch is one parameter. PostgreSQL's text cannot hold U+0000, so text values carry
//! U+FFFD in its place, and a JSON body containing `\u0000` (which jsonb refuses) is kept as
//! text.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use baton_core::{AttributeData, Delivery};
use baton_engine::StreamRecord;
use serde_json::Value;

use crate::sinks::spec::{Column, ColumnValue, PathStep};

/// One message on its way to the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `partition-offset` for stream records, the message id for queue messages: with
    /// `source`, the row's key, which makes a redelivered message a no-op.
    pub id: String,
    pub source: String,
    pub partition: Option<u32>,
    /// The stream offset, or the queue message's sequence number.
    pub offset: u64,
    pub key: Option<String>,
    pub headers: BTreeMap<String, String>,
    pub body: String,
    pub timestamp_ms: u64,
}

impl Row {
    pub fn from_record(source: &str, record: &StreamRecord) -> Row {
        Row {
            id: format!("{}-{}", record.partition, record.offset),
            source: source.to_string(),
            partition: Some(record.partition),
            offset: record.offset,
            key: record.key.clone(),
            headers: record.headers.iter().cloned().collect(),
            body: record.value.clone(),
            timestamp_ms: record.timestamp.as_millis(),
        }
    }

    pub fn from_delivery(source: &str, delivery: &Delivery) -> Row {
        let headers = delivery
            .attributes
            .iter()
            .map(|(name, value)| {
                let text = match value.data() {
                    AttributeData::Text(text) => text.clone(),
                    AttributeData::Binary(bytes) => BASE64.encode(bytes),
                };
                (name.to_string(), text)
            })
            .collect();
        Row {
            id: delivery.id.to_string(),
            source: source.to_string(),
            partition: None,
            offset: delivery.seq,
            key: delivery.group_id.as_deref().map(str::to_string),
            headers,
            body: delivery.body.to_string(),
            timestamp_ms: delivery.sent_at.as_millis(),
        }
    }

    /// The bytes a batch limit counts.
    pub fn size_bytes(&self) -> usize {
        self.body.len()
            + self.key.as_ref().map_or(0, String::len)
            + self
                .headers
                .iter()
                .map(|(k, v)| k.len() + v.len())
                .sum::<usize>()
            + self.id.len()
    }
}

/// Whether `body` goes to jsonb: valid JSON without `\u0000`.
fn is_json(body: &str) -> bool {
    !body.contains("\\u0000") && serde_json::from_str::<serde::de::IgnoredAny>(body).is_ok()
}

fn clean(text: &str) -> std::borrow::Cow<'_, str> {
    if text.contains('\0') {
        std::borrow::Cow::Owned(text.replace('\0', "\u{FFFD}"))
    } else {
        std::borrow::Cow::Borrowed(text)
    }
}

fn push_str(out: &mut String, text: &str) {
    // Writing a string into a String cannot fail.
    let _ = serde_json::to_writer(string_writer(out), &*clean(text));
}

/// `serde_json` writes bytes; this adapter appends them to a `String` (they are UTF-8, since
/// they encode a `&str`).
fn string_writer(out: &mut String) -> impl std::io::Write + '_ {
    struct W<'a>(&'a mut String);
    impl std::io::Write for W<'_> {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            match std::str::from_utf8(buf) {
                Ok(text) => {
                    self.0.push_str(text);
                    Ok(buf.len())
                }
                Err(e) => Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            }
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    W(out)
}

fn clean_value(value: &mut Value) {
    match value {
        Value::String(s) if s.contains('\0') => *s = s.replace('\0', "\u{FFFD}"),
        Value::Array(items) => items.iter_mut().for_each(clean_value),
        Value::Object(map) => map.values_mut().for_each(clean_value),
        _ => {}
    }
}

/// `ms` since the epoch as RFC 3339 in UTC with milliseconds, which timestamptz reads.
pub fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

fn at_path<'v>(value: &'v Value, steps: &[PathStep]) -> Option<&'v Value> {
    steps.iter().try_fold(value, |v, step| match step {
        PathStep::Field(name) => v.get(name),
        PathStep::Index(i) => v.get(i),
    })
}

/// Encodes `rows` as one JSON array of objects keyed by column name.
pub fn encode(rows: &[Row], columns: &[Column]) -> String {
    let needs_parse = columns
        .iter()
        .any(|c| matches!(c.value, ColumnValue::Path(_)));
    let mut out = String::with_capacity(rows.iter().map(|r| r.size_bytes() + 256).sum());
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let json = is_json(&row.body);
        let parsed = (needs_parse && json)
            .then(|| serde_json::from_str::<Value>(&row.body).ok())
            .flatten();
        out.push('{');
        for (j, column) in columns.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_str(&mut out, column.name.as_str());
            out.push(':');
            encode_value(&mut out, row, &column.value, json, parsed.as_ref());
        }
        out.push('}');
    }
    out.push(']');
    out
}

fn encode_value(
    out: &mut String,
    row: &Row,
    value: &ColumnValue,
    json: bool,
    parsed: Option<&Value>,
) {
    match value {
        ColumnValue::Id => push_str(out, &row.id),
        ColumnValue::Source => push_str(out, &row.source),
        ColumnValue::Partition => match row.partition {
            Some(p) => {
                let _ = write!(out, "{p}");
            }
            None => out.push_str("null"),
        },
        ColumnValue::Offset => {
            let _ = write!(out, "{}", row.offset);
        }
        ColumnValue::Key => match &row.key {
            Some(key) => push_str(out, key),
            None => out.push_str("null"),
        },
        ColumnValue::Headers => {
            out.push('{');
            for (k, (name, text)) in row.headers.iter().enumerate() {
                if k > 0 {
                    out.push(',');
                }
                push_str(out, name);
                out.push(':');
                push_str(out, text);
            }
            out.push('}');
        }
        ColumnValue::Value if json => out.push_str(&row.body),
        ColumnValue::ValueText if !json => push_str(out, &row.body),
        ColumnValue::Value | ColumnValue::ValueText => out.push_str("null"),
        ColumnValue::Timestamp => push_str(out, &rfc3339_ms(row.timestamp_ms)),
        ColumnValue::Path(steps) => match parsed.and_then(|v| at_path(v, steps)) {
            Some(found) => {
                let mut found = found.clone();
                clean_value(&mut found);
                out.push_str(&found.to_string());
            }
            None => out.push_str("null"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::spec;

    fn row(body: &str) -> Row {
        Row {
            id: "0-7".into(),
            source: "st".into(),
            partition: Some(0),
            offset: 7,
            key: Some("k\0".into()),
            headers: [("h".to_string(), "v".to_string())].into(),
            body: body.into(),
            timestamp_ms: 1_700_000_000_123,
        }
    }

    fn columns(json: serde_json::Value) -> Vec<Column> {
        let definition: baton_proto::SinkDefinition = serde_json::from_value(serde_json::json!({
            "source": {"stream": "st"},
            "postgres": {"url": "postgres://u@h/db", "table": "t", "columns": json}
        }))
        .expect("shape");
        spec::check("s", definition).expect("valid").0.columns
    }

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn json_bodies_go_to_value_and_text_to_value_text() {
        let definition: baton_proto::SinkDefinition = serde_json::from_value(serde_json::json!({
            "source": {"stream": "st"}, "postgres": {"url": "postgres://u@h/db", "table": "t"}
        }))
        .expect("shape");
        let cols = spec::check("s", definition).expect("valid").0.columns;
        let encoded = encode(
            &[row(r#"{"a":1}"#), row("plain"), row(r#""\u0000""#)],
            &cols,
        );
        let parsed: Value = serde_json::from_str(&encoded).expect("valid JSON");
        assert_eq!(parsed[0]["value"], serde_json::json!({"a": 1}));
        assert_eq!(parsed[0]["value_text"], Value::Null);
        assert_eq!(parsed[1]["value"], Value::Null);
        assert_eq!(parsed[1]["value_text"], "plain");
        assert_eq!(parsed[2]["value_text"], r#""\u0000""#);
        assert_eq!(parsed[0]["key"], "k\u{FFFD}");
        assert_eq!(parsed[0]["headers"], serde_json::json!({"h": "v"}));
        assert_eq!(parsed[0]["timestamp"], "2023-11-14T22:13:20.123Z");
        assert_eq!(parsed[0]["offset"], 7);
    }

    #[test]
    fn custom_columns_take_paths() {
        let cols = columns(
            serde_json::json!({"kind": "$.type", "n": {"path": "$.items[1].n", "type": "bigint"}, "at": "$timestamp"}),
        );
        let encoded = encode(
            &[
                row(r#"{"type":"login","items":[{"n":1},{"n":2}]}"#),
                row("text"),
            ],
            &cols,
        );
        let parsed: Value = serde_json::from_str(&encoded).expect("valid JSON");
        assert_eq!(parsed[0]["kind"], "login");
        assert_eq!(parsed[0]["n"], 2);
        assert_eq!(parsed[0]["id"], "0-7");
        assert_eq!(parsed[1]["kind"], Value::Null);
        assert_eq!(parsed[1]["at"], "2023-11-14T22:13:20.123Z");
    }
}
