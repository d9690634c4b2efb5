//! The `topic_pattern` fuzz target's check (`fuzz/src/core.rs`) in the normal test suite: its
//! seed corpus and kept crash inputs replayed, and the seeds made here (`BATON_WRITE_FUZZ_SEEDS=1
//! cargo test -p baton-core --test it fuzz_seeds` rewrites `fuzz/corpus/topic_pattern/`).

#[path = "../../../../fuzz/src/core.rs"]
mod checks;
#[path = "../../../../fuzz/src/replay.rs"]
mod replay;

#[test]
fn fuzz_seeds_are_documented_patterns_and_keys() {
    // The patterns and keys of docs/api.md's topic examples, AMQP's own examples, and the
    // edges of the limits.
    let long_key = vec!["w"; 64].join(".");
    let seeds: Vec<(&str, Vec<u8>)> = vec![
        (
            "exact",
            b"order.eu.created\norder.eu.created\norder.us.created".to_vec(),
        ),
        (
            "star",
            b"order.*.created\norder.eu.created\norder.eu.deleted\norder.created".to_vec(),
        ),
        (
            "hash",
            b"order.#\norder\norder.eu\norder.eu.created.v2\nbilling.eu".to_vec(),
        ),
        (
            "hash-middle",
            b"#.created.#\ncreated\norder.created\norder.eu.created.late".to_vec(),
        ),
        ("stars-and-hashes", b"*.#.*\na\na.b\na.b.c.d".to_vec()),
        (
            "limits",
            format!("{long_key}\n{long_key}\n{long_key}.x").into_bytes(),
        ),
        (
            "malformed",
            b"ord*.eu\norder..eu\n.order\norder eu".to_vec(),
        ),
    ];
    replay::seeds("topic_pattern", checks::topic_pattern, &seeds);
}

#[test]
fn fuzz_corpus_and_regressions_pass_their_checks() {
    replay::replay("topic_pattern", checks::topic_pattern);
}
