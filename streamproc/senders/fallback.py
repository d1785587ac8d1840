"""Fallback to email: a page that could not go out by its own mode is re-queued as email.

The email copy goes onto `streamproc.messages.email` like any other message, so it gets
the email workers' rate limit, retries, claim check and dedupe. Its id is derived from
the original (`<id>~email`), so re-queuing it twice after a crash still sends it once.
"""

from __future__ import annotations

from streamproc.wire.outcomes import Message

SUFFIX = "~email"


def fallback_message(message: Message, email: str | None, reason: str) -> Message | None:
    """The email copy of a failed page, or None when there is no email to fall back to."""
    if message.mode == "email" or not email:
        return None
    subject = message.subject or " ".join(message.body.split())[:120]
    body = f"{message.body}\n\n(Sent by email because {message.mode} delivery failed: {reason})"
    return message.model_copy(
        update={
            "mode": "email",
            "destination": email,
            "subject": subject,
            "body": body,
            "message_id": message.message_id + SUFFIX,
        }
    )
