//! `node serve` across hosts: three network namespaces, one node each, every node with its
//! own address on a bridge, mutual TLS. A node's cable is pulled (its switch port set
//! down) and plugged back in:
//!
//! - values broadcast reach every node;
//! - with the cable out, both other nodes mark the node dead;
//! - with it back, every node sees every other alive again, and every node reads every
//!   value, those written on either side meanwhile included.
//!
//! ```text
//!  netns gnt<pid>-n0        netns gnt<pid>-n1        netns gnt<pid>-n2
//!  n0 10.213.0.1            n1 10.213.0.2            n2 10.213.0.3
//!  veth gnt<pid>n0          veth gnt<pid>n1          veth gnt<pid>n2
//!        │                        │                        │
//!  ──────┴─ gnt<pid>p0 ───────────┴─ gnt<pid>p1 ───────────┴─ gnt<pid>p2 ──
//!           bridge gnt<pid>br, in netns gnt<pid>-sw (connected to nothing else)
//! ```
//!
//! Nothing is created in the host's namespace: the bridge and every veth end live in the
//! test's namespaces, so the test subnet cannot reach the host or beyond, and deleting the
//! namespaces removes every link. A guard kills the nodes and deletes the namespaces
//! however the test ends. Needs root and `ip netns`; skips (passes, saying why) without.
//! Run with `--nocapture` to see the timings.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

const NODES: usize = 3;
/// The node whose cable is pulled.
const CUT: usize = 2;
/// A private test subnet, only ever configured inside the test's namespaces.
const SUBNET: &str = "10.213.0";
const PEER_PORT: u16 = 7100;
const CLIENT_PORT: u16 = 7200;
/// Every namespace, link and bridge name starts with this and the test's pid.
const PREFIX: &str = "gnt";

const START_WITHIN: Duration = Duration::from_secs(10);
const SPREAD_WITHIN: Duration = Duration::from_secs(5);
const DETECT_WITHIN: Duration = Duration::from_secs(10);
const HEAL_WITHIN: Duration = Duration::from_secs(15);
/// How long the cable stays out (at least until detection); `CLUSTER_NETNS_CUT_SECS`.
const CUT_HOLD: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(50);

