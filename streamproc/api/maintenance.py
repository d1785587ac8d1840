"""The native API's doors to spec §8: silences and heartbeats, as the caller's application.

- `POST /v1/silences` (`SilenceRequest`): a `silence` event; `at` is the time of receipt, `silence_id`
  a new UUID when left out (the id of a known silence replaces it, spec §8). 202 `SilenceView`.
- `GET /v1/silences`: the application's active and pending silences (`SilenceList`), read from the
  incidents topic by `SilenceIndex`, synced first so that the caller's own writes are in it.
- `DELETE /v1/silences/{silence_id}`: an `unsilence` at the time of receipt; 404 when the
  application has no silence of that id (expired ones still count: ending one again is harmless).
  202 `SilenceView` as it is after the unsilence.
- `POST /v1/heartbeats/{name}`: a `heartbeat` of monitor `name` (config `heartbeats:`); 404 for an
  unknown monitor, 403 for another application's. 202 `Accepted` naming incident `heartbeat-<name>`.

A key can only write its own application's silences and heartbeats. Every write is answered once
the broker acknowledged it (`Publisher`; 503 otherwise, and then nothing is answered 2xx). A silence
that is invalid (ends before it starts, more than 30 days, an invalid or non-RE2 regex, an unknown
field) is 400 naming the field, and nothing is written.
"""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from streamproc.api.auth import bearer_or_basic
from streamproc.api.common import Doors, json_body, now
from streamproc.api.errors import ApiError, Unavailable
from streamproc.api.limits import RateLimiter
from streamproc.api.silences import Known, SilenceIndex, unsilenced
from streamproc.engine.maintenance import KnownSilence
from streamproc.timeutil import to_us
from streamproc.wire.api import Accepted, SilenceList, SilenceRequest
from streamproc.wire.events import Heartbeat, Silence, Unsilence, error_text

SYNC_TIMEOUT = 5.0
"""Seconds a read waits for the silence index to reach the topic's end before answering 503."""


M = TypeVar("M", bound=BaseModel)


def validated(model: type[M], data: Any) -> M:
    """`data` as `model`; 400 naming each invalid field."""
    if not isinstance(data, dict):
        raise ApiError(400, "body: a JSON object is expected")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ApiError(400, error_text(exc)) from exc


def silence_event(doors: Doors, application: str, request: SilenceRequest) -> Silence:
    """The `silence` event of a request by `application` (403: another application; 400: invalid)."""
    if request.application is not None and request.application != application:
        raise ApiError(403, f"application: the key is application {application!r}, not {request.application!r}")
    fields = request.model_dump(exclude={"application", "silence_id"}, exclude_none=True)
    try:
        event = Silence.model_validate(
            {
                "type": "silence",
                "at": now(),
                "application": application,
                "silence_id": request.silence_id or str(uuid.uuid4()),
                **fields,
            }
        )
    except ValidationError as exc:
        raise ApiError(400, error_text(exc)) from exc
    reason = doors.engine.check_silence(event)
    if reason is not None:
        raise ApiError(404 if reason.startswith("application:") else 400, reason)
    return event


async def synced(index: SilenceIndex) -> None:
    if not await index.sync(SYNC_TIMEOUT):
        raise Unavailable(f"the silences of {index.topic} are not read up to date ({index.status()})")


async def known_silence(index: SilenceIndex, application: str, silence_id: str) -> Known:
    await synced(index)
    known = index.get(application, silence_id)
    if known is None:
        raise ApiError(404, f"silence_id: application {application!r} has no silence {silence_id!r}")
    return known


def unsilence_event(application: str, silence_id: str) -> Unsilence:
    return Unsilence(type="unsilence", at=now(), application=application, silence_id=silence_id)


def heartbeat_event(doors: Doors, application: str, name: str) -> Heartbeat:
    monitor = doors.config.heartbeats.get(name)
    if monitor is None:
        raise ApiError(404, f"heartbeat: unknown monitor {name!r}")
    if monitor.application != application:
        raise ApiError(403, f"heartbeat: monitor {name!r} belongs to another application, not to {application!r}")
    event = Heartbeat(type="heartbeat", at=now(), application=application, heartbeat=name)
    reason = doors.engine.check_heartbeat(event)
    if reason is not None:  # (the checks above are the engine's; kept in step with it)
        raise ApiError(400, reason)
    return event


def written(event: Silence) -> Known:
    assert event.at is not None
    at_us = to_us(event.at)
    return Known(KnownSilence.of(event, at_us), at_us)


def routes(doors: Doors, limiter: RateLimiter, index: SilenceIndex) -> list[web.RouteDef]:
    async def post_silence(request: web.Request) -> web.Response:
        application = bearer_or_basic(doors.config, request)
        limiter.take(application)
        body, _ = await json_body(request)
        event = silence_event(doors, application, validated(SilenceRequest, body))
        await doors.write([event])
        view = written(event).view(index.now_us())
        return web.json_response(view.model_dump(mode="json"), status=202)

    async def list_silences(request: web.Request) -> web.Response:
        application = bearer_or_basic(doors.config, request)
        limiter.take(application)
        await synced(index)
        now_us = index.now_us()
        answer = SilenceList(silences=[k.view(now_us) for k in index.of(application, ("active", "pending"))])
        return web.json_response(answer.model_dump(mode="json"))

    async def delete_silence(request: web.Request) -> web.Response:
        application = bearer_or_basic(doors.config, request)
        limiter.take(application)
        silence_id = request.match_info["silence_id"]
        known = await known_silence(index, application, silence_id)
        event = unsilence_event(application, silence_id)
        await doors.write([event])
        assert event.at is not None
        view = unsilenced(known, to_us(event.at)).view(index.now_us())
        return web.json_response(view.model_dump(mode="json"), status=202)

    async def post_heartbeat(request: web.Request) -> web.Response:
        application = bearer_or_basic(doors.config, request)
        limiter.take(application)
        event = heartbeat_event(doors, application, request.match_info["name"])
        await doors.write([event])
        answer = Accepted(accepted=1, incident_ids=[event.key])
        return web.json_response(answer.model_dump(), status=202)

    return [
        web.post("/v1/silences", post_silence),
        web.get("/v1/silences", list_silences),
        web.delete("/v1/silences/{silence_id}", delete_silence),
        web.post("/v1/heartbeats/{name}", post_heartbeat),
    ]
