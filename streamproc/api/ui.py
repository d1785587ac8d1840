"""The status page, `/ui`, served by `streamproc api` (read-only; docs/status-page.md).

    GET /ui                        open incidents, who is on call now per team and role
    GET /ui/open?v=N               the open incidents' table alone (204 while the index is still at N)
    GET /ui/incidents/{id}         one incident: its summary and timeline (from the topics)

Plain server-rendered HTML (jinja2, autoescaped), inline CSS and a few lines of JavaScript that ask
`/ui/open` again every 2 s and swap the table in when the status index moved: nothing is loaded
from anywhere else, so it works without internet access.

Access: `api.ui_token` (unset: 404). `/ui?token=<ui_token>` once sets a cookie (HttpOnly,
SameSite=Strict, holding an HMAC of the token, not the token) and redirects to the same page
without it; `Authorization: Bearer <ui_token>`, or basic auth with the token as password (any
user name), work too. Anything else is 401 with a basic-auth challenge.

Nothing secret and no contact details: users by name only (no phone number, address or chat id),
the trigger's context summary, never its context; the timeline keeps modes, users, steps and
kinds, never destinations or vendor texts.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
from aiohttp import web

from streamproc.api.errors import ApiError
from streamproc.config.models import Config
from streamproc.engine.targets import rotation_holder
from streamproc.incidents.index import Query, StatusIndex
from streamproc.kafka import topics as names
from streamproc.timeutil import format_time, format_us, to_us
from streamproc.wire.status import IncidentSummary

log = logging.getLogger(__name__)

COOKIE = "streamproc_ui"
POLL_MS = 2000


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"streamproc-ui-session", hashlib.sha256).hexdigest()


def authorized(request: web.Request, token: str) -> bool:
    cookie = request.cookies.get(COOKIE)
    if cookie is not None and hmac.compare_digest(cookie.encode(), session_value(token).encode()):
        return True
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        return hmac.compare_digest(credentials.encode(), token.encode())
    if scheme.lower() == "basic" and credentials:
        try:
            _, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(password.encode(), token.encode())
    return False


@dataclass(frozen=True)
class OnCall:
    team: str
    role: str
    user: str | None


def on_call(config: Config, at_us: int) -> list[OnCall]:
    """Who holds each rotation of each team now (overrides included), and each team's manager."""
    out: list[OnCall] = []
    for name in sorted(config.teams):
        team = config.teams[name]
        for rotation in sorted(team.rotations):
            role = "oncall" if rotation == "primary" else f"oncall-{rotation}"
            out.append(OnCall(name, role, rotation_holder(team, rotation, at_us)))
        if team.manager:
            out.append(OnCall(name, "manager", team.manager))
    return out


def _age(value: datetime | None, now_us: int) -> str:
    if value is None:
        return ""
    seconds = abs(now_us - to_us(value)) // 1_000_000
    text = f"{seconds}s" if seconds < 120 else f"{seconds // 60}m" if seconds < 7200 else f"{seconds // 3600}h"
    return f"{text} ago" if to_us(value) <= now_us else f"in {text}"


