"""The per-incident escalation state: what the Faust table stores and replay keeps in memory.

The state is a value: the engine never mutates one it was given, it returns a new one.
Everything in it is plain data so it serialises to JSON for the table's changelog.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, ValidatorFunctionWrapHandler, WrapValidator

from streamproc.config.models import Plan
from streamproc.wire.events import DynamicTarget

Status = Literal["none", "silenced", "escalating", "claimed", "exhausted", "resolved"]
OPEN: frozenset[str] = frozenset({"silenced", "escalating", "claimed", "exhausted"})


@dataclass(slots=True)
class Pending:
    """One scheduled send of the current step (times in µs since the epoch). Never changed once
    made (the engine replaces a state's `pending` list, never its items).

    A dataclass, not a model: the engine makes one per scheduled send, and pydantic still
    validates and serialises it inside `IncidentState` (same JSON as a model). Not frozen: a
    frozen dataclass's `__init__` sets each field through `object.__setattr__`, four times
    slower, for nothing the engine needs."""

    at: int
    notification: int
    repeat: int
    user: str | None
    unresolved: str | None = None
    """Set on a message to the plan owner: the `role:target` that resolved to nobody."""


_KNOWN_PLANS: dict[str, list[tuple[dict[str, Any], Plan]]] = {}


def remember_plans(plans: Mapping[str, Plan]) -> None:
    """Let states whose snapshot equals one of these plans load it without validating it again:
    the live processor loads a state per record, and validating its plan was most of that."""
    for name, plan in plans.items():
        known = _KNOWN_PLANS.setdefault(name, [])
        if not any(p is plan for _, p in known):
            known.append((plan.model_dump(mode="json"), plan))
            del known[:-4]  # a few configs per process at most (whatif runs two)


def _plan_snapshot(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    if isinstance(value, dict):
        for dumped, plan in _KNOWN_PLANS.get(info.data.get("plan_name", ""), ()):
            if dumped == value:  # what validating `value` would give: an equal Plan
                return plan
    return handler(value)


class IncidentState(BaseModel):
    model_config = ConfigDict(frozen=False, validate_assignment=False)

    incident_id: str
    instance: int = 0
    status: Status = "none"
    version: int = 0
    plan_name: str = ""
    plan: Annotated[Plan | None, WrapValidator(_plan_snapshot)] = Field(
        default=None, description="Snapshot taken when the instance started"
    )
    application: str = ""
    context: dict[str, Any] = Field(default_factory=dict)
    dynamic_targets: list[DynamicTarget] = Field(default_factory=list)
    created: int = 0
    step: int = 0
    """0-based index of the current (or claimed) step."""
    step_start: int = 0
    step_end: int = 0
    pending: list[Pending] = Field(default_factory=list)
    """Sends of the current step not yet emitted, in time order."""
    claimed_at: int | None = None
    claimed_step: int | None = None
    owner: str | None = None
    absorbed: int = 0
    seen_events: list[str] = Field(default_factory=list)
    correlation_id: str | None = None
    """Of the record that opened the instance (`streamproc.kafka.headers`): for records and logs
    derived from it. The engine never reads it; replay leaves it unset."""
    silenced_until: int | None = None
    """Spec §8, status `silenced`: E, when step 1 starts (no known matching silence covers it then)."""
    silence_id: str | None = None
    """Spec §8: the silence that held the instance when it started, if one did."""
    unstarted: bool = False
    """Spec §8: step 1 has not started yet (the instance was silenced; it may be claimed since)."""
    monitor: str | None = None
    """Spec §8: on incident `heartbeat-<name>`, the monitor's name once it had a heartbeat."""
    monitor_last: int | None = None
    """L: the monitor's last heartbeat (µs)."""
    monitor_due: int | None = None
    """X = L + interval while the monitor waits for its next heartbeat; None once it expired."""
    monitor_opened: bool = False
    """The open instance was triggered by the monitor's expiry (the next heartbeat resolves it)."""
    flood_users: list[str] = Field(default_factory=list)
    """Users this instance sent messages of batching plans through the live flood-control stage
    (spec §7): its claims and resolves go to them. The engine never reads it."""
    # Issue 22, the status topic (`processor/records.py` keeps them; the engine never reads them):
    summary: str = ""
    """The trigger's context summary, kept past the resolve (which drops the context)."""
    last_paged: list[str] = Field(default_factory=list)
    """The users of the instance's latest messages (those due at `last_paged_at`)."""
    last_paged_at: int | None = None
    resolved_at: int | None = None
    status_expires: int | None = None
    """Resolved: when the worker writes the status topic's tombstone (µs); 0 once it has."""

    @classmethod
    def new(cls, incident_id: str) -> IncidentState:
        """`IncidentState(incident_id=...)` without validating the defaults (one per new incident)."""
        fields = dict(_DEFAULTS)
        fields["incident_id"] = incident_id
        for name in _FRESH:  # every state its own lists and dicts
            fields[name] = _DEFAULTS[name].copy()
        state = cls.__new__(cls)
        _set_dict(state, fields)
        _set_fields_set(state, {"incident_id"})
        _set_extra(state, None)
        _set_private(state, None)
        return state

    def clone(self) -> IncidentState:
        """A shallow copy, as `model_copy()` makes, without its generic steps (the engine makes
        one or two per event). The engine replaces lists and dicts, never mutates them."""
        new = IncidentState.__new__(IncidentState)
        _set_dict(new, self.__dict__.copy())
        _set_fields_set(new, self.__pydantic_fields_set__.copy())
        _set_extra(new, None)
        _set_private(new, None)
        return new

    @property
    def is_open(self) -> bool:
        return self.status in OPEN

    @property
    def wake_at(self) -> int | None:
        """When the engine next has something to do for this incident (µs), if ever."""
        due = self.monitor_due
        if self.status != "escalating":
            if (
                self.status == "silenced"
                and self.silenced_until is not None
                and (due is None or self.silenced_until < due)
            ):
                return self.silenced_until
            return due
        wake = self.pending[0].at if self.pending else self.step_end
        return wake if due is None or wake <= due else due


# `object.__setattr__(state, name, value)` for these four, without looking the name up each time.
_set_dict: Any = BaseModel.__dict__["__dict__"].__set__
_set_fields_set: Any = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra: Any = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private: Any = BaseModel.__dict__["__pydantic_private__"].__set__

_DEFAULTS = dict(IncidentState(incident_id="").__dict__)
"""Every field's default, in declaration order (the mutable ones are replaced in `new`)."""
_FRESH = tuple(name for name, value in _DEFAULTS.items() if isinstance(value, list | dict))
