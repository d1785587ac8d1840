"""docs/metrics-and-logs.md's metrics table, the metrics the processes define and the Grafana dashboard agree."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry

import streamproc.processor.metrics
import streamproc.senders.metrics
from streamproc.api.server import Metrics

REPO = Path(__file__).resolve().parents[1]


def defined(registry: CollectorRegistry) -> dict[str, str]:
    """Exposed name (counters with `_total`) -> type, of the streamproc metrics of `registry`."""
    return {
        f"{m.name}_total" if m.type == "counter" else m.name: m.type
        for m in registry.collect()
        if m.name.startswith("streamproc_")
    }


def documented() -> dict[str, str]:
    page = (REPO / "docs/metrics-and-logs.md").read_text()
    section = page[page.index("\n## Metrics\n") :]
    section = section[: section.index("\n## ", 1)]
    return dict(re.findall(r"^\| `(streamproc_\w+)` \| (\w+) \|", section, re.M))


def test_docs_list_every_metric_with_its_type() -> None:
    assert streamproc.processor.metrics.EVENTS is not None and streamproc.senders.metrics.MESSAGES is not None
    assert documented() == {**defined(REGISTRY), **defined(Metrics().registry)}


def test_dashboard_uses_only_documented_metrics_and_shows_each_of_them() -> None:
    dashboard = json.loads((REPO / "helm/streamproc/dashboards/streamproc.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    used = {re.sub(r"_(bucket|count|sum)$", "", name) for e in exprs for name in re.findall(r"streamproc_\w+", e)}
    assert used == set(documented())
