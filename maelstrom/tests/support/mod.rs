//! What the runner's integration tests share: the binaries under test, runs in this
//! process or as a child whose wall time and peak memory are measured, and a look at
//! which processes of a run are still alive. Each test file uses a part of it.
#![allow(dead_code)]

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture-node");
pub const RUNNER: &str = env!("CARGO_BIN_EXE_maelstrom");

/// The store directory of a test, under the target directory.
pub fn store(name: &str) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("e2e-{name}"))
}

pub fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

pub fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// `-w broadcast --bin <the fixture> OPTS MODE`: a broadcast test of the fixture node in
/// `mode`, with `opts` (split at whitespace).
pub fn fixture_broadcast(opts: &str, mode: &str) -> Vec<String> {
    let mut argv = strings(&["-w", "broadcast", "--bin", FIXTURE]);
    argv.extend(opts.split_whitespace().map(String::from));
    argv.push(mode.to_string());
    argv
}

/// The results a run wrote into `store`, if any.
pub fn results(store: &Path) -> Option<Value> {
    std::fs::read_to_string(store.join("latest/results.json"))
        .ok()
        .map(|text| serde_json::from_str(&text).expect("results.json is JSON"))
}

/// Runs `maelstrom test --store <store> --seed 7 ARGS` in this process and returns the exit
/// code and the results (if any).
pub fn run(name: &str, args: &[&str]) -> (i32, Option<Value>) {
    let store = store(name);
    let _ = std::fs::remove_dir_all(&store);
    let mut argv = strings(&[
        "maelstrom",
        "test",
        "--store",
        store.to_str().unwrap(),
        "--seed",
        "7",
    ]);
    argv.extend(strings(args));
    let code = maelstrom::cli::main(argv);
    (code, results(&store))
}

/// A run of the runner binary as a child process.
pub struct Measured {
    pub code: i32,
    pub wall: Duration,
    /// The runner's own peak resident set (its children not included), from `wait4`.
    pub peak_rss_kb: u64,
    pub results: Option<Value>,
    /// Where the runner's console output went.
    pub console: PathBuf,
}

/// Runs `maelstrom test --store <store> --seed 7 ARGS` as a child; fails the test if it
/// has not ended after `limit` (it is then killed).
#[allow(clippy::zombie_processes)] // reaped by `wait4`, for its resource usage
pub fn run_measured(name: &str, args: &[&str], limit: Duration) -> Measured {
    let store = store(name);
    let _ = std::fs::remove_dir_all(&store);
    std::fs::create_dir_all(&store).unwrap();
    let console = store.join("console.txt");
    let out = std::fs::File::create(&console).unwrap();
    let start = Instant::now();
    let mut child = Command::new(RUNNER)
        .args(["test", "--store", store.to_str().unwrap(), "--seed", "7"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .spawn()
        .expect("start the runner");
    let pid = child.id() as libc::pid_t;
    loop {
        let mut status = 0;
        // SAFETY: rusage is plain data, filled in by wait4 for our own child.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let found = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(found >= 0, "wait4: {}", std::io::Error::last_os_error());
        if found == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            return Measured {
                code,
                wall: start.elapsed(),
                peak_rss_kb: usage.ru_maxrss as u64,
                results: results(&store),
                console,
            };
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{name}: the runner was still running after {limit:?}; see {}",
                console.display()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Live processes (zombies aside) with `marker` among their arguments.
pub fn processes_with(marker: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == me || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if !cmdline
            .split(|&b| b == 0)
            .any(|arg| arg == marker.as_bytes())
        {
            continue;
        }
        let state = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()?.to_string()));
        if matches!(state.as_deref(), Some("Z" | "X") | None) {
            continue;
        }
        let args: Vec<String> = cmdline
            .split(|&b| b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        found.push(format!("{name}: {}", args.join(" ")));
    }
    found
}

/// Runs `child` to its end and returns stdout and stderr; or kills it after `limit`.
pub fn finish(mut child: Child, limit: Duration) -> Option<(String, String)> {
    let started = Instant::now();
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = out.read_to_string(&mut text);
        text
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err.read_to_string(&mut text);
        text
    });
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some((reader.join().unwrap(), err_reader.join().unwrap()))
}
