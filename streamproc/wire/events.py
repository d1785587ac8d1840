"""Events (spec §2): what monitoring pipelines, people and the API put on `streamproc.incidents`.

Unknown extra fields on an event are ignored (integrations add their own); every field the
spec names is validated, and a failure names the field.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from streamproc.timeutil import UtcDatetime
from streamproc.wire.common import ROLE_RE


class DynamicTarget(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str
    target: str

    @field_validator("role")
    @classmethod
    def _role(cls, value: str) -> str:
        if not ROLE_RE.match(value):
            raise ValueError("role must be user, team, manager, oncall or oncall-<rotation>")
        return value


def derive_incident_id(application: str, dedup_key: str) -> str:
    """Spec §2: `<application>-<first 12 hex digits of sha256(dedup_key)>`."""
    return f"{application}-{hashlib.sha256(dedup_key.encode()).hexdigest()[:12]}"


_EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
_LATEST = datetime(9000, 1, 1, tzinfo=UTC)
AT_YEARS = r"^(19[89]\d|[2-7]\d{3}|8[0-8]\d{2}|89[0-8]\d)-"
"""For JSON Schema readers: years 1980-8998, inside the accepted range whatever the UTC offset."""


class _EventBase(BaseModel):
    model_config = ConfigDict(extra="ignore")

    at: UtcDatetime | None = Field(
        default=None,
        description="Event time. Required in replay input; on Kafka a missing `at` takes the record timestamp.",
        json_schema_extra={"pattern": AT_YEARS},
    )
    incident_id: str | None = Field(default=None, min_length=1, max_length=255)
    event_id: str | None = Field(
        default=None, min_length=1, max_length=255, description="Makes a re-delivered event a no-op."
    )
    application: str | None = None
    dedup_key: str | None = Field(default=None, min_length=1, max_length=1024)

    @field_validator("at")
    @classmethod
    def _plausible(cls, value: datetime | None) -> datetime | None:
        # Schedules reach up to ~4 years past `at` (20 repeats of 12 h per step); a time near
        # year 9999 would overflow them and stop the partition that holds it.
        if value is not None and not (_EARLIEST <= value < _LATEST):
            raise ValueError("must be between 1970-01-01 and 9000-01-01")
        return value

    @model_validator(mode="after")
    def _identify(self) -> _EventBase:
        if self.incident_id is None:
            if self.dedup_key is None:
                raise ValueError("incident_id is required (or dedup_key with application)")
            if not self.application:
                raise ValueError("application is required when the incident is named by dedup_key")
            self.incident_id = derive_incident_id(self.application, self.dedup_key)
        return self

    @property
    def key(self) -> str:
        """The incident id; also the Kafka record key of the event."""
        assert self.incident_id is not None
        return self.incident_id


class Trigger(_EventBase):
    type: Literal["trigger"]
    application: str = Field(min_length=1)
    plan: str = Field(min_length=1)
    context: dict[str, Any] = Field(default_factory=dict)
    dynamic_targets: list[DynamicTarget] = Field(default_factory=list)


class Claim(_EventBase):
    type: Literal["claim"]
    owner: str | None = None


class Acknowledge(_EventBase):
    """A claim by an integration: the application is the owner."""

    type: Literal["acknowledge"]


class Unclaim(_EventBase):
    type: Literal["unclaim"]


class Resolve(_EventBase):
    type: Literal["resolve"]


Event = Annotated[Trigger | Claim | Acknowledge | Unclaim | Resolve, Field(discriminator="type")]
"""An event of one incident (§2): what `Engine.handle` applies."""
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


# ---- spec §8: silences and heartbeats ----------------------------------------------------------

SILENCE_MAX = timedelta(days=30)
"""Spec §8: a silence's `ends` is at most 30 days after its `starts`."""

_sre_parser: Any = importlib.import_module("re._parser")  # CPython's own regex parser (untyped, stable)
_sre: Any = importlib.import_module("re._constants")
_RE2_NO_OPS = {
    "GROUPREF": "backreferences",
    "GROUPREF_EXISTS": "conditional groups (?(...)...)",
    "ASSERT": "lookahead/lookbehind assertions",
    "ASSERT_NOT": "negative lookahead/lookbehind assertions",
    "ATOMIC_GROUP": "atomic groups (?>...)",
    "POSSESSIVE_REPEAT": "possessive quantifiers",
    "POSSESSIVE_REPEAT_ONE": "possessive quantifiers",
}
_RE2_NO_FLAGS = {"SRE_FLAG_VERBOSE": "x (verbose)", "SRE_FLAG_ASCII": "a (ASCII)", "SRE_FLAG_LOCALE": "L (locale)"}
_RE2_NO_ESCAPES = {
    "Z": r"\Z (use $, the match is a full match anyway)",
    "u": r"\u (write \x{...})",
    "U": r"\U (write \x{...})",
    "N": r"\N{...} (write \x{...})",
}
RE2_MAX_REPEAT = 1000
"""RE2 refuses counted repetitions above 1000 (`a{1001}`)."""


