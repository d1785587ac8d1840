"""Kafka security settings: config section and STREAMPROC_KAFKA_* environment -> client arguments."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from streamproc.config import ConfigError, load_config
from streamproc.config.kafka import KafkaSettings
from streamproc.kafka import security
from streamproc.kafka.clients import consumer_config, producer_config

SASL = {"security_protocol": "SASL_SSL", "sasl_mechanism": "SCRAM-SHA-256", "sasl_username": "svc"}


def test_plaintext_by_default_and_without_anything_set() -> None:
    resolved = security.resolve(None, environ={})
    assert resolved.confluent() == {"security.protocol": "PLAINTEXT"}
    assert resolved.faust_settings() == {}
    assert resolved.ssl_context() is None


def test_config_section_becomes_librdkafka_keys(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("from-file\n")
    settings = KafkaSettings(
        **SASL, sasl_password_file=str(password), ssl_ca_file="/ca.pem", ssl_cert_file="/c.pem", ssl_key_file="/c.key"
    )
    assert security.resolve(settings, environ={}).confluent() == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "svc",
        "sasl.password": "from-file",
        "ssl.ca.location": "/ca.pem",
        "ssl.certificate.location": "/c.pem",
        "ssl.key.location": "/c.key",
        "ssl.endpoint.identification.algorithm": "https",
    }


def test_password_sources_in_order() -> None:
    env = {"PW": "from-env"}
    assert (
        security.resolve(KafkaSettings(**SASL, sasl_password="inline", sasl_password_env="PW"), env).password
        == "inline"
    )
    assert security.resolve(KafkaSettings(**SASL, sasl_password_env="PW"), env).password == "from-env"
    with pytest.raises(security.KafkaSecurityError, match="environment variable PW is not set"):
        security.resolve(KafkaSettings(**SASL, sasl_password_env="PW"), {})
    with pytest.raises(security.KafkaSecurityError, match="needs a password"):
        security.resolve(KafkaSettings(**SASL), {})
    with pytest.raises(security.KafkaSecurityError, match=r"sasl_password_file: .*missing"):
        security.resolve(KafkaSettings(**SASL, sasl_password_file="/nonexistent/missing"), {})


def test_environment_overrides_the_config_field_by_field() -> None:
    settings = KafkaSettings(**SASL, sasl_password="config-pw", ssl_ca_file="/config-ca.pem")
    env = {
        "STREAMPROC_KAFKA_SASL_PASSWORD": "env-pw",
        "STREAMPROC_KAFKA_SASL_MECHANISM": "PLAIN",
        "STREAMPROC_KAFKA_SSL_CHECK_HOSTNAME": "false",
    }
    conf = security.resolve(settings, env).confluent()
    assert conf["sasl.password"] == "env-pw"
    assert conf["sasl.mechanism"] == "PLAIN"
    assert conf["sasl.username"] == "svc"  # kept from the config
    assert conf["ssl.ca.location"] == "/config-ca.pem"
    assert conf["ssl.endpoint.identification.algorithm"] == "none"


def test_environment_alone_is_enough(tmp_path: Path) -> None:
    password = tmp_path / "pw"
    password.write_text("s3")
    env = {
        "STREAMPROC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "STREAMPROC_KAFKA_SASL_USERNAME": "u",
        "STREAMPROC_KAFKA_SASL_PASSWORD_FILE": str(password),
    }
    resolved = security.resolve(None, env)
    assert resolved.confluent() == {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "u",
        "sasl.password": "s3",
    }
    credentials = resolved.faust_settings()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password, credentials.mechanism.value, credentials.protocol.value) == (
        "u",
        "s3",
        "SCRAM-SHA-512",
        "SASL_PLAINTEXT",
    )


def test_faust_gets_sasl_over_tls_with_a_verifying_context() -> None:
    resolved = security.resolve(KafkaSettings(**SASL, sasl_password="pw"), {})
    credentials = resolved.faust_settings()["broker_credentials"]
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.ssl_context is not None
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED and credentials.ssl_context.check_hostname
    tls_only = security.resolve(KafkaSettings(security_protocol="SSL"), {}).faust_settings()["broker_credentials"]
    assert isinstance(tls_only, faust.SSLCredentials)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"security_protocol": "SASL_SSL"}, "needs sasl_username"),
        ({"ssl_ca_file": "/ca.pem"}, "ssl_ca_file need security_protocol SSL or SASL_SSL"),
        ({"security_protocol": "SSL", "ssl_cert_file": "/c.pem"}, "ssl_cert_file and ssl_key_file go together"),
        ({"sasl_username": "u"}, "sasl_username need security_protocol SASL_PLAINTEXT or SASL_SSL"),
        ({"security_protocol": "TLS"}, "security_protocol"),
    ],
)
def test_inconsistent_settings_are_named(fields: dict[str, str], message: str) -> None:
    env = {f"STREAMPROC_KAFKA_{k.upper()}": v for k, v in fields.items()}
    with pytest.raises(security.KafkaSecurityError, match=message) as caught:
        security.resolve(None, env)
    assert "STREAMPROC_KAFKA_" in str(caught.value)  # says where the values came from


def test_missing_tls_file_is_named() -> None:
    resolved = security.resolve(KafkaSettings(security_protocol="SSL", ssl_ca_file="/nonexistent/ca.pem"), {})
    with pytest.raises(security.KafkaSecurityError, match="kafka TLS files"):
        resolved.faust_settings()


def test_every_client_config_carries_the_process_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_active", security.resolve(KafkaSettings(**SASL, sasl_password="pw"), {}))
    for conf in (producer_config("b:1"), consumer_config("b:1", "g"), security.client_config("b:1", x=1)):
        assert conf["bootstrap.servers"] == "b:1"
        assert conf["security.protocol"] == "SASL_SSL"
        assert conf["sasl.password"] == "pw"
    assert producer_config("b:1", partitioner="random")["partitioner"] == "random"


def test_config_file_has_a_kafka_section(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("kafka:\n  security_protocol: SASL_SSL\n  sasl_username: svc\n  sasl_password_env: KPW\n")
    assert load_config(str(path)).kafka.sasl_password_env == "KPW"
    path.write_text("kafka:\n  security_protocol: SASL_SSL\n  sasl_user: svc\n")
    with pytest.raises(ConfigError, match="sasl_user"):
        load_config(str(path))


def test_unreadable_files_are_named_before_any_connection(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(security, "_active", None)
    with pytest.raises(security.KafkaSecurityError, match="kafka TLS files"):
        security.configure(KafkaSettings(security_protocol="SSL", ssl_ca_file=str(tmp_path / "missing.pem")))
    monkeypatch.setattr(
        security,
        "_active",
        security.resolve(KafkaSettings(security_protocol="SSL", ssl_ca_file=str(tmp_path / "missing.pem")), {}),
    )
    with pytest.raises(security.KafkaSecurityError, match="kafka client settings"):
        security.check_access("127.0.0.1:1", timeout=1)


def test_a_broker_that_is_not_there_is_unreachable_not_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """librdkafka names brokers "sasl_ssl://host:port/bootstrap": a refused connection is not a TLS problem."""
    from streamproc.localnet import free_port

    monkeypatch.setattr(security, "_active", security.resolve(KafkaSettings(**SASL, sasl_password="pw"), {}))
    with pytest.raises(security.KafkaUnreachable, match="did not answer within 2 s"):
        security.check_access(f"127.0.0.1:{free_port()}", timeout=2)
