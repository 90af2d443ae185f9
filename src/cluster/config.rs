//! Who is in the cluster and where: from `--peer` flags or a `cluster.toml`. Every node
//! must see the same members in the same order (the order ranks nodes in the overlay, as
//! `node_ids` does under Maelstrom): a file keeps its order; ids from flags are sorted
//! naturally (`n2` before `n10`), so every node derives the same list from its own flags.

use std::cmp::Ordering;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use anyhow::{Context, bail};
use clap::Args;
use serde::Deserialize;

use super::certs::validate_id;
use super::pool::Peer;

#[derive(Clone, Debug, Args)]
pub struct ServeArgs {
    /// This node's id.
    #[arg(long, env = "NODE_ID")]
    pub id: String,
    /// Where to accept peers, `host:port` (default with `--cluster`: this node's address
    /// in the file).
    #[arg(long, env = "NODE_LISTEN")]
    pub listen: Option<String>,
    /// Where to accept clients, `host:port` (default with `--cluster`: this node's
    /// `client` in the file; otherwise no client port).
    #[arg(long, env = "NODE_CLIENT_LISTEN")]
    pub client_listen: Option<String>,
    /// A peer, `id=host:port` (repeat the flag, or separate with commas). Host names are
    /// resolved again on every dial.
    #[arg(long = "peer", env = "NODE_PEERS", value_delimiter = ',')]
    pub peers: Vec<PeerSpec>,
    /// A TOML file listing every node: `[[node]]` tables with `id`, `address` and
    /// optionally `client`, in the same order on every node.
    #[arg(long, env = "NODE_CLUSTER", conflicts_with = "peers")]
    pub cluster: Option<PathBuf>,
    /// The credentials directory written by `node certs`: `ca.pem`, `<id>.pem`, `<id>.key`.
    #[arg(long, env = "NODE_TLS_DIR", required_unless_present = "insecure")]
    pub tls_dir: Option<PathBuf>,
    /// Plaintext between peers. Refused unless every address is a loopback address.
    #[arg(long, env = "NODE_INSECURE", action = clap::ArgAction::SetTrue,
          value_parser = clap::builder::BoolishValueParser::new())]
    pub insecure: bool,
}

/// `id=host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerSpec {
    pub id: String,
    pub addr: String,
}

impl FromStr for PeerSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.split_once('=') {
            Some((id, addr)) if !id.is_empty() && addr.contains(':') => Ok(PeerSpec {
                id: id.to_string(),
                addr: addr.to_string(),
            }),
            _ => Err(format!("{s:?}: expected id=host:port")),
        }
    }
}

/// The cluster as this node sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    pub me: String,
    /// Every node, this one included, in the same order on every node.
    pub nodes: Vec<String>,
    pub peers: Vec<Peer>,
    pub listen: String,
    pub client_listen: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    node: Vec<NodeEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeEntry {
    id: String,
    address: String,
    client: Option<String>,
}

impl ServeArgs {
    pub fn membership(&self) -> anyhow::Result<Membership> {
        let membership = match &self.cluster {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                self.read_file(&text)
                    .with_context(|| format!("in {}", path.display()))?
            }
            None => self.read_flags()?,
        };
        membership.validate(self.insecure)?;
        Ok(membership)
    }

    fn read_file(&self, text: &str) -> anyhow::Result<Membership> {
        let file: ClusterFile = toml::from_str(text)?;
        let Some(me) = file.node.iter().find(|n| n.id == self.id) else {
            bail!("this node, {}, is not listed", self.id);
        };
        Ok(Membership {
            me: self.id.clone(),
            nodes: file.node.iter().map(|n| n.id.clone()).collect(),
            peers: file
                .node
                .iter()
                .filter(|n| n.id != self.id)
                .map(|n| Peer {
                    id: n.id.clone(),
                    addr: n.address.clone(),
                })
                .collect(),
            listen: self.listen.clone().unwrap_or_else(|| me.address.clone()),
            client_listen: self.client_listen.clone().or_else(|| me.client.clone()),
        })
    }

    fn read_flags(&self) -> anyhow::Result<Membership> {
        let Some(listen) = self.listen.clone() else {
            bail!("--listen is needed without --cluster");
        };
        let mut nodes: Vec<String> = self.peers.iter().map(|p| p.id.clone()).collect();
        nodes.push(self.id.clone());
        nodes.sort_by(|a, b| natural(a, b));
        Ok(Membership {
            me: self.id.clone(),
            nodes,
            peers: self
                .peers
                .iter()
                .map(|p| Peer {
                    id: p.id.clone(),
                    addr: p.addr.clone(),
                })
                .collect(),
            listen,
            client_listen: self.client_listen.clone(),
        })
    }
}

