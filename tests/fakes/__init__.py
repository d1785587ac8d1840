"""Local stand-ins for the vendors the senders call: Twilio's REST API, Slack's Web API,
a webhook receiver (aiohttp servers on 127.0.0.1, random ports) and an SMTP server
(aiosmtpd). They record what they received, as received, so tests assert on the wire.

Each HTTP fake can be scripted to fail its next requests (`fail_next`) with a status,
a Retry-After, or a vendor error code, and to answer slowly (`delay`).
"""

from tests.fakes.http import Failure, Received
from tests.fakes.slack import FakeSlack
from tests.fakes.smtp import FakeSmtp, ReceivedMail
from tests.fakes.twilio import FakeTwilio
from tests.fakes.webhook import FakeWebhook

__all__ = ["Failure", "FakeSlack", "FakeSmtp", "FakeTwilio", "FakeWebhook", "Received", "ReceivedMail"]
