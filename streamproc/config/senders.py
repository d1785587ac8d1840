"""Sender settings: the optional top-level `senders:` key of the configuration.

Every field has a default, so a configuration without `senders:` is valid and every mode
then goes to the `console` vendor: a stack with no credentials still runs end to end.
A secret may be written inline (`auth_token: ...`) or named by environment variable
(`auth_token_env: TWILIO_AUTH_TOKEN`) so it stays out of the file; the inline value wins.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from streamproc.config.durations import parse_duration
from streamproc.wire.common import ContactMode


def _seconds(value: Any) -> Any:
    """Durations follow the config's format (`90s`, `5m`, `7d` or seconds); floats pass as they are."""
    if isinstance(value, str):
        return parse_duration(value)
    return value


Seconds = Annotated[float, BeforeValidator(_seconds), Field(ge=0)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def secret(value: str | None, env_name: str | None) -> str | None:
    """The inline value, else the named environment variable, else None (empty counts as unset)."""
    if value:
        return value
    if env_name:
        # Imported here, not by the package's __init__: `python -m streamproc.config.environment`
        # (which writes docs/environment.md) then runs that module once, as __main__ only.
        from streamproc.config import environment

        return environment.named(env_name)
    return None


class RateSettings(_Strict):
    """A cluster-wide token bucket: `rate` messages per second, up to `burst` at once.
    Each worker takes the share of its partitions (see `ratelimit.py`)."""

    rate: float = Field(gt=0, description="messages per second, across the whole cluster")
    burst: int = Field(default=1, ge=1, description="bucket size, across the whole cluster")


class TwilioSettings(_Strict):
    account_sid: str | None = None
    account_sid_env: str | None = None
    auth_token: str | None = None
    auth_token_env: str | None = None
    from_number: str | None = None
    base_url: str | None = Field(
        default=None, description="Send API calls here instead of https://api.twilio.com (tests, proxies)"
    )
    gather_url: str | None = Field(
        default=None,
        description="Voice: where Twilio posts the key pressed to claim (the relay's gather URL)",
    )
    status_callback_url: str | None = Field(default=None, description="Twilio delivery status callbacks")
    timeout: float = Field(default=10.0, gt=0)
    rate: RateSettings | None = Field(default=None, description="Account-wide limit shared by sms and call")

    def resolved_auth_token(self) -> str | None:
        """The auth token alone: what the API needs to verify Twilio's request signatures."""
        return secret(self.auth_token, self.auth_token_env)

    def credentials(self) -> tuple[str, str, str] | None:
        """(account_sid, auth_token, from_number), or None when any is missing."""
        sid = secret(self.account_sid, self.account_sid_env)
        token = secret(self.auth_token, self.auth_token_env)
        if sid and token and self.from_number:
            return sid, token, self.from_number
        return None


class SlackSettings(_Strict):
    token: str | None = None
    token_env: str | None = None
    signing_secret: str | None = Field(
        default=None, description="Verifies button presses (interactivity requests) at the API"
    )
    signing_secret_env: str | None = None
    base_url: str | None = Field(default=None, description="Default https://slack.com/api/")
    timeout: float = Field(default=10.0, gt=0)
    rate: RateSettings | None = None

    def resolved_token(self) -> str | None:
        return secret(self.token, self.token_env)

    def resolved_signing_secret(self) -> str | None:
        return secret(self.signing_secret, self.signing_secret_env)


class SmtpSettings(_Strict):
    host: str | None = None
    port: int = Field(default=25, ge=1, le=65535)
    starttls: bool = False
    ca_file: str | None = Field(default=None, description="CA bundle to verify the server (private relays)")
    username: str | None = None
    password: str | None = None
    password_env: str | None = None
    from_: str = Field(default="streamproc@localhost", alias="from")
    timeout: float = Field(default=10.0, gt=0)
    rate: RateSettings | None = None

    def resolved_password(self) -> str | None:
        return secret(self.password, self.password_env)


class WebhookSettings(_Strict):
    secret: str | None = None
    secret_env: str | None = None
    timeout: float = Field(default=5.0, gt=0)
    rate: RateSettings | None = None

    def resolved_secret(self) -> str | None:
        return secret(self.secret, self.secret_env)


class RetrySettings(_Strict):
    """Temporary failures retry after min(max_delay, base_delay * 2**(attempt-1)), reduced by a
    random fraction up to `jitter` (1.0 = full jitter, 0 = none)."""

    max_attempts: int = Field(default=4, ge=1, le=100)
    base_delay: Seconds = 1.0
    max_delay: Seconds = 60.0
    jitter: float = Field(default=1.0, ge=0, le=1)


DEFAULT_RATES: dict[ContactMode, RateSettings] = {
    "call": RateSettings(rate=1, burst=5),
    "sms": RateSettings(rate=10, burst=20),
    "email": RateSettings(rate=10, burst=20),
    "slack": RateSettings(rate=1, burst=5),
    "webhook": RateSettings(rate=20, burst=40),
}


class SendersSettings(_Strict):
    twilio: TwilioSettings = Field(default_factory=TwilioSettings)
    slack: SlackSettings = Field(default_factory=SlackSettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    rates: dict[ContactMode, RateSettings] = Field(
        default_factory=dict, description="Cluster-wide rate per mode; modes not listed keep DEFAULT_RATES"
    )
    retry: RetrySettings = Field(default_factory=RetrySettings)
    dedupe_window: Seconds = Field(
        default=86400.0, description="How far back delivered message ids are remembered (and re-read)"
    )
    concurrency: int = Field(default=4, ge=1, le=256, description="Vendor calls in flight per mode and worker")
    max_queued: int = Field(default=10000, ge=10, description="Queued messages per mode before pausing intake")
    session_timeout: Seconds = Field(
        default=20.0,
        ge=1,
        description="Kafka group session timeout: how soon a dead sender's partitions move on. Keep it above "
        "how long the cluster takes to replace a lost broker (broker.session.timeout.ms, 9 s by default, plus a "
        "controller election): below that, losing the broker that coordinates the group makes every sender "
        "drop its partitions and wait out a rebalance (docs/production-kafka.md)",
    )

    @model_validator(mode="after")
    def _fill_rates(self) -> SendersSettings:
        merged = dict(DEFAULT_RATES)
        merged.update(self.rates)
        object.__setattr__(self, "rates", merged)
        return self

    def rate_for(self, mode: str) -> RateSettings:
        for name, rate in self.rates.items():
            if name == mode:
                return rate
        return RateSettings(rate=10, burst=10)
