"""What the stages, the ticker, the rebalance hooks and the signal handlers share in one worker."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from streamproc.config import ConfigError, load_config
from streamproc.engine.core import Engine
from streamproc.flood import FloodControl, UserFloodState
from streamproc.processor.backlog import Backlog
from streamproc.processor.catchup import CatchUp
from streamproc.processor.schedule import WakeSchedule
from streamproc.processor.silences import SilenceIndex
from streamproc.processor.worklog import now_us

log = logging.getLogger("streamproc.worker")


@dataclass
class Runtime:
    engine: Engine
    config_path: str
    flood: FloodControl
    schedule: WakeSchedule = field(default_factory=WakeSchedule)
    flood_schedule: WakeSchedule = field(default_factory=WakeSchedule)
    """Users' next batch times (spec §7), on this worker's flood partitions."""
    flood_states: dict[bytes, UserFloodState | None] = field(default_factory=dict)
    """The flood table's states as last written, for this worker's flood partitions (emptied on
    every rebalance). In a storm a user's state holds every held message: reading it back from the
    table for each record parsed them all again."""
    ready: bool = False
    """Partitions assigned, schedule rebuilt: wake-ups may run. False from the start of a
    revocation (`quiesce`) until the rebalance is complete."""
    processed: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when a wake-up earlier than the one the ticker sleeps towards was scheduled."""
    catchup: CatchUp = field(default_factory=CatchUp)
    silences: SilenceIndex = field(default_factory=SilenceIndex)
    """Spec §8: the silence books of the active events partitions, and which states watch them."""
    backlog: Backlog = field(default_factory=Backlog)
    """How far the stages have read their partitions: wake-ups wait for unread records."""
    lagging: set[int] = field(default_factory=set)
    """Events partitions whose due wake-ups wait for unread records (the ticker's last look): a
    stage that finishes a batch wakes the ticker while it is not empty."""
    stage_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while the escalation stage handles a batch, of records (the agent) or of wake-ups (the
    ticker): one at a time, so both see each state as the other left it."""

    def set_wake(self, key: str, partition: int, wake_at: int | None, schedule: WakeSchedule | None = None) -> None:
        schedule = self.schedule if schedule is None else schedule
        earliest = schedule.next_due()
        schedule.set(key, partition, wake_at)
        if wake_at is not None and (earliest is None or wake_at < earliest):
            self.changed.set()

    def flood_for(self) -> FloodControl | None:
        """The flood-control rules when any are configured (else messages skip the stage)."""
        return self.flood if self.flood.active else None

    async def quiesce(self) -> None:
        """A rebalance or a stop begins (Faust's `Consumer.wait_empty`, `faustfix.py`): no new
        wake-up batch starts, and one under way finishes (outputs acknowledged, state written)
        before Faust flushes its producer and gives the partitions up."""
        self.ready = False
        async with self.stage_lock:
            pass

    def reload(self) -> None:
        """SIGHUP: load the config again. Open instances keep their plan snapshot."""
        try:
            config = load_config(self.config_path)
            self.engine, self.flood = Engine(config), FloodControl(config)
            log.warning("config reloaded from %s", self.config_path)
            # Monitors' expiries follow the new intervals (spec §8): wake their states now, and
            # the engine computes the new expiry (or drops a removed monitor's).
            now = now_us()
            for key, partition in self.silences.monitors.items():
                self.set_wake(key.decode(), partition, now)
        except ConfigError as exc:
            log.error("config reload failed, keeping the old one:\n%s", exc)
