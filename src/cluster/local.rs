//! A cluster of `node serve` processes on this machine, on loopback ports: what the
//! cluster tests, `make cluster-demo` and the benchmarks start. Credentials, the cluster
//! file and one log per node go in a directory of the caller's choosing.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::certs;

/// One node's process and addresses.
pub struct Member {
    pub id: String,
    pub peer_addr: String,
    pub client_addr: String,
    child: Option<Child>,
}

pub struct LocalCluster {
    bin: PathBuf,
    dir: PathBuf,
    tls: bool,
    extra: Vec<String>,
    pub members: Vec<Member>,
}

impl LocalCluster {
    /// Starts `n` nodes `n0..` of the `node` binary `bin`, with mutual TLS unless `tls` is
    /// false, writing into `dir`. `extra` goes to every node's command line (tunables).
    pub fn start(
        bin: &Path,
        dir: &Path,
        n: usize,
        tls: bool,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ids: Vec<String> = (0..n).map(|i| format!("n{i}")).collect();
        if tls {
            certs::generate(&dir.join("certs"), &ids)?;
        }
        let mut ports = free_ports(2 * n)?.into_iter();
        let mut addr = || format!("127.0.0.1:{}", ports.next().expect("two ports a node"));
        let members: Vec<Member> = ids
            .iter()
            .map(|id| Member {
                id: id.clone(),
                peer_addr: addr(),
                client_addr: addr(),
                child: None,
            })
            .collect();
        let mut file = String::new();
        for m in &members {
            file += &format!(
                "[[node]]\nid = \"{}\"\naddress = \"{}\"\nclient = \"{}\"\n\n",
                m.id, m.peer_addr, m.client_addr
            );
        }
        std::fs::write(dir.join("cluster.toml"), file)?;
        let mut cluster = LocalCluster {
            bin: bin.to_path_buf(),
            dir: dir.to_path_buf(),
            tls,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            members,
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        for i in 0..n {
            cluster.wait_for_client_port(i, Duration::from_secs(10))?;
        }
        Ok(cluster)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.join(format!("{}.log", self.members[i].id))
    }

    /// The process id of node `i`, while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.members[i].child.as_ref().map(Child::id)
    }

    /// Starts node `i` (again), with an empty state.
    pub fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let id = self.members[i].id.clone();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(i))?;
        let mut command = Command::new(&self.bin);
        command
            .arg("serve")
            .args(["--id", &id])
            .arg("--cluster")
            .arg(self.dir.join("cluster.toml"));
        if self.tls {
            command.arg("--tls-dir").arg(self.dir.join("certs"));
        } else {
            command.arg("--insecure");
        }
        command.args(&self.extra);
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.members[i].child = Some(child);
        Ok(())
    }

    fn wait_for_client_port(&self, i: usize, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while TcpStream::connect(&self.members[i].client_addr).is_err() {
            if Instant::now() > deadline {
                bail!("{} did not open its client port", self.members[i].id);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    /// SIGKILL: gone at once, nothing flushed.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.members[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Restarts a killed node with the same id and an empty state.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill(i);
        self.spawn(i)?;
        self.wait_for_client_port(i, Duration::from_secs(10))
    }

    /// SIGSTOP / SIGCONT.
    pub fn pause(&self, i: usize) -> anyhow::Result<()> {
        self.signal(i, "-STOP")
    }

    pub fn resume(&self, i: usize) -> anyhow::Result<()> {
        self.signal(i, "-CONT")
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self, i: usize) -> anyhow::Result<std::process::ExitStatus> {
        self.signal(i, "-TERM")?;
        let mut child = self.members[i].child.take().context("not running")?;
        Ok(child.wait()?)
    }

    fn signal(&self, i: usize, signal: &str) -> anyhow::Result<()> {
        let pid = self.pid(i).context("not running")?;
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()?;
        if !status.success() {
            bail!("kill {signal} {pid} failed");
        }
        Ok(())
    }

    /// Sends one request body to node `i`'s client port; returns the reply body.
    pub fn request(&self, i: usize, body: Value) -> anyhow::Result<Value> {
        request(&self.members[i].client_addr, body, Duration::from_secs(5))
    }

    /// Every value node `i` reads (broadcast workload), in its order.
    pub fn read(&self, i: usize) -> anyhow::Result<Vec<Value>> {
        let reply = self.request(i, json!({"type": "read"}))?;
        match reply.get("messages") {
            Some(Value::Array(values)) => Ok(values.clone()),
            _ => bail!("not a read_ok: {reply}"),
        }
    }

    /// Node `i`'s `membership_ok`.
    pub fn membership(&self, i: usize) -> anyhow::Result<Value> {
        self.request(i, json!({"type": "membership"}))
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            // A stopped process must be let go on before it can die of SIGKILL's reaping.
            let _ = self.resume(i);
            self.kill(i);
        }
    }
}

/// One request on a fresh client connection; the reply body.
pub fn request(addr: &str, mut body: Value, wait: Duration) -> anyhow::Result<Value> {
    body["msg_id"] = json!(1);
    let mut stream = TcpStream::connect(addr).with_context(|| format!("connecting to {addr}"))?;
    stream.set_read_timeout(Some(wait))?;
    writeln!(stream, "{}", json!({"body": body}))?;
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            bail!("{addr} closed the connection without a reply");
        }
        let envelope: Value = serde_json::from_str(&line)?;
        if envelope["body"]["in_reply_to"] == json!(1) {
            return Ok(envelope["body"].clone());
        }
    }
}

/// `n` distinct loopback ports that were free a moment ago, from below the ephemeral
/// range: outgoing connections (the nodes' own dials) never take those in the meantime.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 10_000u16;
    if ephemeral_low <= low + n as u16 {
        bail!("no ports below the ephemeral range ({ephemeral_low})");
    }
    // Where the next search starts: apart per process, and moving on within one, so that
    // clusters started one after another do not pick ports the last one is about to bind.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let span = u32::from(ephemeral_low - low);
    let offset = NEXT.fetch_add(n as u32 + 64, std::sync::atomic::Ordering::Relaxed);
    let mut held = Vec::new();
    let mut candidate = low + ((std::process::id().wrapping_mul(7919) + offset) % span) as u16;
    for _ in 0..(ephemeral_low - low) {
        if held.len() == n {
            break;
        }
        candidate = if candidate + 1 >= ephemeral_low {
            low
        } else {
            candidate + 1
        };
        // Held until all are picked, so no port is picked twice.
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", candidate)) {
            held.push(listener);
        }
    }
    if held.len() < n {
        bail!("only {} free ports below {ephemeral_low}", held.len());
    }
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

/// Polls `check` every 20 ms until it holds or `within` passes; how long it took.
pub fn wait_until(within: Duration, mut check: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    loop {
        if check() {
            return Some(start.elapsed());
        }
        if start.elapsed() > within {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
