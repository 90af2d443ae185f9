#!/usr/bin/env bash
# A local TLS cluster of `node serve` processes on loopback, in the background.
#
#   scripts/cluster.sh start   # credentials, cluster.toml, one process per node; returns
#   scripts/cluster.sh stop    # SIGTERM every node, wait for it, remove the pid files
#   scripts/cluster.sh status  # which nodes run
#
# Everything goes in $CLUSTER_DIR (target/cluster): certs/, cluster.toml, nI.pid, nI.log.
# Node i listens for peers on 127.0.0.1:$((CLUSTER_PEER_PORT + i)) and for clients on
# 127.0.0.1:$((CLUSTER_CLIENT_PORT + i)). A second `start` while nodes run is refused.
set -euo pipefail

cd "$(dirname "$0")/.."
NODE=${NODE:-target/release/node}
DIR=${CLUSTER_DIR:-target/cluster}
NODES=${CLUSTER_NODES:-5}
PEER_PORT=${CLUSTER_PEER_PORT:-7100}
CLIENT_PORT=${CLUSTER_CLIENT_PORT:-7200}
# Seconds a node gets to open its client port, and to exit after SIGTERM (it flushes its
# queues for at most 2 s).
START_WAIT=10
STOP_WAIT=5

ids() { for ((i = 0; i < NODES; i++)); do echo "n$i"; done; }

# The pid in $1's pid file, if that process is still a `node serve` of this cluster.
running_pid() {
  local file=$DIR/$1.pid pid
  [[ -f $file ]] || return 1
  pid=$(<"$file")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Not some other process that was given the same pid since.
  if [[ -r /proc/$pid/cmdline ]]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "serve --id $1 --cluster $DIR/cluster.toml" || return 1
  fi
  echo "$pid"
}

# Something accepts connections on 127.0.0.1:$1.
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop() {
  local id pid stopped=() left
  # The nodes named by pid files too, should CLUSTER_NODES differ from the start's.
  for id in $({ ids; cd "$DIR" 2>/dev/null && ls -- *.pid 2>/dev/null | sed 's/\.pid$//'; } | sort -u); do
    if pid=$(running_pid "$id"); then
      kill -TERM "$pid" && stopped+=("$id:$pid")
    fi
  done
  for ((t = 0; t < STOP_WAIT * 10; t++)); do
    left=()
    for entry in ${stopped[@]+"${stopped[@]}"}; do
      kill -0 "${entry#*:}" 2>/dev/null && left+=("$entry")
    done
    ((${#left[@]} == 0)) && break
    sleep 0.1
  done
  for entry in ${left[@]+"${left[@]}"}; do
    echo "${entry%%:*} (pid ${entry#*:}) still runs ${STOP_WAIT}s after SIGTERM: SIGKILL" >&2
    kill -KILL "${entry#*:}" 2>/dev/null || true
  done
  rm -f "$DIR"/*.pid
  if ((${#stopped[@]} == 0)); then
    echo "no local cluster running (nothing to stop in $DIR)"
  else
    echo "stopped ${#stopped[@]} nodes: ${stopped[*]%%:*} (logs in $DIR/*.log)"
  fi
}

start() {
  local id i pid busy=() running=()
  if [[ ! -x $NODE ]]; then
    echo "$NODE not found: build it first (make build)" >&2
    exit 1
  fi
  for id in $(ids); do
    if pid=$(running_pid "$id"); then running+=("$id:$pid"); fi
  done
  if ((${#running[@]} > 0)); then
    echo "a local cluster is already running in $DIR (${running[*]}): make cluster-stop first" >&2
    exit 1
  fi
  for base in "$PEER_PORT" "$CLIENT_PORT"; do
    for ((i = 0; i < NODES; i++)); do
      if listening $((base + i)); then busy+=($((base + i))); fi
    done
  done
  if ((${#busy[@]} > 0)); then
    echo "ports in use on 127.0.0.1: ${busy[*]}. Stop whatever holds them, or pick other" >&2
    echo "ports, e.g. make cluster CLUSTER_PEER_PORT=7300 CLUSTER_CLIENT_PORT=7400" >&2
    exit 1
  fi

  mkdir -p "$DIR"
  rm -f "$DIR"/*.pid
  "$NODE" certs --out "$DIR/certs" $(ids) >/dev/null
  {
    echo "# Written by scripts/cluster.sh: every node reads this file, in this order."
    for ((i = 0; i < NODES; i++)); do
      printf '\n[[node]]\nid = "n%d"\naddress = "127.0.0.1:%d"\nclient = "127.0.0.1:%d"\n' \
        "$i" $((PEER_PORT + i)) $((CLIENT_PORT + i))
    done
  } >"$DIR/cluster.toml"

  # setsid: the nodes outlive this script and do not get the terminal's Ctrl-C.
  local detach=()
  command -v setsid >/dev/null && detach=(setsid)
  for id in $(ids); do
    echo "--- $(date '+%F %T') start" >>"$DIR/$id.log"
    RUST_LOG=${RUST_LOG:-info} ${detach[@]+"${detach[@]}"} \
      "$NODE" serve --id "$id" --cluster "$DIR/cluster.toml" --tls-dir "$DIR/certs" \
      </dev/null >>"$DIR/$id.log" 2>&1 &
    echo $! >"$DIR/$id.pid"
  done

  for ((i = 0; i < NODES; i++)); do
    id=n$i
    for ((t = 0; ; t++)); do
      if ! running_pid "$id" >/dev/null; then
        echo "$id exited at start; the end of $DIR/$id.log:" >&2
        tail -n 5 "$DIR/$id.log" >&2
        stop >/dev/null
        exit 1
      fi
      "$NODE" client --connect "127.0.0.1:$((CLIENT_PORT + i))" --timeout-ms 500 echo up \
        >/dev/null 2>&1 && break
      if ((t >= START_WAIT * 10)); then
        echo "$id did not answer on its client port within ${START_WAIT}s (see $DIR/$id.log)" >&2
        stop >/dev/null
        exit 1
      fi
      sleep 0.1
    done
  done

  local c0=127.0.0.1:$CLIENT_PORT
  echo "A $NODES-node TLS cluster runs in the background ($DIR: certs/, cluster.toml, nI.pid, nI.log)."
  for ((i = 0; i < NODES; i++)); do
    echo "  n$i  pid $(<"$DIR/n$i.pid")  peers 127.0.0.1:$((PEER_PORT + i))  clients 127.0.0.1:$((CLIENT_PORT + i))"
  done
  cat <<EOF
Talk to it (any node's client port):
  $NODE client --connect $c0 broadcast 7
  $NODE client --connect 127.0.0.1:$((CLIENT_PORT + NODES - 1)) read
  $NODE client --connect $c0 membership
  $NODE client --connect $c0 stats
  nc 127.0.0.1 $CLIENT_PORT    # then type lines like {"body":{"type":"read","msg_id":1}}
Stop it: make cluster-stop
EOF
}

status() {
  local id pid n=0
  for id in $(ids); do
    if pid=$(running_pid "$id"); then
      echo "$id running (pid $pid)"
      n=$((n + 1))
    else
      echo "$id not running"
    fi
  done
  ((n > 0))
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
