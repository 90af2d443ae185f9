//! The bundled runner in this process, as its command line runs it, for the tests that
//! judge the node through real processes (`tests/runner.rs`, `tests/runner_tcp.rs`,
//! `tests/report.rs`).

use std::path::{Path, PathBuf};

use serde_json::Value;

/// What a run left: the runner's exit code, its results.json, and the run's folder.
pub struct Run {
    pub code: i32,
    pub results: Value,
    pub dir: PathBuf,
}

/// `maelstrom test --bin <bin> --store <store> <args>`, `args` split at whitespace, into a
/// `store` emptied first. Panics, naming the command line, if the run wrote no results.
pub fn test(bin: &str, store: &Path, args: &str) -> Run {
    let _ = std::fs::remove_dir_all(store);
    let mut argv: Vec<String> = ["maelstrom", "test", "--bin", bin, "--store"]
        .map(String::from)
        .to_vec();
    argv.push(store.to_string_lossy().into_owned());
    argv.extend(args.split_whitespace().map(String::from));
    let code = maelstrom::cli::main(argv.clone());
    let dir = store.join("latest");
    let text = std::fs::read_to_string(dir.join("results.json"))
        .unwrap_or_else(|e| panic!("{argv:?} exited {code} without results: {e}"));
    Run {
        code,
        results: serde_json::from_str(&text).expect("results.json is JSON"),
        dir: dir.canonicalize().expect("the run's folder"),
    }
}
