"""A rich Console for tables: the terminal's width on a terminal, the table's own width otherwise.

rich renders to 80 columns when stdout is not a terminal, so `streamproc inspect incident ID | less`
(or `> file`, `| grep`) would get every wide column folded or cut to `2026-12-06T…`. Off a
terminal nothing limits the width: a table is as wide as its content (tables do not expand).
`COLUMNS` still wins when set.
"""

from __future__ import annotations

from typing import IO, Any

from streamproc.config import environment

UNLIMITED = 100_000


def table_console(file: IO[str] | None = None) -> Any:
    from rich.console import Console

    console = Console(file=file, soft_wrap=False)
    if console.is_terminal or environment.terminal_columns():
        return console
    return Console(file=file, soft_wrap=False, width=UNLIMITED)


__all__ = ["table_console"]
