//! A tiny Maelstrom node for the runner's own end-to-end tests. The first argument picks a
//! behaviour: `broadcast` (correct: floods every value to every node), `lossy` (acknowledges
//! every broadcast but keeps only even values), `exit-early` (exits 3 s after init),
//! `bad-line` (writes a non-JSON line right after init), `mute` (never answers init),
//! `echo`, `unique-ids`.
//!
//! Broken nodes, for `maelstrom/tests/broken.rs` (each otherwise answers like `echo`):
//! `flood` (after init, writes valid 1 KiB messages as fast as it can, to itself and to
//! the last client it heard from), `flood-unknown` (the same, to an id that does not
//! exist), `long-line` (writes one line of 100 MiB after init), `deaf` (reads nothing
//! after init and floods its peers), `never-reads` (reads nothing at all), `replies-twice`, `unknown-reply` (adds a reply to a
//! request never made), `wrong-src` (replies in another node's name), `close-stdout`
//! (closes stdout after init and goes on running), `fork-child` (starts a child that
//! sleeps and holds its stdin, stdout and stderr), `fork-exit` (the same, then exits a
//! second after init), `ignore-sigterm`. Arguments after the mode are ignored (tests put
//! a marker there to find the processes of a run); `orphan` is the forked child.
//!
//! Run as `fixture-node certs --out DIR ...` it makes the directory (and no credentials);
//! as `fixture-node serve --id ID --client-listen ADDR ... [MODE]` it is a node of
//! `--transport tcp` that talks to no peer: it serves the client port alone, `broadcast`
//! (correct for one node), `lossy` or `exit-early` as above, and `echo`; and the broken
//! modes that apply to a client port (`flood` to the client, `long-line`, `deaf`,
//! `replies-twice`, `unknown-reply`, `fork-child`, `fork-exit`, `ignore-sigterm`).

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// Size of the line `long-line` writes.
const LONG_LINE: usize = 100 << 20;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("certs") => return certs(&args),
        Some("serve") => return serve(&args),
        Some("orphan") => return orphan(),
        _ => {}
    }
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "broadcast".into());
    if mode == "ignore-sigterm" {
        ignore_sigterm();
    }
    if mode == "never-reads" {
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    let last_client = Arc::new(Mutex::new(None::<String>));
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut me = String::new();
    let mut nodes: Vec<String> = Vec::new();
    let mut values = BTreeSet::new();
    let mut next_id = 0u64;
    let started = Instant::now();
    let send = |out: &mut std::io::Stdout, src: &str, dest: &str, body: Value| {
        let line = json!({"src": src, "dest": dest, "body": body});
        // An error means the runner is gone or, in `close-stdout`, that stdout is closed.
        let _ = writeln!(out, "{line}").and_then(|_| out.flush());
    };
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if line.ends_with(r#""type":"flood"}}"#) {
            continue; // read fast what `flood` sends itself, so that it keeps up
        }
        let Ok(msg) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        if mode == "exit-early" && !me.is_empty() && started.elapsed() > Duration::from_secs(3) {
            std::process::exit(0);
        }
        let src = msg["src"].as_str().unwrap_or_default().to_string();
        let body = &msg["body"];
        let reply = |extra: Value| {
            let mut b = extra;
            b["in_reply_to"] = body["msg_id"].clone();
            b
        };
        match body["type"].as_str().unwrap_or_default() {
            "init" => {
                if mode == "mute" {
                    continue;
                }
                me = body["node_id"].as_str().unwrap_or_default().to_string();
                nodes = serde_json::from_value(body["node_ids"].clone()).unwrap_or_default();
                send(&mut out, &me, &src, reply(json!({"type": "init_ok"})));
                if mode == "bad-line" {
                    writeln!(out, "this is not JSON")
                        .and_then(|_| out.flush())
                        .expect("stdout");
                }
                after_init(&mode, &me, &nodes, &last_client);
            }
            "topology" => send(&mut out, &me, &src, reply(json!({"type": "topology_ok"}))),
            "echo" => {
                *last_client.lock().unwrap() = Some(src.clone());
                let answer = reply(json!({"type": "echo_ok", "echo": body["echo"]}));
                let from = match mode.as_str() {
                    "wrong-src" => nodes.iter().find(|n| **n != me).unwrap_or(&me).clone(),
                    _ => me.clone(),
                };
                send(&mut out, &from, &src, answer.clone());
                match mode.as_str() {
                    "replies-twice" => send(&mut out, &me, &src, answer),
                    "unknown-reply" => {
                        let mut stray = answer;
                        stray["in_reply_to"] =
                            json!(body["msg_id"].as_u64().unwrap_or(0) + 1_000_000);
                        send(&mut out, &me, &src, stray);
                    }
                    _ => {}
                }
            }
            "generate" => {
                next_id += 1;
                send(
                    &mut out,
                    &me,
                    &src,
                    reply(json!({"type": "generate_ok", "id": format!("{me}-{next_id}")})),
                );
            }
            "broadcast" => {
                let v = body["message"].as_i64().unwrap_or_default();
                if mode != "lossy" || v % 2 == 0 {
                    values.insert(v);
                    for n in nodes.iter().filter(|n| **n != me) {
                        send(&mut out, &me, n, json!({"type": "flood", "value": v}));
                    }
                }
                send(&mut out, &me, &src, reply(json!({"type": "broadcast_ok"})));
            }
            "flood" => {
                values.insert(body["value"].as_i64().unwrap_or_default());
            }
            "read" => send(
                &mut out,
                &me,
                &src,
                reply(json!({"type": "read_ok", "messages": values})),
            ),
            _ => {}
        }
    }
    // Maelstrom never closes stdin; stay alive like a real node until killed.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// What the broken modes do once the node knows its id and its peers.
