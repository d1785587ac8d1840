"""Kafka security for every client: the one place settings become client arguments.

The settings are the configuration's `kafka:` section (`config/kafka.py`) with `STREAMPROC_KAFKA_*`
environment variables overriding it field by field; commands without a configuration
(`streamproc produce`, a sender without `--config`) use the environment alone. They are a
property of the process: each command calls `configure()` once at start with its configuration's
section, and every client built afterwards gets them from `client_config()` (confluent-kafka:
producers, consumers, admin clients) or `faust_settings()` (the worker's aiokafka clients).

`check_access()` is the start-up probe: a wrong password, an unknown CA or a plaintext client on a
TLS listener is reported within seconds, named, instead of clients retrying forever.
"""

from __future__ import annotations

import re
import ssl
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from streamproc.config import environment
from streamproc.config.kafka import KafkaSettings

ENV_PREFIX = environment.KAFKA_PREFIX
# STREAMPROC_KAFKA_<FIELD> -> field (`environment.kafka_overrides`). STREAMPROC_KAFKA_SASL_PASSWORD
# is the password itself.
ENV_FIELDS = environment.KAFKA_OVERRIDE_FIELDS


class KafkaSecurityError(Exception):
    """Settings that cannot work, or a broker that refused them: the message names the problem."""


class KafkaUnreachable(Exception):
    """No broker answered in time (it may come later; nothing says the settings are wrong)."""


@dataclass(frozen=True)
class KafkaSecurity:
    settings: KafkaSettings
    password: str | None

    def confluent(self) -> dict[str, Any]:
        """librdkafka configuration keys."""
        s = self.settings
        out: dict[str, Any] = {"security.protocol": s.security_protocol}
        if s.uses_sasl:
            out.update(
                {"sasl.mechanism": s.sasl_mechanism, "sasl.username": s.sasl_username, "sasl.password": self.password}
            )
        if s.uses_tls:
            if s.ssl_ca_file:
                out["ssl.ca.location"] = s.ssl_ca_file
            if s.ssl_cert_file:
                out["ssl.certificate.location"] = s.ssl_cert_file
                out["ssl.key.location"] = s.ssl_key_file
            out["ssl.endpoint.identification.algorithm"] = "https" if s.ssl_check_hostname else "none"
        return out

    def ssl_context(self) -> ssl.SSLContext | None:
        s = self.settings
        if not s.uses_tls:
            return None
        try:
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=s.ssl_ca_file)
            if s.ssl_cert_file and s.ssl_key_file:
                context.load_cert_chain(s.ssl_cert_file, s.ssl_key_file)
        except (OSError, ssl.SSLError) as exc:
            raise KafkaSecurityError(f"kafka TLS files: {exc}") from exc
        context.check_hostname = s.ssl_check_hostname
        return context

    def faust_settings(self) -> dict[str, Any]:
        """Keyword arguments of `faust.App` (its aiokafka consumers and producer)."""
        import faust

        s = self.settings
        context = self.ssl_context()
        if s.uses_sasl:
            return {
                "broker_credentials": faust.SASLCredentials(
                    username=s.sasl_username, password=self.password, ssl_context=context, mechanism=s.sasl_mechanism
                )
            }
        if context is not None:
            return {"broker_credentials": faust.SSLCredentials(context)}
        return {}

    def describe(self) -> str:
        s = self.settings
        text: str = s.security_protocol
        if s.uses_sasl:
            text += f" {s.sasl_mechanism} as {s.sasl_username!r}"
        if s.uses_tls:
            text += f" (CA {s.ssl_ca_file or 'system'}{', client certificate' if s.ssl_cert_file else ''})"
        return text


