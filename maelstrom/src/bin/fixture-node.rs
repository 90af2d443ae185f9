//! A tiny Maelstrom node for the runner's own end-to-end tests. The first argument picks a
//! behaviour: `broadcast` (correct: floods every value to every node), `lossy` (acknowledges
//! every broadcast but keeps only even values), `exit-early` (exits 3 s after init),
//! `bad-line` (writes a non-JSON line right after init), `mute` (never answers init),
//! `echo`, `unique-ids`.
//!
//! Run as `fixture-node certs --out DIR ...` it makes the directory (and no credentials);
//! as `fixture-node serve --id ID --client-listen ADDR ... [MODE]` it is a node of
//! `--transport tcp` that talks to no peer: it serves the client port alone, `broadcast`
//! (correct for one node), `lossy` or `exit-early` as above.

use std::collections::BTreeSet;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("certs") => return certs(&args),
        Some("serve") => return serve(&args),
        _ => {}
    }
    let mode = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "broadcast".into());
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    let mut me = String::new();
    let mut nodes: Vec<String> = Vec::new();
    let mut values = BTreeSet::new();
    let mut next_id = 0u64;
    let started = Instant::now();
    let send = |out: &mut std::io::Stdout, src: &str, dest: &str, body: Value| {
        let line = json!({"src": src, "dest": dest, "body": body});
        writeln!(out, "{line}")
            .and_then(|_| out.flush())
            .expect("stdout");
    };
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
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
            }
            "topology" => send(&mut out, &me, &src, reply(json!({"type": "topology_ok"}))),
            "echo" => send(
                &mut out,
                &me,
                &src,
                reply(json!({"type": "echo_ok", "echo": body["echo"]})),
            ),
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

/// The value after `flag` in `args`.
fn flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let at = args.iter().position(|a| a == flag)?;
    args.get(at + 1).map(String::as_str)
}

fn certs(args: &[String]) {
    let dir = flag(args, "--out").expect("--out DIR");
    std::fs::create_dir_all(dir).expect("create --out");
}

/// A one-node server on the client port: one line in, one reply out.
fn serve(args: &[String]) {
    let me = flag(args, "--id").expect("--id").to_string();
    let listen = flag(args, "--client-listen").expect("--client-listen");
    let mode = args
        .last()
        .filter(|a| !a.contains(['=', ':', '/']) && !a.starts_with('-'));
    let mode = mode.cloned().unwrap_or_else(|| "broadcast".into());
    let listener = std::net::TcpListener::bind(listen).expect("client port");
    if mode == "exit-early" {
        std::thread::spawn(|| {
            std::thread::sleep(Duration::from_secs(3));
            std::process::exit(0);
        });
    }
    let values = std::sync::Arc::new(std::sync::Mutex::new(BTreeSet::new()));
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let (me, mode, values) = (me.clone(), mode.clone(), values.clone());
        std::thread::spawn(move || {
            let mut out = stream.try_clone().expect("clone");
            for line in std::io::BufReader::new(stream).lines() {
                let Ok(line) = line else { return };
                let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
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
                    _ => json!({"type": "error", "code": 10}),
                };
                reply["in_reply_to"] = body["msg_id"].clone();
                let src = msg["src"].clone();
                let line = json!({"src": me, "dest": src, "body": reply});
                if writeln!(out, "{line}").is_err() {
                    return;
                }
            }
        });
    }
}
