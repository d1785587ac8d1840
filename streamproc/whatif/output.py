"""The what-if report as terminal tables (rich) and as a self-contained HTML page (plotly, JS inlined)."""

from __future__ import annotations

import html
from typing import IO, Any

from streamproc.termtable import table_console
from streamproc.whatif.model import IncidentDiff, Pair, WhatifReport

MAX_ROWS = 20


def _delta(pair: Pair) -> str:
    d = pair.new - pair.baseline
    return f"{d:+d}" if d else "0"


def _secs(value: float | None) -> str:
    if value is None:
        return "-"
    m, s = divmod(round(value), 60)
    return f"{m}m{s:02d}s" if m else f"{s}s"


def changed_incidents(report: WhatifReport) -> list[IncidentDiff]:
    """Incidents whose first page (time or person) or page count differs."""
    out = []
    for i in report.incidents:
        b, n = i.baseline, i.new
        if (
            (b is None) != (n is None)
            or i.pages.baseline != i.pages.new
            or (b is not None and n is not None and (b.seconds != n.seconds or b.user != n.user))
        ):
            out.append(i)
    return out


def print_tables(report: WhatifReport, out: IO[str], rules: list[str]) -> None:
    from rich.markup import escape
    from rich.table import Table as RichTable

    class Table(RichTable):
        def add_row(self, *cells: Any, **kwargs: Any) -> None:  # values are text, never markup
            super().add_row(*(escape(str(c)) for c in cells), **kwargs)

    console = table_console(out)  # the terminal's width, or the tables' own in a pipe
    base, new = report.totals["baseline"], report.totals["new"]
    console.print(
        f"what-if: {report.baseline_config} (baseline) vs {report.new_config} (new), "
        f"{report.events} events from {report.source}; times of day in {report.timezone}",
        markup=False,
    )
    t = Table(title="Totals")
    for col in ("", "baseline", "new", "change"):
        t.add_column(col, justify="left" if not col else "right")
    for label, name in (
        ("pages", "pages"),
        (f"night pages ({report.night})", "night_pages"),
        ("paged incidents", "paged_incidents"),
        ("incidents paging nobody", "unpaged_incidents"),
        ("render errors", "render_errors"),
        ("undeliverable", "undeliverable"),
        ("dropped", "dropped"),
        ("silenced incidents", "silenced_incidents"),
    ):
        pair = Pair(baseline=getattr(base, name), new=getattr(new, name))
        t.add_row(label, str(pair.baseline), str(pair.new), _delta(pair))
    console.print(t)

    def pairs_table(title: str, rows: dict[str, Pair], night: dict[str, Pair] | None = None) -> None:
        table = Table(title=escape(title))
        table.add_column("")
        for col in ("baseline", "new", "change"):
            table.add_column(col, justify="right")
        if night is not None:
            for col in ("night baseline", "night new"):
                table.add_column(col, justify="right")
        for key, pair in rows.items():
            extra = [] if night is None else [str(night.get(key, Pair()).baseline), str(night.get(key, Pair()).new)]
            table.add_row(key, str(pair.baseline), str(pair.new), _delta(pair), *extra)
        console.print(table)

    pairs_table("Pages per user", report.pages_by_user, report.night_pages_by_user)
    pairs_table("Pages per mode", report.pages_by_mode)
    pairs_table(
        f"Pages per hour of day ({report.timezone})",
        {f"{h:02d}:00": p for h, p in enumerate(report.pages_by_hour) if p.baseline or p.new},
    )

    changed = changed_incidents(report)
    t = Table(
        title=f"Incidents whose paging changed: {len(changed)} of {len(report.incidents)}"
        + (f" (first {MAX_ROWS})" if len(changed) > MAX_ROWS else "")
    )
    for col in ("incident", "plan", "first page (baseline)", "first page (new)", "pages"):
        t.add_column(col)
    for i in changed[:MAX_ROWS]:
        b = f"{_secs(i.baseline.seconds)} {i.baseline.user}" if i.baseline else "nobody"
        n = f"{_secs(i.new.seconds)} {i.new.user}" if i.new else "nobody"
        t.add_row(i.incident, i.plan, b, n, f"{i.pages.baseline} -> {i.pages.new}")
    console.print(t)
    if report.render_errors:
        t = Table(title="Render errors")
        for col in ("plan", "subject", "error", "baseline", "new"):
            t.add_column(col)
        for e in report.render_errors:
            t.add_row(e.plan, e.subject, e.error, str(e.baseline), str(e.new))
        console.print(t)
    moved = [u for u in report.undeliverable if u.baseline != u.new]
    if moved:
        t = Table(title="Undeliverable outcomes that appear or disappear")
        for col in ("user", "reason", "baseline", "new"):
            t.add_column(col)
        for u in moved:
            t.add_row(u.user, u.reason, str(u.baseline), str(u.new))
        console.print(t)
    for why in rules:
        console.print(f"FAIL {why}", style="bold red", markup=False)


