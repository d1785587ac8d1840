"""Outcomes (spec §4): what the engine decides. Messages go to `streamproc.messages.<mode>`;
the other kinds, and audit records, go to `streamproc.outcomes`.

Serialised with `to_json`, which leaves out `None` fields that the spec does not show
(for example `unresolved` on ordinary messages).
"""

from __future__ import annotations

from datetime import datetime
from json import dumps as _json_dumps
from json import encoder as _json_encoder
from typing import Annotated, Any, Literal, TypeVar, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from streamproc.timeutil import UtcDatetime, format_time
from streamproc.wire.common import Mode, Priority


class _OutcomeBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: UtcDatetime
    incident_id: str
    instance: int


class Message(_OutcomeBase):
    kind: Literal["message"] = "message"
    plan: str
    application: str
    step: int = Field(description="1-based step number")
    notification: int = Field(description="0-based index of the notification in its step")
    repeat: int = Field(description="0 for the first send, 1.. for repeats")
    role: str
    target: str
    user: str
    priority: Priority
    mode: Mode
    destination: str
    subject: str
    body: str
    render_error: bool
    message_id: str
    unresolved: str | None = Field(
        default=None, description="On a message to a plan owner: the `role:target` that resolved to nobody."
    )
    email_html: str | None = Field(default=None, description="HTML body, when the template has one.")
    downgraded_from: Mode | None = Field(
        default=None, description="Spec §7: the mode the message started with, when a downgrade rule changed it."
    )
    batch: BatchInfo | None = Field(default=None, description="Spec §7: on a batch message, what it stands for.")


