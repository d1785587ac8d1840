"""What every door shares: reading a JSON body, checking events against the config, writing them."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pydantic_core
from aiohttp import web
from pydantic import ValidationError

from streamproc.api.errors import ApiError
from streamproc.api.publish import Publisher
from streamproc.engine.core import Engine
from streamproc.wire.events import AnyEvent, Event, Trigger, error_text, parse_event_obj

MAX_EVENTS = 1000


async def json_body(request: web.Request) -> tuple[Any, bytes]:
    """The parsed body and its bytes; 400 when it is not JSON. (413 is raised by aiohttp's size cap.)

    Read with the parser the processor reads records with (pydantic-core's), so that what gets in
    can be read back: `json.loads` also takes NaN, unpaired surrogates (`"\\ud800"`) and nesting
    the processor refuses (its limit is some 200 levels; Python's own ends in a RecursionError)."""
    raw = await request.read()
    try:
        return pydantic_core.from_json(raw, allow_inf_nan=False), raw
    except ValueError as exc:
        raise ApiError(400, f"body: not JSON ({exc})") from exc


def now() -> datetime:
    return datetime.now(UTC)


class Doors:
    """The shared state of the handlers: config, engine (for the trigger checks), the publisher."""

    def __init__(self, engine: Engine, publisher: Publisher) -> None:
        self.engine = engine
        self.config = engine.config
        self.publisher = publisher

    def event(self, data: Any, application: str, where: str = "") -> Event:
        """Validate one event sent by `application`; 400/403/404 naming the field.

        A missing (or null) `application` is the caller's; a missing `at` is the time of receipt."""
        if not isinstance(data, dict):
            raise ApiError(400, f"{where or 'body'}: an event is a JSON object")
        data = dict(data)
        if data.get("application") is None:
            data["application"] = application
        claimed_app = data["application"]
        if claimed_app != application:
            raise ApiError(403, f"{where}application: the key is application {application!r}, not {claimed_app!r}")
        if data.get("at") is None:
            data["at"] = now().isoformat()
        try:
            event = parse_event_obj(data)
        except ValidationError as exc:
            text = error_text(exc)
            raise ApiError(400, f"{where}{text}" if where else text) from exc
        if isinstance(event, Trigger):
            self.check_trigger(event, where)
        return event

    def check_trigger(self, trigger: Trigger, where: str = "") -> None:
        if trigger.plan not in self.config.plans:
            raise ApiError(404, f"{where}plan: unknown plan {trigger.plan!r}")
        reason = self.engine.check_trigger(trigger)
        if reason is not None:
            raise ApiError(404 if reason.startswith("application:") else 400, f"{where}{reason}")

    async def write(self, events: Sequence[AnyEvent]) -> None:
        await self.publisher.publish(events)
