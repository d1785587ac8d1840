"""`--fail-on` rules: CI gates on a what-if report. Each rule that holds gives one line saying why.

- `unpaged-incident`: an incident that pages somebody under the baseline pages nobody under the new
  config (an incident that pages nobody under both is not the change's doing);
- `render-error`: the new config has render-error messages for a (plan, subject, error) that the
  baseline rendered fine, or more of them than the baseline;
- `first-page-later:DURATION` (`5m`, `90s`, `1h`): an incident's first page comes more than
  DURATION later under the new config than under the baseline (or not at all);
- `more-pages:PERCENT` (`20%`): the new config sends more than PERCENT more pages in total.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from streamproc.config.durations import parse_duration
from streamproc.whatif.model import WhatifReport

RULE_NAMES = ("unpaged-incident", "render-error", "first-page-later", "more-pages")
_PERCENT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%?\s*$")


@dataclass(frozen=True)
class Rule:
    name: str
    value: float = 0.0
    text: str = ""


def parse_rule(text: str) -> Rule:
    name, _, arg = text.partition(":")
    name = name.strip()
    if name in ("unpaged-incident", "render-error"):
        if arg:
            raise ValueError(f"--fail-on {name} takes no argument (got {text!r})")
        return Rule(name, text=name)
    if name == "first-page-later":
        try:
            return Rule(name, float(parse_duration(arg.strip() or "0")), text)
        except ValueError:
            raise ValueError(f"--fail-on first-page-later:DURATION, e.g. first-page-later:5m (got {text!r})") from None
    if name == "more-pages":
        match = _PERCENT_RE.match(arg)
        if not match:
            raise ValueError(f"--fail-on more-pages:PERCENT, e.g. more-pages:20% (got {text!r})")
        return Rule(name, float(match.group(1)), text)
    raise ValueError(f"--fail-on: unknown rule {text!r} (one of {', '.join(RULE_NAMES)})")


def _some(items: list[str], limit: int = 5) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def check(rule: Rule, report: WhatifReport) -> str | None:
    """Why the rule holds, or None."""
    if rule.name == "unpaged-incident":
        lost = [i.incident for i in report.incidents if i.baseline is not None and i.new is None]
        if lost:
            return f"unpaged-incident: {len(lost)} incident(s) page nobody under the new config: {_some(lost)}"
        return None
    if rule.name == "render-error":
        worse = [f"{e.plan}: {e.subject} ({e.baseline} -> {e.new})" for e in report.render_errors if e.new > e.baseline]
        if worse:
            return f"render-error: {len(worse)} template(s) fail to render under the new config: {_some(worse, 3)}"
        return None
    if rule.name == "first-page-later":
        late = []
        for i in report.incidents:
            if i.baseline is None:
                continue
            if i.new is None:
                late.append(f"{i.incident} (never paged)")
            elif i.new.seconds - i.baseline.seconds > rule.value:
                late.append(f"{i.incident} (+{i.new.seconds - i.baseline.seconds:.0f}s)")
        if late:
            return (
                f"{rule.text}: {len(late)} incident(s) are first paged more than {rule.value:.0f}s later: {_some(late)}"
            )
        return None
    if rule.name == "more-pages":
        base, new = report.totals["baseline"].pages, report.totals["new"].pages
        if new > base * (1 + rule.value / 100):
            growth = f"+{100 * (new - base) / base:.1f}%" if base else "from none"
            return f"{rule.text}: {base} -> {new} pages ({growth})"
        return None
    raise AssertionError(rule.name)


def evaluate(rules: list[Rule], report: WhatifReport) -> list[str]:
    return [why for why in (check(r, report) for r in rules) if why is not None]
