"""What a person may type in an SMS reply, and how answers list the incidents acted on.

Why a file of its own: the command language is the one part of the replies a user learns by
heart; it is pure text handling, tested apart from any vendor.

    claim <id>      <id> claim       claims the incident, owner = the replying user
    unclaim <id>    <id> unclaim     unclaims it
    resolve <id>    <id> resolve     resolves it
    claim last                       the open incident that paged this user most recently
    claim all                        every open incident that paged this user

Case-insensitive; quotes and punctuation around the words are ignored. `resolve all` and
`unclaim last` are refused (too easy to send by mistake): they get the help text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Verb = Literal["claim", "unclaim", "resolve"]
VERBS: tuple[Verb, ...] = ("claim", "unclaim", "resolve")
_VERB: dict[str, Verb] = {verb: verb for verb in VERBS}
HELP = "Reply 'claim <id>' (or '<id> claim'), 'claim last', 'claim all', 'unclaim <id>' or 'resolve <id>'."
_QUOTES = "'\"`\u2018\u2019\u201c\u201d.,;:!?()[]<>"


@dataclass(frozen=True)
class Command:
    verb: Verb
    target: str
    """An incident id (or a page's message id), or `all` / `last` (claim only)."""


def parse_command(text: str) -> Command | None:
    """`claim inc-1`, `inc-1 claim`, `CLAIM ALL`, `claim last`, `unclaim inc-1`, `resolve inc-1`, ..."""
    words = [w.strip(_QUOTES) for w in text.split()]
    words = [w for w in words if w]
    if len(words) != 2:
        return None
    first, second = words
    verb = _VERB.get(first.lower())
    target = second
    if verb is None:
        verb, target = _VERB.get(second.lower()), first
    if verb is None:
        return None
    if target.lower() in ("all", "last"):
        if verb != "claim":
            return None  # 'resolve all' is too easy to send by mistake
        target = target.lower()
    return Command(verb, target)


def listing(ids: list[str], limit: int = 40) -> str:
    """`a, b, c` (the first `limit`, then `and N more`), for an answer that names incidents."""
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")
