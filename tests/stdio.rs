//! The built `node` binary, driven through stdin/stdout: exact replies for the happy path
//! and for every kind of bad input, each followed by a good request that must still be
//! answered.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

const INIT: &str = r#"{"src":"c0","dest":"n0","body":{"type":"init","msg_id":1,"node_id":"n0","node_ids":["n0","n1","n2"]}}"#;
const INIT_OK: &str = r#"{"src":"n0","dest":"c0","body":{"type":"init_ok","in_reply_to":1}}"#;
/// The good request after each bad one, and its reply.
const ECHO: &str =
    r#"{"src":"c1","dest":"n0","body":{"type":"echo","msg_id":99,"echo":"still here"}}"#;
const ECHO_OK: &str =
    r#"{"src":"n0","dest":"c1","body":{"type":"echo_ok","echo":"still here","in_reply_to":99}}"#;

struct Run {
    replies: Vec<Value>,
    stderr: String,
}

/// Pipes `input` into a fresh node, closes stdin, and collects what it wrote.
fn run(input: &[u8]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_node"))
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node starts");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Write from a thread so a large input cannot deadlock against unread output.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("node runs");
    writer
        .join()
        .expect("writer")
        .expect("stdin accepts the input");
    assert!(
        output.status.success(),
        "node exited with {}",
        output.status
    );
    let stdout = String::from_utf8(output.stdout).expect("stdout is UTF-8");
    let replies = stdout
        .lines()
        .map(|line| {
            let value: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON on stdout: {line:?}: {e}"));
            assert_eq!(
                serde_json::to_string(&value).unwrap().len(),
                line.len(),
                "not compact: {line}"
            );
            value
        })
        .collect();
    assert!(stdout.is_empty() || stdout.ends_with('\n'));
    Run {
        replies,
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn lines(lines: &[&str]) -> Vec<u8> {
    let mut input = lines.join("\n").into_bytes();
    input.push(b'\n');
    input
}

fn parse(line: &str) -> Value {
    serde_json::from_str(line).unwrap()
}

/// Runs `init`, then `bad`, then the good echo, and checks the replies: `init_ok`, the
/// expected answer to the bad line (if any), `echo_ok`.
fn after_bad_input(bad: &[u8], expected: Option<Value>) -> Run {
    let mut input = lines(&[INIT]);
    input.extend_from_slice(bad);
    input.push(b'\n');
    input.extend(lines(&[ECHO]));
    let run = run(&input);
    let mut want = vec![parse(INIT_OK)];
    want.extend(expected);
    want.push(parse(ECHO_OK));
    assert_eq!(run.replies, want, "stderr: {}", run.stderr);
    run
}

fn error(dest: &str, in_reply_to: u64, code: u64) -> Value {
    json!({"src": "n0", "dest": dest, "body": {"type": "error", "in_reply_to": in_reply_to, "code": code}})
}

/// Compares an error reply without its free-form text, and returns the text.
fn assert_error(reply: &Value, expected: Value) -> String {
    let mut reply = reply.clone();
    let text = reply["body"]
        .as_object_mut()
        .and_then(|b| b.remove("text"))
        .and_then(|t| t.as_str().map(str::to_string))
        .expect("errors carry a text");
    assert_eq!(reply, expected);
    text
}

fn after_bad_request(bad: &str, code: u64) -> String {
    let run = run(&lines(&[INIT, bad, ECHO]));
    assert_eq!(
        run.replies.len(),
        3,
        "{:?}\nstderr: {}",
        run.replies,
        run.stderr
    );
    assert_eq!(run.replies[0], parse(INIT_OK));
    assert_eq!(run.replies[2], parse(ECHO_OK));
    assert_error(&run.replies[1], error("c1", 5, code))
}

#[test]
fn happy_path() {
    let run = run(&lines(&[
        INIT,
        r#"{"id":3,"src":"c1","dest":"n0","body":{"type":"topology","msg_id":2,"topology":{"n0":["n1"],"n1":["n0"]}}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"read","msg_id":3}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"generate","msg_id":4}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"generate","msg_id":5}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"broadcast","msg_id":6,"message":42}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"broadcast","msg_id":7,"message":-1}}"#,
        // A write is answered once a peer holds its value: here n1 shows it has both.
        r#"{"src":"n1","dest":"n0","body":{"type":"gossip","seq":1,"values":[42,-1]}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"read","msg_id":8}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"membership","msg_id":9}}"#,
        ECHO,
    ]));
    let r = &run.replies;
    assert_eq!(r[0], parse(INIT_OK));
    assert_eq!(
        r[1],
        parse(r#"{"src":"n0","dest":"c1","body":{"type":"topology_ok","in_reply_to":2}}"#)
    );
    assert_eq!(
        r[2],
        parse(
            r#"{"src":"n0","dest":"c1","body":{"type":"read_ok","messages":[],"in_reply_to":3}}"#
        )
    );
    let (id1, id2) = (&r[3]["body"]["id"], &r[4]["body"]["id"]);
    assert!(id1.is_string() && id1 != id2, "{id1} {id2}");
    assert_eq!(
        r[5],
        parse(r#"{"src":"n0","dest":"c1","body":{"type":"broadcast_ok","in_reply_to":6}}"#)
    );
    assert_eq!(r[6]["body"]["type"], "broadcast_ok");
    assert_eq!(
        r[7],
        parse(
            r#"{"src":"n0","dest":"c1","body":{"type":"read_ok","messages":[-1,42],"in_reply_to":8}}"#
        )
    );
    assert_eq!(
        r[8]["body"],
        json!({"type": "membership_ok", "in_reply_to": 9, "incarnation": 0, "alive": ["n1", "n2"],
               "suspected": {}, "dead": {}, "incarnations": {"n0": 0, "n1": 0, "n2": 0}})
    );
    assert_eq!(r[9], parse(ECHO_OK));
    assert_eq!(r.len(), 10, "nothing but replies on stdout: {r:?}");
    assert!(
        run.stderr.contains("initialised"),
        "logs go to stderr: {}",
        run.stderr
    );
}

#[test]
fn invalid_json_is_logged() {
    let run = after_bad_input(b"{\"src\":\"c1\", oops", None);
    assert!(run.stderr.contains("not valid JSON"), "{}", run.stderr);
}

#[test]
fn a_value_that_is_not_an_object_is_logged() {
    let run = after_bad_input(b"[1,2,3]", None);
    assert!(run.stderr.contains("not a JSON object"), "{}", run.stderr);
}

#[test]
fn invalid_utf8_is_logged() {
    after_bad_input(b"{\"src\":\"c1\xff\xfe\"}", None);
}

#[test]
fn missing_src_is_logged() {
    let run = after_bad_input(
        br#"{"dest":"n0","body":{"type":"echo","msg_id":5,"echo":1}}"#,
        None,
    );
    assert!(run.stderr.contains("missing src"), "{}", run.stderr);
}

#[test]
fn missing_dest_is_answered() {
    let text = after_bad_request(
        r#"{"src":"c1","body":{"type":"echo","msg_id":5,"echo":1}}"#,
        12,
    );
    assert!(text.contains("dest"), "{text}");
}

#[test]
fn missing_body_is_logged() {
    let run = after_bad_input(br#"{"src":"c1","dest":"n0"}"#, None);
    assert!(run.stderr.contains("missing body"), "{}", run.stderr);
}

#[test]
fn body_without_type_is_answered() {
    let text = after_bad_request(r#"{"src":"c1","dest":"n0","body":{"msg_id":5}}"#, 12);
    assert!(text.contains("type"), "{text}");
}

#[test]
fn unknown_type_is_not_supported() {
    let text = after_bad_request(
        r#"{"src":"c1","dest":"n0","body":{"type":"txn","msg_id":5}}"#,
        10,
    );
    assert!(text.contains("txn"), "{text}");
}

#[test]
fn missing_field_is_malformed() {
    let text = after_bad_request(
        r#"{"src":"c1","dest":"n0","body":{"type":"echo","msg_id":5}}"#,
        12,
    );
    assert!(text.contains("echo"), "{text}");
}

#[test]
fn mistyped_field_is_malformed() {
    after_bad_request(
        r#"{"src":"c1","dest":"n0","body":{"type":"topology","msg_id":5,"topology":[1]}}"#,
        12,
    );
}

#[test]
fn any_json_value_is_broadcast_and_read_back_integers_first() {
    let broadcast = |msg_id: u64, value: &str| {
        format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"broadcast","msg_id":{msg_id},"message":{value}}}}}"#
        )
    };
    let values = [
        r#""seven""#,
        "7.5",
        "null",
        "[7]",
        r#"{"b":1,"a":{"d":2,"c":3}}"#,
        "3",
        "-1",
        r#"{"a":{"c":3,"d":2},"b":1}"#,
    ];
    let mut input: Vec<String> = vec![INIT.to_string()];
    for (i, value) in values.iter().enumerate() {
        input.push(broadcast(2 + i as u64, value));
    }
    // Each write is answered once a peer holds its value: n1 shows it has them all.
    input.push(format!(
        r#"{{"src":"n1","dest":"n0","body":{{"type":"gossip","seq":1,"values":[{}]}}}}"#,
        values.join(",")
    ));
    input.push(r#"{"src":"c1","dest":"n0","body":{"type":"read","msg_id":20}}"#.to_string());
    let run = run(&lines(
        &input.iter().map(String::as_str).collect::<Vec<_>>(),
    ));
    let oks = run
        .replies
        .iter()
        .filter(|r| r["body"]["type"] == "broadcast_ok");
    assert_eq!(oks.count(), values.len(), "{:?}", run.replies);
    let read = run.replies.last().expect("read answered");
    // Integers numerically, then the others by their JSON text, keys sorted; the same
    // object twice is one element.
    assert_eq!(
        read["body"]["messages"],
        json!([-1, 3, "seven", 7.5, [7], null, {"a": {"c": 3, "d": 2}, "b": 1}])
    );
}

#[test]
fn any_json_value_is_a_g_set_element() {
    let add = |msg_id: u64, element: &str| {
        format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"add","msg_id":{msg_id},"element":{element}}}}}"#
        )
    };
    let (a, b, c) = (add(2, r#""x""#), add(3, r#"{"k":[1,2]}"#), add(4, "5"));
    // A read shows a value written here once a peer holds it: n1 sends them back.
    let held =
        r#"{"src":"n1","dest":"n0","body":{"type":"gossip","seq":1,"values":["x",{"k":[1,2]},5]}}"#;
    let read = r#"{"src":"c1","dest":"n0","body":{"type":"read","msg_id":5}}"#;
    let run = run(&lines(&[INIT, &a, &b, &c, held, read]));
    assert_eq!(
        run.replies.last().expect("read answered")["body"],
        json!({"type": "read_ok", "value": [5, "x", {"k": [1, 2]}], "in_reply_to": 5})
    );
}

#[test]
fn an_oversized_value_is_malformed() {
    let big = "x".repeat(node::wire::MAX_ELEMENT_BYTES);
    for (kind, key) in [("broadcast", "message"), ("add", "element")] {
        let bad = format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"{kind}","msg_id":5,"{key}":"{big}"}}}}"#
        );
        let text = after_bad_request(&bad, 12);
        assert!(text.contains("too large"), "{text}");
    }
}