class BatchInfo(BaseModel):
    """Spec §7: a batch message's members."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    count: int = Field(ge=2, description="Messages in the batch")
    incident_ids: list[str] = Field(min_length=1, description="Unique, in member order")


UndeliverableReason = Literal["no-mode", "no-contact", "unresolved"]


class Undeliverable(_OutcomeBase):
    kind: Literal["undeliverable"] = "undeliverable"
    step: int
    user: str | None
    reason: UndeliverableReason


class Dropped(_OutcomeBase):
    kind: Literal["dropped"] = "dropped"
    step: int
    user: str


class Exhausted(_OutcomeBase):
    kind: Literal["exhausted"] = "exhausted"


class Batched(_OutcomeBase):
    """Spec §7: a message held for the batch due at `batch_at` (given at the message's own `at`)."""

    kind: Literal["batched"] = "batched"
    step: int
    user: str
    batch_at: UtcDatetime


class Silenced(_OutcomeBase):
    """Spec §8: an instance that started while a matching silence covered its trigger: nothing is
    sent until no known matching silence covers it."""

    kind: Literal["silenced"] = "silenced"
    silence_id: str = Field(description="The covering silence with the latest `ends`, then the smallest id")


SpecOutcome = Message | Undeliverable | Dropped | Exhausted | Batched | Silenced
Outcome = Annotated[SpecOutcome, Field(discriminator="kind")]
OUTCOME_ADAPTER: TypeAdapter[Outcome] = TypeAdapter(Outcome)

_OPTIONAL_FIELDS = ("unresolved", "email_html", "downgraded_from", "batch")
_TIME_FIELDS = ("at", "batch_at")


def outcome_dict(outcome: SpecOutcome) -> dict[str, object]:
    """The JSON object of an outcome, `kind` first, optional fields only when set.

    Read straight from the model's fields (in declaration order, as `model_dump` gives them):
    this runs once per outcome in replay and on the live path, where pydantic's serialiser cost
    more than the engine's own work. Only a batch (a nested model) takes `model_dump`."""
    fields = outcome.__dict__
    if fields.get("batch") is not None:
        data = outcome.model_dump(mode="json")
    else:
        data = dict(fields)
        for name in _TIME_FIELDS:
            if name in data:
                data[name] = format_time(data[name])
    for name in _OPTIONAL_FIELDS:
        if name in data and data[name] is None:
            del data[name]
    return {"kind": data.pop("kind"), **data}


# json.dumps' own C encoder with json.dumps' default settings, made once instead of per call and
# without circular-reference tracking (outcomes are flat): same bytes, a third less time.
_C_ENCODER: Any = getattr(_json_encoder, "c_make_encoder", None)
_ONE_SHOT: Any = None
if _C_ENCODER is not None:
    _ONE_SHOT = _C_ENCODER(
        None,
        _json_encoder.JSONEncoder().default,
        _json_encoder.encode_basestring_ascii,
        None,
        ": ",
        ", ",
        False,
        False,
        True,
    )


_s = _json_encoder.encode_basestring_ascii


def outcome_json(outcome: SpecOutcome) -> str:
    """`json.dumps(outcome_dict(outcome))`, byte for byte.

    Outcomes the engine built itself (`new_message` & co., never copied: they still hold the
    builder's shared fields set) have fields of known types, so they are written by hand, three
    times faster; tests/engine/test_trusted.py compares both ways."""
    fields_set = outcome.__pydantic_fields_set__
    d = outcome.__dict__
    if fields_set is _MESSAGE_SET:
        text = (
            f'{{"kind": "message", "at": "{format_time(d["at"])}", "incident_id": {_s(d["incident_id"])}, '
            f'"instance": {d["instance"]}, "plan": {_s(d["plan"])}, "application": {_s(d["application"])}, '
            f'"step": {d["step"]}, "notification": {d["notification"]}, "repeat": {d["repeat"]}, '
            f'"role": {_s(d["role"])}, "target": {_s(d["target"])}, "user": {_s(d["user"])}, '
            f'"priority": {_s(d["priority"])}, "mode": {_s(d["mode"])}, "destination": {_s(d["destination"])}, '
            f'"subject": {_s(d["subject"])}, "body": {_s(d["body"])}, '
            f'"render_error": {"true" if d["render_error"] else "false"}, "message_id": {_s(d["message_id"])}'
        )
        if d["unresolved"] is not None:
            text += f', "unresolved": {_s(d["unresolved"])}'
        if d["email_html"] is not None:
            text += f', "email_html": {_s(d["email_html"])}'
        return text + "}"
    if fields_set is _UNDELIVERABLE_SET:
        user = "null" if d["user"] is None else _s(d["user"])
        return (
            f'{{"kind": "undeliverable", "at": "{format_time(d["at"])}", "incident_id": {_s(d["incident_id"])}, '
            f'"instance": {d["instance"]}, "step": {d["step"]}, "user": {user}, "reason": {_s(d["reason"])}}}'
        )
    if fields_set is _DROPPED_SET:
        return (
            f'{{"kind": "dropped", "at": "{format_time(d["at"])}", "incident_id": {_s(d["incident_id"])}, '
            f'"instance": {d["instance"]}, "step": {d["step"]}, "user": {_s(d["user"])}}}'
        )
    if fields_set is _EXHAUSTED_SET:
        return (
            f'{{"kind": "exhausted", "at": "{format_time(d["at"])}", "incident_id": {_s(d["incident_id"])}, '
            f'"instance": {d["instance"]}}}'
        )
    data = outcome_dict(outcome)
    return "".join(_ONE_SHOT(data, 0)) if _ONE_SHOT is not None else _json_dumps(data)


_M = TypeVar("_M", bound=BaseModel)


def _trusted(cls: type[_M], fields: dict[str, Any], fields_set: set[str]) -> _M:
    """An instance from values the engine computed itself, without validation: `fields` holds
    every field, in declaration order (tests/engine/test_trusted.py checks the builders below
    against validated models). Validating them again was the largest cost of a send.

    The models are frozen, so pydantic never adds to their fields set (model_copy copies it
    first): instances of one builder share one set, which also tells `outcome_json` that an
    outcome is the builder's and unchanged."""
    obj = cls.__new__(cls)
    _set_dict(obj, fields)
    _set_fields_set(obj, fields_set)
    _set_extra(obj, None)
    _set_private(obj, None)
    return obj


# What `object.__setattr__(obj, name, value)` does for these four, without looking the name up
# on every call (an outcome is made per send; this is a third of `_trusted`).
_set_dict: Any = BaseModel.__dict__["__dict__"].__set__
_set_fields_set: Any = BaseModel.__dict__["__pydantic_fields_set__"].__set__
_set_extra: Any = BaseModel.__dict__["__pydantic_extra__"].__set__
_set_private: Any = BaseModel.__dict__["__pydantic_private__"].__set__


_MESSAGE_SET = set(Message.model_fields) - {"kind", "downgraded_from", "batch"}
_UNDELIVERABLE_SET = {"at", "incident_id", "instance", "step", "user", "reason"}
_DROPPED_SET = {"at", "incident_id", "instance", "step", "user"}
_EXHAUSTED_SET = {"at", "incident_id", "instance"}


def new_message(
    at: datetime,
    incident_id: str,
    instance: int,
    plan: str,
    application: str,
    step: int,
    notification: int,
    repeat: int,
    role: str,
    target: str,
    user: str,
    priority: Priority,
    mode: Mode,
    destination: str,
    subject: str,
    body: str,
    render_error: bool,
    message_id: str,
    unresolved: str | None,
    email_html: str | None,
) -> Message:
    """`Message(...)` for the engine's own values (`at` an aware UTC datetime)."""
    return _trusted(
        Message,
        {
            "at": at,
            "incident_id": incident_id,
            "instance": instance,
            "kind": "message",
            "plan": plan,
            "application": application,
            "step": step,
            "notification": notification,
            "repeat": repeat,
            "role": role,
            "target": target,
            "user": user,
            "priority": priority,
            "mode": mode,
            "destination": destination,
            "subject": subject,
            "body": body,
            "render_error": render_error,
            "message_id": message_id,
            "unresolved": unresolved,
            "email_html": email_html,
            "downgraded_from": None,
            "batch": None,
        },
        _MESSAGE_SET,
    )


def new_undeliverable(
    at: datetime, incident_id: str, instance: int, step: int, user: str | None, reason: UndeliverableReason
) -> Undeliverable:
    return _trusted(
        Undeliverable,
        {
            "at": at,
            "incident_id": incident_id,
            "instance": instance,
            "kind": "undeliverable",
            "step": step,
            "user": user,
            "reason": reason,
        },
        _UNDELIVERABLE_SET,
    )


def new_dropped(at: datetime, incident_id: str, instance: int, step: int, user: str) -> Dropped:
    return _trusted(
        Dropped,
        {"at": at, "incident_id": incident_id, "instance": instance, "kind": "dropped", "step": step, "user": user},
        _DROPPED_SET,
    )


def new_exhausted(at: datetime, incident_id: str, instance: int) -> Exhausted:
    return _trusted(
        Exhausted, {"at": at, "incident_id": incident_id, "instance": instance, "kind": "exhausted"}, _EXHAUSTED_SET
    )


_SILENCED_SET = {"at", "incident_id", "instance", "silence_id"}


def new_silenced(at: datetime, incident_id: str, instance: int, silence_id: str) -> Silenced:
    return _trusted(
        Silenced,
        {"at": at, "incident_id": incident_id, "instance": instance, "kind": "silenced", "silence_id": silence_id},
        _SILENCED_SET,
    )


def parse_outcome(data: bytes | str) -> SpecOutcome:
    return OUTCOME_ADAPTER.validate_json(data)


AuditKind = Literal["triggered", "claimed", "unclaimed", "resolved", "absorbed"]
AUDIT_KINDS: frozenset[str] = frozenset(get_args(AuditKind))
"""The `kind`s of `Audit` records (the other kinds on `streamproc.outcomes` are spec outcomes)."""


class Audit(BaseModel):
    """What happened to an instance (claim, unclaim, resolve, absorbed trigger), for
    `streamproc.outcomes`. Senders read these to drop queued pages of claimed incidents.
    Not a spec outcome: replay does not print them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: AuditKind
    at: UtcDatetime
    incident_id: str
    instance: int
    owner: str | None = None
    step: int | None = None


_AUDIT_SET = set(Audit.model_fields)


def new_audit(
    kind: AuditKind, at: datetime, incident_id: str, instance: int, owner: str | None, step: int | None
) -> Audit:
    return _trusted(
        Audit,
        {"kind": kind, "at": at, "incident_id": incident_id, "instance": instance, "owner": owner, "step": step},
        _AUDIT_SET,
    )
