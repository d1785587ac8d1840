"""Generated incident traffic for what-if examples and the bench (deterministic for a seed).

    python -m streamproc.whatif.traffic --days 7 --per-day 300 --out examples/whatif/week.jsonl.gz

Incidents arrive more by day than by night (UTC), each on one of the example plans; most are
claimed after a few minutes and resolved within two hours, some are never claimed and only resolved,
a few are triggered again while open (absorbed).
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import random
from collections.abc import Iterator
from typing import Any

from streamproc.timeutil import format_us, parse_time, to_us

PLANS = (("db-critical", 0.3, "critical"), ("web-critical", 0.3, "critical"), ("web-warning", 0.4, "warning"))
HOSTS = ("db01", "db02", "web01", "web02", "web03", "lb01")
US = 1_000_000


def events(
    days: int, per_day: int, seed: int = 12, start: str = "2026-03-02T00:00:00Z", application: str = "grafana"
) -> Iterator[dict[str, Any]]:
    """Events in `at` order (incident by incident; replay sorts them anyway)."""
    rng = random.Random(seed)
    t0 = to_us(parse_time(start))
    total = days * per_day
    for n in range(total):
        day = n // per_day
        # day-heavy: 3x more incidents at 14:00 than at 02:00
        while True:
            hour = rng.uniform(0, 24)
            if rng.random() < (2 - math.cos((hour - 2) / 24 * 2 * math.pi)) / 3:
                break
        at = t0 + day * 86_400 * US + int(hour * 3600 * US)
        r = rng.random()
        plan, severity = PLANS[0][0], PLANS[0][2]
        for name, share, sev in PLANS:
            if r < share:
                plan, severity = name, sev
                break
            r -= share
        incident = f"{plan.split('-')[0]}-{n:06d}"
        host = rng.choice(HOSTS)
        yield {
            "type": "trigger",
            "at": format_us(at),
            "incident_id": incident,
            "application": application,
            "plan": plan,
            "context": {"summary": f"{plan} alert on {host}", "host": host, "severity": severity},
        }
        if rng.random() < 0.05:
            yield {
                "type": "trigger",
                "at": format_us(at + rng.randint(60, 600) * US),
                "incident_id": incident,
                "application": application,
                "plan": plan,
                "context": {"summary": "again", "host": host},
            }
        resolve = at + rng.randint(20 * 60, 2 * 3600) * US
        if rng.random() < 0.8:
            claim = at + int(rng.expovariate(1 / 480) * US)
            if claim < resolve:
                yield {"type": "claim", "at": format_us(claim), "incident_id": incident, "owner": "oncall"}
        yield {"type": "resolve", "at": format_us(resolve), "incident_id": incident}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m streamproc.whatif.traffic",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--days", type=int, default=7)
    p.add_argument("--per-day", type=int, default=300, help="incidents per day")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--start", default="2026-03-02T00:00:00Z")
    p.add_argument("--out", required=True, help="JSON lines; gzip when the name ends in .gz")
    args = p.parse_args(argv)
    opener: Any = gzip.open if args.out.endswith(".gz") else open
    with opener(args.out, "wt", encoding="utf-8") as out:
        for event in events(args.days, args.per_day, args.seed, args.start):
            out.write(json.dumps(event) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
