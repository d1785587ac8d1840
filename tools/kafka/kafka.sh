#!/usr/bin/env bash
# Local single-node Apache Kafka (KRaft, combined broker+controller) for development and tests,
# run straight from the Maven Central jars (no Docker, no Apache tarball).
#
#   tools/kafka/kafka.sh fetch          download the jars into .cache/kafka/lib (once)
#   tools/kafka/kafka.sh up             start the broker (idempotent), print the bootstrap address on stdout
#   tools/kafka/kafka.sh down [--wipe]  stop it (idempotent); --wipe also deletes its data (topics, offsets)
#   tools/kafka/kafka.sh status         exit 0 if the broker is up and answering
#
# Environment:
#   STREAMPROC_KAFKA     external bootstrap servers; if set, `up` does nothing
#   KAFKA_PORT           client port, default 19092 (the controller uses KAFKA_PORT+1)
#   KAFKA_RUN_DIR        state dir (data, logs, pid), default <repo>/.run/kafka
#   KAFKA_HEAP_OPTS      default "-Xmx512m"
#   KAFKA_START_TIMEOUT  seconds to wait for the broker to answer, default 60
#   KAFKA_PYTHON         python with confluent_kafka for the readiness check, default <repo>/.venv/bin/python
#   KAFKA_CACHE_DIR      jar/maven cache, default <repo>/.cache
#   KAFKA_SASL_SSL_PORT  opt-in: a second listener, SASL_SSL on this port (TLS with a CA made in
#                        KAFKA_RUN_DIR/tls; SASL SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN). `up` prints
#                        where the CA file is; KAFKA_RUN_DIR/tls/client.env has the client settings
#   KAFKA_SASL_USER      its user, default streamproc
#   KAFKA_SASL_PASSWORD  its password, default streamproc-secret (letters, digits and ._-+=@%:,! only)
#
# One node of a multi-node cluster (tools/kafka/cluster.sh sets these; alone they are not needed):
#   KAFKA_NODE_ID        node.id, default 1
#   KAFKA_QUORUM_VOTERS  controller.quorum.voters, default this node alone (1@127.0.0.1:KAFKA_PORT+1)
#   KAFKA_CLUSTER_ID     the cluster id a new data dir is formatted with, default a random one
#   KAFKA_REPLICATION    default.replication.factor and the internal topics' replication, default 1
#   KAFKA_MIN_ISR        min.insync.replicas, default 1
#
# Everything listens on 127.0.0.1 only. Several brokers can run side by side as long as each has its
# own KAFKA_PORT and KAFKA_RUN_DIR (the test session uses 19192 and .run/kafka-test).
# Human-readable messages go to stderr; stdout only carries the bootstrap address (from `up`).
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)

CACHE_DIR=${KAFKA_CACHE_DIR:-$REPO_ROOT/.cache}
LIB_DIR=$CACHE_DIR/kafka/lib
STAMP=$LIB_DIR/.complete
M2_REPO=$CACHE_DIR/m2
POM=$SCRIPT_DIR/pom.xml

