//! The test's clients: the setup RPCs (`init`, `topology`), and the worker threads that run
//! the generator's ops, one at a time, each through a client id of its own
//! (docs/maelstrom-compatibility.md 1.3, 5.2). Client ids are registered with the network
//! while open; each client counts its own `msg_id`s from 1.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use crate::history::{OpType, Process};
use crate::message::Message;
use crate::net::Network;
use crate::options::TestOptions;
use crate::record::Env;
use crate::workload::{Completion, Generator, OpSpec, RpcResult, Workload};

/// How long a client waits for the reply to an op before it records a timeout.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(5);

/// An RPC awaiting its reply.
#[derive(Clone, Debug)]
struct Rpc {
    client: String,
    msg_id: u64,
    deadline: Duration,
}

/// A worker thread: bound to one node, running one op at a time.
#[derive(Clone, Debug)]
struct Worker {
    node: String,
    process: u64,
    client: Option<String>,
    busy: Option<(OpSpec, Rpc)>,
}

/// Completions so far, by type.
#[derive(Clone, Copy, Debug, Default)]
pub struct Counts {
    pub ok: u64,
    pub fail: u64,
    pub info: u64,
}

pub struct Clients {
    workload: Workload,
    concurrency: u64,
    next_client: u64,
    msg_ids: BTreeMap<String, u64>,
    /// Clients that were closed (their ids unregistered).
    closed: BTreeSet<String>,
    /// Setup RPCs (init, topology) by node.
    setup: BTreeMap<String, Rpc>,
    workers: Vec<Worker>,
    generator: Generator,
    counts: Counts,
}

impl Clients {
    /// `concurrency` workers, thread i bound to node i mod n.
    pub fn new(opts: &TestOptions) -> Self {
        let workers = (0..opts.concurrency)
            .map(|i| Worker {
                node: opts.nodes[i % opts.nodes.len()].clone(),
                process: i as u64,
                client: None,
                busy: None,
            })
            .collect();
        Clients {
            workload: opts.workload,
            concurrency: opts.concurrency as u64,
            next_client: 0,
            msg_ids: BTreeMap::new(),
            closed: BTreeSet::new(),
            setup: BTreeMap::new(),
            workers,
            generator: opts.workload.generator(),
            counts: Counts::default(),
        }
    }

    /// Opens the next client id (`c0`, `c1`, ...).
    pub fn open(&mut self, net: &mut Network) -> String {
        let id = format!("c{}", self.next_client);
        self.next_client += 1;
        net.register(&id);
        id
    }

    pub fn close(&mut self, net: &mut Network, id: &str) {
        net.unregister(id);
        self.closed.insert(id.to_string());
    }

    pub fn is_closed(&self, id: &str) -> bool {
        self.closed.contains(id)
    }

    /// Sends a setup request (`msg_id` 1 of a fresh client) to `node`.
    pub fn setup_rpc(
        &mut self,
        env: &mut Env,
        client: &str,
        node: &str,
        mut body: Value,
        timeout: Duration,
    ) {
        body["msg_id"] = json!(1);
        env.send(client, node, body);
        let rpc = Rpc {
            client: client.to_string(),
            msg_id: 1,
            deadline: env.now + timeout,
        };
        self.setup.insert(node.to_string(), rpc);
    }

    /// Whether setup RPCs are still awaiting their replies.
    pub fn setting_up(&self) -> bool {
        !self.setup.is_empty()
    }

    /// A node whose setup RPC timed out by `now`, if any.
    pub fn setup_expired(&self, now: Duration) -> Option<&str> {
        self.setup
            .iter()
            .find(|(_, r)| r.deadline <= now)
            .map(|(n, _)| n.as_str())
    }

    /// Whether no worker is running an op.
    pub fn idle(&self) -> bool {
        self.workers.iter().all(|w| w.busy.is_none())
    }

    pub fn any_free(&self) -> bool {
        self.workers.iter().any(|w| w.busy.is_none())
    }

