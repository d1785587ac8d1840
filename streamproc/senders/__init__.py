"""The sender stage: drains `streamproc.messages.<mode>` into vendors, at most once per message.

Modules, in the order a message meets them:

- `worker.py`     Kafka consumer per mode (manual commits, rebalance callbacks); `run_sender`, `main`.
- `lanes.py`      priority lanes (urgent/high before medium/low), round robin by application.
- `dedupe.py`     message ids already handled, rebuilt from `streamproc.deliveries` on assign.
- `claims.py`     claimed/resolved incident instances, from audit records on `streamproc.outcomes`.
- `ratelimit.py`  cluster-wide rates split by owned partitions; 429 pauses one mode.
- `vendors/`      twilio (sms, call), slack, smtp (email), webhook, console.
- `retry.py`      temporary failures back off with jitter; permanent ones stop.
- `fallback.py`   after the last failure, re-queue as email when the user has one.
- `pipeline.py`   the stages composed for one mode.
- `kafka_io.py`   topics, the delivery log, offsets, read-backs; the at-most-once argument.
- `metrics.py`    Prometheus metrics (`--metrics-port`): settled, retried, queued, waits, latencies.
- `settings.py`   the `senders:` configuration key.
"""