#[test]
fn a_counter_delta_is_an_integer() {
    for value in [r#""1""#, "1.5", "null"] {
        let bad = format!(
            r#"{{"src":"c1","dest":"n0","body":{{"type":"add","msg_id":5,"delta":{value}}}}}"#
        );
        let text = after_bad_request(&bad, 12);
        assert!(text.contains("add"), "{text}");
    }
}

#[test]
fn message_for_another_node_is_answered() {
    let text = after_bad_request(
        r#"{"src":"c1","dest":"n2","body":{"type":"read","msg_id":5}}"#,
        12,
    );
    assert!(text.contains("n2") && text.contains("n0"), "{text}");
}

#[test]
fn a_second_identical_init_is_acknowledged_again() {
    let run = run(&lines(&[INIT, INIT, ECHO]));
    assert_eq!(
        run.replies,
        vec![parse(INIT_OK), parse(INIT_OK), parse(ECHO_OK)]
    );
}

#[test]
fn a_second_different_init_is_refused() {
    let other = r#"{"src":"c1","dest":"n0","body":{"type":"init","msg_id":5,"node_id":"n0","node_ids":["n0"]}}"#;
    let text = after_bad_request(other, 22);
    assert!(text.contains("already"), "{text}");
}

#[test]
fn a_huge_line_is_served() {
    let big = "x".repeat(1 << 20);
    let request =
        format!(r#"{{"src":"c1","dest":"n0","body":{{"type":"echo","msg_id":5,"echo":"{big}"}}}}"#);
    let run = after_bad_input(
        request.as_bytes(),
        Some(
            json!({"src": "n0", "dest": "c1", "body": {"type": "echo_ok", "echo": big, "in_reply_to": 5}}),
        ),
    );
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);
}

