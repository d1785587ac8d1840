"""Per-user flood-control state (spec §7): what the live stage keeps in its table, one per user.

Plain data, times in µs since the epoch, short lists pruned as time moves on, so it serialises to
compact JSON (`UserFloodState.model_dump_json()` / `model_validate_json()`).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from streamproc.wire.outcomes import Message

SEEN_MESSAGES_KEPT = 256
"""How many message ids a user remembers, so a re-delivered message is a no-op."""

StatusKind = str
"""`claimed`, `unclaimed` or `resolved` (the engine's audit kinds)."""


class KeyState(BaseModel):
    """Batching of one (plan, user) key. Idle when `next_at` is None."""

    model_config = ConfigDict(extra="forbid")

    t0: int | None = Field(default=None, description="When the key started batching")
    next_at: int | None = Field(default=None, description="Due time of the next batch (µs); None: idle")
    held: list[Message] = Field(default_factory=list, description="Held for the batch at next_at, §4 order")
    times: list[int] = Field(default_factory=list, description="at of the key's recent messages (µs, ascending)")

    @property
    def batching(self) -> bool:
        return self.next_at is not None

    def clone(self) -> KeyState:
        return KeyState(t0=self.t0, next_at=self.next_at, held=list(self.held), times=list(self.times))


class UserFloodState(BaseModel):
    """Everything flood control knows about one user."""

    model_config = ConfigDict(extra="forbid")

    user: str
    latest: int = Field(default=0, description="Latest message time seen (µs): the pruning reference")
    recent: dict[str, list[int]] = Field(
        default_factory=dict, description="Final mode -> at (µs, ascending) of recent messages, for downgrade rules"
    )
    keys: dict[str, KeyState] = Field(default_factory=dict, description="Batching state by plan")
    instances: dict[str, list[tuple[int, StatusKind]]] = Field(
        default_factory=dict,
        description="`<instance>:<incident_id>` of instances with held messages -> their status changes "
        "(at µs, kind) in arrival order",
    )
    seen: list[str] = Field(default_factory=list, description="Recent input message ids, oldest first")

    def clone(self) -> UserFloodState:
        """A copy whose lists can be changed without touching this one (messages are frozen: shared)."""
        return UserFloodState(
            user=self.user,
            latest=self.latest,
            recent={mode: list(v) for mode, v in self.recent.items()},
            keys={plan: key.clone() for plan, key in self.keys.items()},
            instances={k: list(v) for k, v in self.instances.items()},
            seen=list(self.seen),
        )

    @property
    def wake_at(self) -> int | None:
        """The next batch time (µs), if any key is batching."""
        times = [k.next_at for k in self.keys.values() if k.next_at is not None]
        return min(times) if times else None


def instance_key(incident_id: str, instance: int) -> str:
    """Instance first: it is digits, so the key reads back unambiguously whatever the incident id holds."""
    return f"{instance}:{incident_id}"
