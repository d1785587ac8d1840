"""Template lookup and sandboxed Jinja2 rendering (spec §3 Templates).

A template that is missing, does not compile, or raises still yields a message with
`render_error: true`: a page that renders badly beats no page.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from jinja2 import Template, TemplateError, Undefined, nodes

from streamproc.config.models import Config, TemplateEntry
from streamproc.config.templates import FIELDS, describe_error, make_environment

VARYING = ("step", "priority", "role", "target", "user")
"""The `incident` variables that differ between sends of one instance (`mode` picks the entry)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str
    email_html: str | None
    render_error: bool


class Renderer:
    """Compiles each template text once; renders per message."""

    def __init__(self, config: Config):
        self._templates = config.templates
        self._env = make_environment()
        self._compiled: dict[str, Template | TemplateError] = {}
        self._globals = dict(self._env.globals)
        self._simple: dict[str, list[str | tuple[str, ...]] | None] = {}
        self._prepared: dict[tuple[str, str, str], _Prepared] = {}

    def lookup(self, template: str, application: str, mode: str) -> TemplateEntry | None:
        """`[application][mode]`, then `[application]["default"]`, then `["default"][mode]`,
        then `["default"]["default"]`."""
        by_app = self._templates.get(template)
        if by_app is None:
            return None
        order = ((application, mode), (application, "default"), ("default", mode), ("default", "default"))
        for app_key, mode_key in order:
            entry = by_app.get(app_key, {}).get(mode_key)
            if entry is not None:
                return entry
        return None

    def _compile(self, text: str) -> Template | TemplateError:
        compiled = self._compiled.get(text)
        if compiled is None:
            try:
                compiled = self._env.from_string(text)
                self._simple[text] = _simple_parts(self._env.parse(text))
            except TemplateError as exc:
                compiled = exc
            self._compiled[text] = compiled
        return compiled

    def _render_text(self, text: str, compiled: Template, variables: dict[str, Any]) -> str:
        parts = self._simple.get(text)
        if parts is not None:
            # Plain text and `{{ name.attr }}` only: look the values up the way Jinja does
            # (sandboxed getattr, undefined renders empty) without building a Jinja context.
            out: list[str] = []
            for part in parts:
                if isinstance(part, str):
                    out.append(part)
                    continue
                value: Any = variables.get(part[0], _MISSING)
                if value is _MISSING:
                    value = self._globals.get(part[0], _MISSING)
                if value is _MISSING:
                    continue
                for attr in part[1:]:
                    if type(value) is dict and attr not in _DICT_ATTRS:
                        # What the sandbox's getattr does for a plain dict and a name that is not
                        # one of its methods: the item, or undefined.
                        value = value.get(attr, _MISSING)
                        if value is _MISSING:
                            break
                        continue
                    value = self._env.getattr(value, attr)
                    if isinstance(value, Undefined):
                        break
                if value is not _MISSING and not isinstance(value, Undefined):
                    out.append(str(value))
            return "".join(out)
        # Equivalent to compiled.render(variables) without copying the globals per call.
        context = compiled.new_context({**self._globals, **variables}, shared=True)
        return "".join(compiled.root_render_func(context))

    def _prepare(self, template: str, application: str, mode: str) -> _Prepared:
        """The entry's fields compiled, and which of `VARYING` the texts can depend on."""
        key = (template, application, mode)
        prepared = self._prepared.get(key)
        if prepared is not None:
            return prepared
        entry = self.lookup(template, application, mode)
        if entry is None:
            prepared = _Prepared(
                f"template {template!r} has no entry for application {application!r} and mode {mode!r}",
                (),
                (False,) * len(VARYING),
            )
        else:
            fields = []
            uses: set[str] = set()
            for name in FIELDS:
                text = getattr(entry, name)
                compiled = self._compile(text) if text is not None else None
                fields.append((name, text, compiled))
                if isinstance(compiled, Template):
                    uses |= _uses(self._simple.get(text or ""))
            prepared = _Prepared(None, tuple(fields), tuple(v in uses for v in VARYING))
        self._prepared[key] = prepared
        return prepared

    def varying(self, template: str, application: str, mode: str) -> tuple[bool, ...]:
        """For each of `VARYING`, whether the rendered text can depend on it. Sends of one instance
        that agree on these (and the mode) get the same text, so the engine renders once for them."""
        return self._prepare(template, application, mode).varying

    def render(self, template: str, application: str, mode: str, variables: dict[str, Any]) -> Rendered:
        prepared = self._prepare(template, application, mode)
        if prepared.missing is not None:
            return _error(template, prepared.missing, variables)
        out: dict[str, str | None] = {}
        for name, text, compiled in prepared.fields:
            if text is None or compiled is None:
                out[name] = None
                continue
            if isinstance(compiled, TemplateError):
                return _error(template, f"{name} does not compile: {describe_error(compiled)}", variables)
            try:
                out[name] = self._render_text(text, compiled, variables)
            except Exception as exc:  # any error inside a template still pages
                return _error(template, f"{name} raised {type(exc).__name__}: {exc}", variables)
        return Rendered(out["subject"] or "", out["body"] or "", out["email_html"], False)


_MISSING = object()
_DICT_ATTRS = frozenset(dir(dict))


@dataclass(frozen=True)
class _Prepared:
    missing: str | None
    """Why there is no entry for the template, application and mode."""
    fields: tuple[tuple[str, str | None, Template | TemplateError | None], ...]
    varying: tuple[bool, ...]


def _uses(parts: list[str | tuple[str, ...]] | None) -> set[str]:
    """The `VARYING` names a template's parts read (`incident.user`, `iris.step`); all of them for
    a template that is not simple or reads `incident` as a whole."""
    if parts is None:
        return set(VARYING)
    uses: set[str] = set()
    for part in parts:
        if isinstance(part, tuple) and part[0] in ("incident", "iris"):
            if len(part) == 1:
                return set(VARYING)
            uses.add(part[1])
    return uses


def _path(node: nodes.Node) -> tuple[str, ...] | None:
    if isinstance(node, nodes.Name) and node.ctx == "load":
        return (node.name,)
    if isinstance(node, nodes.Getattr):
        inner = _path(node.node)
        return (*inner, node.attr) if inner is not None else None
    return None


def _simple_parts(tree: nodes.Template) -> list[str | tuple[str, ...]] | None:
    """A template made only of text and `{{ a }}` / `{{ a.b.c }}` outputs, as parts; else None."""
    parts: list[str | tuple[str, ...]] = []
    for node in tree.body:
        if not isinstance(node, nodes.Output):
            return None
        for child in node.nodes:
            if isinstance(child, nodes.TemplateData):
                parts.append(child.data)
                continue
            path = _path(child)
            if path is None:
                return None
            parts.append(path)
    return parts


def _error(template: str, problem: str, variables: dict[str, Any]) -> Rendered:
    context = {k: v for k, v in variables.items() if k not in ("incident", "iris")}
    body = f"Template error: {problem}\nContext: {json.dumps(context, sort_keys=True, default=str)}"
    return Rendered(f"[streamproc] template {template!r} failed to render", body, None, True)