#[test]
fn requests_before_init_are_temporarily_unavailable() {
    let early = r#"{"src":"c1","dest":"n0","body":{"type":"read","msg_id":5}}"#;
    let run = run(&lines(&[early, INIT, ECHO]));
    assert_eq!(run.replies.len(), 3, "{:?}", run.replies);
    assert_error(&run.replies[0], error("c1", 5, 11));
    assert_eq!(run.replies[1], parse(INIT_OK));
    assert_eq!(run.replies[2], parse(ECHO_OK));
}

#[test]
fn peer_gossip_before_init_is_kept() {
    let early = r#"{"src":"n1","dest":"n0","body":{"type":"gossip","seq":1,"values":[5,6]}}"#;
    let read = r#"{"src":"c1","dest":"n0","body":{"type":"read","msg_id":5}}"#;
    let run = run(&lines(&[early, INIT, read]));
    assert_eq!(run.replies[0], parse(INIT_OK));
    let reply = run
        .replies
        .iter()
        .find(|r| r["dest"] == "c1")
        .expect("read answered");
    assert_eq!(reply["body"]["messages"], json!([5, 6]));
}

#[test]
fn gossip_from_a_stranger_is_ignored() {
    let stranger = r#"{"src":"n7","dest":"n0","body":{"type":"gossip","seq":1,"values":[5]}}"#;
    let read = r#"{"src":"c1","dest":"n0","body":{"type":"read","msg_id":5}}"#;
    let run = run(&lines(&[INIT, stranger, read]));
    assert_eq!(run.replies[1]["body"]["messages"], json!([]));
    assert!(run.stderr.contains("not a peer"), "{}", run.stderr);
}

#[test]
fn blank_lines_and_crlf_are_tolerated() {
    let run = run(format!("{INIT}\r\n\n   \n{ECHO}\r\n").as_bytes());
    assert_eq!(run.replies, vec![parse(INIT_OK), parse(ECHO_OK)]);
}

#[test]
fn acknowledged_values_survive_bad_input() {
    let run = run(&lines(&[
        INIT,
        r#"{"src":"c1","dest":"n0","body":{"type":"broadcast","msg_id":2,"message":1}}"#,
        "garbage",
        // n1 shows it holds 1: the broadcast is acknowledged.
        r#"{"src":"n1","dest":"n0","body":{"type":"gossip","seq":1,"values":[1]}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"broadcast","msg_id":3,"massage":2}}"#,
        r#"{"src":"c1","dest":"n0","body":{"type":"read","msg_id":4}}"#,
    ]));
    assert!(
        run.replies
            .iter()
            .any(|r| r["body"]["type"] == "broadcast_ok" && r["body"]["in_reply_to"] == 2),
        "{:?}",
        run.replies
    );
    let read = run
        .replies
        .iter()
        .find(|r| r["body"]["in_reply_to"] == 4)
        .expect("read answered");
    assert_eq!(read["body"]["messages"], json!([1]));
}
