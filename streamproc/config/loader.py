"""Load the configuration from a YAML file or a directory of `*.yaml` files.

Every problem is reported as `file:line: path: message`, where path is the dotted key path
(`plans.db-critical.steps[0][1].wait`). Directories are merged by top-level key: each file
contributes entries to `users`, `teams`, … and an entry defined in two files is an error.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from streamproc.config.checks import check_references, check_templates
from streamproc.config.issues import Issue, PathT, Source, format_path
from streamproc.config.models import Config


class ConfigError(Exception):
    """Raised when a configuration cannot be loaded; `issues` says where and why."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("\n".join(str(i) for i in issues))


class _Builder:
    """Turns a composed YAML node tree into Python data, recording the line of every key."""

    def __init__(self, file: str, source: Source, issues: list[Issue]):
        self.file = file
        self.source = source
        self.issues = issues
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: PathT) -> Any:
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.constructor.construct_object(key_node, deep=True)  # type: ignore[no-untyped-call]
                if not isinstance(key, str | int | bool | float) or key is None:
                    self.issues.append(
                        Issue(self.file, key_node.start_mark.line + 1, format_path(path), "keys must be strings")
                    )
                    continue
                key = str(key) if not isinstance(key, str) else key
                sub = (*path, key)
                if key in out:
                    self.issues.append(
                        Issue(self.file, key_node.start_mark.line + 1, format_path(sub), "duplicate key")
                    )
                self.source.lines[sub] = key_node.start_mark.line + 1
                self.source.files[sub] = self.file
                out[key] = self.build(value_node, sub)
            return out
        if isinstance(node, yaml.SequenceNode):
            items = []
            for index, item in enumerate(node.value):
                sub = (*path, index)
                self.source.lines[sub] = item.start_mark.line + 1
                self.source.files[sub] = self.file
                items.append(self.build(item, sub))
            return items
        return self.constructor.construct_object(node, deep=True)  # type: ignore[no-untyped-call]


def _read(file: Path, source: Source, issues: list[Issue]) -> dict[str, Any]:
    name = str(file)
    try:
        text = file.read_text(encoding="utf-8")
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except (OSError, UnicodeDecodeError) as exc:
        issues.append(Issue(name, None, "", f"cannot read: {exc}"))
        return {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        issues.append(Issue(name, mark.line + 1 if mark else None, "", f"not valid YAML: {exc}"))
        return {}
    if node is None:
        return {}
    data = _Builder(name, source, issues).build(node, ())
    if not isinstance(data, dict):
        issues.append(Issue(name, node.start_mark.line + 1, "", "the top level must be a mapping"))
        return {}
    return data


def read_documents(path: str | Path) -> tuple[dict[str, Any], Source, list[Issue]]:
    """Read and merge YAML; returns the raw data, where each key came from, and read errors."""
    root = Path(path)
    source = Source(default_file=str(root))
    issues: list[Issue] = []
    if root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())
        if not files:
            issues.append(Issue(str(root), None, "", "no *.yaml files in this directory"))
    elif root.exists():
        files = [root]
    else:
        return {}, source, [Issue(str(root), None, "", "no such file or directory")]
    merged: dict[str, Any] = {}
    for file in files:
        file_source = Source(default_file=str(file))
        data = _read(file, file_source, issues)
        for section, value in data.items():
            if section not in merged:
                merged[section] = value
            elif isinstance(merged[section], dict) and isinstance(value, dict):
                for name, entry in value.items():
                    if name in merged[section]:
                        first = source.files.get((section, name), "?")
                        issues.append(
                            file_source.issue((section, name), f"also defined in {first}; names must be unique")
                        )
                        continue
                    merged[section][name] = entry
            else:
                issues.append(file_source.issue((section,), f"also defined in {source.files.get((section,))}"))
                continue
        for key, file_name in file_source.files.items():
            source.files.setdefault(key, file_name)
        for key, line in file_source.lines.items():
            source.lines.setdefault(key, line)
    return merged, source, issues


def _describe(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "missing":
        return "required key is missing"
    message = str(error.get("msg", "invalid"))
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if kind not in ("value_error",) and "input" in error and not isinstance(error["input"], dict | list):
        message += f" (got {error['input']!r})"
    return message


def _clean_loc(loc: tuple[Any, ...]) -> PathT:
    # pydantic adds union/function tags to locations; keep only real keys and indices.
    return tuple(p for p in loc if isinstance(p, int) or not (isinstance(p, str) and ("[" in p or p == "-")))


def validate_structure(data: dict[str, Any], source: Source) -> tuple[Config | None, list[Issue]]:
    try:
        return Config.model_validate(data), []
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            loc = _clean_loc(tuple(error["loc"]))
            issues.append(source.issue(loc, _describe(dict(error))))
        return None, issues


def check_config(path: str | Path) -> tuple[Config | None, list[Issue]]:
    """Everything `streamproc validate` reports: structure, references, templates, warnings."""

    data, source, issues = read_documents(path)
    if issues:
        return None, issues
    config, issues = validate_structure(data, source)
    if config is None:
        return None, issues
    issues = check_references(config, source) + check_templates(config, source)
    return config, issues


def load_config(path: str | Path) -> Config:
    """Load for running: structural and reference errors raise; template errors and warnings do not
    (a page that renders badly beats no page)."""

    data, source, issues = read_documents(path)
    if issues:
        raise ConfigError(issues)
    config, issues = validate_structure(data, source)
    if config is None:
        raise ConfigError(issues)
    errors = [i for i in check_references(config, source) if i.severity == "error"]
    if errors:
        raise ConfigError(errors)
    return config
