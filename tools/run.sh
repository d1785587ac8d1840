#!/usr/bin/env bash
# Run streamproc locally against a local Kafka broker:
#
#   tools/run.sh                 starts the broker (tools/kafka/kafka.sh up, unless STREAMPROC_KAFKA is set),
#                                then `.venv/bin/streamproc run --config examples/config.yaml`
#   tools/run.sh CMD [ARGS...]   same broker handling, but runs CMD instead (used by `make bench`)
#
# Ctrl-C / SIGTERM is forwarded once to the command (which stops its own child processes); when it
# has exited, any process left in its process group is terminated, and the broker is stopped if this
# script started it (a broker that was already running, e.g. from `make kafka-up`, is left alone).
# The command sees the broker address in STREAMPROC_KAFKA.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
KAFKA_SH=tools/kafka/kafka.sh

started_broker=0
child=""

log() { echo "run.sh: $*" >&2; }

# shellcheck disable=SC2329  # (trap handlers)
cleanup() {
  local rc=$?
  trap - INT TERM HUP EXIT
  if [[ -n $child ]]; then
    # The command has exited (or never started); reap whatever it left in its process group.
    if kill -0 -- "-$child" 2>/dev/null; then
      log "terminating leftover processes of group $child"
      kill -TERM -- "-$child" 2>/dev/null || true
      for _ in $(seq 100); do kill -0 -- "-$child" 2>/dev/null || break; sleep 0.1; done
      kill -KILL -- "-$child" 2>/dev/null || true
    fi
  fi
  if ((started_broker)); then
    bash "$KAFKA_SH" down || true
  fi
  exit "$rc"
}

# shellcheck disable=SC2329
forward() {  # $1 = signal name
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    log "got SIG$1, stopping (pid $child) ..."
    kill "-$1" "$child" 2>/dev/null || true
  else
    exit 130
  fi
}

trap cleanup EXIT
trap 'forward INT' INT
trap 'forward TERM' TERM
trap 'forward TERM' HUP

if [[ -z ${STREAMPROC_KAFKA:-} ]]; then
  if ! bash "$KAFKA_SH" status 2>/dev/null; then
    started_broker=1
  fi
  STREAMPROC_KAFKA=$(bash "$KAFKA_SH" up)
  export STREAMPROC_KAFKA
else
  log "using the broker at STREAMPROC_KAFKA=$STREAMPROC_KAFKA"
fi

if (($# == 0)); then
  set -- .venv/bin/streamproc run --config examples/config.yaml
  cat >&2 <<EOF

  Kafka:  $STREAMPROC_KAFKA
  Starting: $*
  To fire the example incident, in another terminal:

      .venv/bin/streamproc produce examples/incident.json

  Ctrl-C stops everything$( ((started_broker)) && echo " (including the broker)").

EOF
fi

# Own process group (set -m): the terminal's Ctrl-C reaches only this script, which forwards exactly
# one signal; a background job started with job control off would ignore SIGINT instead.
set -m
"$@" </dev/null &
child=$!
set +m

rc=0
while :; do
  wait "$child" && rc=0 || rc=$?
  kill -0 "$child" 2>/dev/null || break  # `wait` also returns when a trapped signal arrives
done
# The command's exit status (if the loop's last `wait` was cut short by a signal).
if wait "$child" 2>/dev/null; then rc=0; else r=$?; ((r == 127)) || rc=$r; fi
exit "$rc"
