"""Stopping a process in bounded time, whatever state Kafka is in.

The worker, the sender and the API stop cleanly on SIGTERM/SIGINT: they finish what they
hold, commit, flush and leave their groups. All of that talks to the broker, and a client
waiting on a broker that is gone (stopped first, or unreachable) can wait far longer than a
pod's termination grace period or a person's patience. So the first stop signal also arms a
watchdog: if the process is still alive `shutdown_timeout()` seconds later, it logs one error
and ends with `os._exit(WATCHDOG_EXIT)` (no further clean-up: what was not committed is read
again by the next owner, which the senders and the processor are built for).

    STREAMPROC_SHUTDOWN_TIMEOUT   seconds from the first stop signal to the hard exit (default 25: past
                                  a sender's drain of sends in flight, bounded by its session timeout of
                                  20 s, and before Kubernetes' default grace period of 30 s; `streamproc
                                  run` gives its children 8 unless the variable is set)
"""

from __future__ import annotations

import logging
import os
import sys
import threading

from streamproc.config import environment

SHUTDOWN_TIMEOUT_ENV = environment.SHUTDOWN_TIMEOUT
DEFAULT_SHUTDOWN_TIMEOUT = environment.DEFAULT_SHUTDOWN_TIMEOUT
WATCHDOG_EXIT = 124
"""Exit status of a process ended by its watchdog (like timeout(1))."""

log = logging.getLogger(__name__)
_armed = threading.Lock()


shutdown_timeout = environment.shutdown_timeout


def arm_watchdog(name: str, timeout: float | None = None) -> bool:
    """Hard-exit this process if it is still running `timeout` seconds from now (default
    `shutdown_timeout()`). Only the first call arms it; returns whether this call did."""
    if not _armed.acquire(blocking=False):
        return False
    seconds = shutdown_timeout() if timeout is None else timeout

    def expire() -> None:
        # Logging takes a handler's lock: should a stuck thread hold it, exit a second later anyway.
        backstop = threading.Timer(1.0, os._exit, (WATCHDOG_EXIT,))
        backstop.daemon = True
        backstop.start()
        try:
            log.error(
                "%s: still stopping %.0f s after the stop signal; exiting now",
                name,
                seconds,
                extra={"shutdown_timeout": seconds},
            )
            for handler in logging.getLogger().handlers:
                handler.flush()
            sys.stdout.flush()
        except BaseException:  # nothing may keep the exit from happening
            pass
        os._exit(WATCHDOG_EXIT)

    timer = threading.Timer(seconds, expire)
    timer.name = f"{name}-shutdown-watchdog"
    timer.daemon = True
    timer.start()
    return True


__all__ = ["DEFAULT_SHUTDOWN_TIMEOUT", "SHUTDOWN_TIMEOUT_ENV", "WATCHDOG_EXIT", "arm_watchdog", "shutdown_timeout"]
