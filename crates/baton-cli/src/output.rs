//! What the client commands print: pretty JSON for scripts (the default), one JSON line per
//! event for followers, and aligned tables for people (`--table`).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::Context;
use serde::Serialize;

pub fn print_json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(value).context("cannot encode the output as JSON")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}").context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")
}

/// One compact JSON line, flushed at once, so pipes see events as they arrive.
pub fn print_line(value: &impl Serialize) -> anyhow::Result<()> {
    let line = serde_json::to_string(value).context("cannot encode the output as JSON")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{line}").context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")
}

/// Columns padded to their widest cell, separated by two spaces; the header first, even when
/// there are no rows, so an empty listing still says what it would show.
pub fn render_table(header: &[&str], rows: &[Vec<String>]) -> String {
    let header: Vec<String> = header.iter().map(|cell| cell.to_string()).collect();
    let rows: Vec<Vec<String>> = std::iter::once(header)
        .chain(
            rows.iter()
                .map(|row| row.iter().map(|cell| escape(cell)).collect()),
        )
        .collect();
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0_usize; columns];
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

pub fn print_table(header: &[&str], rows: &[Vec<String>]) -> anyhow::Result<()> {
    print_text(&render_table(header, rows))
}

pub fn print_text(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")
}

/// A cell on one line: control characters (a body's newlines, tabs) shown as escapes, so a
/// value can never break the table's rows apart.
fn escape(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_string();
    }
    cell.chars().flat_map(char::escape_debug).collect()
}

/// An optional value's cell: `-` when absent.
pub fn or_dash<T: ToString>(value: Option<T>) -> String {
    value.map_or_else(|| "-".to_string(), |value| value.to_string())
}

/// Headers or attributes as `name=value,name=value`, `-` when there are none.
pub fn pairs(map: &BTreeMap<String, String>) -> String {
    if map.is_empty() {
        return "-".to_string();
    }
    map.iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns_and_keep_rows_on_one_line() {
        let rows = vec![
            vec!["a".to_string(), "line one\nline two".to_string()],
            vec!["longer".to_string(), "x".to_string()],
        ];
        assert_eq!(
            render_table(&["NAME", "VALUE"], &rows),
            "NAME    VALUE\na       line one\\nline two\nlonger  x\n"
        );
        assert_eq!(render_table(&["NAME", "VALUE"], &[]), "NAME  VALUE\n");
    }

    #[test]
    fn absent_values_and_empty_maps_show_a_dash() {
        assert_eq!(or_dash(None::<u64>), "-");
        assert_eq!(or_dash(Some(5)), "5");
        assert_eq!(pairs(&BTreeMap::new()), "-");
        let map = BTreeMap::from([("b".to_string(), "2".to_string()), ("a".into(), "1".into())]);
        assert_eq!(pairs(&map), "a=1,b=2");
    }
}
