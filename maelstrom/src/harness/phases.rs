//! The test's phases (docs/maelstrom-compatibility.md 1.5, 5.3), moved along at every
//! poll: init (10 s) → setup clients and topology (5 s, broadcast only) → the history's
//! time origin → main phase until the time limit → wait for in-flight ops → (workloads
//! with a final phase) heal, 10 s recovery, one final read per thread → teardown.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Harness, RECOVERY, TOPOLOGY_TIMEOUT};
use crate::schedule::Schedule;
use crate::topology::topology;
use crate::workload::check_closed;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Phase {
    Init,
    Setup,
    Main,
    /// Waiting for in-flight ops after the time limit.
    Draining,
    Recovery {
        until: Duration,
    },
    Final,
    Done,
}

impl Harness {
    /// Setup RPCs that time out end the test; ops that time out complete as timeouts.
    pub(super) fn expire_rpcs(&mut self) {
        if let Some(node) = self.clients.setup_expired(self.env.now) {
            let what = if self.phase == Phase::Init {
                "init"
            } else {
                "topology"
            };
            let why = format!(
                "{node} did not respond to {what} within its timeout (node did not respond)"
            );
            self.fail(why);
            return;
        }
        self.clients.expire(&mut self.env);
    }

    /// Judges the reply to a setup RPC: `init_ok`, or a closed-schema `topology_ok`.
    pub(super) fn setup_reply(&mut self, node: &str, body: &Value) {
        let ok = match self.phase {
            Phase::Init => match body.get("type").and_then(Value::as_str) {
                Some("init_ok") => Ok(()),
                _ => Err(format!("expected init_ok from {node}, got {body}")),
            },
            _ => body
                .as_object()
                .ok_or_else(|| "not an object".to_string())
                .and_then(|m| check_closed(m, "topology_ok", None))
                .map_err(|e| format!("malformed topology_ok from {node}: {e} in {body}")),
        };
        if let Err(why) = ok {
            self.fail(why);
        }
    }

    /// Moves the phases along.
    pub(super) fn step(&mut self) {
        loop {
            let before = self.phase.clone();
            match self.phase.clone() {
                Phase::Init if !self.clients.setting_up() => self.start_setup(),
                Phase::Setup if !self.clients.setting_up() => self.start_main(),
                Phase::Main => self.main_step(),
                Phase::Draining if self.clients.idle() => self.start_recovery(),
                Phase::Recovery { until } if self.env.now >= until => {
                    self.phase = Phase::Final;
                    self.clients.start_final_reads(&mut self.env);
                }
                Phase::Final if self.clients.idle() => self.finish(),
                _ => {}
            }
            if self.phase == before {
                break;
            }
        }
    }

    fn start_setup(&mut self) {
        for i in 0..self.opts.nodes.len() {
            self.clients.close(&mut self.env.net, &format!("c{i}"));
        }
        self.phase = Phase::Setup;
        // Jepsen sets the history's time origin just before client setup.
        self.env.record.origin = self.env.now;
        let nodes = &self.opts.nodes;
        let map: serde_json::Map<String, Value> = topology(self.opts.topology, nodes)
            .into_iter()
            .map(|(k, v)| (k, json!(v)))
            .collect();
        for node in nodes {
            let client = self.clients.open(&mut self.env.net);
            if self.opts.workload.sends_topology() {
                let body = json!({"type": "topology", "topology": map});
                self.clients
                    .setup_rpc(&mut self.env, &client, node, body, TOPOLOGY_TIMEOUT);
            }
        }
    }

    fn start_main(&mut self) {
        self.phase = Phase::Main;
        // The first op (client or nemesis) is emitted now, so the cutoff starts now.
        let nemesis_interval =
            (!self.opts.nemesis.is_empty()).then_some(self.opts.nemesis_interval);
        self.schedule = Schedule::start(
            self.env.now,
            self.opts.time_limit,
            self.opts.rate,
            nemesis_interval,
        );
        self.note("Running the workload".into());
    }

    fn main_step(&mut self) {
        while self.schedule.nemesis_due(self.env.now) {
            self.nemesis.op(&mut self.env);
            self.schedule.nemesis_done(self.nemesis.rng());
        }
        while self.schedule.client_due(self.env.now) {
            if !self.clients.start_next(&mut self.env) {
                break;
            }
            self.schedule.client_done(&mut self.env.rng);
        }
        if self.schedule.is_over(self.env.now) {
            self.phase = Phase::Draining;
        }
    }

    /// After the main phase: workloads with a final generator heal, wait and read.
    fn start_recovery(&mut self) {
        if !self.opts.workload.has_final() {
            self.finish();
            return;
        }
        self.nemesis.stop_all(&mut self.env);
        self.note("Waiting for recovery...".into());
        self.phase = Phase::Recovery {
            until: self.env.now + RECOVERY,
        };
    }
}
