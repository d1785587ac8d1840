"""A real SMTP server (aiosmtpd) on 127.0.0.1 that keeps every message it accepts.

Optional AUTH (PLAIN/LOGIN against one username/password, allowed without TLS so tests
need no certificate) and optional STARTTLS (give it an `ssl.SSLContext`). Recipients in
`reject` get 550; `fail_next` makes the next DATA answer with the given code.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from streamproc.localnet import free_port


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    authenticated_as: str | None
    tls: bool
    at: float = field(default_factory=time.time)

    @property
    def message(self) -> EmailMessage:
        parsed = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


class FakeSmtp:
    def __init__(
        self,
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.username = username
        self.password = password
        self.tls_context = tls_context
        self.messages: list[ReceivedMail] = []
        self.reject: set[str] = set()
        self._script: deque[tuple[int, str]] = deque()
        self._lock = threading.Lock()
        self._controller: Controller | None = None
        self.host = "127.0.0.1"
        self.port = 0

    def fail_next(self, code: int, message: str = "scripted failure", times: int = 1) -> None:
        for _ in range(times):
            self._script.append((code, message))

    # aiosmtpd handler hooks ------------------------------------------------------------
    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]) -> str:
        if address in self.reject:
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self._script:
                code, message = self._script.popleft()
                return f"{code} {message}"
            login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
            self.messages.append(
                ReceivedMail(
                    mail_from=envelope.mail_from,
                    rcpt_tos=list(envelope.rcpt_tos),
                    data=bytes(envelope.original_content or envelope.content),
                    authenticated_as=login.decode() if isinstance(login, bytes) else login,
                    tls=session.ssl is not None,
                )
            )
        return "250 Message accepted for delivery"

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        ok = data.login.decode() == self.username and data.password.decode() == self.password
        return AuthResult(success=ok, handled=False, auth_data=data)

    # lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeSmtp:
        self.port = free_port()
        kwargs: dict[str, Any] = {}
        if self.username is not None:
            kwargs.update(authenticator=self._authenticate, auth_require_tls=False, auth_required=True)
        if self.tls_context is not None:
            kwargs.update(tls_context=self.tls_context, require_starttls=True)
        self._controller = Controller(self, hostname=self.host, port=self.port, server_kwargs=kwargs)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    async def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"FakeSmtp: {len(self.messages)} of {count} messages")
            await asyncio.sleep(0.02)
        return self.messages
