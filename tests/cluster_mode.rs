//! `node serve` as a real cluster: processes on loopback, mutual TLS, real sockets. Every
//! wait is bounded; the clusters are killed when a test ends, however it ends.

use std::path::Path;
use std::time::Duration;

use node::cluster::local::{LocalCluster, wait_until};
use serde_json::json;

fn cluster(dir: &Path, n: usize) -> LocalCluster {
    LocalCluster::start(Path::new(env!("CARGO_BIN_EXE_node")), dir, n, true, &[]).unwrap()
}

#[test]
fn five_nodes_every_value_everywhere_and_one_view_of_membership() {
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(dir.path(), 5);
    for v in 0..20 {
        let reply = c
            .request(v % 5, json!({"type": "broadcast", "message": v}))
            .unwrap();
        assert_eq!(reply["type"], "broadcast_ok");
    }
    let all: Vec<_> = (0..20).map(|v| json!(v)).collect();
    let took = wait_until(Duration::from_secs(5), || {
        (0..5).all(|i| c.read(i).unwrap() == all)
    });
    assert!(
        took.is_some(),
        "values did not reach every node: {:?}",
        (0..5).map(|i| c.read(i)).collect::<Vec<_>>()
    );
    for i in 0..5 {
        let view = c.membership(i).unwrap();
        assert_eq!(view["dead"], json!({}), "n{i}: {view}");
        assert_eq!(view["suspected"], json!({}), "n{i}: {view}");
    }
}
