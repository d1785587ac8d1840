"""POST /v1/twilio/status: Twilio's status callbacks (`senders.twilio.status_callback_url`).

Why a file of its own: this route records what the vendor says happened to a page; it writes to
`streamproc.deliveries` with its own producer, not events through the doors.

`MessageSid`/`MessageStatus` or `CallSid`/`CallStatus`, with `message_id`, `incident_id` and
`instance` in the query as the Twilio sender adds them (without them the index finds the page by
its SID), become `vendor-status` records through `kafka.deliveries.record_vendor_status`;
answered 204 once Kafka has the record, 503 when it cannot take it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from confluent_kafka import KafkaException, Producer

from streamproc.api.errors import ApiError, Unavailable
from streamproc.api.replies.directory import Directory, one
from streamproc.api.replies.lookup import Pages
from streamproc.api.replies.twilio import TwilioGate
from streamproc.config.models import Config
from streamproc.kafka.clients import producer_config
from streamproc.kafka.deliveries import record_vendor_status


class StatusCallbacks:
    def __init__(self, config: Config, gate: TwilioGate, directory: Directory, pages: Pages, bootstrap: str) -> None:
        self.config = config
        self.gate = gate
        self.directory = directory
        self.pages = pages
        self.bootstrap = bootstrap
        self._producer: Producer | None = None

    def producer(self) -> Producer:
        if self._producer is None:
            timeout_ms = int(self.config.api.produce_timeout * 1000)
            self._producer = Producer(
                producer_config(
                    self.bootstrap, **{"message.timeout.ms": timeout_ms, "client.id": "streamproc-api-status"}
                )
            )
        return self._producer

    async def close(self) -> None:
        """Flush what is still on its way (at the application's cleanup)."""
        if self._producer is not None:
            await asyncio.to_thread(self._producer.flush, self.config.api.produce_timeout)
            self._producer = None

    async def handle(self, request: web.Request) -> web.Response:
        form = await self.gate.form(request)
        sid = form.get("MessageSid") or form.get("SmsSid") or form.get("CallSid")
        status = form.get("MessageStatus") or form.get("SmsStatus") or form.get("CallStatus")
        if not sid or not status:
            raise ApiError(400, "a status callback names MessageSid and MessageStatus, or CallSid and CallStatus")
        query = request.query
        message_id = query.get("message_id")
        if message_id and query.get("incident_id"):  # as the Twilio sender sends it: no need to wait
            page = self.pages.known(message_id)
        else:
            page = await self.pages.page(message_id, sid)
        instance_text = query.get("instance", "")
        instance = int(instance_text) if instance_text.isdigit() else (page.instance if page else None)
        user = page.user if page else one(self.directory.by_phone(form.get("To")))
        detail = "; ".join(
            f"{key} {form[key]}" for key in ("ErrorCode", "ErrorMessage", "CallDuration") if form.get(key)
        )
        try:
            await asyncio.to_thread(
                record_vendor_status,
                self.producer(),
                message_id or (page.message_id if page else sid),
                "twilio",
                status,
                detail,
                vendor_id=sid,
                user=user,
                incident_id=query.get("incident_id") or (page.incident_id if page else None),
                instance=instance,
                timeout=self.config.api.produce_timeout,
            )
        except (KafkaException, BufferError) as exc:
            raise Unavailable(f"vendor-status record not written ({exc})") from exc
        return web.Response(status=204)
