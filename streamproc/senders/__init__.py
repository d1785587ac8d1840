"""The sender stage: drains `streamproc.messages.<mode>` into vendors, at most once per message.

Modules, in the order a message meets them:

- `worker.py`          Kafka consumer per mode (manual commits, rebalance callbacks); `run_sender`, `main`.
- `lanes.py`           priority lanes (urgent/high before medium/low), round robin by application.
- `dedupe.py`          message ids already handled, rebuilt from `streamproc.deliveries` on assign.
- `claims.py`          claimed/resolved incident instances, from audit records on `streamproc.outcomes`.
- `audit_follower.py`  follows those audit records (a `kafka.follow.TopicFollower`) into `claims.py`.
- `ratelimit.py`       cluster-wide rates split by owned partitions; 429 pauses one mode.
- `vendors/`           twilio (sms, call), slack, smtp (email), webhook, console.
- `retry.py`           temporary failures back off with jitter; permanent ones stop.
- `fallback.py`        after the last failure, re-queue as email when the user has one.
- `pipeline.py`        the stages composed for one mode.
- `delivery_log.py`    the producer, delivery records and their read-back on assign; the at-most-once argument.
- `offsets.py`         which offsets are settled, so what the consumer may commit.
- `metrics.py`         Prometheus metrics (`--metrics-port`): settled, retried, queued, waits, latencies.
- `status.py`          the JSON /status endpoint (`--status-port`) for `streamproc inspect senders`.

Topic names are `kafka.topics.Topics`'s; the `senders:` configuration key is `config/senders.py`.
"""
