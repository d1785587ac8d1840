"""Alertmanager's silences API v2 on `streamproc api`, so that `amtool silence add|query|expire` works.

    amtool silence add alertname=DiskFull instance=~'db0[12]' --comment='PostgreSQL upgrade' \\
        --duration=2h --alertmanager.url=http://127.0.0.1:8080 --http.config.file=amtool-http.yml

- `POST /api/v2/silences` (`AmPostableSilence`): a `silence` event of the key's application (spec
  §8), answered `{"silenceID": ...}` (200, as Alertmanager does) once Kafka acknowledged it. A new
  silence gets a UUID; an `id` replaces that silence (Alertmanager's update). Matchers map to the
  silence's context keys: `name="value"` to `match`, `name=~"re"` to `match_re` (a label such as
  `alertname` is just a context key; the Alertmanager webhook puts every label there). Refused with
  400 naming them: negative matchers (`!=`, `!~`), which §8 has no form for; `name=""` (to
  Alertmanager "the label is absent", to §8 "the key is present and empty"); a name given twice; no
  matcher at all; and whatever §8 refuses (ends not after starts, more than 30 days, a regex that
  is not RE2-compatible).
- `GET /api/v2/silences[?filter=<matcher>...]`: the application's silences as Alertmanager's
  `gettableSilence` (`status.state` active, pending or expired; expired ones for 5 days), filtered as
  Alertmanager filters them (each filter matcher must match the pattern of the silence's matcher
  of that name). A `match` with a list of values shows as the regex `(?:a|b)`; `plans` have no
  Alertmanager form and are not shown. A silence ended before it started shows as starting and
  ending when it was ended (Alertmanager's way; amtool tells expired ones by `endsAt`).
- `DELETE /api/v2/silence/{id}`: an `unsilence` now (200, empty); 404 for an id the application
  does not have.

Authentication is the webhook door's (`auth.bearer_or_basic`): amtool's `--http.config.file` with
`basic_auth: {username: <application>, password: <key>}` or `authorization: {credentials: <key>}`.
Errors are answered as a JSON string, as Alertmanager does (amtool prints it).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from streamproc.api.auth import bearer_or_basic
from streamproc.api.common import Doors, json_body, now
from streamproc.api.errors import ApiError
from streamproc.api.limits import RateLimiter
from streamproc.api.maintenance import known_silence, synced, unsilence_event, validated
from streamproc.api.silences import Known, SilenceIndex
from streamproc.timeutil import from_us
from streamproc.wire.api import (
    AM_GETTABLE_SILENCES,
    AmGettableSilence,
    AmMatcher,
    AmPostableSilence,
    AmPostSilenceAnswer,
    AmSilenceStatus,
)
from streamproc.wire.events import Silence, error_text

_GO_META = re.compile(r"([\\.+*?()|\[\]{}^$])")
_FILTER = re.compile(r'^\s*\{?\s*([^\s=!~"{}]+)\s*(=~|!~|!=|=)\s*(.*?)\s*\}?\s*$', re.S)


def quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta: a regex matching exactly `text`."""
    return _GO_META.sub(r"\\\1", text)


def matcher_text(m: AmMatcher) -> str:
    op = ("=~" if m.is_regex else "=") if m.is_equal else ("!~" if m.is_regex else "!=")
    return f"{m.name}{op}{json.dumps(m.value, ensure_ascii=False)}"


def silence_of(application: str, body: AmPostableSilence) -> Silence:
    """The §8 silence of an Alertmanager silence (400 naming what has no §8 form)."""
    if not body.matchers:
        raise ApiError(400, "matchers: at least one matcher is required")
    negative = [f"matchers[{i}] ({matcher_text(m)})" for i, m in enumerate(body.matchers) if not m.is_equal]
    if negative:
        raise ApiError(400, f"matchers: negative matchers are not supported: {', '.join(negative)}")
    match: dict[str, str] = {}
    match_re: dict[str, str] = {}
    for i, m in enumerate(body.matchers):
        if m.name in match or m.name in match_re:
            raise ApiError(400, f"matchers[{i}].name: {m.name!r} is given twice (one matcher per name)")
        if not m.is_regex and m.value == "":
            raise ApiError(
                400,
                f"matchers[{i}] ({matcher_text(m)}): an empty value (Alertmanager: the label is "
                "absent) has no equivalent here",
            )
        (match_re if m.is_regex else match)[m.name] = m.value
    try:
        return Silence.model_validate(
            {
                "type": "silence",
                "at": now(),
                "application": application,
                "silence_id": body.id or str(uuid.uuid4()),
                "starts": body.starts_at,
                "ends": body.ends_at,
                "match": match,
                "match_re": match_re,
                "created_by": body.created_by,
                "comment": body.comment,
            }
        )
    except ValidationError as exc:
        names = {"starts": "startsAt", "ends": "endsAt", "created_by": "createdBy"}
        text = error_text(exc)
        for ours, theirs in names.items():
            text = re.sub(rf"(^|; ){ours}\b", rf"\g<1>{theirs}", text)
        text = re.sub(r"(^|; )match(_re)?\.([^:]+):", r"\g<1>matchers (\3):", text)
        raise ApiError(400, text) from exc