fn after_init(mode: &str, me: &str, nodes: &[String], last_client: &Arc<Mutex<Option<String>>>) {
    match mode {
        "flood" => {
            let (me, last_client) = (me.to_string(), last_client.clone());
            flood(me.clone(), move || {
                let client = last_client.lock().unwrap().clone();
                vec![me.clone(), client.unwrap_or_else(|| me.clone())]
            });
        }
        "flood-unknown" => flood(me.to_string(), || vec!["n99".to_string()]),
        "long-line" => {
            let me = me.to_string();
            std::thread::spawn(move || {
                let _ = write_long_line(&mut std::io::stdout().lock(), &me, &me);
            });
        }
        "deaf" => {
            let peers: Vec<String> = nodes.iter().filter(|n| *n != me).cloned().collect();
            flood(me.to_string(), move || peers.clone());
            loop {
                std::thread::sleep(Duration::from_secs(3600));
            }
        }
        "close-stdout" => {
            // SAFETY: closing our own stdout; nothing else holds the descriptor's buffer
            // (every line above was flushed).
            unsafe {
                libc::close(1);
            }
        }
        "fork-child" => fork_child(),
        "fork-exit" => {
            fork_child();
            exit_after(Duration::from_secs(1));
        }
        _ => {}
    }
}

/// Writes 1 KiB messages from `me` to each of `targets()` in turn, as fast as stdout takes
/// them, until it fails.
fn flood(me: String, targets: impl Fn() -> Vec<String> + Send + 'static) {
    std::thread::spawn(move || {
        let pad = "x".repeat(960);
        let out = std::io::stdout();
        loop {
            let mut chunk = String::with_capacity(64 << 10);
            for dest in targets() {
                let line = format!(
                    "{{\"src\":\"{me}\",\"dest\":\"{dest}\",\"body\":{{\"type\":\"flood\",\"pad\":\"{pad}\"}}}}\n"
                );
                for _ in 0..32 {
                    chunk.push_str(&line);
                }
            }
            let mut locked = out.lock();
            if locked
                .write_all(chunk.as_bytes())
                .and_then(|_| locked.flush())
                .is_err()
            {
                return;
            }
            drop(locked);
        }
    });
}

/// One valid message of `LONG_LINE` bytes, written in pieces.
fn write_long_line(out: &mut impl Write, src: &str, dest: &str) -> std::io::Result<()> {
    write!(
        out,
        "{{\"src\":\"{src}\",\"dest\":\"{dest}\",\"body\":{{\"type\":\"pad\",\"pad\":\""
    )?;
    let piece = vec![b'x'; 1 << 20];
    for _ in 0..LONG_LINE >> 20 {
        out.write_all(&piece)?;
    }
    writeln!(out, "\"}}}}")?;
    out.flush()
}

/// Exits this process, whatever it is doing, `after` from now.
fn exit_after(after: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(after);
        std::process::exit(0);
    });
}

/// Starts `fixture-node orphan` with this process's arguments (so that it carries the
/// test's marker), inheriting stdin, stdout and stderr; it is not waited for.
#[allow(clippy::zombie_processes)] // outliving its parent is the point
fn fork_child() {
    let exe = std::env::current_exe().expect("own path");
    std::process::Command::new(exe)
        .arg("orphan")
        .args(std::env::args().skip(1))
        .spawn()
        .expect("start the child");
}

