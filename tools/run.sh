#!/usr/bin/env bash
# Run streamproc locally against a local Kafka broker:
#
#   tools/run.sh                 starts the broker (tools/kafka/kafka.sh up, unless STREAMPROC_KAFKA is set),
#                                then `.venv/bin/streamproc run --config examples/config.yaml`
#   tools/run.sh CMD [ARGS...]   same broker handling, but runs CMD instead (used by `make bench`)
#
# Environment (all optional):
#   STREAMPROC_KAFKA      use the broker at host:port; none is started or stopped
#   KAFKA_PORT            port of the broker started here (default 19092; kafka.sh also takes KAFKA_PORT+1)
#   KAFKA_RUN_DIR         its state directory (default .run/kafka)
#   STREAMPROC_RUN_DIR    where `streamproc run` keeps its logs (logs/) and the worker's tables (default .run)
#   STREAMPROC_API_PORT   port of the HTTP API (default 8080)
#
# Stopping: SIGINT (Ctrl-C), SIGTERM and SIGHUP are passed on, once each, to the command, which stops
# its own children (`streamproc run` also stops by itself when its stdout or stderr goes away: a
# `| head` that exited, a closed terminal). When the command has exited, anything left in its
# process group is terminated, and the broker is stopped if this script started it (one that was
# already running, e.g. from `make kafka-up`, is left alone). A signal during the broker's start
# stops the start and the broker. SIGPIPE is ignored: a closed stdout never cuts the clean-up short.
# kafka.sh's messages go to $STREAMPROC_RUN_DIR/logs/kafka.sh.log; the command sees the broker
# address in STREAMPROC_KAFKA.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
KAFKA_SH=tools/kafka/kafka.sh
LOG_DIR=${STREAMPROC_RUN_DIR:-.run}/logs
KAFKA_LOG=$LOG_DIR/kafka.sh.log
mkdir -p "$LOG_DIR"

started_broker=0
child=""
helper=""
stopping=""
rc=0

trap '' PIPE
say() { printf '%s\n' "$*" 2>/dev/null || true; }  # stdout; one that is gone is no reason to stop here

# shellcheck disable=SC2329  # (trap handlers)
cleanup() {
  local code=$?
  trap '' INT TERM HUP  # the clean-up runs to its end
  trap - EXIT
  if [[ -n $helper ]] && kill -0 "$helper" 2>/dev/null; then
    kill -TERM "$helper" 2>/dev/null || true
    wait "$helper" 2>/dev/null || true
  fi
  if [[ -n $child ]] && kill -0 -- "-$child" 2>/dev/null; then
    # The command has exited; reap whatever it left in its process group.
    say "run.sh: terminating leftover processes of group $child"
    kill -TERM -- "-$child" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 -- "-$child" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$child" 2>/dev/null || true
  fi
  if ((started_broker)); then
    if bash "$KAFKA_SH" down >>"$KAFKA_LOG" 2>&1; then
      say "run.sh: Kafka broker stopped"
    else
      say "run.sh: stopping the Kafka broker failed; see $KAFKA_LOG"
    fi
  fi
  exit "$code"
}

# shellcheck disable=SC2329
on_signal() {  # $1 = signal name
  stopping=$1
  if [[ -n $child ]] && kill -0 "$child" 2>/dev/null; then
    kill "-$1" "$child" 2>/dev/null || true
  elif [[ -n $helper ]]; then
    kill -TERM "$helper" 2>/dev/null || true
  fi
}

# Wait for $1 to exit; `wait` also returns when a trapped signal arrives. Sets rc to its status.
wait_for() {
  local pid=$1 r
  while :; do
    if wait "$pid"; then rc=0; else rc=$?; fi
    kill -0 "$pid" 2>/dev/null || break
  done
  # The status itself, if the last `wait` was cut short by a signal.
  if wait "$pid" 2>/dev/null; then rc=0; else r=$?; ((r == 127)) || rc=$r; fi
}

trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

if [[ -z ${STREAMPROC_KAFKA:-} ]]; then
  kafka_dir=${KAFKA_RUN_DIR:-.run/kafka}
  if ! bash "$KAFKA_SH" status >>"$KAFKA_LOG" 2>&1; then
    started_broker=1
    say "run.sh: starting a Kafka broker on 127.0.0.1:${KAFKA_PORT:-19092} (its log: $kafka_dir/logs/server.log) ..."
  fi
  # In the background, so that a signal is handled while the broker starts.
  bash "$KAFKA_SH" up >"$LOG_DIR/kafka.bootstrap" 2>>"$KAFKA_LOG" &
  helper=$!
  wait_for "$helper"
  helper=""
  if [[ -n $stopping ]]; then
    exit 130
  fi
  if ((rc != 0)); then
    say "run.sh: the Kafka broker did not start; the end of $KAFKA_LOG:"
    tail -n 25 "$KAFKA_LOG" 2>/dev/null | sed 's/^/    /' || true
    exit 1
  fi
  STREAMPROC_KAFKA=$(cat "$LOG_DIR/kafka.bootstrap")
  export STREAMPROC_KAFKA
  if ((started_broker)); then
    say "run.sh: Kafka is up on $STREAMPROC_KAFKA; it stops with this run"
  else
    say "run.sh: Kafka is already running on $STREAMPROC_KAFKA (left running at the end; make kafka-down stops it)"
  fi
else
  say "run.sh: using the Kafka broker at STREAMPROC_KAFKA=$STREAMPROC_KAFKA"
fi

if (($# == 0)); then
  set -- .venv/bin/streamproc run --config examples/config.yaml
fi

# Own process group (set -m): the terminal's Ctrl-C reaches only this script, which forwards exactly
# one signal; a background job started with job control off would ignore SIGINT instead.
set -m
"$@" </dev/null &
child=$!
set +m
if [[ -n $stopping ]]; then  # a signal came while the command was being started
  kill "-$stopping" "$child" 2>/dev/null || true
fi
wait_for "$child"
exit "$rc"