def am_matchers(known: Known) -> list[AmMatcher]:
    s = known.silence
    out = []
    for name, values in s.match.items():
        if len(values) == 1:
            out.append(AmMatcher(name=name, value=values[0], is_regex=False))
        else:
            out.append(AmMatcher(name=name, value="(?:" + "|".join(quote_meta(v) for v in values) + ")", is_regex=True))
    out.extend(AmMatcher(name=name, value=pattern, is_regex=True) for name, pattern in s.match_re.items())
    return out


def gettable(known: Known, now_us: int) -> AmGettableSilence:
    """Alertmanager's view. A silence ended before it started (§8: `ends = starts`, later than now)
    shows as Alertmanager shows such a one: starting and ending when it was ended, so that amtool,
    which tells expired from active by `endsAt`, calls it expired."""
    s = known.silence
    state = known.state(now_us)
    starts, ends = s.starts, s.ends
    if state == "expired" and ends > now_us:
        starts = ends = min(known.updated_at, now_us)
    return AmGettableSilence(
        id=s.silence_id,
        status=AmSilenceStatus(state=state),
        updated_at=from_us(known.updated_at),
        matchers=am_matchers(known),
        starts_at=from_us(starts),
        ends_at=from_us(ends),
        created_by=s.created_by or "",
        comment=s.comment or "",
    )


class Filter:
    """One `filter` matcher of `GET /api/v2/silences` (`name="value"`, `name=~"re"`, `!=`, `!~`)."""

    def __init__(self, text: str) -> None:
        found = _FILTER.match(text)
        if found is None:
            raise ApiError(400, f"filter: not a matcher: {text!r}")
        self.name, self.op, value = found.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            try:
                value = json.loads(value)
            except ValueError as exc:
                raise ApiError(400, f"filter: bad quoting in {text!r}") from exc
        self.value: str = value
        if self.op in ("=~", "!~"):
            try:
                self.regex: re.Pattern[str] | None = re.compile(value)
            except re.error as exc:
                raise ApiError(400, f"filter: bad regex in {text!r}: {exc}") from exc
        else:
            self.regex = None

    def _matches(self, value: str) -> bool:
        if self.regex is not None:
            return (self.regex.fullmatch(value) is not None) == (self.op == "=~")
        return (value == self.value) == (self.op == "=")

    def admits(self, patterns: dict[str, str]) -> bool:
        """Alertmanager's `matchFilterLabels` on a silence's matcher patterns by name."""
        present = self.name in patterns
        if self.value == "" and present == (self.op in ("!=", "!~")):
            return True
        return self._matches(patterns.get(self.name, ""))


def _as_alertmanager(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """Errors as Alertmanager answers them: a JSON string (a 401 keeps its challenge header)."""

    async def wrapped(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            raise ApiError(exc.status, exc.reason, headers=exc.headers, body=exc.reason) from exc

    return wrapped


def routes(doors: Doors, limiter: RateLimiter, index: SilenceIndex) -> list[web.RouteDef]:
    async def post_silence(request: web.Request) -> web.StreamResponse:
        application = bearer_or_basic(doors.config, request)
        limiter.take(application)
        body, _ = await json_body(request)
        event = silence_of(application, validated(AmPostableSilence, body))
        reason = doors.engine.check_silence(event)
        if reason is not None:
            raise ApiError(400, reason)
        await doors.write([event])
        return web.json_response(AmPostSilenceAnswer(silence_id=event.silence_id).model_dump(by_alias=True))

    async def get_silences(request: web.Request) -> web.StreamResponse:
        application = bearer_or_basic(doors.config, request)
        limiter.take(application)
        filters = [Filter(text) for text in request.query.getall("filter", [])]
        await synced(index)
        now_us = index.now_us()
        found: list[AmGettableSilence] = []
        for known in index.of(application):
            silence = gettable(known, now_us)
            patterns = {m.name: m.value for m in silence.matchers}
            if all(f.admits(patterns) for f in filters):
                found.append(silence)
        body: Any = AM_GETTABLE_SILENCES.dump_python(found, mode="json", by_alias=True)
        return web.json_response(body)

    async def delete_silence(request: web.Request) -> web.StreamResponse:
        application = bearer_or_basic(doors.config, request)
        limiter.take(application)
        silence_id = request.match_info["silence_id"]
        await known_silence(index, application, silence_id)
        await doors.write([unsilence_event(application, silence_id)])
        return web.Response(status=200)

    return [
        web.post("/api/v2/silences", _as_alertmanager(post_silence)),
        web.get("/api/v2/silences", _as_alertmanager(get_silences)),
        web.delete("/api/v2/silence/{silence_id}", _as_alertmanager(delete_silence)),
    ]
