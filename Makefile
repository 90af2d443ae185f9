# Build, test and run the gossip node through the bundled Maelstrom-compatible runner.
# MAELSTROM=/path/to/maelstrom runs the same tests through the real Maelstrom instead.

CARGO     ?= cargo
NODE      := target/release/node
RUNNER    := target/release/maelstrom
MAELSTROM ?= $(RUNNER)
# Extra runner options, e.g. ARGS="--seed 7" or ARGS="--latency-dist exponential".
ARGS      ?=
# Runs per row of the benchmark table.
RUNS      ?= 1

BROADCAST := $(MAELSTROM) test -w broadcast --bin $(NODE)
# Runs a test, prints the summary of its results, and keeps the test's exit status.
define run_test
	@status=0; $(1) $(ARGS) || status=$$?; \
	$(RUNNER) summarize store/latest; exit $$status
endef

.PHONY: build test single gossip partition bench bench-partition g-set g-counter pn-counter \
        debug simulate fd-bench fidelity clean cluster cluster-stop cluster-demo \
        cluster-netns cluster-bench cluster-bench-runner cluster-partition frontier scale serve soak

# The fly.io efficiency configuration (3d/3e).
EFFICIENCY := --node-count 25 --time-limit 20 --rate 100 --latency 100
# Seeds per row of the simulation tables.
SEEDS     ?= 20
# Seeds per row of the failure-detector table (its figures in docs/failure-detector.md use 100).
FD_SEEDS  ?= 100
SIMULATE  := target/release/examples/simulate

build:
	$(CARGO) build --release --workspace

test:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings
	$(CARGO) test --workspace --release
	$(CARGO) build --release --bin node --example cluster_demo
	$(DEMO)

# Browse every run of store/ (plots, message diagram, timelines) at http://127.0.0.1:8080/.
serve: build
	$(RUNNER) serve $(ARGS)

# fly.io 3a: one node.
single: build
	$(call run_test,$(BROADCAST) --node-count 1 --time-limit 20 --rate 10)

# fly.io 3b: five nodes.
gossip: build
	$(call run_test,$(BROADCAST) --node-count 5 --time-limit 20 --rate 10)

# fly.io 3c: five nodes with network partitions.
partition: build
	$(call run_test,$(BROADCAST) --node-count 5 --time-limit 20 --rate 10 --nemesis partition)

# fly.io 3d/3e: one row per latency distribution, RUNS runs each, then with partitions, then
# over --transport tcp (a TLS cluster behind the runner's proxies).
bench: build
	@$(RUNNER) summarize --header
	@for dist in constant uniform exponential; do for run in $$(seq $(RUNS)); do \
	  $(BROADCAST) $(EFFICIENCY) --latency-dist $$dist $(ARGS) > /dev/null 2>&1; \
	  $(RUNNER) summarize --row "25 nodes, latency $$dist" store/latest; done; done
	@for run in $$(seq $(RUNS)); do \
	  $(BROADCAST) $(EFFICIENCY) --nemesis partition $(ARGS) > /dev/null 2>&1; \
	  $(RUNNER) summarize --row "25 nodes, constant, partition" store/latest; done
	@for run in $$(seq $(RUNS)); do \
	  $(BROADCAST) $(EFFICIENCY) --transport tcp $(ARGS) > /dev/null 2>&1; \
	  $(RUNNER) summarize --row "25 nodes, constant, --transport tcp" store/latest; done
	@for workload in g-set g-counter pn-counter; do for run in $$(seq $(RUNS)); do \
	  $(MAELSTROM) test -w $$workload --bin $(NODE) $$workload $(EFFICIENCY) $(ARGS) > /dev/null 2>&1; \
	  $(RUNNER) summarize --row "25 nodes, constant, $$workload" store/latest; done; done

# fly.io 3c over real sockets: the node as a TLS cluster of `node serve` processes, partitions
# injected by the runner's proxies (PARTITION_MODE=reset resets connections instead of
# holding bytes).
PARTITION_MODE ?= hold
cluster-partition: build
	$(call run_test,$(BROADCAST) --transport tcp --partition-mode $(PARTITION_MODE) --node-count 5 --time-limit 20 --rate 10 --nemesis partition)

# The efficiency configuration with partitions, printing the whole run.
bench-partition: build
	$(call run_test,$(BROADCAST) $(EFFICIENCY) --nemesis partition)

