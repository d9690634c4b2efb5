//! Stream figures for `GET /metrics`: per stream its records, bytes and appended total, per
//! consumer group its lag and pending records, and the live followers' figures. Read from the
//! engine at scrape time, like the queue figures.

use std::fmt::Write as _;

use crate::api::metrics::family;
use crate::api::AppState;
use crate::live::LiveSource;

pub(crate) async fn write_metrics(state: &AppState, out: &mut String) {
    let Ok(streams) = state.engine.list_streams().await else {
        return;
    };
    type Figure = fn(&baton_engine::StreamView) -> u64;
    let figures: [(&str, &str, &str, Figure); 3] = [
        (
            "baton_stream_records",
            "gauge",
            "Records a stream holds (after retention).",
            |v| v.stats.records,
        ),
        (
            "baton_stream_bytes",
            "gauge",
            "Bytes of the records a stream holds (key, value and headers).",
            |v| v.stats.bytes,
        ),
        (
            // Offsets are dense from 0 in every partition, so the next offsets add up to every
            // record ever appended, across restarts and retention.
            "baton_stream_appended_total",
            "counter",
            "Records ever appended to a stream.",
            |v| v.stats.partitions.iter().map(|p| p.next_offset).sum(),
        ),
    ];
    for (name, kind, help, figure) in figures {
        family(out, name, kind, help);
        for view in &streams {
            let _ = writeln!(out, "{name}{{stream=\"{}\"}} {}", view.name, figure(view));
        }
    }
    family(
        out,
        "baton_stream_group_lag",
        "gauge",
        "Records of a stream not yet delivered to a consumer group (all partitions).",
    );
    for view in &streams {
        for group in &view.stats.groups {
            let _ = writeln!(
                out,
                "baton_stream_group_lag{{stream=\"{}\",group=\"{}\"}} {}",
                view.name, group.name, group.lag_total
            );
        }
    }
    family(
        out,
        "baton_stream_group_pending",
        "gauge",
        "Records delivered to a consumer group's consumers and not acked yet.",
    );
    for view in &streams {
        for group in &view.stats.groups {
            let _ = writeln!(
                out,
                "baton_stream_group_pending{{stream=\"{}\",group=\"{}\"}} {}",
                view.name, group.name, group.pending
            );
        }
    }
    type Live = fn(&crate::live::LiveStats) -> u64;
    let live: [(&str, &str, &str, Live); 3] = [
        (
            "baton_stream_live_followers",
            "gauge",
            "Open live (SSE/WebSocket) connections following a stream.",
            |s| s.subscribers,
        ),
        (
            "baton_stream_live_sent_total",
            "counter",
            "Records pushed to a stream's live connections.",
            |s| s.sent_total,
        ),
        (
            "baton_stream_live_dropped_total",
            "counter",
            "Records retention removed before a live connection read them.",
            |s| s.dropped_total,
        ),
    ];
    for (name, kind, help, figure) in live {
        family(out, name, kind, help);
        for view in &streams {
            let stats = state.live.stats(&LiveSource::Stream(view.name.to_string()));
            let _ = writeln!(out, "{name}{{stream=\"{}\"}} {}", view.name, figure(&stats));
        }
    }
}
