"""Feeding the paged index (`paged.py`) from Kafka: a `kafka.follow.TopicFollower` of two topics.

Why a file of its own: the index is what the replies ask, this is how it is kept current; the
index stays testable without a broker, and the reading loop is the one every follower shares.

The reader assigns every partition of `streamproc.deliveries` and `streamproc.outcomes` by hand
(it joins no consumer group and commits nothing, so every API replica holds the whole index) from
`api.paged_window` ago (`offsets_for_times` on the record timestamps; partitions with nothing that
recent start at their end), then stays live. It starts over from the window's beginning after an
error (applying records again is harmless), and prunes the index about once a minute.

`caught_up` is set once the reader has read up to the end the topics had when it started.
`sync()` goes further for a reply that needs the newest state ("claim last"): it asks the broker
for the end of every partition now and waits (bounded) until the reader has read that far, so a
reply sees every page and claim written before it arrived. Partitions added to the topics while
the API runs are picked up at the next restart.
"""

from __future__ import annotations

from streamproc.api.paged import PagedIndex
from streamproc.kafka import topics as names
from streamproc.kafka.follow import TopicFollower

PRUNE_EVERY = 60.0
"""Seconds between two prunings of the index."""


class PagedReader(TopicFollower):
    """Reads the deliveries and outcomes topics into `index`; `start()` runs it on a thread."""

    name = "api-paged"

    def __init__(
        self,
        bootstrap: str,
        index: PagedIndex,
        *,
        deliveries_topic: str | None = None,
        outcomes_topic: str | None = None,
    ) -> None:
        super().__init__(
            bootstrap, (deliveries_topic or names.DELIVERIES, outcomes_topic or names.OUTCOMES), index.clock
        )
        self.index = index
        self._pruned_at = 0.0

    def apply_message(self, topic: str, key: bytes | None, value: bytes | None, timestamp_ms: int | None) -> None:
        if topic == self.topics[0]:
            self.index.apply_delivery_record(value)
        else:
            self.index.apply_outcome_record(value)

    def start_ms(self) -> int | None:
        return int((self._clock() - self.index.window) * 1000)

    def housekeeping(self) -> None:
        if self._clock() - self._pruned_at > PRUNE_EVERY:
            self._pruned_at = self._clock()
            self.index.prune()