    /// Every RPC deadline.
    pub fn deadlines(&self) -> impl Iterator<Item = Duration> + '_ {
        let setup = self.setup.values().map(|r| r.deadline);
        let ops = self
            .workers
            .iter()
            .filter_map(|w| w.busy.as_ref().map(|(_, r)| r.deadline));
        setup.chain(ops)
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Jepsen hands the next op to a random free thread; with none free, it waits.
    pub fn start_next(&mut self, env: &mut Env) -> bool {
        let free: Vec<usize> = (0..self.workers.len())
            .filter(|i| self.workers[*i].busy.is_none())
            .collect();
        let Some(&thread) = free.choose(&mut env.rng) else {
            return false;
        };
        let op = self.generator.next(&mut env.rng);
        self.invoke(env, thread, op);
        true
    }

    /// Every thread runs the workload's final read.
    pub fn start_final_reads(&mut self, env: &mut Env) {
        for i in 0..self.workers.len() {
            let op = self.workload.final_op();
            self.invoke(env, i, op);
        }
    }

    fn invoke(&mut self, env: &mut Env, thread: usize, op: OpSpec) {
        let client = match self.workers[thread].client.clone() {
            Some(client) => client,
            None => {
                let client = self.open(&mut env.net);
                self.workers[thread].client = Some(client.clone());
                client
            }
        };
        let process = self.workers[thread].process;
        let invoke = env.op(
            Process::Worker(process),
            OpType::Invoke,
            op.f.name(),
            op.value.clone(),
        );
        invoke.final_read = op.final_read;
        let msg_id = self.next_msg_id(&client);
        let mut body = self.workload.request(&op);
        body["msg_id"] = json!(msg_id);
        let node = self.workers[thread].node.clone();
        env.send(&client, &node, body);
        let rpc = Rpc {
            client,
            msg_id,
            deadline: env.now + RPC_TIMEOUT,
        };
        self.workers[thread].busy = Some((op, rpc));
    }

    /// Each client counts its own msg_ids from 1.
    fn next_msg_id(&mut self, client: &str) -> u64 {
        let counter = self.msg_ids.entry(client.to_string()).or_insert(0);
        *counter += 1;
        *counter
    }

    /// Completes the ops whose replies are overdue at `env.now`.
    pub fn expire(&mut self, env: &mut Env) {
        for i in 0..self.workers.len() {
            if self.workers[i]
                .busy
                .as_ref()
                .is_some_and(|(_, r)| r.deadline <= env.now)
            {
                self.complete(env, i, RpcResult::Timeout);
            }
        }
    }

    /// A message to a client: completes the op it answers. The answer to a setup RPC is
    /// returned, as (node, body), for the harness to judge.
    pub fn reply(&mut self, env: &mut Env, message: Message) -> Option<(String, Value)> {
        let body = message.body.into_reply();
        let in_reply_to = body.get("in_reply_to").and_then(Value::as_u64)?;
        let answers = |r: &Rpc| r.client == message.dest && r.msg_id == in_reply_to;
        if let Some(node) = self
            .setup
            .iter()
            .find(|(_, r)| answers(r))
            .map(|(n, _)| n.clone())
        {
            self.setup.remove(&node);
            return Some((node, body.into_json()));
        }
        let worker = self
            .workers
            .iter()
            .position(|w| w.busy.as_ref().is_some_and(|(_, r)| answers(r)));
        if let Some(i) = worker {
            self.complete(env, i, RpcResult::Reply(body));
        }
        None
    }

