"""Settings of `streamproc api`: the optional top-level `api:` key of the configuration.

Vendor secrets the API checks signatures with live with the vendor's other settings
(`senders.twilio.auth_token`, `senders.slack.signing_secret`): one home per secret.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from streamproc.config.senders import RateSettings, Seconds


class ApiSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    public_url: str | None = Field(
        default=None,
        description=(
            "The API's base URL as vendors call it (https://pager.example.com). Twilio signs the full URL it "
            "requested, so behind a proxy this must be set; default: the URL of the request as received."
        ),
    )
    tls_cert_file: str | None = Field(
        default=None, description="Serve HTTPS with this PEM certificate chain (needs tls_key_file)"
    )
    tls_key_file: str | None = Field(default=None, description="The PEM private key of tls_cert_file")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Larger request bodies get 413")
    rate: RateSettings = Field(
        default=RateSettings(rate=100, burst=200),
        description="Requests per second per application and replica, unless the application sets `rate`",
    )
    produce_timeout: Seconds = Field(
        default=5.0, gt=0, le=120, description="How long a write may wait for Kafka before the answer is 503"
    )
    paged_window: Seconds = Field(
        default=86400.0, description="How far back the index of who was paged for what reads (for 'claim last')"
    )
    ui_token: str | None = Field(
        default=None,
        min_length=16,
        description=(
            "The secret of the read-only status page /ui (`/ui?token=...` once, then a cookie; or "
            "`Authorization: Bearer`, or basic auth with it as the password). Unset: /ui answers 404"
        ),
    )

    @model_validator(mode="after")
    def _tls_pair(self) -> ApiSettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        return self
