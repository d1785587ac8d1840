"""Who is calling: an application, proven by its key.

- Bearer: `Authorization: Bearer <key>` (the native API, Alertmanager's `authorization`).
- Basic: user = application name, password = its key (Alertmanager's `basic_auth`).
- Iris HMAC: `Authorization: hmac <app>:<urlsafe base64 HMAC-SHA512(key, "<window> <METHOD> <path> <body>")>`
  with window = unix time // 5 (current or previous), or // 30 (current or previous), as Iris does.

`secondary_key` is accepted wherever `key` is, so keys can be rotated without downtime.
Comparisons are constant-time. 401 when credentials are missing or wrong.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Callable, Iterable

from aiohttp import web

from streamproc.api.errors import ApiError
from streamproc.config.models import Application, Config

IRIS_WINDOWS = (5, 30)
"""Iris's HMAC windows in seconds; the current and the previous window of each are accepted."""


def _unauthorized(reason: str, scheme: str = "Bearer") -> ApiError:
    return ApiError(
        401,
        reason,
        headers={"WWW-Authenticate": f'{scheme} realm="streamproc"'},
        body={"error": reason, "title": "Unauthorized", "description": reason},
    )


def app_by_key(config: Config, key: str) -> str | None:
    """The application whose key or secondary key is `key` (every key is compared)."""
    found = None
    for name, app in config.applications.items():
        for candidate in app.secrets():
            if hmac.compare_digest(candidate.encode(), key.encode()):
                found = name
    return found


def bearer_or_basic(config: Config, request: web.Request) -> str:
    """The application named by a bearer key, or by basic auth (application name and key)."""
    header = request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer" and credentials:
        name = app_by_key(config, credentials)
        if name is None:
            raise _unauthorized("Authorization: unknown application key")
        return name
    if scheme.lower() == "basic" and credentials:
        try:
            user, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise _unauthorized("Authorization: malformed basic credentials", "Basic") from exc
        app = config.applications.get(user)
        if app is None or not _matches(app.secrets(), password):
            raise _unauthorized("Authorization: wrong application name or key", "Basic")
        return user
    raise _unauthorized("Authorization: missing; send 'Bearer <application key>'")


def _matches(keys: Iterable[str], given: str) -> bool:
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(key.encode(), given.encode())
    return ok


def iris_digest(key: str, window: int, method: str, path: str, body: bytes) -> bytes:
    text = b"%d %s %s %s" % (window, method.encode(), path.encode(), body)
    return base64.urlsafe_b64encode(hmac.new(key.encode(), text, hashlib.sha512).digest())


def iris_hmac(config: Config, request: web.Request, body: bytes, clock: Callable[[], float] = time.time) -> str:
    """The application proven by an Iris HMAC header over this request (path with query, raw body)."""
    header = request.headers.get("Authorization", "")
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "hmac" or ":" not in rest:
        raise _unauthorized("Authorization: missing; send 'hmac <application>:<digest>'", "hmac")
    name, _, digest = rest.strip().partition(":")
    app: Application | None = config.applications.get(name)
    if app is None:
        raise _unauthorized(f"Application not found: {name!r}", "hmac")
    now = int(clock())
    given = digest.encode()
    for key in app.secrets():
        for size in IRIS_WINDOWS:
            for window in (now // size, now // size - 1):
                if hmac.compare_digest(iris_digest(key, window, request.method, request.raw_path, body), given):
                    return name
    raise _unauthorized("Authorization: HMAC does not match (wrong key, or the request is too old)", "hmac")