fn ip_binary() -> Option<PathBuf> {
    ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// The effective uid, from `/proc/self/status` (no libc needed).
fn euid() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// What the test created, removed on drop in reverse: processes first (a namespace with
/// a process in it outlives `ip netns del`), then the nodes' namespaces, then the switch's.
struct Net {
    ip: PathBuf,
    tag: String,
    namespaces: Vec<String>,
    children: Vec<Option<Child>>,
    logs: Vec<PathBuf>,
}

impl Net {
    fn ip(&self, args: &[&str]) -> Result<(), String> {
        run_ip(&self.ip, args)
    }

    fn ns(&self, i: usize) -> String {
        format!("{}-n{i}", self.tag)
    }

    fn switch(&self) -> String {
        format!("{}-sw", self.tag)
    }

    fn add_namespace(&mut self, name: &str) -> Result<(), String> {
        self.ip(&["netns", "add", name])?;
        self.namespaces.push(name.to_string());
        Ok(())
    }

    /// The bridge, and for every node a namespace with a veth whose other end is a port
    /// of the bridge.
    fn build(&mut self) -> Result<(), String> {
        let (tag, sw) = (self.tag.clone(), self.switch());
        let bridge = format!("{tag}br");
        self.ip(&["-n", &sw, "link", "add", &bridge, "type", "bridge"])?;
        self.ip(&["-n", &sw, "link", "set", &bridge, "up"])?;
        for i in 0..NODES {
            let ns = self.ns(i);
            self.add_namespace(&ns)?;
            let (inside, port) = (format!("{tag}n{i}"), format!("{tag}p{i}"));
            self.ip(&[
                "link", "add", &inside, "netns", &ns, "type", "veth", "peer", "name", &port,
                "netns", &sw,
            ])?;
            self.ip(&["-n", &sw, "link", "set", &port, "master", &bridge])?;
            self.ip(&["-n", &sw, "link", "set", &port, "up"])?;
            let addr = format!("{}/24", host(i));
            self.ip(&["-n", &ns, "addr", "add", &addr, "dev", &inside])?;
            self.ip(&["-n", &ns, "link", "set", &inside, "up"])?;
            self.ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        }
        Ok(())
    }

    /// Node `i`'s cable in or out: its switch port set up or down, so that both ends see
    /// silence (no error), as across a real switch. With `CLUSTER_NETNS_CUT_END=node` the
    /// node's own end instead: the node then gets "network unreachable" at once.
    fn cable(&self, i: usize, plugged: bool) -> Result<(), String> {
        let state = if plugged { "up" } else { "down" };
        if std::env::var("CLUSTER_NETNS_CUT_END").is_ok_and(|end| end == "node") {
            let inside = format!("{}n{i}", self.tag);
            return self.ip(&["-n", &self.ns(i), "link", "set", &inside, state]);
        }
        let port = format!("{}p{i}", self.tag);
        self.ip(&["-n", &self.switch(), "link", "set", &port, state])
    }

    fn start_node(&mut self, i: usize, bin: &Path, certs: &Path, dir: &Path) {
        let log = dir.join(format!("n{i}.log"));
        let mut command = Command::new(&self.ip);
        command
            .args(["netns", "exec", &self.ns(i)])
            .arg(bin)
            .args(["serve", "--id", &format!("n{i}")])
            .args(["--listen", &peer_addr(i)])
            .args(["--client-listen", &client_addr(i)])
            .arg("--tls-dir")
            .arg(certs);
        for j in (0..NODES).filter(|&j| j != i) {
            command.args(["--peer", &format!("n{j}={}", peer_addr(j))]);
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(&log).unwrap())
            .env("RUST_LOG", "info")
            .spawn()
            .expect("starting a node through ip netns exec");
        // `ip netns exec` execs the command: the child is the node itself.
        self.children.push(Some(child));
        self.logs.push(log);
    }

    /// Nodes that exited, with their status.
    fn exited(&mut self) -> Vec<String> {
        self.children
            .iter_mut()
            .enumerate()
            .filter_map(|(i, c)| {
                let status = c.as_mut()?.try_wait().ok()??;
                Some(format!("n{i}: {status}"))
            })
            .collect()
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        if thread::panicking() {
            for log in &self.logs {
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("--- {} (last lines)", log.display());
                for line in tail.iter().rev() {
                    eprintln!("{line}");
                }
            }
        }
        for child in self.children.iter_mut().filter_map(Option::take) {
            let mut child = child;
            let _ = child.kill();
            let _ = child.wait();
        }
        // Node namespaces first (each takes its veth, and so the switch's end, with it).
        for ns in self.namespaces.iter().rev() {
            let mut gone = false;
            for _ in 0..20 {
                if run_ip(&self.ip, &["netns", "del", ns]).is_ok()
                    || !Path::new("/run/netns").join(ns).exists()
                {
                    gone = true;
                    break;
                }
                thread::sleep(Duration::from_millis(50));
            }
            if !gone {
                eprintln!("cluster_netns: could not delete namespace {ns}; `ip netns del {ns}`");
            }
        }
    }
}

fn run_ip(ip: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(ip)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{}: {e}", ip.display()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Namespaces of earlier runs killed before their guard ran (their pid is gone).
fn remove_leftovers(ip: &Path) {
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((pid, suffix)) = rest.split_once('-') else {
            continue;
        };
        let ours = (suffix == "sw" || suffix.starts_with('n'))
            && !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit());
        if ours && !Path::new("/proc").join(pid).exists() {
            eprintln!("cluster_netns: removing namespace {name} left by an earlier run");
            let _ = run_ip(ip, &["netns", "del", &name]);
        }
    }
}