KAFKA_PORT=${KAFKA_PORT:-19092}
[[ $KAFKA_PORT =~ ^[0-9]+$ ]] || { echo "kafka.sh: KAFKA_PORT must be a number" >&2; exit 2; }
CONTROLLER_PORT=$((KAFKA_PORT + 1))
HOST=127.0.0.1
BOOTSTRAP=$HOST:$KAFKA_PORT
RUN_DIR=$(realpath -m "${KAFKA_RUN_DIR:-$REPO_ROOT/.run/kafka}")
DATA_DIR=$RUN_DIR/data
LOG_DIR=$RUN_DIR/logs
PID_FILE=$RUN_DIR/kafka.pid
CONF=$RUN_DIR/server.properties
LOG4J_CONF=$RUN_DIR/log4j.properties
OUT_FILE=$RUN_DIR/kafka.out        # JVM stdout/stderr (crashes before logging starts)
SERVER_LOG=$LOG_DIR/server.log     # the broker's own log
START_TIMEOUT=${KAFKA_START_TIMEOUT:-60}
STOP_TIMEOUT=20
PYTHON=${KAFKA_PYTHON:-$REPO_ROOT/.venv/bin/python}
SASL_SSL_PORT=${KAFKA_SASL_SSL_PORT:-}
SASL_USER=${KAFKA_SASL_USER:-streamproc}
SASL_PASSWORD=${KAFKA_SASL_PASSWORD:-streamproc-secret}
TLS_DIR=$RUN_DIR/tls
if [[ -n $SASL_SSL_PORT ]]; then
  [[ $SASL_SSL_PORT =~ ^[0-9]+$ && $SASL_SSL_PORT != "$KAFKA_PORT" && $SASL_SSL_PORT != "$CONTROLLER_PORT" ]] \
    || { echo "kafka.sh: KAFKA_SASL_SSL_PORT must be a number other than $KAFKA_PORT and $CONTROLLER_PORT" >&2; exit 2; }
  [[ $SASL_USER =~ ^[A-Za-z0-9._-]+$ ]] || { echo "kafka.sh: KAFKA_SASL_USER: letters, digits, . _ - only" >&2; exit 2; }
  # It goes into a JAAS line and a kafka-configs argument: no quotes, brackets or spaces.
  [[ $SASL_PASSWORD =~ ^[A-Za-z0-9._+=@%:,!-]+$ ]] \
    || { echo "kafka.sh: KAFKA_SASL_PASSWORD: letters, digits and ._-+=@%:,! only" >&2; exit 2; }
fi
NODE_ID=${KAFKA_NODE_ID:-1}
QUORUM_VOTERS=${KAFKA_QUORUM_VOTERS:-$NODE_ID@$HOST:$CONTROLLER_PORT}
REPLICATION=${KAFKA_REPLICATION:-1}
MIN_ISR=${KAFKA_MIN_ISR:-1}
[[ $NODE_ID =~ ^[0-9]+$ && $REPLICATION =~ ^[0-9]+$ && $MIN_ISR =~ ^[0-9]+$ ]] \
  || { echo "kafka.sh: KAFKA_NODE_ID, KAFKA_REPLICATION and KAFKA_MIN_ISR must be numbers" >&2; exit 2; }
read -r -a HEAP_OPTS <<<"${KAFKA_HEAP_OPTS:--Xmx512m}"