def _figures(report: WhatifReport) -> list[tuple[str, Any]]:
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    figures: list[tuple[str, Any]] = []
    totals = {u: p.baseline + p.new for u, p in report.pages_by_user.items()}
    users = sorted(totals, key=lambda u: (-totals[u], u))
    days = sorted({d for per in report.pages_by_user_day.values() for d in per})
    over_time = make_subplots(
        rows=2, cols=1, shared_xaxes=True, shared_yaxes=True, vertical_spacing=0.08, subplot_titles=("baseline", "new")
    )
    palette = [
        "#1f77b4",
        "#ff7f0e",
        "#2ca02c",
        "#d62728",
        "#9467bd",
        "#8c564b",
        "#e377c2",
        "#7f7f7f",
        "#bcbd22",
        "#17becf",
    ]
    for n, user in enumerate(users):
        per = report.pages_by_user_day.get(user, {})
        color = palette[n % len(palette)]
        for row, side in ((1, "baseline"), (2, "new")):
            over_time.add_trace(
                go.Scatter(
                    x=days,
                    y=[getattr(per.get(d, Pair()), side) for d in days],
                    name=user,
                    legendgroup=user,
                    showlegend=row == 1,
                    mode="lines+markers",
                    line={"color": color},
                ),
                row=row,
                col=1,
            )
    over_time.update_layout(title=f"Pages per person per day ({report.timezone})", height=620)
    figures.append(("pages-over-time", over_time))

    ttfp = go.Figure()
    for side in ("baseline", "new"):
        minutes = [getattr(i, side).seconds / 60 for i in report.incidents if getattr(i, side) is not None]
        ttfp.add_trace(go.Histogram(x=minutes, name=side, opacity=0.6, nbinsx=40))
    ttfp.update_layout(
        barmode="overlay",
        title="Time to first page (minutes, per incident)",
        xaxis_title="minutes",
        yaxis_title="incidents",
        height=420,
    )
    figures.append(("time-to-first-page", ttfp))

    hours = go.Figure()
    for side in ("baseline", "new"):
        hours.add_trace(
            go.Bar(x=[f"{h:02d}" for h in range(24)], y=[getattr(p, side) for p in report.pages_by_hour], name=side)
        )
    hours.update_layout(barmode="group", title=f"Pages per hour of day ({report.timezone})", height=420)
    figures.append(("pages-by-hour", hours))

    per_user = go.Figure()
    for side in ("baseline", "new"):
        per_user.add_trace(go.Bar(x=users, y=[getattr(report.pages_by_user[u], side) for u in users], name=side))
    per_user.update_layout(barmode="group", title="Pages per person", height=420)
    figures.append(("pages-by-user", per_user))
    return figures


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.fail { color: #b00; font-weight: bold; }
.chart { margin: 1em 0; }
"""


def _table(head: list[str], rows: list[list[str]]) -> str:
    e = html.escape
    out = ["<table><tr>", *(f"<th>{e(h)}</th>" for h in head), "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def write_html(report: WhatifReport, path: str, rules: list[str]) -> None:
    import plotly.io as pio

    e = html.escape
    base, new = report.totals["baseline"], report.totals["new"]
    parts = [
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>streamproc what-if</title>"
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>What-if: {e(report.baseline_config)} &rarr; {e(report.new_config)}</h1>",
        f"<p>{report.events} events from {e(report.source)}, triggers from {report.first_trigger} to "
        f"{report.last_trigger}. Times of day in {e(report.timezone)}; night is {report.night}.</p>",
    ]
    parts += [f"<p class='fail'>FAIL {e(why)}</p>" for why in rules]
    rows = [
        [label, str(getattr(base, n)), str(getattr(new, n))]
        for label, n in (
            ("pages", "pages"),
            ("night pages", "night_pages"),
            ("paged incidents", "paged_incidents"),
            ("incidents paging nobody", "unpaged_incidents"),
            ("render errors", "render_errors"),
            ("undeliverable", "undeliverable"),
            ("dropped", "dropped"),
            ("silenced incidents", "silenced_incidents"),
        )
    ]
    parts.append("<h2>Totals</h2>" + _table(["", "baseline", "new"], rows))
    for n, (name, figure) in enumerate(_figures(report)):
        div = pio.to_html(
            figure, full_html=False, include_plotlyjs=(n == 0), div_id=name, config={"displaylogo": False}
        )
        parts.append(f"<div class='chart' id='chart-{name}'>{div}</div>")
    parts.append(
        "<h2>Pages per person</h2>"
        + _table(
            ["user", "baseline", "new", "night baseline", "night new"],
            [
                [
                    u,
                    str(p.baseline),
                    str(p.new),
                    str(report.night_pages_by_user.get(u, Pair()).baseline),
                    str(report.night_pages_by_user.get(u, Pair()).new),
                ]
                for u, p in report.pages_by_user.items()
            ],
        )
    )
    parts.append(
        "<h2>Pages per mode</h2>"
        + _table(
            ["mode", "baseline", "new"], [[m, str(p.baseline), str(p.new)] for m, p in report.pages_by_mode.items()]
        )
    )
    changed = changed_incidents(report)
    parts.append(
        f"<h2>Incidents whose paging changed ({len(changed)} of {len(report.incidents)})</h2>"
        + _table(
            ["incident", "plan", "first page (baseline)", "first page (new)", "pages"],
            [
                [
                    i.incident,
                    i.plan,
                    f"{_secs(i.baseline.seconds)} {i.baseline.user}" if i.baseline else "nobody",
                    f"{_secs(i.new.seconds)} {i.new.user}" if i.new else "nobody",
                    f"{i.pages.baseline} -> {i.pages.new}",
                ]
                for i in changed[:200]
            ],
        )
    )
    if report.render_errors:
        parts.append(
            "<h2>Render errors</h2>"
            + _table(
                ["plan", "subject", "error", "baseline", "new"],
                [[r.plan, r.subject, r.error, str(r.baseline), str(r.new)] for r in report.render_errors],
            )
        )
    if report.undeliverable:
        parts.append(
            "<h2>Undeliverable</h2>"
            + _table(
                ["user", "reason", "baseline", "new"],
                [[u.user, u.reason, str(u.baseline), str(u.new)] for u in report.undeliverable],
            )
        )
    parts.append("</body></html>")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(parts))
