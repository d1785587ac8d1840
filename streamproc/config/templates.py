"""The templates' Jinja2 sandbox and their syntax check: shared by the engine, which renders them
(`engine/render.py`), and `streamproc validate`, which checks them (`checks.py`) without depending
on the engine.
"""

from __future__ import annotations

from jinja2 import ChainableUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

FIELDS = ("subject", "body", "email_html")
"""A template entry's texts."""


def make_environment() -> SandboxedEnvironment:
    # ChainableUndefined: `{{ missing }}` and `{{ missing.deeper }}` both render empty.
    return SandboxedEnvironment(undefined=ChainableUndefined, autoescape=False, keep_trailing_newline=False)


def describe_error(exc: TemplateError) -> str:
    line = getattr(exc, "lineno", None)
    return f"{exc.message} (line {line})" if line else str(exc.message)


def compile_error(text: str) -> str | None:
    """For `streamproc validate`: the syntax error in a template text, or None."""
    try:
        make_environment().from_string(text)
    except TemplateError as exc:
        return describe_error(exc)
    return None