def resolve(settings: KafkaSettings | None = None, environ: Mapping[str, str] | None = None) -> KafkaSecurity:
    """The settings with the environment's overrides applied and the password looked up.
    Raises KafkaSecurityError naming what is missing or inconsistent. `environ`: instead of the
    process's environment."""
    base = settings.model_dump(exclude_unset=True) if settings is not None else {}
    overrides = environment.kafka_overrides(environ)
    if overrides.get("sasl_password_file") or overrides.get("sasl_password"):
        # A password from the environment replaces whichever way the file named one.
        for name in ("sasl_password", "sasl_password_env", "sasl_password_file"):
            base.pop(name, None)
    try:
        merged = KafkaSettings.model_validate({**base, **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'kafka'}: {e['msg']}" for e in exc.errors())
        where = f" (from {', '.join(ENV_PREFIX + n.upper() for n in overrides)})" if overrides else ""
        raise KafkaSecurityError(f"kafka settings{where}: {problems}") from None
    password = None
    if merged.uses_sasl:
        password = _password(merged, environ)
    return KafkaSecurity(merged, password)


def _password(s: KafkaSettings, environ: Mapping[str, str] | None) -> str:
    if s.sasl_password:
        return s.sasl_password
    if s.sasl_password_env:
        value = environment.named(s.sasl_password_env, environ)
        if not value:
            raise KafkaSecurityError(f"kafka.sasl_password_env: environment variable {s.sasl_password_env} is not set")
        return value
    if s.sasl_password_file:
        try:
            value = Path(s.sasl_password_file).read_text(encoding="utf-8")
        except OSError as exc:
            raise KafkaSecurityError(f"kafka.sasl_password_file: {exc}") from exc
        value = value[:-1] if value.endswith("\n") else value
        if not value:
            raise KafkaSecurityError(f"kafka.sasl_password_file: {s.sasl_password_file} is empty")
        return value
    raise KafkaSecurityError(
        f"kafka: {s.security_protocol} needs a password: sasl_password, sasl_password_env or sasl_password_file "
        f"(or {ENV_PREFIX}SASL_PASSWORD / {ENV_PREFIX}SASL_PASSWORD_FILE)"
    )


_active: KafkaSecurity | None = None


def configure(settings: KafkaSettings | None) -> KafkaSecurity:
    """Set this process's security from a configuration's `kafka:` section (None: environment only)."""
    global _active
    resolved = resolve(settings)
    resolved.ssl_context()  # unreadable or broken certificate files are named now
    _active = resolved
    return _active


def current() -> KafkaSecurity:
    """What `configure()` set, else the environment alone (read afresh on every call)."""
    return _active if _active is not None else resolve(None)


RIDE_THROUGH = {
    # A broker that comes back (a restart, a rolling upgrade) is reconnected within a second, not
    # after librdkafka's backoff has grown to its default 10 s while the partitions it leads wait.
    "reconnect.backoff.max.ms": 1000,
    # A lost machine drops packets rather than refusing them: give up a connection attempt after
    # 10 s (default 30 s) and try the next broker.
    "socket.connection.setup.timeout.ms": 10000,
}
"""librdkafka settings for riding through the loss or restart of a broker (docs/production-kafka.md)."""


def client_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """A confluent-kafka configuration: the servers, `RIDE_THROUGH`, this process's security, then `extra`."""
    return {"bootstrap.servers": bootstrap, **RIDE_THROUGH, **current().confluent(), **extra}


def faust_settings() -> dict[str, Any]:
    return current().faust_settings()


# librdkafka reports these while it retries on; at start-up they are final. Matched after the broker's
# name ("sasl_ssl://host:9093/bootstrap: "), which would match "ssl" itself.
_FATAL_HINTS = ("authentication", "sasl", "ssl", "certificate", "handshake")
_BROKER_NAME = re.compile(r"^\S+://\S+: ")


class _Collect:
    """A `logger` for librdkafka that keeps what it says."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def log(self, level: int, fmt: str, *args: Any) -> None:
        self.lines.append(fmt % args if args else fmt)
        del self.lines[:-20]


def check_access(bootstrap: str, timeout: float = 15.0) -> None:
    """Returns once a broker answered. Raises KafkaSecurityError as soon as one refuses this
    process's settings (wrong password or user, a mechanism it does not offer, a CA that does not
    verify it), KafkaUnreachable after `timeout` seconds without an answer (with librdkafka's
    reasons: a plaintext client on a TLS listener ends here too)."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient  # type: ignore[attr-defined]

    security = current()
    errors: list[KafkaError] = []
    logged = _Collect()  # librdkafka's connection log: kept for the message, not printed on every retry
    try:
        admin = AdminClient(client_config(bootstrap, error_cb=errors.append, logger=logged))
    except KafkaException as exc:  # e.g. a CA or key file librdkafka cannot read
        raise KafkaSecurityError(f"kafka client settings ({security.describe()}): {exc}") from exc
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            metadata = admin.list_topics(timeout=0.5)
            if metadata.brokers:
                return
        except KafkaException as exc:
            last = exc
        admin.poll(0.1)  # serves error_cb
        for err in errors:
            text = err.str()
            reason = _BROKER_NAME.sub("", text).lower()
            if err.code() == KafkaError._AUTHENTICATION or any(h in reason for h in _FATAL_HINTS):
                raise KafkaSecurityError(f"kafka at {bootstrap} refused {security.describe()}: {text}")
    reasons = "; ".join(dict.fromkeys([*(e.str() for e in errors), *logged.lines[-1:]])) or str(last or "no answer")
    if not security.settings.uses_tls and "APIVERSION_QUERY" in reasons:
        reasons += f" (a TLS listener? security_protocol is {security.settings.security_protocol})"
    raise KafkaUnreachable(
        f"kafka at {bootstrap} did not answer within {timeout:.0f} s ({security.describe()}): {reasons}"
    )
