//! Replays a fuzz target's inputs in a normal `cargo test`: its seed corpus
//! (`fuzz/corpus/<target>/`) and every crash input kept after its fix
//! (`fuzz/regressions/<target>/`), through the same check the fuzz target runs. Included by
//! the owning crates' tests (`#[path]`), not part of the fuzz crate.

use std::path::{Path, PathBuf};

/// The repository's `fuzz/` directory, from the including crate's manifest directory.
fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// Every input of `target`, sorted by path.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut found = Vec::new();
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir().join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_file() {
                let bytes = std::fs::read(&path).expect("a fuzz input is readable");
                found.push((path, bytes));
            }
        }
    }
    found.sort();
    found
}

/// Runs `check` on every input of `target`; a panic names the input. Returns how many ran.
pub fn replay(target: &str, check: fn(&[u8])) -> usize {
    let inputs = inputs(target);
    assert!(
        !inputs.is_empty(),
        "no inputs for {target} in fuzz/corpus or fuzz/regressions"
    );
    for (path, bytes) in &inputs {
        let outcome = std::panic::catch_unwind(|| check(bytes));
        assert!(
            outcome.is_ok(),
            "{target}: {} fails its check",
            path.display()
        );
    }
    inputs.len()
}

/// Writes `seeds` as `fuzz/corpus/<target>/<name>` when `BATON_WRITE_FUZZ_SEEDS` is set
/// (how the seed corpus was made: from real records and requests built by the including
/// test), after running `check` on each.
pub fn seeds(target: &str, check: fn(&[u8]), seeds: &[(&str, Vec<u8>)]) {
    for (name, bytes) in seeds {
        let outcome = std::panic::catch_unwind(|| check(bytes));
        assert!(outcome.is_ok(), "{target}: seed {name} fails its check");
    }
    if std::env::var_os("BATON_WRITE_FUZZ_SEEDS").is_none() {
        return;
    }
    let dir = fuzz_dir().join("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("the corpus directory can be created");
    for (name, bytes) in seeds {
        std::fs::write(dir.join(name), bytes).expect("a seed can be written");
    }
}
