//! A sink definition checked once, at `PUT`, into typed values: names, the source, the
//! PostgreSQL URL, the table and column identifiers (SQL is only ever built from these, each
//! identifier quoted), the column mapping and the batch limits.
//!
//! Invariant: a `SinkSpec` only exists for a definition every check accepted, so the worker
//! never meets a bad identifier or an out-of-range limit.

use std::collections::BTreeMap;
use std::str::FromStr;

use baton_core::stream::GroupName;
use baton_core::topic::Pattern;
use baton_core::{QueueName, StreamName};
use baton_proto as proto;

use crate::service::ServiceError;

/// Longest sink name: its internal queue `_baton-sink-<name>` must fit the 80 characters of
/// a queue name.
pub const SINK_NAME_CHARS_MAX: usize = 80 - INTERNAL_QUEUE_PREFIX.len();
/// The prefix of every sink's internal queue (its stored definition, and for a topic source
/// the messages the topic delivers to it).
pub const INTERNAL_QUEUE_PREFIX: &str = "_baton-sink-";
pub const BATCH_MAX_DEFAULT: u32 = 1_000;
/// Most rows of one transaction.
pub const BATCH_MAX_MAX: u32 = 10_000;
pub const FLUSH_MS_DEFAULT: u64 = 200;
pub const FLUSH_MS_MAX: u64 = 60_000;
/// Most custom columns.
pub const COLUMNS_MAX: usize = 64;
/// Most steps of a `$.a.b[0]` path.
pub const PATH_STEPS_MAX: usize = 16;
/// PostgreSQL's identifier length (longer names are cut by the server, so they are refused).
pub const IDENTIFIER_BYTES_MAX: usize = 63;
/// The column types a sink may create.
pub const SQL_TYPES: &[&str] = &[
    "text",
    "bigint",
    "integer",
    "double precision",
    "numeric",
    "boolean",
    "jsonb",
    "timestamptz",
];

/// A quoted PostgreSQL identifier: checked against `[A-Za-z_][A-Za-z0-9_]*`, at most 63 bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident(String);

impl Ident {
    pub fn new(field: &str, raw: &str) -> Result<Self, ServiceError> {
        let mut chars = raw.chars();
        let first_ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(ServiceError::invalid(
                field,
                format!("{raw:?} is not a plain identifier: a letter or `_`, then letters, digits or `_`"),
            ));
        }
        if raw.len() > IDENTIFIER_BYTES_MAX {
            return Err(ServiceError::invalid(
                field,
                format!("{raw:?} is longer than {IDENTIFIER_BYTES_MAX} bytes"),
            ));
        }
        Ok(Ident(raw.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The identifier in double quotes (the check above admits no quote; doubling them anyway
    /// keeps this correct on its own).
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0.replace('"', "\"\""))
    }
}

/// `table` or `schema.table`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: Option<Ident>,
    pub table: Ident,
}

impl TableName {
    pub fn parse(raw: &str) -> Result<Self, ServiceError> {
        let field = "postgres.table";
        let parts: Vec<&str> = raw.split('.').collect();
        match parts.as_slice() {
            [table] => Ok(TableName {
                schema: None,
                table: Ident::new(field, table)?,
            }),
            [schema, table] => Ok(TableName {
                schema: Some(Ident::new(field, schema)?),
                table: Ident::new(field, table)?,
            }),
            _ => Err(ServiceError::invalid(
                field,
                format!("{raw:?} is neither `table` nor `schema.table`"),
            )),
        }
    }

    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", schema.quoted(), self.table.quoted()),
            None => self.table.quoted(),
        }
    }

    /// Another table in the same schema.
    pub fn sibling(&self, table: &str) -> TableName {
        TableName {
            schema: self.schema.clone(),
            table: Ident(table.to_string()),
        }
    }

    /// As the positions table keys it: `schema.table` or `table`.
    pub fn display(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", schema.as_str(), self.table.as_str()),
            None => self.table.as_str().to_string(),
        }
    }
}

/// Where a sink reads.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// By offset, from the positions the sink keeps in PostgreSQL.
    Stream(StreamName),
    /// Through a consumer group (created at `earliest` if missing).
    Group(StreamName, GroupName),
    Queue(QueueName),
    /// Through the sink's internal queue, which a subscription of the topic fills.
    Topic(baton_core::TopicName, Option<Pattern>),
}

