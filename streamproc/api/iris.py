"""Iris-compatible routes, so teams moving from Iris keep their `irisclient` code.

    POST /v0/incidents                 {plan, context, [dynamic_targets]} -> 201, the incident id
    POST /v0/incidents/{id}            {owner}  claims (owner null: unclaims)
    POST /v0/incidents/{id}/resolve    resolves
    GET  /v0/applications              application names (irisclient lists them on a 401)

Authenticated with Iris's HMAC scheme (`auth.iris_hmac`). Iris's incident ids are integers and
irisclient returns whatever JSON the server sends; integer ids keep callers that store or
compare them as numbers working. Each trigger gets a new id, as in Iris (no dedup): the id
is 41 bits of milliseconds since 2025 and 12 bits of a per-process sequence with a random
start, below 2**53 so JSON readers in any language keep it exact. Our incident id is its
decimal string.
"""

from __future__ import annotations

import random
import threading
import time
from typing import TypeVar

from aiohttp import web
from pydantic import ValidationError

from streamproc.api.auth import iris_hmac
from streamproc.api.common import Doors, json_body, now
from streamproc.api.errors import ApiError
from streamproc.api.limits import RateLimiter
from streamproc.wire.api import IrisClaim, IrisIncident
from streamproc.wire.events import Claim, Event, Resolve, Trigger, Unclaim, error_text

BodyT = TypeVar("BodyT", IrisIncident, IrisClaim)
_EPOCH_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


class IrisIds:
    """Integer incident ids, unique within a process and increasing."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._last_ms = 0
        self._seq = random.randrange(4096)
        self._start = self._seq

    def next(self) -> int:
        with self._lock:
            while True:
                ms = max(int(time.time() * 1000) - _EPOCH_MS, self._last_ms)
                if ms != self._last_ms:
                    self._last_ms, self._start = ms, self._seq
                    break
                self._seq = (self._seq + 1) % 4096
                if self._seq != self._start:
                    break
                time.sleep(0.001)  # 4096 ids in one millisecond: wait for the next
            return (ms << 12) | self._seq


def _parse(model: type[BodyT], raw: object) -> BodyT:
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ApiError(
            400,
            error_text(exc),
            body={"title": "Invalid request", "description": error_text(exc), "error": error_text(exc)},
        ) from exc


def _incident_id(request: web.Request) -> str:
    raw = request.match_info["incident_id"]
    if not raw or len(raw) > 255:
        raise ApiError(400, "incident_id: 1 to 255 characters")
    return raw


def routes(doors: Doors, limiter: RateLimiter) -> list[web.RouteDef]:
    ids = IrisIds()

    async def authed(request: web.Request) -> tuple[str, object]:
        raw = await request.read()
        application = iris_hmac(doors.config, request, raw)
        limiter.take(application)
        body, _ = await json_body(request) if raw else (None, raw)
        return application, body

    async def create(request: web.Request) -> web.Response:
        application, body = await authed(request)
        incident = _parse(IrisIncident, body)
        number = ids.next()
        trigger = Trigger(
            type="trigger",
            at=now(),
            incident_id=str(number),
            application=application,
            plan=incident.plan,
            context=incident.context,
            dynamic_targets=incident.dynamic_targets,
        )
        doors.check_trigger(trigger)
        await doors.write([trigger])
        return web.json_response(number, status=201)

    async def claim(request: web.Request) -> web.Response:
        application, body = await authed(request)
        incident_id = _incident_id(request)
        owner = _parse(IrisClaim, body)
        event: Event
        if owner.owner is None:
            event = Unclaim(type="unclaim", at=now(), incident_id=incident_id, application=application)
        else:
            event = Claim(type="claim", at=now(), incident_id=incident_id, application=application, owner=owner.owner)
        await doors.write([event])
        return web.json_response(
            {"incident_id": _as_iris(incident_id), "owner": owner.owner, "active": owner.owner is None}
        )

    async def resolve(request: web.Request) -> web.Response:
        application, _ = await authed(request)
        incident_id = _incident_id(request)
        await doors.write([Resolve(type="resolve", at=now(), incident_id=incident_id, application=application)])
        return web.json_response({"incident_id": _as_iris(incident_id), "active": False})

    async def applications(request: web.Request) -> web.Response:
        return web.json_response([{"name": name} for name in sorted(doors.config.applications)])

    return [
        web.post("/v0/incidents", create),
        web.post("/v0/incidents/{incident_id}", claim),
        web.post("/v0/incidents/{incident_id}/resolve", resolve),
        web.get("/v0/applications", applications),
    ]


def _as_iris(incident_id: str) -> int | str:
    return int(incident_id) if incident_id.isdigit() and len(incident_id) < 17 else incident_id
