"""`streamproc.config.environment` is the one reader of the environment, and docs/environment.md,
the code and the Helm chart agree with it on which variables there are."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from streamproc.config import environment
from streamproc.config.kafka import KafkaSettings

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "streamproc"
MODULE = PACKAGE / "config" / "environment.py"

NOT_MOVED_YET: dict[str, str] = {}
"""Modules that still read the environment themselves (none: keep it so)."""

ENVIRON_NAMES = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}


def environment_reads(path: Path) -> list[str]:
    """Where a module touches the process environment itself (`os.environ`, `os.getenv`, ...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ENVIRON_NAMES:
            found.append(f"{path.relative_to(REPO)}:{node.lineno}: .{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "os":
            found += [
                f"{path.relative_to(REPO)}:{node.lineno}: from os import {a.name}"
                for a in node.names
                if a.name in ENVIRON_NAMES
            ]
    return found


def test_no_module_but_the_settings_module_reads_the_environment() -> None:
    reads = [
        read
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != MODULE and str(path.relative_to(REPO)) not in NOT_MOVED_YET
        for read in environment_reads(path)
    ]
    assert reads == [], "read the environment through streamproc.config.environment"


def test_the_modules_not_moved_yet_still_read_it() -> None:
    """So the exception list shrinks as they move."""
    for name in NOT_MOVED_YET:
        assert environment_reads(REPO / name), f"{name} reads nothing now: drop it from NOT_MOVED_YET"


def test_the_settings_module_reads_it() -> None:
    assert environment_reads(MODULE)  # the check above would see a read in it


def test_the_docs_table_is_the_modules() -> None:
    page = (REPO / "docs/environment.md").read_text(encoding="utf-8")
    regenerate = ".venv/bin/python -m streamproc.config.environment --write docs/environment.md"
    assert page == environment.with_table(page), f"docs/environment.md is out of date: {regenerate}"
    assert "[environment.md](environment.md)" in (REPO / "docs/README.md").read_text(encoding="utf-8")


def named_variables(paths: list[Path]) -> dict[str, str]:
    """`STREAMPROC_*` names in the files (a name ending in `_`, as in `STREAMPROC_KAFKA_*`, is a
    family), with where each was first seen."""
    names: dict[str, str] = {}
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            for name in re.findall(r"\bSTREAMPROC_[A-Z0-9_]*", line):
                names.setdefault(name, f"{path.relative_to(REPO)}:{number}")
    return names


def test_every_variable_the_code_docs_and_chart_name_is_known() -> None:
    known = [v.name for v in environment.VARIABLES]
    assert len(known) == len(set(known))
    paths = [
        *PACKAGE.rglob("*.py"),
        *(REPO / "docs").rglob("*.md"),
        REPO / "README.md",
        *(p for p in (REPO / "helm").rglob("*") if p.is_file() and p.suffix in (".yaml", ".tpl", ".txt", ".md")),
    ]
    unknown = {
        name: where
        for name, where in named_variables(paths).items()
        if not (name in known or (name.endswith("_") and any(k.startswith(name) for k in known)))
    }
    assert unknown == {}, "add these to streamproc.config.environment (or fix the name)"


def test_every_variable_has_an_accessor_and_a_meaning() -> None:
    for variable in environment.VARIABLES:
        assert callable(getattr(environment, variable.accessor)), variable
        assert variable.meaning and variable.default, variable
    assert environment.kafka_bootstrap.__doc__ is not None
    assert environment.kafka_bootstrap.__doc__.startswith("`STREAMPROC_KAFKA` (default: `127.0.0.1:19092`).")


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in environment.VARIABLES:
        monkeypatch.delenv(variable.name, raising=False)
    return monkeypatch


def test_unset_and_empty_give_the_defaults(clean: pytest.MonkeyPatch) -> None:
    def defaults() -> tuple[object, ...]:
        e = environment
        return (
            e.kafka_bootstrap(), e.namespace(), e.partitions(), e.store(), e.session_timeout(), e.instance_id(),
            e.api_port(), e.web_bind(), e.metrics_port(), e.sender_status_port(), e.log_format(),
            e.shutdown_timeout(), e.run_dir(), e.sender_crash_after_records(), e.terminal_columns(),
            e.kafka_overrides(),
        )  # fmt: skip

    expected: tuple[object, ...] = (
        "127.0.0.1:19092", "streamproc", 12, "rocksdb", 6.0, None, 8080, "127.0.0.1", 0, 0, None, 25.0,
        Path(".run"), None, None, {},
    )  # fmt: skip
    assert defaults() == expected
    for variable in environment.VARIABLES:
        clean.setenv(variable.name, "")
    assert defaults() == expected


def test_values_are_read_when_asked_and_typed(clean: pytest.MonkeyPatch) -> None:
    clean.setenv("STREAMPROC_KAFKA", "k1:9092,k2:9092")
    clean.setenv("STREAMPROC_NAMESPACE", "blue")
    clean.setenv("STREAMPROC_PARTITIONS", "6")
    clean.setenv("STREAMPROC_SESSION_TIMEOUT", "7.5")
    clean.setenv("STREAMPROC_METRICS_PORT", "9100")
    clean.setenv("STREAMPROC_RUN_DIR", "/tmp/x")
    clean.setenv("STREAMPROC_SENDER_CRASH_AFTER_RECORDS", "5")
    clean.setenv("POD_NAME", "worker-0")
    assert environment.kafka_bootstrap() == "k1:9092,k2:9092"
    assert environment.namespace() == "blue"
    assert environment.partitions() == 6
    assert environment.session_timeout() == 7.5
    assert environment.metrics_port() == 9100
    assert environment.run_dir() == Path("/tmp/x")
    assert environment.sender_crash_after_records() == 5
    assert environment.instance_id() == "worker-0"
    clean.setenv("STREAMPROC_INSTANCE_ID", "w0")
    assert environment.instance_id() == "w0"
    clean.setenv("STREAMPROC_PARTITIONS", "six")
    with pytest.raises(ValueError):
        environment.partitions()


@pytest.mark.parametrize(("value", "seconds"), [("3", 3.0), ("0", 25.0), ("-1", 25.0), ("soon", 25.0)])
def test_shutdown_timeout_falls_back_on_what_is_not_a_positive_number(
    clean: pytest.MonkeyPatch, value: str, seconds: float
) -> None:
    clean.setenv("STREAMPROC_SHUTDOWN_TIMEOUT", value)
    assert environment.shutdown_timeout() == seconds


def test_streamproc_run_sets_its_childrens_shutdown_timeout_unless_set(clean: pytest.MonkeyPatch) -> None:
    environment.default_shutdown_timeout("8")
    assert environment.shutdown_timeout() == 8.0
    assert environment.for_children()["STREAMPROC_SHUTDOWN_TIMEOUT"] == "8"
    clean.setenv("STREAMPROC_SHUTDOWN_TIMEOUT", "3")
    environment.default_shutdown_timeout("8")
    assert environment.shutdown_timeout() == 3.0


def test_kafka_overrides_by_field_and_named_secrets() -> None:
    environ = {
        "STREAMPROC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "STREAMPROC_KAFKA_SASL_USERNAME": "",
        "STREAMPROC_KAFKA_SASL_PASSWORD_ENV": "X",  # not a variable: it would name another one
        "MY_SECRET": "s3cret",
    }
    assert environment.kafka_overrides(environ) == {"security_protocol": "SASL_SSL"}
    assert environment.named("MY_SECRET", environ) == "s3cret"
    assert environment.named("STREAMPROC_KAFKA_SASL_USERNAME", environ) is None
    assert "sasl_password_env" not in environment.KAFKA_OVERRIDE_FIELDS
    assert set(environment.KAFKA_OVERRIDE_FIELDS) == set(KafkaSettings.model_fields) - {"sasl_password_env"}
