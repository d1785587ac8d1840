"""Kafka connection and topic settings: the optional top-level `kafka:` key of the configuration.

Topics: `replication_factor` and `min_insync_replicas` of the topics streamproc creates
(`streamproc/kafka/admin.py`; unset: the cluster's defaults).

TLS (a CA file, optionally a client certificate and key) and SASL (PLAIN, SCRAM-SHA-256,
SCRAM-SHA-512) for every client of a process: the worker's aiokafka consumer and producer and
every confluent-kafka producer, consumer and admin client. The password may be written inline,
named by environment variable (`sasl_password_env`) or read from a file (`sasl_password_file`,
e.g. a mounted Kubernetes Secret); the first one set wins. `STREAMPROC_KAFKA_*` environment
variables override these settings field by field, and work without any configuration file
(`streamproc/kafka/security.py`, where the settings become client arguments).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"]


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    security_protocol: SecurityProtocol = Field(
        default="PLAINTEXT", description="How clients talk to the brokers (as Kafka's `security.protocol`)"
    )
    sasl_mechanism: SaslMechanism = Field(
        default="SCRAM-SHA-512", description="SASL mechanism (SASL_PLAINTEXT and SASL_SSL only)"
    )
    sasl_username: str | None = Field(default=None, description="SASL user (required with SASL)")
    sasl_password: str | None = Field(default=None, description="SASL password, inline (prefer _env or _file)")
    sasl_password_env: str | None = Field(default=None, description="Name of an environment variable with the password")
    sasl_password_file: str | None = Field(
        default=None, description="File holding the password (one trailing newline is ignored)"
    )
    ssl_ca_file: str | None = Field(
        default=None, description="PEM CA bundle that verifies the brokers (default: the system's)"
    )
    ssl_cert_file: str | None = Field(default=None, description="PEM client certificate (mutual TLS)")
    ssl_key_file: str | None = Field(default=None, description="PEM private key of ssl_cert_file (unencrypted)")
    ssl_check_hostname: bool = Field(
        default=True, description="Verify that the broker's certificate names the host connected to"
    )
    replication_factor: int | None = Field(
        default=None,
        ge=1,
        le=32767,
        description="Replication factor of the topics streamproc creates, and the least it accepts on existing "
        "ones (default: the cluster's default.replication.factor; 3 in production)",
    )
    min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        le=32767,
        description="min.insync.replicas of the topics streamproc creates (default: the cluster's; 2 with "
        "replication 3)",
    )

    @property
    def uses_sasl(self) -> bool:
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        return self.security_protocol in ("SSL", "SASL_SSL")

    @model_validator(mode="after")
    def _consistent(self) -> KafkaSettings:
        if (
            self.replication_factor is not None
            and self.min_insync_replicas is not None
            and self.min_insync_replicas > self.replication_factor
        ):
            raise ValueError(
                f"min_insync_replicas ({self.min_insync_replicas}) cannot exceed replication_factor "
                f"({self.replication_factor}): no write could succeed"
            )
        if (self.ssl_cert_file is None) != (self.ssl_key_file is None):
            raise ValueError("ssl_cert_file and ssl_key_file go together")
        tls_files = [n for n in ("ssl_ca_file", "ssl_cert_file", "ssl_key_file") if getattr(self, n)]
        if tls_files and not self.uses_tls:
            raise ValueError(
                f"{', '.join(tls_files)} need security_protocol SSL or SASL_SSL (it is {self.security_protocol})"
            )
        sasl_fields = [
            n for n in ("sasl_username", "sasl_password", "sasl_password_env", "sasl_password_file") if getattr(self, n)
        ]
        if self.uses_sasl and not self.sasl_username:
            raise ValueError(f"security_protocol {self.security_protocol} needs sasl_username")
        if sasl_fields and not self.uses_sasl:
            raise ValueError(
                f"{', '.join(sasl_fields)} need security_protocol SASL_PLAINTEXT or SASL_SSL "
                f"(it is {self.security_protocol})"
            )
        return self
