"""Fuzzing the API with schemathesis, from the API's own `/openapi.json`.

Every documented operation gets schema-valid and schema-invalid requests (hypothesis, derandomized,
a bounded number of examples), each sent with the valid bearer key, a wrong key or none. Every
answer must pass schemathesis's checks (no 5xx, documented status codes, content types, headers
and bodies; schema-invalid data rejected; schema-valid data not refused as invalid; authentication
enforced), and without the valid key it must be 401. Afterwards the incidents topic must hold
exactly the events the 202 answers counted, each a valid event of spec §2 or §8 keyed as the API
keys it, and none the processor would reject. A few hand-written bodies go first (`nasty_bodies`).

A silence's own constraints across fields (`ends` after `starts`, at most 30 days later; a
`match_re` pattern that is a valid, RE2-compatible regex; for Alertmanager's silences also no
negative matchers, no name twice, no empty equal value; a `filter` that parses as a matcher) are
beyond JSON Schema: for those operations a schema-valid request may be 400, and then the error must
name one of those fields (`CROSS_FIELD`) instead of passing schemathesis's positive_data_acceptance
check. Half the positive cases are steered to be valid, and those must be accepted.

Hypothesis runs derandomized (its seed comes from the test's code) and writes no database.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import positive_data_acceptance

from streamproc.config import load_config
from streamproc.engine.core import Engine
from streamproc.wire.events import Heartbeat, Silence, Trigger, Unsilence, parse_any_event
from tests.harness import API_CONFIG as CONFIG
from tests.harness import ApiProcess, read

pytestmark = pytest.mark.kafka

APPLICATION, KEY = "grafana", "grafana-key"
AUTHS: dict[str, dict[str, str]] = {
    "bearer": {"Authorization": f"Bearer {KEY}"},
    "none": {},
    "wrong bearer": {"Authorization": "Bearer not-a-key"},
    "wrong basic": {"Authorization": "Basic Z3JhZmFuYTpub3Qta2V5"},  # grafana:not-a-key
}
AUTH_CHOICES = ["bearer", "bearer", "bearer", "none", "wrong bearer", "wrong basic"]  # half with the key
EXAMPLES = 150
"""Per operation and generation mode; the whole module takes some 15-25 s on a local broker."""

# No 429 while fuzzing: every request should reach validation, not the rate limit.
FUZZ_CONFIG = CONFIG.replace(
    "api:\n  max_body_bytes: 4096\n", "api:\n  max_body_bytes: 4096\n  rate: {rate: 100000, burst: 100000}\n"
)
assert FUZZ_CONFIG != CONFIG

# Schemathesis's checks at their defaults, but for the body cap: no JSON Schema can say "at most
# 4096 bytes", so a body above it (413, documented) is a refusal whether or not the schema calls
# the body valid. The cap stays low so that the fuzzing goes through that path too.
CHECKS = schemathesis.Config.from_dict(
    {
        "checks": {
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "413", "429", "5xx"]
            },
            "negative_data_rejection": {
                "expected-statuses": [
                    "400",
                    "401",
                    "403",
                    "404",
                    "405",
                    "406",
                    "409",
                    "413",
                    "415",
                    "422",
                    "428",
                    "429",
                    "5xx",
                ]
            },
        }
    }
)


WRITES = {
    "POST /v1/silences": 202,
    "DELETE /v1/silences/{silence_id}": 202,
    "POST /v1/heartbeats/{name}": 202,
    "POST /api/v2/silences": 200,
    "DELETE /api/v2/silence/{silence_id}": 200,
}
"""Operations that write one event when answered with this status (besides POST /v1/events)."""
SECURED = {*WRITES, "GET /v1/silences", "GET /api/v2/silences"}
CROSS_FIELD = {
    "POST /v1/silences": (
        "ends: Value error, must be after starts",
        "ends: Value error, must be at most 30 days after starts",
        "match_re.",
    ),
    "POST /api/v2/silences": (
        "endsAt: Value error, must be after starts",
        "endsAt: Value error, must be at most 30 days after starts",
        "matchers",
    ),
    "GET /api/v2/silences": ("filter: ",),
}
"""Operations whose schema-valid requests may be 400 for what JSON Schema cannot say, and the
beginnings of those answers' errors (the Alertmanager door's errors are JSON strings)."""


@pytest.fixture(scope="module")
def api(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiProcess]:
    proc = ApiProcess(kafka_bootstrap, Path(tmp_path_factory.mktemp("api-fuzz")), config=FUZZ_CONFIG).start()
    try:
        yield proc
    finally:
        proc.stop()


def nasty_bodies() -> list[tuple[bytes, int]]:
    """Bodies the generators are unlikely to make, each with the answer it must get: JSON that Python's
    `json` takes but the processor's parser (pydantic-core) refuses, or that Python's `json` fails on
    (numbers longer than 4300 digits are such too, but do not fit under this config's body cap), and
    times at the ends of the calendar (a year before 1000 must stay four digits on the topic)."""

    def trigger(context: str) -> bytes:
        return (
            b'{"type": "trigger", "incident_id": "nasty", "plan": "db-critical", "context": ' + context.encode() + b"}"
        )

    return [
        (trigger('{"v": ' + "[" * 150 + "]" * 150 + "}"), 202),  # deep, but readable by the processor
        (trigger('{"v": ' + "[" * 250 + "]" * 250 + "}"), 400),  # deeper than the processor reads
        (b"[" * 2000 + b"]" * 2000, 400),  # a RecursionError in json.loads
        (trigger('{"v": NaN}'), 400),  # not JSON, though json.loads takes it
        (trigger('{"v": -Infinity}'), 400),
        (trigger('{"v": "\\ud800"}'), 400),  # an unpaired surrogate: no UTF-8 for it
        (trigger('{"\\udfff": 1}'), 400),
        (trigger('{"v": "\\ud83d\\ude00", "w": "été 😀"}'), 202),  # a surrogate pair, UTF-8: fine
        (b'{"type": "resolve", "incident_id": "nasty\xff"}', 400),  # not UTF-8
        (b'{"type": "resolve", "incident_id": "nasty", "at": "0830-01-01T00:00:00Z"}', 400),  # before 1970
        (b'{"type": "resolve", "incident_id": "nasty", "at": "9999-12-31T23:59:59Z"}', 400),  # would overflow
        (b'{"type": "resolve", "incident_id": "nasty", "at": "0001-01-01T00:00:00+01:00"}', 400),  # no UTC for it
    ]


def steer(body: Any) -> None:
    """Make a schema-valid body acceptable to this configuration: triggers name the configured plan
    (random plan names are 404) and events the key's application (any other is 403). Such a body
    must then be accepted, and its triggers reach the topic too."""
    for event in body if isinstance(body, list) else [body]:
        if isinstance(event, dict):
            if event.get("application") is not None:
                event["application"] = APPLICATION
            if event.get("type") == "trigger":
                event["plan"] = "db-critical"


class Fuzzing:
    def __init__(self, api: ApiProcess) -> None:
        self.url = api.url
        self.schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json", config=CHECKS)
        self.session = requests.Session()
        self.accepted = 0
        self.silence_ids: dict[str, list[str]] = {"native": [], "alertmanager": []}
        self.answers: Counter[tuple[str, str, str, int]] = Counter()

    def run(self) -> None:
        operations = [result.ok() for result in self.schema.get_all_operations()]
        assert {op.label for op in operations} >= {"POST /v1/events", "GET /healthz", "GET /ready", *SECURED}
        self.run_nasty(self.schema["/v1/events"]["POST"])
        for operation in operations:
            self.run_operation(operation, GenerationMode.POSITIVE)
            if any((operation.body, operation.query, operation.headers, operation.path_parameters)):
                self.run_operation(operation, GenerationMode.NEGATIVE)  # else there is nothing to make invalid

    def steer_valid(self, label: str, case: Any) -> bool:
        """Make a request of a CROSS_FIELD operation valid for this config (True if it did)."""
        ends = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        if not isinstance(case.body, dict) and label.startswith("POST"):
            return False
        if label == "POST /v1/silences":  # a window that is valid now, and no pattern
            case.body.update(starts=None, ends=ends, match_re={})
        elif label == "POST /api/v2/silences":
            case.body.update(
                startsAt=datetime.now(UTC).isoformat(),
                endsAt=ends,
                matchers=[{"name": "alertname", "value": "Fuzz", "isRegex": False, "isEqual": True}],
            )
        elif label == "GET /api/v2/silences":
            case.query = {"filter": ['alertname="Fuzz"', "host=~db.*"]}
        return True

    def steer_path(self, label: str, case: Any) -> None:
        made = self.silence_ids["alertmanager" if label.startswith("DELETE /api/") else "native"]
        if "silence_id" in (case.path_parameters or {}) and made:
            case.path_parameters["silence_id"] = made[len(made) // 2]
        if "name" in (case.path_parameters or {}):
            case.path_parameters["name"] = "nightly-backup"

    def run_nasty(self, operation: Any) -> None:
        for body, expected in nasty_bodies():
            response = self.session.post(
                f"{self.url}/v1/events", data=body, headers={**AUTHS["bearer"], "Content-Type": "application/json"}
            )
            assert response.status_code == expected, (body[:100], response.status_code, response.text)
            operation.validate_response(response)  # documented status and body
            if response.status_code == 202:
                self.accepted += int(response.json()["accepted"])

    def run_operation(self, operation: Any, mode: GenerationMode) -> None:
        native = operation.label == "POST /v1/events"
        label = operation.label
        cross_field = label in CROSS_FIELD and mode is GenerationMode.POSITIVE

        # The credentials are fixed in the strategy, so that negative cases negate the body, not the key.
        cases = st.sampled_from(AUTH_CHOICES).flatmap(
            lambda auth: st.tuples(st.just(auth), operation.as_strategy(generation_mode=mode, headers=AUTHS[auth]))
        )

        @given(auth_case=cases, steered=st.booleans())
        @settings(
            max_examples=EXAMPLES,
            derandomize=True,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
            print_blob=False,
        )
        def one(auth_case: tuple[str, schemathesis.Case], steered: bool) -> None:
            auth, case = auth_case
            steer_path = steered and mode is GenerationMode.POSITIVE
            steered = native and steered and mode is GenerationMode.POSITIVE and isinstance(case.body, dict | list)
            if steered:
                steer(case.body)
            steered_valid = cross_field and steer_path and self.steer_valid(label, case)
            if cross_field and isinstance(case.body, dict) and case.body.get("application") is not None:
                case.body["application"] = APPLICATION  # (any other is 403)
            if steer_path:  # some deletes name a silence the fuzzing made, some heartbeats the monitor
                self.steer_path(label, case)
            excluded = [positive_data_acceptance] if cross_field else None
            response = case.call_and_validate(session=self.session, headers=AUTHS[auth], excluded_checks=excluded)
            status = response.status_code
            self.answers[(label, mode.value, auth, status)] += 1
            if label in SECURED and auth != "bearer":
                assert status == 401, f"{auth}: {status} {response.text}"
            elif cross_field and status == 400:
                assert not steered_valid, f"a valid request for this config: {status} {response.text}"
                error = response.json()
                error = error if label.startswith(("GET /api/", "POST /api/")) else error["error"]
                assert error.startswith(CROSS_FIELD[label]), f"a schema-valid request: {status} {response.text}"
            if WRITES.get(label) == status:
                self.accepted += 1
                if label == "POST /v1/silences":
                    self.silence_ids["native"].append(response.json()["silence_id"])
                elif label == "POST /api/v2/silences":
                    self.silence_ids["alertmanager"].append(response.json()["silenceID"])
            if not native:
                return
            if auth != "bearer":
                assert status == 401, f"{auth}: {status} {response.text}"
            elif steered:
                assert status in (202, 413), f"a valid body for this config: {status} {response.text}"
            if status == 202:
                self.accepted += int(response.json()["accepted"])

        one()


def read_records(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list[tuple[bytes | None, bytes]]:
    """(key, value) of every record of `topic`, as bytes; until `expect` arrived (and a second more,
    to see any that should not be there)."""
    return read(
        bootstrap,
        topic,
        lambda out: len(out) >= expect,
        convert=lambda r: (r.key, r.value or b""),
        settle=1.0,
        timeout=timeout,
        must=False,
    )


def test_fuzzed_requests_are_answered_as_documented_and_only_valid_events_reach_kafka(api: ApiProcess) -> None:
    fuzzing = Fuzzing(api)
    fuzzing.run()
    accepted = fuzzing.accepted
    assert accepted > 0, f"no fuzzed event was accepted, so none reached Kafka: {fuzzing.answers}"
    records = read_records(api.bootstrap, api.topics.incidents, expect=accepted)
    assert len(records) == accepted, f"{len(records)} records on the topic, but {accepted} events were accepted"
    engine = Engine(load_config(api.config_path))
    bad: list[tuple[bytes | None, bytes, str]] = []
    kinds: Counter[str] = Counter()
    for key, value in records:
        try:
            event = parse_any_event(value)  # the bytes, as the processor reads them
        except ValueError as exc:
            bad.append((key, value, str(exc)))
            continue
        kinds[event.type] += 1
        if key != event.key.encode():
            bad.append((key, value, f"keyed {key!r}, not {event.key!r}"))
        if event.at is None:
            bad.append((key, value, "no `at`: the API fills in the time of receipt"))
        if event.application != APPLICATION:
            bad.append((key, value, f"application {event.application!r}, not the key's {APPLICATION!r}"))
        reason = None
        if isinstance(event, Trigger):
            reason = engine.check_trigger(event)
        elif isinstance(event, Silence | Unsilence):
            reason = engine.check_silence(event)
        elif isinstance(event, Heartbeat):
            reason = engine.check_heartbeat(event)
        if reason is not None:
            bad.append((key, value, reason))
    assert not bad, f"{len(bad)} malformed record(s) on {api.topics.incidents}, e.g. {bad[:3]}"
    assert kinds["trigger"] > 0, f"no fuzzed trigger reached the topic: {kinds}"
    assert min(kinds["silence"], kinds["unsilence"], kinds["heartbeat"]) > 0, f"no §8 event of some type: {kinds}"
