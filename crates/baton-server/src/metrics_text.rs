//! The Prometheus text format's building blocks, shared by every module that renders its own
//! figures for `/metrics` (the HTTP API's, the schedules', the sinks'...).

use std::fmt::Write as _;

/// The `# HELP` and `# TYPE` lines of a metric family.
pub(crate) fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The lines of an unlabelled histogram from per-bucket (not cumulative) counts; `count`
/// includes observations beyond the last bound.
pub(crate) fn histogram_lines(
    out: &mut String,
    name: &str,
    bounds: &[f64],
    per_bucket: &[u64],
    count: u64,
    sum: f64,
) {
    let mut cumulative = 0;
    for (bound, n) in bounds.iter().zip(per_bucket) {
        cumulative += n;
        let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {cumulative}");
    }
    let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
    let _ = writeln!(out, "{name}_sum {sum}");
    let _ = writeln!(out, "{name}_count {count}");
}
