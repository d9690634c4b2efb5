//! A sink's PostgreSQL side: one connection (a sink writes its batches one after another,
//! so a pool would hold one connection anyway), the tables it needs, the stored positions,
//! and the transaction that writes a batch's rows together with the positions they reach.
//!
//! Exactly once: the rows of a batch and the new positions of the partitions it read commit
//! in one transaction, so after any crash the table and the positions agree; rows whose key
//! (`source`, `id`) is already there are skipped (`ON CONFLICT DO NOTHING`), so a queue or
//! group message delivered again after a crash between the commit and its ack adds nothing.
//! A position only moves from the value this sink read (`WHERE next_offset = expected`), so
//! a second writer of the same sink (an old task still finishing) fails instead of skipping.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio_postgres::{Client, NoTls, Statement};

use crate::sinks::spec::{SinkSpec, TableName};

/// The positions table, created in the schema of the sink's table.
pub const POSITIONS_TABLE: &str = "baton_sink_positions";
/// How long a connection attempt may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a sink could not write: PostgreSQL's own words where it gave some.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("table {table} is missing (create_table is false)")]
    TableMissing { table: String },
    #[error("table {table} has no column {columns} (create_table is false)")]
    ColumnsMissing { table: String, columns: String },
    #[error("the stored position of partition {partition} changed under this sink (another writer of sink {sink}?); reading the positions again")]
    PositionMoved { sink: String, partition: u32 },
}

impl From<tokio_postgres::Error> for PgError {
    fn from(error: tokio_postgres::Error) -> Self {
        PgError::Postgres(reason(&error))
    }
}

/// PostgreSQL's message and code, or the connection failure with its cause.
fn reason(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A partition's move in one batch: from the stored `expected` (`None`: never stored) to `next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionMove {
    pub partition: u32,
    pub expected: Option<u64>,
    pub next: u64,
}

/// One open connection with its prepared statements.
pub struct Db {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
    insert: Statement,
    upsert_position: Statement,
    sink: String,
    target: String,
}

impl Drop for Db {
    fn drop(&mut self) {
        // Closing the connection rolls back whatever transaction was open.
        self.connection.abort();
    }
}

impl Db {
    /// Connects, creates or checks the tables, and prepares the statements.
    pub async fn open(spec: &SinkSpec) -> Result<Db, PgError> {
        let mut config = spec.pg.clone();
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(format!("baton-sink-{}", spec.name));
        }
        let (client, connection) = config.connect(NoTls).await?;
        let name = spec.name.clone();
        let connection = tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(sink = %name, error = %reason(&error), "sink connection ended");
            }
        });
        let positions = spec.table.sibling(POSITIONS_TABLE);
        prepare_tables(&client, spec, &positions).await?;
        let names: Vec<String> = spec.columns.iter().map(|c| c.name.quoted()).collect();
        let names = names.join(", ");
        let table = spec.table.quoted();
        let insert = client
            .prepare(&format!(
                "INSERT INTO {table} ({names}) SELECT {names} FROM json_populate_recordset(NULL::{table}, $1::text::json) ON CONFLICT DO NOTHING"
            ))
            .await?;
        let p = positions.quoted();
        let upsert_position = client
            .prepare(&format!(
                "INSERT INTO {p} (sink, target, stream, \"partition\", next_offset) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (sink, target, stream, \"partition\") DO UPDATE SET next_offset = EXCLUDED.next_offset, updated_at = now() \
                 WHERE {p}.next_offset = $6"
            ))
            .await?;
        Ok(Db {
            client,
            connection,
            insert,
            upsert_position,
            sink: spec.name.clone(),
            target: spec.table.display(),
        })
    }

    /// The stored next offset of each partition of `stream`.
    pub async fn positions(
        &self,
        spec: &SinkSpec,
        stream: &str,
    ) -> Result<BTreeMap<u32, u64>, PgError> {
        let positions = spec.table.sibling(POSITIONS_TABLE).quoted();
        let rows = self
            .client
            .query(
                &format!("SELECT \"partition\", next_offset FROM {positions} WHERE sink = $1 AND target = $2 AND stream = $3"),
                &[&self.sink, &self.target, &stream],
            )
            .await?;
        let mut out = BTreeMap::new();
        for row in rows {
            let partition: i32 = row.try_get(0)?;
            let next: i64 = row.try_get(1)?;
            out.insert(partition.max(0) as u32, next.max(0) as u64);
        }
        Ok(out)
    }

    /// Writes `rows_json` (see `rows::encode`) and moves the positions, in one transaction;
    /// returns how many rows were new.
    pub async fn write(
        &mut self,
        rows_json: &str,
        stream: Option<&str>,
        moves: &[PositionMove],
    ) -> Result<u64, PgError> {
        let transaction = self.client.transaction().await?;
        let inserted = transaction.execute(&self.insert, &[&rows_json]).await?;
        if let Some(stream) = stream {
            for m in moves {
                let partition = m.partition as i32;
                let next = m.next as i64;
                // -1 never matches a stored offset: the row must not exist yet.
                let expected = m.expected.map_or(-1, |e| e as i64);
                let changed = transaction
                    .execute(
                        &self.upsert_position,
                        &[
                            &self.sink,
                            &self.target,
                            &stream,
                            &partition,
                            &next,
                            &expected,
                        ],
                    )
                    .await?;
                if changed != 1 {
                    return Err(PgError::PositionMoved {
                        sink: self.sink.clone(),
                        partition: m.partition,
                    });
                }
            }
        }
        transaction.commit().await?;
        Ok(inserted)
    }
}

