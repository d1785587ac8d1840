#!/usr/bin/env bash
# A local three-node Apache Kafka cluster (KRaft, each node broker and controller) on 127.0.0.1,
# from the same pinned Maven Central jars as the single broker: each node is a `kafka.sh` broker
# with its own port, state dir and node id, all three voters of one controller quorum, with
# default.replication.factor=3 and min.insync.replicas=2 (as a production cluster would be).
#
#   tools/kafka/cluster.sh up            start the nodes that are not running (all three at once: a
#                                        quorum needs two), print the bootstrap list on stdout
#   tools/kafka/cluster.sh down [--wipe] stop every node (SIGTERM); --wipe also deletes the data
#   tools/kafka/cluster.sh kill N        SIGKILL node N (1..3): the broker lost, as a crash loses it
#   tools/kafka/cluster.sh stop N        stop node N gracefully (controlled shutdown, as a rolling restart does)
#   tools/kafka/cluster.sh start N       start node N again and wait until it answers
#   tools/kafka/cluster.sh status        exit 0 if every node answers
#   tools/kafka/cluster.sh bootstrap     print the bootstrap list
#
# Environment:
#   KAFKA_CLUSTER_PORT   node 1's client port, default 19292; node N uses PORT+2(N-1) and the next
#                        port for its controller listener (19292..19297 by default)
#   KAFKA_CLUSTER_DIR    state dir, default <repo>/.run/kafka-cluster (node N in nodeN/)
#   KAFKA_HEAP_OPTS      per node, default "-Xmx384m"
# Everything else as kafka.sh (KAFKA_CACHE_DIR, KAFKA_PYTHON, KAFKA_START_TIMEOUT).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
KAFKA_SH=$SCRIPT_DIR/kafka.sh
NODES=3
BASE_PORT=${KAFKA_CLUSTER_PORT:-19292}
[[ $BASE_PORT =~ ^[0-9]+$ ]] || { echo "cluster.sh: KAFKA_CLUSTER_PORT must be a number" >&2; exit 2; }
CLUSTER_DIR=$(realpath -m "${KAFKA_CLUSTER_DIR:-$REPO_ROOT/.run/kafka-cluster}")
HOST=127.0.0.1

log() { echo "cluster.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

port_of() { echo $((BASE_PORT + 2 * ($1 - 1))); }

voters() {
  local i out=""
  for ((i = 1; i <= NODES; i++)); do out+="${out:+,}$i@$HOST:$(($(port_of "$i") + 1))"; done
  echo "$out"
}

bootstrap() {
  local i out=""
  for ((i = 1; i <= NODES; i++)); do out+="${out:+,}$HOST:$(port_of "$i")"; done
  echo "$out"
}

cluster_id() {  # one id for every node's format, kept with the cluster
  local file=$CLUSTER_DIR/cluster.id
  if [[ ! -s $file ]]; then
    mkdir -p "$CLUSTER_DIR"
    # 16 random bytes, URL-safe base64 without padding, not starting with '-' (as StorageTool makes)
    local id
    while :; do
      id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
      [[ ${#id} == 22 && $id != -* ]] && break
    done
    echo "$id" >"$file"
  fi
  cat "$file"
}

node() {  # $1 = node number, then kafka.sh's arguments
  local n=$1
  shift
  [[ $n =~ ^[1-3]$ ]] || die "node must be 1, 2 or 3 (got '$n')"
  env -u STREAMPROC_KAFKA KAFKA_PORT="$(port_of "$n")" KAFKA_RUN_DIR="$CLUSTER_DIR/node$n" KAFKA_NODE_ID="$n" \
    KAFKA_QUORUM_VOTERS="$(voters)" KAFKA_CLUSTER_ID="$(cluster_id)" KAFKA_REPLICATION=3 KAFKA_MIN_ISR=2 \
    KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xmx384m}" bash "$KAFKA_SH" "$@"
}

node_pid() { cat "$CLUSTER_DIR/node$1/kafka.pid" 2>/dev/null || true; }

cmd_up() {
  bash "$KAFKA_SH" fetch
  cluster_id >/dev/null  # made once, before the nodes start side by side
  local i pids=() failed=0
  # Together: a node's broker answers only once the controller quorum (two of three) has formed.
  for ((i = 1; i <= NODES; i++)); do
    node "$i" up >/dev/null &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || failed=1; done
  ((failed == 0)) || die "a node did not start (logs in $CLUSTER_DIR/node*/logs)"
  log "cluster up: $(bootstrap)"
  bootstrap
}

cmd_down() {
  local i args=("$@")
  for ((i = 1; i <= NODES; i++)); do
    [[ -d $CLUSTER_DIR/node$i ]] && node "$i" down "${args[@]}"
  done
  if [[ " ${args[*]} " == *" --wipe "* ]]; then rm -f "$CLUSTER_DIR/cluster.id"; fi
  return 0
}

cmd_kill() {
  local pid
  pid=$(node_pid "$1")
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || die "node $1 is not running"
  kill -KILL "$pid"
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  rm -f "$CLUSTER_DIR/node$1/kafka.pid"
  log "node $1 (pid $pid) SIGKILLed"
}

cmd_status() {
  local i ok=0
  for ((i = 1; i <= NODES; i++)); do node "$i" status || ok=1; done
  return "$ok"
}

case ${1:-} in
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  kill) cmd_kill "${2:?node number}" ;;
  stop) node "${2:?node number}" down ;;
  start) node "${2:?node number}" up >/dev/null; log "node $2 up" ;;
  status) cmd_status ;;
  bootstrap) bootstrap ;;
  *) echo "usage: $0 {up|down [--wipe]|kill N|stop N|start N|status|bootstrap}" >&2; exit 2 ;;
esac
