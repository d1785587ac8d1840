"""PagerDuty Events API v2 (`POST /v2/enqueue`), so tools that page PagerDuty can page us.

`routing_key` names an application and a plan: `applications.<app>.routing_keys: {<key>: <plan>}`.

- `trigger` starts (or is absorbed by) the incident `dedup_key` names; without a `dedup_key`
  one is generated and returned, as PagerDuty does. The incident id follows spec §2:
  `<application>-<sha256(dedup_key)[:12]>`.
- `acknowledge` is a claim by the application (spec §3); `resolve` resolves.
- Severity becomes a priority in the context: critical -> urgent, error -> high, warning -> medium,
  info -> low (`context.priority`, next to `context.severity`). Plans choose each notification's
  priority themselves (spec §1); templates and custom plans can use these.
- Answers as PagerDuty does: 202 `{"status": "success", "message": "Event processed", "dedup_key"}`,
  400 `{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}`,
  429 when the application's rate is exceeded. An unknown routing key is a 400, as at PagerDuty.
"""

from __future__ import annotations

import uuid
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from streamproc.api.common import Doors, json_body, now
from streamproc.api.errors import ApiError
from streamproc.api.limits import RateLimiter
from streamproc.wire.api import PagerDutyAnswer, PagerDutyEvent
from streamproc.wire.events import Acknowledge, Event, Resolve, Trigger, error_text

SEVERITY_PRIORITY = {"critical": "urgent", "error": "high", "warning": "medium", "info": "low"}


def _invalid(*errors: str) -> ApiError:
    body = PagerDutyAnswer(status="invalid event", message="Event object is invalid", errors=list(errors))
    return ApiError(400, "; ".join(errors), body=body.model_dump(exclude_none=True))


def routing(doors: Doors, routing_key: str) -> tuple[str, str]:
    for name, app in doors.config.applications.items():
        plan = app.routing_keys.get(routing_key)
        if plan is not None:
            return name, plan
    raise _invalid("routing_key: unknown routing key")


def context_of(event: PagerDutyEvent) -> dict[str, Any]:
    assert event.payload is not None
    payload = event.payload.model_dump(by_alias=True, exclude_none=True)
    context: dict[str, Any] = {**payload, "priority": SEVERITY_PRIORITY[event.payload.severity]}
    for name in ("client", "client_url"):
        value = getattr(event, name)
        if value is not None:
            context[name] = value
    if event.links:
        context["links"] = event.links
    return context


def routes(doors: Doors, limiter: RateLimiter) -> list[web.RouteDef]:
    async def enqueue(request: web.Request) -> web.Response:
        body, _ = await json_body(request)
        try:
            pd = PagerDutyEvent.model_validate(body)
        except ValidationError as exc:
            raise _invalid(*error_text(exc).split("; ")) from exc
        application, plan = routing(doors, pd.routing_key)
        try:
            limiter.take(application)
        except ApiError as exc:
            exc.body = PagerDutyAnswer(status="throttle event", message=exc.reason).model_dump(exclude_none=True)
            raise
        event: Event
        if pd.event_action == "trigger":
            if pd.payload is None:
                raise _invalid("payload: Field required")
            dedup_key = pd.dedup_key or uuid.uuid4().hex
            event = Trigger(
                type="trigger",
                at=now(),
                application=application,
                plan=plan,
                dedup_key=dedup_key,
                context=context_of(pd),
            )
            try:
                doors.check_trigger(event)
            except ApiError as exc:
                raise _invalid(exc.reason) from exc
        else:
            if pd.dedup_key is None:
                raise _invalid("dedup_key: required for acknowledge and resolve")
            dedup_key = pd.dedup_key
            kind = Acknowledge if pd.event_action == "acknowledge" else Resolve
            event = kind(type=pd.event_action, at=now(), application=application, dedup_key=dedup_key)
        await doors.write([event])
        answer = PagerDutyAnswer(status="success", message="Event processed", dedup_key=dedup_key)
        return web.json_response(answer.model_dump(exclude_none=True), status=202)

    return [web.post("/v2/enqueue", enqueue)]