impl Source {
    /// The `source` column's value.
    pub fn name(&self) -> &str {
        match self {
            Source::Stream(s) | Source::Group(s, _) => s.as_str(),
            Source::Queue(q) => q.as_str(),
            Source::Topic(t, _) => t.as_str(),
        }
    }
}

/// What one column holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ColumnValue {
    Id,
    Source,
    Partition,
    Offset,
    Key,
    Headers,
    /// The body as JSON (null when it is not JSON).
    Value,
    /// The body as text (null when it is JSON).
    ValueText,
    Timestamp,
    /// The value at this path of a JSON body (null when absent or not JSON).
    Path(Vec<PathStep>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    Field(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: Ident,
    pub value: ColumnValue,
    /// One of [`SQL_TYPES`].
    pub sql_type: &'static str,
}

/// A checked definition.
#[derive(Debug, Clone)]
pub struct SinkSpec {
    pub name: String,
    pub source: Source,
    pub pg: tokio_postgres::Config,
    pub table: TableName,
    pub create_table: bool,
    /// Every column the sink writes, `id` and `source` (the row's key) first.
    pub columns: Vec<Column>,
    /// Whether the columns are the default ones (then the table gets an index on time).
    pub default_columns: bool,
    pub batch_max: u32,
    pub flush_ms: u64,
}

impl SinkSpec {
    /// The internal queue that keeps this sink's definition.
    pub fn internal_queue(&self) -> QueueName {
        internal_queue(&self.name)
    }
}

/// The internal queue of sink `name` (a checked name always makes a valid queue name).
pub fn internal_queue(name: &str) -> QueueName {
    QueueName::new(&format!("{INTERNAL_QUEUE_PREFIX}{name}"))
        .unwrap_or_else(|_| unreachable!("checked sink names make valid queue names"))
}

/// Checks a sink name: 1..=68 characters of `[A-Za-z0-9_-]`.
pub fn check_name(name: &str) -> Result<(), ServiceError> {
    let ok = (1..=SINK_NAME_CHARS_MAX).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(ServiceError::Engine(baton_engine::EngineError::Queue(
            baton_core::QueueError::InvalidName {
                name: name.to_string(),
                reason: format!(
                    "a sink name is 1 to {SINK_NAME_CHARS_MAX} characters of A-Z, a-z, 0-9, `_` and `-`"
                ),
            },
        )))
    }
}

/// Checks `definition` and fills in its defaults; returns the spec and the normalized
/// definition (what is stored and shown).
pub fn check(
    name: &str,
    mut definition: proto::SinkDefinition,
) -> Result<(SinkSpec, proto::SinkDefinition), ServiceError> {
    check_name(name)?;
    let source = check_source(&definition.source)?;
    let pg = check_url(&definition.postgres.url)?;
    let table = TableName::parse(&definition.postgres.table)?;
    let (columns, default_columns) = match &definition.postgres.columns {
        None => (default_columns(), true),
        Some(map) => (custom_columns(map)?, false),
    };
    let batch_max = definition.batch_max.unwrap_or(BATCH_MAX_DEFAULT);
    if !(1..=BATCH_MAX_MAX).contains(&batch_max) {
        return Err(ServiceError::invalid(
            "batch_max",
            format!("{batch_max} is outside 1..={BATCH_MAX_MAX}"),
        ));
    }
    let flush_ms = definition.flush_ms.unwrap_or(FLUSH_MS_DEFAULT);
    if FLUSH_MS_MAX < flush_ms {
        return Err(ServiceError::invalid(
            "flush_ms",
            format!("{flush_ms} is outside 0..={FLUSH_MS_MAX}"),
        ));
    }
    let create_table = definition.postgres.create_table.unwrap_or(true);
    definition.batch_max = Some(batch_max);
    definition.flush_ms = Some(flush_ms);
    definition.postgres.create_table = Some(create_table);
    let spec = SinkSpec {
        name: name.to_string(),
        source,
        pg,
        table,
        create_table,
        columns,
        default_columns,
        batch_max,
        flush_ms,
    };
    Ok((spec, definition))
}