log() { echo "kafka.sh: $*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# ---------------------------------------------------------------------------------------------- fetch

pom_hash() { sha256sum "$POM" | cut -d' ' -f1; }

jars_ok() { [[ -f $STAMP && "$(cat "$STAMP")" == "$(pom_hash)" ]]; }

need_java() {
  command -v java >/dev/null 2>&1 \
    || die "'java' not found. Install a JDK/JRE 17 (e.g. apt-get install openjdk-17-jre-headless)."
}

cmd_fetch() {
  need_java
  jars_ok && return 0
  command -v mvn >/dev/null 2>&1 \
    || die "'mvn' not found; it is needed once to download the Kafka jars (e.g. apt-get install maven)."
  mkdir -p "$CACHE_DIR/kafka"
  # Serialise concurrent fetches (e.g. `make run` and a test session started together).
  exec 8>"$CACHE_DIR/kafka/.fetch.lock"
  flock 8
  if ! jars_ok; then
    log "downloading Kafka jars from Maven Central into $LIB_DIR (first time only) ..."
    local tmp=$CACHE_DIR/kafka/lib.tmp.$$ started=$SECONDS
    rm -rf "$tmp"
    local mvn_log=$CACHE_DIR/kafka/mvn.log
    if ! mvn -q -B -Dstyle.color=never -f "$POM" -Dmaven.repo.local="$M2_REPO" \
        dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
      rm -rf "$tmp"
      tail -n 30 "$mvn_log" >&2
      die "mvn dependency:copy-dependencies failed (is Maven Central reachable?); full output in $mvn_log"
    fi
    ls "$tmp"/kafka_2.13-*.jar >/dev/null 2>&1 || { rm -rf "$tmp"; die "no kafka_2.13 jar was downloaded"; }
    pom_hash >"$tmp/.complete"
    rm -rf "$LIB_DIR"
    mv "$tmp" "$LIB_DIR"
    log "fetched $(find "$LIB_DIR" -name '*.jar' | wc -l) jars in $((SECONDS - started)) s"
  fi
  exec 8>&-
}

# -------------------------------------------------------------------------------------------- helpers

# pid of our broker if it is running (pid file, or a kafka.Kafka process using our config), else "".
broker_pid() {
  local pid=""
  [[ -f $PID_FILE ]] && pid=$(cat "$PID_FILE" 2>/dev/null || true)
  if [[ -n $pid ]] && is_our_broker "$pid"; then echo "$pid"; return; fi
  # Pid file missing/stale: look for a broker started with exactly this config file.
  local p
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    if is_our_broker "$p"; then echo "$p"; return; fi
  done
}

is_our_broker() {
  local cmdline
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
  [[ $cmdline == *" kafka.Kafka $CONF"* ]]
}

port_open() {  # $1 = port
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

have_python_client() {
  [[ -x $PYTHON ]] && "$PYTHON" -c 'import confluent_kafka' 2>/dev/null
}

# A real metadata round trip (needs confluent_kafka); librdkafka's connection noise goes to /dev/null.
metadata_ok() {
  "$PYTHON" - "$1" 2>/dev/null <<'EOF'
import sys
from confluent_kafka.admin import AdminClient
try:
    md = AdminClient({"bootstrap.servers": sys.argv[1]}).list_topics(timeout=3)
except Exception:
    sys.exit(1)
sys.exit(0 if md.brokers else 1)
EOF
}

# Is the broker answering? $1 = 1 if the python client can be used.
answering() {
  port_open "$KAFKA_PORT" || return 1
  if [[ $1 == 1 ]]; then
    metadata_ok "$BOOTSTRAP"
  else
    # No python client: the port is open and the broker logged that it finished starting.
    grep -q 'Kafka Server started' "$SERVER_LOG" 2>/dev/null
  fi
}

show_logs() {
  log "---- last lines of $OUT_FILE"
  tail -n 20 "$OUT_FILE" >&2 2>/dev/null || true
  log "---- last lines of $SERVER_LOG"
  tail -n 40 "$SERVER_LOG" >&2 2>/dev/null || true
}

# What `kafka.tools.StorageTool random-uuid` prints (16 random bytes, URL-safe base64 without
# padding, not starting with '-'), without paying for a JVM start.
random_uuid() {
  local id
  while :; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
    [[ ${#id} == 22 && $id != -* ]] && { echo "$id"; return; }
  done
}

write_config() {
  local listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$CONTROLLER_PORT
  local advertised=PLAINTEXT://$HOST:$KAFKA_PORT
  local protocols=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
  if [[ -n $SASL_SSL_PORT ]]; then
    listeners+=,SASL_SSL://$HOST:$SASL_SSL_PORT
    advertised+=,SASL_SSL://$HOST:$SASL_SSL_PORT
    protocols+=,SASL_SSL:SASL_SSL
  fi
  cat >"$CONF" <<EOF
# Generated by tools/kafka/kafka.sh -- overwritten on every start.
process.roles=broker,controller
node.id=$NODE_ID
controller.quorum.voters=$QUORUM_VOTERS
listeners=$listeners
advertised.listeners=$advertised
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=$protocols
log.dirs=$DATA_DIR

auto.create.topics.enable=true
num.partitions=12
default.replication.factor=$REPLICATION
min.insync.replicas=$MIN_ISR
offsets.topic.replication.factor=$REPLICATION
offsets.topic.num.partitions=$(( REPLICATION > 1 ? 6 : 1 ))
transaction.state.log.replication.factor=$REPLICATION
transaction.state.log.min.isr=$MIN_ISR
transaction.state.log.num.partitions=1
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0

# Keep a dev broker small: few threads, 1 MiB cleaner buffer, small segments, short retention.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
background.threads=4
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=1048577
log.segment.bytes=67108864
log.retention.hours=24
log.retention.check.interval.ms=300000
EOF
  if [[ -n $SASL_SSL_PORT ]]; then
    # The SASL_SSL listener: the broker's certificate is signed by the CA in $TLS_DIR; client
    # certificates are verified when presented (mutual TLS), not required. SCRAM users live in the
    # cluster metadata (added at format time, or by add_scram_users); PLAIN's are listed here.
    cat >>"$CONF" <<EOF

# SASL_SSL listener (KAFKA_SASL_SSL_PORT)
sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$SASL_USER="$SASL_PASSWORD";
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$TLS_DIR/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$(cat "$TLS_DIR/storepass")
listener.name.sasl_ssl.ssl.truststore.type=PEM
listener.name.sasl_ssl.ssl.truststore.location=$TLS_DIR/ca.pem
listener.name.sasl_ssl.ssl.client.auth=requested
EOF
  fi
  # Same layout as the Apache tarball's config/log4j.properties, but everything into one
  # size-capped file in the run dir (nothing on the terminal).
  cat >"$LOG4J_CONF" <<EOF
# Generated by tools/kafka/kafka.sh
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$SERVER_LOG
log4j.appender.file.MaxFileSize=20MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.kafka.network.RequestChannel\$=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
EOF
}

# -------------------------------------------------------------------------------- SASL_SSL (opt-in)

# A local CA, the broker's certificate (127.0.0.1 and localhost) and a client certificate, made once
# per run dir with openssl. For local use only.
make_certs() {
  [[ -s $TLS_DIR/broker.p12 && -s $TLS_DIR/client.pem ]] && return 0
  command -v openssl >/dev/null 2>&1 || die "'openssl' not found; it makes the SASL_SSL listener's certificates"
  mkdir -p "$TLS_DIR"
  chmod 700 "$TLS_DIR"
  local t=$TLS_DIR
  head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$t/storepass"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=streamproc local Kafka CA" \
      -keyout "$t/ca.key" -out "$t/ca.pem" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$t/broker.key" -out "$t/broker.csr"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n' >"$t/broker.ext"
    openssl x509 -req -in "$t/broker.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
      -extfile "$t/broker.ext" -out "$t/broker.pem"
    openssl pkcs12 -export -in "$t/broker.pem" -inkey "$t/broker.key" -certfile "$t/ca.pem" -name kafka \
      -out "$t/broker.p12" -passout "file:$t/storepass"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$SASL_USER" -keyout "$t/client.key" -out "$t/client.csr"
    printf 'extendedKeyUsage=clientAuth\n' >"$t/client.ext"
    openssl x509 -req -in "$t/client.csr" -CA "$t/ca.pem" -CAkey "$t/ca.key" -CAcreateserial -days 3650 \
      -extfile "$t/client.ext" -out "$t/client.pem"
  } >"$t/openssl.log" 2>&1 || { cat "$t/openssl.log" >&2; rm -f "$t/broker.p12" "$t/client.pem"; die "openssl failed"; }
  rm -f "$t"/*.csr "$t"/*.ext
  log "made a local CA and certificates in $TLS_DIR"
}

scram_stamp() { echo "$TLS_DIR/scram-users"; }
scram_wanted() { printf '%s %s\n' "$SASL_USER" "$(printf '%s' "$SASL_PASSWORD" | sha256sum | cut -d' ' -f1)"; }

# SCRAM credentials are cluster metadata: given to `format` for a new data dir. A data dir formatted
# before (without them, or for another user or password) gets them through the PLAINTEXT listener.
add_scram_users() {
  [[ "$(cat "$(scram_stamp)" 2>/dev/null)" == "$(scram_wanted)" ]] && return 0
  local mechanism
  for mechanism in SCRAM-SHA-512 SCRAM-SHA-256; do  # one per request: the broker refuses two for one user
    java -Dlog4j.configuration="file:$LOG4J_CONF" -cp "$LIB_DIR/*" kafka.admin.ConfigCommand \
        --bootstrap-server "$BOOTSTRAP" --alter --entity-type users --entity-name "$SASL_USER" \
        --add-config "$mechanism=[password=$SASL_PASSWORD]" >>"$OUT_FILE" 2>&1 \
      || { tail -n 20 "$OUT_FILE" >&2; die "adding SCRAM user $SASL_USER failed (the broker keeps running)"; }
  done
  scram_wanted >"$(scram_stamp)"
  log "SCRAM user $SASL_USER set"
}

sasl_ssl_info() {
  [[ -n $SASL_SSL_PORT ]] || return 0
  cat >"$TLS_DIR/client.env" <<EOF
STREAMPROC_KAFKA=$HOST:$SASL_SSL_PORT
STREAMPROC_KAFKA_SECURITY_PROTOCOL=SASL_SSL
STREAMPROC_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
STREAMPROC_KAFKA_SASL_USERNAME=$SASL_USER
STREAMPROC_KAFKA_SASL_PASSWORD=$SASL_PASSWORD
STREAMPROC_KAFKA_SSL_CA_FILE=$TLS_DIR/ca.pem
EOF
  log "SASL_SSL listener on $HOST:$SASL_SSL_PORT (SCRAM-SHA-512, SCRAM-SHA-256, PLAIN; user $SASL_USER);" \
      "CA file $TLS_DIR/ca.pem; client certificate $TLS_DIR/client.pem, key client.key;" \
      "client settings: $TLS_DIR/client.env"
}

# ----------------------------------------------------------------------------------------- commands

cmd_up() {
  if [[ -n ${STREAMPROC_KAFKA:-} ]]; then
    log "STREAMPROC_KAFKA is set: using the broker at $STREAMPROC_KAFKA, not starting a local one"
    echo "$STREAMPROC_KAFKA"
    return 0
  fi
  cmd_fetch
  mkdir -p "$RUN_DIR" "$LOG_DIR"
  exec 9>"$RUN_DIR/.lock"   # one up/down at a time per run dir
  flock 9

  local py=0
  have_python_client && py=1

  local pid
  pid=$(broker_pid)
  if [[ -n $pid ]]; then
    echo "$pid" >"$PID_FILE"
    if answering "$py"; then
      if [[ -n $SASL_SSL_PORT ]] && ! port_open "$SASL_SSL_PORT"; then
        log "WARNING: the running broker has no SASL_SSL listener on $SASL_SSL_PORT; restart it (down, then up)"
      elif [[ -n $SASL_SSL_PORT ]]; then
        add_scram_users
        sasl_ssl_info
      fi
      log "already running (pid $pid) on $BOOTSTRAP"
      echo "$BOOTSTRAP"
      return 0
    fi
    log "broker process $pid exists but does not answer yet; waiting"
  else
    rm -f "$PID_FILE"
    if port_open "$KAFKA_PORT" || port_open "$CONTROLLER_PORT"; then
      die "port $KAFKA_PORT or $CONTROLLER_PORT on $HOST is in use by another process" \
          "(another broker with a different KAFKA_RUN_DIR?). Pick another KAFKA_PORT."
    fi
    if [[ -n $SASL_SSL_PORT ]]; then
      ! port_open "$SASL_SSL_PORT" || die "port $SASL_SSL_PORT (KAFKA_SASL_SSL_PORT) on $HOST is in use"
      make_certs
    fi
    write_config
    : >"$OUT_FILE"
    local cp="$LIB_DIR/*"
    if [[ ! -f $DATA_DIR/meta.properties ]]; then
      local cluster_id scram=()
      cluster_id=${KAFKA_CLUSTER_ID:-$(random_uuid)}
      if [[ -n $SASL_SSL_PORT ]]; then
        scram=(--add-scram "SCRAM-SHA-512=[name=$SASL_USER,password=$SASL_PASSWORD]"
               --add-scram "SCRAM-SHA-256=[name=$SASL_USER,password=$SASL_PASSWORD]")
      fi
      java -Dlog4j.configuration="file:$LOG4J_CONF" -cp "$cp" kafka.tools.StorageTool \
          format --ignore-formatted -t "$cluster_id" -c "$CONF" "${scram[@]}" >>"$OUT_FILE" 2>&1 \
        || { show_logs; die "formatting $DATA_DIR failed"; }
      if [[ -n $SASL_SSL_PORT ]]; then scram_wanted >"$(scram_stamp)"; fi
      log "formatted $DATA_DIR (cluster id $cluster_id)"
    fi
    # New session (setsid): Ctrl-C in the terminal does not hit the broker, and it outlives this
    # script. The inner bash records its own pid, then execs java (same pid). fds 8/9 (locks) closed.
    # shellcheck disable=SC2016
    setsid bash -c 'echo $$ >"$0"; exec "$@"' "$PID_FILE" \
      java "${HEAP_OPTS[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
        -XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
        -Dkafka.logs.dir="$LOG_DIR" -Dlog4j.configuration="file:$LOG4J_CONF" \
        -cp "$cp" kafka.Kafka "$CONF" \
      </dev/null >>"$OUT_FILE" 2>&1 8>&- 9>&- &
    local started=$SECONDS
    for _ in $(seq 50); do [[ -s $PID_FILE ]] && break; sleep 0.1; done
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    [[ -n $pid ]] || die "could not start java"
    log "started broker (pid $pid) on $BOOTSTRAP, logs in $LOG_DIR; waiting until it answers ..."
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  while ((SECONDS < deadline)); do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      show_logs
      die "the broker exited during startup"
    fi
    if answering "$py" && { [[ -z $SASL_SSL_PORT ]] || port_open "$SASL_SSL_PORT"; }; then
      if [[ -n $SASL_SSL_PORT ]]; then add_scram_users; sasl_ssl_info; fi
      log "up after $((SECONDS - ${started:-$SECONDS})) s: bootstrap $BOOTSTRAP"
      echo "$BOOTSTRAP"
      return 0
    fi
    sleep 0.5
  done
  show_logs
  log "the broker did not answer within $START_TIMEOUT s; stopping it"
  stop_pid "$pid"
  rm -f "$PID_FILE"
  exit 1
}

stop_pid() {
  local pid=$1 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < STOP_TIMEOUT * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  log "pid $pid did not stop within $STOP_TIMEOUT s; sending SIGKILL"
  kill -KILL "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  die "pid $pid survived SIGKILL"
}

cmd_down() {
  local wipe=0 arg
  for arg in "$@"; do
    case $arg in
      --wipe) wipe=1 ;;
      *) die "unknown option for down: $arg" ;;
    esac
  done
  [[ -d $RUN_DIR ]] || { log "not running ($RUN_DIR does not exist)"; return 0; }
  exec 9>"$RUN_DIR/.lock"
  flock 9
  local pid
  pid=$(broker_pid)
  if [[ -n $pid ]]; then
    log "stopping broker (pid $pid) of $RUN_DIR ..."
    stop_pid "$pid"
    log "stopped"
  else
    log "not running"
  fi
  rm -f "$PID_FILE"
  if ((wipe)); then
    rm -rf "$DATA_DIR"
    log "wiped $DATA_DIR"
  fi
}

cmd_status() {
  if [[ -n ${STREAMPROC_KAFKA:-} ]]; then
    log "STREAMPROC_KAFKA is set: $STREAMPROC_KAFKA (external broker)"
    if have_python_client; then
      metadata_ok "$STREAMPROC_KAFKA" || { log "... which does not answer"; return 1; }
    fi
    return 0
  fi
  local pid py=0
  pid=$(broker_pid)
  [[ -n $pid ]] || { log "not running ($BOOTSTRAP, $RUN_DIR)"; return 1; }
  have_python_client && py=1
  if answering "$py"; then
    log "running (pid $pid) on $BOOTSTRAP"
    return 0
  fi
  log "process $pid exists but $BOOTSTRAP does not answer"
  return 1
}

case ${1:-} in
  fetch) cmd_fetch ;;
  up) cmd_up ;;
  down) shift; cmd_down "$@" ;;
  status) cmd_status ;;
  *) echo "usage: $0 {fetch|up|down [--wipe]|status}" >&2; exit 2 ;;
esac
