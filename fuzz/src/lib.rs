//! Baton's fuzz targets (cargo-fuzz, libFuzzer; `scripts/fuzz.sh` builds and runs them). Each
//! target in `fuzz_targets/` is one line calling a check here, which runs a production parser
//! on the input and asserts its invariants. The checks are grouped by the crate that owns
//! the parser, and each group is also compiled into that crate's `cargo test` suite, which
//! replays `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/` through it:
//!
//! | module | targets | replayed by |
//! |---|---|---|
//! | `server` | `sqs_query`, `sqs_json`, `native_json`, `topic_filter` | `crates/baton-server/tests/it/fuzz_corpus.rs` |
//! | `proto` | `wire_frames` | `crates/baton-proto/tests/fuzz_corpus.rs` |
//! | `core` | `topic_pattern` | `crates/baton-core/tests/it/fuzz_corpus.rs` |
//! | `storage` | `wal_replay`, `checkpoint_load`, `stream_log` | `crates/baton-storage/tests/it/fuzz_corpus.rs` |

pub mod core;
pub mod proto;
pub mod server;
pub mod storage;
