"""`POST /v1/events`: one event of spec §2, or a JSON array of them, as the caller's application.

All events of a request are validated before any is written; the answer (202) comes after the
broker acknowledged every one, and names each event's incident id (derived from `dedup_key`
where given).
"""

from __future__ import annotations

from aiohttp import web

from streamproc.api.auth import bearer_or_basic
from streamproc.api.common import MAX_EVENTS, Doors, json_body
from streamproc.api.errors import ApiError
from streamproc.api.limits import RateLimiter
from streamproc.wire.api import Accepted


def routes(doors: Doors, limiter: RateLimiter) -> list[web.RouteDef]:
    async def post_events(request: web.Request) -> web.Response:
        application = bearer_or_basic(doors.config, request)
        limiter.take(application)
        body, _ = await json_body(request)
        if isinstance(body, list):
            if not body:
                raise ApiError(400, "body: an empty array")
            if len(body) > MAX_EVENTS:
                raise ApiError(400, f"body: at most {MAX_EVENTS} events per request (got {len(body)})")
            events = [doors.event(item, application, f"[{i}].") for i, item in enumerate(body)]
        else:
            events = [doors.event(body, application)]
        await doors.write(events)
        answer = Accepted(accepted=len(events), incident_ids=[e.key for e in events])
        return web.json_response(answer.model_dump(), status=202)

    return [web.post("/v1/events", post_events)]