fn check_source(source: &proto::SinkSource) -> Result<Source, ServiceError> {
    let chosen = [&source.stream, &source.topic, &source.queue]
        .iter()
        .filter(|s| s.is_some())
        .count();
    if chosen != 1 {
        return Err(ServiceError::invalid(
            "source",
            "give exactly one of `stream`, `topic` or `queue`",
        ));
    }
    if source.group.is_some() && source.stream.is_none() {
        return Err(ServiceError::invalid(
            "source.group",
            "a group belongs to a `stream` source",
        ));
    }
    if source.pattern.is_some() && source.topic.is_none() {
        return Err(ServiceError::invalid(
            "source.pattern",
            "a pattern belongs to a `topic` source",
        ));
    }
    if let Some(stream) = &source.stream {
        let stream = StreamName::new(stream)?;
        return Ok(match &source.group {
            Some(group) => Source::Group(stream, GroupName::new(group)?),
            None => Source::Stream(stream),
        });
    }
    if let Some(queue) = &source.queue {
        let queue = QueueName::new(queue)?;
        if queue.as_str().starts_with(INTERNAL_QUEUE_PREFIX) {
            return Err(ServiceError::invalid(
                "source.queue",
                "a sink's internal queue cannot be the source of a sink",
            ));
        }
        return Ok(Source::Queue(queue));
    }
    let topic = baton_core::TopicName::new(source.topic.as_deref().unwrap_or_default())?;
    let pattern = match &source.pattern {
        Some(p) => Some(Pattern::new(p)?),
        None => None,
    };
    Ok(Source::Topic(topic, pattern))
}

fn check_url(url: &str) -> Result<tokio_postgres::Config, ServiceError> {
    let field = "postgres.url";
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(ServiceError::invalid(
            field,
            "must be a URL starting with postgres:// or postgresql://",
        ));
    }
    let config = tokio_postgres::Config::from_str(url)
        .map_err(|e| ServiceError::invalid(field, format!("not a PostgreSQL URL: {e}")))?;
    if config.get_hosts().is_empty() {
        return Err(ServiceError::invalid(field, "names no host"));
    }
    if config.get_user().is_none() {
        return Err(ServiceError::invalid(
            field,
            "names no user (postgres://user@host/db)",
        ));
    }
    if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
        return Err(ServiceError::invalid(
            field,
            "sslmode=require needs TLS, which sinks do not support yet",
        ));
    }
    Ok(config)
}

/// `url` with its password replaced by `***`, for showing.
pub fn masked_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        Ok(_) => url.to_string(),
        Err(_) => "(unparsable URL hidden)".to_string(),
    }
}

fn column(name: &str, value: ColumnValue, sql_type: &'static str) -> Column {
    Column {
        name: Ident(name.to_string()),
        value,
        sql_type,
    }
}

/// The default table's columns.
fn default_columns() -> Vec<Column> {
    vec![
        column("id", ColumnValue::Id, "text"),
        column("source", ColumnValue::Source, "text"),
        column("partition", ColumnValue::Partition, "integer"),
        column("offset", ColumnValue::Offset, "bigint"),
        column("key", ColumnValue::Key, "text"),
        column("headers", ColumnValue::Headers, "jsonb"),
        column("value", ColumnValue::Value, "jsonb"),
        column("value_text", ColumnValue::ValueText, "text"),
        column("timestamp", ColumnValue::Timestamp, "timestamptz"),
    ]
}

fn custom_columns(map: &BTreeMap<String, proto::SinkColumn>) -> Result<Vec<Column>, ServiceError> {
    if map.is_empty() || COLUMNS_MAX < map.len() {
        return Err(ServiceError::invalid(
            "postgres.columns",
            format!("give 1 to {COLUMNS_MAX} columns (or leave it out for the default table)"),
        ));
    }
    let mut columns = vec![
        column("id", ColumnValue::Id, "text"),
        column("source", ColumnValue::Source, "text"),
    ];
    for (name, spec) in map {
        let field = format!("postgres.columns.{name}");
        let ident = Ident::new(&field, name)?;
        if name == "id" || name == "source" {
            return Err(ServiceError::invalid(
                field,
                "`id` and `source` are the row's key, which the sink always writes",
            ));
        }
        let (path, sql_type) = match spec {
            proto::SinkColumn::Path(path) => (path.as_str(), None),
            proto::SinkColumn::Typed { path, sql_type } => (path.as_str(), Some(sql_type.as_str())),
        };
        let value = parse_value(&field, path)?;
        let sql_type = match sql_type {
            Some(t) => SQL_TYPES
                .iter()
                .copied()
                .find(|known| *known == t)
                .ok_or_else(|| {
                    ServiceError::invalid(
                        format!("{field}.type"),
                        format!("{t:?} is not one of {}", SQL_TYPES.join(", ")),
                    )
                })?,
            None => default_type(&value),
        };
        columns.push(Column {
            name: ident,
            value,
            sql_type,
        });
    }
    Ok(columns)
}