/// The forked child: ignores SIGTERM and sleeps.
fn orphan() {
    ignore_sigterm();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

fn ignore_sigterm() {
    // SAFETY: setting the disposition of a signal to "ignore".
    unsafe {
        libc::signal(libc::SIGTERM, libc::SIG_IGN);
    }
}

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

fn certs(args: &[String]) {
    let dir = flag(args, "--out").expect("--out DIR");
    std::fs::create_dir_all(dir).expect("create --out");
}

/// The first positional argument of a `serve` command line: every flag of it takes a value.
fn serve_mode(args: &[String]) -> String {
    let mut rest = args.iter().skip(2);
    while let Some(arg) = rest.next() {
        if arg.starts_with("--") {
            rest.next();
        } else {
            return arg.clone();
        }
    }
    "broadcast".into()
}

/// A one-node server on the client port: one line in, one reply out.
fn serve(args: &[String]) {
    let me = flag(args, "--id").expect("--id").to_string();
    let listen = flag(args, "--client-listen").expect("--client-listen");
    let mode = serve_mode(args);
    if mode == "ignore-sigterm" {
        ignore_sigterm();
    }
    let listener = std::net::TcpListener::bind(listen).expect("client port");
    match mode.as_str() {
        "exit-early" => exit_after(Duration::from_secs(3)),
        "fork-child" => fork_child(),
        "fork-exit" => {
            fork_child();
            exit_after(Duration::from_secs(1));
        }
        _ => {}
    }
    let values = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (me, mode, values) = (me.clone(), mode.clone(), values.clone());
        std::thread::spawn(move || {
            if mode == "deaf" {
                // Holds the connection and reads nothing.
                let _held = stream;
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            let out = Arc::new(Mutex::new(stream.try_clone().expect("clone")));
            let mut first = true;
            for line in std::io::BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                // Harness clients name themselves; the runner's `stats` poller does not.
                if let Some(client) = msg["src"].as_str().filter(|_| first) {
                    first = false;
                    match mode.as_str() {
                        "flood" => flood_connection(&out, &me, client),
                        "long-line" => {
                            let _ = write_long_line(&mut *out.lock().unwrap(), &me, client);
                        }
                        _ => {}
                    }
                }
                let body = &msg["body"];
                let mut reply = match body["type"].as_str().unwrap_or_default() {
                    "broadcast" => {
                        let v = body["message"].as_i64().unwrap_or_default();
                        if mode != "lossy" || v % 2 == 0 {
                            values.lock().unwrap().insert(v);
                        }
                        json!({"type": "broadcast_ok"})
                    }
                    "read" => json!({"type": "read_ok", "messages": *values.lock().unwrap()}),
                    "stats" => {
                        json!({"type": "stats_ok", "messages_sent": 0, "messages_received": 0})
                    }
                    "echo" => json!({"type": "echo_ok", "echo": body["echo"]}),
                    _ => json!({"type": "error", "code": 10}),
                };
                reply["in_reply_to"] = body["msg_id"].clone();
                let src = msg["src"].clone();
                let mut lines = vec![json!({"src": me, "dest": src, "body": reply})];
                match mode.as_str() {
                    "replies-twice" => lines.push(lines[0].clone()),
                    "unknown-reply" => {
                        let mut stray = lines[0].clone();
                        stray["body"]["in_reply_to"] =
                            json!(body["msg_id"].as_u64().unwrap_or(0) + 1_000_000);
                        lines.push(stray);
                    }
                    _ => {}
                }
                let mut out = out.lock().unwrap();
                if lines.iter().any(|line| writeln!(out, "{line}").is_err()) {
                    return;
                }
            }
        });
    }
}

/// Writes 1 KiB messages to `client` on a client connection as fast as it takes them.
fn flood_connection(out: &Arc<Mutex<std::net::TcpStream>>, me: &str, client: &str) {
    let pad = "x".repeat(960);
    let line = format!(
        "{{\"src\":\"{me}\",\"dest\":\"{client}\",\"body\":{{\"type\":\"flood\",\"pad\":\"{pad}\"}}}}\n"
    );
    let chunk = line.repeat(64);
    let out = out.clone();
    std::thread::spawn(
        move || {
            while out.lock().unwrap().write_all(chunk.as_bytes()).is_ok() {}
        },
    );
}
