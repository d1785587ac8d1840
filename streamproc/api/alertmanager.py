"""Alertmanager's webhook receiver: `POST /v1/integrations/alertmanager?plan=<plan>[&group=true]`.

Authenticated like the native API (`auth.bearer_or_basic`): Alertmanager's `http_config` sends
`authorization: {credentials: <key>}` (a bearer key) or `basic_auth: {username: <application>,
password: <key>}`. `plan` (required; 400 when missing, 404 when unknown) names the plan every
trigger of the request starts; the plan must not use dynamic targets (there are none to give).

- By default each alert is its own incident: `dedup_key` = the alert's `fingerprint` (a hash of
  its label set), so the incident id is `<application>-<sha256(fingerprint)[:12]>` (spec §2). An
  alert with `status: firing` is a trigger, one with `status: resolved` a resolve.
- With `group=true` each notification group is one incident: `dedup_key` = `groupKey` (its
  sha256 when longer than 1024 characters), firing or resolved by the group's `status` (Alertmanager
  calls a group resolved once all its alerts are).

Every notification repeats all alerts of its group, so an alert that is still firing is triggered
again each time; while its incident is open that trigger is absorbed (spec §3), so the incident
keeps the context of its first notification. After the incident was resolved in streamproc, the
next notification naming the alert as firing starts a new instance: an alert resolves for good in
Alertmanager. A `resolved` notification needs `send_resolved: true` (the webhook's default).

The trigger's context, for templates (Alertmanager's names, so its templates' habits carry over):

    every label, then every annotation, as top-level keys ({{ alertname }}, {{ instance }},
      {{ description }}); an annotation wins over a label of the same name, and the keys below
      win over both (the originals stay in `labels` / `annotations`);
    summary       the `summary` annotation, else the `alertname` label, else "Alertmanager alert";
    labels, annotations, status, startsAt, endsAt (left out while unknown), generatorURL,
      fingerprint: the alert's;
    receiver, externalURL, groupKey, groupLabels: the notification's.

  With `group=true`: the common labels and annotations as top-level keys, then
    summary       the common `summary` annotation, else "<alertname>: <n> alerts firing" (or the
                  single alert's summary when only one fires);
    labels = commonLabels, annotations = commonAnnotations, commonLabels, commonAnnotations,
    groupLabels, status, receiver, externalURL, groupKey, truncatedAlerts,
    alerts        each alert as {status, labels, annotations, startsAt, endsAt, generatorURL,
                  fingerprint}, and `firing` / `resolved`: how many alerts are in each state.

`at` of every event is the time of receipt (an alert's `startsAt` may lie hours back; escalation
starts when we hear of it). Every event of a request is validated before any is written; the answer
(202, `Accepted`) comes once the broker acknowledged all of them. Alertmanager drops a notification
answered 4xx and retries 5xx, so this door answers the application's rate limit with 503 and
`Retry-After` (not 429 as the other doors do): a throttled alert is delayed, never dropped.
401 (bad key) and 400 are not retried; 503 (Kafka unavailable or rate) is.

A receiver's `max_alerts` truncates the alert list (`truncatedAlerts` counts what was left out):
truncated alerts get no incident of their own until a later notification names them.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from streamproc.api.auth import bearer_or_basic
from streamproc.api.common import Doors, json_body, now
from streamproc.api.errors import ApiError
from streamproc.api.limits import RateLimiter
from streamproc.wire.api import Accepted, AlertmanagerAlert, AlertmanagerWebhook
from streamproc.wire.events import Event, Resolve, Trigger

log = logging.getLogger(__name__)

PATH = "/v1/integrations/alertmanager"
MAX_DEDUP_KEY = 1024
_TRUE = ("true", "1", "yes")
_FALSE = ("false", "0", "no", "")


def _rfc3339(value: datetime | None) -> str | None:
    """RFC 3339 in UTC, or None for a missing value or Go's zero time (year 1)."""
    if value is None or value.year <= 1:
        return None
    value = value.astimezone(UTC) if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return value.isoformat().replace("+00:00", "Z")


def _alert_fields(alert: AlertmanagerAlert) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "status": alert.status,
        "labels": dict(alert.labels),
        "annotations": dict(alert.annotations),
        "startsAt": _rfc3339(alert.starts_at),
        "endsAt": _rfc3339(alert.ends_at),
        "generatorURL": alert.generator_url,
        "fingerprint": alert.fingerprint,
    }
    return {k: v for k, v in fields.items() if v is not None}


def alert_context(body: AlertmanagerWebhook, alert: AlertmanagerAlert) -> dict[str, Any]:
    """The trigger context of one alert (see the module's docstring)."""
    summary = alert.annotations.get("summary") or alert.labels.get("alertname") or "Alertmanager alert"
    return {
        **alert.labels,
        **alert.annotations,
        **_alert_fields(alert),
        "summary": summary,
        "receiver": body.receiver,
        "externalURL": body.external_url,
        "groupKey": body.group_key,
        "groupLabels": dict(body.group_labels),
    }


