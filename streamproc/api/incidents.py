"""The read side of the status topic (`streamproc.incidents.index.StatusIndex`;
docs/decisions/status-topic.md).

    GET /v1/incidents?status=open&plan=P&owner=U&limit=100&offset=0   the key's application only
    GET /v1/incidents/{id}                                            one incident's summary
    GET /v0/incidents/{id}                                            Iris's incident (irisclient)

`/v1` authenticates like `POST /v1/events` (bearer key, or basic auth with the application
name); `/v0` with Iris's HMAC. An incident of another application is answered 404, as one that
does not exist. Before answering, the index reads the topic up to its end as of the request
(bounded, like the replies' "claim last"), so a client sees the summaries written before it asked.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from streamproc.api.auth import bearer_or_basic, iris_hmac
from streamproc.api.errors import ApiError
from streamproc.api.limits import RateLimiter
from streamproc.config.models import Config
from streamproc.incidents.index import STATUS_FILTERS, Query, StatusIndex
from streamproc.timeutil import to_us
from streamproc.wire.status import OPEN_STATUSES, IncidentList, IncidentSummary

MAX_LIMIT = 500
DEFAULT_LIMIT = 100
SYNC_TIMEOUT = 2.0


def _int(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"{name}: an integer from {low} to {high}") from None
    if not low <= value <= high:
        raise ApiError(400, f"{name}: an integer from {low} to {high}")
    return value


async def fresh(index: StatusIndex) -> None:
    """The index as of now, as far as it can tell within `SYNC_TIMEOUT`; 503 while it has not
    read the topic to its end once (it would answer with less than is open)."""
    if not await index.sync(SYNC_TIMEOUT) and not index.caught_up.is_set():
        raise ApiError(503, "the status index is still reading the status topic", headers={"Retry-After": "2"})


def iris_incident(summary: IncidentSummary) -> dict[str, Any]:
    """An incident as Iris's `GET /v0/incidents/{id}` answers it (the context holds the summary only:
    the status topic keeps no full context)."""
    number: int | str = (
        int(summary.incident_id)
        if summary.incident_id.isdigit() and len(summary.incident_id) < 17
        else summary.incident_id
    )
    return {
        "id": number,
        "plan": summary.plan,
        "application": summary.application,
        "context": {"summary": summary.summary},
        "created": to_us(summary.created) // 1_000_000,
        "updated": to_us(summary.updated) // 1_000_000,
        "owner": summary.claimed_by,
        "active": summary.status in OPEN_STATUSES and summary.status != "claimed",
        "current_step": summary.step,
        "status": summary.status,
    }


def routes(config: Config, limiter: RateLimiter, index: StatusIndex) -> list[web.RouteDef]:
    async def list_incidents(request: web.Request) -> web.Response:
        application = bearer_or_basic(config, request)
        limiter.take(application)
        status = request.query.get("status", "open")
        if status not in STATUS_FILTERS:
            raise ApiError(400, f"status: one of {', '.join(STATUS_FILTERS)}")
        limit = _int(request, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        offset = _int(request, "offset", 0, 0, 10**9)
        await fresh(index)
        found = index.query(
            Query(
                status=status, application=application, plan=request.query.get("plan"), owner=request.query.get("owner")
            )
        )
        page = found[offset : offset + limit]
        following = None
        if offset + limit < len(found):
            following = f"{request.path}?{urlencode({**request.query, 'offset': offset + limit, 'limit': limit})}"
        answer = IncidentList(incidents=page, total=len(found), limit=limit, offset=offset, next=following)
        return web.json_response(text=answer.model_dump_json())

    def one(request: web.Request, application: str) -> IncidentSummary:
        incident_id = request.match_info["incident_id"]
        summary = index.get(incident_id)
        if summary is None or summary.application != application:
            raise ApiError(404, f"incident {incident_id}: not open nor recently resolved for application {application}")
        return summary

    async def get_incident(request: web.Request) -> web.Response:
        application = bearer_or_basic(config, request)
        limiter.take(application)
        await fresh(index)
        return web.json_response(text=one(request, application).model_dump_json())

    async def get_iris_incident(request: web.Request) -> web.Response:
        application = iris_hmac(config, request, await request.read())
        limiter.take(application)
        await fresh(index)
        return web.json_response(iris_incident(one(request, application)))

    return [
        web.get("/v1/incidents", list_incidents),
        web.get("/v1/incidents/{incident_id}", get_incident),
        web.get("/v0/incidents/{incident_id}", get_iris_incident),
    ]


def openapi_paths(ref: str, errors: Any) -> dict[str, Any]:
    """The OpenAPI operations of `/v1/incidents` (for `openapi.py`; `ref` formats a schema's
    reference, `errors(*statuses)` gives the error answers)."""
    listed = {
        "description": "Newest first",
        "content": {"application/json": {"schema": {"$ref": ref.format(model="IncidentList")}}},
    }
    one = {
        "description": "The incident's current summary",
        "content": {"application/json": {"schema": {"$ref": ref.format(model="IncidentSummary")}}},
    }
    return {
        "/v1/incidents": {
            "get": {
                "operationId": "listIncidents",
                "summary": "The caller's application's incidents, from the status topic",
                "parameters": [
                    {
                        "name": "status",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": list(STATUS_FILTERS), "default": "open"},
                        "description": "`open`: every status but resolved; `all`: every one",
                    },
                    {"name": "plan", "in": "query", "required": False, "schema": {"type": "string"}},
                    {
                        "name": "owner",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string"},
                        "description": "Claimed by this user",
                    },
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
                    },
                    {
                        "name": "offset",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 0, "maximum": 10**9, "default": 0},
                    },
                ],
                "responses": {"200": listed, **errors(400, 401, 429, 503)},
            }
        },
        "/v1/incidents/{incident_id}": {
            "get": {
                "operationId": "getIncident",
                "summary": "One incident of the caller's application (another application's: 404)",
                "parameters": [
                    {
                        "name": "incident_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "minLength": 1},
                    }
                ],
                "responses": {"200": one, **errors(401, 404, 429, 503)},
            }
        },
    }
