"""Problems in a configuration, located by file, line and key path (`file:line: path: message`).

Its own module so that the loader and the checks of references and templates (`checks.py`),
which the loader runs, both use it without importing each other.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

PathT = tuple[str | int, ...]


@dataclass(frozen=True)
class Issue:
    """One problem in a configuration, located by file, line and key path."""

    file: str
    line: int | None
    path: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        prefix = "" if self.severity == "error" else f"{self.severity}: "
        return f"{where}: {self.path or '<top>'}: {prefix}{self.message}"


def format_path(path: Iterable[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


@dataclass
class Source:
    """Where each key path came from: the file and the line of its key."""

    files: dict[PathT, str] = field(default_factory=dict)
    lines: dict[PathT, int] = field(default_factory=dict)
    default_file: str = ""

    def locate(self, path: PathT) -> tuple[str, int | None]:
        for cut in range(len(path), -1, -1):
            prefix = path[:cut]
            if prefix in self.lines or prefix in self.files:
                file = self._file(prefix)
                return file, self.lines.get(prefix)
        return self.default_file, None

    def _file(self, path: PathT) -> str:
        for cut in range(len(path), -1, -1):
            if path[:cut] in self.files:
                return self.files[path[:cut]]
        return self.default_file

    def issue(self, path: PathT, message: str, severity: str = "error") -> Issue:
        file, line = self.locate(path)
        return Issue(file, line, format_path(path), message, severity)