# The other CRDT workloads, served by the same node binary.
g-set: build
	$(call run_test,$(MAELSTROM) test -w g-set --bin $(NODE) g-set --node-count 5 --time-limit 20 --rate 10)
g-counter: build
	$(call run_test,$(MAELSTROM) test -w g-counter --bin $(NODE) g-counter --node-count 5 --time-limit 20 --rate 10)
pn-counter: build
	$(call run_test,$(MAELSTROM) test -w pn-counter --bin $(NODE) pn-counter --node-count 5 --time-limit 20 --rate 10)

$(SIMULATE): build
	$(CARGO) build --release --example simulate --features sim

# Deterministic simulation: a representative sweep, SEEDS seeds per configuration.
simulate: $(SIMULATE)
	@for config in "--nodes 5 --rate 10 --latency 0 --nemesis none" \
	               "--nodes 5 --rate 10 --latency 0 --nemesis partition" \
	               "--nodes 25 --nemesis none" "--nodes 25 --nemesis partition" \
	               "--nodes 25 --nemesis pause" "--nodes 25 --latency-dist exponential --nemesis none" \
	               "--nodes 5 --rate 10 --latency 20 --nemesis link-loss,duplicate,partition,pause --nemesis-interval 2" \
	               "--nodes 25 --nemesis link-loss,duplicate"; do \
	  echo "== $$config"; $(SIMULATE) $$config --seed 0 --seeds $(SEEDS) --table | tail -n 1; done

# Failure-detector figures in simulation: 25 nodes, latency 100, per fault and distribution.
fd-bench: $(SIMULATE)
	@echo "| latency, fault | seeds | valid | msgs-per-op | detection median / max | revival median / max | false suspicions / deaths | to a dead node |"
	@echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
	@for dist in constant uniform exponential; do for fault in none crash pause partition; do \
	  $(SIMULATE) --nodes 25 --latency-dist $$dist --nemesis $$fault --seed 0 --seeds $(FD_SEEDS) --fd-row "$$dist, $$fault"; done; done

# The latency budget against messages: the efficiency configuration at each budget, in
# simulation (SEEDS seeds) and through the runner (one run).
BUDGETS ?= 250 400 600 1000 2000
# When writes are answered: once a peer holds the value (the default), or at once.
ACKS    ?= peer local
frontier: $(SIMULATE)
	@$(RUNNER) summarize --header
	@for a in $(ACKS); do for b in $(BUDGETS); do \
	  $(SIMULATE) --nodes 25 --seeds $(SEEDS) --node="--ack-when $$a --latency-budget-ms $$b" --table | tail -n 1 | sed "s/^/budget $$b ms, ack $$a, simulation: /"; \
	  NODE_ACK_WHEN=$$a NODE_LATENCY_BUDGET_MS=$$b $(BROADCAST) $(EFFICIENCY) > /dev/null 2>&1; \
	  $(RUNNER) summarize --row "budget $$b ms, ack $$a, runner" store/latest; done; done

# The soak: SEEDS seeds, each a test drawn from every fault alone and together, 5 and 25
# nodes, every CRDT workload and latency distribution (1000 unless SEEDS is given, e.g.
# SEEDS=10000: about 30 minutes on 2 cores).
soak: build
	$(CARGO) build --release --example soak --features sim
	target/release/examples/soak --seeds $(if $(filter command line environment,$(origin SEEDS)),$(SEEDS),1000)

# Load per node as the cluster grows (simulation, rate 100, latency 100, 20 s): without
# faults, then with the busiest node of that size crashed.
SCALE_SEEDS ?= 2
SCALE_NODES ?= 25 50 100 200 500
scale: $(SIMULATE)
	@echo "| nodes, fault | seeds | valid | msgs-per-op | stable latency median / max | busiest node msgs/s | detection median / max | false deaths | wall mean |"
	@echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
	@for n in $(SCALE_NODES); do \
	  $(SIMULATE) --nodes $$n --seeds $(SCALE_SEEDS) --scale-row "$$n, none"; \
	  busiest=$$($(SIMULATE) --nodes $$n --seeds 1 | head -n 1 | sed 's/.*"busiest":{[^}]*"node":"\([^"]*\)".*/\1/'); \
	  $(SIMULATE) --nodes $$n --seeds $(SCALE_SEEDS) --nemesis crash --crash-target $$busiest --scale-row "$$n, crash of $$busiest"; done

