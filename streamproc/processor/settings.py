"""What one `streamproc worker` is started with (the command line and its environment)."""

from __future__ import annotations

from dataclasses import dataclass

from streamproc.kafka import topics


@dataclass
class WorkerSettings:
    config_path: str
    bootstrap: str
    partitions: int = topics.DEFAULT_PARTITIONS
    store: str = "rocksdb"
    data_dir: str | None = None
    web_port: int | None = None
    tick_interval: float = 0.2
    instance_id: str | None = None
    session_timeout: float = 6.0
    """A SIGKILLed worker's partitions move after this (see docs/decisions/worker-session-timeout.md)."""
    standby_replicas: int = 0
    app_id: str = topics.NAMESPACE
    loglevel: str = "warning"
    batch_max: int = 1000
    """Records an agent takes at once (one round of acknowledgements per batch)."""
    batch_within: float = 0.002
    """Seconds an agent waits for more records before it handles what it has."""
    wake_gather: float = 0.03
    """Seconds the ticker waits after a batch of wake-ups before it looks for the next ones, so
    that under load they come in batches rather than one round of acknowledgements each."""
    state_cache: int = 20_000
    """Escalation states kept parsed in memory (the most recently written), so a record or a
    wake-up of a busy incident does not read and parse its state from the table again."""