def re2_problem(pattern: str) -> str | None:
    r"""Why `pattern` is not a Python `re` pattern that RE2 accepts with the same meaning, or None.

    How it is checked (there is no RE2 binding here): the pattern must compile with Python's `re`;
    then CPython's own parser (`re._parser`, which `re.compile` uses) gives its syntax tree, and the
    tree is walked for what RE2 does not have: backreferences (`\1`, `(?P=name)`), conditional
    groups, lookahead and lookbehind, atomic groups and possessive quantifiers, the flags `x`, `a`
    and `L`, and counted repetitions above 1000. Escapes that Python turns into plain characters
    before the tree (`\Z`, `\u`, `\U`, `\N{...}`) are looked for in the text. What is left
    (literals, classes, `.`, anchors `^ $ \A \b \B`, greedy and lazy quantifiers, groups, named
    groups, `i m s` flags) means the same in both."""
    try:
        re.compile(pattern)
    except (re.error, OverflowError, RecursionError) as exc:
        return f"not a valid regular expression: {exc}"
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            what = _RE2_NO_ESCAPES.get(pattern[i + 1])
            if what is not None:
                return f"not RE2-compatible: {what}"
            i += 2
            continue
        if pattern.startswith("{,", i):
            return "not RE2-compatible: {,n} is a literal in RE2 (write {0,n})"
        i += 1
    tree = _sre_parser.parse(pattern)  # compiled above: parses
    flags = tree.state.flags
    for name, what in _RE2_NO_FLAGS.items():
        if flags & getattr(_sre, name):
            return f"not RE2-compatible: flag {what}"
    return _re2_walk(tree.data)


def _re2_walk(items: Any) -> str | None:
    for op, arg in items:
        name = str(op)
        if name in _RE2_NO_OPS:
            return f"not RE2-compatible: {_RE2_NO_OPS[name]}"
        children: list[Any] = []
        if name in ("MAX_REPEAT", "MIN_REPEAT"):
            low, high, sub = arg
            if low > RE2_MAX_REPEAT or (high != _sre.MAXREPEAT and high > RE2_MAX_REPEAT):
                return f"not RE2-compatible: counted repetition above {RE2_MAX_REPEAT}"
            children.append(sub)
        elif name == "SUBPATTERN":
            _group, add_flags, _del_flags, sub = arg
            for flag, what in _RE2_NO_FLAGS.items():
                if add_flags & getattr(_sre, flag):
                    return f"not RE2-compatible: flag {what}"
            children.append(sub)
        elif name == "BRANCH":
            children.extend(arg[1])
        for child in children:
            problem = _re2_walk(child.data)
            if problem is not None:
                return problem
    return None


def _re2_pattern(value: str) -> str:
    problem = re2_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


Re2Pattern = Annotated[str, AfterValidator(_re2_pattern)]


def context_text(value: Any) -> str:
    """Spec §8: a context value as silences compare it: its JSON text (compact, as `json.dumps` with
    separators `,` and `:` and non-ASCII kept), strings without quotes."""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _MaintenanceBase(BaseModel):
    """§8 events name a silence or a heartbeat monitor, not an incident."""

    model_config = ConfigDict(extra="ignore")

    at: UtcDatetime | None = Field(
        default=None,
        description="Event time. Required in replay input; on Kafka a missing `at` takes the record timestamp.",
        json_schema_extra={"pattern": AT_YEARS},
    )
    event_id: str | None = Field(
        default=None, min_length=1, max_length=255, description="Makes a re-delivered event a no-op."
    )
    application: str = Field(min_length=1)

    @field_validator("at")
    @classmethod
    def _plausible(cls, value: datetime | None) -> datetime | None:
        if value is not None and not (_EARLIEST <= value < _LATEST):
            raise ValueError("must be between 1970-01-01 and 9000-01-01")
        return value


