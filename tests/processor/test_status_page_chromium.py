"""Issue 22: the status page in a real browser (headless Chromium over the DevTools protocol)
against a live stack: an incident appears by itself (the page asks again every 2 s), turns claimed
after an SMS reply (a signed Twilio webhook), shows its timeline, and goes away once resolved.
The screenshot goes to the test's own directory; with STREAMPROC_UPDATE_SCREENSHOTS=1 it also
replaces docs/status-page.png (a test run leaves the checkout as it was)."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_replies import sms
from tests.harness import REPO, Stack, live_stack
from tests.processor.status_scenario import APP_KEY, CONFIG, UI_TOKEN, request
from tests.whatif.chromium import Browser

pytestmark = [pytest.mark.kafka, pytest.mark.slow]
DOCS_SCREENSHOT = REPO / "docs" / "status-page.png"


@pytest.fixture
def status_stack(kafka_bootstrap: str, tmp_path: Path) -> Iterator[Stack]:
    with live_stack(kafka_bootstrap, tmp_path, CONFIG) as stack:
        yield stack


def row(incident_id: str) -> str:
    return f"document.querySelector('tr[data-incident=\"{incident_id}\"]')"


def trigger(incident_id: str, summary: str, plan: str = "oncall") -> dict[str, object]:
    return {"type": "trigger", "incident_id": incident_id, "plan": plan, "context": {"summary": summary}}


def test_the_status_page_follows_an_incident_live(status_stack: Stack, tmp_path: Path) -> None:
    stack = status_stack
    stack.start_worker("w0")
    stack.wait_ready()
    api = stack.start_api()
    browser = Browser(size="1400,700")
    try:
        browser.navigate(f"{api.url}/ui?token={UI_TOKEN}")
        assert browser.evaluate("location.search") == ""  # the token went into a cookie
        browser.wait_for("document.getElementById('none-open') !== null", 10)
        # Neighbours for the picture: one claimed, one on the other plan.
        for event in (
            trigger("db01-replication-lag", "Replication lag 45 s on db01", "long"),
            trigger("api-5xx-rate", "5xx rate above 2% on api (eu-west)"),
        ):
            assert request(api, "/v1/events", APP_KEY, event)[0] == 202
        assert (
            request(api, "/v1/events", APP_KEY, {"type": "claim", "incident_id": "api-5xx-rate", "owner": "alice"})[0]
            == 202
        )
        started = time.time()
        assert request(api, "/v1/events", APP_KEY, trigger("disk-full-db02", "Disk /var 97% full on db02"))[0] == 202
        # It appears without a reload: the page's own polling brings the new table.
        browser.wait_for(f"{row('disk-full-db02')} !== null", 30)
        assert browser.evaluate(f"{row('disk-full-db02')}.dataset.status") == "escalating"
        cells = browser.evaluate(f"[...{row('disk-full-db02')}.cells].map(c => c.textContent.trim())")
        assert isinstance(cells, list)
        assert cells[1] == "Disk /var 97% full on db02" and cells[5] == "1 of 1"
        assert cells[6].startswith(("alice", "bob"))  # who is on call now was paged
        assert browser.evaluate("document.getElementById('open-count').textContent") == "(3)"

        # Bob answers the SMS: claimed, on the page by itself.
        _, answer = sms(api, "+15550000002", "claim disk-full-db02")
        assert answer.status == 200 and answer.message() == "Claimed disk-full-db02.", answer
        browser.wait_for(f"{row('disk-full-db02')}.dataset.status === 'claimed'", 30)
        assert browser.evaluate(f"{row('disk-full-db02')}.cells[8].textContent.trim()") == "bob"
        browser.wait_for(f"{row('api-5xx-rate')}.dataset.status === 'claimed'", 10)
        text = str(browser.evaluate("document.body.innerText"))
        assert "+1555" not in text and "db" in str(browser.evaluate("document.getElementById('oncall').innerText"))
        screenshot = tmp_path / "status-page.png"
        browser.screenshot(screenshot)
        assert screenshot.stat().st_size > 10_000 and screenshot.stat().st_mtime >= started
        if os.environ.get("STREAMPROC_UPDATE_SCREENSHOTS") == "1":
            shutil.copyfile(screenshot, DOCS_SCREENSHOT)

        # Its timeline: the trigger, the page, the claim.
        browser.call("Runtime.evaluate", expression=f"{row('disk-full-db02')}.querySelector('a').click()")
        browser.wait_for(
            "location.pathname === '/ui/incidents/disk-full-db02' && document.readyState === 'complete'", 30
        )
        timeline = str(browser.evaluate("document.getElementById('timeline').innerText"))
        assert "trigger" in timeline and "message" in timeline and "claimed" in timeline and "owner=bob" in timeline
        assert "+1555" not in str(browser.evaluate("document.body.innerText"))

        # Resolved: it leaves the list.
        browser.navigate(f"{api.url}/ui")
        browser.wait_for(f"{row('disk-full-db02')} !== null", 10)
        assert request(api, "/v1/events", APP_KEY, {"type": "resolve", "incident_id": "disk-full-db02"})[0] == 202
        browser.wait_for(f"{row('disk-full-db02')} === null", 30)
        assert browser.evaluate("document.getElementById('open-count').textContent") == "(2)"
        assert browser.console == []
    finally:
        browser.close()
        api.stop()