fn host(i: usize) -> String {
    format!("{SUBNET}.{}", i + 1)
}

fn peer_addr(i: usize) -> String {
    format!("{}:{PEER_PORT}", host(i))
}

fn client_addr(i: usize) -> String {
    format!("{}:{CLIENT_PORT}", host(i))
}

/// One `node client` request to node `i`, run inside its namespace.
fn client(net: &Net, i: usize, request: &[&str]) -> Result<Value, String> {
    client_waiting(net, i, request, 2000)
}

/// `client`, waiting up to `timeout_ms` for the reply.
fn client_waiting(net: &Net, i: usize, request: &[&str], timeout_ms: u64) -> Result<Value, String> {
    let timeout = timeout_ms.to_string();
    let out: Output = Command::new(&net.ip)
        .args(["netns", "exec", &net.ns(i)])
        .arg(env!("CARGO_BIN_EXE_node"))
        .args([
            "client",
            "--connect",
            &client_addr(i),
            "--timeout-ms",
            &timeout,
        ])
        .args(request)
        .stdin(Stdio::null())
        .env("RUST_LOG", "warn")
        .env("RUST_BACKTRACE", "0")
        .env("RUST_LIB_BACKTRACE", "0")
        .output()
        .map_err(|e| e.to_string())?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let why: Vec<&str> = stderr
            .lines()
            .filter(|l| !l.trim().is_empty())
            .take(4)
            .collect();
        return Err(format!("n{i} {request:?}: {}", why.join(" ")));
    }
    serde_json::from_slice(&out.stdout).map_err(|e| format!("n{i} {request:?}: {e}"))
}

