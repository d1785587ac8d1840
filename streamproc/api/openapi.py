"""`/openapi.json`: the native API described from the same pydantic models that validate it.

The request's event schemas are those of spec §2 (`streamproc.wire.events`) with what the API adds
and what the models check beyond their JSON Schema: `application` may be left out (it is the key's),
every event names its incident (`incident_id` or `dedup_key`), and a dynamic target's `role` is one
of the roles a plan can name. A request the document calls valid is then only refused for what
depends on the configuration (unknown plan: 404; a plan's dynamic indices not covered: 400).

Spec §8's doors are described too: the native silences and heartbeats (`streamproc.api.maintenance`)
and Alertmanager's silences API v2 (`streamproc.api.amsilences`, whose errors are JSON strings). For
silences some refusals depend on several fields at once (`ends` after `starts`, a regex RE2 takes,
no negative matcher), which JSON Schema cannot say: the operations' descriptions name them.
"""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from pydantic.json_schema import models_json_schema

from streamproc import __version__
from streamproc.api.incidents import openapi_paths as incident_paths
from streamproc.wire.api import (
    AM_GETTABLE_SILENCES,
    Accepted,
    AmPostableSilence,
    AmPostSilenceAnswer,
    ErrorBody,
    SilenceList,
    SilenceRequest,
    SilenceView,
)
from streamproc.wire.common import ROLE_RE
from streamproc.wire.events import EVENT_ADAPTER
from streamproc.wire.status import IncidentList

_REF = "#/components/schemas/{model}"


def _errors(*statuses: int) -> dict[str, Any]:
    text = {
        400: "Invalid event (the error names the field)",
        401: "Missing or wrong application key",
        403: "The key's application differs from the event's (or the monitor's)",
        404: "Unknown application, plan, silence, monitor or incident",
        413: "Body too large",
        429: "Rate limit (see Retry-After)",
        503: "Kafka did not take the events (see Retry-After); nothing was answered 2xx",
    }
    return {
        str(s): {
            "description": text[s],
            "content": {"application/json": {"schema": {"$ref": _REF.format(model="ErrorBody")}}},
        }
        for s in statuses
    }


_EVENT_KINDS = ("Trigger", "Claim", "Acknowledge", "Unclaim", "Resolve")
_IDENTIFIED = {
    "anyOf": [{"required": [name], "properties": {name: {"type": "string"}}} for name in ("incident_id", "dedup_key")]
}


def _as_request(schemas: dict[str, Any]) -> dict[str, Any]:
    """The event schemas as the native API takes them (see the module's docstring)."""
    schemas = copy.deepcopy(schemas)
    for kind in _EVENT_KINDS:
        schemas[kind].update(_IDENTIFIED)
        schemas[kind]["description"] = (
            schemas[kind].get("description", "")
            + (
                " Named by `incident_id`, or by `dedup_key` (then the incident id is derived from the application "
                "and the key)."
            )
        ).strip()
    trigger = schemas["Trigger"]
    trigger["required"] = [name for name in trigger["required"] if name != "application"]
    trigger["properties"]["application"] = {"anyOf": [trigger["properties"]["application"], {"type": "null"}]}
    for kind in _EVENT_KINDS:
        properties = schemas[kind]["properties"]
        properties["application"]["description"] = (
            "The caller's application (the key's) when left out or null; any other is refused (403)"
        )
        properties["at"]["description"] = "Event time; the time of receipt when left out or null"
    schemas["DynamicTarget"]["properties"]["role"]["pattern"] = ROLE_RE.pattern
    return schemas


def _answer(status: str, description: str, model: str) -> dict[str, Any]:
    return {
        status: {
            "description": description,
            "content": {"application/json": {"schema": {"$ref": _REF.format(model=model)}}},
        }
    }


def _maintenance_paths() -> dict[str, Any]:
    """Spec §8's doors (`streamproc.api.maintenance`)."""
    silence_id = {"name": "silence_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
    name = {
        "name": "name",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "minLength": 1},
        "description": "A monitor of config `heartbeats:`",
    }
    return {
        "/v1/silences": {
            "post": {
                "operationId": "postSilence",
                "summary": "Silence (spec §8) new incidents of the caller's application that match, for a window",
                "description": "`at` is the time of receipt. Refused with 400 beyond the schema: `ends` not after "
                "`starts` (default: now) or more than 30 days after it; a `match_re` pattern that is "
                "not a valid, RE2-compatible regular expression.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="SilenceRequest")}}},
                },
                "responses": {
                    **_answer("202", "The silence is on the incidents topic", "SilenceView"),
                    **_errors(400, 401, 403, 413, 429, 503),
                },
            },
            "get": {
                "operationId": "listSilences",
                "summary": "The caller's application's active and pending silences",
                "responses": {
                    **_answer("200", "Read from the incidents topic, the caller's writes included", "SilenceList"),
                    **_errors(401, 429, 503),
                },
            },
        },
        "/v1/silences/{silence_id}": {
            "delete": {
                "operationId": "deleteSilence",
                "summary": "End a silence now (an `unsilence` event)",
                "parameters": [silence_id],
                "responses": {
                    **_answer("202", "The unsilence is on the incidents topic", "SilenceView"),
                    **_errors(401, 404, 429, 503),
                },
            }
        },
        "/v1/heartbeats/{name}": {
            "post": {
                "operationId": "postHeartbeat",
                "summary": "A heartbeat of a monitor (spec §8) of the caller's application",
                "parameters": [name],
                "responses": {
                    **_answer("202", "The heartbeat is on the incidents topic", "Accepted"),
                    **_errors(401, 403, 404, 429, 503),
                },
            }
        },
    }