impl Membership {
    fn validate(&self, insecure: bool) -> anyhow::Result<()> {
        for id in &self.nodes {
            validate_id(id)?;
        }
        let mut sorted = self.nodes.clone();
        sorted.sort();
        if let Some(pair) = sorted.windows(2).find(|w| w[0] == w[1]) {
            bail!("node {} is listed twice", pair[0]);
        }
        if insecure {
            let addrs = std::iter::once(&self.listen)
                .chain(self.peers.iter().map(|p| &p.addr))
                .chain(self.client_listen.as_ref());
            if let Some(addr) = addrs.into_iter().find(|a| !is_loopback(a)) {
                bail!("--insecure is for loopback clusters only, and {addr} is not loopback");
            }
        }
        Ok(())
    }
}

/// `localhost:P` or a loopback IP with a port.
pub fn is_loopback(addr: &str) -> bool {
    if let Ok(socket) = addr.parse::<SocketAddr>() {
        return socket.ip().is_loopback();
    }
    match addr.rsplit_once(':') {
        Some((host, _)) => {
            host == "localhost"
                || host
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback())
        }
        None => false,
    }
}

/// Orders `n2` before `n10`: digit runs compare as numbers.
fn natural(a: &str, b: &str) -> Ordering {
    let key = |s: &str| {
        let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
        let (stem, num) = s.split_at(s.len() - digits);
        (stem.to_string(), num.parse::<u128>().ok(), s.to_string())
    };
    key(a).cmp(&key(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn args(flags: &[&str]) -> ServeArgs {
        Cli::try_parse_from(std::iter::once("serve").chain(flags.iter().copied()))
            .unwrap()
            .serve
    }

    #[test]
    fn flags_give_every_node_the_same_order() {
        let m = args(&[
            "--id",
            "n1",
            "--listen",
            "0.0.0.0:7101",
            "--tls-dir",
            "certs",
            "--peer",
            "n10=h10:7110",
            "--peer",
            "n2=h2:7102,n0=h0:7100",
        ])
        .membership()
        .unwrap();
        assert_eq!(m.nodes, ["n0", "n1", "n2", "n10"]);
        assert_eq!(m.peers.len(), 3);
        assert_eq!(m.listen, "0.0.0.0:7101");
        assert_eq!(m.client_listen, None);
    }

    #[test]
    fn a_file_keeps_its_order_and_gives_the_defaults() {
        let text = r#"
            [[node]]
            id = "b"
            address = "127.0.0.1:7101"
            client = "127.0.0.1:7201"
            [[node]]
            id = "a"
            address = "127.0.0.1:7100"
        "#;
        let serve = args(&["--id", "b", "--insecure", "--cluster", "x.toml"]);
        let m = serve.read_file(text).unwrap();
        m.validate(true).unwrap();
        assert_eq!(m.nodes, ["b", "a"]);
        assert_eq!(m.listen, "127.0.0.1:7101");
        assert_eq!(m.client_listen.as_deref(), Some("127.0.0.1:7201"));
        assert_eq!(
            m.peers,
            [Peer {
                id: "a".into(),
                addr: "127.0.0.1:7100".into()
            }]
        );
        let stranger = args(&["--id", "c", "--insecure", "--cluster", "x.toml"]);
        assert!(stranger.read_file(text).is_err());
        assert!(serve.read_file("[[node]]\nid = \"b\"\nport = 1\n").is_err());
    }

    #[test]
    fn plaintext_only_on_loopback() {
        let insecure = |listen: &str, peer: &str| {
            args(&[
                "--id",
                "n0",
                "--listen",
                listen,
                "--insecure",
                "--peer",
                peer,
            ])
            .membership()
        };
        insecure("127.0.0.1:1", "n1=localhost:2").unwrap();
        assert!(insecure("0.0.0.0:1", "n1=127.0.0.1:2").is_err());
        assert!(insecure("127.0.0.1:1", "n1=host1:2").is_err());
        assert!(is_loopback("[::1]:7") && is_loopback("127.3.2.1:7") && !is_loopback("10.0.0.1:7"));
    }

    #[test]
    fn ids_are_checked() {
        let dup = args(&[
            "--id",
            "n0",
            "--listen",
            "127.0.0.1:1",
            "--tls-dir",
            "c",
            "--peer",
            "n0=h:2",
        ]);
        assert!(dup.membership().is_err());
        let bad = args(&["--id", "N0", "--listen", "127.0.0.1:1", "--tls-dir", "c"]);
        assert!(bad.membership().is_err());
        let no_tls = Cli::try_parse_from(["serve", "--id", "n0", "--listen", "127.0.0.1:1"]);
        assert!(
            no_tls.is_err(),
            "TLS credentials or --insecure are required"
        );
    }
}