    fn complete(&mut self, env: &mut Env, thread: usize, result: RpcResult) {
        let Some((op, _)) = self.workers[thread].busy.take() else {
            return;
        };
        let Completion {
            kind,
            value,
            error,
            exception,
        } = self.workload.complete(&op, result);
        let process = self.workers[thread].process;
        let completion = env.op(Process::Worker(process), kind, op.f.name(), value);
        completion.error = error;
        completion.final_read = op.final_read;
        completion.exception = exception;
        match kind {
            OpType::Ok => self.counts.ok += 1,
            OpType::Fail => self.counts.fail += 1,
            _ => self.counts.info += 1,
        }
        if kind == OpType::Info {
            // The process crashed as far as Jepsen knows: the thread moves on to a new one.
            let worker = &mut self.workers[thread];
            worker.process += self.concurrency;
            if !self.workload.reusable_client()
                && let Some(client) = worker.client.take()
            {
                self.close(&mut env.net, &client);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::LatencyDist;
    use crate::record::Record;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn world(opts: &TestOptions) -> Env {
        let mut net = Network::new(0, LatencyDist::Constant, ChaCha8Rng::seed_from_u64(1));
        opts.nodes.iter().for_each(|n| net.register(n));
        Env {
            now: Duration::ZERO,
            net,
            rng: ChaCha8Rng::seed_from_u64(2),
            record: Record::default(),
        }
    }

    /// The requests the nodes received, answered by `answer`.
    fn answer(env: &mut Env, answer: impl Fn(&Value) -> Value) -> Vec<Message> {
        let requests = env.net.poll(env.now);
        requests
            .into_iter()
            .map(|d| {
                let request = d.message.body.json();
                let mut body = answer(&request);
                body["in_reply_to"] = request["msg_id"].clone();
                Message {
                    id: 0,
                    src: d.message.dest,
                    dest: d.message.src,
                    body: body.into(),
                }
            })
            .collect()
    }

    fn history(env: &Env) -> Vec<String> {
        let ops = &env.record.history;
        ops.iter()
            .map(|op| format!("{:?} {} {}", op.kind, op.f, op.value))
            .collect()
    }

    #[test]
    fn setup_replies_go_back_to_the_harness_and_op_replies_complete_ops() {
        let opts = TestOptions::new(Workload::Broadcast, 2);
        let mut env = world(&opts);
        let mut clients = Clients::new(&opts);
        let client = clients.open(&mut env.net);
        clients.setup_rpc(
            &mut env,
            &client,
            "n1",
            json!({"type": "init"}),
            Duration::from_secs(10),
        );
        assert!(clients.setting_up());
        let [init_ok] = &answer(&mut env, |_| json!({"type": "init_ok"}))[..] else {
            panic!("one init")
        };
        let judged = clients.reply(&mut env, init_ok.clone());
        assert_eq!(judged.map(|(node, _)| node), Some("n1".to_string()));
        assert!(!clients.setting_up());
        // Two ops on the two threads, then both answered.
        assert!(clients.start_next(&mut env) && clients.start_next(&mut env));
        assert!(!clients.start_next(&mut env), "no thread is free");
        for reply in answer(&mut env, |request| match request["type"].as_str() {
            Some("read") => json!({"type": "read_ok", "messages": [0]}),
            _ => json!({"type": "broadcast_ok"}),
        }) {
            assert_eq!(clients.reply(&mut env, reply), None);
        }
        assert!(clients.idle());
        assert_eq!(clients.counts().ok, 2);
        let history = history(&env);
        assert_eq!(history.len(), 4);
        assert!(history[..2].iter().all(|op| op.starts_with("Invoke")));
        assert!(history[2..].iter().all(|op| op.starts_with("Ok")));
    }

    #[test]
    fn a_timeout_completes_the_op_and_moves_the_thread_to_a_new_process_and_client() {
        let opts = TestOptions {
            concurrency: 1,
            ..TestOptions::new(Workload::GSet, 1)
        };
        let mut env = world(&opts);
        let mut clients = Clients::new(&opts);
        assert!(clients.start_next(&mut env));
        assert_eq!(clients.deadlines().collect::<Vec<_>>(), [RPC_TIMEOUT]);
        env.now = RPC_TIMEOUT;
        clients.expire(&mut env);
        assert!(clients.idle());
        assert_eq!(clients.counts().info, 1);
        let timed_out = &env.record.history[1];
        assert_eq!(timed_out.kind, OpType::Info);
        assert!(
            timed_out.exception.is_some(),
            "g-set: an indeterminate exception"
        );
        assert!(clients.is_closed("c0"), "its client is closed");
        assert!(clients.start_next(&mut env));
        let next = &env.record.history[2];
        assert_eq!(next.process, Process::Worker(1), "a new process");
        let sent = env.net.poll(env.now);
        let srcs: Vec<&str> = sent.iter().map(|d| d.message.src.as_str()).collect();
        assert_eq!(srcs, ["c0", "c1"], "the retry goes through a new client");
    }
}