def group_context(body: AlertmanagerWebhook) -> dict[str, Any]:
    """The trigger context of a whole notification group (`?group=true`)."""
    firing = [a for a in body.alerts if a.status == "firing"]
    summary = body.common_annotations.get("summary")
    if not summary:
        if len(firing) == 1:
            only = firing[0]
            summary = only.annotations.get("summary") or only.labels.get("alertname")
        else:
            name = body.common_labels.get("alertname") or body.group_labels.get("alertname") or "Alertmanager"
            summary = f"{name}: {len(firing)} alerts firing"
    return {
        **body.common_labels,
        **body.common_annotations,
        "summary": summary or "Alertmanager alert",
        "status": body.status,
        "labels": dict(body.common_labels),
        "annotations": dict(body.common_annotations),
        "commonLabels": dict(body.common_labels),
        "commonAnnotations": dict(body.common_annotations),
        "groupLabels": dict(body.group_labels),
        "receiver": body.receiver,
        "externalURL": body.external_url,
        "groupKey": body.group_key,
        "truncatedAlerts": body.truncated_alerts,
        "alerts": [_alert_fields(a) for a in body.alerts],
        "firing": len(firing),
        "resolved": len(body.alerts) - len(firing),
    }


def group_dedup_key(group_key: str) -> str:
    """`groupKey`, or its sha256 when it is longer than a `dedup_key` may be."""
    if len(group_key) <= MAX_DEDUP_KEY:
        return group_key
    return "sha256:" + hashlib.sha256(group_key.encode()).hexdigest()


def _field_path(loc: tuple[int | str, ...]) -> str:
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


def parse_webhook(raw: Any) -> AlertmanagerWebhook:
    """The validated body; 400 naming each invalid field (`alerts[0].fingerprint: Field required`)."""
    try:
        return AlertmanagerWebhook.model_validate(raw)
    except ValidationError as exc:
        reason = "; ".join(f"{_field_path(tuple(e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ApiError(400, reason) from exc


def _query(request: web.Request, doors: Doors, application: str) -> tuple[str, bool]:
    plan = request.query.get("plan")
    if not plan:
        raise ApiError(400, f"plan: query parameter required ({PATH}?plan=<plan>)")
    if plan not in doors.config.plans:
        raise ApiError(404, f"plan: unknown plan {plan!r}")
    probe = Trigger(type="trigger", application=application, plan=plan, incident_id="probe")
    reason = doors.engine.check_trigger(probe)
    if reason is not None:  # a plan with dynamic targets: alerts name none
        raise ApiError(400, f"plan: {plan!r} cannot be started by an alert ({reason})")
    group = request.query.get("group", "").lower()
    if group not in _TRUE + _FALSE:
        raise ApiError(400, f"group: expected true or false, not {request.query['group']!r}")
    return plan, group in _TRUE


def translate(body: AlertmanagerWebhook, application: str, plan: str, group: bool) -> list[Event]:
    """The events of one notification (the plan was checked by `_query`)."""
    at = now()

    def event(firing: bool, dedup_key: str, context: dict[str, Any]) -> Event:
        if not firing:
            return Resolve(type="resolve", at=at, application=application, dedup_key=dedup_key)
        return Trigger(type="trigger", at=at, application=application, plan=plan, dedup_key=dedup_key, context=context)

    if group:
        if not body.group_key:
            raise ApiError(400, "groupKey: required with group=true")
        return [event(body.status == "firing", group_dedup_key(body.group_key), group_context(body))]
    if body.truncated_alerts:
        log.warning(
            "alertmanager (application %s): %d alerts were truncated by max_alerts", application, body.truncated_alerts
        )
    return [event(alert.status == "firing", alert.fingerprint, alert_context(body, alert)) for alert in body.alerts]


def routes(doors: Doors, limiter: RateLimiter) -> list[web.RouteDef]:
    async def notify(request: web.Request) -> web.Response:
        application = bearer_or_basic(doors.config, request)
        try:
            limiter.take(application)
        except ApiError as exc:  # 429 would make Alertmanager drop the alerts; 503 it retries
            raise ApiError(503, exc.reason, headers=exc.headers) from exc
        plan, group = _query(request, doors, application)
        raw, _ = await json_body(request)
        events = translate(parse_webhook(raw), application, plan, group)
        await doors.write(events)
        answer = Accepted(accepted=len(events), incident_ids=[e.key for e in events])
        return web.json_response(answer.model_dump(), status=202)

    return [web.post(PATH, notify)]