/// The same request to every node at once; replies in node order.
fn every_node(net: &Net, request: &[&str]) -> Vec<Result<Value, String>> {
    thread::scope(|s| {
        let handles: Vec<_> = (0..NODES)
            .map(|i| s.spawn(move || client(net, i, request)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn values(read: &Result<Value, String>) -> Vec<i64> {
    let mut v: Vec<i64> = read
        .as_ref()
        .ok()
        .and_then(|r| r["messages"].as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_i64)
        .collect();
    v.sort_unstable();
    v
}

fn list(view: &Value, key: &str) -> Vec<String> {
    match &view[key] {
        Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect(),
        Value::Object(m) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Node `i` sees every other node alive, none suspected or dead.
fn sees_all_alive(view: &Result<Value, String>, i: usize) -> bool {
    let Ok(view) = view else { return false };
    let alive = list(view, "alive");
    (0..NODES)
        .filter(|&j| j != i)
        .all(|j| alive.contains(&format!("n{j}")))
        && list(view, "suspected").is_empty()
        && list(view, "dead").is_empty()
}

/// A write to a node cut off from every peer: it keeps the value, but no peer can hold it,
/// so after 3 s it answers error 0, outcome unknown (README, "Acknowledged writes").
fn broadcast_alone(net: &Net, i: usize, value: i64) {
    let reply = client_waiting(net, i, &["broadcast", &value.to_string()], 6000).unwrap();
    assert!(
        reply["type"] == "broadcast_ok" || (reply["type"] == "error" && reply["code"] == 0),
        "n{i} broadcast {value}: {reply}"
    );
}

fn broadcast(net: &Net, i: usize, value: i64) {
    let reply = client(net, i, &["broadcast", &value.to_string()]).unwrap();
    assert_eq!(
        reply["type"], "broadcast_ok",
        "n{i} broadcast {value}: {reply}"
    );
}

/// Probes every `POLL` until `done` holds or `within` passes: when it held, and the last
/// probe.
fn poll<T>(
    within: Duration,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> (Option<Duration>, T) {
    let start = Instant::now();
    loop {
        let last = probe();
        if done(&last) {
            return (Some(start.elapsed()), last);
        }
        if start.elapsed() > within {
            return (None, last);
        }
        thread::sleep(POLL);
    }
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

#[test]
fn three_hosts_on_a_bridge_a_pulled_cable_is_detected_and_healed() {
    let started = Instant::now();
    if euid() != Some(0) {
        eprintln!("SKIPPED cluster_netns: needs root to create network namespaces");
        return;
    }
    let Some(ip) = ip_binary() else {
        eprintln!("SKIPPED cluster_netns: no `ip` (iproute2) found");
        return;
    };
    remove_leftovers(&ip);
    let mut net = Net {
        ip,
        tag: format!("{PREFIX}{}", std::process::id()),
        namespaces: Vec::new(),
        children: Vec::new(),
        logs: Vec::new(),
    };
    if let Err(e) = net.add_namespace(&net.switch()) {
        eprintln!("SKIPPED cluster_netns: `ip netns` is unavailable here: {e}");
        return;
    }
    net.build()
        .expect("building the namespaces, veths and bridge");

    let dir = tempfile::tempdir().unwrap();
    let ids: Vec<String> = (0..NODES).map(|i| format!("n{i}")).collect();
    let certs = dir.path().join("certs");
    node::cluster::certs::generate(&certs, &ids).unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_node"));
    for i in 0..NODES {
        net.start_node(i, bin, &certs, dir.path());
    }

    // Every node up, and seeing the others alive.
    let (formed, views) = poll(
        START_WITHIN,
        || every_node(&net, &["membership"]),
        |views| (0..NODES).all(|i| sees_all_alive(&views[i], i)),
    );
    let Some(formed) = formed else {
        panic!(
            "cluster did not form: {views:?}; exited: {:?}",
            net.exited()
        );
    };
    println!(
        "cluster of {NODES} namespaces on {SUBNET}.0/24 formed in {}",
        secs(formed)
    );

    // Values reach every node.
    let mut all: Vec<i64> = (0..9).collect();
    for &v in &all {
        broadcast(&net, v as usize % NODES, v);
    }
    let (spread, reads) = poll(
        SPREAD_WITHIN,
        || every_node(&net, &["read"]),
        |reads| reads.iter().all(|r| values(r) == all),
    );
    let Some(spread) = spread else {
        panic!("values did not reach every node: {reads:?}");
    };
    println!("{} values on every node within {}", all.len(), secs(spread));

    // Cable out: both other nodes mark it dead.
    net.cable(CUT, false).unwrap();
    let cut_at = Instant::now();
    let cut_id = format!("n{CUT}");
    let others: Vec<usize> = (0..NODES).filter(|&i| i != CUT).collect();
    let mut dead_at: Vec<Option<Duration>> = vec![None; NODES];
    let mut cut_sees_others_dead: Option<Duration> = None;
    let mut views = vec![];
    while cut_at.elapsed() < DETECT_WITHIN {
        views = every_node(&net, &["membership"]);
        let now = cut_at.elapsed();
        for &i in &others {
            if let Ok(view) = &views[i]
                && list(view, "dead").contains(&cut_id)
            {
                dead_at[i].get_or_insert(now);
            }
        }
        if let Ok(view) = &views[CUT]
            && others
                .iter()
                .all(|j| list(view, "dead").contains(&format!("n{j}")))
        {
            cut_sees_others_dead.get_or_insert(now);
        }
        if others.iter().all(|&i| dead_at[i].is_some()) {
            break;
        }
        thread::sleep(POLL);
    }
    for &i in &others {
        match dead_at[i] {
            Some(d) => println!(
                "cable of {cut_id} out: n{i} marks it dead after {}",
                secs(d)
            ),
            None => panic!(
                "n{i} did not mark {cut_id} dead within {DETECT_WITHIN:?}: {:?}; exited: {:?}",
                views[i],
                net.exited()
            ),
        }
    }
    // The connected nodes still see each other alive: no collateral death.
    for &i in &others {
        let view = views[i].as_ref().unwrap();
        for &j in others.iter().filter(|&&j| j != i) {
            assert!(
                list(view, "alive").contains(&format!("n{j}")),
                "n{i} lost n{j} though their link is fine: {view}"
            );
        }
    }

    // Values written meanwhile, on both sides of the cut.
    let mut written_meanwhile = Vec::new();
    for (k, v) in (100..106).enumerate() {
        broadcast(&net, others[k % others.len()], v);
        written_meanwhile.push(v);
    }
    for v in 200..203 {
        broadcast_alone(&net, CUT, v);
        written_meanwhile.push(v);
    }
    all.extend(&written_meanwhile);
    all.sort_unstable();
    // The cable stays out a while: long enough for TCP's retransmission backoff on the
    // stalled connections to matter, and for the node cut off to give up on the others.
    let hold = std::env::var("CLUSTER_NETNS_CUT_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(CUT_HOLD, Duration::from_secs_f64);
    while cut_at.elapsed() < hold {
        if cut_sees_others_dead.is_none()
            && let Ok(view) = client(&net, CUT, &["membership"])
            && others
                .iter()
                .all(|j| list(&view, "dead").contains(&format!("n{j}")))
        {
            cut_sees_others_dead = Some(cut_at.elapsed());
        }
        thread::sleep(POLL);
    }
    match cut_sees_others_dead {
        Some(d) => println!(
            "  ({cut_id} itself marked both others dead after {})",
            secs(d)
        ),
        None => println!("  ({cut_id} did not mark both others dead while cut off)"),
    }
    let cut_for = cut_at.elapsed();

    // Cable back in: alive everywhere, and caught up.
    net.cable(CUT, true).unwrap();
    let healed_at = Instant::now();
    let mut alive_at: Vec<Option<Duration>> = vec![None; NODES];
    let mut caught_up_at: Vec<Option<Duration>> = vec![None; NODES];
    let (mut views, mut reads) = (vec![], vec![]);
    while healed_at.elapsed() < HEAL_WITHIN {
        (views, reads) = thread::scope(|s| {
            let v = s.spawn(|| every_node(&net, &["membership"]));
            let r = s.spawn(|| every_node(&net, &["read"]));
            (v.join().unwrap(), r.join().unwrap())
        });
        let now = healed_at.elapsed();
        for i in 0..NODES {
            if sees_all_alive(&views[i], i) {
                alive_at[i].get_or_insert(now);
            }
            if values(&reads[i]) == all {
                caught_up_at[i].get_or_insert(now);
            }
        }
        if alive_at.iter().chain(&caught_up_at).all(Option::is_some) {
            break;
        }
        thread::sleep(POLL);
    }
    println!(
        "cable of {cut_id} back in after {} out ({} values written meanwhile):",
        secs(cut_for),
        written_meanwhile.len()
    );
    for i in 0..NODES {
        let show = |d: Option<Duration>| d.map_or("never".to_string(), secs);
        println!(
            "  n{i}: every other node alive after {}, every value read after {}",
            show(alive_at[i]),
            show(caught_up_at[i])
        );
    }
    for i in 0..NODES {
        assert!(
            alive_at[i].is_some(),
            "n{i} does not see every node alive {HEAL_WITHIN:?} after the heal: {:?}; exited: {:?}",
            views[i],
            net.exited()
        );
        assert!(
            caught_up_at[i].is_some(),
            "n{i} did not catch up {HEAL_WITHIN:?} after the heal: read {:?}, expected {all:?}",
            values(&reads[i])
        );
    }
    let last = |v: &[Option<Duration>]| v.iter().flatten().max().copied().unwrap();
    println!(
        "revival (alive everywhere) {}, catch-up (every value everywhere) {}, after the heal",
        secs(last(&alive_at)),
        secs(last(&caught_up_at))
    );
    let exited = net.exited();
    assert!(exited.is_empty(), "nodes exited: {exited:?}");
    println!("cluster_netns took {}", secs(started.elapsed()));
}