_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#1d2329;background:#f7f8fa}
h1{font-size:20px;margin:0 0 .2em}h2{font-size:16px;margin:1.4em 0 .4em}
table{border-collapse:collapse;background:#fff;width:100%;box-shadow:0 1px 2px #0002}
th,td{padding:.35em .6em;border-bottom:1px solid #e3e6ea;text-align:left;vertical-align:top}
th{background:#eef1f4;font-weight:600}.muted{color:#68737d}a{color:#1558b0}
.st{display:inline-block;padding:0 .5em;border-radius:.7em;font-size:12px;font-weight:600}
.st-escalating{background:#fde2e1;color:#a4161a}.st-claimed{background:#e1effd;color:#0b4f9c}
.st-silenced{background:#eee;color:#444}.st-exhausted{background:#fff1c2;color:#7a5600}
.st-resolved{background:#e3f6e5;color:#1b6b2a}#updated{font-size:12px}
"""

_TEMPLATES = {
    "base.html": """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>{{ title }}</title>
<style>{{ style }}</style></head><body>
<h1>{{ title }}</h1><div class="muted" id="updated">as of {{ now }} (UTC)</div>
{% block body %}{% endblock %}</body></html>""",
    "open.html": """<table id="open-table" data-version="{{ version }}"><thead><tr><th>incident</th><th>what</th>
<th>application / plan</th><th>status</th><th>since</th><th>step</th><th>paged</th><th>next page due</th>
<th>claimed by</th></tr></thead><tbody>
{% for s in incidents %}<tr class="incident" data-incident="{{ s.incident_id }}" data-status="{{ s.status }}">
<td><a href="{{ link(s) }}">{{ s.incident_id }}</a> <span class="muted">#{{ s.instance }}</span></td>
<td>{{ s.summary }}{% if s.absorbed %} <span class="muted">(+{{ s.absorbed }} absorbed)</span>{% endif %}</td>
<td>{{ s.application }} / {{ s.plan }}</td><td><span class="st st-{{ s.status }}">{{ s.status }}</span></td>
<td title="{{ when(s.created) }}">{{ age(s.created) }}</td><td>{{ s.step }} of {{ s.steps }}</td>
<td>{{ s.last_paged | join(", ") }}{% if s.last_paged_at %}
<span class="muted" title="{{ when(s.last_paged_at) }}">{{ age(s.last_paged_at) }}</span>{% endif %}</td>
<td title="{{ when(s.next_page_at) }}">{{ age(s.next_page_at) }}</td><td>{{ s.claimed_by or "" }}</td></tr>
{% else %}<tr><td colspan="9" class="muted" id="none-open">Nothing is open.</td></tr>{% endfor %}
</tbody></table>""",
    "index.html": """{% extends "base.html" %}{% block body %}
<h2>Open incidents <span class="muted" id="open-count">({{ incidents | length }})</span></h2>
<div id="open">{% include "open.html" %}</div>
<h2>On call now</h2>
<table id="oncall"><thead><tr><th>team</th><th>role</th><th>who</th></tr></thead><tbody>
{% for o in oncall %}<tr><td>{{ o.team }}</td><td>{{ o.role }}</td><td>{{ o.user or "nobody" }}</td></tr>
{% else %}<tr><td colspan="3" class="muted">No teams with rotations.</td></tr>{% endfor %}</tbody></table>
<script>
(function () {
  var box = document.getElementById("open");
  function poll() {
    var table = document.getElementById("open-table");
    fetch("{{ prefix }}/open?v=" + table.dataset.version, {credentials: "same-origin"}).then(function (r) {
      if (r.status === 200) {
        return r.text().then(function (html) {
          box.innerHTML = html;
          document.getElementById("open-count").textContent =
            "(" + box.querySelectorAll("tr.incident").length + ")";
          document.getElementById("updated").textContent = "as of " + new Date().toISOString();
        });
      }
    }).catch(function () {}).then(function () { setTimeout(poll, {{ poll_ms }}); });
  }
  setTimeout(poll, {{ poll_ms }});
})();
</script>{% endblock %}""",
    "incident.html": """{% extends "base.html" %}{% block body %}
<p><a href="{{ prefix }}">all open incidents</a></p>
{% if s %}<table id="summary"><tbody>
<tr><th>status</th><td><span class="st st-{{ s.status }}">{{ s.status }}</span> (instance {{ s.instance }})</td></tr>
<tr><th>what</th><td>{{ s.summary }}</td></tr>
<tr><th>application / plan</th><td>{{ s.application }} / {{ s.plan }}</td></tr>
<tr><th>since</th><td>{{ when(s.created) }} ({{ age(s.created) }})</td></tr>
<tr><th>step</th><td>{{ s.step }} of {{ s.steps }}</td></tr>
<tr><th>last paged</th><td>{{ s.last_paged | join(", ") }} {{ when(s.last_paged_at) }}</td></tr>
<tr><th>next page due</th><td>{{ when(s.next_page_at) }}</td></tr>
<tr><th>claimed by</th><td>{{ s.claimed_by or "" }} {{ when(s.claimed_at) }}</td></tr>
<tr><th>absorbed triggers</th><td>{{ s.absorbed }}</td></tr>
{% if s.resolved_at %}<tr><th>resolved</th><td>{{ when(s.resolved_at) }}</td></tr>{% endif %}
</tbody></table>{% else %}<p class="muted">Not open nor recently resolved.</p>{% endif %}
<h2>Timeline</h2>
<table id="timeline"><thead><tr><th>at</th><th>what</th><th>details</th></tr></thead><tbody>
{% for row in timeline %}<tr><td>{{ row[0] }}</td><td>{{ row[1] }}</td><td>{{ row[2] }}</td></tr>
{% else %}<tr><td colspan="3" class="muted">No records.</td></tr>{% endfor %}</tbody></table>
{% endblock %}""",
}

_ENV = jinja2.Environment(loader=jinja2.DictLoader(_TEMPLATES), autoescape=True, undefined=jinja2.StrictUndefined)

_SAFE_FIELDS = ("mode", "user", "owner", "step", "repeat", "priority", "plan", "vendor", "silence_id", "attempts")


def timeline_rows(bootstrap: str, incident_id: str) -> list[tuple[str, str, str]]:
    """(time, kind, details) of an incident's records on the topics, as `streamproc inspect incident`
    collects them, keeping only fields that are no secret and no contact detail."""
    from streamproc.inspect.incident import collect
    from streamproc.inspect.reader import TopicReader

    with TopicReader(bootstrap, progress=False) as reader:
        entries = collect(reader, names.CURRENT, incident_id)
    rows = []
    for entry in entries:
        data = entry.record
        details = " ".join(f"{k}={data[k]}" for k in _SAFE_FIELDS if data.get(k) not in (None, ""))
        instance = data.get("instance")
        rows.append((format_us(entry.at_us), entry.kind, f"#{instance} {details}" if instance else details))
    return rows


def routes(config: Config, index: StatusIndex, bootstrap: str, prefix: str = "/ui") -> list[web.RouteDef]:
    token = config.api.ui_token

    def check(request: web.Request) -> None:
        """Returns when the request may see the page; else raises the answer (404, 401, or the
        redirect that sets the cookie)."""
        if token is None:
            raise ApiError(404, "the status page is off (api.ui_token is not set)")
        given = request.query.get("token")
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            rest = {k: v for k, v in request.query.items() if k != "token"}
            target = request.rel_url.with_query(rest) if rest else request.rel_url.with_query(None)
            answer = web.HTTPSeeOther(str(target))
            answer.set_cookie(COOKIE, session_value(token), httponly=True, samesite="Strict", path=prefix)
            raise answer
        if not authorized(request, token):
            raise ApiError(
                401,
                "the status page needs api.ui_token",
                headers={"WWW-Authenticate": 'Basic realm="streamproc status"'},
            )

    def helpers(now_us: int) -> dict[str, Any]:
        return {
            "age": lambda v: _age(v, now_us),
            "when": lambda v: format_time(v) if v is not None else "",
            "link": lambda s: f"{prefix}/incidents/{s.incident_id}",
            "prefix": prefix,
            "style": _STYLE,
            "poll_ms": POLL_MS,
            "now": format_us(now_us),
        }

    def open_incidents() -> tuple[int, list[IncidentSummary]]:
        version = index.version
        return version, index.query(Query(status="open"))

    def html(text: str) -> web.Response:
        return web.Response(
            text=text,
            content_type="text/html",
            headers={
                "Cache-Control": "no-store",
                "X-Frame-Options": "DENY",
                "Referrer-Policy": "no-referrer",
                "Content-Security-Policy": "default-src 'self'; style-src 'unsafe-inline'; script-src 'unsafe-inline'",
            },
        )

    async def page(request: web.Request) -> web.Response:
        check(request)
        now_us = int(time.time() * 1_000_000)
        version, found = open_incidents()
        return html(
            _ENV.get_template("index.html").render(
                title="streamproc: what is open",
                incidents=found,
                version=version,
                oncall=on_call(config, now_us),
                **helpers(now_us),
            )
        )

    async def fragment(request: web.Request) -> web.Response:
        check(request)
        if request.query.get("v") == str(index.version):
            return web.Response(status=204, headers={"Cache-Control": "no-store"})
        version, found = open_incidents()
        return html(
            _ENV.get_template("open.html").render(
                incidents=found, version=version, **helpers(int(time.time() * 1_000_000))
            )
        )

    async def incident(request: web.Request) -> web.Response:
        check(request)
        incident_id = request.match_info["incident_id"]
        now_us = int(time.time() * 1_000_000)
        try:
            rows = await asyncio.to_thread(timeline_rows, bootstrap, incident_id)
        except Exception as exc:  # the broker is away: the summary still shows
            log.warning("status page: timeline of %s not read: %s", incident_id, exc)
            rows = [("", "unavailable", "the topics could not be read just now")]
        return html(
            _ENV.get_template("incident.html").render(
                title=f"incident {incident_id}", s=index.get(incident_id), timeline=rows, **helpers(now_us)
            )
        )

    return [
        web.get(prefix, page),
        web.get(prefix + "/open", fragment),
        web.get(prefix + "/incidents/{incident_id}", incident),
    ]