async fn prepare_tables(
    client: &Client,
    spec: &SinkSpec,
    positions: &TableName,
) -> Result<(), PgError> {
    let table = spec.table.quoted();
    if let Some(schema) = &spec.table.schema {
        if spec.create_table {
            client
                .batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {}", schema.quoted()))
                .await?;
        }
    }
    if spec.create_table {
        let mut columns: Vec<String> = spec
            .columns
            .iter()
            .map(|c| {
                let not_null = if matches!(c.name.as_str(), "id" | "source") {
                    " NOT NULL"
                } else {
                    ""
                };
                format!("{} {}{not_null}", c.name.quoted(), c.sql_type)
            })
            .collect();
        columns.push("PRIMARY KEY (\"source\", \"id\")".to_string());
        client
            .batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {table} ({})",
                columns.join(", ")
            ))
            .await?;
        if let Some(time) = spec
            .columns
            .iter()
            .find(|c| c.value == crate::sinks::spec::ColumnValue::Timestamp)
        {
            // PostgreSQL cuts index names at 63 bytes; the name only needs to be stable.
            let index = format!("{}_{}_idx", spec.table.table.as_str(), time.name.as_str());
            let index = crate::sinks::spec::Ident::new("index", &index[..index.len().min(63)])
                .map(|i| i.quoted())
                .unwrap_or_else(|_| "\"baton_sink_time_idx\"".to_string());
            client
                .batch_execute(&format!(
                    "CREATE INDEX IF NOT EXISTS {index} ON {table} ({})",
                    time.name.quoted()
                ))
                .await?;
        }
    } else {
        check_table(client, spec).await?;
    }
    client
        .batch_execute(&format!(
            "CREATE TABLE IF NOT EXISTS {} (sink text NOT NULL, target text NOT NULL, stream text NOT NULL, \
             \"partition\" integer NOT NULL, next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), \
             PRIMARY KEY (sink, target, stream, \"partition\"))",
            positions.quoted()
        ))
        .await?;
    Ok(())
}

/// An existing table must have every column the sink writes.
async fn check_table(client: &Client, spec: &SinkSpec) -> Result<(), PgError> {
    let table = spec.table.quoted();
    let exists = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await?
        .try_get::<_, bool>(0)?;
    if !exists {
        return Err(PgError::TableMissing {
            table: spec.table.display(),
        });
    }
    let rows = client
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[&table],
        )
        .await?;
    let present: Vec<String> = rows.iter().filter_map(|r| r.try_get(0).ok()).collect();
    let missing: Vec<&str> = spec
        .columns
        .iter()
        .map(|c| c.name.as_str())
        .filter(|name| !present.iter().any(|p| p == name))
        .collect();
    if !missing.is_empty() {
        return Err(PgError::ColumnsMissing {
            table: spec.table.display(),
            columns: missing.join(", "),
        });
    }
    Ok(())
}