# The same configurations through the real-process runner and the simulation, side by side;
# with partitions, FIDELITY_RUNS runner runs (seeds 1, 2, ...) against the same seeds and
# seeds 0-19 simulated.
FIDELITY_RUNS ?= 5
fidelity: build $(SIMULATE)
	@$(RUNNER) summarize --header
	@$(BROADCAST) --node-count 5 --time-limit 20 --rate 10 > /dev/null 2>&1; $(RUNNER) summarize --row "3b runner" store/latest
	@$(SIMULATE) --nodes 5 --rate 10 --latency 0 --seeds 5 --table | tail -n 1 | sed 's/^/3b simulation: /'
	@$(BROADCAST) $(EFFICIENCY) > /dev/null 2>&1; $(RUNNER) summarize --row "3d runner" store/latest
	@$(SIMULATE) --nodes 25 --seeds 5 --table | tail -n 1 | sed 's/^/3d simulation: /'
	@for run in $$(seq $(FIDELITY_RUNS)); do \
	  $(BROADCAST) $(EFFICIENCY) --nemesis partition --seed $$run > /dev/null 2>&1; \
	  $(RUNNER) summarize --row "3d with partitions, runner seed $$run" store/latest; done
	@$(SIMULATE) --nodes 25 --nemesis partition --seed 1 --seeds $(FIDELITY_RUNS) --table | tail -n 1 | sed 's/^/3d with partitions, simulation, the same seeds: /'
	@$(SIMULATE) --nodes 25 --nemesis partition --seeds 20 --table --by-kind | tail -n 2 | sed 's/^/3d with partitions, simulation, seeds 0-19: /'
	@$(SIMULATE) --nodes 25 --nemesis partition --seeds 20 --table --by-phase | tail -n 6

# A local 5-node TLS cluster on loopback, in the background (target/cluster/): peers on
# ports 7100-7104, clients on 7200-7204 (CLUSTER_PEER_PORT, CLUSTER_CLIENT_PORT move them).
CLUSTER_NODES       ?= 5
CLUSTER_PEER_PORT   ?= 7100
CLUSTER_CLIENT_PORT ?= 7200
CLUSTER_ENV := CLUSTER_NODES=$(CLUSTER_NODES) CLUSTER_PEER_PORT=$(CLUSTER_PEER_PORT) \
               CLUSTER_CLIENT_PORT=$(CLUSTER_CLIENT_PORT) NODE=$(NODE)
DEMO := target/release/examples/cluster_demo

cluster: build
	@$(CLUSTER_ENV) scripts/cluster.sh start

cluster-stop:
	@$(CLUSTER_ENV) scripts/cluster.sh stop

# A scripted tour of a 5-node cluster (in target/cluster-demo/): broadcast, read, kill a
# node, see it dead everywhere, restart it, see it alive and caught up. Fails on a bound.
cluster-demo: build
	$(CARGO) build --release --example cluster_demo
	$(DEMO)

debug: build
	RUST_LOG=debug $(NODE) < examples/session.jsonl

clean:
	$(CARGO) clean
	rm -rf store

# Cluster mode across hosts: 3 network namespaces on a private bridge, TLS, a pulled cable
# detected and healed (root; skips otherwise). CLUSTER_NETNS_CUT_SECS=20 keeps it out longer.
cluster-netns:
	$(CARGO) test --release --test cluster_netns -- --nocapture

# Local TLS clusters of `node serve` under the broadcast workload: one row per size.
CLUSTER_BENCH := target/release/examples/cluster_bench
CLUSTER_BENCH_ARGS ?=
cluster-bench: build
	$(CARGO) build --release --example cluster_bench
	$(CLUSTER_BENCH) --nodes 5,25 --rate 100 --secs 20 $(CLUSTER_BENCH_ARGS)

# The same workload shape through the stdio runner, for comparison (latency 0, as loopback).
cluster-bench-runner: build
	@$(RUNNER) summarize --header
	@for n in 5 25; do $(BROADCAST) --node-count $$n --time-limit 20 --rate 100 --latency 0 $(ARGS) > /dev/null 2>&1; \
	  $(RUNNER) summarize --row "$$n nodes, stdio runner, latency 0" store/latest; done
