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
        debug simulate fd-bench clean

build:
	$(CARGO) build --release --workspace

test:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets --release -- -D warnings
	$(CARGO) test --workspace --release

# fly.io 3a: one node.
single: build
	$(call run_test,$(BROADCAST) --node-count 1 --time-limit 20 --rate 10)

# fly.io 3b: five nodes.
gossip: build
	$(call run_test,$(BROADCAST) --node-count 5 --time-limit 20 --rate 10)

# fly.io 3c: five nodes with network partitions.
partition: build
	$(call run_test,$(BROADCAST) --node-count 5 --time-limit 20 --rate 10 --nemesis partition)

debug: build
	RUST_LOG=debug $(NODE) < examples/session.jsonl

clean:
	$(CARGO) clean
	rm -rf store