class Silence(_MaintenanceBase):
    """Spec §8: hold new instances that match, while `starts <= t < ends`. Replaces a known silence
    with the same `silence_id` (same application)."""

    type: Literal["silence"]
    silence_id: str = Field(min_length=1, max_length=255)
    starts: UtcDatetime | None = Field(
        default=None, description="Default: the event's `at`", json_schema_extra={"pattern": AT_YEARS}
    )
    ends: UtcDatetime = Field(
        description="After `starts`, at most 30 days after it", json_schema_extra={"pattern": AT_YEARS}
    )
    plans: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, description="Only instances of these plans (default: every plan)"
    )
    match: dict[str, str | Annotated[list[str], Field(min_length=1)]] = Field(
        default_factory=dict,
        description="Context key -> the value, or one of the values, it must have (compared as JSON text, "
        "strings without quotes)",
    )
    match_re: dict[str, Re2Pattern] = Field(
        default_factory=dict,
        description="Context key -> a regular expression its value's text must fully match (Python `re` "
        "syntax, RE2-compatible patterns only)",
    )
    created_by: str | None = Field(default=None, max_length=255)
    comment: str | None = Field(default=None, max_length=4096)

    @field_validator("starts")
    @classmethod
    def _starts(cls, value: datetime | None) -> datetime | None:
        if value is not None and not (_EARLIEST <= value < _LATEST):
            raise ValueError("must be between 1970-01-01 and 9000-01-01")
        return value

    @field_validator("ends")
    @classmethod
    def _ends(cls, value: datetime, info: ValidationInfo) -> datetime:
        starts = info.data.get("starts") or info.data.get("at")
        if value >= _LATEST:
            raise ValueError("must be before 9000-01-01")
        if starts is not None:
            problem = silence_span_problem(starts, value)
            if problem is not None:
                raise ValueError(problem)
        return value

    @property
    def key(self) -> str:
        """The Kafka record key: one silence's events share a partition and stay in order."""
        return f"silence:{self.application}:{self.silence_id}"


def silence_span_problem(starts: datetime, ends: datetime) -> str | None:
    """Why `ends` is not allowed for `starts` (spec §8), or None."""
    if ends <= starts:
        return "must be after starts"
    if ends - starts > SILENCE_MAX:
        return "must be at most 30 days after starts"
    return None


class Unsilence(_MaintenanceBase):
    """Spec §8: end a known silence at `at` (or cover nothing, when it has not started)."""

    type: Literal["unsilence"]
    silence_id: str = Field(min_length=1, max_length=255)

    @property
    def key(self) -> str:
        return f"silence:{self.application}:{self.silence_id}"


class Heartbeat(_MaintenanceBase):
    """Spec §8: a monitor's heartbeat (its state lives with incident `heartbeat-<name>`)."""

    type: Literal["heartbeat"]
    heartbeat: str = Field(min_length=1, max_length=200, description="The monitor's name (config `heartbeats:`)")

    @property
    def key(self) -> str:
        """The incident the monitor opens when it expires; its state holds the monitor's."""
        return monitor_incident(self.heartbeat)


def monitor_incident(name: str) -> str:
    """Spec §8: the incident id a heartbeat monitor triggers."""
    return f"heartbeat-{name}"


MaintenanceEvent = Silence | Unsilence | Heartbeat
AnyEvent = Annotated[
    Trigger | Claim | Acknowledge | Unclaim | Resolve | Silence | Unsilence | Heartbeat, Field(discriminator="type")
]
"""Anything on the incidents topic (§2 and §8)."""
ANY_EVENT_ADAPTER: TypeAdapter[AnyEvent] = TypeAdapter(AnyEvent)


def parse_any_event(data: bytes | str) -> AnyEvent:
    """`parse_event` that also takes the §8 events (silence, unsilence, heartbeat)."""
    return ANY_EVENT_ADAPTER.validate_json(data)


def parse_event(data: bytes | str) -> Event:
    """Validate one JSON event; raises pydantic.ValidationError naming the field."""
    return EVENT_ADAPTER.validate_json(data)


def parse_event_obj(data: Any) -> Event:
    return EVENT_ADAPTER.validate_python(data)


_EVENT_TYPES = {"trigger", "claim", "acknowledge", "unclaim", "resolve", "silence", "unsilence", "heartbeat"}


def error_text(exc: ValidationError) -> str:
    """One line naming each invalid field: `plan: Field required; at: Input should be ...`."""
    parts = []
    for error in exc.errors():
        path = list(error["loc"])
        if path and path[0] in _EVENT_TYPES:  # the discriminated union's tag
            path = path[1:]
        loc = ".".join(str(p) for p in path if not str(p).startswith(("function-", "tagged-union")))
        if not loc and error["type"] in ("union_tag_invalid", "union_tag_not_found"):
            loc = "type"  # the discriminator itself is wrong or missing
        parts.append(f"{loc or 'event'}: {error['msg']}")
    return "; ".join(parts)
