"""The vendor of last resort: one line per delivery on stdout.

Any mode whose real vendor has no credentials goes here, so a stack started with no
secrets at all still shows every page it would have sent.
"""

from __future__ import annotations

import sys
from typing import TextIO

from streamproc.senders.vendors.base import VendorResult, one_line
from streamproc.wire.outcomes import Message


class ConsoleVendor:
    name = "console"
    account: str | None = None

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    async def send(self, message: Message) -> VendorResult:
        stream = self._stream or sys.stdout
        text = one_line(f"{message.subject} | {message.body}" if message.subject else message.body, 300)
        stream.write(
            f"streamproc-sender: {message.mode} to {message.user} <{message.destination}> "
            f"[{message.priority}] {message.incident_id}#{message.instance} {message.message_id}: {text}\n"
        )
        stream.flush()
        return VendorResult.ok(detail="printed to stdout")

    async def close(self) -> None:
        return None