def _am_errors(*statuses: int) -> dict[str, Any]:
    """Alertmanager's error answers: a JSON string."""
    text = {
        400: "Invalid silence, or one with no §8 form (the error names the field or matcher)",
        401: "Missing or wrong application key",
        404: "The application has no silence of that id",
        429: "Rate limit (see Retry-After)",
        503: "Kafka did not take the event, or the silences are not "
        "read up to date (see Retry-After); nothing was answered 2xx",
    }
    return {
        str(s): {"description": text[s], "content": {"application/json": {"schema": {"type": "string"}}}}
        for s in statuses
    }


def _alertmanager_paths() -> dict[str, Any]:
    """Alertmanager's silences API v2 (`streamproc.api.amsilences`), as amtool calls it."""
    return {
        "/api/v2/silences": {
            "post": {
                "operationId": "postAlertmanagerSilence",
                "summary": "Alertmanager's postSilences: a silence (spec §8) of the credentials' application",
                "description": "Equal matchers map to `match`, regex matchers to `match_re`. Refused with 400 beyond "
                "the schema: negative matchers (isEqual false), an empty equal value, a name given "
                "twice, no matcher, `endsAt` not after `startsAt` or more than 30 days after it, a "
                "regex that is not valid and RE2-compatible.",
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": {"$ref": _REF.format(model="AmPostableSilence")}}},
                },
                "responses": {
                    **_answer("200", "The silence is on the incidents topic", "AmPostSilenceAnswer"),
                    **_am_errors(400, 401, 429, 503),
                    **_errors(413),
                },
            },
            "get": {
                "operationId": "getAlertmanagerSilences",
                "summary": "Alertmanager's getSilences: the application's silences (expired ones for 5 days)",
                "parameters": [
                    {
                        "name": "filter",
                        "in": "query",
                        "required": False,
                        "style": "form",
                        "explode": True,
                        "description": 'Matchers (`name="value"`, `=~`, `!=`, `!~`) the silences\' '
                        "matchers must satisfy, as Alertmanager filters",
                        "schema": {"type": "array", "items": {"type": "string"}},
                    }
                ],
                "responses": {
                    **_answer("200", "Alertmanager's gettableSilences", "AmGettableSilences"),
                    **_am_errors(400, 401, 429, 503),
                },
            },
        },
        "/api/v2/silence/{silence_id}": {
            "delete": {
                "operationId": "deleteAlertmanagerSilence",
                "summary": "Alertmanager's deleteSilence: end a silence now (an `unsilence` event)",
                "parameters": [
                    {"name": "silence_id", "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
                ],
                "responses": {
                    "200": {"description": "The unsilence is on the incidents topic"},
                    **_am_errors(401, 404, 429, 503),
                },
            }
        },
    }


@cache
def openapi_document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [
            (Accepted, "serialization"),
            (ErrorBody, "serialization"),
            (SilenceRequest, "validation"),
            (SilenceView, "serialization"),
            (SilenceList, "serialization"),
            (AmPostableSilence, "validation"),
            (AmPostSilenceAnswer, "serialization"),
            (IncidentList, "serialization"),
        ],
        ref_template=_REF,
    )
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    event = EVENT_ADAPTER.json_schema(ref_template=_REF)
    schemas.update(_as_request(event.pop("$defs", {})))
    schemas["Event"] = event
    gettable = AM_GETTABLE_SILENCES.json_schema(ref_template=_REF, mode="serialization")
    schemas.update(gettable.pop("$defs", {}))
    schemas["AmGettableSilences"] = gettable
    event_ref = {"$ref": _REF.format(model="Event")}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "streamproc API",
            "version": __version__,
            "description": "Events of spec §2 in; answered after Kafka acknowledged them.",
        },
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "application": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The application's key (config applications.<app>.key)",
                }
            },
        },
        "security": [{"application": []}],
        "paths": {
            "/v1/events": {
                "post": {
                    "operationId": "postEvents",
                    "summary": "One event, or an array of up to 1000, for the caller's application",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        event_ref,
                                        {"type": "array", "items": event_ref, "minItems": 1, "maxItems": 1000},
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Every event is on the incidents topic",
                            "content": {"application/json": {"schema": {"$ref": _REF.format(model="Accepted")}}},
                        },
                        **_errors(400, 401, 403, 404, 413, 429, 503),
                    },
                }
            },
            **_maintenance_paths(),
            **_alertmanager_paths(),
            **incident_paths(_REF, _errors),
            "/healthz": {
                "get": {
                    "operationId": "healthz",
                    "security": [],
                    "responses": {"200": {"description": "The process is up"}},
                }
            },
            "/ready": {
                "get": {
                    "operationId": "ready",
                    "security": [],
                    "responses": {
                        "200": {"description": "Kafka is reachable"},
                        "503": {"description": "Kafka is not reachable"},
                    },
                }
            },
        },
    }
