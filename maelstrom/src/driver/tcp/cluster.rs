//! The nodes of a TCP run: `node serve` processes on loopback, one life after another
//! (crash-restart starts a node again with the same id, ports and credentials). The
//! runner talks to the node binary only through its command line (`certs`, `serve`) and
//! its sockets; each node's stdout and stderr go to `node-logs/<id>.log`. Each life leads
//! a process group of its own, killed whole (`crate::driver::group`).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use super::Input;
use crate::driver::group;
use crate::driver::lines;
use crate::driver::process::{RING, remember, usage};

/// How long a node has to open its client port.
const READY: Duration = Duration::from_secs(10);

/// One node: its addresses, its command line, and its current process.
pub struct Node {
    pub id: String,
    pub peer_addr: SocketAddr,
    pub client_addr: SocketAddr,
    /// Incremented at every start: lines and exits of an earlier life are ignored.
    pub life: u64,
    args: Vec<String>,
    child: Option<Child>,
    /// Whether the current process ended (or was killed).
    pub exited: bool,
    /// Whether the current process was waited for (its id may then be another's).
    reaped: bool,
    pub tail: Arc<Mutex<VecDeque<String>>>,
    /// CPU seconds and peak RSS of each life that was measured (killed lives are not).
    pub usage: Vec<(f64, u64)>,
}

/// Picks `n` free loopback ports, held until the caller drops the listeners.
pub fn reserve_ports(n: usize) -> std::io::Result<Vec<TcpListener>> {
    (0..n).map(|_| TcpListener::bind("127.0.0.1:0")).collect()
}

/// Writes a throw-away cluster CA and one certificate per node into `dir`, through the
/// node binary's `certs` command.
pub fn make_certs(bin: &Path, dir: &Path, ids: &[String]) -> anyhow::Result<()> {
    let output = Command::new(bin)
        .arg("certs")
        .arg("--out")
        .arg(dir)
        .args(ids)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {} certs", bin.display()))?;
    if !output.status.success() {
        bail!(
            "{} certs failed ({}): {}",
            bin.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

impl Node {
    /// The node `id`, serving peers on `peer_addr` and clients on `client_addr`, reaching
    /// each peer through the address in `peers`, with `extra` appended (workload, tunables).
    pub fn new(
        id: &str,
        peer_addr: SocketAddr,
        client_addr: SocketAddr,
        peers: &[(String, SocketAddr)],
        tls_dir: &Path,
        extra: &[String],
    ) -> Node {
        let mut args = vec![
            "serve".to_string(),
            "--id".into(),
            id.into(),
            "--listen".into(),
            peer_addr.to_string(),
            "--client-listen".into(),
            client_addr.to_string(),
            "--tls-dir".into(),
            tls_dir.display().to_string(),
        ];
        for (peer, addr) in peers {
            args.push("--peer".into());
            args.push(format!("{peer}={addr}"));
        }
        args.extend(extra.iter().cloned());
        Node {
            id: id.to_string(),
            peer_addr,
            client_addr,
            life: 0,
            args,
            child: None,
            exited: true,
            reaped: true,
            tail: Arc::default(),
            usage: Vec::new(),
        }
    }

    /// Starts a new life of the node; its stderr goes to the log and, at its end, an exit
    /// is reported on `tx`.
    pub fn start(
        &mut self,
        index: usize,
        bin: &Path,
        logs: &Path,
        tx: Sender<Input>,
        echo_stderr: bool,
    ) -> anyhow::Result<()> {
        self.life += 1;
        let path = logs.join(format!("{}.log", self.id));
        let mut log: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        if self.life > 1 {
            let _ = writeln!(
                log,
                "--- maelstrom: {} started again (life {})",
                self.id, self.life
            );
        }
        let mut child = group::in_own_group(
            Command::new(bin)
                .args(&self.args)
                .current_dir(std::env::temp_dir())
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(Stdio::piped()),
        )
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
        group::register(child.id());
        let stderr = child.stderr.take().expect("piped");
        let (tail, life) = (self.tail.clone(), self.life);
        tail.lock().expect("tail lock").clear();
        thread::spawn(move || {
            let mut reader = BufReader::new(stderr);
            let mut bytes = Vec::new();
            while let Some(line) = lines::read_log_line(&mut reader, &mut bytes) {
                let _ = writeln!(log, "{line}");
                let _ = log.flush();
                remember(&tail, format!("stderr: {line}"));
                if echo_stderr {
                    let _ = tx.send(Input::Stderr(index, lines::quote(&line)));
                }
            }
            let _ = tx.send(Input::Exited(index, life));
        });
        self.child = Some(child);
        self.exited = false;
        self.reaped = false;
        Ok(())
    }

    /// Waits until the client port takes connections, or the node exits, or `READY`.
    pub fn wait_ready(&mut self) -> anyhow::Result<()> {
        let start = Instant::now();
        loop {
            if TcpStream::connect_timeout(&self.client_addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if let Some(status) = self.ended() {
                bail!(
                    "node {} exited at start ({status}):\n{}",
                    self.id,
                    self.tail_lines().join("\n")
                );
            }
            if start.elapsed() > READY {
                bail!(
                    "node {} did not open its client port {} within {READY:?}",
                    self.id,
                    self.client_addr
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn tail_lines(&self) -> Vec<String> {
        let tail = self.tail.lock().expect("tail lock");
        tail.iter().rev().take(RING).rev().cloned().collect()
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the current process ended on its own, and how: if so, what it left in its
    /// group is killed and it is reaped.
    pub fn ended(&mut self) -> Option<String> {
        if self.exited {
            return None;
        }
        let pid = self.pid()?;
        if !group::has_ended(pid) {
            return None;
        }
        group::kill(pid);
        self.exited = true;
        self.reaped = true;
        let status = self.child.as_mut()?.wait();
        Some(status.map_or_else(|e| format!("unknown status: {e}"), |s| s.to_string()))
    }

    /// SIGKILL to the whole group, and reaping (waiting at most `until`).
    pub fn kill_until(&mut self, until: Instant) {
        if let Some(pid) = self.pid().filter(|_| !self.reaped) {
            group::kill(pid);
            let child = self.child.as_mut().expect("a pid");
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < until {
                thread::sleep(Duration::from_millis(5));
            }
            self.reaped = true;
        }
        self.exited = true;
    }

    /// SIGKILL to the whole group, and reaping.
    pub fn kill(&mut self) {
        self.kill_until(Instant::now() + crate::driver::process::TEARDOWN_WAIT);
    }

    /// Measures the live process (CPU, peak RSS), then kills it, waiting for it until
    /// `until` at most.
    pub fn measure_and_kill(&mut self, until: Instant) {
        if let Some(pid) = self.pid()
            && !self.exited
            && let Some(u) = usage(pid)
        {
            self.usage.push(u);
        }
        self.kill_until(until);
    }

    /// Sends `signal` (SIGSTOP, SIGCONT) to the current process and its group.
    pub fn signal(&self, signal: i32) {
        if let Some(pid) = self.pid().filter(|_| !self.exited) {
            group::signal(pid, signal);
        }
    }
}

/// A directory removed when dropped: the run's credentials.
pub struct ScratchDir(pub PathBuf);

impl ScratchDir {
    pub fn new(label: &str) -> std::io::Result<ScratchDir> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir =
            std::env::temp_dir().join(format!("maelstrom-{label}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        Ok(ScratchDir(dir))
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
