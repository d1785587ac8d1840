"""One harness for the tests (and benchmarks) that run streamproc as users run it: real child
processes on a real broker.

    procs.py    one `streamproc <command>` child process: its arguments, environment and log file,
                wait on its readiness endpoint, SIGTERM / SIGKILL; `Worker`, `Sender`, `ApiProcess`
    stack.py    `Stack`: a namespace of topics with its workers, senders and API, events in, what
                came out read back, and `replay_outcomes` of the same events
    topics.py   the one topic reader (to the end offsets now, or until a condition holds), topic
                creation, free ports below the ephemeral range
    wait.py     `wait_until` a condition, and a consumer group's assignment via the admin client
    logs.py     the JSON lines of a log file

When a test fails, the tail of the log of every process it started (and of those still running
from a module's fixture) is added to its report (the hook is in tests/conftest.py).

Tests wait on conditions (a `/ready`, a record on a topic, a group's assignment), never on a fixed
time; a sleep that stays is the scenario itself (a claim dated between two pages) and says so.
"""

from tests.harness.procs import API_CONFIG, REPO, ApiProcess, Proc, Sender, Worker
from tests.harness.stack import AUDIT_KINDS, Stack, iso_ms, live_stack, replay_outcomes
from tests.harness.topics import Record, create_topic, free_ports, read, read_topic, unique_name
from tests.harness.wait import committed_to_end, group_assigned, wait_until

__all__ = [
    "API_CONFIG",
    "AUDIT_KINDS",
    "REPO",
    "ApiProcess",
    "Proc",
    "Record",
    "Sender",
    "Stack",
    "Worker",
    "committed_to_end",
    "create_topic",
    "free_ports",
    "group_assigned",
    "iso_ms",
    "live_stack",
    "read",
    "read_topic",
    "replay_outcomes",
    "unique_name",
    "wait_until",
]
