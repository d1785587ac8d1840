"""Which incidents a reply is about: the paged index, asked the way every reply route asks it.

Why a file of its own: SMS, calls, status callbacks and Slack all turn an id (an incident id, a
page's message id, a vendor's SID) into incidents, and all wait, bounded, for the index to catch
up when it does not know a page yet. Those rules live here once.

A message id the index does not know yet (32 hex digits, as the processor makes them) makes the
reply wait for the index to be current before the id is taken for an incident id. The message
id of a batch message (flood control) means every incident in the batch. An id typed in another
case than the incident's own is corrected when it matches exactly one incident that paged the
user (phones capitalise the first word). Without an index (`paged_window` off), ids are taken as
they are and "claim last/all" cannot be answered.
"""

from __future__ import annotations

import re

from streamproc.api.paged import Page, Paged
from streamproc.api.paged_reader import PagedReader

SYNC_TIMEOUT = 8.0
"""How long a reply that needs the index ("claim last", a call's user) waits for it to be current:
well inside the 15 s Twilio waits for a webhook's answer, so a busy broker delays the answer
rather than making it "cannot tell right now"."""
SLACK_SYNC_TIMEOUT = 1.5
"""How long a Slack press waits for the index to know its message (Slack waits 3 s in all)."""
MESSAGE_ID = re.compile(r"[0-9a-f]{32}(~email)?")
"""A message id as the processor (and flood control) make them; `~email` on a fallback copy."""


class Pages:
    """The paged index (`paged.py`) and its reader (`paged_reader.py`), or neither."""

    def __init__(self, reader: PagedReader | None) -> None:
        self.reader = reader

    def status(self) -> str:
        return self.reader.status() if self.reader is not None else "off"

    def known(self, message_id: str) -> Page | None:
        """The page of `message_id` if the index has read it already (no waiting)."""
        return self.reader.index.incident_of(message_id) if self.reader is not None else None

    async def named(self, user: str, target: str) -> tuple[list[str], Page | None]:
        """The incidents `target` names, and the page when it is a message id: a page's message id
        (every incident of a batch page), an incident id, or one in another case."""
        if self.reader is None:
            return [target], None
        index = self.reader.index
        shaped = MESSAGE_ID.fullmatch(target.lower()) is not None
        page = index.incident_of(target) or (index.incident_of(target.lower()) if shaped else None)
        if page is None and shaped and target not in index.incidents_paging(user):
            # Perhaps a page the index has not read yet (just sent, or the API just started).
            await self.reader.sync(SYNC_TIMEOUT)
            page = index.incident_of(target) or index.incident_of(target.lower())
        if page is not None:
            return list(page.incidents), page
        matches = {i for i in index.incidents_paging(user) if i.lower() == target.lower()}
        if target not in matches and len(matches) == 1:
            return [matches.pop()], None
        return [target], None

    async def open_for(self, user: str) -> list[Paged] | None:
        """The open incidents that paged `user`, newest first, once the index is current; None
        when it cannot be told (no index, or not current within `SYNC_TIMEOUT`)."""
        if self.reader is None or not await self.reader.sync(SYNC_TIMEOUT):
            return None
        return self.reader.index.open_for(user)

    async def page(self, message_id: str | None, sid: str | None = None) -> Page | None:
        """The page a callback is about (by message id, else by the vendor's SID); the index is
        brought up to date when it does not know it yet."""
        if self.reader is None or not (message_id or sid):
            return None
        index = self.reader.index
        for attempt in range(2):
            page = index.incident_of(message_id) if message_id else None
            if page is None and sid:
                page = index.page_of_vendor_id(sid)
            if page is not None or attempt:
                return page
            await self.reader.sync(SYNC_TIMEOUT)
        return None

    async def page_soon(self, message_id: str, timeout: float) -> Page | None:
        """The page of `message_id`, waiting at most `timeout` for the index when the id has the
        shape of one the processor makes but is not known yet."""
        if self.reader is None:
            return None
        page = self.reader.index.incident_of(message_id)
        if page is None and MESSAGE_ID.fullmatch(message_id):
            await self.reader.sync(timeout)
            page = self.reader.index.incident_of(message_id)
        return page