fn default_type(value: &ColumnValue) -> &'static str {
    match value {
        ColumnValue::Partition => "integer",
        ColumnValue::Offset => "bigint",
        ColumnValue::Headers | ColumnValue::Value => "jsonb",
        ColumnValue::Timestamp => "timestamptz",
        _ => "text",
    }
}

/// `$id`, `$source`, ... or `$.a.b[0]`.
fn parse_value(field: &str, raw: &str) -> Result<ColumnValue, ServiceError> {
    let special = match raw {
        "$id" => Some(ColumnValue::Id),
        "$source" => Some(ColumnValue::Source),
        "$partition" => Some(ColumnValue::Partition),
        "$offset" => Some(ColumnValue::Offset),
        "$key" => Some(ColumnValue::Key),
        "$headers" => Some(ColumnValue::Headers),
        "$value" => Some(ColumnValue::Value),
        "$value_text" => Some(ColumnValue::ValueText),
        "$timestamp" => Some(ColumnValue::Timestamp),
        _ => None,
    };
    if let Some(value) = special {
        return Ok(value);
    }
    let bad = |reason: &str| {
        ServiceError::invalid(
            field,
            format!("{raw:?} {reason}; write `$.field.sub`, `$.list[0]`, or one of $id, $source, $partition, $offset, $key, $headers, $value, $value_text, $timestamp"),
        )
    };
    let Some(mut rest) = raw.strip_prefix('$') else {
        return Err(bad("does not start with `$`"));
    };
    let mut steps = Vec::new();
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let (name, tail) = after.split_at(end);
            if name.is_empty()
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                return Err(bad("has an empty or unusual field name"));
            }
            steps.push(PathStep::Field(name.to_string()));
            rest = tail;
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']').ok_or_else(|| bad("has an unclosed `[`"))?;
            let index = after[..end]
                .parse::<usize>()
                .map_err(|_| bad("has an index that is not a number"))?;
            steps.push(PathStep::Index(index));
            rest = &after[end + 1..];
        } else {
            return Err(bad("is not a path"));
        }
        if PATH_STEPS_MAX < steps.len() {
            return Err(bad(&format!("has more than {PATH_STEPS_MAX} steps")));
        }
    }
    if steps.is_empty() {
        return Err(bad("names no field"));
    }
    Ok(ColumnValue::Path(steps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn definition(source: serde_json::Value, postgres: serde_json::Value) -> proto::SinkDefinition {
        serde_json::from_value(serde_json::json!({"source": source, "postgres": postgres}))
            .expect("shape")
    }

    fn reason(result: Result<(SinkSpec, proto::SinkDefinition), ServiceError>) -> String {
        match result {
            Err(error) => error.to_string(),
            Ok(_) => "accepted".to_string(),
        }
    }

    #[test]
    fn identifiers_are_plain_and_quoted() {
        assert_eq!(
            Ident::new("f", "events_2").expect("ok").quoted(),
            "\"events_2\""
        );
        for bad in [
            "",
            "2x",
            "a-b",
            "a\"b",
            "a b",
            "x;drop table y",
            &"a".repeat(64),
        ] {
            assert!(Ident::new("f", bad).is_err(), "{bad:?}");
        }
        let t = TableName::parse("arch.events").expect("ok");
        assert_eq!(t.quoted(), "\"arch\".\"events\"");
        assert!(TableName::parse("a.b.c").is_err());
        assert!(TableName::parse("a.").is_err());
    }

    #[test]
    fn defaults_are_filled_in() {
        let (spec, normalized) = check(
            "s",
            definition(
                serde_json::json!({"stream": "st"}),
                serde_json::json!({"url": "postgres://postgres@127.0.0.1:5432/test", "table": "t"}),
            ),
        )
        .expect("valid");
        assert_eq!(spec.batch_max, BATCH_MAX_DEFAULT);
        assert_eq!(normalized.flush_ms, Some(FLUSH_MS_DEFAULT));
        assert_eq!(normalized.postgres.create_table, Some(true));
        assert!(spec.default_columns);
        assert_eq!(spec.columns.len(), 9);
    }

    #[test]
    fn bad_definitions_name_their_field() {
        let pg = serde_json::json!({"url": "postgres://u@h/db", "table": "t"});
        let cases = [
            (serde_json::json!({}), pg.clone(), "exactly one"),
            (
                serde_json::json!({"stream": "a", "queue": "b"}),
                pg.clone(),
                "exactly one",
            ),
            (
                serde_json::json!({"queue": "q", "group": "g"}),
                pg.clone(),
                "source.group",
            ),
            (
                serde_json::json!({"stream": "s", "pattern": "a.*"}),
                pg.clone(),
                "source.pattern",
            ),
            (
                serde_json::json!({"queue": "_baton-sink-x"}),
                pg.clone(),
                "internal queue",
            ),
            (
                serde_json::json!({"queue": "q"}),
                serde_json::json!({"url": "http://h/db", "table": "t"}),
                "postgres.url",
            ),
            (
                serde_json::json!({"queue": "q"}),
                serde_json::json!({"url": "postgres://h:99999/db", "table": "t"}),
                "postgres.url",
            ),
            (
                serde_json::json!({"queue": "q"}),
                serde_json::json!({"url": "postgres://u@h/db?sslmode=require", "table": "t"}),
                "TLS",
            ),
            (
                serde_json::json!({"queue": "q"}),
                serde_json::json!({"url": "postgres://u@h/db", "table": "t; drop"}),
                "postgres.table",
            ),
            (
                serde_json::json!({"queue": "q"}),
                serde_json::json!({"url": "postgres://u@h/db", "table": "t", "columns": {}}),
                "postgres.columns",
            ),
            (
                serde_json::json!({"queue": "q"}),
                serde_json::json!({"url": "postgres://u@h/db", "table": "t", "columns": {"id": "$.x"}}),
                "row's key",
            ),
            (
                serde_json::json!({"queue": "q"}),
                serde_json::json!({"url": "postgres://u@h/db", "table": "t", "columns": {"c": "x"}}),
                "start with `$`",
            ),
            (
                serde_json::json!({"queue": "q"}),
                serde_json::json!({"url": "postgres://u@h/db", "table": "t", "columns": {"c": "$.a[x]"}}),
                "not a number",
            ),
            (
                serde_json::json!({"queue": "q"}),
                serde_json::json!({"url": "postgres://u@h/db", "table": "t", "columns": {"c": {"path": "$.a", "type": "text; drop"}}}),
                "is not one of",
            ),
        ];
        for (source, postgres, expected) in cases {
            let got = reason(check("s", definition(source.clone(), postgres.clone())));
            assert!(got.contains(expected), "{source} {postgres}: {got}");
        }
        let mut d = definition(serde_json::json!({"queue": "q"}), pg.clone());
        d.batch_max = Some(0);
        assert!(reason(check("s", d.clone())).contains("batch_max"));
        d.batch_max = Some(BATCH_MAX_MAX + 1);
        assert!(reason(check("s", d.clone())).contains("batch_max"));
        d.batch_max = None;
        d.flush_ms = Some(FLUSH_MS_MAX + 1);
        assert!(reason(check("s", d.clone())).contains("flush_ms"));
        assert!(reason(check(
            "bad name!",
            definition(serde_json::json!({"queue": "q"}), pg)
        ))
        .contains("sink name"));
    }

    #[test]
    fn paths_parse_into_steps() {
        assert_eq!(
            parse_value("f", "$.user.tags[2]").expect("ok"),
            ColumnValue::Path(vec![
                PathStep::Field("user".into()),
                PathStep::Field("tags".into()),
                PathStep::Index(2)
            ])
        );
        assert_eq!(
            parse_value("f", "$timestamp").expect("ok"),
            ColumnValue::Timestamp
        );
        assert!(parse_value("f", "$").is_err());
        assert!(parse_value("f", "$..a").is_err());
    }

    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            masked_url("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(masked_url("postgres://u@h/db"), "postgres://u@h/db");
    }
}
